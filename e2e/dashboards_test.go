package e2e

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	file   string
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID      int    `json:"id"`
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	// Panels of a collapsed row.
	Panels []panel `json:"panels"`
}

func (d *dashboard) panels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

func loadDashboards(dir string) ([]*dashboard, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		d := &dashboard{file: filepath.Base(f)}
		if err := json.Unmarshal(b, d); err != nil {
			return nil, &os.PathError{Op: "parse", Path: f, Err: err}
		}
		out = append(out, d)
	}
	return out, nil
}

func decodeJSON(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// grafanaVars turns a panel's Grafana variables into PromQL Prometheus
// takes as is.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "5m",
	"${instance:regex}", ".*", "$instance", ".*", "${route:regex}", ".*", "$route", ".*")

// TestDashboardsParse runs without Prometheus: every dashboard parses,
// has a uid and title, and unique panel ids.
func TestDashboardsParse(t *testing.T) {
	ds, err := loadDashboards("../deploy/grafana/dashboards")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) < 5 {
		t.Fatalf("%d dashboards", len(ds))
	}
	uids := map[string]bool{}
	for _, d := range ds {
		if d.UID == "" || d.Title == "" || uids[d.UID] {
			t.Errorf("%s: uid %q title %q", d.file, d.UID, d.Title)
		}
		uids[d.UID] = true
		ids := map[int]bool{}
		queries := 0
		for _, p := range d.panels() {
			if p.ID == 0 || ids[p.ID] {
				t.Errorf("%s: panel %q id %d missing or twice", d.file, p.Title, p.ID)
			}
			ids[p.ID] = true
			queries += len(p.Targets)
		}
		if queries == 0 {
			t.Errorf("%s: no queries", d.file)
		}
	}
}
