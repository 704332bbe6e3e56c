package watch

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func ptr[T any](v T) *T { return &v }

func deployment(name, image string) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: meta(name, 1)}
	d.Annotations = map[string]string{deploymentRevision: "1"}
	d.Spec.Replicas = ptr(int32(3))
	d.Spec.Template.Labels = map[string]string{"app": name + "-pod"}
	d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "app", Image: image}}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3, ReadyReplicas: 3}
	return d
}

// update writes obj back with a new resourceVersion, as the API server
// would, and waits for the watcher to handle it.
func (h *harness) update(obj runtime.Object) {
	h.t.Helper()
	var err error
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.ResourceVersion = h.nextRV()
		_, err = h.kube.AppsV1().Deployments(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
	case *appsv1.StatefulSet:
		o.ResourceVersion = h.nextRV()
		_, err = h.kube.AppsV1().StatefulSets(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
	case *appsv1.DaemonSet:
		o.ResourceVersion = h.nextRV()
		_, err = h.kube.AppsV1().DaemonSets(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
	case *autoscalingv2.HorizontalPodAutoscaler:
		o.ResourceVersion = h.nextRV()
		_, err = h.kube.AutoscalingV2().HorizontalPodAutoscalers(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
	case *corev1.ConfigMap:
		o.ResourceVersion = h.nextRV()
		_, err = h.kube.CoreV1().ConfigMaps(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
	case *corev1.Secret:
		o.ResourceVersion = h.nextRV()
		_, err = h.kube.CoreV1().Secrets(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
	case *unstructured.Unstructured:
		o.SetResourceVersion(h.nextRV())
		_, err = h.dyn.Resource(RolloutsResource).Namespace(o.GetNamespace()).Update(ctx, o, metav1.UpdateOptions{})
	default:
		h.t.Fatalf("update of %T", obj)
	}
	require.NoError(h.t, err)
	h.settle()
}

// rollDeployment takes d through a rollout to image, as a user and the
// Deployment controller would: the template change, the new ReplicaSet
// scaling up, and the end. It returns d after each of the three updates.
func rollDeployment(h *harness, d *appsv1.Deployment, image string) (changed, rolling, done *appsv1.Deployment) {
	rev := d.Annotations[deploymentRevision]
	changed = d.DeepCopy()
	changed.Generation++
	changed.Spec.Template.Spec.Containers[0].Image = image
	changed.Annotations[changeCause] = "deploy " + image
	h.update(changed)

	rolling = changed.DeepCopy()
	rolling.Annotations[deploymentRevision] = next(rev)
	rolling.Status.ObservedGeneration = rolling.Generation
	rolling.Status.UpdatedReplicas, rolling.Status.Replicas = 1, 4
	h.update(rolling)

	done = rolling.DeepCopy()
	done.Status.UpdatedReplicas, done.Status.Replicas, done.Status.AvailableReplicas = 3, 3, 3
	done.Status.Conditions = []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable",
		LastUpdateTime: metav1.NewTime(h.clock()),
	}}
	h.update(done)
	return changed, rolling, done
}

func next(rev string) string {
	switch rev {
	case "1":
		return "2"
	case "2":
		return "3"
	}
	return "9"
}

func TestDeploymentRollout(t *testing.T) {
	d := deployment("checkout", "checkout:v1")
	h := newHarness(t, d)
	h.start(Options{Attributes: map[string]string{"cluster": "eu-1"}})
	require.Empty(t, h.rec.events(), "a finished rollout found on start writes nothing")

	changed, _, _ := rollDeployment(h, d, "checkout:v2")
	evs := h.rec.events()
	require.Equal(t, []string{
		"deploy start app=checkout-pod,cluster=eu-1,kind=Deployment,name=checkout,service=checkout",
		"deploy stop app=checkout-pod,cluster=eu-1,kind=Deployment,name=checkout,outcome=completed,service=checkout",
	}, summaries(evs))
	start, stop := evs[0], evs[1]
	require.Equal(t, "prod", start.Attributes["namespace"])
	hash := templateHash(changed.Spec.Template)
	require.Equal(t, "k8s:uid-checkout:deploy:r2-"+hash+":start", start.ID)
	require.Equal(t, "k8s:uid-checkout:deploy:r2-"+hash+":stop", stop.ID)
	require.Equal(t, "app=checkout:v1", start.Metadata["images_before"])
	require.Equal(t, "app=checkout:v2", start.Metadata["images_after"])
	require.Equal(t, "deploy checkout:v2", start.Metadata["change_cause"])
	require.Equal(t, "2", start.Metadata["revision"])
	require.Equal(t, "kubernetes", start.Metadata["source"])
	require.Equal(t, "3/3", stop.Metadata["replicas"])
	require.Equal(t, 0, h.w.tracker.openCount())

	// A scale (a new generation, the same template) is no rollout.
	_, _, done := rollDeployment(h, changed, "checkout:v2")
	require.Len(t, h.rec.events(), 2)
	_ = done
}

func TestDeploymentFailedAndSuperseded(t *testing.T) {
	d := deployment("cart", "cart:v1")
	h := newHarness(t, d)
	h.start(Options{})

	// v2 never becomes available: the progress deadline passes.
	v2 := d.DeepCopy()
	v2.Generation, v2.Spec.Template.Spec.Containers[0].Image = 2, "cart:v2"
	h.update(v2)
	failed := v2.DeepCopy()
	failed.Status.ObservedGeneration, failed.Status.UpdatedReplicas, failed.Status.Replicas = 2, 1, 4
	failed.Status.Conditions = []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
		Message: `ReplicaSet "cart-7d9" has timed out progressing.`, LastUpdateTime: metav1.NewTime(h.clock()),
	}}
	h.update(failed)
	// v3 is pushed while v4 replaces it before it finished.
	v3 := failed.DeepCopy()
	v3.Generation, v3.Spec.Template.Spec.Containers[0].Image = 3, "cart:v3"
	h.update(v3)
	v4 := v3.DeepCopy()
	v4.Generation, v4.Spec.Template.Spec.Containers[0].Image = 4, "cart:v4"
	h.update(v4)
	// And the Deployment is deleted mid-rollout.
	require.NoError(t, h.kube.AppsV1().Deployments("prod").Delete(ctx, "cart", metav1.DeleteOptions{}))
	h.settle()

	require.Equal(t, []string{
		"deploy start app=cart-pod,kind=Deployment,name=cart,service=cart",
		"deploy stop app=cart-pod,kind=Deployment,name=cart,outcome=failed,service=cart",
		"deploy start app=cart-pod,kind=Deployment,name=cart,service=cart",
		"deploy stop app=cart-pod,kind=Deployment,name=cart,outcome=superseded,service=cart",
		"deploy start app=cart-pod,kind=Deployment,name=cart,service=cart",
		"deploy stop app=cart-pod,kind=Deployment,name=cart,outcome=deleted,service=cart",
	}, summaries(h.rec.events()))
	evs := h.rec.events()
	require.Contains(t, evs[1].Metadata["message"], "timed out progressing")
	// Every rollout has its own key: the failed one, v3 and v4.
	require.NotEqual(t, evs[0].ID[:len(evs[0].ID)-6], evs[2].ID[:len(evs[2].ID)-6])
	require.NotEqual(t, evs[2].ID[:len(evs[2].ID)-6], evs[4].ID[:len(evs[4].ID)-6])
}

// TestRestart: a watcher that restarts mid-rollout and one that restarts
// after it derive the events they find from the objects, with the ids the
// first watcher gave them: nothing is written twice, and the rollout still
// ends.
func TestRestart(t *testing.T) {
	d := deployment("checkout", "checkout:v1")
	h := newHarness(t, d)
	h.start(Options{CatchUpWindow: 15 * time.Minute})

	changed := d.DeepCopy()
	changed.Generation, changed.Spec.Template.Spec.Containers[0].Image = 2, "checkout:v2"
	h.update(changed)
	rolling := changed.DeepCopy()
	rolling.Annotations[deploymentRevision] = "2"
	rolling.Status.ObservedGeneration, rolling.Status.UpdatedReplicas, rolling.Status.Replicas = 2, 1, 4
	h.update(rolling)
	require.Len(t, h.rec.events(), 1)
	calls := h.rec.calls

	// Restart mid-rollout: the start is derived again, with the same id.
	h.start(Options{CatchUpWindow: 15 * time.Minute})
	require.Greater(t, h.rec.calls, calls, "the restarted watcher wrote the start again")
	require.Len(t, h.rec.events(), 1, "and the server stored it once")
	require.Equal(t, 1, h.w.tracker.openCount(), "the restarted watcher knows the rollout is under way")

	// Stop the watcher; the rollout finishes while none runs.
	h.stop()
	done := rolling.DeepCopy()
	done.ResourceVersion = h.nextRV()
	done.Status.UpdatedReplicas, done.Status.Replicas, done.Status.AvailableReplicas = 3, 3, 3
	done.Status.Conditions = []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable",
		LastUpdateTime: metav1.NewTime(h.clock().Add(-time.Minute)),
	}}
	_, err := h.kube.AppsV1().Deployments("prod").Update(ctx, done, metav1.UpdateOptions{})
	require.NoError(t, err)
	h.start(Options{CatchUpWindow: 15 * time.Minute})
	evs := h.rec.events()
	require.Equal(t, []string{
		"deploy start app=checkout-pod,kind=Deployment,name=checkout,service=checkout",
		"deploy stop app=checkout-pod,kind=Deployment,name=checkout,outcome=completed,service=checkout",
	}, summaries(evs))
	require.Equal(t, strings.TrimSuffix(evs[0].ID, ":start"), strings.TrimSuffix(evs[1].ID, ":stop"))
	require.Equal(t, formatTime(h.clock().Add(-time.Minute)), evs[1].Timestamp, "the stop is dated when the rollout finished")

	// Restarting again writes nothing new; an hour later, the finished
	// rollout is out of the catch-up window and not even derived.
	h.start(Options{CatchUpWindow: 15 * time.Minute})
	require.Len(t, h.rec.events(), 2)
	h.advance(time.Hour)
	calls = h.rec.calls
	h.start(Options{CatchUpWindow: 15 * time.Minute})
	require.Len(t, h.rec.events(), 2)
	require.Equal(t, calls, h.rec.calls, "nothing derived for a rollout long finished")
}

