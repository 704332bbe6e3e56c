package web

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/alerting"
	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/query"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// testStack is the whole server in process: state, storage, events, HTTP.
type testStack struct {
	url     string
	handler *Handler
	rules   *alerting.Manager
	tokens  map[string]map[state.Scope]string // org -> scope -> token
	events  *events.Service
}

var testOrgs = []string{"acme", "globex"}

// stackConfig adjusts a test stack.
type stackConfig struct {
	web    func(*Options)
	limits storage.LimitOptions
	// wrap wraps the embedded storage (inside the limits), e.g. to inject faults.
	wrap func(storage.Backend) storage.Backend
	// rules puts a rules manager behind /api/v1/rules and /api/v1/alerts.
	rules bool
}

func newTestStack(t testing.TB, configure ...func(*stackConfig)) *testStack {
	var cfg stackConfig
	for _, c := range configure {
		c(&cfg)
	}
	dir := t.TempDir()
	db, err := state.Open(filepath.Join(dir, "state.db"))
	require.NoError(t, err)
	ctx := context.Background()
	st := &testStack{tokens: map[string]map[state.Scope]string{}}
	for _, org := range testOrgs {
		require.NoError(t, db.CreateOrg(ctx, org))
		st.tokens[org] = map[state.Scope]string{}
		for _, sc := range []state.Scope{state.ScopeRead, state.ScopeWrite, state.ScopeAdmin} {
			tok := state.NewToken()
			require.NoError(t, db.AddToken(ctx, org, sc, org+"-"+string(sc), state.SourceCLI, tok))
			st.tokens[org][sc] = tok
		}
	}
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	embedded := storage.NewEmbedded(logger, reg, storage.EmbeddedOptions{Dir: filepath.Join(dir, "tsdb"), Retention: 24 * time.Hour, OutOfOrderWindow: 7 * 24 * time.Hour})
	var inner storage.Backend = embedded
	if cfg.wrap != nil {
		inner = cfg.wrap(embedded)
	}
	backend := query.WatchAppends(storage.NewLimited(inner, reg, cfg.limits))
	st.events = events.NewService(logger, reg, db, backend, events.Options{})
	require.NoError(t, st.events.Recover(ctx))
	go st.events.Run()
	opts := Options{
		Version: "test", MaxRequestBytes: 1 << 20, QueryTimeout: time.Minute, LookbackDelta: 5 * time.Minute, MaxSamples: 1e7,
		State: db, Backend: backend, Events: st.events, Gatherer: reg,
		Query: QueryOptions{Shards: 2, ResultsCacheMaxBytes: 16 << 20},
	}
	if cfg.rules {
		am, err := alerting.New(logger, reg, alerting.Options{
			Store: db, Backend: backend, Events: st.events,
			EvaluationInterval: time.Second, SyncInterval: time.Hour,
			QueryTimeout: time.Minute, LookbackDelta: 5 * time.Minute, MaxSamples: 1e7,
		})
		require.NoError(t, err)
		opts.Rules = am.Retriever
		st.rules = am
	}
	if cfg.web != nil {
		cfg.web(&opts)
	}
	h := New(logger, reg, opts)
	h.SetReady()
	st.handler = h
	srv := httptest.NewServer(h)
	st.url = srv.URL
	t.Cleanup(func() {
		srv.Close()
		if st.rules != nil {
			st.rules.Stop()
		}
		st.events.Stop()
		backend.Close()
		db.Close()
	})
	return st
}
