package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// run measures the systems of opts and returns the Markdown report. An
// error is the harness's (a system that fails to start, refuses a write
// or answers a query with an error), never a slow figure.
func run(ctx context.Context, opts options) (string, error) {
	began := time.Now()
	load0 := loadAvg()
	mc := opts.mode
	work := opts.workDir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "tidemark-bench-"); err != nil {
			return "", err
		}
		if !opts.keep {
			defer os.RemoveAll(work)
		}
	}
	if err := os.MkdirAll(filepath.Join(work, "bin"), 0o755); err != nil {
		return "", err
	}
	if err := os.MkdirAll(opts.cacheDir, 0o755); err != nil {
		return "", err
	}
	tcfg, pcfg, err := writeConfigs(work)
	if err != nil {
		return "", err
	}
	res := &results{}
	bins := binaries{repo: opts.repo, cacheDir: opts.cacheDir, buildPeers: opts.buildPeers, logf: opts.logf}

	var systems []*system
	for _, name := range opts.systems {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "tidemark":
			bin := opts.tidemarkBin
			if bin == "" {
				bin = filepath.Join(work, "bin", "tidemark")
				if err := bins.tidemark(bin); err != nil {
					return "", err
				}
			}
			// The per-token request limit is a guard for shared servers;
			// off, the figures are Tidemark's capacity.
			extra := serveFlags(bin, "--limits.token-requests-per-second=0")
			for _, f := range extra {
				res.note("Tidemark ran with `%s`.", f)
			}
			extra = append(extra, opts.tidemarkArgs...)
			var profile string
			if opts.cpuProfile != "" {
				if profile, err = filepath.Abs(opts.cpuProfile); err != nil {
					return "", err
				}
				extra = append(extra, "--debug.pprof")
				res.note("Tidemark ran with `--debug.pprof`; CPU profiles of 10 s each, back to back, and a heap profile after each, were fetched from it into %s.<pid>.<n> and .heap.<pid>.<n>.", opts.cpuProfile)
			}
			sys := tidemarkSystem(bin, tcfg, extra...)
			sys.env = opts.tidemarkEnv
			sys.profile = profile
			// Cold queries: the results cache off.
			sys.coldArgs = serveFlags(bin, "--query.results-cache.max-bytes=0")
			systems = append(systems, sys)
		case "prometheus":
			v, err := prometheusVersion()
			if err != nil {
				return "", err
			}
			bin, err := bins.prometheus(v)
			if err != nil {
				return "", err
			}
			if bin == "" {
				res.note("Prometheus %s was not measured: no binary in %s and building was off (run `go run . -mode=quick` once to build it).", v, opts.cacheDir)
				continue
			}
			systems = append(systems, prometheusSystem(bin, v, pcfg))
		case "victoriametrics":
			bin, err := bins.victoriaMetrics()
			if err != nil {
				return "", err
			}
			if bin == "" {
				res.note("VictoriaMetrics %s was not measured: no binary in %s and building was off (run `go run . -mode=quick` once to build it).", victoriaMetricsVersion, opts.cacheDir)
				continue
			}
			systems = append(systems, victoriaMetricsSystem(bin))
		default:
			return "", fmt.Errorf("system %q is not known: use tidemark, prometheus or victoriametrics", name)
		}
	}
	if len(opts.tidemarkArgs)+len(opts.tidemarkEnv) > 0 {
		res.note("Tidemark ran with flags %q and environment %q added.", opts.tidemarkArgs, opts.tidemarkEnv)
	}
	if len(systems) == 0 {
		return "", fmt.Errorf("no system to measure")
	}

	canary, err := os.ReadFile(filepath.Join(opts.repo, "cmd", "tidemark", "testdata", "stage-aware.promql"))
	if err != nil {
		return "", fmt.Errorf("read the stage-aware canary query: %w", err)
	}
	set := redSeries(mc.series, true)
	end := began.Truncate(time.Minute)
	times := newTimeline(end, mc.history, mc.histStep, mc.recent, mc.recentStep)
	// The canary stage is active through the second half of the recent part.
	stageFrom := end.Add(-mc.recent / 2).UnixMilli()
	ranges := []queryRange{
		{label: dur(mc.recent), start: end.Add(-mc.recent), end: end, step: mc.recentQueryStep, window: mc.recentQueryWindow, reps: mc.queryReps},
		{label: dur(mc.history), start: end.Add(-mc.history), end: end, step: mc.historyQueryStep, window: mc.historyQueryWindow, reps: mc.historyQueryReps},
	}
	counts := map[string]map[string]int{}
	for _, sys := range systems {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		opts.logf("%s: start", sys.name)
		c := map[string]int{}
		if err := measure(ctx, sys, filepath.Join(work, sys.name), opts, set, times, stageFrom, string(canary), ranges, res, c); err != nil {
			return "", err
		}
		counts[sys.name] = c
	}
	// The same queries must find the same series everywhere.
	for _, sys := range systems[1:] {
		for k, n := range counts[systems[0].name] {
			if m := counts[sys.name][k]; m != n {
				res.note("check: %s returned %d series, %s %d", k, n, sys.name, m)
			}
		}
	}
	return report(opts, systems, res, began, load0), nil
}

