package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/internal/testutil"
)

// TestAnalyzeCLI runs `tidemark analyze` against the real server: series
// written by remote write, a stage event written by `tidemark event`, and
// the exit codes a CI job relies on.
func TestAnalyzeCLI(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "--config.file="+writeConfig(t, dir))
	now := time.Now().Truncate(time.Second)
	start, stop := now.Add(-20*time.Minute), now.Add(-5*time.Minute)

	// Latency of a healthy canary, a slow one and their baseline: 15s
	// samples with 10% noise.
	rng := rand.New(rand.NewPCG(3, 14))
	var series []testutil.Series
	for _, s := range []struct {
		track string
		mean  float64
	}{{"stable", 0.200}, {"healthy", 0.200}, {"slow", 0.320}, {"quicker", 0.150}} {
		ser := testutil.Series{Labels: labels.FromStrings("__name__", "request_latency_seconds", "service", "checkout", "track", s.track)}
		for ts := now.Add(-25 * time.Minute); !ts.After(now); ts = ts.Add(15 * time.Second) {
			ser.Samples = append(ser.Samples, testutil.Sample{T: ts.UnixMilli(), V: s.mean * (1 + 0.1*rng.NormFloat64())})
		}
		series = append(series, ser)
	}
	require.NoError(t, testutil.RemoteWrite(t, srv.url+"/api/v4/organizations/acme/prometheus/api/v1/write", acmeWrite, false, series))

	env := []string{"TIDEMARK_URL=" + srv.url, "TIDEMARK_ORG=acme", "TIDEMARK_TOKEN=" + acmeWrite}
	for _, e := range []struct {
		state string
		at    time.Time
	}{{"start", start}, {"stop", stop}} {
		code, out := tidemark(t, env, "event", e.state, "checkout-20", "--attr", "service=checkout", "--timestamp", fmt.Sprint(e.at.UnixMilli()))
		require.Equal(t, 0, code, out)
	}

	request := func(track string, critical bool) string {
		p := filepath.Join(t.TempDir(), "request.json")
		require.NoError(t, os.WriteFile(p, fmt.Appendf(nil, `{
		  "window": {"event_name": "checkout-20", "match": {"service": "checkout"}},
		  "metrics": [{"name": "latency",
		    "canary": "sum(request_latency_seconds{track=\"%s\"})", "baseline": "sum(request_latency_seconds{track=\"stable\"})",
		    "direction": "increase", "critical": %t}]}`, track, critical), 0o644))
		return p
	}
	readEnv := []string{"TIDEMARK_URL=" + srv.url, "TIDEMARK_ORG=acme", "TIDEMARK_TOKEN=" + acmeRead}

	t.Run("pass", func(t *testing.T) {
		code, out := tidemark(t, readEnv, "analyze", "-f", request("healthy", true))
		require.Equal(t, 0, code, out)
		require.Contains(t, out, "verdict  pass (score 100): score 100 is at or above the pass threshold 95")
		require.Contains(t, out, "event checkout-20{service=\"checkout\"}")
		require.Regexp(t, `latency\s+Pass\s+yes\s+1\s+\S+\s+\S+ meanRatio\s+61\s+61`, out)
		require.Contains(t, out, `recorded as event analysis{outcome="pass", score="100", service="checkout", window_event="checkout-20"}`)
	})

	t.Run("fail", func(t *testing.T) {
		code, out := tidemark(t, readEnv, "analyze", "-f", request("slow", true), "--json")
		require.Equal(t, exitVerdictFailed, code, out)
		var rep struct {
			Verdict string
			Metrics []struct{ Classification string }
		}
		require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
		require.Equal(t, "fail", rep.Verdict)
		require.Equal(t, "High", rep.Metrics[0].Classification)
	})

	t.Run("marginal", func(t *testing.T) {
		// Two metrics of equal weight, one High: score 50, marginal at 50.
		body := fmt.Sprintf(`{"window": {"start": %q, "end": %q}, "thresholds": {"pass": 90, "marginal": 50}, "metrics": [
		  {"name": "slow", "canary": "sum(request_latency_seconds{track=\"slow\"})", "baseline": "sum(request_latency_seconds{track=\"stable\"})", "direction": "increase"},
		  {"name": "healthy", "canary": "sum(request_latency_seconds{track=\"healthy\"})", "baseline": "sum(request_latency_seconds{track=\"stable\"})", "direction": "increase"}]}`,
			start.UTC().Format(time.RFC3339), stop.UTC().Format(time.RFC3339))
		code, out := runStdin(t, readEnv, body, "analyze", "-f", "-")
		require.Equal(t, exitVerdictFailed, code, out)
		require.Contains(t, out, "verdict  marginal (score 50)")
		code, out = runStdin(t, readEnv, body, "analyze", "-f", "-", "--allow-marginal")
		require.Equal(t, 0, code, out)
		require.NotContains(t, out, "event checkout-20", "an explicit window has no event")
	})

	t.Run("a decrease is not flagged when only increases are bad", func(t *testing.T) {
		code, out := tidemark(t, readEnv, "analyze", "-f", request("quicker", true))
		require.Equal(t, 0, code, out)
	})

	t.Run("refused requests exit 1", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "bad.json")
		require.NoError(t, os.WriteFile(p, []byte(`{"window": {"event_name": "checkout-20"}, "metrics": [{"canary": "sum(", "baseline": "up"}]}`), 0o644))
		code, out := tidemark(t, readEnv, "analyze", "-f", p)
		require.Equal(t, exitRejected, code, out)
		require.Contains(t, out, `rejected by the server (400): field "metrics[0].canary" value "sum(": 1:5: parse error`)

		require.NoError(t, os.WriteFile(p, []byte(`{"window": {"event_name": "checkout-40"}, "metrics": [{"canary": "up", "baseline": "up"}]}`), 0o644))
		code, out = tidemark(t, readEnv, "analyze", "-f", p)
		require.Equal(t, exitRejected, code, out)
		require.Contains(t, out, `rejected by the server (422): no start of event "checkout-40" is in the event log`)

		code, out = tidemark(t, []string{"TIDEMARK_URL=" + srv.url, "TIDEMARK_ORG=acme", "TIDEMARK_TOKEN=wrong"}, "analyze", "-f", request("healthy", true))
		require.Equal(t, exitRejected, code, out)
		require.Contains(t, out, "rejected by the server (401)")

		code, out = tidemark(t, readEnv, "analyze")
		require.Equal(t, exitRejected, code, out)
		require.Contains(t, out, "required flag(s) '--file' not provided")

		code, out = tidemark(t, readEnv, "analyze", "-f", filepath.Join(dir, "missing.json"))
		require.Equal(t, exitRejected, code, out)
		require.Contains(t, out, "read the request")
	})

	t.Run("an unreachable server exits 3", func(t *testing.T) {
		code, out := tidemark(t, []string{"TIDEMARK_URL=http://" + freeAddr(t), "TIDEMARK_ORG=acme"}, "analyze", "-f", request("healthy", true), "--retries", "1")
		require.Equal(t, exitUnavailable, code, out)
		require.Contains(t, out, "gave up after 2 tries")
	})
}

