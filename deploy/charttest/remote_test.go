package charttest

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/action"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tidemark/tidemark/config"
)

// The state URL's password: it must reach the pod only through a Secret.
const statePassword = "pg-Pa55word-0123"

// remoteValues is the smallest accepted scale-out mode: the engine, the
// state and no volume.
const remoteValues = `
storage:
  backend: remote
  remote:
    writeURL: http://mimir-distributor.mimir.svc:8080/api/v1/push
    queryURL: http://mimir-query-frontend.mimir.svc:8080/prometheus
state:
  url: postgres://tidemark:` + statePassword + `@postgres.db.svc:5432/tidemark
persistence:
  enabled: false
`

// noState is remoteValues without a state URL.
var noState = strings.Replace(remoteValues, "url: postgres://tidemark:"+statePassword+"@postgres.db.svc:5432/tidemark", `url: ""`, 1)

// remoteTenants declares organizations with and without a tenant.
const remoteTenants = `
organizations:
  - slug: default
    tenant: acme-prod
    tokens:
      - {name: grafana, scope: read, value: grafana-read-token-0123456789}
      - {name: ci, scope: write, value: ci-write-token-0123456789}
  - slug: team-a
    tokens:
      - {name: ops, scope: admin, secretKey: team-a.ops, value: team-a-admin-token-0123456789}
`

