package watch

import (
	"testing"

	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestHPAScale(t *testing.T) {
	hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta("checkout", 1)}
	hpa.Spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "checkout"}
	hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas = ptr(int32(2)), 10
	hpa.Status = autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 3, DesiredReplicas: 3}
	h := newHarness(t, hpa)
	h.start(Options{Kinds: []Kind{HPAs}})

	up := hpa.DeepCopy()
	up.Status.DesiredReplicas, up.Status.LastScaleTime = 6, ptr(metav1.NewTime(h.clock()))
	h.update(up)
	settled := up.DeepCopy()
	settled.Status.CurrentReplicas = 6
	h.update(settled)
	down := settled.DeepCopy()
	down.Status.DesiredReplicas = 4
	h.update(down)

	evs := h.rec.events()
	l := "kind=HorizontalPodAutoscaler,name=checkout,service=checkout,target_kind=Deployment,target_name=checkout"
	require.Equal(t, []string{
		"scale start app=checkout,direction=up,from_replicas=3," + l + ",to_replicas=6",
		"scale stop app=checkout,direction=up,from_replicas=3," + l + ",to_replicas=6",
		"scale start app=checkout,direction=down,from_replicas=6," + l + ",to_replicas=4",
		"scale stop app=checkout,direction=down,from_replicas=6," + l + ",to_replicas=4",
	}, summaries(evs))
	require.Equal(t, evs[0].Timestamp, evs[1].Timestamp, "a scale is a point")
	require.Equal(t, "10", evs[0].Metadata["max_replicas"])
	require.NotEqual(t, evs[0].ID, evs[2].ID)

	// A restart writes nothing: a scale is seen only as it happens.
	h.start(Options{Kinds: []Kind{HPAs}})
	require.Len(t, h.rec.events(), 4)
}
