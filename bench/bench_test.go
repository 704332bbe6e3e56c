package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// TestQuick runs the harness in quick mode so that it never rots: it fails
// on a harness error (a system that does not start, refuses a write or
// answers a query with an error), never on a slow figure.
//
// It measures Tidemark (built from this tree) and the peers whose binaries
// are in the cache; building Prometheus takes minutes on a small machine,
// too long for every CI run. A peer that is not there is a skipped subtest
// (TestQuick/prometheus, TestQuick/victoriametrics) whose message is the
// command that builds it, so the output says which comparison did not run
// and how to get it. Set TIDEMARK_BENCH_BUILD_PEERS=1 to build missing
// peers here instead.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("the quick benchmark runs servers for about two minutes")
	}
	opts := options{
		mode:       modes["quick"],
		systems:    []string{"tidemark"},
		repo:       "..",
		cacheDir:   defaultCacheDir(),
		buildPeers: os.Getenv("TIDEMARK_BENCH_BUILD_PEERS") == "1",
		workDir:    t.TempDir(),
		logf:       t.Logf,
	}
	for _, p := range quickPeers(t, opts) {
		if p.missing == "" {
			opts.systems = append(opts.systems, p.system)
			continue
		}
		t.Run(p.system, func(t *testing.T) { t.Skip(p.missing) })
	}

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	report, err := run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + report)
	if !strings.Contains(report, "| ingest | samples/s |") {
		t.Fatalf("the report has no ingest row:\n%s", report)
	}
}

// quickPeer is a peer system of TestQuick and, when its binary is not in
// the cache, why it is not measured and how to build it.
type quickPeer struct {
	system, missing string
}

func quickPeers(t *testing.T, opts options) []quickPeer {
	t.Helper()
	if err := os.MkdirAll(opts.cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bins := binaries{repo: opts.repo, cacheDir: opts.cacheDir, buildPeers: opts.buildPeers, logf: opts.logf}
	version, err := prometheusVersion()
	if err != nil {
		t.Fatal(err)
	}
	var peers []quickPeer
	for _, p := range []struct {
		system, name string
		locate       func() (string, error)
	}{
		{"prometheus", "Prometheus " + version, func() (string, error) { return bins.prometheus(version) }},
		{"victoriametrics", "VictoriaMetrics " + victoriaMetricsVersion, bins.victoriaMetrics},
	} {
		bin, err := p.locate()
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		peer := quickPeer{system: p.system}
		if bin == "" {
			peer.missing = fmt.Sprintf("%s not measured: no binary in %s. Build it once with `cd bench && go run . -mode=quick -systems=%s -out=` "+
				"(or run this test with TIDEMARK_BENCH_BUILD_PEERS=1)", p.name, opts.cacheDir, p.system)
		}
		peers = append(peers, peer)
	}
	return peers
}

func TestRedSeries(t *testing.T) {
	set := redSeries(10_000, true)
	if got := set.len(); got != 10_000+16 {
		t.Fatalf("series: got %d, want %d", got, 10_000+16)
	}
	seen := map[string]bool{}
	for i, ls := range set.labels {
		if ls[0].Name != "__name__" {
			t.Fatalf("series %d: first label %q, want __name__", i, ls[0].Name)
		}
		if !slices.IsSortedFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }) {
			t.Fatalf("series %d: labels not sorted: %v", i, ls)
		}
		k := seriesSelector(ls)
		if seen[k] {
			t.Fatalf("series %d is a duplicate: %s", i, k)
		}
		seen[k] = true
	}
	// Buckets of an endpoint are cumulative.
	for le := 1; le < len(buckets); le++ {
		if set.inc[3+le] < set.inc[3+le-1] {
			t.Fatalf("bucket %s grows slower than %s", buckets[le], buckets[le-1])
		}
	}
}

func TestTimeline(t *testing.T) {
	end := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ts := newTimeline(end, time.Hour, time.Minute, 10*time.Minute, 15*time.Second)
	if got, want := len(ts), 50+41; got != want {
		t.Fatalf("scrapes: got %d, want %d", got, want)
	}
	if !slices.IsSorted(ts) || ts[0] != end.Add(-time.Hour).UnixMilli() || ts[len(ts)-1] != end.UnixMilli() {
		t.Fatalf("timeline %d..%d is not the hour up to %d in order", ts[0], ts[len(ts)-1], end.UnixMilli())
	}
}

func TestPercentileAndFormat(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(ds, 50); p != 50*time.Millisecond {
		t.Fatalf("p50: %s", p)
	}
	if p := percentile(ds, 99); p != 99*time.Millisecond {
		t.Fatalf("p99: %s", p)
	}
	for v, want := range map[float64]string{1234567: "1,234,567", 123.4: "123", 12.34: "12.3", 1.234: "1.23", 0.01234: "0.0123"} {
		if got := format(v); got != want {
			t.Fatalf("format(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestResultsTable(t *testing.T) {
	r := &results{}
	r.set("ingest", "samples/s", false, "Tidemark", 200)
	r.set("ingest", "samples/s", false, "Prometheus", 100)
	got := r.table([]string{"Tidemark", "Prometheus"})
	want := "| ingest | samples/s | higher | 200 | 100 | 2.00 |"
	if !strings.Contains(got, want) {
		t.Fatalf("table:\n%s\nwant a row %s", got, want)
	}
}

// TestResultPath checks that a later run of the same day and mode gets a
// table of its own instead of overwriting the first.
func TestResultPath(t *testing.T) {
	dir := t.TempDir()
	want := []string{"2026-12-01-full.md", "2026-12-01-full-2.md", "2026-12-01-full-3.md"}
	for _, w := range want {
		path := resultPath(dir, "2026-12-01-full")
		if path != filepath.Join(dir, w) {
			t.Fatalf("resultPath = %s, want %s", path, filepath.Join(dir, w))
		}
		if err := os.WriteFile(path, []byte("table"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := resultPath(dir, "2026-12-01-quick"); got != filepath.Join(dir, "2026-12-01-quick.md") {
		t.Fatalf("another mode: resultPath = %s", got)
	}
}
