package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/internal/testutil"
)

// TestSeedCurlCommands runs the seed's two curl commands verbatim but for
// the URL and the token, and queries the events under the Levitate names.
func TestSeedCurlCommands(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "--config.file="+writeConfig(t, dir), "--events.compat-metric-names=last9_change_events,last9_domain_events")
	eventsURL := srv.url + "/api/v4/organizations/acme/change_events"

	// From the blog post: the documented request.
	doc := `curl -XPUT ` + eventsURL + ` \
--header 'Content-Type: application/json' \
--header 'X-LAST9-API-TOKEN: Bearer: ` + acmeWrite + `' \
--data-raw '
{
"timestamp": "'$(date +%s)'",
"event_name": "sample-app-20",
"event_state": "start",
"workspace": "sample-service",
"namespace": "prod",
"entity_type": "service",
"data_source_name": "github-prathamesh-sonpatki-AMXD - ap-south-1 (system)"
}'`
	// From its AnalysisTemplate job: no Content-Type, a date-formatted time.
	job := `curl -XPUT ` + eventsURL + ` --data "{\"timestamp\": \"$(date -u +"%Y-%m-%dT%H:%M:%SZ")\", \"event_name\": \"sample-app-20\", \"event_state\": \"stop\", \"workspace\": \"sample-service\", \"namespace\": \"prod\", \"entity_type\": \"service\", \"data_source_name\": \"github-prathamesh-sonpatki-AMXD - ap-south-1 (system)\"}" -H "X-LAST9-API-TOKEN: Bearer ` + acmeWrite + `"`
	for _, script := range []string{doc, job} {
		out, err := exec.Command("sh", "-c", "set -e; "+script+" --silent --show-error --fail-with-body").CombinedOutput()
		require.NoError(t, err, "%s", out)
		var res map[string]any
		require.NoError(t, json.Unmarshal(out, &res), "%s", out)
		require.Equal(t, "success", res["message"])
		require.NotEmpty(t, res["id"])
		time.Sleep(1100 * time.Millisecond) // The stop's second-resolution time is after the start's.
	}

	p := promClient(t, srv.url+"/api/v4/organizations/acme/prometheus", acmeRead)
	now := time.Now()
	for _, name := range []string{"change_events", "last9_change_events", "last9_domain_events"} {
		vec := instant(t, p, name, now)
		require.Len(t, vec, 2, name)
		for i, st := range []string{"start", "stop"} {
			require.Equal(t, model.Metric{
				"__name__": model.LabelValue(name), "event_name": "sample-app-20", "event_state": model.LabelValue(st),
				"workspace": "sample-service", "namespace": "prod", "entity_type": "service",
				"data_source_name": "github-prathamesh-sonpatki-AMXD - ap-south-1 (system)",
			}, vec[i].Metric)
			require.Equal(t, model.SampleValue(i+1), vec[i].Value)
		}
	}
	// What the seed's query meant to read, in valid PromQL.
	vec := instant(t, p, `sum(sum_over_time(last9_domain_events{event_name="sample-app-20", event_state="start"}[5m]))`, now)
	require.Equal(t, model.SampleValue(1), vec[0].Value)
	vec = instant(t, p, `change_event_duration_seconds`, now)
	require.Len(t, vec, 1)
	require.GreaterOrEqual(t, float64(vec[0].Value), 1.0)
}

func TestEventCLI(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "--config.file="+writeConfig(t, dir))
	env := []string{"TIDEMARK_URL=" + srv.url, "TIDEMARK_ORG=acme", "TIDEMARK_TOKEN=" + acmeWrite}

	code, out := tidemark(t, env, "event", "start", "db-migration", "--attr", "service=orders", "-a", "env=prod", "--meta", "commit=9f2c1e7", "--link", "https://ci.example/run/42=pipeline")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "event db-migration start stored as cli-")
	code, out = tidemark(t, env, "event", "stop", "db-migration", "--attr", "service=orders", "-a", "env=prod")
	require.Equal(t, 0, code, out)

	// wrap: exit status of the command, and a stop that pairs with the start.
	code, out = tidemark(t, env, "event", "wrap", "smoke-test", "-a", "service=orders", "--", "sh", "-c", "echo running; exit 3")
	require.Equal(t, 3, code, out)
	require.Contains(t, out, "running")
	code, out = tidemark(t, env, "event", "wrap", "build", "--", "true")
	require.Equal(t, 0, code, out)

	p := promClient(t, srv.url+"/api/v4/organizations/acme/prometheus", acmeRead)
	vec := instant(t, p, `change_event_duration_seconds`, time.Now())
	require.Len(t, vec, 3)
	byName := map[string]model.Metric{}
	for _, s := range vec {
		byName[string(s.Metric["event_name"])] = s.Metric
	}
	require.Equal(t, model.LabelValue("3"), byName["smoke-test"]["exit_code"])
	require.Equal(t, model.LabelValue("failure"), byName["smoke-test"]["outcome"])
	require.Equal(t, model.LabelValue("success"), byName["build"]["outcome"])
	require.Equal(t, model.LabelValue("prod"), byName["db-migration"]["env"])

	// The log keeps metadata and links, and the pairing.
	evs := listAll(t, srv, client.ListQuery{Name: "db-migration"})
	require.Len(t, evs, 2)
	require.Equal(t, "stop", evs[0].State)
	require.Equal(t, "9f2c1e7", evs[1].Metadata["commit"])
	require.Equal(t, []client.Link{{Href: "https://ci.example/run/42", Text: "pipeline"}}, evs[1].Links)
	require.NotEmpty(t, evs[0].PairID)
	require.NotNil(t, evs[1].Duration)

	// A rejected event: exit 1 and the server's message. No retries.
	code, out = tidemark(t, env, "event", "start", "bad", "--attr", "bad-name=x")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, `field "attributes.bad-name"`)
	// A wrong token: exit 1.
	code, out = tidemark(t, []string{"TIDEMARK_URL=" + srv.url, "TIDEMARK_ORG=acme", "TIDEMARK_TOKEN=nope"}, "event", "start", "x")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "401")
	// Nothing listening: retried, then exit 3.
	start := time.Now()
	code, out = tidemark(t, []string{"TIDEMARK_URL=http://" + freeAddr(t), "TIDEMARK_ORG=acme", "TIDEMARK_TOKEN=" + acmeWrite}, "event", "start", "x", "--retries=2")
	require.Equal(t, 3, code, out)
	require.Contains(t, out, "gave up after 3 tries")
	require.Less(t, time.Since(start), 20*time.Second)
	// Bad usage: exit 1.
	code, _ = tidemark(t, env, "event", "start")
	require.Equal(t, 1, code)
}

