package web_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/state"
)

func TestBodyLimit(t *testing.T) {
	st := newTestStack(t) // MaxRequestBytes: 1 MiB
	tok := st.tokens["acme"][state.ScopeWrite]
	big := []byte(`[` + strings.Repeat(`{"event_name":"a"},`, 60000) + `{"event_name":"a"}]`)
	code, resp := do(t, "POST", st.url+"/api/v4/organizations/acme/change_events", tok, big, "application/json")
	require.Equal(t, http.StatusRequestEntityTooLarge, code)
	require.JSONEq(t, `{"error":"the request body is larger than the limit of 1048576 bytes (--web.max-request-bytes)"}`, string(resp))

	// Without a Content-Length the limit applies while reading.
	req, err := http.NewRequest("POST", st.url+"/api/v4/organizations/acme/change_events", io.MultiReader(bytes.NewReader(big)))
	require.NoError(t, err)
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode, "%s", b)

	// Nothing of it was written.
	require.Empty(t, listEvents(t, st, "acme", client.ListQuery{}))
}

func TestEventListPaging(t *testing.T) {
	st := newTestStack(t)
	var batch []string
	for i := range 25 {
		batch = append(batch, fmt.Sprintf(`{"event_name":"e%02d","timestamp":"2026-11-25T10:00:%02dZ","attributes":{"parity":"%s"}}`, i, i, []string{"even", "odd"}[i%2]))
	}
	// The clock of the stack is real; write relative to now so the events
	// are inside the backfill window.
	body := strings.ReplaceAll("["+strings.Join(batch, ",")+"]", "2026-11-25T10:00:", nowPrefix())
	code, resp := do(t, "POST", st.url+"/api/v4/organizations/acme/change_events", st.tokens["acme"][state.ScopeWrite], []byte(body), "application/json")
	require.Equal(t, 200, code, "%s", resp)

	// Through the cursor, as a client pages.
	c, err := client.New(client.Options{URL: st.url, Org: "acme", Token: st.tokens["acme"][state.ScopeRead]})
	require.NoError(t, err)
	var names []string
	q := client.ListQuery{Limit: 5, Match: []string{`{parity="odd"}`}}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		page, err := c.List(context.Background(), q)
		require.NoError(t, err)
		for _, e := range page.Events {
			names = append(names, e.Name)
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	require.Equal(t, []string{"e23", "e21", "e19", "e17", "e15", "e13", "e11", "e09", "e07", "e05", "e03", "e01"}, names)

	for _, q := range []string{"limit=0", "limit=x", "cursor=%%%", "cursor=bm9wZQ", "start=yesterday", "match[]=" + url.QueryEscape(`{a=~"("}`), "start=2000&end=1000"} {
		code, resp := do(t, "GET", st.url+"/api/v4/organizations/acme/change_events?"+q, st.tokens["acme"][state.ScopeRead], nil, "")
		require.Equal(t, 400, code, "%s: %s", q, resp)
		require.Contains(t, string(resp), `"error"`)
	}
}

// nowPrefix is "YYYY-MM-DDTHH:MM:" of ten minutes ago, in UTC.
func nowPrefix() string {
	return time.Now().Add(-10 * time.Minute).UTC().Format("2006-01-02T15:04:")
}

// TestCORSOff: a browser's Origin gets no CORS grant unless configured.
func TestCORSOff(t *testing.T) {
	st := newTestStack(t)
	req, err := http.NewRequest("GET", st.url+"/api/v1/query?query=vector(1)", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Authorization", "Bearer "+st.tokens["acme"][state.ScopeRead])
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
}