func TestRenderRemote(t *testing.T) {
	tests := []struct {
		name   string
		values string

		wantKinds    []string
		wantReplicas int32
		// wantArgs are the serve flags after --storage.path, up to
		// --config.file.
		wantArgs []string
		// wantSecret and wantKey are where TIDEMARK_STATE_URL comes from.
		wantSecret, wantKey string
		// wantTenants is what the server's config package reads.
		wantTenants map[string]string
		check       func(t *testing.T, r *rendered, d *appsv1.Deployment)
	}{
		{
			name:   "mimir, state URL from values",
			values: remoteValues + remoteTenants,
			wantKinds: []string{
				"ConfigMap/" + fullname, "Deployment/" + fullname, "PodDisruptionBudget/" + fullname,
				"Secret/" + fullname + "-state", "Secret/" + fullname + "-tokens",
				"Service/" + fullname, "ServiceAccount/" + fullname,
			},
			wantReplicas: 3,
			wantArgs: []string{
				"--storage.backend=remote",
				"--storage.remote.write-url=http://mimir-distributor.mimir.svc:8080/api/v1/push",
				"--storage.remote.query-url=http://mimir-query-frontend.mimir.svc:8080/prometheus",
				"--storage.remote.tenant-header=X-Scope-OrgID",
				"--storage.remote.timeout=2m",
				"--leases.ttl=15s",
				"--leases.renew-interval=5s",
				"--state.url=$(TIDEMARK_STATE_URL)",
			},
			wantSecret:  fullname + "-state",
			wantKey:     "url",
			wantTenants: map[string]string{"default": "acme-prod"},
			check: func(t *testing.T, r *rendered, d *appsv1.Deployment) {
				sec := named[*corev1.Secret](t, r, fullname+"-state")
				require.Equal(t, map[string][]byte{"url": []byte("postgres://tidemark:" + statePassword + "@postgres.db.svc:5432/tidemark")}, sec.Data)
				require.Regexp(t, `^[0-9a-f]{64}$`, d.Spec.Template.Annotations["checksum/state"], "a new URL rolls the pods")

				// Rolling updates: a new replica is ready before an old one stops.
				require.Equal(t, appsv1.RollingUpdateDeploymentStrategyType, d.Spec.Strategy.Type)
				require.Equal(t, intstr.FromInt32(1), *d.Spec.Strategy.RollingUpdate.MaxSurge)
				require.Equal(t, intstr.FromInt32(0), *d.Spec.Strategy.RollingUpdate.MaxUnavailable)

				pdb := one[*policyv1.PodDisruptionBudget](t, r)
				require.Equal(t, fullname, pdb.Name)
				require.Nil(t, pdb.Spec.MinAvailable)
				require.Equal(t, intstr.FromInt32(1), *pdb.Spec.MaxUnavailable)
				sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
				require.NoError(t, err)
				require.True(t, sel.Matches(labels.Set(d.Spec.Template.Labels)), "the PodDisruptionBudget covers the replicas")

				aff := d.Spec.Template.Spec.Affinity
				require.NotNil(t, aff)
				require.NotNil(t, aff.PodAntiAffinity)
				require.Empty(t, aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
				terms := aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
				require.Len(t, terms, 1)
				requireSpreadsReplicas(t, d, terms[0].PodAffinityTerm)

				require.Contains(t, r.notes, "Deployment "+fullname+" (3 replicas)")
				require.Contains(t, r.notes, "within 15s + 5s")
				require.NotContains(t, r.notes, "WARNING")
			},
		},
		{
			name: "cortex, state URL from an existing Secret",
			values: `
storage:
  backend: remote
  remote:
    writeURL: http://cortex-distributor.cortex.svc:8080/api/v1/push
    queryURL: http://cortex-query-frontend.cortex.svc:8080/prometheus
    tenantHeader: X-Scope-OrgID
    timeout: 30s
state:
  existingSecret: tidemark-postgres
  existingSecretKey: dsn
leases:
  ttl: 30s
  renewInterval: 10s
persistence:
  enabled: false
replicas: 5
podDisruptionBudget:
  enabled: false
podAntiAffinityPreset: hard
retention: 400d
`,
			wantKinds:    []string{"ConfigMap/" + fullname, "Deployment/" + fullname, "Service/" + fullname, "ServiceAccount/" + fullname},
			wantReplicas: 5,
			wantArgs: []string{
				"--storage.backend=remote",
				"--storage.remote.write-url=http://cortex-distributor.cortex.svc:8080/api/v1/push",
				"--storage.remote.query-url=http://cortex-query-frontend.cortex.svc:8080/prometheus",
				"--storage.remote.tenant-header=X-Scope-OrgID",
				"--storage.remote.timeout=30s",
				"--leases.ttl=30s",
				"--leases.renew-interval=10s",
				"--state.url=$(TIDEMARK_STATE_URL)",
			},
			wantSecret:  "tidemark-postgres",
			wantKey:     "dsn",
			wantTenants: map[string]string{},
			check: func(t *testing.T, r *rendered, d *appsv1.Deployment) {
				require.NotContains(t, d.Spec.Template.Annotations, "checksum/state", "the chart does not see an existing Secret")
				terms := d.Spec.Template.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
				require.Len(t, terms, 1)
				requireSpreadsReplicas(t, d, terms[0])
				require.Empty(t, d.Spec.Template.Spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution)

				// No tokens declared: the first-start token would be in one
				// replica's emptyDir.
				require.Contains(t, r.notes, "WARNING: no tokens are declared")
				require.NotContains(t, r.notes, "token create")
				require.Contains(t, r.notes, "within 30s + 10s")
			},
		},
		{
			name: "affinity replaces the preset",
			values: remoteValues + `
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions: [{key: pool, operator: In, values: [observability]}]
existingSecret: my-tokens
organizations:
  - slug: default
    tenant: "tenant_1.(x)"
    tokens: [{name: ci, scope: write}]
`,
			wantKinds: []string{
				"ConfigMap/" + fullname, "Deployment/" + fullname, "PodDisruptionBudget/" + fullname,
				"Secret/" + fullname + "-state", "Service/" + fullname, "ServiceAccount/" + fullname,
			},
			wantReplicas: 3,
			wantArgs: []string{
				"--storage.backend=remote",
				"--storage.remote.write-url=http://mimir-distributor.mimir.svc:8080/api/v1/push",
				"--storage.remote.query-url=http://mimir-query-frontend.mimir.svc:8080/prometheus",
				"--storage.remote.tenant-header=X-Scope-OrgID",
				"--storage.remote.timeout=2m",
				"--leases.ttl=15s",
				"--leases.renew-interval=5s",
				"--state.url=$(TIDEMARK_STATE_URL)",
			},
			wantSecret:  fullname + "-state",
			wantKey:     "url",
			wantTenants: map[string]string{"default": "tenant_1.(x)"},
			check: func(t *testing.T, r *rendered, d *appsv1.Deployment) {
				aff := d.Spec.Template.Spec.Affinity
				require.Nil(t, aff.PodAntiAffinity)
				require.Equal(t, "pool", aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Key)
				require.Contains(t, r.notes, "rollout restart deployment/"+fullname)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rel, err := renderChart(t, tc.values)
			require.NoError(t, err)
			require.False(t, strings.Contains(rel.Manifest, statePassword), "the state URL is only in the Secret, base64-encoded")
			require.False(t, strings.Contains(rel.Info.Notes, statePassword), "no state URL in the notes")

			r := render(t, tc.values)
			require.Equal(t, tc.wantKinds, r.kinds())
			require.Empty(t, all[*appsv1.StatefulSet](r), "no StatefulSet")
			require.Empty(t, all[*corev1.PersistentVolumeClaim](r), "no PersistentVolumeClaim")
			checkLabels(t, r)

			d := one[*appsv1.Deployment](t, r)
			require.Equal(t, fullname, d.Name)
			require.NotNil(t, d.Spec.Replicas)
			require.Equal(t, tc.wantReplicas, *d.Spec.Replicas)
			checkRemotePod(t, r, d)

			c := d.Spec.Template.Spec.Containers[0]
			require.Equal(t, tc.wantArgs, serveArgs(t, c))
			require.NotContains(t, strings.Join(c.Args, " "), "--storage.retention", "the engine keeps the samples")

			// The state URL: a variable from the Secret's key, which
			// Kubernetes expands into the flag.
			var env []corev1.EnvVar
			for _, e := range c.Env {
				if e.Name == "TIDEMARK_STATE_URL" {
					env = append(env, e)
				}
			}
			require.Len(t, env, 1)
			require.Empty(t, env[0].Value)
			require.NotNil(t, env[0].ValueFrom)
			require.NotNil(t, env[0].ValueFrom.SecretKeyRef)
			require.Equal(t, tc.wantSecret, env[0].ValueFrom.SecretKeyRef.Name)
			require.Equal(t, tc.wantKey, env[0].ValueFrom.SecretKeyRef.Key)

			cfg := serverConfig(t, r, d.Spec.Template.Spec)
			require.Equal(t, tc.wantTenants, cfg.Tenants())

			if tc.check != nil {
				tc.check(t, r, d)
			}
		})
	}
}

// serveArgs returns the flags between --storage.path and --config.file:
// the ones that depend on the storage backend and the state.
func serveArgs(t *testing.T, c corev1.Container) []string {
	t.Helper()
	require.GreaterOrEqual(t, len(c.Args), 3)
	require.Equal(t, []string{"serve", "--web.listen-address=:9470", "--storage.path=" + dataPath}, c.Args[:3])
	for i, a := range c.Args[3:] {
		if strings.HasPrefix(a, "--config.file=") {
			return c.Args[3 : 3+i]
		}
	}
	require.Fail(t, "no --config.file", "%q", c.Args)
	return nil
}

// requireSpreadsReplicas checks an anti-affinity term keeps two of the
// Deployment's pods off one node.
func requireSpreadsReplicas(t *testing.T, d *appsv1.Deployment, term corev1.PodAffinityTerm) {
	t.Helper()
	require.Equal(t, "kubernetes.io/hostname", term.TopologyKey)
	sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
	require.NoError(t, err)
	require.True(t, sel.Matches(labels.Set(d.Spec.Template.Labels)))
}

// checkRemotePod checks what every replica needs: the Service selects it, the
// probes and security are the server's, and /data is an emptyDir.
func checkRemotePod(t *testing.T, r *rendered, d *appsv1.Deployment) {
	t.Helper()
	podLabels := labels.Set(d.Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	require.NoError(t, err)
	require.True(t, sel.Matches(podLabels), "the selector matches the pod template")
	svc := one[*corev1.Service](t, r)
	require.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels), "the Service selects the replicas")

	pod := d.Spec.Template.Spec
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	require.Equal(t, serverPort, int(portNumber(t, c, svc.Spec.Ports[0].TargetPort)))
	require.Equal(t, "/-/healthy", c.LivenessProbe.HTTPGet.Path)
	require.Equal(t, "/-/ready", c.ReadinessProbe.HTTPGet.Path)
	require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	require.True(t, *pod.SecurityContext.RunAsNonRoot)
	require.Regexp(t, `^[0-9a-f]{64}$`, d.Spec.Template.Annotations["checksum/config"])

	require.Equal(t, dataPath, mount(t, c, "data").MountPath)
	data := podVolume(t, pod, "data")
	require.NotNil(t, data.EmptyDir, "/data is an emptyDir")
	for _, m := range c.VolumeMounts {
		v := podVolume(t, pod, m.Name)
		require.Nil(t, v.PersistentVolumeClaim, "volume %s", m.Name)
	}
}