// TestSeedScenario: the seed's canary rollout, end to end. RED metrics of a
// healthy and of a degraded canary (each in its own organization) come by
// remote write; the stage events 20/40/60 come from the CLI; a valid,
// stage-aware analysis query (testdata/stage-aware.promql: the success ratio
// must reach 95%, 97% and 98% during stages 20, 40 and 60, and 99% outside
// any stage) holds for the healthy canary and fails for the degraded one in
// every stage, evaluated through client_golang.
func TestSeedScenario(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "--config.file="+writeConfig(t, dir))
	query, err := os.ReadFile(filepath.Join("testdata", "stage-aware.promql"))
	require.NoError(t, err)

	now := time.Now().Truncate(time.Minute)
	t0 := now.Add(-40 * time.Minute)
	stages := []struct {
		name       string
		start, end time.Time
	}{
		{"sample-app-20", t0.Add(5 * time.Minute), t0.Add(15 * time.Minute)},
		{"sample-app-40", t0.Add(15 * time.Minute), t0.Add(25 * time.Minute)},
		{"sample-app-60", t0.Add(25 * time.Minute), t0.Add(35 * time.Minute)},
	}
	// Success ratios: healthy 98.5% (enough for every stage, not for the
	// 99% outside them), degraded 93%.
	tokens := map[string]string{"healthy": "healthy-admin-token-0123", "degraded": "degraded-admin-token-012"}
	for org, ratio := range map[string]float64{"healthy": 0.985, "degraded": 0.93} {
		token := tokens[org]
		var ok, failed []testutil.Sample
		for ts, n := t0, 0.0; !ts.After(now); ts, n = ts.Add(15*time.Second), n+1 {
			total := n * 100 * 15 // 100 requests/s
			ok = append(ok, testutil.Sample{T: ts.UnixMilli(), V: total * ratio})
			failed = append(failed, testutil.Sample{T: ts.UnixMilli(), V: total * (1 - ratio)})
		}
		require.NoError(t, testutil.RemoteWrite(t, srv.url+"/api/v1/write", token, false, []testutil.Series{
			{Labels: labels.FromStrings("__name__", "sample_app_requests_count", "success", "true", "app", "sample-app"), Samples: ok},
			{Labels: labels.FromStrings("__name__", "sample_app_requests_count", "success", "false", "app", "sample-app"), Samples: failed},
		}))
		env := []string{"TIDEMARK_URL=" + srv.url, "TIDEMARK_ORG=" + org, "TIDEMARK_TOKEN=" + token}
		for _, st := range stages {
			for _, ev := range []struct {
				state string
				at    time.Time
			}{{"start", st.start}, {"stop", st.end}} {
				code, out := tidemark(t, env, "event", ev.state, st.name, "--timestamp", ev.at.Format(time.RFC3339),
					"-a", "workspace=sample-service", "-a", "namespace=prod", "-a", "entity_type=service")
				require.Equal(t, 0, code, out)
			}
		}
	}

	for org, want := range map[string]model.SampleValue{"healthy": 1, "degraded": 0} {
		p := promClient(t, srv.url+"/api/v4/organizations/"+org+"/prometheus", tokens[org])
		for _, st := range stages {
			for _, at := range []time.Time{st.start.Add(3 * time.Minute), st.end.Add(-time.Minute)} {
				vec := instant(t, p, string(query), at)
				require.Len(t, vec, 1, "%s during %s", org, st.name)
				require.Equal(t, want, vec[0].Value, "%s during %s at %s", org, st.name, at)
			}
		}
		// Outside every stage the threshold is 99%: even the healthy canary
		// fails it. (The seed's query passed everything with no event.)
		vec := instant(t, p, string(query), now.Add(-2*time.Minute))
		require.Equal(t, model.SampleValue(0), vec[0].Value, org)
	}
	// No traffic data: no result, which an Argo Rollouts successCondition
	// of result[0] == 1 reports as an error, not a pass.
	p := promClient(t, srv.url+"/api/v4/organizations/acme/prometheus", acmeRead)
	require.Empty(t, instant(t, p, string(query), now))
}
