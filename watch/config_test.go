package watch

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func TestConfigChanges(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: meta("checkout-config", 1)}
	cm.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: `{"data":{"mode":"blue-mode-value"}}`}
	cm.Data = map[string]string{"mode": "blue-mode-value", "db_hint": "hunter2-s3cr3t", "gone": "old-value-x"}
	sec := &corev1.Secret{ObjectMeta: meta("checkout-db", 1), Type: corev1.SecretTypeOpaque}
	sec.Data = map[string][]byte{"password": []byte("p4ssw0rd-version-1")}
	release := &corev1.Secret{ObjectMeta: meta("sh.helm.release.v1.checkout.v3", 1), Type: "helm.sh/release.v1"}
	release.Data = map[string][]byte{"release": []byte("deployed")}
	h := newHarness(t, cm, sec, release)
	h.start(Options{Kinds: []Kind{ConfigMaps, Secrets}})

	cm2 := cm.DeepCopy()
	cm2.Data["mode"] = "green-mode-value"
	cm2.Data["added"] = "new-value-y"
	delete(cm2.Data, "gone")
	h.update(cm2)
	// Labels and annotations alone are no content change.
	cm3 := cm2.DeepCopy()
	cm3.Labels["team"] = "payments"
	h.update(cm3)
	sec2 := sec.DeepCopy()
	sec2.Data["password"] = []byte("p4ssw0rd-version-2")
	h.update(sec2)
	rel2 := release.DeepCopy()
	rel2.Data["release"] = []byte("superseded")
	h.update(rel2)

	evs := h.rec.events()
	require.Equal(t, []string{
		"config start app=checkout-config,kind=ConfigMap,name=checkout-config,service=checkout-config",
		"config stop app=checkout-config,kind=ConfigMap,name=checkout-config,service=checkout-config",
		"config start app=checkout-db,kind=Secret,name=checkout-db,service=checkout-db",
		"config stop app=checkout-db,kind=Secret,name=checkout-db,service=checkout-db",
	}, summaries(evs))
	require.Equal(t, "added", evs[0].Metadata["keys_added"])
	require.Equal(t, "gone", evs[0].Metadata["keys_removed"])
	require.Equal(t, "mode", evs[0].Metadata["keys_changed"])
	require.Regexp(t, `^[0-9a-f]{16}$`, evs[0].Metadata["hash_before"])
	require.NotEqual(t, evs[0].Metadata["hash_before"], evs[0].Metadata["hash_after"])
	require.Equal(t, "password", evs[2].Metadata["keys_changed"])
	var values []string
	for _, v := range []string{"blue-mode-value", "green-mode-value", "hunter2-s3cr3t", "old-value-x", "new-value-y", "p4ssw0rd-version-1", "p4ssw0rd-version-2"} {
		values = append(values, v, base64.StdEncoding.EncodeToString([]byte(v)))
	}
	noValue(t, evs, values...)
}

func TestRedaction(t *testing.T) {
	sec := &corev1.Secret{ObjectMeta: meta("db", 1)}
	sec.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: `{"stringData":{"password":"p4ss-in-annotation"}}`}
	sec.Data = map[string][]byte{"password": []byte("p4ss-in-data")}
	sec.StringData = map[string]string{"token": "t0ken-in-stringdata"}
	out, err := redactSecret(sec)
	require.NoError(t, err)
	b, err := json.Marshal(out)
	require.NoError(t, err)
	for _, v := range []string{"p4ss-in-annotation", "p4ss-in-data", "t0ken-in-stringdata"} {
		require.NotContains(t, string(b), v)
		require.NotContains(t, string(b), base64.StdEncoding.EncodeToString([]byte(v)))
	}
	require.Contains(t, sec.Annotations, corev1.LastAppliedConfigAnnotation, "the original is not changed")
	// The digest is keyed by the object: the same value elsewhere differs.
	require.NotEqual(t, digest("uid-a", []byte("k"), []byte("v")), digest("uid-b", []byte("k"), []byte("v")))
}
