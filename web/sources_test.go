package web_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/server"
	"github.com/tidemark/tidemark/sources"
	"github.com/tidemark/tidemark/state"
)

// testHooks are the receiver settings of the test organizations: each has
// its own secrets, and a generic hook "split" (Split's audit-log webhook).
func testHooks(t testing.TB) func(org string) sources.Settings {
	split, err := sources.NewGeneric(sources.GenericSpec{Name: "split", EventName: "flag-change", Timestamp: "$.time", ID: "$.changeNumber",
		Labels: map[string]string{"flag": "$.name", "env": "$.environmentName"}, Metadata: map[string]string{"editor": "$.editor"}})
	require.NoError(t, err)
	return func(org string) sources.Settings {
		return sources.Settings{GitHubSecret: "gh-" + org, GitLabToken: "gl-" + org, LaunchDarklySecret: "ld-" + org, Generic: []*sources.Generic{split}}
	}
}

func withTestHooks(t testing.TB) stackConfig {
	hooks := testHooks(t)
	return func(o *server.Options) { o.Hooks = hooks }
}

// payloadRef is a time just after every time in sources/testdata: recent()
// moves the payloads' times so that this is now.
var payloadRef = time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)

var (
	payloadTimeRE = regexp.MustCompile(`2026-11-25[T ]\d\d:\d\d:\d\d(\.\d+)?(Z| [+-]\d{4})`)
	payloadMsRE   = regexp.MustCompile(`\b179560\d{7}\b`)
)

// payload reads a documented payload of sources/testdata and moves its
// times (RFC 3339, GitLab's "2026-11-25 11:00:00 +0100", epoch
// milliseconds) so that they lie in the last half hour.
func payload(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "sources", "testdata", name))
	require.NoError(t, err)
	return recent(b, payloadShift)
}

// payloadShift moves payloadRef to when the tests started, the same for
// every payload, so that the times of a start and its stop keep their
// distance.
var payloadShift = time.Now().Truncate(time.Second).Sub(payloadRef)

func recent(b []byte, shift time.Duration) []byte {
	b = payloadTimeRE.ReplaceAllFunc(b, func(m []byte) []byte {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05 -0700"} {
			if ts, err := time.Parse(layout, string(m)); err == nil {
				out := ts.Add(shift)
				if layout == time.RFC3339Nano {
					out = out.UTC()
				}
				return []byte(out.Format(layout))
			}
		}
		return m
	})
	return payloadMsRE.ReplaceAllFunc(b, func(m []byte) []byte {
		ms, _ := strconv.ParseInt(string(m), 10, 64)
		return []byte(strconv.FormatInt(ms+shift.Milliseconds(), 10))
	})
}

type hookResult struct {
	Message string
	Reason  string
	Events  []struct {
		ID        string
		Duplicate bool
	}
}

func postHook(t *testing.T, st *testStack, path, org string, body []byte, header map[string]string) (int, hookResult, string) {
	code, resp := doWith(t, "POST", st.url+"/api/v4/organizations/"+org+"/hooks/"+path, st.tokens[org][state.ScopeWrite], body, "application/json", header)
	var res hookResult
	if code == 200 {
		require.NoError(t, json.Unmarshal(resp, &res), "%s", resp)
	}
	return code, res, string(resp)
}

// queryCount returns the number of series a selector finds in an
// organization over the last hour.
func queryCount(t *testing.T, st *testStack, org, sel string) int {
	q := "last_over_time(" + sel + "[1h])"
	code, resp := do(t, "GET", st.url+"/api/v4/organizations/"+org+"/prometheus/api/v1/query?query="+url.QueryEscape(q), st.tokens[org][state.ScopeRead], nil, "")
	require.Equal(t, 200, code, "%s", resp)
	var out struct {
		Data struct {
			Result []json.RawMessage
		}
	}
	require.NoError(t, json.Unmarshal(resp, &out))
	return len(out.Data.Result)
}

