package impact

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/impact/scenario"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// harness is a state database, an embedded storage, the event writer and
// an impact service over them, with the impact service's clock in the
// test's hands.
type harness struct {
	t       testing.TB
	dir     string
	db      *state.DB
	backend *storage.Embedded
	events  *events.Service
	engine  *promql.Engine
	svc     *Service
	reg     *prometheus.Registry
	now     atomic.Int64 // ms
}

func newHarness(t testing.TB) *harness {
	h := &harness{t: t, dir: t.TempDir()}
	db, err := state.Open(filepath.Join(h.dir, "state.db"))
	require.NoError(t, err)
	h.db = db
	require.NoError(t, db.EnsureOrg(context.Background(), "acme"))
	h.backend = storage.NewEmbedded(slog.New(slog.DiscardHandler), nil, storage.EmbeddedOptions{
		Dir: filepath.Join(h.dir, "tsdb"), Retention: 30 * 24 * time.Hour, OutOfOrderWindow: 7 * 24 * time.Hour,
	})
	require.NoError(t, h.backend.Open(context.Background()))
	h.events = events.NewService(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), db, h.backend, events.Options{Impacts: db})
	require.NoError(t, h.events.Recover(context.Background()))
	go h.events.Run()
	h.engine = promql.NewEngine(promql.EngineOpts{MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	h.now.Store(time.Now().UnixMilli())
	h.newService()
	t.Cleanup(func() {
		h.svc.Stop()
		h.events.Stop()
		h.backend.Close()
		h.db.Close()
	})
	return h
}

// newService replaces the impact service by a new one, as a restart does.
func (h *harness) newService() {
	if h.svc != nil {
		h.svc.Stop()
	}
	h.reg = prometheus.NewRegistry()
	h.svc = New(slog.New(slog.DiscardHandler), h.reg, Options{
		Store:   h.db,
		Backend: h.backend,
		Scorer:  NewScorer(h.engine, storage.Routed{Backend: h.backend}),
		Now:     func() time.Time { return time.UnixMilli(h.now.Load()) },
	})
	h.svc.StartOrg("acme")
}

func (h *harness) setNow(t time.Time) { h.now.Store(t.UnixMilli()) }

// writeSeries appends generated series to org's storage.
func (h *harness) writeSeries(org string, series []scenario.Series) {
	st, err := h.backend.Org(org)
	require.NoError(h.t, err)
	app := st.AppenderV2(context.Background())
	for _, s := range series {
		for _, p := range s.Samples {
			_, err := app.Append(0, s.Labels, 0, p.T, p.V, nil, nil, promstorage.AOptions{})
			require.NoError(h.t, err)
		}
	}
	require.NoError(h.t, app.Commit())
}

// writeEvents writes events through the event writer.
func (h *harness) writeEvents(org string, evs any) {
	body, err := json.Marshal(evs)
	require.NoError(h.t, err)
	dec, err := events.Decode(body, time.Now(), events.DefaultLimits)
	require.NoError(h.t, err)
	_, err = h.events.Write(context.Background(), org, dec)
	require.NoError(h.t, err)
}

// impacts are the listed events' impacts by id (nil: not scored).
func (h *harness) impacts(org string) map[string]*events.Impact {
	res, err := h.events.List(context.Background(), events.ListQuery{Org: org, Start: 0, End: time.Now().Add(time.Hour).UnixMilli(), Limit: 1000})
	require.NoError(h.t, err)
	out := map[string]*events.Impact{}
	for _, e := range res.Events {
		out[e.ID] = e.Impact
	}
	return out
}

// query evaluates an instant query over org at ts, each result as
// "labels value", sorted.
func (h *harness) query(org, q string, ts time.Time) []string {
	qry, err := h.engine.NewInstantQuery(storage.WithOrg(context.Background(), org), storage.Routed{Backend: h.backend}, nil, q, ts)
	require.NoError(h.t, err)
	defer qry.Close()
	res := qry.Exec(storage.WithOrg(context.Background(), org))
	require.NoError(h.t, res.Err)
	var out []string
	for _, s := range res.Value.(promql.Vector) {
		out = append(out, s.Metric.String()+" "+strconv.FormatFloat(s.F, 'g', 4, 64))
	}
	sort.Strings(out)
	return out
}

func (h *harness) counter(name string, lbls ...string) float64 {
	mfs, err := h.reg.Gather()
	require.NoError(h.t, err)
	want := labels.FromStrings(lbls...)
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			b := labels.NewScratchBuilder(0)
			for _, lp := range m.GetLabel() {
				b.Add(lp.GetName(), lp.GetValue())
			}
			b.Sort()
			got := b.Labels()
			ok := true
			want.Range(func(l labels.Label) {
				if got.Get(l.Name) != l.Value {
					ok = false
				}
			})
			if ok {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}
