package charttest

import (
	"encoding/base64"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/tidemark/tidemark/config"
)

const (
	chartDir    = "../helm/tidemark"
	releaseName = "tm"
	namespace   = "observability"
	fullname    = "tm-tidemark"
	serverPort  = 9470
	dataPath    = "/data"
	// kubeVersion is the cluster version the chart is rendered for; the
	// library's default is older than the chart's kubeVersion constraint.
	kubeVersion = "v1.34.0"
)

// rendered is one render of the chart, every manifest decoded.
type rendered struct {
	objects  []runtime.Object             // typed core and apps objects
	monitors []*unstructured.Unstructured // monitoring.coreos.com objects
	notes    string
}

// renderChart renders the chart as `helm template` does (client only, no
// cluster), with the given values over the chart's defaults.
func renderChart(t *testing.T, valuesYAML string) (*release.Release, error) {
	t.Helper()
	return renderChartWith(t, valuesYAML, func(*action.Install) {})
}

// renderChartWith is renderChart with the install action adjusted by opt.
func renderChartWith(t *testing.T, valuesYAML string, opt func(*action.Install)) (*release.Release, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	require.NoError(t, err)
	vals, err := chartutil.ReadValues([]byte(valuesYAML))
	require.NoError(t, err)

	install := action.NewInstall(&action.Configuration{Log: t.Logf})
	install.ClientOnly = true
	install.DryRun = true
	install.DryRunOption = "client"
	install.Replace = true
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.KubeVersion, err = chartutil.ParseKubeVersion(kubeVersion)
	require.NoError(t, err)
	opt(install)
	return install.Run(chrt, vals)
}

// render renders the chart and decodes every manifest strictly: unknown or
// duplicate fields and kinds the test does not know are failures.
func render(t *testing.T, valuesYAML string) *rendered {
	t.Helper()
	rel, err := renderChart(t, valuesYAML)
	require.NoError(t, err)

	scheme := runtime.NewScheme()
	require.NoError(t, corev1.AddToScheme(scheme))
	require.NoError(t, appsv1.AddToScheme(scheme))
	require.NoError(t, policyv1.AddToScheme(scheme))
	codec := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})

	docs := releaseutil.SplitManifests(rel.Manifest)
	names := make([]string, 0, len(docs))
	for name := range docs {
		names = append(names, name)
	}
	sort.Strings(names)

	r := &rendered{notes: rel.Info.Notes}
	for _, name := range names {
		doc := []byte(docs[name])
		var tm metav1.TypeMeta
		require.NoError(t, yaml.Unmarshal(doc, &tm), "%s:\n%s", name, doc)
		if tm.GroupVersionKind().Group == "monitoring.coreos.com" {
			obj := map[string]any{}
			require.NoError(t, yaml.UnmarshalStrict(doc, &obj), "%s:\n%s", name, doc)
			r.monitors = append(r.monitors, &unstructured.Unstructured{Object: obj})
			continue
		}
		obj, _, err := codec.Decode(doc, nil, nil)
		require.NoError(t, err, "%s:\n%s", name, doc)
		r.objects = append(r.objects, obj)
	}
	return r
}

