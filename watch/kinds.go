package watch

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Kind is a kind of Kubernetes object the watcher records changes of, named
// by its resource (as in RBAC rules and `kubectl get`).
type Kind string

// The kinds the watcher knows.
const (
	Deployments  Kind = "deployments"
	StatefulSets Kind = "statefulsets"
	DaemonSets   Kind = "daemonsets"
	Rollouts     Kind = "rollouts" // Argo Rollouts, argoproj.io/v1alpha1
	HPAs         Kind = "horizontalpodautoscalers"
	ConfigMaps   Kind = "configmaps"
	Secrets      Kind = "secrets"
)

// AllKinds are the kinds in the order they are listed in help and docs.
var AllKinds = []Kind{Deployments, StatefulSets, DaemonSets, Rollouts, HPAs, ConfigMaps, Secrets}

// RolloutsResource is the Argo Rollouts resource, read through the dynamic
// client.
var RolloutsResource = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}

// kindAliases are the other names accepted for each kind (singulars and
// kubectl's short names).
var kindAliases = map[string]Kind{
	"deployment": Deployments, "deploy": Deployments,
	"statefulset": StatefulSets, "sts": StatefulSets,
	"daemonset": DaemonSets, "ds": DaemonSets,
	"rollout": Rollouts, "ro": Rollouts,
	"horizontalpodautoscaler": HPAs, "hpa": HPAs, "hpas": HPAs,
	"configmap": ConfigMaps, "cm": ConfigMaps,
	"secret": Secrets,
}

// ParseKinds parses kind names, each item possibly a comma-separated list,
// accepting resource names, singulars and kubectl's short names. Duplicates
// are dropped; the order is AllKinds'.
func ParseKinds(items []string) ([]Kind, error) {
	seen := map[Kind]bool{}
	for _, item := range items {
		for _, s := range strings.Split(item, ",") {
			s = strings.ToLower(strings.TrimSpace(s))
			if s == "" {
				continue
			}
			k := Kind(s)
			if !slices.Contains(AllKinds, k) {
				a, ok := kindAliases[s]
				if !ok {
					return nil, fmt.Errorf("kind %q is not known; accepted: %s", s, kindList(AllKinds))
				}
				k = a
			}
			seen[k] = true
		}
	}
	var out []Kind
	for _, k := range AllKinds {
		if seen[k] {
			out = append(out, k)
		}
	}
	return out, nil
}

func kindList(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
