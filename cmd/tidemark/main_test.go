package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/internal/testservices"
	"github.com/tidemark/tidemark/internal/testutil"
)

const (
	acmeRead  = "acme-read-token-0123456789"
	acmeWrite = "acme-write-token-0123456789"
)

func writeConfig(t *testing.T, dir string) string {
	require.NoError(t, os.WriteFile(filepath.Join(dir, "write-token"), []byte(acmeWrite+"\n"), 0o600))
	p := filepath.Join(dir, "tidemark.yml")
	require.NoError(t, os.WriteFile(p, []byte(`
organizations:
  - slug: acme
    tokens:
      - {name: grafana, scope: read, value: `+acmeRead+`}
      - {name: prometheus, scope: write, value_file: write-token}
  - slug: healthy
    tokens:
      - {name: admin, scope: admin, value: healthy-admin-token-0123}
  - slug: degraded
    tokens:
      - {name: admin, scope: admin, value: degraded-admin-token-012}
`), 0o644))
	return p
}

// promClient is client_golang's API client, the one Argo Rollouts uses.
func promClient(t testing.TB, base, token string) promv1.API {
	c, err := api.NewClient(api.Config{
		Address:      base,
		RoundTripper: config.NewAuthorizationCredentialsRoundTripper("Bearer", config.NewInlineSecret(token), api.DefaultRoundTripper),
	})
	require.NoError(t, err)
	return promv1.NewAPI(c)
}

func instant(t testing.TB, p promv1.API, q string, ts time.Time) model.Vector {
	v, _, _, err := p.Query(context.Background(), q, ts)
	require.NoError(t, err, "query %s", q)
	vec, ok := v.(model.Vector)
	require.True(t, ok, "query %s: %s is not a vector", q, v.Type())
	sort.Slice(vec, func(i, j int) bool { return vec[i].Metric.String() < vec[j].Metric.String() })
	return vec
}