func all[T runtime.Object](r *rendered) []T {
	var out []T
	for _, o := range r.objects {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func one[T runtime.Object](t *testing.T, r *rendered) T {
	t.Helper()
	list := all[T](r)
	require.Len(t, list, 1)
	return list[0]
}

// kinds lists the rendered objects as sorted "Kind/name".
func (r *rendered) kinds() []string {
	var out []string
	for _, o := range r.objects {
		m, err := metaOf(o)
		if err != nil {
			panic(err)
		}
		out = append(out, o.GetObjectKind().GroupVersionKind().Kind+"/"+m.GetName())
	}
	for _, u := range r.monitors {
		out = append(out, u.GetKind()+"/"+u.GetName())
	}
	sort.Strings(out)
	return out
}

func metaOf(o runtime.Object) (metav1.Object, error) {
	type accessor interface{ GetObjectMeta() metav1.Object }
	if a, ok := o.(accessor); ok {
		return a.GetObjectMeta(), nil
	}
	return nil, os.ErrInvalid
}

// fileConfig mirrors the server's config file format, for a strict decode
// independent of the server's own parser.
type fileConfig struct {
	Organizations []struct {
		Slug   string `json:"slug"`
		Tokens []struct {
			Name      string `json:"name"`
			Scope     string `json:"scope"`
			Value     string `json:"value"`
			ValueFile string `json:"value_file"`
		} `json:"tokens"`
	} `json:"organizations"`
}

// wantToken is a token the values declare.
type wantToken struct {
	org, name, scope, key string
	value                 string // empty: generated by the chart, or from existingSecret
}

func TestRender(t *testing.T) {
	tests := []struct {
		name   string
		values string

		wantKinds []string
		// wantSecret is the Secret mounted for the tokens; empty when no
		// token is declared.
		wantSecret string
		// chartSecret is whether the chart renders that Secret.
		chartSecret bool
		mountPath   string
		tokens      []wantToken
		check       func(t *testing.T, r *rendered)
	}{
		{
			name:      "defaults",
			values:    "",
			wantKinds: []string{"ConfigMap/" + fullname, "Service/" + fullname, "ServiceAccount/" + fullname, "StatefulSet/" + fullname},
			check: func(t *testing.T, r *rendered) {
				sts := one[*appsv1.StatefulSet](t, r)
				require.Len(t, sts.Spec.VolumeClaimTemplates, 1)
				pvc := sts.Spec.VolumeClaimTemplates[0]
				require.Equal(t, "data", pvc.Name)
				require.Nil(t, pvc.Spec.StorageClassName, "the cluster's default StorageClass")
				require.Equal(t, "10Gi", pvc.Spec.Resources.Requests.Storage().String())
				require.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, pvc.Spec.AccessModes)
				c := sts.Spec.Template.Spec.Containers[0]
				require.Equal(t, "ghcr.io/tidemark/tidemark:0.1.0", c.Image)
				require.Contains(t, c.Args, "--storage.retention=15d")
				require.Empty(t, c.Env, "no GOMEMLIMIT without a memory limit")
				require.Contains(t, r.notes, "/tidemark token create --storage.path=/data --org default --scope admin")
				require.NotContains(t, r.notes, "get secret")
			},
		},
		{
			name: "tokens from values",
			values: `
organizations:
  - slug: default
    tokens:
      - name: grafana
        scope: read
        value: grafana-read-token-0123456789
      - name: ci
        scope: write
  - slug: team-a
    tokens:
      - name: ops
        scope: admin
        secretKey: team-a.ops
        value: team-a-admin-token-0123456789
  - slug: empty
`,
			wantKinds:   []string{"ConfigMap/" + fullname, "Secret/" + fullname + "-tokens", "Service/" + fullname, "ServiceAccount/" + fullname, "StatefulSet/" + fullname},
			wantSecret:  fullname + "-tokens",
			chartSecret: true,
			mountPath:   "/etc/tidemark/tokens",
			tokens: []wantToken{
				{org: "default", name: "grafana", scope: "read", key: "grafana", value: "grafana-read-token-0123456789"},
				{org: "default", name: "ci", scope: "write", key: "ci"},
				{org: "team-a", name: "ops", scope: "admin", key: "team-a.ops", value: "team-a-admin-token-0123456789"},
			},
			check: func(t *testing.T, r *rendered) {
				sec := one[*corev1.Secret](t, r)
				require.Regexp(t, `^[a-zA-Z0-9]{48}$`, string(sec.Data["ci"]), "a generated token")
				require.Contains(t, r.notes, "get secret "+fullname+"-tokens -o jsonpath='{.data.grafana}'")
				require.Contains(t, r.notes, `{.data.team-a\.ops}`)
				require.NotContains(t, r.notes, "token create")
				ann := one[*appsv1.StatefulSet](t, r).Spec.Template.Annotations
				require.Regexp(t, `^[0-9a-f]{64}$`, ann["checksum/secret"])
			},
		},
		{
			name: "existing secret",
			values: `
existingSecret: my-tokens
tokensMountPath: /var/run/secrets/tidemark/
organizations:
  - slug: default
    tokens:
      - name: grafana
        scope: read
      - name: rollouts
        scope: write
`,
			wantKinds:  []string{"ConfigMap/" + fullname, "Service/" + fullname, "ServiceAccount/" + fullname, "StatefulSet/" + fullname},
			wantSecret: "my-tokens",
			mountPath:  "/var/run/secrets/tidemark",
			tokens: []wantToken{
				{org: "default", name: "grafana", scope: "read", key: "grafana"},
				{org: "default", name: "rollouts", scope: "write", key: "rollouts"},
			},
			check: func(t *testing.T, r *rendered) {
				require.NotContains(t, one[*appsv1.StatefulSet](t, r).Spec.Template.Annotations, "checksum/secret")
				require.Contains(t, r.notes, "get secret my-tokens -o jsonpath='{.data.rollouts}'")
				require.Contains(t, r.notes, "rollout restart statefulset/"+fullname)
			},
		},
		{
			name: "service monitor",
			values: `
serviceMonitor:
  enabled: true
  labels:
    release: kube-prometheus-stack
  interval: 15s
`,
			wantKinds: []string{"ConfigMap/" + fullname, "Service/" + fullname, "ServiceAccount/" + fullname, "ServiceMonitor/" + fullname, "StatefulSet/" + fullname},
			check: func(t *testing.T, r *rendered) {
				sm := r.monitors[0]
				require.Equal(t, "monitoring.coreos.com/v1", sm.GetAPIVersion())
				require.Equal(t, namespace, sm.GetNamespace())
				require.Equal(t, "kube-prometheus-stack", sm.GetLabels()["release"])

				sel, found, err := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
				require.NoError(t, err)
				require.True(t, found)
				svc := one[*corev1.Service](t, r)
				require.True(t, labels.SelectorFromSet(sel).Matches(labels.Set(svc.Labels)), "the ServiceMonitor selects the Service")

				eps, found, err := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
				require.NoError(t, err)
				require.True(t, found)
				require.Len(t, eps, 1)
				ep := eps[0].(map[string]any)
				require.Equal(t, "http", ep["port"])
				require.Equal(t, "/metrics", ep["path"])
				require.Equal(t, "15s", ep["interval"])
				require.Equal(t, svc.Spec.Ports[0].Name, ep["port"])
			},
		},
		{
			name: "storage, resources and flags",
			values: `
fullnameOverride: tsdb
image:
  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
persistence:
  storageClass: "-"
  size: 200Gi
retention: 90d
log:
  format: json
extraArgs:
  - --events.compat-metric-names=last9_change_events,last9_domain_events
resources:
  limits:
    memory: 4Gi
service:
  port: 80
`,
			wantKinds: []string{"ConfigMap/tsdb", "Service/tsdb", "ServiceAccount/tsdb", "StatefulSet/tsdb"},
			check: func(t *testing.T, r *rendered) {
				sts := one[*appsv1.StatefulSet](t, r)
				pvc := sts.Spec.VolumeClaimTemplates[0]
				require.NotNil(t, pvc.Spec.StorageClassName)
				require.Equal(t, "", *pvc.Spec.StorageClassName)
				require.Equal(t, "200Gi", pvc.Spec.Resources.Requests.Storage().String())
				c := sts.Spec.Template.Spec.Containers[0]
				require.Equal(t, "ghcr.io/tidemark/tidemark@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", c.Image)
				require.Contains(t, c.Args, "--storage.retention=90d")
				require.Contains(t, c.Args, "--log.format=json")
				require.Equal(t, "--events.compat-metric-names=last9_change_events,last9_domain_events", c.Args[len(c.Args)-1])
				require.Len(t, c.Env, 1)
				require.Equal(t, "GOMEMLIMIT", c.Env[0].Name)
				require.Equal(t, "limits.memory", c.Env[0].ValueFrom.ResourceFieldRef.Resource)
				svc := one[*corev1.Service](t, r)
				require.Equal(t, int32(80), svc.Spec.Ports[0].Port)
				require.Contains(t, r.notes, "http://tsdb.observability.svc:80")
			},
		},
		{
			name: "no persistence",
			values: `
persistence:
  enabled: false
serviceAccount:
  create: false
`,
			wantKinds: []string{"ConfigMap/" + fullname, "Service/" + fullname, "StatefulSet/" + fullname},
			check: func(t *testing.T, r *rendered) {
				sts := one[*appsv1.StatefulSet](t, r)
				require.Empty(t, sts.Spec.VolumeClaimTemplates)
				require.Equal(t, "default", sts.Spec.Template.Spec.ServiceAccountName)
				v := volume(t, sts, "data")
				require.NotNil(t, v.EmptyDir)
				require.Contains(t, r.notes, "persistence is disabled")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := render(t, tc.values)
			require.Equal(t, tc.wantKinds, r.kinds())
			if !slices.ContainsFunc(tc.wantKinds, func(k string) bool { return strings.HasPrefix(k, "ServiceMonitor/") }) {
				require.Empty(t, r.monitors, "a ServiceMonitor only when enabled")
			}
			checkLabels(t, r)
			sts := one[*appsv1.StatefulSet](t, r)
			checkStatefulSet(t, r, sts)
			checkConfig(t, r, sts, tc.wantSecret, tc.chartSecret, tc.mountPath, tc.tokens)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// checkLabels checks the recommended labels on every object.
func checkLabels(t *testing.T, r *rendered) {
	t.Helper()
	check := func(kind string, l map[string]string) {
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "helm.sh/chart"} {
			require.NotEmpty(t, l[k], "%s: label %s", kind, k)
		}
		require.Equal(t, "Helm", l["app.kubernetes.io/managed-by"], kind)
		require.Equal(t, releaseName, l["app.kubernetes.io/instance"], kind)
	}
	for _, o := range r.objects {
		m, err := metaOf(o)
		require.NoError(t, err)
		check(o.GetObjectKind().GroupVersionKind().Kind, m.GetLabels())
		require.Equal(t, namespace, m.GetNamespace())
	}
	for _, u := range r.monitors {
		check(u.GetKind(), u.GetLabels())
	}
}

func volume(t *testing.T, sts *appsv1.StatefulSet, name string) corev1.Volume {
	t.Helper()
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	require.Failf(t, "no volume", "volume %q", name)
	return corev1.Volume{}
}

func mount(t *testing.T, c corev1.Container, name string) corev1.VolumeMount {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.Name == name {
			return m
		}
	}
	require.Failf(t, "no volume mount", "volume mount %q", name)
	return corev1.VolumeMount{}
}

// portNumber resolves a probe's port (a number or a container port name).
func portNumber(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	require.Failf(t, "unknown port", "port %q", p.StrVal)
	return 0
}

// checkStatefulSet checks what every render must hold: one replica, the
// selector, the Service, probes, security and the data directory.
func checkStatefulSet(t *testing.T, r *rendered, sts *appsv1.StatefulSet) {
	t.Helper()
	require.NotNil(t, sts.Spec.Replicas)
	require.Equal(t, int32(1), *sts.Spec.Replicas)

	podLabels := labels.Set(sts.Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	require.NoError(t, err)
	require.True(t, sel.Matches(podLabels), "the selector matches the pod template")

	svc := one[*corev1.Service](t, r)
	require.Equal(t, svc.Name, sts.Spec.ServiceName)
	require.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels), "the Service selects the pod")
	require.Len(t, svc.Spec.Ports, 1)
	require.Equal(t, "http", svc.Spec.Ports[0].Name)

	pod := sts.Spec.Template.Spec
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	require.Equal(t, serverPort, int(portNumber(t, c, svc.Spec.Ports[0].TargetPort)), "the Service targets the server's port")

	// Probes.
	for _, p := range []struct {
		probe *corev1.Probe
		path  string
	}{{c.LivenessProbe, "/-/healthy"}, {c.ReadinessProbe, "/-/ready"}} {
		require.NotNil(t, p.probe)
		require.NotNil(t, p.probe.HTTPGet)
		require.Equal(t, p.path, p.probe.HTTPGet.Path)
		require.Equal(t, serverPort, int(portNumber(t, c, p.probe.HTTPGet.Port)))
	}
	require.Contains(t, c.Args, "--web.listen-address=:9470")

	// Non-root, read-only root filesystem, no privilege escalation.
	require.NotNil(t, pod.SecurityContext)
	require.NotNil(t, pod.SecurityContext.RunAsNonRoot)
	require.True(t, *pod.SecurityContext.RunAsNonRoot)
	require.NotNil(t, pod.SecurityContext.FSGroup)
	require.NotNil(t, c.SecurityContext)
	require.NotNil(t, c.SecurityContext.RunAsNonRoot)
	require.True(t, *c.SecurityContext.RunAsNonRoot)
	require.NotNil(t, c.SecurityContext.RunAsUser)
	require.NotZero(t, *c.SecurityContext.RunAsUser)
	require.NotNil(t, c.SecurityContext.ReadOnlyRootFilesystem)
	require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	require.NotNil(t, c.SecurityContext.AllowPrivilegeEscalation)
	require.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
	require.Equal(t, []corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop)
	require.Equal(t, "/tmp", mount(t, c, "tmp").MountPath, "a writable /tmp under a read-only root")

	// The server is started with its data directory on the data volume.
	require.Equal(t, "serve", c.Args[0])
	require.Contains(t, c.Args, "--storage.path="+dataPath)
	require.Equal(t, dataPath, mount(t, c, "data").MountPath)

	// Every mount has a volume or a claim template.
	claims := map[string]bool{}
	for _, pvc := range sts.Spec.VolumeClaimTemplates {
		claims[pvc.Name] = true
	}
	for _, m := range c.VolumeMounts {
		if claims[m.Name] {
			continue
		}
		volume(t, sts, m.Name)
	}

	require.Regexp(t, `^[0-9a-f]{64}$`, sts.Spec.Template.Annotations["checksum/config"])
}

// checkConfig checks the config file: the flag names it in the ConfigMap's
// mount, its token files are the Secret's keys under the Secret's mount, and
// the server's own config package accepts it.
func checkConfig(t *testing.T, r *rendered, sts *appsv1.StatefulSet, wantSecret string, chartSecret bool, mountPath string, tokens []wantToken) {
	t.Helper()
	c := sts.Spec.Template.Spec.Containers[0]

	// --config.file names the key of the ConfigMap, where it is mounted.
	var configFile string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			configFile = v
		}
	}
	require.NotEmpty(t, configFile)
	cm := one[*corev1.ConfigMap](t, r)
	cmVol := volume(t, sts, "config")
	require.NotNil(t, cmVol.ConfigMap)
	require.Equal(t, cm.Name, cmVol.ConfigMap.Name)
	require.Equal(t, mount(t, c, "config").MountPath, path.Dir(configFile))
	raw, ok := cm.Data[path.Base(configFile)]
	require.True(t, ok, "the ConfigMap has key %s", path.Base(configFile))

	var cfg fileConfig
	require.NoError(t, yaml.UnmarshalStrict([]byte(raw), &cfg), raw)

	// The tokens, in the config file and in the Secret.
	secrets := all[*corev1.Secret](r)
	if wantSecret == "" {
		require.Empty(t, tokens)
		require.Empty(t, secrets)
		for _, v := range sts.Spec.Template.Spec.Volumes {
			require.Nil(t, v.Secret, "no Secret volume without tokens")
		}
	} else {
		v := volume(t, sts, "tokens")
		require.NotNil(t, v.Secret)
		require.Equal(t, wantSecret, v.Secret.SecretName)
		require.Equal(t, mountPath, mount(t, c, "tokens").MountPath)
		require.True(t, mount(t, c, "tokens").ReadOnly)
		if chartSecret {
			require.Len(t, secrets, 1)
			require.Equal(t, wantSecret, secrets[0].Name)
			require.Len(t, secrets[0].Data, len(tokens), "one key per token")
		} else {
			require.Empty(t, secrets)
		}
	}

	var got []wantToken
	for _, o := range cfg.Organizations {
		for _, tok := range o.Tokens {
			require.Empty(t, tok.Value, "no token value in the ConfigMap")
			dir, key := path.Split(tok.ValueFile)
			require.Equal(t, mountPath+"/", dir, "value_file %s is in the Secret's mount", tok.ValueFile)
			got = append(got, wantToken{org: o.Slug, name: tok.Name, scope: tok.Scope, key: key})
		}
	}
	var want []wantToken
	for _, w := range tokens {
		w.value = ""
		want = append(want, w)
	}
	require.Equal(t, want, got)

	// The server's parser: the token files are laid out as the Secret
	// volume would be, in a temporary directory.
	dir := t.TempDir()
	values := map[string]string{}
	for _, w := range tokens {
		value := w.value
		switch {
		case chartSecret:
			sec := secrets[0]
			require.Contains(t, sec.Data, w.key)
			value = string(sec.Data[w.key])
			if w.value != "" {
				require.Equal(t, w.value, value)
			}
		case value == "":
			value = base64.RawURLEncoding.EncodeToString([]byte("existing secret " + w.key))
		}
		values[w.key] = value
		require.NoError(t, os.WriteFile(filepath.Join(dir, w.key), []byte(value+"\n"), 0o600))
	}
	local := raw
	if mountPath != "" {
		local = strings.ReplaceAll(raw, mountPath+"/", dir+"/")
	}
	parsed, err := config.Parse([]byte(local), dir)
	require.NoError(t, err, local)
	var slugs []string
	for _, o := range cfg.Organizations {
		slugs = append(slugs, o.Slug)
	}
	var parsedSlugs []string
	var parsedTokens []wantToken
	for _, o := range parsed.Organizations {
		parsedSlugs = append(parsedSlugs, o.Slug)
		for _, tok := range o.Tokens {
			key := filepath.Base(tok.ValueFile)
			require.Equal(t, values[key], tok.Value, "token %s/%s", o.Slug, tok.Name)
			parsedTokens = append(parsedTokens, wantToken{org: o.Slug, name: tok.Name, scope: tok.Scope, key: key})
		}
	}
	require.Equal(t, slugs, parsedSlugs)
	require.Equal(t, want, parsedTokens)
}