func podVolume(t *testing.T, pod corev1.PodSpec, name string) corev1.Volume {
	t.Helper()
	for _, v := range pod.Volumes {
		if v.Name == name {
			return v
		}
	}
	require.Failf(t, "no volume", "volume %q", name)
	return corev1.Volume{}
}

// serverConfig parses the rendered config file with the server's config
// package, the token files laid out as the tokens Secret would be (values
// from the chart's Secret, or made up for an existing one).
func serverConfig(t *testing.T, r *rendered, pod corev1.PodSpec) *config.Config {
	t.Helper()
	c := pod.Containers[0]
	var configFile string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			configFile = v
		}
	}
	cm := one[*corev1.ConfigMap](t, r)
	raw, ok := cm.Data[path.Base(configFile)]
	require.True(t, ok, "the ConfigMap has key %s", path.Base(configFile))
	require.NotContains(t, raw, "postgres", "no state URL in the ConfigMap")

	dir := t.TempDir()
	local := raw
	for _, v := range pod.Volumes {
		if v.Name != "tokens" {
			continue
		}
		var data map[string][]byte
		for _, s := range all[*corev1.Secret](r) {
			if s.Name == v.Secret.SecretName {
				data = s.Data
			}
		}
		local = strings.ReplaceAll(raw, mount(t, c, "tokens").MountPath+"/", dir+"/")
		for _, line := range strings.Split(local, "\n") {
			file, ok := strings.CutPrefix(strings.TrimSpace(line), "value_file: ")
			if !ok {
				continue
			}
			value, ok := data[filepath.Base(file)]
			if !ok && data == nil {
				value = []byte("existing-secret-" + filepath.Base(file))
			}
			require.NoError(t, os.WriteFile(file, value, 0o600))
		}
	}
	cfg, err := config.Parse([]byte(local), dir)
	require.NoError(t, err, local)
	return cfg
}

