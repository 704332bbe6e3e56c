// Command bench measures Tidemark side by side with Prometheus and
// VictoriaMetrics on the same machine, in one run, on the same work: it
// builds or locates the three, starts each in turn on a fresh data
// directory and a loopback port, drives the same workloads at it, and
// prints one Markdown table with each figure per system and the ratio of
// Tidemark's to each peer's.
//
//	go run . -mode=quick   # about two minutes; CI runs it as TestQuick
//	go run . -mode=full    # by hand; 100k series, 24h of data, 1M-series restart
//
// The table is saved to results/<date>-<mode>.md (-2, -3, ... for later
// runs of the day).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// modeConfig sizes a run.
type modeConfig struct {
	name string
	// series is the number of active series ingested.
	series int
	// The data: history at histStep, then the last recent at recentStep.
	history, histStep, recent, recentStep time.Duration
	// Query ranges: the recent part and the whole history.
	recentQueryStep, historyQueryStep     time.Duration
	recentQueryWindow, historyQueryWindow string
	// queryReps and historyQueryReps are the runs of each query over the
	// recent range and over the whole history.
	queryReps, historyQueryReps int
	// shards is the number of concurrent remote-write senders.
	shards int
	// Change events.
	eventsSingle, eventClients, eventBatches, eventsVisible, visibleProbes int
	// restartSeries is the number of series in the WAL at the restart.
	restartSeries int
}

var modes = map[string]modeConfig{
	"quick": {
		name: "quick", series: 10_000,
		history: time.Hour, histStep: time.Minute, recent: 10 * time.Minute, recentStep: 15 * time.Second,
		recentQueryStep: 15 * time.Second, recentQueryWindow: "1m",
		historyQueryStep: time.Minute, historyQueryWindow: "5m",
		queryReps: 5, historyQueryReps: 5, shards: 4,
		eventsSingle: 500, eventClients: 32, eventBatches: 5, eventsVisible: 20, visibleProbes: 10,
		restartSeries: 50_000,
	},
	"full": {
		name: "full", series: 100_000,
		history: 24 * time.Hour, histStep: 2 * time.Minute, recent: time.Hour, recentStep: 15 * time.Second,
		recentQueryStep: 15 * time.Second, recentQueryWindow: "1m",
		historyQueryStep: 5 * time.Minute, historyQueryWindow: "10m",
		queryReps: 20, historyQueryReps: 10, shards: 4,
		eventsSingle: 5000, eventClients: 32, eventBatches: 50, eventsVisible: 200, visibleProbes: 20,
		restartSeries: 1_000_000,
	},
}

// options is one run of the harness.
type options struct {
	mode modeConfig
	// systems to measure, by lower-case name.
	systems []string
	// repo is the Tidemark source tree; cacheDir keeps the peers' binaries.
	repo, cacheDir string
	// buildPeers builds a missing peer binary into cacheDir.
	buildPeers bool
	// tidemarkBin is a prebuilt tidemark binary ("" builds the tree's).
	tidemarkBin string
	// cpuProfile, when set, is where CPU profiles of Tidemark (run with
	// --debug.pprof) are written: <cpuProfile>.<pid>.<n>.
	cpuProfile string
	// tidemarkArgs and tidemarkEnv are added to Tidemark's flags and
	// environment, to compare settings.
	tidemarkArgs, tidemarkEnv []string
	// workDir holds the data directories and logs ("" makes a temporary
	// one, removed at the end unless keep).
	workDir string
	keep    bool
	note    string
	logf    func(format string, args ...any)
}

func main() {
	var (
		mode     = flag.String("mode", "quick", "quick (about two minutes) or full (by hand)")
		systems  = flag.String("systems", "tidemark,prometheus,victoriametrics", "systems to measure, comma-separated")
		repo     = flag.String("repo", "..", "Tidemark source tree")
		cacheDir = flag.String("cache", defaultCacheDir(), "directory that keeps the built peer binaries")
		build    = flag.Bool("build-peers", true, "build a missing peer binary into -cache")
		tidemark = flag.String("tidemark", "", "prebuilt tidemark binary (default: build the tree's)")
		prof     = flag.String("tidemark-cpuprofile", "", "fetch CPU and heap profiles of Tidemark (run with --debug.pprof) into this file prefix: <prefix>.<pid>.<n>, <prefix>.heap.<pid>.<n>")
		tArgs    = flag.String("tidemark-args", "", "further flags for tidemark serve, space-separated")
		tEnv     = flag.String("tidemark-env", "", "further environment for Tidemark, e.g. GOGC=75, space-separated")
		out      = flag.String("out", "results", "directory the table is saved to (empty: not saved)")
		workDir  = flag.String("workdir", "", "directory for data and logs (default: a temporary one)")
		keep     = flag.Bool("keep", false, "keep the work directory, with each system's data after its queries")
		note     = flag.String("note", "", "a line to add to the results, e.g. about the machine's load")
		series   = flag.Int("series", 0, "override the number of active series")
		restartN = flag.Int("restart-series", 0, "override the number of series in the WAL at the restart")
	)
	flag.Parse()
	mc, ok := modes[*mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "bench: -mode %q is not accepted: use quick or full\n", *mode)
		os.Exit(2)
	}
	if *series > 0 {
		mc.series = *series
	}
	if *restartN > 0 {
		mc.restartSeries = *restartN
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := run(ctx, options{
		mode: mc, systems: strings.Split(*systems, ","), repo: *repo, cacheDir: *cacheDir, buildPeers: *build,
		tidemarkBin: *tidemark, cpuProfile: *prof, tidemarkArgs: strings.Fields(*tArgs), tidemarkEnv: strings.Fields(*tEnv), workDir: *workDir, keep: *keep, note: *note,
		logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	fmt.Print(report)
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
		path := resultPath(*out, time.Now().UTC().Format("2006-01-02")+"-"+mc.name)
		if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "saved %s\n", path)
	}
}

// resultPath is where a table named base is saved in dir: base.md, or for
// a later run of the same day and mode base-2.md, base-3.md, ..., so that
// no run overwrites another.
func resultPath(dir, base string) string {
	path := filepath.Join(dir, base+".md")
	for n := 2; ; n++ {
		if _, err := os.Stat(path); err != nil {
			return path // Free, or an error that writing it will report.
		}
		path = filepath.Join(dir, base+"-"+strconv.Itoa(n)+".md")
	}
}

func defaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "tidemark-bench")
}