func githubHeaders(event string, body []byte, secret string) map[string]string {
	return map[string]string{"X-GitHub-Event": event, "X-Hub-Signature-256": "sha256=" + sources.SignHMAC(body, secret)}
}

func TestGitHubHook(t *testing.T) {
	st := newTestStack(t, withTestHooks(t))
	dep := payload(t, "github/deployment.json")
	code, res, resp := postHook(t, st, "github", "acme", dep, githubHeaders("deployment", dep, "gh-acme"))
	require.Equal(t, 200, code, resp)
	require.Equal(t, "success", res.Message)
	require.Equal(t, "github-deployment-1893442017", res.Events[0].ID)

	// A redelivery is stored once.
	_, res, _ = postHook(t, st, "github", "acme", dep, githubHeaders("deployment", dep, "gh-acme"))
	require.True(t, res.Events[0].Duplicate)

	// Statuses on the way are ignored; success ends the deployment.
	prog := payload(t, "github/deployment_status-in_progress.json")
	code, res, resp = postHook(t, st, "github", "acme", prog, githubHeaders("deployment_status", prog, "gh-acme"))
	require.Equal(t, 200, code, resp)
	require.Equal(t, "ignored", res.Message)
	done := payload(t, "github/deployment_status-success.json")
	code, _, resp = postHook(t, st, "github", "acme", done, githubHeaders("deployment_status", done, "gh-acme"))
	require.Equal(t, 200, code, resp)

	evs := listEvents(t, st, "acme", client.ListQuery{Name: "deploy"})
	require.Len(t, evs, 2)
	stop, start := evs[0], evs[1]
	require.Equal(t, "stop", stop.State)
	require.Equal(t, map[string]string{"service": "checkout", "repo": "acme/checkout", "env": "production", "version": "9f2c1e7b4d0a8c3e5f6a7b8c9d0e1f2a3b4c5d6e", "outcome": "success"}, stop.Labels)
	require.Equal(t, start.ID, stop.PairID, "the status stops the deployment it is of")
	require.Equal(t, 270.0, *stop.Duration)
	require.Equal(t, "v2.4.0", start.Metadata["ref"])
	require.Equal(t, 1, queryCount(t, st, "acme", `change_events{event_name="deploy",service="checkout",env="production",event_state="stop",outcome="success"}`))
	require.Equal(t, 1, queryCount(t, st, "acme", `change_event_duration_seconds{event_name="deploy",service="checkout",outcome="success"}`))

	// A wrong or missing signature: 401, nothing written.
	fail := payload(t, "github/deployment_status-failure.json")
	for _, h := range []map[string]string{
		githubHeaders("deployment_status", fail, "gh-globex"),
		{"X-GitHub-Event": "deployment_status"},
	} {
		code, _, resp = postHook(t, st, "github", "acme", fail, h)
		require.Equal(t, 401, code, resp)
		require.Contains(t, resp, "X-Hub-Signature-256")
	}
	require.Len(t, listEvents(t, st, "acme", client.ListQuery{Name: "deploy"}), 2)

	// A payload that cannot become an event: 400 naming what is missing.
	broken := []byte(`{"action":"created","deployment":{"id":1,"environment":"production"}}`)
	code, _, resp = postHook(t, st, "github", "acme", broken, githubHeaders("deployment", broken, "gh-acme"))
	require.Equal(t, 400, code, resp)
	require.Contains(t, resp, `field \"repository.name\" is missing`)
	code, _, resp = postHook(t, st, "github", "acme", broken, githubHeaders("", broken, "gh-acme"))
	require.Equal(t, 400, code, resp)
	require.Contains(t, resp, "X-GitHub-Event is missing")
}