// TestAnalyzeRetries: analyze retries through the client's retry loop, so a
// Retry-After given as an HTTP date is waited for (the command's own loop
// read only seconds, and retried after 500ms).
func TestAnalyzeRetries(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		paths = append(paths, r.Method+" "+r.URL.Path)
		n := len(at)
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"not ready"}`)
			return
		}
		fmt.Fprint(w, `{"verdict": "marginal", "score": 80, "reason": "score 80 is below the pass threshold 95",
		  "window": {"start": "a", "end": "b", "step": "15s", "points": 2}, "metrics": []}`)
	}))
	t.Cleanup(srv.Close)

	code, out := runStdin(t, []string{"TIDEMARK_URL=" + srv.URL, "TIDEMARK_ORG=acme"}, `{"window": {"start": "now-1h"}}`, "analyze", "-f", "-")
	require.Equal(t, exitVerdictFailed, code, out)
	require.Contains(t, out, "verdict  marginal (score 80)")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"POST /api/v4/organizations/acme/analysis", "POST /api/v4/organizations/acme/analysis"}, paths)
	require.GreaterOrEqual(t, at[1].Sub(at[0]), time.Second, "the second try waited for the Retry-After date")
}

// runStdin runs the binary with stdin and returns its exit code and output.
func runStdin(t *testing.T, env []string, stdin string, args ...string) (int, string) {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	require.NoError(t, err, "%s", out)
	return 0, string(out)
}