func TestStatefulSetAndDaemonSet(t *testing.T) {
	sts := &appsv1.StatefulSet{ObjectMeta: meta("db", 1)}
	sts.Spec.Replicas = ptr(int32(2))
	sts.Spec.Template.Spec.Containers = []corev1.Container{{Name: "pg", Image: "postgres:17"}}
	sts.Status = appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2, CurrentRevision: "db-1", UpdateRevision: "db-1"}
	ds := &appsv1.DaemonSet{ObjectMeta: meta("agent", 1)}
	ds.Labels = map[string]string{"app": "node-agent"}
	ds.Annotations = map[string]string{daemonSetTemplate: "1"}
	ds.Spec.Template.Spec.Containers = []corev1.Container{{Name: "agent", Image: "agent:1"}}
	ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3}
	h := newHarness(t, sts, ds)
	h.start(Options{Kinds: []Kind{StatefulSets, DaemonSets}})

	s2 := sts.DeepCopy()
	s2.Generation, s2.Spec.Template.Spec.Containers[0].Image = 2, "postgres:18"
	h.update(s2)
	s3 := s2.DeepCopy()
	s3.Status.ObservedGeneration, s3.Status.UpdateRevision, s3.Status.UpdatedReplicas = 2, "db-2", 1
	h.update(s3)
	s4 := s3.DeepCopy()
	s4.Status.CurrentRevision, s4.Status.UpdatedReplicas = "db-2", 2
	h.update(s4)

	d2 := ds.DeepCopy()
	d2.Generation, d2.Annotations[daemonSetTemplate] = 2, "2"
	d2.Spec.Template.Spec.Containers[0].Image = "agent:2"
	h.update(d2)
	d3 := d2.DeepCopy()
	d3.Status.ObservedGeneration, d3.Status.UpdatedNumberScheduled = 2, 3
	h.update(d3)

	evs := h.rec.events()
	require.Equal(t, []string{
		"deploy start app=db,kind=StatefulSet,name=db,service=db",
		"deploy stop app=db,kind=StatefulSet,name=db,outcome=completed,service=db",
		"deploy start app=node-agent,kind=DaemonSet,name=agent,service=node-agent",
		"deploy stop app=node-agent,kind=DaemonSet,name=agent,outcome=completed,service=node-agent",
	}, summaries(evs))
	require.Equal(t, "k8s:uid-db:deploy:g2-"+templateHash(s2.Spec.Template)+":start", evs[0].ID)
	require.Equal(t, "k8s:uid-agent:deploy:r2-"+templateHash(d2.Spec.Template)+":start", evs[2].ID)
	require.Equal(t, "pg=postgres:17", evs[0].Metadata["images_before"])
}