// TestHooksWithoutSecrets: a vendor that signs is refused, with the config
// key to set, when no secret is configured; Unleash, which does not sign,
// needs only the token.
func TestHooksWithoutSecrets(t *testing.T) {
	st := newTestStack(t)
	dep := payload(t, "github/deployment.json")
	code, _, resp := postHook(t, st, "github", "acme", dep, githubHeaders("deployment", dep, ""))
	require.Equal(t, 401, code, resp)
	require.Contains(t, resp, "set hooks.github.secret")
	code, _, resp = postHook(t, st, "gitlab", "acme", payload(t, "gitlab/deployment-running.json"), map[string]string{"X-Gitlab-Event": "Deployment Hook", "X-Gitlab-Token": "x"})
	require.Equal(t, 401, code, resp)
	require.Contains(t, resp, "set hooks.gitlab.token")
	code, _, resp = postHook(t, st, "launchdarkly", "acme", []byte(`{}`), map[string]string{"X-LD-Signature": "00"})
	require.Equal(t, 401, code, resp)
	require.Contains(t, resp, "set hooks.launchdarkly.secret")
	code, _, resp = postHook(t, st, "generic/split", "acme", []byte(`{}`), nil)
	require.Equal(t, 404, code, resp)
	require.Contains(t, resp, "none are configured")
	require.Empty(t, listEvents(t, st, "acme", client.ListQuery{}))
	code, _, resp = postHook(t, st, "unleash", "acme", payload(t, "unleash/feature-environment-enabled.json"), nil)
	require.Equal(t, 200, code, resp)
	require.Len(t, listEvents(t, st, "acme", client.ListQuery{}), 1)
}

func TestGitLabHook(t *testing.T) {
	st := newTestStack(t, withTestHooks(t))
	h := map[string]string{"X-Gitlab-Event": "Deployment Hook", "X-Gitlab-Token": "gl-acme"}
	for _, f := range []string{"gitlab/deployment-running.json", "gitlab/deployment-success.json"} {
		code, res, resp := postHook(t, st, "gitlab", "acme", payload(t, f), h)
		require.Equal(t, 200, code, resp)
		require.Equal(t, "success", res.Message, resp)
	}
	evs := listEvents(t, st, "acme", client.ListQuery{Name: "deploy"})
	require.Len(t, evs, 2)
	require.Equal(t, map[string]string{"service": "checkout", "repo": "acme/checkout", "env": "production", "version": "9f2c1e7b", "outcome": "success"}, evs[0].Labels)
	require.Equal(t, 360.0, *evs[0].Duration)
	require.Equal(t, 1, queryCount(t, st, "acme", `change_event_duration_seconds{event_name="deploy",repo="acme/checkout",outcome="success"}`))

	code, res, resp := postHook(t, st, "gitlab", "acme", payload(t, "gitlab/push-hook.json"), map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "gl-acme"})
	require.Equal(t, 200, code, resp)
	require.Equal(t, "ignored", res.Message)

	failed := payload(t, "gitlab/deployment-failed.json")
	for _, tok := range []string{"gl-globex", "", "GL-ACME"} {
		code, _, resp = postHook(t, st, "gitlab", "acme", failed, map[string]string{"X-Gitlab-Event": "Deployment Hook", "X-Gitlab-Token": tok})
		require.Equal(t, 401, code, "token %q: %s", tok, resp)
	}
	require.Len(t, listEvents(t, st, "acme", client.ListQuery{}), 2)
	code, _, resp = postHook(t, st, "gitlab", "acme", []byte(`{"object_kind":"deployment","status":"running","environment":"production"}`), h)
	require.Equal(t, 400, code, resp)
	require.Contains(t, resp, `field \"deployment_id\" is missing`)
}

