package watch

import (
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Revision annotations, set by Kubernetes' controllers and API server.
const (
	deploymentRevision = "deployment.kubernetes.io/revision"
	daemonSetTemplate  = "deprecated.daemonset.template.generation"
)

// rollout is what the watcher reads of a workload to follow its rollouts.
type rollout struct {
	kind      string
	obj       metav1.Object
	podLabels map[string]string
	hash      string // of the pod template
	images    string
	// revAnnotation is the kind's revision annotation ("" if none).
	revAnnotation string
	// rolling: pods of an older template are still being replaced, or the
	// controller has not yet observed the latest spec.
	rolling bool
	// done: every replica runs the current template and is available.
	done bool
	// failed: the rollout missed its progress deadline.
	failed  bool
	message string
	// doneAt is when the rollout finished or failed, when the status tells.
	doneAt time.Time
	// changedAt is when the object itself (not its status or scale) was
	// last written, when its managed fields tell.
	changedAt time.Time
	replicas  string // ready/desired, for metadata
}

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// managedTimes returns when the object was last written through its main
// resource and through its status, from its managed fields (zero when it
// has none).
func managedTimes(obj metav1.Object) (spec, status time.Time) {
	for _, f := range obj.GetManagedFields() {
		if f.Time == nil {
			continue
		}
		switch f.Subresource {
		case "":
			if f.Time.After(spec) {
				spec = f.Time.Time
			}
		case "status":
			if f.Time.After(status) {
				status = f.Time.Time
			}
		}
	}
	return spec, status
}

func deploymentRollout(d *appsv1.Deployment) rollout {
	want := replicasOf(d.Spec.Replicas)
	st := d.Status
	observed := st.ObservedGeneration >= d.Generation
	r := rollout{
		kind: "Deployment", obj: d, podLabels: d.Spec.Template.Labels,
		hash: templateHash(d.Spec.Template), images: images(&d.Spec.Template.Spec),
		revAnnotation: deploymentRevision,
		rolling:       !observed || st.UpdatedReplicas < want || st.Replicas > st.UpdatedReplicas,
		done:          observed && st.UpdatedReplicas >= want && st.Replicas <= st.UpdatedReplicas && st.AvailableReplicas >= st.UpdatedReplicas,
		replicas:      strconv.Itoa(int(st.AvailableReplicas)) + "/" + strconv.Itoa(int(want)),
	}
	r.changedAt, r.doneAt = managedTimes(d)
	for _, c := range st.Conditions {
		if c.Type != appsv1.DeploymentProgressing {
			continue
		}
		switch {
		case c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" && observed:
			r.failed, r.message, r.doneAt = true, c.Message, c.LastUpdateTime.Time
		case c.Status == corev1.ConditionTrue && c.Reason == "NewReplicaSetAvailable" && !c.LastUpdateTime.IsZero():
			r.message, r.doneAt = c.Message, c.LastUpdateTime.Time
		}
	}
	return r
}

func statefulSetRollout(s *appsv1.StatefulSet) rollout {
	want := replicasOf(s.Spec.Replicas)
	st := s.Status
	observed := st.ObservedGeneration >= s.Generation
	var partition int32
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		partition = *ru.Partition
	}
	updated := st.UpdatedReplicas >= want-partition
	sameRevision := partition > 0 || st.UpdateRevision == st.CurrentRevision
	r := rollout{
		kind: "StatefulSet", obj: s, podLabels: s.Spec.Template.Labels,
		hash: templateHash(s.Spec.Template), images: images(&s.Spec.Template.Spec),
		rolling:  !observed || !updated || !sameRevision,
		done:     observed && updated && sameRevision && st.ReadyReplicas >= want,
		replicas: strconv.Itoa(int(st.ReadyReplicas)) + "/" + strconv.Itoa(int(want)),
	}
	r.changedAt, r.doneAt = managedTimes(s)
	return r
}

func daemonSetRollout(d *appsv1.DaemonSet) rollout {
	st := d.Status
	observed := st.ObservedGeneration >= d.Generation
	want := st.DesiredNumberScheduled
	r := rollout{
		kind: "DaemonSet", obj: d, podLabels: d.Spec.Template.Labels,
		hash: templateHash(d.Spec.Template), images: images(&d.Spec.Template.Spec),
		revAnnotation: daemonSetTemplate,
		rolling:       !observed || st.UpdatedNumberScheduled < want,
		done:          observed && st.UpdatedNumberScheduled >= want && st.NumberAvailable >= want,
		replicas:      strconv.Itoa(int(st.NumberAvailable)) + "/" + strconv.Itoa(int(want)),
	}
	r.changedAt, r.doneAt = managedTimes(d)
	return r
}

