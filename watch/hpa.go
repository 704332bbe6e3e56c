package watch

import (
	"strconv"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// hpas records HorizontalPodAutoscalers' scale-ups and scale-downs as
// points: "scale" with labels direction (up or down), from_replicas and
// to_replicas, target_kind and target_name. A scale is what the HPA decided
// (its desired replicas changed), when the watcher sees it; one made while
// no watcher ran is not recorded.
type hpas struct {
	static map[string]string
}

func (h *hpas) add(*change, any, bool) {}

func (h *hpas) update(c *change, oldObj, curObj any) {
	o, ok := oldObj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return
	}
	n, ok := curObj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return
	}
	from, to := o.Status.DesiredReplicas, n.Status.DesiredReplicas
	// An HPA's first status (no desired replicas before) is no scale.
	if from == to || from == 0 {
		return
	}
	if cur := n.Status.CurrentReplicas; cur != 0 && cur != to {
		// The replicas the HPA found, as it scaled from them.
		from = cur
	}
	if from == to {
		return
	}
	dir := "up"
	if to < from {
		dir = "down"
	}
	fromS, toS := strconv.Itoa(int(from)), strconv.Itoa(int(to))
	labels := with(baseLabels(h.static, "HorizontalPodAutoscaler", n, nil),
		"direction", dir, "from_replicas", fromS, "to_replicas", toS,
		"target_kind", n.Spec.ScaleTargetRef.Kind, "target_name", n.Spec.ScaleTargetRef.Name)
	meta := map[string]string{
		"min_replicas": "",
		"max_replicas": strconv.Itoa(int(n.Spec.MaxReplicas)),
	}
	if n.Spec.MinReplicas != nil {
		meta["min_replicas"] = strconv.Itoa(int(*n.Spec.MinReplicas))
	}
	if n.Status.LastScaleTime != nil {
		meta["last_scale_time"] = formatTime(n.Status.LastScaleTime.Time)
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == autoscalingv2.AbleToScale || cond.Type == autoscalingv2.ScalingLimited {
			meta[string(cond.Type)] = cond.Reason + ": " + cond.Message
		}
	}
	c.point(changeKey("scale", n, fromS+"-"+toS), eventScale, labels, meta)
}
