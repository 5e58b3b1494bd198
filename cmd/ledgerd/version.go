package main

import (
	"runtime/debug"
	"strings"
)

// Set at link time (-ldflags "-X main.version=v1.2.3 -X main.commit=…
// -X main.commitDirty=true"), for builds the go command stamps no VCS
// information into: -buildvcs=false, or a git worktree (whose .git is a
// file, which the go command does not recognise). `make build` sets the
// commit.
var version, commit, commitDirty string

// versionLine is what `ledgerd version` prints: the module version, the
// commit it was built from (with "dirty" when the tree had changes) and
// the Go release, from the build information the go command stamps.
func versionLine(override, linkedCommit, linkedDirty string, bi *debug.BuildInfo) string {
	if bi == nil {
		bi = &debug.BuildInfo{}
	}
	v := override
	if v == "" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" && linkedCommit != "" {
		rev, dirty = linkedCommit, linkedDirty == "true"
	}
	parts := []string{"ledgerd " + v}
	if rev != "" {
		c := "commit " + rev
		if dirty {
			c += " (dirty)"
		}
		if at != "" {
			c += " of " + at
		}
		parts = append(parts, c)
	} else {
		parts = append(parts, "commit unknown (built without VCS information)")
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	return strings.Join(parts, ", ")
}
