package watch

// Event names (documented in docs/kubernetes.md). Each event also carries
// the labels namespace, kind and name, so one name serves every object.
const (
	// eventDeploy is a rollout of a new pod template: a Deployment's,
	// StatefulSet's, DaemonSet's or Argo Rollout's. It starts when the
	// template changes and stops when every replica runs it (outcome
	// completed) or the rollout fails, is aborted, superseded or deleted.
	eventDeploy = "deploy"
	// eventStep is an Argo Rollout's canary step (label step: its index).
	eventStep = "deploy-step"
	// eventWeight is an Argo Rollout's canary weight (label weight).
	eventWeight = "deploy-weight"
	// eventPause is an Argo Rollout's pause.
	eventPause = "deploy-pause"
	// eventPromote is an Argo Rollout's promotion (a point).
	eventPromote = "deploy-promote"
	// eventScale is a HorizontalPodAutoscaler's scale-up or scale-down (a
	// point).
	eventScale = "scale"
	// eventConfig is a change of a ConfigMap's or Secret's content (a
	// point).
	eventConfig = "config"
)