// flaggerGet queries as Flagger does: a plain GET with no time parameter.
func flaggerGet(t testing.TB, base, token, q string) (int, map[string]any) {
	req, err := http.NewRequest("GET", base+"/api/v1/query?query="+url.QueryEscape(q), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

func TestServeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "--config.file="+writeConfig(t, dir))
	orgBase := srv.url + "/api/v4/organizations/acme/prometheus"
	now := time.Now().Truncate(time.Second)
	ms := now.UnixMilli()

	// Remote write 1.0 (bearer, organization base URL) and 2.0 (basic auth,
	// root base URL), with Prometheus's own client code.
	rw1 := testutil.WriteClient(t, orgBase+"/api/v1/write", acmeWrite, false, false)
	_, err := rw1.Store(context.Background(), testutil.EncodeV1(t, []testutil.Series{
		{Labels: labels.FromStrings("__name__", "http_requests_total", "job", "api", "code", "200"), Samples: []testutil.Sample{{T: ms - 30000, V: 10}, {T: ms, V: 40}}},
		{Labels: labels.FromStrings("__name__", "http_requests_total", "job", "api", "code", "500"), Samples: []testutil.Sample{{T: ms - 30000, V: 1}, {T: ms, V: 2}}},
	}), 0)
	require.NoError(t, err)
	rw2 := testutil.WriteClient(t, srv.url+"/api/v1/write", acmeWrite, true, true)
	_, err = rw2.Store(context.Background(), testutil.EncodeV2(t, []testutil.Series{
		{Labels: labels.FromStrings("__name__", "queue_depth", "queue", "emails"), Samples: []testutil.Sample{{T: ms, V: 7}}},
	}), 0)
	require.NoError(t, err)
	// OTLP/HTTP.
	resp := testutil.PostOTLP(t, orgBase+"/api/v1/otlp/v1/metrics", acmeWrite, testutil.OTLPGauge(t, "checkout", "cart_items", map[string]string{"region": "eu"}, now, 3))
	require.Equal(t, 200, resp.StatusCode)
	resp.Body.Close()

	// Read back with client_golang (POST form, as Argo Rollouts sends).
	for _, base := range []string{orgBase, srv.url} {
		p := promClient(t, base, acmeRead)
		vec := instant(t, p, `sum by (code) (http_requests_total)`, now)
		require.Equal(t, `[{code="200"} => 40 @[`+formatMs(ms)+`] {code="500"} => 2 @[`+formatMs(ms)+`]]`, strings.Join(strings.Fields(vecString(vec)), " "))
		vec = instant(t, p, `queue_depth`, now)
		require.Len(t, vec, 1)
		require.Equal(t, model.Metric{"__name__": "queue_depth", "queue": "emails"}, vec[0].Metric)
		require.Equal(t, model.SampleValue(7), vec[0].Value)
		vec = instant(t, p, `cart_items`, now)
		require.Len(t, vec, 1)
		require.Equal(t, model.LabelValue("eu"), vec[0].Metric["region"])
		require.Equal(t, model.LabelValue("checkout"), vec[0].Metric["job"])
		require.Equal(t, model.SampleValue(3), vec[0].Value)
		rng, _, _, err := p.QueryRange(context.Background(), `sum(rate(http_requests_total[1m]))`, promv1.Range{Start: now.Add(-time.Minute), End: now, Step: 15 * time.Second})
		require.NoError(t, err)
		require.Equal(t, model.ValMatrix, rng.Type())
		lvals, _, _, err := p.LabelValues(context.Background(), "code", nil, time.Time{}, time.Time{})
		require.NoError(t, err)
		require.Equal(t, model.LabelValues{"200", "500"}, lvals)
		series, _, _, err := p.Series(context.Background(), []string{`http_requests_total`}, now.Add(-time.Hour), now)
		require.NoError(t, err)
		require.Len(t, series, 2)
		bi, err := p.Buildinfo(context.Background())
		require.NoError(t, err)
		require.Equal(t, version, bi.Version)

		// A plain GET with no time, as Flagger sends: evaluated at now.
		code, body := flaggerGet(t, base, acmeRead, `sum(http_requests_total{code="200"})`)
		require.Equal(t, 200, code)
		require.Equal(t, "success", body["status"])
		res := body["data"].(map[string]any)["result"].([]any)
		require.Len(t, res, 1)
		require.Equal(t, "40", res[0].(map[string]any)["value"].([]any)[1])
		// Flagger's health check.
		code, body = flaggerGet(t, base, acmeRead, `vector(1)`)
		require.Equal(t, 200, code)
		require.Equal(t, "1", body["data"].(map[string]any)["result"].([]any)[0].(map[string]any)["value"].([]any)[1])

		// The seed's analysis query is not valid PromQL: Prometheus's error.
		_, _, _, err = p.Query(context.Background(), `sum(up) or 0.99`, now)
		var perr *promv1.Error
		require.ErrorAs(t, err, &perr)
		require.Equal(t, promv1.ErrBadData, perr.Type)
		require.Contains(t, perr.Msg, `set operator "or" not allowed in binary scalar expression`)
	}

	// A read token cannot write; a write token cannot read.
	_, err = testutil.WriteClient(t, orgBase+"/api/v1/write", acmeRead, false, false).Store(context.Background(), testutil.EncodeV1(t, []testutil.Series{
		{Labels: labels.FromStrings("__name__", "x"), Samples: []testutil.Sample{{T: ms, V: 1}}}}), 0)
	require.ErrorContains(t, err, "403")
	_, _, _, err = promClient(t, orgBase, acmeWrite).Query(context.Background(), "up", now)
	require.ErrorContains(t, err, "403")

	// The config declared organizations: no bootstrap token was made.
	_, err = os.Stat(filepath.Join(dir, "data", "bootstrap-token"))
	require.True(t, os.IsNotExist(err))

	// Data acknowledged before a clean stop is there after the next start.
	srv.restart()
	vec := instant(t, promClient(t, orgBase, acmeRead), `sum(http_requests_total) + sum(queue_depth) + sum(cart_items)`, now)
	require.Len(t, vec, 1)
	require.Equal(t, model.SampleValue(52), vec[0].Value)
	require.Contains(t, srv.log.String(), "level=INFO")
}