// workloads follows the rollouts of Deployments, StatefulSets and
// DaemonSets: a region "deploy" from the change of the pod template to the
// end of the rollout.
type workloads struct {
	static map[string]string
	// window is how far back a rollout that finished while no watcher ran
	// still gets its stop written (the catch-up window).
	window time.Duration
	view   func(obj any) (rollout, bool)
}

func (h *workloads) labels(r rollout) map[string]string {
	return baseLabels(h.static, r.kind, r.obj, r.podLabels)
}

// rolloutKey is the key of r's rollout; old is the workload before its
// template changed, nil when the rollout is found under way.
func rolloutKey(old *rollout, r rollout) string {
	var o metav1.Object
	if old != nil {
		o = old.obj
	}
	return joinKey(slotDeploy, revisionKey(r.revAnnotation, o, r.obj)+"-"+r.hash)
}

func startMeta(old *rollout, r rollout, observed string) map[string]string {
	m := map[string]string{
		"images_after":  r.images,
		"change_cause":  r.obj.GetAnnotations()[changeCause],
		"generation":    strconv.FormatInt(r.obj.GetGeneration(), 10),
		"template_hash": r.hash,
		"uid":           string(r.obj.GetUID()),
		"observed":      observed,
	}
	var o metav1.Object
	if old != nil {
		m["images_before"] = old.images
		o = old.obj
	}
	if rev, ok := strings.CutPrefix(revisionKey(r.revAnnotation, o, r.obj), "r"); ok {
		m["revision"] = rev
	}
	return m
}

func stopMeta(r rollout) map[string]string {
	return map[string]string{"message": r.message, "replicas": r.replicas, "images": r.images}
}

// finishedRecently reports whether a finished rollout's end is within the
// catch-up window: only then does a watcher that finds it finished write
// its stop, in case a watcher before a restart wrote its start.
func (h *workloads) finishedRecently(r rollout, now time.Time) bool {
	if !recent(r.doneAt, now, h.window) {
		return false
	}
	// A status written recently for another reason (pods restarting, a
	// scale) after a template change long ago is no rollout's end, nor is
	// one written before the object's last change.
	return r.changedAt.IsZero() || (recent(r.changedAt, now, h.window) && !r.doneAt.Before(r.changedAt))
}

func (h *workloads) add(c *change, obj any, initial bool) {
	r, ok := h.view(obj)
	if !ok {
		return
	}
	key := rolloutKey(nil, r)
	switch {
	case r.rolling && !r.done && !r.failed:
		observed := "created"
		if initial {
			observed = "initial-list"
		}
		c.start(slotDeploy, key, eventDeploy, h.labels(r), startMeta(nil, r, observed))
	case initial && (r.done || r.failed) && h.finishedRecently(r, c.now):
		outcome := outcomeCompleted
		if r.failed {
			outcome = outcomeFailed
		}
		c.stopAt(key, eventDeploy, h.labels(r), outcome, r.doneAt, stopMeta(r))
	}
}

func (h *workloads) update(c *change, oldObj, curObj any) {
	o, ok := h.view(oldObj)
	if !ok {
		return
	}
	r, ok := h.view(curObj)
	if !ok {
		return
	}
	if o.hash != r.hash {
		c.stop(slotDeploy, outcomeSuperseded, nil)
		c.start(slotDeploy, rolloutKey(&o, r), eventDeploy, h.labels(r), startMeta(&o, r, "update"))
	}
	if _, open := c.opened(slotDeploy); open {
		switch {
		case r.failed:
			c.stop(slotDeploy, outcomeFailed, stopMeta(r))
		case r.done:
			c.stop(slotDeploy, outcomeCompleted, stopMeta(r))
		}
	}
}

func deploymentView(obj any) (rollout, bool) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return rollout{}, false
	}
	return deploymentRollout(d), true
}

func statefulSetView(obj any) (rollout, bool) {
	s, ok := obj.(*appsv1.StatefulSet)
	if !ok {
		return rollout{}, false
	}
	return statefulSetRollout(s), true
}

func daemonSetView(obj any) (rollout, bool) {
	d, ok := obj.(*appsv1.DaemonSet)
	if !ok {
		return rollout{}, false
	}
	return daemonSetRollout(d), true
}
