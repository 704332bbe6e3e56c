package watch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Secret types whose changes are bookkeeping, not configuration: Helm's
// release records and service account tokens.
var ignoredSecretTypes = map[corev1.SecretType]bool{
	"helm.sh/release.v1":                 true,
	corev1.SecretTypeServiceAccountToken: true,
	corev1.SecretTypeBootstrapToken:      true,
}

// digest is a keyed digest of one value: HMAC-SHA256 keyed by the object's
// uid, hex, 16 characters. Keyed, so that the digest of a short or guessable
// value cannot be looked up in a precomputed table nor compared across
// objects; short, as it only tells versions apart.
func digest(uid string, parts ...[]byte) string {
	m := hmac.New(sha256.New, []byte(uid))
	for _, p := range parts {
		m.Write(p)
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// redactConfigMap replaces a ConfigMap's values by their digests before the
// informer stores it, so that the watcher keeps no content in memory.
func redactConfigMap(obj any) (any, error) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return obj, nil
	}
	out := &corev1.ConfigMap{TypeMeta: cm.TypeMeta, ObjectMeta: *cm.ObjectMeta.DeepCopy(), Immutable: cm.Immutable}
	out.ManagedFields = nil
	delete(out.Annotations, corev1.LastAppliedConfigAnnotation)
	markRedacted(&out.ObjectMeta)
	uid := string(cm.UID)
	if len(cm.Data) > 0 {
		out.Data = make(map[string]string, len(cm.Data))
		for k, v := range cm.Data {
			out.Data[k] = digest(uid, []byte(k), []byte(v))
		}
	}
	if len(cm.BinaryData) > 0 {
		out.BinaryData = make(map[string][]byte, len(cm.BinaryData))
		for k, v := range cm.BinaryData {
			out.BinaryData[k] = []byte(digest(uid, []byte(k), v))
		}
	}
	return out, nil
}

// redactSecret replaces a Secret's values by their digests before the
// informer stores it: no Secret value is kept in memory, logged or written.
func redactSecret(obj any) (any, error) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return obj, nil
	}
	out := &corev1.Secret{TypeMeta: s.TypeMeta, ObjectMeta: *s.ObjectMeta.DeepCopy(), Immutable: s.Immutable, Type: s.Type}
	out.ManagedFields = nil
	// The last-applied annotation holds a copy of the values.
	delete(out.Annotations, corev1.LastAppliedConfigAnnotation)
	markRedacted(&out.ObjectMeta)
	uid := string(s.UID)
	data := map[string][]byte{}
	for k, v := range s.Data {
		data[k] = v
	}
	for k, v := range s.StringData {
		data[k] = []byte(v)
	}
	if len(data) > 0 {
		out.Data = make(map[string][]byte, len(data))
		for k, v := range data {
			out.Data[k] = []byte(digest(uid, []byte(k), v))
		}
	}
	return out, nil
}

// contentDigests are the per-key digests of a ConfigMap's or Secret's data
// (as the redaction left them; computed here when it did not run).
func contentDigests(obj any) (metav1.Object, string, map[string]string, bool) {
	if r, err := redactAgain(obj); err == nil {
		obj = r
	}
	out := map[string]string{}
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		for k, v := range o.Data {
			out[k] = v
		}
		for k, v := range o.BinaryData {
			out[k] = string(v)
		}
		return o, "ConfigMap", out, true
	case *corev1.Secret:
		if ignoredSecretTypes[o.Type] {
			return nil, "", nil, false
		}
		for k, v := range o.Data {
			out[k] = string(v)
		}
		return o, "Secret", out, true
	}
	return nil, "", nil, false
}

// redacted marks objects the informer's transform has redacted.
const redactedAnnotation = "tidemark.io/redacted"

func markRedacted(m *metav1.ObjectMeta) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[redactedAnnotation] = "true"
}

// redactAgain redacts an object unless the informer already did.
func redactAgain(obj any) (any, error) {
	m, ok := obj.(metav1.Object)
	if !ok || m.GetAnnotations()[redactedAnnotation] == "true" {
		return obj, nil
	}
	switch obj.(type) {
	case *corev1.ConfigMap:
		return redactConfigMap(obj)
	case *corev1.Secret:
		return redactSecret(obj)
	}
	return obj, nil
}

// contentHash is the digest of all of an object's data.
func contentHash(uid string, d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([][]byte, 0, 2*len(keys))
	for _, k := range keys {
		parts = append(parts, []byte(k), []byte(d[k]))
	}
	return digest(uid, parts...)
}

// configs records a change of a ConfigMap's or Secret's content as a point
// "config" with the digests of the content before and after and the names
// of the keys that changed, never a value. A change made while no watcher
// ran is not recorded.
type configs struct {
	static map[string]string
}

func (h *configs) add(*change, any, bool) {}

func (h *configs) update(c *change, oldObj, curObj any) {
	_, _, od, ok := contentDigests(oldObj)
	if !ok {
		return
	}
	obj, kind, nd, ok := contentDigests(curObj)
	if !ok {
		return
	}
	uid := string(obj.GetUID())
	before, after := contentHash(uid, od), contentHash(uid, nd)
	if before == after {
		return
	}
	var added, removed, changed []string
	for k, v := range nd {
		switch ov, had := od[k]; {
		case !had:
			added = append(added, k)
		case ov != v:
			changed = append(changed, k)
		}
	}
	for k := range od {
		if _, has := nd[k]; !has {
			removed = append(removed, k)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	sort.Strings(changed)
	meta := map[string]string{
		"hash_before":  before,
		"hash_after":   after,
		"keys_added":   strings.Join(added, ","),
		"keys_removed": strings.Join(removed, ","),
		"keys_changed": strings.Join(changed, ","),
	}
	c.point(changeKey("config", obj, after), eventConfig, baseLabels(h.static, kind, obj, nil), meta)
}
