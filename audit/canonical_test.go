package audit

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd"
)

// TestCanonicalMatchesPython: the canonical encoding is byte for byte what
// Python's json.dumps(e, sort_keys=True, separators=(",", ":")) writes,
// for targets with quotes, controls, DEL, non-ASCII and astral characters.
func TestCanonicalMatchesPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	targets := []string{"/v1/ledgers/demo/accounts/a:b", `q"b\s`, "tab\tnl\ncr\rbs\bff\f\x01\x1f", "del\x7f", "é✓", "😀 astral", "%FF/x"}
	var entries []*ledgerd.AuditEntry
	for i, tg := range targets {
		entries = append(entries, &ledgerd.AuditEntry{Position: int64(i + 1), At: time.Date(2026, 12, 4, 16, 45, 5, 892127000, time.UTC),
			Actor: "bootstrap", RequestID: "r" + tg, Action: "forbidden", Target: tg, Status: 403})
	}
	in, _ := json.Marshal(func() []map[string]any {
		var out []map[string]any
		for _, e := range entries {
			out = append(out, map[string]any{"action": e.Action, "actor": e.Actor, "at": e.At.Format(TimeLayout),
				"id": ID(e.Position), "request_id": e.RequestID, "status": e.Status, "target": e.Target})
		}
		return out
	}())
	cmd := exec.Command("python3", "-c", `import json,sys
for e in json.load(sys.stdin): print(json.dumps(e, sort_keys=True, separators=(",", ":")))`)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	for i, e := range entries {
		if got := string(Canonical(e)); got != lines[i] {
			t.Errorf("target %q:\n go     %s\n python %s", e.Target, got, lines[i])
		}
	}
	if h := Hash(ZeroHash, entries[0]); len(h) != 64 || h == Hash(h, entries[0]) {
		t.Fatalf("hash %q", h)
	}
}

func TestParseID(t *testing.T) {
	for id, want := range map[string]int64{"aud_1": 1, "aud_1042": 1042, "aud_0": 0, "aud_01": 0, "aud_": 0, "1": 0, "aud_-1": 0, "aud_x": 0} {
		if n, ok := ParseID(id); n != want && ok || ok != (want > 0) {
			t.Errorf("ParseID(%q) = %d, %v", id, n, ok)
		}
	}
}
