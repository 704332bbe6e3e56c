package web_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/state"
)

func TestGrafanaAnnotations(t *testing.T) {
	st := newTestStack(t)
	wtok, rtok := st.tokens["acme"][state.ScopeWrite], st.tokens["acme"][state.ScopeRead]
	t0 := time.Now().Add(-time.Hour).UnixMilli()

	// A region annotation, as Grafana or a notification service posts it.
	code, resp := do(t, "POST", st.url+"/api/annotations", wtok,
		[]byte(fmt.Sprintf(`{"time":%d,"timeEnd":%d,"tags":["checkout-deploy","service:checkout","env:prod","manual"],"text":"Deployed v2","dashboardUID":"abc","panelId":2}`, t0, t0+90_000)), "application/json")
	require.Equal(t, 200, code, "%s", resp)
	var added struct {
		Message string
		ID      int64
	}
	require.NoError(t, json.Unmarshal(resp, &added))
	require.Equal(t, "Annotation added", added.Message)
	require.NotZero(t, added.ID)
	// A point annotation named by an event_name tag; no time means now.
	code, resp = do(t, "POST", st.url+"/api/annotations", wtok, []byte(`{"tags":["event_name:config-change","service:cart"],"text":"feature flag on"}`), "application/json")
	require.Equal(t, 200, code, "%s", resp)

	evs := listEvents(t, st, "acme", client.ListQuery{Name: "checkout-deploy"})
	require.Len(t, evs, 2)
	require.Equal(t, "stop", evs[0].State)
	require.Equal(t, map[string]string{"service": "checkout", "env": "prod"}, evs[1].Labels)
	require.Equal(t, "Deployed v2", evs[1].Metadata["text"])
	require.Equal(t, []any{"manual"}, evs[1].Metadata["tags"])
	require.Equal(t, 90.0, *evs[0].Duration)

	code, resp = do(t, "GET", st.url+"/api/annotations?from="+fmt.Sprint(t0-1000)+"&to="+fmt.Sprint(time.Now().UnixMilli()+1000), rtok, nil, "")
	require.Equal(t, 200, code, "%s", resp)
	// The fields Grafana reads of an annotation.
	var out []struct {
		ID           int64    `json:"id"`
		DashboardUID string   `json:"dashboardUID"`
		Time         int64    `json:"time"`
		TimeEnd      int64    `json:"timeEnd"`
		Text         string   `json:"text"`
		Tags         []string `json:"tags"`
	}
	require.NoError(t, json.Unmarshal(resp, &out))
	require.Len(t, out, 2, "%s", resp)
	sort.Slice(out, func(i, j int) bool { return out[i].Time < out[j].Time })
	require.Equal(t, added.ID, out[0].ID)
	require.Equal(t, t0, out[0].Time)
	require.Equal(t, t0+90_000, out[0].TimeEnd, "a start with its stop is a region")
	require.Equal(t, []string{"event_name:checkout-deploy", "env:prod", "service:checkout", "manual"}, out[0].Tags)
	require.Equal(t, "Deployed v2", out[0].Text)
	require.Equal(t, "abc", out[0].DashboardUID)
	require.Equal(t, out[1].Time, out[1].TimeEnd, "an open start is a point")
	require.Equal(t, "feature flag on", out[1].Text)

	// Filter by tags: key:value and plain.
	code, resp = do(t, "GET", st.url+"/api/annotations?tags=service:cart", rtok, nil, "")
	require.Equal(t, 200, code)
	require.NoError(t, json.Unmarshal(resp, &out))
	require.Len(t, out, 1)
	require.Equal(t, "feature flag on", out[0].Text)
	code, resp = do(t, "GET", st.url+"/api/annotations?tags=manual&tags=env:prod", rtok, nil, "")
	require.Equal(t, 200, code)
	require.NoError(t, json.Unmarshal(resp, &out))
	require.Len(t, out, 1)

	// The series drawn from it.
	code, resp = do(t, "GET", st.url+"/api/v1/query?query="+url.QueryEscape(`change_event_duration_seconds{event_name="checkout-deploy"}`)+"&time="+fmt.Sprintf("%.3f", float64(t0+90_000)/1000), rtok, nil, "")
	require.Equal(t, 200, code)
	require.Contains(t, string(resp), `"90"`)

	// Errors name the field.
	for _, tc := range []struct{ body, errHas string }{
		{`{"tags":["a"],"dashboard":"x"}`, `unknown field \"dashboard\"`},
		{`{"time":2000,"timeEnd":1000,"tags":["a"]}`, `field \"timeEnd\" value 1000 is before \"time\" 2000`},
		{`{"tags":"a"}`, "tags"},
		{`{"tags":["a","bad-key:x"],"time":1}`, `field \"timestamp\" value 1`},
	} {
		code, resp = do(t, "POST", st.url+"/api/annotations", wtok, []byte(tc.body), "application/json")
		require.Equal(t, 400, code, "%s: %s", tc.body, resp)
		require.Contains(t, string(resp), tc.errHas)
	}
	// Organizations stay apart: globex sees none of acme's annotations.
	code, resp = do(t, "GET", st.url+"/api/annotations", st.tokens["globex"][state.ScopeRead], nil, "")
	require.Equal(t, 200, code)
	require.JSONEq(t, `[]`, string(resp))
}

