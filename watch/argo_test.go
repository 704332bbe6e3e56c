package watch

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tidemark/tidemark/client"
)

// argoRolloutObject is a canary Rollout at rest (its last rollout done).
func argoRolloutObject(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{
			"name": name, "namespace": "prod", "uid": "uid-" + name, "generation": int64(1), "resourceVersion": "1",
			"labels":      map[string]any{"app.kubernetes.io/name": name},
			"annotations": map[string]any{argoRevision: "1"},
		},
		"spec": map[string]any{
			"replicas": int64(5),
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": name + ":v1"}}},
			},
			"strategy": map[string]any{"canary": map[string]any{"steps": []any{
				map[string]any{"setWeight": int64(20)},
				map[string]any{"pause": map[string]any{}},
				map[string]any{"setWeight": int64(50)},
				map[string]any{"pause": map[string]any{"duration": "10m"}},
				map[string]any{"setWeight": int64(80)},
			}}},
		},
		"status": map[string]any{
			"observedGeneration": "1", "stableRS": "aaa", "currentPodHash": "aaa", "currentStepIndex": int64(5), "phase": "Healthy",
		},
	}}
}

func set(u *unstructured.Unstructured, value any, fields ...string) {
	if err := unstructured.SetNestedField(u.Object, value, fields...); err != nil {
		panic(err)
	}
}

func TestArgoRolloutSteps(t *testing.T) {
	ro := argoRolloutObject("checkout")
	h := newHarness(t, ro)
	h.start(Options{Kinds: []Kind{Rollouts}})
	require.Empty(t, h.rec.events())

	// The template changes.
	u := ro.DeepCopy()
	u.SetGeneration(2)
	set(u, []any{map[string]any{"name": "app", "image": "checkout:v2"}}, "spec", "template", "spec", "containers")
	h.update(u)
	// The controller starts the canary: step 0 sets the weight to 20.
	u = u.DeepCopy()
	u.SetAnnotations(map[string]string{argoRevision: "2"})
	set(u, "2", "status", "observedGeneration")
	set(u, "bbb", "status", "currentPodHash")
	set(u, int64(0), "status", "currentStepIndex")
	set(u, "Progressing", "status", "phase")
	h.update(u)
	// Step 1: an indefinite pause.
	u = u.DeepCopy()
	set(u, int64(1), "status", "currentStepIndex")
	set(u, "Paused", "status", "phase")
	set(u, []any{map[string]any{"reason": "CanaryPauseStep", "startTime": formatTime(h.clock())}}, "status", "pauseConditions")
	h.update(u)
	n := len(h.rec.events())
	// Promoted: step 2 sets the weight to 50.
	u = u.DeepCopy()
	unstructured.RemoveNestedField(u.Object, "status", "pauseConditions")
	set(u, int64(2), "status", "currentStepIndex")
	set(u, "Progressing", "status", "phase")
	h.update(u)
	promoted := h.since(n)
	// Step 3: a 10 minute pause, then aborted.
	u = u.DeepCopy()
	set(u, int64(3), "status", "currentStepIndex")
	set(u, "Paused", "status", "phase")
	set(u, []any{map[string]any{"reason": "CanaryPauseStep", "startTime": formatTime(h.clock())}}, "status", "pauseConditions")
	h.update(u)
	n = len(h.rec.events())
	u = u.DeepCopy()
	unstructured.RemoveNestedField(u.Object, "status", "pauseConditions")
	set(u, true, "status", "abort")
	set(u, formatTime(h.clock()), "status", "abortedAt")
	set(u, "Degraded", "status", "phase")
	set(u, int64(0), "status", "currentStepIndex")
	h.update(u)
	aborted := h.since(n)

	l := "app=checkout,kind=Rollout,name=checkout,service=checkout"
	require.Equal(t, []string{
		sum("deploy-pause", "stop", l, "outcome", "promoted", "step", "1"),
		sum("deploy-step", "stop", l, "outcome", "advanced", "step", "1"),
		sum("deploy-weight", "stop", l, "outcome", "changed", "weight", "20"),
		sum("deploy-step", "start", l, "step", "2"),
		sum("deploy-weight", "start", l, "weight", "50"),
		sum("deploy-promote", "start", l, "full", "false", "step", "1"),
		sum("deploy-promote", "stop", l, "full", "false", "step", "1"),
	}, summaries(promoted))
	require.Equal(t, []string{
		sum("deploy-pause", "stop", l, "outcome", "aborted", "step", "3"),
		sum("deploy-step", "stop", l, "outcome", "aborted", "step", "3"),
		sum("deploy-weight", "stop", l, "outcome", "aborted", "weight", "50"),
		sum("deploy", "stop", l, "outcome", "aborted"),
	}, summaries(aborted))

	// Every start has its stop, with the same id stem.
	open := map[string]int{}
	for _, ev := range h.rec.events() {
		stem := ev.ID[:len(ev.ID)-len(ev.State)]
		if ev.State == "start" {
			open[stem]++
		} else {
			open[stem]--
		}
	}
	for stem, n := range open {
		require.Zero(t, n, stem)
	}
	require.Equal(t, 0, h.w.tracker.openCount())
	first := h.rec.events()[0]
	require.Equal(t, sum("deploy", "start", l), summary(first))
	require.Equal(t, "app=checkout:v2", first.Metadata["images_after"])

	// Retry: the same template rolls out again, promoted fully, and done.
	n = len(h.rec.events())
	u = u.DeepCopy()
	set(u, false, "status", "abort")
	set(u, "Progressing", "status", "phase")
	h.update(u)
	u = u.DeepCopy()
	set(u, true, "status", "promoteFull")
	h.update(u)
	u = u.DeepCopy()
	set(u, "bbb", "status", "stableRS")
	set(u, int64(5), "status", "currentStepIndex")
	set(u, "Healthy", "status", "phase")
	unstructured.RemoveNestedField(u.Object, "status", "promoteFull")
	h.update(u)
	retry := h.since(n)
	require.Equal(t, []string{
		sum("deploy", "start", l),
		sum("deploy-step", "start", l, "step", "0"),
		sum("deploy-weight", "start", l, "weight", "20"),
		sum("deploy-promote", "start", l, "full", "true", "step", "0"),
		sum("deploy-promote", "stop", l, "full", "true", "step", "0"),
		sum("deploy-step", "stop", l, "outcome", "completed", "step", "0"),
		sum("deploy-weight", "stop", l, "outcome", "completed", "weight", "20"),
		sum("deploy", "stop", l, "outcome", "completed"),
	}, summaries(retry))
	require.NotEqual(t, first.ID, retry[0].ID, "a retry is a rollout of its own")
}

