package watch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels every event of an object carries (documented in docs/kubernetes.md).
const (
	labelNamespace = "namespace"
	labelKind      = "kind"
	labelName      = "name"
	labelService   = "service"
	labelApp       = "app"
	labelOutcome   = "outcome"
)

// The Kubernetes labels the service and app labels come from.
const (
	k8sNameLabel = "app.kubernetes.io/name"
	k8sAppLabel  = "app"
	changeCause  = "kubernetes.io/change-cause"
)

// baseLabels are the labels of every event of obj: the static ones, then
// namespace, kind, name, and service and app from the object's standard
// labels or, failing those, its pod template's. service is
// app.kubernetes.io/name, else app; app is app, else app.kubernetes.io/name:
// both are set when either label is.
func baseLabels(static map[string]string, kind string, obj metav1.Object, podLabels map[string]string) map[string]string {
	l := make(map[string]string, len(static)+5)
	for k, v := range static {
		l[k] = v
	}
	l[labelKind] = kind
	l[labelName] = obj.GetName()
	if ns := obj.GetNamespace(); ns != "" {
		l[labelNamespace] = ns
	}
	pick := func(keys ...string) string {
		for _, k := range keys {
			for _, src := range []map[string]string{obj.GetLabels(), podLabels} {
				if v := src[k]; v != "" {
					return v
				}
			}
		}
		return ""
	}
	if v := pick(k8sNameLabel, k8sAppLabel); v != "" {
		l[labelService] = v
	}
	if v := pick(k8sAppLabel, k8sNameLabel); v != "" {
		l[labelApp] = v
	}
	return l
}

// with returns a copy of l with more labels.
func with(l map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(l)+len(kv)/2)
	for k, v := range l {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// templateHash is a short digest of a pod template (any JSON-encodable
// form): two templates are the same rollout target when it is equal.
func templateHash(tmpl any) string {
	b, err := json.Marshal(tmpl)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:10]
}

// images lists a pod's containers as name=image, init containers first.
func images(spec *corev1.PodSpec) string {
	var parts []string
	for _, c := range spec.InitContainers {
		parts = append(parts, c.Name+"="+c.Image)
	}
	for _, c := range spec.Containers {
		parts = append(parts, c.Name+"="+c.Image)
	}
	return strings.Join(parts, ",")
}
