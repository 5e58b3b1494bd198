package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionLine(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-12-04T10:00:00Z"}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name, override, commit, dirty string
		bi                            *debug.BuildInfo
		want                          string
	}{
		{"stamped", "", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: vcs("abc123", "false")},
			"ledgerd v1.2.0, commit abc123 of 2026-12-04T10:00:00Z, go1.26.8"},
		{"dirty tree", "", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261204100000-abc123+dirty"}, Settings: vcs("abc123", "true")},
			"ledgerd v0.0.0-20261204100000-abc123+dirty, commit abc123 (dirty) of 2026-12-04T10:00:00Z, go1.26.8"},
		{"linked commit", "", "def456", "true", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"ledgerd (devel), commit def456 (dirty), go1.26.8"},
		{"linked version", "v9.9.9", "", "", &debug.BuildInfo{GoVersion: "go1.26.8"},
			"ledgerd v9.9.9, commit unknown (built without VCS information), go1.26.8"},
		{"no build info", "", "", "", nil, "ledgerd (devel), commit unknown (built without VCS information)"},
	} {
		if got := versionLine(tc.override, tc.commit, tc.dirty, tc.bi); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestVersionCommand: `ledgerd version` prints what the build info holds,
// not a fixed word.
func TestVersionCommand(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"version"}, env(nil), &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "ledgerd ") || !strings.Contains(out.String(), runtime.Version()) || strings.TrimSpace(out.String()) == "ledgerd dev" {
		t.Errorf("version printed %q", out.String())
	}
}
