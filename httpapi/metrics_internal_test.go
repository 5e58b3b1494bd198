package httpapi

import (
	"fmt"
	"testing"

	"github.com/ledgerd/ledgerd"
	"github.com/prometheus/client_golang/prometheus"
)

// volumeSeries returns the volume metric's series by asset label.
func volumeSeries(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "ledgerd_posted_volume_minor_units_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return out
}

func postedItem(asset string, amount int64) *ledgerd.WriteItem {
	return &ledgerd.WriteItem{
		Request: &ledgerd.TransactionRequest{Postings: []ledgerd.Posting{{Source: "a", Destination: "b", Amount: amount, Asset: asset}}},
		Result:  &ledgerd.Transaction{},
	}
}

// TestVolumeAssetsBounded: a writer inventing 1,000 assets adds at most
// maxAssetLabels + 1 series to the volume metric, and no volume is lost:
// what is not named is summed as "other".
func TestVolumeAssetsBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	for i := range 1000 {
		m.observeItem(postedItem(fmt.Sprintf("X%d", i), 1), nil)
	}
	m.observeItem(postedItem("X0", 5), nil) // a named asset keeps its series
	got := volumeSeries(t, reg)
	if len(got) > maxAssetLabels+1 {
		t.Fatalf("%d series for 1,000 assets, at most %d allowed", len(got), maxAssetLabels+1)
	}
	if got["X0"] != 6 || got[otherAssetsLabel] != 1000-maxAssetLabels {
		t.Fatalf("X0 %v, other %v", got["X0"], got[otherAssetsLabel])
	}
	var sum float64
	for _, v := range got {
		sum += v
	}
	if sum != 1005 {
		t.Fatalf("volume %v, want 1005", sum)
	}
}

// TestVolumeAssetsListed: with LEDGERD_METRIC_ASSETS set, only those
// assets are named, whatever is posted first.
func TestVolumeAssetsListed(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.limitAssets([]string{"USD", "EUR"})
	for i := range 100 {
		m.observeItem(postedItem(fmt.Sprintf("X%d", i), 1), nil)
	}
	m.observeItem(postedItem("EUR", 7), nil)
	got := volumeSeries(t, reg)
	if len(got) != 2 || got["EUR"] != 7 || got[otherAssetsLabel] != 100 {
		t.Fatalf("series %v", got)
	}
}
