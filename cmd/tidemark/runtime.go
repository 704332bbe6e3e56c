package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/alecthomas/kingpin/v2"
)

// defaultGOGC is the garbage collector's target when GOGC is not set, as
// Prometheus's: the heap of a TSDB is mostly long-lived (the head's series
// and chunks), and collecting at 75% growth instead of 100% keeps the peak
// lower for no measurable CPU (README, Operations, has the figures).
const defaultGOGC = 75

// runtimeFlags are the Go runtime's memory settings of `tidemark serve`.
type runtimeFlags struct {
	memlimit      bool
	memlimitRatio float64
}

func (r *runtimeFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("auto-gomemlimit", "Set GOMEMLIMIT to --auto-gomemlimit.ratio of the container's (cgroup) memory limit, or of the machine's memory when there is none, so that the heap is collected harder before it meets the limit. GOMEMLIMIT in the environment wins.").
		Default("true").BoolVar(&r.memlimit)
	cmd.Flag("auto-gomemlimit.ratio", "The share of the memory limit GOMEMLIMIT is set to, in (0, 1].").
		Default("0.9").Float64Var(&r.memlimitRatio)
}

// apply sets GOGC (unless the environment does) and GOMEMLIMIT.
func (r *runtimeFlags) apply(logger *slog.Logger) error {
	if r.memlimitRatio <= 0 || r.memlimitRatio > 1 {
		return fmt.Errorf("--auto-gomemlimit.ratio %g is not accepted: use a number greater than 0 and at most 1", r.memlimitRatio)
	}
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(defaultGOGC)
		// As Prometheus does, so that /api/v1/status/runtimeinfo shows it.
		os.Setenv("GOGC", strconv.Itoa(defaultGOGC))
	}
	if !r.memlimit {
		return nil
	}
	limit, err := memlimit.Set(
		memlimit.WithRatio(r.memlimitRatio),
		memlimit.WithProvider(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.FromSystem)),
		memlimit.WithLogger(logger.With("component", "automemlimit")),
	)
	if err != nil {
		logger.Warn("could not set GOMEMLIMIT from the memory limit", "err", err)
		return nil
	}
	logger.Info("memory settings", "GOGC", os.Getenv("GOGC"), "GOMEMLIMIT", limit)
	return nil
}