// sum is the summary of an event with the labels base (k=v,...) and kv.
func sum(name, state, base string, kv ...string) string {
	l := map[string]string{}
	for _, p := range strings.Split(base, ",") {
		k, v, _ := strings.Cut(p, "=")
		l[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return summary(client.Event{Name: name, State: state, Attributes: l})
}

// TestArgoRestart: a watcher restarted mid-canary derives the regions open
// with their ids and writes no duplicate.
func TestArgoRestart(t *testing.T) {
	ro := argoRolloutObject("cart")
	h := newHarness(t, ro)
	h.start(Options{Kinds: []Kind{Rollouts}, CatchUpWindow: 15 * time.Minute})
	u := ro.DeepCopy()
	u.SetGeneration(2)
	set(u, []any{map[string]any{"name": "app", "image": "cart:v2"}}, "spec", "template", "spec", "containers")
	h.update(u)
	u = u.DeepCopy()
	u.SetAnnotations(map[string]string{argoRevision: "2"})
	set(u, "2", "status", "observedGeneration")
	set(u, "bbb", "status", "currentPodHash")
	set(u, int64(1), "status", "currentStepIndex")
	set(u, "Paused", "status", "phase")
	set(u, []any{map[string]any{"reason": "CanaryPauseStep", "startTime": formatTime(h.clock())}}, "status", "pauseConditions")
	h.update(u)
	before := h.rec.events()
	require.Len(t, before, 4) // deploy, step 1, weight 20, pause 1

	h.start(Options{Kinds: []Kind{Rollouts}, CatchUpWindow: 15 * time.Minute})
	// Step 0's stop (it ended before the restart) is the only new event:
	// the first watcher never saw step 0 start.
	after := h.since(len(before))
	require.Equal(t, []string{"deploy-step stop app=cart,kind=Rollout,name=cart,outcome=advanced,service=cart,step=0"}, summaries(after))
	require.Equal(t, 4, h.w.tracker.openCount())
}
