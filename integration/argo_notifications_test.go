package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	rolloutsv1alpha1 "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/utils/record"
	"github.com/argoproj/notifications-engine/pkg/api"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// controllerNamespace is where the Argo Rollouts controller (and its
// notification ConfigMap and Secret) lives.
const controllerNamespace = "argo-rollouts"

// notifier is Argo Rollouts' event recorder with the notifications API of
// the example's ConfigMap and Secret, as the controller sets it up.
type notifier struct {
	recorder        record.EventRecorder
	success, failed *prometheus.CounterVec
}

func newNotifier(t *testing.T, srv *server) *notifier {
	t.Helper()
	cm := example[*corev1.ConfigMap](t, "argo-rollouts/notifications.yaml", record.NotificationConfigMap)
	require.Equal(t, controllerNamespace, cm.Namespace)
	for k, v := range cm.Data {
		if strings.HasPrefix(k, "service.") {
			require.Contains(t, v, inCluster, "%s points at Tidemark's in-cluster address", k)
			cm.Data[k] = srv.local(v)
		}
	}
	sec := example[*corev1.Secret](t, "argo-rollouts/notifications.yaml", record.NotificationSecret)
	require.Equal(t, controllerNamespace, sec.Namespace)
	// The API server turns stringData into data; the placeholder becomes the
	// server's write token.
	sec.Data = map[string][]byte{}
	for k, v := range sec.StringData {
		require.True(t, strings.HasPrefix(v, "replace-with-"), "the example Secret holds placeholders only")
		sec.Data[k] = []byte(writeToken)
	}
	sec.StringData = nil

	client := k8sfake.NewClientset(cm, sec)
	factory := informers.NewSharedInformerFactoryWithOptions(client, time.Minute, informers.WithNamespace(controllerNamespace))
	cms := factory.Core().V1().ConfigMaps().Informer()
	secrets := factory.Core().V1().Secrets().Informer()
	apis := api.NewFactory(record.NewAPIFactorySettings(nil), controllerNamespace, secrets, cms)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory.Start(ctx.Done())
	require.True(t, cache.WaitForCacheSync(ctx.Done(), cms.HasSynced, secrets.HasSynced))

	labels := []string{"namespace", "name", "type", "reason"}
	n := &notifier{
		success: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "notification_send_success"}, labels),
		failed:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "notification_send_error"}, labels),
	}
	n.recorder = record.NewEventRecorder(k8sfake.NewClientset(),
		prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rollout_events_total"}, labels),
		n.failed, n.success,
		prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "notification_send"}, []string{"namespace", "name"}),
		apis)
	return n
}

// emit records a controller event for the rollout, as the rollout
// controller does at that moment, and checks that every subscribed
// notification was delivered.
func (n *notifier) emit(t *testing.T, ro *rolloutsv1alpha1.Rollout, reason string) {
	t.Helper()
	eventType := corev1.EventTypeNormal
	opts := record.EventOptions{EventReason: reason}
	if reason == "RolloutAborted" {
		eventType = corev1.EventTypeWarning
		n.recorder.Warnf(ro, opts, "Rollout aborted update to revision %s", ro.Annotations["rollout.argoproj.io/revision"])
	} else {
		n.recorder.Eventf(ro, opts, "%s", reason)
	}
	lv := []string{ro.Namespace, ro.Name, eventType, reason}
	require.Zero(t, promtestutil.ToFloat64(n.failed.WithLabelValues(lv...)), "a notification for %s failed (see the log)", reason)
	// One notification per subscribed service: the webhook and grafana.
	require.Equal(t, 2.0, promtestutil.ToFloat64(n.success.WithLabelValues(lv...)), "notifications sent for %s", reason)
	n.success.Reset()
	time.Sleep(5 * time.Millisecond) // events of consecutive notifications get distinct times
}