// measure runs every workload against one system.
func measure(ctx context.Context, sys *system, dir string, opts options, set *seriesSet, times timeline, stageFrom int64,
	canary string, ranges []queryRange, res *results, counts map[string]int) error {
	mc := opts.mode
	logPath := dir + ".log"
	p, err := start(sys, filepath.Join(dir, "data"), logPath)
	if err != nil {
		return err
	}
	ready, err := p.waitReady(time.Minute)
	if err != nil {
		p.stop()
		return err
	}
	res.set("start", "empty data directory to /-/ready (s)", true, sys.name, ready.Seconds())
	opts.logf("%s: ingest %d series x %d scrapes", sys.name, set.len(), len(times))
	if err := ingest(ctx, p, mc, set, times, stageFrom, res); err != nil {
		p.stop()
		return err
	}
	opts.logf("%s: queries, caches off", sys.name)
	if err := queries(ctx, p, canary, ranges, res, counts, "cold"); err != nil {
		p.stop()
		return err
	}
	mem, err := procMemory(p.pid())
	if err != nil {
		p.stop()
		return err
	}
	last := ranges[len(ranges)-1]
	res.set("query "+last.label+", cold", "RSS after the "+last.label+" query set (MiB)", true, sys.name, float64(mem.RSS)/(1<<20))
	opts.logf("%s: change events", sys.name)
	if err := changeEvents(ctx, p, mc, res); err != nil {
		p.stop()
		return err
	}
	if err := p.stop(); err != nil {
		return err
	}
	// The same data, the system started again with its caches on, and
	// each query repeated as a dashboard refreshing does.
	opts.logf("%s: queries, caches on", sys.name)
	if p, err = startCached(sys, filepath.Join(dir, "data"), logPath); err != nil {
		return err
	}
	if _, err := p.waitReady(5 * time.Minute); err != nil {
		p.stop()
		return err
	}
	// The dashboard is measured in the steady state: whatever a start
	// still does after it is ready is the restart's figure, not a query's.
	if _, err := settle(p.pid(), time.Minute); err != nil {
		p.stop()
		return err
	}
	if err := queries(ctx, p, canary, ranges, res, counts, "repeated dashboard"); err != nil {
		p.stop()
		return err
	}
	if err := p.stop(); err != nil {
		return err
	}
	if !opts.keep {
		// With -keep the data stays for profiling queries by hand.
		if err := os.RemoveAll(filepath.Join(dir, "data")); err != nil {
			return err
		}
	}
	opts.logf("%s: restart with %d series", sys.name, mc.restartSeries)
	if err := restartAfterWAL(ctx, sys, filepath.Join(dir, "restart"), logPath, mc, res); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(dir, "restart"))
}

func report(opts options, systems []*system, res *results, began time.Time, load0 [3]float64) string {
	var b strings.Builder
	mc := opts.mode
	fmt.Fprintf(&b, "# Tidemark vs Prometheus vs VictoriaMetrics: %s mode, %s\n\n", mc.name, began.UTC().Format("2006-01-02 15:04 MST"))
	var names []string
	for _, s := range systems {
		names = append(names, fmt.Sprintf("%s %s", s.name, s.version))
	}
	load1 := loadAvg()
	fmt.Fprintf(&b, "- Systems: %s, one at a time, each on a fresh data directory and a loopback port.\n", strings.Join(names, ", "))
	fmt.Fprintf(&b, "- Machine: %s, %d cores, %s memory, %s, %s/%s. Load average (1m, 5m, 15m) before the run: %.2f %.2f %.2f; after: %.2f %.2f %.2f.\n",
		cpuModel(), runtime.NumCPU(), memTotal(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		load0[0], load0[1], load0[2], load1[0], load1[1], load1[2])
	if load0[0] > 0.5 {
		fmt.Fprintf(&b, "- **Measured on a loaded machine**: other work was running before the run started (load %.2f on %d cores), and the load generator shares the machine. Absolute figures are low and noisy; the ratios are the more telling part.\n", load0[0], runtime.NumCPU())
	}
	if opts.note != "" {
		fmt.Fprintf(&b, "- %s\n", opts.note)
	}
	fmt.Fprintf(&b, "- Wall-clock time of the run: %s.\n\n", time.Since(began).Round(time.Second))
	var cols []string
	for _, s := range systems {
		cols = append(cols, s.name)
	}
	b.WriteString(res.table(cols))
	b.WriteString("\nRatios are Tidemark's figure divided by the peer's: below 1 is better for Tidemark where lower is better, above 1 where higher is better.\n\n")
	for _, n := range res.notes {
		b.WriteString("- " + n + "\n")
	}
	return b.String()
}

// dur prints whole hours as hours ("24h", not "1d").
func dur(d time.Duration) string {
	if d >= time.Hour && d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return model.Duration(d).String()
}

func loadAvg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return fmt.Sprintf("%.0f GiB", kb/(1<<20))
		}
	}
	return "unknown"
}