func TestConfigChangeRollsThePod(t *testing.T) {
	checksum := func(values string) string {
		return one[*appsv1.StatefulSet](t, render(t, values)).Spec.Template.Annotations["checksum/config"]
	}
	withTokens := `
organizations:
  - slug: default
    tokens:
      - {name: grafana, scope: read, value: grafana-read-token-0123456789}
`
	require.Equal(t, checksum(""), checksum(""), "a render is stable")
	require.Equal(t, checksum(withTokens), checksum(withTokens), "a render is stable")
	require.NotEqual(t, checksum(""), checksum(withTokens))
	require.NotEqual(t, checksum(withTokens), checksum(strings.Replace(withTokens, "scope: read", "scope: write", 1)))
}

func TestExtraConfig(t *testing.T) {
	r := render(t, `
extraConfig:
  alerting:
    alertmanager_urls: ["http://alertmanager:9093"]
`)
	cm := one[*corev1.ConfigMap](t, r)
	var cfg map[string]any
	require.NoError(t, yaml.UnmarshalStrict([]byte(cm.Data["tidemark.yml"]), &cfg))
	require.Equal(t, map[string]any{
		"alerting":      map[string]any{"alertmanager_urls": []any{"http://alertmanager:9093"}},
		"organizations": []any{},
	}, cfg)
}

