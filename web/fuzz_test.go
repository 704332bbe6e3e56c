package web_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/tidemark/tidemark/sources"
	"github.com/tidemark/tidemark/state"
)

// FuzzReceivers: no body sent to the annotations API or the webhook
// receivers panics or answers 5xx; every rejection is a 4xx. Deliveries to
// the receivers that check a signature are signed (or carry the token), so
// the body reaches the conversion.
func FuzzReceivers(f *testing.F) {
	st := newTestStack(f, withTestHooks(f))
	tok := st.tokens["acme"][state.ScopeWrite]
	const org = "/api/v4/organizations/acme"
	routes := []struct {
		path   string
		header func(body []byte) map[string]string
	}{
		{path: "/api/annotations"},
		{path: org + "/hooks/flagger"},
		{path: org + "/hooks/argo-rollouts"},
		{path: org + "/hooks/github", header: func(body []byte) map[string]string {
			return githubHeaders("deployment", body, "gh-acme")
		}},
		{path: org + "/hooks/github", header: func(body []byte) map[string]string {
			return githubHeaders("deployment_status", body, "gh-acme")
		}},
		{path: org + "/hooks/gitlab", header: func([]byte) map[string]string {
			return map[string]string{"X-Gitlab-Event": "Deployment Hook", "X-Gitlab-Token": "gl-acme"}
		}},
		{path: org + "/hooks/launchdarkly", header: func(body []byte) map[string]string {
			return map[string]string{"X-LD-Signature": sources.SignHMAC(body, "ld-acme")}
		}},
		{path: org + "/hooks/unleash"},
		{path: org + "/hooks/generic/split"},
		{path: org + "/hooks/github", header: func([]byte) map[string]string { // Unsigned: always 401.
			return map[string]string{"X-GitHub-Event": "deployment"}
		}},
	}
	for _, seed := range []struct {
		route uint8
		body  string
	}{
		{0, `{"time":1795597200000,"timeEnd":1795597260000,"tags":["deploy","service:a"],"text":"x"}`},
		{0, `{"tags":["event_name:x"]}`},
		{1, `{"name":"podinfo","namespace":"test","phase":"Progressing","metadata":{"eventMessage":"m","eventType":"Normal","timestamp":"1795597200000"}}`},
		{1, `{"name":"podinfo","namespace":"test","phase":"Succeeded"}`},
		{2, `{"rollout":"r","namespace":"n","trigger":"on-rollout-updated","phase":"Progressing","step":1,"weight":"20"}`},
		{2, `{"rollout":"r","namespace":"n","trigger":"on-rollout-completed","phase":"Healthy"}`},
		{2, `{"weight":{}}`},
		{5, `{"object_kind":"deployment","status":"running","deployment_id":1,"environment":"e","project":{"name":"p"}}`},
		{7, `{"id":1,"type":"feature-environment-enabled","featureName":"f"}`},
		{8, `{"name":"f","time":"2026-11-25T10:00:00Z","changeNumber":1}`},
	} {
		f.Add(seed.route, []byte(seed.body))
	}
	// The documented payloads of every source, to each receiver.
	for _, p := range []string{"github/deployment.json", "github/deployment_status-success.json", "gitlab/deployment-running.json",
		"launchdarkly/flag-turned-on.json", "unleash/feature-environment-enabled.json", "generic/split-audit.json"} {
		b, err := os.ReadFile(filepath.Join("..", "sources", "testdata", p))
		if err != nil {
			f.Fatal(err)
		}
		for i := range routes {
			f.Add(uint8(i), b)
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		req := httptest.NewRequest("POST", rt.path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if rt.header != nil {
			for k, v := range rt.header(body) {
				req.Header.Set(k, v)
			}
		}
		rec := httptest.NewRecorder()
		st.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 || (rec.Code != http.StatusOK && rec.Code/100 != 4) {
			t.Fatalf("%s %q: %d %s", req.URL.Path, body, rec.Code, rec.Body)
		}
	})
}