func TestFlaggerHook(t *testing.T) {
	st := newTestStack(t)
	wtok := st.tokens["acme"][state.ScopeWrite]
	hook := st.url + "/api/v4/organizations/acme/hooks/flagger"
	now := time.Now()
	post := func(phase string, at time.Time, msg string) (int, string) {
		code, resp := do(t, "POST", hook, wtok, []byte(fmt.Sprintf(
			`{"name":"podinfo","namespace":"test","phase":%q,"checksum":"6d8b7c9f5","metadata":{"eventMessage":%q,"eventType":"Normal","timestamp":"%d"}}`,
			phase, msg, at.UnixMilli())), "application/json")
		return code, string(resp)
	}
	code, resp := post("Progressing", now.Add(-3*time.Minute), "New revision detected! Scaling up podinfo.test")
	require.Equal(t, 200, code, resp)
	code, resp = post("Progressing", now.Add(-2*time.Minute), "Advance podinfo.test canary weight 10")
	require.Equal(t, 200, code, resp)
	code, resp = post("Promoting", now.Add(-90*time.Second), "Copying podinfo.test template spec")
	require.Equal(t, 200, code, resp)
	require.Contains(t, resp, `"message":"ignored"`)
	code, resp = post("Succeeded", now.Add(-time.Minute), "Promotion completed! Scaling down podinfo-primary.test")
	require.Equal(t, 200, code, resp)

	evs := listEvents(t, st, "acme", client.ListQuery{Name: "podinfo"})
	require.Len(t, evs, 3)
	require.Equal(t, "stop", evs[0].State)
	require.Equal(t, map[string]string{"canary": "podinfo", "namespace": "test", "phase": "succeeded", "outcome": "success"}, evs[0].Labels)
	require.Equal(t, 120.0, *evs[0].Duration, "the stop pairs with the first start")
	require.Equal(t, "Advance podinfo.test canary weight 10", evs[1].Metadata["eventMessage"])
	require.Equal(t, "6d8b7c9f5", evs[1].Metadata["checksum"])
	require.False(t, evs[2].Open)

	code, body := do(t, "POST", hook, wtok, []byte(`{"name":"podinfo","phase":"Progressing"}`), "application/json")
	require.Equal(t, 400, code)
	require.Contains(t, string(body), `\"namespace\"`)
	code, body = do(t, "POST", hook, wtok, []byte(`{"name":"p","namespace":"n","phase":"Progressing","metadata":{"timestamp":"soon"}}`), "application/json")
	require.Equal(t, 400, code)
	require.Contains(t, string(body), `metadata.timestamp`)
	code, _ = do(t, "POST", hook, st.tokens["acme"][state.ScopeRead], []byte(`{}`), "application/json")
	require.Equal(t, 403, code)
}

