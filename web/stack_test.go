package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/alerting"
	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/config"
	"github.com/tidemark/tidemark/server"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/web"
)

// testStack is the whole server in process, built by server.New as
// `tidemark serve` builds it, on a loopback port.
type testStack struct {
	url     string
	handler http.Handler
	rules   *alerting.Manager
	tokens  map[string]map[state.Scope]string // org -> scope -> token
}

var testOrgs = []string{"acme", "globex"}

// stackConfig adjusts a test stack's options before it is built.
type stackConfig func(*server.Options)

func newTestStack(t testing.TB, configure ...stackConfig) *testStack {
	opts := server.DefaultOptions()
	opts.Version = "test"
	opts.ListenAddress = "127.0.0.1:0"
	opts.StoragePath = t.TempDir()
	opts.MaxRequestBytes = 1 << 20
	opts.Retention = 24 * time.Hour
	opts.OutOfOrderWindow = 7 * 24 * time.Hour
	opts.QueryTimeout = time.Minute
	opts.MaxSamples = 1e7
	opts.TokenRequestsPerSecond = 0
	opts.ShutdownTimeout = 5 * time.Second
	// Every query goes through the split, sharded and cached path.
	opts.Query = web.QueryOptions{Parallelism: 2, Shards: 2, ResultsCacheMaxBytes: 16 << 20}

	st := &testStack{tokens: map[string]map[state.Scope]string{}}
	cfg := &config.Config{Alerting: config.DefaultAlerting()}
	// Rules are evaluated every second; tests sync rule groups themselves.
	cfg.Alerting.EvaluationInterval = model.Duration(time.Second)
	cfg.Alerting.SyncInterval = model.Duration(time.Hour)
	for _, org := range testOrgs {
		o := config.Organization{Slug: org}
		st.tokens[org] = map[state.Scope]string{}
		for _, sc := range []state.Scope{state.ScopeRead, state.ScopeWrite, state.ScopeAdmin} {
			tok := state.NewToken()
			o.Tokens = append(o.Tokens, config.Token{Name: org + "-" + string(sc), Scope: string(sc), Value: tok})
			st.tokens[org][sc] = tok
		}
		cfg.Organizations = append(cfg.Organizations, o)
	}
	opts.Config = cfg
	for _, c := range configure {
		c(&opts)
	}

	srv, err := server.New(stackLogger(), prometheus.NewRegistry(), opts)
	require.NoError(t, err)
	st.url = "http://" + srv.Addr().String()
	st.handler = srv.Handler()
	st.rules = srv.Rules()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("server stopped before it was ready: %v", err)
	}
	return st
}

// stackLogger discards the server's log, unless TIDEMARK_TEST_LOG is set
// (to debug, info, warn or error): then it goes to stderr at that level.
func stackLogger() *slog.Logger {
	lvl, ok := os.LookupEnv("TIDEMARK_TEST_LOG")
	if !ok {
		return slog.New(slog.DiscardHandler)
	}
	var l slog.Level
	l.UnmarshalText([]byte(lvl))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// listEvents lists one page of an organization's events, newest first, as
// a client of the server does.
func listEvents(t testing.TB, st *testStack, org string, q client.ListQuery) []client.Logged {
	t.Helper()
	c, err := client.New(client.Options{URL: st.url, Org: org, Token: st.tokens[org][state.ScopeRead]})
	require.NoError(t, err)
	res, err := c.List(context.Background(), q)
	require.NoError(t, err)
	return res.Events
}