func TestRenderRefusesBadValues(t *testing.T) {
	tests := []struct {
		name    string
		values  string
		wantErr string
	}{
		{
			name: "unknown scope",
			values: `
organizations: [{slug: default, tokens: [{name: grafana, scope: owner}]}]`,
			wantErr: "scope",
		},
		{
			name: "bad slug",
			values: `
organizations: [{slug: Team_A}]`,
			wantErr: "slug",
		},
		{
			name: "value_file is the chart's business",
			values: `
organizations: [{slug: default, tokens: [{name: grafana, scope: read, value_file: /x}]}]`,
			wantErr: "value_file",
		},
		{
			name: "organization declared twice",
			values: `
organizations: [{slug: default}, {slug: default}]`,
			wantErr: `organization "default" is declared twice`,
		},
		{
			name: "same Secret key in two organizations",
			values: `
organizations:
  - {slug: a, tokens: [{name: grafana, scope: read}]}
  - {slug: b, tokens: [{name: grafana, scope: read}]}`,
			wantErr: `Secret key "grafana" is also used by organizations[0] (a) tokens[0]`,
		},
		{
			name: "Secret key with a slash",
			values: `
organizations: [{slug: a, tokens: [{name: team/grafana, scope: read}]}]`,
			wantErr: `Secret key "team/grafana" is not accepted`,
		},
		{
			name: "short token",
			values: `
organizations: [{slug: a, tokens: [{name: grafana, scope: read, value: short}]}]`,
			wantErr: "use at least 16 characters",
		},
		{
			name: "token with a space",
			values: `
organizations: [{slug: a, tokens: [{name: grafana, scope: read, value: "abcdefgh ijklmnopq"}]}]`,
			wantErr: "contains whitespace",
		},
		{
			name:    "log format",
			values:  `log: {format: text}`,
			wantErr: "format",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(t, tc.values)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func TestLint(t *testing.T) {
	for name, values := range map[string]string{
		"defaults": "",
		"everything": `
organizations:
  - slug: default
    tokens: [{name: grafana, scope: read}, {name: ci, scope: write}]
serviceMonitor: {enabled: true}
persistence: {enabled: false}
resources: {limits: {memory: 1Gi}}
podAnnotations: {example.com/team: observability}
`,
		"remote": remoteValues + remoteTenants + `
serviceMonitor: {enabled: true}
watcher: {enabled: true}
`,
	} {
		t.Run(name, func(t *testing.T) {
			vals, err := chartutil.ReadValues([]byte(values))
			require.NoError(t, err)
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = namespace
			lint.KubeVersion, err = chartutil.ParseKubeVersion(kubeVersion)
			require.NoError(t, err)
			res := lint.Run([]string{chartDir}, vals)
			var problems []string
			for _, m := range res.Messages {
				if m.Severity > support.InfoSev {
					problems = append(problems, m.Error())
				}
			}
			require.Empty(t, problems)
			require.Empty(t, res.Errors)
		})
	}
}