func TestArgoRolloutsHook(t *testing.T) {
	st := newTestStack(t)
	wtok := st.tokens["acme"][state.ScopeWrite]
	hook := st.url + "/api/v4/organizations/acme/hooks/argo-rollouts"
	post := func(trigger, phase, weight string) string {
		code, resp := do(t, "POST", hook, wtok, []byte(fmt.Sprintf(
			`{"rollout":"sample-app","namespace":"prod","trigger":%q,"phase":%q,"step":1,"weight":%s,"revision":"3","message":""}`,
			trigger, phase, weight)), "application/json")
		require.Equal(t, 200, code, "%s", resp)
		time.Sleep(5 * time.Millisecond) // Distinct times, so the order is clear.
		return string(resp)
	}
	open := func() []string {
		var names []string
		for _, e := range listEvents(t, st, "acme", client.ListQuery{}) {
			if e.Open {
				names = append(names, e.Name)
			}
		}
		sort.Strings(names)
		return names
	}
	post("on-rollout-updated", "Progressing", `"20"`)
	require.Equal(t, []string{"sample-app", "sample-app-20"}, open())
	require.Contains(t, post("on-rollout-step-completed", "Paused", "20"), "already open")
	post("on-rollout-step-completed", "Progressing", "40")
	require.Equal(t, []string{"sample-app", "sample-app-40"}, open())
	post("on-rollout-step-completed", "Progressing", `""`) // A step without a weight changes nothing.
	require.Equal(t, []string{"sample-app", "sample-app-40"}, open())
	post("on-rollout-completed", "Healthy", "100")
	require.Empty(t, open())

	evs := listEvents(t, st, "acme", client.ListQuery{})
	byName := map[string][]client.Logged{}
	for _, e := range evs {
		byName[e.Name] = append(byName[e.Name], e)
	}
	require.Len(t, byName["sample-app"], 2)
	stop := byName["sample-app"][0]
	require.Equal(t, map[string]string{"rollout": "sample-app", "namespace": "prod", "outcome": "completed", "phase": "healthy"}, stop.Labels)
	require.NotEmpty(t, stop.PairID)
	require.Equal(t, map[string]string{"rollout": "sample-app", "namespace": "prod", "weight": "20"}, byName["sample-app-20"][0].Labels)
	require.Len(t, byName["sample-app-40"], 2)
	require.Equal(t, "completed", byName["sample-app-40"][0].Labels["outcome"])
	require.Equal(t, "3", stop.Metadata["revision"])

	// An abort ends what is open with outcome aborted; nothing open: ignored.
	post("on-rollout-updated", "Progressing", "20")
	post("on-rollout-aborted", "Degraded", "0")
	require.Empty(t, open())
	require.Contains(t, post("on-rollout-aborted", "Degraded", "0"), "no open events")
	evs = listEvents(t, st, "acme", client.ListQuery{Match: []string{`{outcome="aborted"}`}})
	require.Len(t, evs, 2)

	code, resp := do(t, "POST", hook, wtok, []byte(`{"rollout":"x","namespace":"y","weight":"twenty"}`), "application/json")
	require.Equal(t, 400, code)
	require.Contains(t, string(resp), `field \"weight\" value \"twenty\"`)
	code, resp = do(t, "POST", hook, wtok, []byte(`{"rollout":"x","namespace":"y","weight":{}}`), "application/json")
	require.Equal(t, 400, code)
	require.True(t, strings.Contains(string(resp), `field \"weight\"`), "%s", resp)
}

// TestArgoRolloutsHookBehindManyStarts: a rollout's open events are found
// however many of its other stages started since (the receiver asks the
// log for open events, not for the newest starts).
func TestArgoRolloutsHookBehindManyStarts(t *testing.T) {
	st := newTestStack(t)
	wtok := st.tokens["acme"][state.ScopeWrite]
	hook := st.url + "/api/v4/organizations/acme/hooks/argo-rollouts"
	code, resp := do(t, "POST", hook, wtok, []byte(`{"rollout":"sample-app","namespace":"prod","trigger":"on-rollout-updated","phase":"Progressing","weight":"20"}`), "application/json")
	require.Equal(t, 200, code, "%s", resp)
	// 1200 stages of the same rollout's name, started and stopped since.
	var b strings.Builder
	for batch := range 4 {
		b.Reset()
		b.WriteByte('[')
		for i := range 300 {
			if i > 0 {
				b.WriteByte(',')
			}
			n := batch*300 + i
			fmt.Fprintf(&b, `{"event_name":"sample-app-x%d","id":"s%d","attributes":{"rollout":"sample-app","namespace":"prod"}},{"event_name":"sample-app-x%d","id":"e%d","event_state":"stop","attributes":{"rollout":"sample-app","namespace":"prod"}}`, n, n, n, n)
		}
		b.WriteByte(']')
		code, resp = do(t, "PUT", st.url+"/api/v4/organizations/acme/change_events", wtok, []byte(b.String()), "application/json")
		require.Equal(t, 200, code, "%s", resp)
	}
	code, resp = do(t, "POST", hook, wtok, []byte(`{"rollout":"sample-app","namespace":"prod","trigger":"on-rollout-completed","phase":"Healthy","weight":"100"}`), "application/json")
	require.Equal(t, 200, code, "%s", resp)
	for _, e := range listEvents(t, st, "acme", client.ListQuery{Name: "sample-app", Limit: 10}) {
		require.False(t, e.Open, "%s is still open", e.Name)
	}
	for _, e := range listEvents(t, st, "acme", client.ListQuery{Name: "sample-app-20", Limit: 10}) {
		require.False(t, e.Open, "%s is still open", e.Name)
	}
}