func TestRenderEmbeddedWithPostgreSQLState(t *testing.T) {
	r := render(t, `
state:
  existingSecret: tidemark-postgres
`)
	sts := one[*appsv1.StatefulSet](t, r)
	require.Empty(t, all[*appsv1.Deployment](r))
	require.Empty(t, all[*policyv1.PodDisruptionBudget](r))
	c := sts.Spec.Template.Spec.Containers[0]
	require.Equal(t, []string{"--storage.retention=15d", "--state.url=$(TIDEMARK_STATE_URL)"}, serveArgs(t, c))
	require.Len(t, c.Env, 1)
	require.Equal(t, "TIDEMARK_STATE_URL", c.Env[0].Name)
	require.Equal(t, &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "tidemark-postgres"}, Key: "url"}, c.Env[0].ValueFrom.SecretKeyRef)
	require.Len(t, sts.Spec.VolumeClaimTemplates, 1, "the TSDBs stay on the volume")
}

func TestStateChangeRollsThePods(t *testing.T) {
	checksum := func(values string) string {
		return one[*appsv1.Deployment](t, render(t, values)).Spec.Template.Annotations["checksum/state"]
	}
	require.Equal(t, checksum(remoteValues), checksum(remoteValues), "a render is stable")
	require.NotEqual(t, checksum(remoteValues), checksum(strings.Replace(remoteValues, statePassword, "another-Pa55word", 1)))
}

