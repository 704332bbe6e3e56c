package web_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tidemark/tidemark/state"
)

// FuzzReceivers: no body sent to the annotations API or the webhook
// receivers panics or answers 5xx; every rejection is a 4xx.
func FuzzReceivers(f *testing.F) {
	st := newTestStack(f)
	tok := st.tokens["acme"][state.ScopeWrite]
	paths := []string{"/api/annotations", "/api/v4/organizations/acme/hooks/flagger", "/api/v4/organizations/acme/hooks/argo-rollouts"}
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
	} {
		f.Add(seed.route, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		req := httptest.NewRequest("POST", paths[int(route)%len(paths)], bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		st.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 || (rec.Code != http.StatusOK && rec.Code/100 != 4) {
			t.Fatalf("%s %q: %d %s", req.URL.Path, body, rec.Code, rec.Body)
		}
	})
}
