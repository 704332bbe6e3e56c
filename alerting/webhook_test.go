package alerting

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/events"
)

func TestWebhooks(t *testing.T) {
	var mtx sync.Mutex
	var bodies []WebhookPayload
	fails := 1 // the first POST fails with 503 and is retried
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		b, _ := io.ReadAll(r.Body)
		mtx.Lock()
		defer mtx.Unlock()
		if fails > 0 {
			fails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var p WebhookPayload
		require.NoError(t, json.Unmarshal(b, &p), "%s", b)
		bodies = append(bodies, p)
	}))
	defer srv.Close()

	reg := prometheus.NewRegistry()
	w, err := NewWebhooks(slog.New(slog.DiscardHandler), reg, WebhookOptions{URLs: []string{srv.URL + "/hook?token=secret"}})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { w.Run(); close(done) }()

	start := time.Now().Add(-10 * time.Minute).UTC()
	ctxJSON := `[{"name":"checkout-deploy","state":"start","timestamp":"2026-11-25T09:50:00.000Z","labels":{"service":"checkout"},"links":[{"href":"https://ci.example/run/42","text":"pipeline"}]}]`
	w.Send(
		&notifier.Alert{Labels: labels.FromStrings("alertname", "A", "org", "acme"), Annotations: labels.FromStrings(AnnotationChangeEventsJSON, ctxJSON, "summary", "s"), StartsAt: start, EndsAt: start.Add(time.Hour), GeneratorURL: "http://x/graph"},
		&notifier.Alert{Labels: labels.FromStrings("alertname", "B", "org", "globex"), StartsAt: start, EndsAt: start.Add(5 * time.Minute)},
	)
	require.Eventually(t, func() bool {
		mtx.Lock()
		defer mtx.Unlock()
		return len(bodies) == 2
	}, 10*time.Second, 10*time.Millisecond)
	w.Stop()
	<-done

	// One payload per organization.
	require.Equal(t, "acme", bodies[0].Org)
	require.Equal(t, "1", bodies[0].Version)
	a := bodies[0].Alerts[0]
	require.Equal(t, "firing", a.Status, "ends in the future")
	require.Equal(t, map[string]string{"alertname": "A", "org": "acme"}, a.Labels)
	require.Equal(t, "s", a.Annotations["summary"])
	require.Equal(t, []ContextEvent{{Name: "checkout-deploy", State: "start", Timestamp: "2026-11-25T09:50:00.000Z",
		Labels: map[string]string{"service": "checkout"}, Links: []events.Link{{Href: "https://ci.example/run/42", Text: "pipeline"}}}}, a.ChangeEvents)
	require.True(t, a.StartsAt.Equal(start))
	require.Equal(t, "globex", bodies[1].Org)
	require.Equal(t, "resolved", bodies[1].Alerts[0].Status, "ended in the past")
	require.Equal(t, []ContextEvent{}, bodies[1].Alerts[0].ChangeEvents)

	label := srv.URL + "/hook"
	require.Equal(t, 2.0, testutil.ToFloat64(w.sent.WithLabelValues(label)), "metrics name the webhook without its query")
	require.Equal(t, 0.0, testutil.ToFloat64(w.failed.WithLabelValues(label)))
}

func TestWebhookGivesUp(t *testing.T) {
	var mtx sync.Mutex
	posts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mtx.Lock()
		posts++
		mtx.Unlock()
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	w, err := NewWebhooks(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), WebhookOptions{URLs: []string{srv.URL}})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { w.Run(); close(done) }()
	w.Send(&notifier.Alert{Labels: labels.FromStrings("alertname", "A", "org", "acme")})
	require.Eventually(t, func() bool { return testutil.ToFloat64(w.failed.WithLabelValues(srv.URL)) == 1 }, 10*time.Second, 10*time.Millisecond)
	w.Stop()
	<-done
	require.Equal(t, 1, posts, "a 4xx is not retried")

	_, err = NewWebhooks(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), WebhookOptions{URLs: []string{"ftp://x"}})
	require.ErrorContains(t, err, `webhook URL "ftp://x" is not accepted`)
}