func TestRenderRefusesBadRemoteValues(t *testing.T) {
	// Each case changes one thing of remoteValues; the error names it.
	_, err := renderChart(t, remoteValues)
	require.NoError(t, err, "the values every case starts from are accepted")
	tests := []struct {
		name    string
		values  string
		wantErr string
	}{
		{
			name:    "no write URL",
			values:  strings.Replace(remoteValues, "writeURL: http://mimir-distributor.mimir.svc:8080/api/v1/push", "", 1),
			wantErr: "at '/storage/remote/writeURL': minLength",
		},
		{
			name:    "no query URL",
			values:  strings.Replace(remoteValues, "queryURL: http://mimir-query-frontend.mimir.svc:8080/prometheus", "", 1),
			wantErr: "at '/storage/remote/queryURL': minLength",
		},
		{
			name:    "no state",
			values:  noState,
			wantErr: "at '/state': 'anyOf' failed",
		},
		{
			name:    "a volume",
			values:  strings.Replace(remoteValues, "enabled: false", "enabled: true", 1),
			wantErr: "at '/persistence/enabled': value must be false",
		},
		{
			name:    "volume by default",
			values:  strings.Replace(remoteValues, "persistence:\n  enabled: false\n", "", 1),
			wantErr: "at '/persistence/enabled': value must be false",
		},
		{
			name:    "state URL and an existing Secret",
			values:  remoteValues + "\n" + `state: {url: "postgres://u:p@db/t", existingSecret: pg}`,
			wantErr: "at '/state/existingSecret': maxLength",
		},
		{
			name:    "state URL that is not PostgreSQL",
			values:  strings.Replace(remoteValues, "url: postgres://", "url: mysql://", 1),
			wantErr: "at '/state/url'",
		},
		{
			name:    "write URL without a scheme",
			values:  strings.Replace(remoteValues, "writeURL: http://", "writeURL: ", 1),
			wantErr: "at '/storage/remote/writeURL'",
		},
		{
			name:    "misspelled key",
			values:  strings.Replace(remoteValues, "queryURL:", "queryUrl:", 1),
			wantErr: "queryUrl",
		},
		{
			name:    "unknown backend",
			values:  strings.Replace(remoteValues, "backend: remote", "backend: mimir", 1),
			wantErr: "at '/storage/backend'",
		},
		{
			name:    "tenant Cortex refuses",
			values:  remoteValues + `organizations: [{slug: default, tenant: "acme/prod"}]`,
			wantErr: "at '/organizations/0/tenant'",
		},
		{
			name:    "tenant '..'",
			values:  remoteValues + `organizations: [{slug: default, tenant: ".."}]`,
			wantErr: "at '/organizations/0/tenant'",
		},
		{
			name:    "no replicas",
			values:  remoteValues + "replicas: 0",
			wantErr: "at '/replicas'",
		},
		{
			name:    "disruption budget of none",
			values:  remoteValues + "podDisruptionBudget: {maxUnavailable: 0}",
			wantErr: "at '/podDisruptionBudget/maxUnavailable'",
		},
		{
			name:    "unknown anti-affinity preset",
			values:  remoteValues + "podAntiAffinityPreset: strict",
			wantErr: "at '/podAntiAffinityPreset'",
		},
		{
			name:    "lease TTL that is not a duration",
			values:  remoteValues + "leases: {ttl: 15}",
			wantErr: "at '/leases/ttl'",
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

// TestRenderRefusesRemoteWithoutSchema: the templates refuse what the schema
// does, for renders that skip it (--skip-schema-validation).
func TestRenderRefusesRemoteWithoutSchema(t *testing.T) {
	skip := func(i *action.Install) { i.SkipSchemaValidation = true }
	tests := []struct {
		name    string
		values  string
		wantErr string
	}{
		{
			name:    "no query URL",
			values:  strings.Replace(remoteValues, "queryURL: http://mimir-query-frontend.mimir.svc:8080/prometheus", "", 1),
			wantErr: "storage.backend remote needs storage.remote.writeURL and storage.remote.queryURL",
		},
		{
			name:    "no state",
			values:  noState,
			wantErr: "storage.backend remote needs state.url or state.existingSecret",
		},
		{
			name:    "a volume",
			values:  strings.Replace(remoteValues, "enabled: false", "enabled: true", 1),
			wantErr: "set persistence.enabled to false",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChartWith(t, tc.values, skip)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

// TestReadmeRemoteExamples renders the chart README's scale-out examples, so
// that they stay values the chart accepts.
func TestReadmeRemoteExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	require.NoError(t, err)
	var examples []string
	for _, block := range strings.Split(string(b), "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.Contains(block, "backend: remote") {
			examples = append(examples, block)
		}
	}
	require.Len(t, examples, 2, "the Mimir and the Cortex example")
	for _, values := range examples {
		r := render(t, values)
		d := one[*appsv1.Deployment](t, r)
		checkRemotePod(t, r, d)
		require.Empty(t, all[*appsv1.StatefulSet](r))
		serverConfig(t, r, d.Spec.Template.Spec)
	}
}
