package server

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"

	"github.com/tidemark/tidemark/impact"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// newImpact builds the impact scorer: its queries run on the remote
// engine when there is one (engine), else on an engine of its own over the
// storage; its settings come from the config file.
func newImpact(logger *slog.Logger, reg prometheus.Registerer, opts Options, db *state.DB, backend storage.Backend, engine promql.QueryEngine) *impact.Service {
	if engine == nil {
		// It registers no metrics: the query API's engine has them under
		// the same names.
		engine = promql.NewEngine(promql.EngineOpts{
			Logger:               logger.With("component", "impact query engine"),
			MaxSamples:           opts.MaxSamples,
			Timeout:              opts.QueryTimeout,
			LookbackDelta:        opts.LookbackDelta,
			EnableAtModifier:     true,
			EnableNegativeOffset: true,
		})
	}
	settings := impact.DefaultSettings()
	settingsOf := func(string) *impact.Settings { return &settings }
	if opts.Config != nil {
		settingsOf = opts.Config.ImpactSettings
	}
	return impact.New(logger.With("component", "impact"), reg, impact.Options{
		Store:    db,
		Backend:  backend,
		Scorer:   impact.NewScorer(engine, storage.Routed{Backend: backend}),
		Settings: settingsOf,
		// Events older than the backfill window are refused: a day more
		// covers a process that was down for a day.
		Horizon: opts.Events.Limits.Backfill + 24*time.Hour,
	})
}
