package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tidemark/tidemark/config"
	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
	"github.com/tidemark/tidemark/web"
)

// profiledCommand makes the harness's binary serve Tidemark itself, with a
// CPU profile of the whole process: the server does not expose
// /debug/pprof, and a profile of the real binary needs no change to it.
// The wiring is `tidemark serve`'s with its default flags (see
// cmd/tidemark/serve.go) but without the rule manager, which has no rules
// to run here, and without the per-token request limit; only the flags the
// harness passes are accepted. Keep it in step with serve.go.
const profiledCommand = "profiled-tidemark"

func profiledSystem(self, profile, configFile string, extra ...string) *system {
	s := tidemarkSystem(self, configFile)
	s.name, s.version = "Tidemark", "this tree, in-process with a CPU profile"
	s.argv = func(dir, addr string) []string {
		return append([]string{profiledCommand, "--cpuprofile=" + profile, "--web.listen-address=" + addr, "--storage.path=" + dir, "--config.file=" + configFile}, extra...)
	}
	return s
}

func runProfiled(args []string) int {
	fs := flag.NewFlagSet(profiledCommand, flag.ContinueOnError)
	listen := fs.String("web.listen-address", "127.0.0.1:9470", "")
	dir := fs.String("storage.path", "./data", "")
	cfgFile := fs.String("config.file", "", "")
	profile := fs.String("cpuprofile", "", "")
	maxSeries := fs.Uint64("limits.max-series-per-org", 2_000_000, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *profile != "" {
		// Appended: the harness starts Tidemark more than once (restart).
		path := fmt.Sprintf("%s.%d", *profile, os.Getpid())
		f, err := os.Create(path)
		if err != nil {
			logger.Error("create profile", "err", err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			logger.Error("start profile", "err", err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if err := serveProfiled(logger, *listen, *dir, *cfgFile, *maxSeries); err != nil {
		logger.Error("tidemark stopped", "err", err)
		return 1
	}
	return 0
}

func serveProfiled(logger *slog.Logger, listen, dir, cfgFile string, maxSeries uint64) error {
	ctx := context.Background()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	db, err := state.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	if cfgFile != "" {
		cfg, err := config.Load(cfgFile)
		if err != nil {
			return err
		}
		orgs, toks := cfg.StateTokens()
		if err := db.SyncConfig(ctx, orgs, toks); err != nil {
			return err
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	backend := storage.NewLimited(storage.NewEmbedded(logger, reg, storage.EmbeddedOptions{
		Dir: filepath.Join(dir, "tsdb"), Retention: 15 * 24 * time.Hour, OutOfOrderWindow: events.DefaultLimits.Backfill,
	}), reg, storage.LimitOptions{MaxSeriesPerOrg: maxSeries})
	defer backend.Close()
	evs := events.NewService(logger, reg, db, backend, events.Options{
		ActiveResolution: 15 * time.Second, MaxDuration: 24 * time.Hour, Limits: events.DefaultLimits,
	})
	handler := web.New(logger, reg, web.Options{
		MaxRequestBytes: 32 << 20, QueryTimeout: 2 * time.Minute, LookbackDelta: 5 * time.Minute, MaxSamples: 50_000_000,
		State: db, Backend: backend, Events: evs, Gatherer: reg,
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if err := evs.Recover(ctx); err != nil {
		return err
	}
	handler.SetReady()
	go evs.Run()
	term := make(chan os.Signal, 1)
	signal.Notify(term, os.Interrupt, syscall.SIGTERM)
	select {
	case <-term:
	case err := <-served:
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	evs.Stop()
	return nil
}
