package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/watch"
)

// countingSink counts the events a watcher sends, stored or not.
type countingSink struct {
	watch.Sink
	mu   sync.Mutex
	sent int
}

func (s *countingSink) Write(ctx context.Context, evs []client.Event) error {
	s.mu.Lock()
	s.sent += len(evs)
	s.mu.Unlock()
	return s.Sink.Write(ctx, evs)
}

func (s *countingSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// fakeCluster is a fake Kubernetes API with the objects of the test.
type fakeCluster struct {
	t    *testing.T
	kube *fake.Clientset
	dyn  *dynamicfake.FakeDynamicClient
	rv   int
}

func (c *fakeCluster) nextRV() string {
	c.rv++
	return strconv.Itoa(1000 + c.rv)
}

func (c *fakeCluster) update(obj runtime.Object) {
	c.t.Helper()
	ctx := context.Background()
	var err error
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.ResourceVersion = c.nextRV()
		_, err = c.kube.AppsV1().Deployments(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
	case *autoscalingv2.HorizontalPodAutoscaler:
		o.ResourceVersion = c.nextRV()
		_, err = c.kube.AutoscalingV2().HorizontalPodAutoscalers(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
	case *corev1.ConfigMap:
		o.ResourceVersion = c.nextRV()
		_, err = c.kube.CoreV1().ConfigMaps(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
	case *unstructured.Unstructured:
		o.SetResourceVersion(c.nextRV())
		_, err = c.dyn.Resource(watch.RolloutsResource).Namespace(o.GetNamespace()).Update(ctx, o, metav1.UpdateOptions{})
	}
	require.NoError(c.t, err)
	// The informers deliver updates asynchronously; give them a moment so
	// each state is seen (the API server's watch would deliver every one).
	time.Sleep(50 * time.Millisecond)
}

// runWatcher runs a watcher on the cluster until the returned function is
// called; it waits until the watcher has listed every object.
func runWatcher(t *testing.T, c *fakeCluster, sink watch.Sink) (*watch.Watcher, func()) {
	w, err := watch.New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, watch.Options{
		Kube: c.kube, Dynamic: c.dyn, Sink: sink, CatchUpWindow: 15 * time.Minute,
		Attributes: map[string]string{"cluster": "test"},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	require.Eventually(t, w.Ready, 10*time.Second, 10*time.Millisecond)
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		require.NoError(t, <-done)
	}
	t.Cleanup(stop)
	return w, stop
}

// listLogged lists acme's events oldest first, and the listing as JSON.
func listLogged(t *testing.T, srv *binServer) ([]client.Logged, string) {
	t.Helper()
	evs := listAll(t, srv, client.ListQuery{})
	slices.Reverse(evs)
	// Everything the server lists: the client's types cover every field.
	b, err := json.Marshal(evs)
	require.NoError(t, err)
	return evs, string(b)
}

// settled waits until the watcher has nothing left to write and the server
// lists a stable number of events, and returns them.
func watchSettled(t *testing.T, srv *binServer, w *watch.Watcher) []client.Logged {
	t.Helper()
	var evs []client.Logged
	last, quiet := -1, 0
	require.Eventually(t, func() bool {
		evs, _ = listLogged(t, srv)
		if w.Pending() == 0 && len(evs) == last {
			quiet++
		} else {
			quiet = 0
		}
		last = len(evs)
		return quiet >= 4
	}, 20*time.Second, 50*time.Millisecond)
	return evs
}

func eventsNamed(evs []client.Logged, name string) []client.Logged {
	var out []client.Logged
	for _, e := range evs {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

func fakeMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: "shop", UID: types.UID("uid-0000-" + dashless(name)), Generation: 1, ResourceVersion: "1",
		Labels: map[string]string{"app.kubernetes.io/name": name},
	}
}

func dashless(s string) string { return strings.ReplaceAll(s, "-", "") }

// TestWatchEndToEnd: objects change in a (fake) cluster; the watcher writes
// change events to a running server. A Deployment rollout is a start/stop
// pair with the object's labels, an HPA scale a point with its replica
// counts, a ConfigMap edit a point without any value, an Argo Rollout's
// canary its steps and weights; and watchers restarted on the same state,
// mid-rollout and after, write no event twice.
func TestWatchEndToEnd(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "--config.file="+writeConfig(t, dir))
	cl, err := client.New(client.Options{URL: srv.url, Org: "acme", Token: acmeWrite, Retries: 3})
	require.NoError(t, err)
	sink := &countingSink{Sink: watch.ClientSink(cl)}

	dep := &appsv1.Deployment{ObjectMeta: fakeMeta("checkout")}
	dep.Annotations = map[string]string{"deployment.kubernetes.io/revision": "4"}
	dep.Spec.Replicas = new(int32)
	*dep.Spec.Replicas = 3
	dep.Spec.Template.Labels = map[string]string{"app": "checkout"}
	dep.Spec.Template.Spec.Containers = []corev1.Container{{Name: "web", Image: "registry.example/checkout:1.4.0"}}
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: fakeMeta("checkout")}
	hpa.UID = "uid-hpa-checkout"
	hpa.Spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "checkout"}
	hpa.Spec.MaxReplicas = 12
	hpa.Status = autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 3, DesiredReplicas: 3}
	cm := &corev1.ConfigMap{ObjectMeta: fakeMeta("checkout-config")}
	cm.Data = map[string]string{"PAYMENT_URL": "https://pay.internal/v1-endpoint-value", "FEATURE_X": "off-value-123"}
	ro := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{
			"name": "sample-app", "namespace": "shop", "uid": "uid-rollout-sample-app", "generation": int64(1), "resourceVersion": "1",
			"labels": map[string]any{"app": "sample-app"}, "annotations": map[string]any{"rollout.argoproj.io/revision": "1"},
		},
		"spec": map[string]any{
			"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "sample-app:1"}}}},
			"strategy": map[string]any{"canary": map[string]any{"steps": []any{
				map[string]any{"setWeight": int64(20)}, map[string]any{"pause": map[string]any{}},
				map[string]any{"setWeight": int64(60)}, map[string]any{"pause": map[string]any{"duration": "1m"}},
			}}},
		},
		"status": map[string]any{"observedGeneration": "1", "stableRS": "s1", "currentPodHash": "s1", "currentStepIndex": int64(4), "phase": "Healthy"},
	}}
	c := &fakeCluster{t: t, kube: fake.NewClientset(dep, hpa, cm)}
	c.dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{watch.RolloutsResource: "RolloutList"}, ro)

	w, stop := runWatcher(t, c, sink)
	require.Empty(t, watchSettled(t, srv, w), "objects at rest on start write nothing")

	// A Deployment rollout, as the user and the Deployment controller make it.
	dep = dep.DeepCopy()
	dep.Generation = 2
	dep.Spec.Template.Spec.Containers[0].Image = "registry.example/checkout:1.5.0"
	dep.Annotations["kubernetes.io/change-cause"] = "release 1.5.0"
	c.update(dep)
	dep = dep.DeepCopy()
	dep.Annotations["deployment.kubernetes.io/revision"] = "5"
	dep.Status.ObservedGeneration, dep.Status.UpdatedReplicas, dep.Status.Replicas = 2, 1, 4
	c.update(dep)
	dep = dep.DeepCopy()
	dep.Status.UpdatedReplicas, dep.Status.Replicas, dep.Status.AvailableReplicas = 3, 3, 3
	c.update(dep)

	// The HPA scales up; the ConfigMap is edited.
	hpa = hpa.DeepCopy()
	hpa.Status.DesiredReplicas = 6
	c.update(hpa)
	cm = cm.DeepCopy()
	cm.Data["FEATURE_X"] = "on-value-456"
	c.update(cm)

	// An Argo Rollout's canary: step 0 (weight 20), the pause of step 1,
	// a promotion, step 2 (weight 60), step 3, and done.
	ro = ro.DeepCopy()
	ro.SetGeneration(2)
	setNested(t, ro, []any{map[string]any{"name": "app", "image": "sample-app:2"}}, "spec", "template", "spec", "containers")
	c.update(ro)
	ro = ro.DeepCopy()
	ro.SetAnnotations(map[string]string{"rollout.argoproj.io/revision": "2"})
	setNested(t, ro, "2", "status", "observedGeneration")
	setNested(t, ro, "s2", "status", "currentPodHash")
	setNested(t, ro, int64(0), "status", "currentStepIndex")
	setNested(t, ro, "Progressing", "status", "phase")
	c.update(ro)
	ro = ro.DeepCopy()
	setNested(t, ro, int64(1), "status", "currentStepIndex")
	setNested(t, ro, "Paused", "status", "phase")
	setNested(t, ro, []any{map[string]any{"reason": "CanaryPauseStep", "startTime": time.Now().UTC().Format(time.RFC3339)}}, "status", "pauseConditions")
	c.update(ro)
	ro = ro.DeepCopy()
	unstructured.RemoveNestedField(ro.Object, "status", "pauseConditions")
	setNested(t, ro, int64(2), "status", "currentStepIndex")
	setNested(t, ro, "Progressing", "status", "phase")
	c.update(ro)
	ro = ro.DeepCopy()
	setNested(t, ro, int64(3), "status", "currentStepIndex")
	c.update(ro)
	ro = ro.DeepCopy()
	setNested(t, ro, int64(4), "status", "currentStepIndex")
	setNested(t, ro, "s2", "status", "stableRS")
	setNested(t, ro, "Healthy", "status", "phase")
	c.update(ro)

	evs := watchSettled(t, srv, w)

	// The Deployment: one start/stop pair with the object's labels.
	deploys := eventsNamed(evs, "deploy")
	var depEvs []client.Logged
	for _, e := range deploys {
		if e.Labels["kind"] == "Deployment" {
			depEvs = append(depEvs, e)
		}
	}
	require.Len(t, depEvs, 2)
	wantLabels := map[string]string{"namespace": "shop", "kind": "Deployment", "name": "checkout", "service": "checkout", "app": "checkout", "cluster": "test"}
	require.Equal(t, "start", depEvs[0].State)
	require.Equal(t, wantLabels, depEvs[0].Labels)
	require.Equal(t, "stop", depEvs[1].State)
	wantLabels["outcome"] = "completed"
	require.Equal(t, wantLabels, depEvs[1].Labels)
	require.NotEmpty(t, depEvs[1].PairID, "the stop paired with the start")
	require.NotNil(t, depEvs[1].Duration)
	require.Equal(t, "web=registry.example/checkout:1.4.0", depEvs[0].Metadata["images_before"])
	require.Equal(t, "web=registry.example/checkout:1.5.0", depEvs[0].Metadata["images_after"])
	require.Equal(t, "release 1.5.0", depEvs[0].Metadata["change_cause"])
	require.True(t, strings.HasPrefix(depEvs[0].ID, "k8s:uid-0000-checkout:deploy:r5-"), depEvs[0].ID)

	// The HPA: a point, with from and to.
	scales := eventsNamed(evs, "scale")
	require.Len(t, scales, 2)
	require.Equal(t, map[string]string{
		"namespace": "shop", "kind": "HorizontalPodAutoscaler", "name": "checkout", "service": "checkout", "app": "checkout", "cluster": "test",
		"direction": "up", "from_replicas": "3", "to_replicas": "6", "target_kind": "Deployment", "target_name": "checkout",
	}, scales[1].Labels)
	require.NotEmpty(t, scales[1].PairID)

	// The ConfigMap: a point with digests; no value anywhere in what the
	// server keeps.
	configs := eventsNamed(evs, "config")
	require.Len(t, configs, 2)
	require.Equal(t, "ConfigMap", configs[0].Labels["kind"])
	require.Equal(t, "FEATURE_X", configs[0].Metadata["keys_changed"])
	_, raw := listLogged(t, srv)
	for _, v := range []string{"v1-endpoint-value", "off-value-123", "on-value-456"} {
		require.NotContains(t, raw, v)
	}

	// The Rollout: its rollout, steps 0 to 3 and weights 20 and 60, each a
	// pair, the pause ended by a promotion.
	var steps, weights []string
	for _, e := range eventsNamed(evs, "deploy-step") {
		if e.State == "start" {
			steps = append(steps, e.Labels["step"])
		}
	}
	for _, e := range eventsNamed(evs, "deploy-weight") {
		if e.State == "start" {
			weights = append(weights, e.Labels["weight"])
		}
	}
	require.Equal(t, []string{"0", "1", "2", "3"}, steps)
	require.Equal(t, []string{"20", "60"}, weights)
	pauses := eventsNamed(evs, "deploy-pause")
	require.Len(t, pauses, 2)
	require.Equal(t, "promoted", pauses[1].Labels["outcome"])
	require.Len(t, eventsNamed(evs, "deploy-promote"), 2)
	for _, e := range evs {
		if e.State == "stop" && strings.HasPrefix(e.Name, "deploy") {
			require.NotEmpty(t, e.PairID, "%s %v paired", e.Name, e.Labels)
		}
	}

	// The series: the deploy region joins with the service's metrics.
	p := promClient(t, srv.url+"/api/v4/organizations/acme/prometheus", acmeRead)
	vec := instant(t, p, `max by (service) (max_over_time(change_events{event_name="deploy", event_state="start", kind="Deployment"}[10m]))`, time.Now())
	require.Len(t, vec, 1)
	require.Equal(t, "checkout", string(vec[0].Metric["service"]))

	// Restart after everything: the new watcher writes nothing.
	stop()
	total := len(evs)
	w, stop = runWatcher(t, c, sink)
	require.Len(t, watchSettled(t, srv, w), total)

	// A rollout under way when the watcher restarts: its start is sent
	// again, stored once, and the new watcher writes its stop.
	dep = dep.DeepCopy()
	dep.Generation = 3
	dep.Spec.Template.Spec.Containers[0].Image = "registry.example/checkout:1.6.0"
	c.update(dep)
	dep = dep.DeepCopy()
	dep.Annotations["deployment.kubernetes.io/revision"] = "6"
	dep.Status.ObservedGeneration, dep.Status.UpdatedReplicas, dep.Status.Replicas = 3, 2, 4
	c.update(dep)
	require.Len(t, watchSettled(t, srv, w), total+1)
	stop()
	sent := sink.count()
	w, stop = runWatcher(t, c, sink)
	require.Len(t, watchSettled(t, srv, w), total+1, "the restarted watcher stored nothing twice")
	require.Greater(t, sink.count(), sent, "it did send the start of the rollout under way")
	dep = dep.DeepCopy()
	dep.Status.UpdatedReplicas, dep.Status.Replicas, dep.Status.AvailableReplicas = 3, 3, 3
	c.update(dep)
	evs = watchSettled(t, srv, w)
	require.Len(t, evs, total+2)
	last := evs[len(evs)-1]
	require.Equal(t, "stop", last.State)
	require.Equal(t, "completed", last.Labels["outcome"])
	require.NotEmpty(t, last.PairID)
	stop()
}

func setNested(t *testing.T, u *unstructured.Unstructured, v any, fields ...string) {
	require.NoError(t, unstructured.SetNestedField(u.Object, v, fields...))
}

// TestWatchCommand: the subcommand's usage errors.
func TestWatchCommand(t *testing.T) {
	code, out := tidemark(t, nil, "watch", "--help")
	require.Equal(t, 0, code, out)
	for _, f := range []string{"--kubeconfig", "--namespace", "--selector", "--kinds", "--url", "--org", "--token", "--catch-up-window"} {
		require.Contains(t, out, f)
	}
	code, out = tidemark(t, []string{"TIDEMARK_TOKEN=x"}, "watch", "--kinds", "pods")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, `kind "pods" is not known`)
	code, out = tidemark(t, []string{"TIDEMARK_TOKEN="}, "watch")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "no token")
	code, out = tidemark(t, []string{"TIDEMARK_TOKEN=x", "KUBECONFIG=/nonexistent", "KUBERNETES_SERVICE_HOST="}, "watch", "--kubeconfig", "/nonexistent/config")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "Kubernetes client config")
}