// TestFilters: only the namespaces and the objects the selector matches.
func TestFilters(t *testing.T) {
	a := deployment("checkout", "checkout:v1")
	a.Labels["team"] = "payments"
	b := deployment("search", "search:v1")
	c := deployment("ledger", "ledger:v1")
	c.Namespace = "staging"
	c.Labels["team"] = "payments"
	h := newHarness(t, a, b, c)
	h.start(Options{Namespaces: []string{"prod", "dev"}, Selector: "team=payments"})
	for _, d := range []*appsv1.Deployment{a, b, c} {
		rollDeployment(h, d, "v2")
	}
	require.Equal(t, []string{
		"deploy start app=checkout-pod,kind=Deployment,name=checkout,service=checkout",
		"deploy stop app=checkout-pod,kind=Deployment,name=checkout,outcome=completed,service=checkout",
	}, summaries(h.rec.events()))
}

func TestRevisionKey(t *testing.T) {
	obj := func(gen int64, rev string) metav1.Object {
		m := &metav1.ObjectMeta{Generation: gen}
		if rev != "" {
			m.Annotations = map[string]string{deploymentRevision: rev}
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		ann      string
		old, cur metav1.Object
		want     string
	}{
		{"template change before the controller", deploymentRevision, obj(4, "3"), obj(5, "3"), "r4"},
		{"controller already bumped it", deploymentRevision, obj(4, "3"), obj(5, "4"), "r4"},
		{"found under way", deploymentRevision, nil, obj(5, "4"), "r4"},
		{"no annotation", deploymentRevision, obj(4, ""), obj(5, ""), "g5"},
		{"no annotation, found under way", deploymentRevision, nil, obj(5, ""), "g5"},
		{"a kind without revisions", "", obj(4, "3"), obj(5, "3"), "g5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, revisionKey(tc.ann, tc.old, tc.cur))
		})
	}
}