func formatMs(ms int64) string {
	return model.Time(ms).String()
}

func vecString(v model.Vector) string {
	var parts []string
	for _, s := range v {
		parts = append(parts, s.String())
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// TestFirstStartNoFlags: `tidemark serve` with no flags comes up on ./data
// and :9470 with organization default and an admin token in a 0600 file.
func TestFirstStartNoFlags(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", ":9470")
	require.NoError(t, err, "the default port 9470 must be free for this test")
	ln.Close()
	s := &binServer{t: t, dir: dir, addr: "127.0.0.1:9470", defaultAddr: true}
	s.start()
	t.Cleanup(func() { s.stop(syscall.SIGKILL) })

	fi, err := os.Stat(filepath.Join(dir, "data", "bootstrap-token"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.Contains(t, s.log.String(), "token_file=data/bootstrap-token")
	tok := s.bootstrapToken()
	require.NotContains(t, s.log.String(), tok, "the token itself is never logged")
	require.DirExists(t, filepath.Join(dir, "data"))

	code, body := flaggerGet(t, s.url, tok, "vector(1)")
	require.Equal(t, 200, code, "%v", body)
	req, _ := http.NewRequest("PUT", s.url+"/api/v4/organizations/default/change_events", strings.NewReader(`{"event_name":"first"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, "%s", b)

	// A second start keeps the organization and the token.
	s.restart()
	require.NotContains(t, s.log.String(), "first start")
	code, body = flaggerGet(t, s.url, tok, `count(change_events{event_name="first"})`)
	require.Equal(t, 200, code)
	require.Len(t, body["data"].(map[string]any)["result"], 1)
}

// TestAdminCommands: org and token creation on a running server's data
// directory, and the Last9 refresh-token exchange.
func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	data := filepath.Join(dir, "data")

	code, out := tidemark(t, nil, "org", "create", "initech", "--storage.path", data)
	require.Equal(t, 0, code, out)
	code, out = tidemark(t, nil, "org", "create", "initech", "--storage.path", data)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "already exists")
	code, out = tidemark(t, nil, "org", "create", "Not_Valid", "--storage.path", data)
	require.Equal(t, 1, code, out)
	tok := strings.TrimSpace(mustTidemark(t, "token", "create", "--org", "initech", "--scope", "read", "--name", "grafana", "--storage.path", data))
	require.True(t, strings.HasPrefix(tok, "tdm_"), tok)
	code, out = tidemark(t, nil, "token", "create", "--org", "nope", "--scope", "read", "--storage.path", data)
	require.Equal(t, 1, code, out)

	// The running server accepts the new token at once.
	code, body := flaggerGet(t, srv.url+"/api/v4/organizations/initech/prometheus", tok, "vector(1)")
	require.Equal(t, 200, code, "%v", body)

	// Names are unique per organization; without --name each is new.
	code, out = tidemark(t, nil, "token", "create", "--org", "initech", "--scope", "write", "--name", "grafana", "--storage.path", data)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, `has a token named "grafana"`)
	for range 2 {
		code, out = tidemark(t, nil, "token", "create", "--org", "initech", "--scope", "write", "--storage.path", data)
		require.Equal(t, 0, code, out)
		require.Contains(t, out, "created token cli-")
	}
	code, out = tidemark(t, nil, "org", "list", "--storage.path", data)
	require.Equal(t, 0, code, out)
	require.Equal(t, "default\ninitech\n", out)
	code, out = tidemark(t, nil, "token", "list", "--org", "initech", "--storage.path", data)
	require.Equal(t, 0, code, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out)
	require.Regexp(t, `^NAME +SCOPE +SOURCE +CREATED$`, lines[0])
	require.Regexp(t, `^cli-[0-9a-f]{8} +write +cli +\d{4}-`, lines[1])
	require.Regexp(t, `^grafana +read +cli +\d{4}-\d\d-\d\dT`, lines[3])
	require.NotContains(t, out, tok)
	require.NotContains(t, out, "tdm_")

	// Revoked: refused within the token cache's lifetime (10s).
	code, out = tidemark(t, nil, "token", "revoke", "--org", "initech", "grafana", "--storage.path", data)
	require.Equal(t, 0, code, out)
	code, out = tidemark(t, nil, "token", "revoke", "--org", "initech", "grafana", "--storage.path", data)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, `has no token named "grafana"`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _ = flaggerGet(t, srv.url+"/api/v4/organizations/initech/prometheus", tok, "vector(1)")
		if code == 401 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	require.Equal(t, 401, code, "a revoked token still works after 15s")
	tok = strings.TrimSpace(mustTidemark(t, "token", "create", "--org", "initech", "--scope", "read", "--name", "grafana", "--storage.path", data))

	resp, err := http.Post(srv.url+"/api/v4/oauth/access_token", "application/json", strings.NewReader(`{"refresh_token":"`+tok+`"}`))
	require.NoError(t, err)
	var at map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&at))
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, tok, at["access_token"])
	require.Equal(t, "Bearer", at["type"])
	require.Equal(t, []any{"read"}, at["scopes"])
	resp, err = http.Post(srv.url+"/api/v4/oauth/access_token", "application/json", strings.NewReader(`{"refresh_token":"nope"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 401, resp.StatusCode)
}

// mustTidemark runs the binary, requires exit status 0, and returns what it
// printed on standard output.
func mustTidemark(t *testing.T, args ...string) string {
	cmd := exec.Command(binary, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s", stderr.String())
	return string(out)
}

// TestReadyMeansQueryable: after a restart, /-/ready answers 200 only once
// every organization's storage is open, so the first query after ready
// does not wait for a WAL replay.
func TestReadyMeansQueryable(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "--config.file="+writeConfig(t, dir))
	require.NoError(t, testutil.RemoteWrite(t, srv.url+"/api/v1/write", acmeWrite, false, []testutil.Series{
		{Labels: labels.FromStrings("__name__", "ready_check"), Samples: []testutil.Sample{{T: time.Now().UnixMilli(), V: 1}}}}))
	srv.restart()
	require.Contains(t, srv.log.String(), `msg="opened organization storage" component=storage org=acme`)
	readyAt := strings.Index(srv.log.String(), "msg=ready")
	openedAt := strings.Index(srv.log.String(), `msg="opened organization storage" component=storage org=acme`)
	require.Greater(t, readyAt, openedAt, "ready was logged before the organization's storage was open:\n%s", srv.log)
}

// TestAdminCommandsPostgres: the same commands on a PostgreSQL state
// database, as replicas share it.
func TestAdminCommandsPostgres(t *testing.T) {
	pg := testservices.Postgres(t)
	dir := t.TempDir() // no SQLite database is made here
	run := func(args ...string) string {
		return mustTidemark(t, append(args, "--state.url", pg, "--storage.path", dir)...)
	}
	run("org", "create", "initech")
	require.Equal(t, "initech\n", run("org", "list"))
	tok := strings.TrimSpace(run("token", "create", "--org", "initech", "--scope", "admin", "--name", "ops"))
	require.True(t, strings.HasPrefix(tok, "tdm_"), tok)
	out := run("token", "list", "--org", "initech")
	require.Regexp(t, `(?m)^ops +admin +cli +\d{4}-`, out)
	require.NotContains(t, out, tok)
	run("token", "revoke", "--org", "initech", "ops")
	require.NotContains(t, run("token", "list", "--org", "initech"), "ops")
	_, err := os.Stat(filepath.Join(dir, "state.db"))
	require.True(t, os.IsNotExist(err), "no SQLite database with --state.url")
}
