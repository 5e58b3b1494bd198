package pgcluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// postgresCredential looks up the postgres system user that runs initdb
// and postgres when this process is root.
func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: running as root, and PostgreSQL refuses to run as root, "+
			"but there is no postgres system user to run it as (install the postgresql package or "+
			"create the user, e.g. useradd --system postgres), or run as an ordinary user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgcluster: postgres user has non-numeric uid/gid %q/%q", u.Uid, u.Gid)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.ParseUint(s, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	return cred, nil
}

// checkTraversable verifies that every existing directory from / down to dir
// can be searched (x permission) by the user in cred. It stops at the first
// component that does not exist.
func checkTraversable(dir string, cred *syscall.Credential) error {
	groups := map[uint32]bool{cred.Gid: true}
	for _, g := range cred.Groups {
		groups[g] = true
	}
	var chain []string
	for d := dir; ; d = filepath.Dir(d) {
		chain = append(chain, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		d := chain[i]
		fi, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		perm := fi.Mode().Perm()
		var ok2 bool
		switch {
		case uint32(st.Uid) == cred.Uid:
			ok2 = perm&0o100 != 0
		case groups[uint32(st.Gid)]:
			ok2 = perm&0o010 != 0
		default:
			ok2 = perm&0o001 != 0
		}
		if !ok2 {
			return fmt.Errorf("pgcluster: directory %s (mode %v) is not traversable by the postgres user (uid %d), "+
				"which runs the server because this process runs as root; make it accessible (chmod o+x %s) "+
				"or choose a data directory elsewhere", d, perm, cred.Uid, d)
		}
	}
	return nil
}

// chownTree gives dir and everything in it to the postgres user when dir is
// not already owned by it.
func chownTree(dir string, cred *syscall.Credential) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && uint32(st.Uid) == cred.Uid && uint32(st.Gid) == cred.Gid {
		return nil
	}
	err = filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cred.Uid), int(cred.Gid))
	})
	if err != nil {
		return fmt.Errorf("pgcluster: chown data dir: %w", err)
	}
	return nil
}
