package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Reading EXPLAIN's text: the scan nodes, the shape, the rows filters
// discarded and the execution time.

var (
	nodeRE = regexp.MustCompile(`^\s*(?:->\s*)?([A-Z][A-Za-z ]+?)(?:\s+using\s+(\S+))?(?:\s+on\s+(\S+))?(?:\s+\w+)?\s+\(cost`)
	timeRE = regexp.MustCompile(`Execution Time: ([0-9.]+) ms`)
)

// scan is one scan node of a plan.
type scan struct {
	kind  string // "Index Scan", "Seq Scan", ...
	index string // index name, if any
	rel   string // relation, if any
}

func (s scan) String() string {
	name := s.index
	if name == "" {
		name = s.rel
	}
	return partitionRE.ReplaceAllString(strings.TrimSpace(s.kind+" "+name), "_YYYY_MM")
}

// planScans lists the plan's scan nodes.
func planScans(plan string) []scan {
	var out []scan
	for _, l := range strings.Split(plan, "\n") {
		m := nodeRE.FindStringSubmatch(l)
		if m == nil || !strings.Contains(m[1], "Scan") {
			continue
		}
		sc := scan{kind: m[1], index: m[2], rel: m[3]}
		if strings.HasPrefix(m[1], "Bitmap Index Scan") { // "Bitmap Index Scan on <index>"
			sc.index, sc.rel = m[3], ""
		}
		out = append(out, sc)
	}
	return out
}

// scans lists the plan's scan nodes once each, partitions folded.
func scans(plan string) []string {
	var out []string
	seen := map[string]bool{}
	for _, sc := range planScans(plan) {
		s := sc.String()
		if !seen[s] {
			seen[s] = true
			out = append(out, "`"+s+"`")
		}
	}
	return out
}

// relRows is pg_class.reltuples by relation name, after ANALYZE.
var relRows = map[string]float64{}

// tinyRows is the size below which a sequential scan is the right plan
// (the ledgers, the API keys, goose's table, empty future partitions).
const tinyRows = 1000

// seqScans lists the sequential scans of tables that are not tiny.
func seqScans(plan string) []string {
	var out []string
	seen := map[string]bool{}
	for _, sc := range planScans(plan) {
		if !strings.Contains(sc.kind, "Seq Scan") || relRows[sc.rel] < tinyRows {
			continue
		}
		s := fmt.Sprintf("`%s on %s` (%.0f rows)", sc.kind, sc.rel, relRows[sc.rel])
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

var partitionRE = regexp.MustCompile(`_\d{4}_\d{2}`)

// shape is the plan without numbers: node kinds, indexes and tables.
func shape(plan string) string {
	var b strings.Builder
	for _, l := range strings.Split(plan, "\n") {
		if m := nodeRE.FindStringSubmatch(l); m != nil {
			b.WriteString(partitionRE.ReplaceAllString(m[0][:strings.Index(m[0], "(cost")], "_P"))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

var removedRE = regexp.MustCompile(`Rows Removed by Filter: (\d+)`)

// discardWarn is the number of rows read and thrown away by filters above
// which a plan is flagged in the summary.
const discardWarn = 1000

// removed sums the plan's "Rows Removed by Filter" (per loop, as EXPLAIN
// reports them): rows a scan read only to throw away.
func removed(plan string) int {
	n := 0
	for _, m := range removedRE.FindAllStringSubmatch(plan, -1) {
		k, _ := strconv.Atoi(m[1])
		n += k
	}
	return n
}

func execTime(plan string) string {
	if m := timeRE.FindStringSubmatch(plan); m != nil {
		return m[1] + " ms"
	}
	return ""
}