// TestArgoRolloutsNotifications drives the notifications of the example
// (ConfigMap, Secret, subscription annotations of the Rollout) through Argo
// Rollouts' own event recorder and notifications-engine's webhook and
// grafana services, through a canary of the example Rollout: the stage
// events come out of Tidemark's Argo Rollouts receiver, the markers out of
// its Grafana annotations API.
func TestArgoRolloutsNotifications(t *testing.T) {
	srv := startServer(t)
	n := newNotifier(t, srv)
	ro := example[*rolloutsv1alpha1.Rollout](t, "argo-rollouts/sample-app.yaml", "sample-app")
	ro.Namespace = appNamespace
	ro.Annotations["rollout.argoproj.io/revision"] = "2"
	steps := ro.Spec.Strategy.Canary.Steps
	require.Len(t, steps, 8)

	// Traffic at 97.5% success: enough for stages 20 (95%) and 40 (97%),
	// not for 60 (98%) and 80 (99%).
	srv.remoteWrite(t, requests(map[string]string{"app": "sample-app", "namespace": appNamespace}, 100, 0.975, time.Now()))
	tmpl := example[*rolloutsv1alpha1.AnalysisTemplate](t, "argo-rollouts/analysis-templates.yaml", "tidemark-stage-aware-success")
	run, metric := resolvedMetric(t, srv, []*rolloutsv1alpha1.AnalysisTemplate{tmpl}, nil, "success-share")
	wantPhase := map[string]rolloutsv1alpha1.AnalysisPhase{
		"20": rolloutsv1alpha1.AnalysisPhaseSuccessful, "40": rolloutsv1alpha1.AnalysisPhaseSuccessful,
		"60": rolloutsv1alpha1.AnalysisPhaseFailed, "80": rolloutsv1alpha1.AnalysisPhaseFailed,
	}

	stageEvents := func() []loggedEvent {
		return srv.events(t, `{rollout="sample-app", event_name=~"sample-app(-[0-9]+)?"}`)
	}
	// The notification carries the Rollout as the controller had it: the
	// index of the step that has just completed, the phase before it.
	for i, step := range steps {
		ro.Status.CurrentStepIndex = ptr.To(int32(i))
		ro.Status.Phase = rolloutsv1alpha1.RolloutPhaseProgressing
		ro.Status.Message = ""
		if step.Pause != nil {
			ro.Status.Phase = rolloutsv1alpha1.RolloutPhasePaused
			ro.Status.Message = "CanaryPauseStep"
		}
		n.emit(t, ro, "RolloutStepCompleted")
		weight := ""
		for _, s := range steps[:i+1] {
			if s.SetWeight != nil {
				weight = itoa(*s.SetWeight)
			}
		}
		evs := stageEvents()
		require.Equal(t, []string{"sample-app", "sample-app-" + weight}, openEvents(evs), "after step %d", i)
		for _, e := range evs {
			if e.Name == "sample-app-"+weight && e.State == "start" {
				require.Equal(t, map[string]string{"rollout": "sample-app", "namespace": appNamespace, "weight": weight}, e.Labels)
			}
		}
		// The stage-aware analysis sees the stage the notifications opened.
		m := measure(t, run, metric)
		require.Equal(t, wantPhase[weight], m.Phase, "analysis after step %d (weight %s): %+v", i, weight, m)
	}
	// Stages 20, 40 and 60 ran and stopped; 80 is still open.
	for _, w := range []string{"20", "40", "60"} {
		var stops int
		for _, e := range srv.events(t, `{event_name="sample-app-`+w+`"}`) {
			if e.State == "stop" {
				stops++
				require.NotNil(t, e.Duration, "stage %s's stop paired with its start", w)
			}
		}
		require.Equal(t, 1, stops, "stage %s", w)
	}

	// The rollout completes: every open event stops with its outcome.
	ro.Status.CurrentStepIndex = ptr.To(int32(len(steps)))
	n.emit(t, ro, "RolloutCompleted")
	evs := stageEvents()
	require.Empty(t, openEvents(evs))
	for _, name := range []string{"sample-app", "sample-app-80"} {
		stop := latest(evs, name, "stop")
		require.NotNil(t, stop, name)
		require.Equal(t, "completed", stop.Labels["outcome"], "%s: %+v", name, stop)
		require.NotNil(t, stop.Duration, name)
	}

	// The next revision aborts in stage 20.
	ro.Annotations["rollout.argoproj.io/revision"] = "3"
	ro.Status.CurrentStepIndex = ptr.To(int32(0))
	ro.Status.Phase = rolloutsv1alpha1.RolloutPhaseProgressing
	n.emit(t, ro, "RolloutStepCompleted")
	require.Equal(t, []string{"sample-app", "sample-app-20"}, openEvents(stageEvents()))
	ro.Status.Phase = rolloutsv1alpha1.RolloutPhaseDegraded
	ro.Status.Message = "RolloutAborted: metric \"success-share\" assessed Failed"
	n.emit(t, ro, "RolloutAborted")
	evs = stageEvents()
	require.Empty(t, openEvents(evs))
	stop := latest(evs, "sample-app-20", "stop")
	require.Equal(t, "aborted", stop.Labels["outcome"], "%+v", stop)
	require.Equal(t, "3", stop.Metadata["revision"], "%+v", stop)

	// The grafana service's annotations are markers named by the first
	// plain tag, with the key:value tags as labels and the message as text.
	markers := srv.events(t, `{event_name="argo-rollouts"}`)
	require.NotEmpty(t, markers)
	triggers := map[string]bool{}
	for _, m := range markers {
		require.Equal(t, "sample-app", m.Labels["rollout"], "%+v", m)
		triggers[m.Labels["trigger"]] = true
	}
	require.Equal(t, map[string]bool{"on-rollout-step-completed": true, "on-rollout-completed": true, "on-rollout-aborted": true}, triggers)
	anns := srv.annotations(t, url.Values{"tags": {"rollout:sample-app", "trigger:on-rollout-completed"}})
	require.Len(t, anns, 1, "%+v", anns)
	require.Equal(t, "Rollout sample-app completed.", anns[0].Text)
	require.Contains(t, anns[0].Tags, "event_name:argo-rollouts")
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

// latest returns the newest event of a name and state.
func latest(evs []loggedEvent, name, state string) *loggedEvent {
	for i := range evs {
		if evs[i].Name == name && evs[i].State == state {
			return &evs[i]
		}
	}
	return nil
}

// annotation is an element of Grafana's GET /api/annotations answer.
type annotation struct {
	ID      int64    `json:"id"`
	Time    int64    `json:"time"`
	TimeEnd int64    `json:"timeEnd"`
	Text    string   `json:"text"`
	Tags    []string `json:"tags"`
}

func (s *server) annotations(t *testing.T, q url.Values) []annotation {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+"/api/annotations?"+q.Encode(), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+readToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, 200, resp.StatusCode, "GET /api/annotations?%s: %s", q.Encode(), body)
	var out []annotation
	require.NoError(t, json.Unmarshal(body, &out), "%s", body)
	return out
}
