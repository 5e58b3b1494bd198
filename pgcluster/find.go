package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// requiredBinaries must all live in one directory for it to count as a
// PostgreSQL server bin dir. Requiring `postgres` itself rules out client-only
// directories and wrapper scripts (Debian's pg_wrapper in /usr/bin).
var requiredBinaries = []string{"initdb", "pg_ctl", "postgres"}

// FindBinDir locates a directory containing initdb, pg_ctl and postgres.
//
// Search order: $PG_BINDIR (if set it must be valid; no fallback), the
// directories on $PATH, `pg_config --bindir`, /usr/lib/postgresql/*/bin
// (highest version first), /usr/pgsql-*/bin, Homebrew
// (/opt/homebrew/opt/postgresql*/bin, /usr/local/opt/postgresql*/bin) and
// Postgres.app. When the binaries found on PATH are symlinks into a real
// installation directory that holds all of them, that directory is returned.
func FindBinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		if dir, ok := checkBinDir(d); ok {
			return dir, nil
		}
		return "", fmt.Errorf("pgcluster: PG_BINDIR=%q does not contain executable %s", d, strings.Join(requiredBinaries, ", "))
	}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if d == "" {
			continue
		}
		if dir, ok := checkBinDir(d); ok {
			return dir, nil
		}
	}
	if d := pgConfigBinDir(); d != "" {
		if dir, ok := checkBinDir(d); ok {
			return dir, nil
		}
	}
	var globbed []string
	globbed = append(globbed, globVersionsDesc("/usr/lib/postgresql/*/bin")...)
	globbed = append(globbed, globVersionsDesc("/usr/pgsql-*/bin")...)
	globbed = append(globbed, globVersionsDesc("/opt/homebrew/opt/postgresql*/bin")...)
	globbed = append(globbed, globVersionsDesc("/usr/local/opt/postgresql*/bin")...)
	globbed = append(globbed, "/Applications/Postgres.app/Contents/Versions/latest/bin")
	for _, d := range globbed {
		if dir, ok := checkBinDir(d); ok {
			return dir, nil
		}
	}
	return "", errors.New("pgcluster: PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; " +
		"install them (Debian/Ubuntu: scripts/ensure-deps.sh or apt-get install postgresql; macOS: brew install postgresql@16) " +
		"or set PG_BINDIR to the directory that contains them")
}

// checkBinDir reports whether dir holds all required binaries and returns the
// directory to use: the real directory the binaries live in when dir only
// holds symlinks to them, otherwise dir itself.
func checkBinDir(dir string) (string, bool) {
	if !hasAll(dir) {
		return "", false
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	if real, err := filepath.EvalSymlinks(filepath.Join(abs, "postgres")); err == nil {
		if rd := filepath.Dir(real); rd != abs && hasAll(rd) {
			return rd, true
		}
	}
	return abs, true
}

func hasAll(dir string) bool {
	for _, name := range requiredBinaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

func pgConfigBinDir() string {
	p, err := exec.LookPath("pg_config")
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p, "--bindir").Output()
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(out))
}

// globVersionsDesc expands pattern and orders the matches by the version
// number embedded in them, highest first; matches without a number go last.
func globVersionsDesc(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	sortVersionsDesc(m)
	return m
}

func sortVersionsDesc(m []string) {
	sort.SliceStable(m, func(i, j int) bool {
		vi, vj := versionKey(m[i]), versionKey(m[j])
		for k := 0; k < len(vi) && k < len(vj); k++ {
			if vi[k] != vj[k] {
				return vi[k] > vj[k]
			}
		}
		if len(vi) != len(vj) {
			return len(vi) > len(vj)
		}
		return m[i] > m[j]
	})
}

// versionKey extracts the numeric components of the first version-looking
// run of digits and dots in s ("/usr/lib/postgresql/9.6/bin" → [9 6]).
func versionKey(s string) []int {
	start := strings.IndexAny(s, "0123456789")
	if start < 0 {
		return nil
	}
	end := start
	for end < len(s) && (s[end] == '.' || (s[end] >= '0' && s[end] <= '9')) {
		end++
	}
	var v []int
	for _, part := range strings.Split(strings.Trim(s[start:end], "."), ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			break
		}
		v = append(v, n)
	}
	return v
}