func TestLaunchDarklyHook(t *testing.T) {
	st := newTestStack(t, withTestHooks(t))
	sign := func(body []byte, secret string) map[string]string {
		return map[string]string{"X-LD-Signature": sources.SignHMAC(body, secret)}
	}
	on := payload(t, "launchdarkly/flag-turned-on.json")
	code, res, resp := postHook(t, st, "launchdarkly", "acme", on, sign(on, "ld-acme"))
	require.Equal(t, 200, code, resp)
	require.Equal(t, "launchdarkly-674432f6c9e77d0e1b9a2f55-0", res.Events[0].ID)
	env := payload(t, "launchdarkly/environment-rename.json")
	code, res, resp = postHook(t, st, "launchdarkly", "acme", env, sign(env, "ld-acme"))
	require.Equal(t, 200, code, resp)
	require.Equal(t, "ignored", res.Message)
	created := payload(t, "launchdarkly/flag-created.json")
	code, _, resp = postHook(t, st, "launchdarkly", "acme", created, sign(created, "ld-globex"))
	require.Equal(t, 401, code, resp)

	evs := listEvents(t, st, "acme", client.ListQuery{})
	require.Len(t, evs, 1)
	require.Equal(t, map[string]string{"flag": "new-checkout", "env": "production", "project": "shop", "action": "updateOn"}, evs[0].Labels)
	require.Equal(t, true, evs[0].Metadata["on"])
	require.True(t, evs[0].Open, "a point event: a start with no stop")
	require.Equal(t, 1, queryCount(t, st, "acme", `change_events{event_name="flag-change",flag="new-checkout",env="production"}`))
}

func TestUnleashHook(t *testing.T) {
	st := newTestStack(t, withTestHooks(t))
	for _, f := range []string{"unleash/feature-environment-enabled.json", "unleash/feature-strategy-update.json"} {
		code, res, resp := postHook(t, st, "unleash", "acme", payload(t, f), nil)
		require.Equal(t, 200, code, resp)
		require.Equal(t, "success", res.Message)
	}
	code, res, resp := postHook(t, st, "unleash", "acme", payload(t, "unleash/strategy-created.json"), nil)
	require.Equal(t, 200, code, resp)
	require.Equal(t, "ignored", res.Message)
	evs := listEvents(t, st, "acme", client.ListQuery{Match: []string{`{flag="new-checkout"}`}})
	require.Len(t, evs, 2)
	require.Equal(t, "feature-strategy-update", evs[0].Labels["action"])
	require.Equal(t, map[string]any{"groupId": "new-checkout", "rollout": "10", "stickiness": "default"}, evs[0].Metadata["preData"].(map[string]any)["parameters"])
	code, _, resp = postHook(t, st, "unleash", "acme", []byte(`{"type":"feature-environment-enabled","featureName":"x"}`), nil)
	require.Equal(t, 400, code, resp)
	require.Contains(t, resp, `field \"id\" is missing`)
}

func TestGenericHook(t *testing.T) {
	st := newTestStack(t, withTestHooks(t))
	split := payload(t, "generic/split-audit.json")
	code, res, resp := postHook(t, st, "generic/split", "acme", split, nil)
	require.Equal(t, 200, code, resp)
	require.Equal(t, "success", res.Message)
	evs := listEvents(t, st, "acme", client.ListQuery{Name: "flag-change"})
	require.Len(t, evs, 1)
	require.Equal(t, map[string]string{"flag": "new_checkout", "env": "Production"}, evs[0].Labels)
	require.Equal(t, "priya@example.com", evs[0].Metadata["editor"])

	code, _, resp = postHook(t, st, "generic/jenkins", "acme", split, nil)
	require.Equal(t, 404, code, resp)
	require.Contains(t, resp, `no generic hook \"jenkins\"`)
	require.Contains(t, resp, "split")
	// The mapping's paths are required when set: a payload without them is refused.
	code, _, resp = postHook(t, st, "generic/split", "acme", []byte(`{"changeNumber":5}`), nil)
	require.Equal(t, 400, code, resp)
	require.Contains(t, resp, `field \"timestamp\" is missing: $.time selects nothing`)
	code, _, resp = postHook(t, st, "generic/split", "acme", []byte(fmt.Sprintf(`{"name":"x","time":%d}`, time.Now().UnixMilli())), nil)
	require.Equal(t, 400, code, resp)
	require.Contains(t, resp, `field \"id\" is missing`)
}
