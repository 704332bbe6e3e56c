package charttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
)

const watcherName = fullname + "-watcher"

// renderWithRBAC renders the chart and decodes every manifest strictly, RBAC
// kinds included.
func renderWithRBAC(t *testing.T, valuesYAML string) *rendered {
	t.Helper()
	rel, err := renderChart(t, valuesYAML)
	require.NoError(t, err)
	scheme := runtime.NewScheme()
	require.NoError(t, corev1.AddToScheme(scheme))
	require.NoError(t, appsv1.AddToScheme(scheme))
	require.NoError(t, rbacv1.AddToScheme(scheme))
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
		obj, _, err := codec.Decode([]byte(docs[name]), nil, nil)
		require.NoError(t, err, "%s:\n%s", name, docs[name])
		r.objects = append(r.objects, obj)
	}
	return r
}

func named[T interface {
	runtime.Object
	GetName() string
}](t *testing.T, r *rendered, name string) T {
	t.Helper()
	for _, o := range all[T](r) {
		if o.GetName() == name {
			return o
		}
	}
	require.Failf(t, "not rendered", "%T %s", *new(T), name)
	return *new(T)
}

const watcherTokens = `
organizations:
  - slug: default
    tokens:
      - {name: grafana, scope: read, value: grafana-read-token-0123456789}
      - {name: ci, scope: write}
  - slug: team-a
    tokens:
      - {name: ops, scope: admin, secretKey: team-a.ops}
`

func TestWatcher(t *testing.T) {
	clusterRole := namespace + "-" + watcherName
	tests := []struct {
		name   string
		values string

		wantKinds  []string
		wantOrg    string
		wantKey    string
		wantSecret string
		// wantRules are the granted resources by API group.
		wantRules map[string][]string
		// bindings are the namespaces of the RoleBindings (none: a
		// ClusterRoleBinding).
		bindings []string
		wantArgs []string
	}{
		{
			name: "cluster-wide, first write token",
			values: watcherTokens + `
watcher:
  enabled: true
`,
			wantKinds: []string{
				"ClusterRole/" + clusterRole, "ClusterRoleBinding/" + clusterRole,
				"ConfigMap/" + fullname, "Deployment/" + watcherName, "Secret/" + fullname + "-tokens",
				"Service/" + fullname, "ServiceAccount/" + fullname, "ServiceAccount/" + watcherName, "StatefulSet/" + fullname,
			},
			wantOrg: "default", wantKey: "ci", wantSecret: fullname + "-tokens",
			wantRules: map[string][]string{
				"":            {"configmaps", "secrets"},
				"apps":        {"deployments", "statefulsets", "daemonsets"},
				"autoscaling": {"horizontalpodautoscalers"},
				"argoproj.io": {"rollouts"},
			},
			wantArgs: []string{"watch", "--web.listen-address=:9471", "--catch-up-window=15m"},
		},
		{
			name: "namespaces, kinds, a named token",
			values: watcherTokens + `
watcher:
  enabled: true
  token: team-a/ops
  namespaces: [shop, payments]
  selector: tier!=batch
  kinds: [deployments, rollouts, horizontalpodautoscalers]
  attributes: {cluster: prod-eu}
  catchUpWindow: 30m
`,
			wantKinds: []string{
				"ClusterRole/" + clusterRole,
				"ConfigMap/" + fullname, "Deployment/" + watcherName,
				"RoleBinding/" + watcherName, "RoleBinding/" + watcherName,
				"Secret/" + fullname + "-tokens",
				"Service/" + fullname, "ServiceAccount/" + fullname, "ServiceAccount/" + watcherName, "StatefulSet/" + fullname,
			},
			wantOrg: "team-a", wantKey: "team-a.ops", wantSecret: fullname + "-tokens",
			wantRules: map[string][]string{
				"apps":        {"deployments"},
				"autoscaling": {"horizontalpodautoscalers"},
				"argoproj.io": {"rollouts"},
			},
			bindings: []string{"payments", "shop"},
			wantArgs: []string{"--namespace=shop,payments", "--selector=tier!=batch", "--kinds=deployments,rollouts,horizontalpodautoscalers", "--attr=cluster=prod-eu", "--catch-up-window=30m"},
		},
		{
			name: "existing secret",
			values: `
existingSecret: my-tokens
organizations:
  - slug: default
    tokens: [{name: grafana, scope: read}, {name: watcher, scope: write}]
watcher:
  enabled: true
  kinds: [configmaps]
`,
			wantKinds: []string{
				"ClusterRole/" + clusterRole, "ClusterRoleBinding/" + clusterRole,
				"ConfigMap/" + fullname, "Deployment/" + watcherName,
				"Service/" + fullname, "ServiceAccount/" + fullname, "ServiceAccount/" + watcherName, "StatefulSet/" + fullname,
			},
			wantOrg: "default", wantKey: "watcher", wantSecret: "my-tokens",
			wantRules: map[string][]string{"": {"configmaps"}},
			wantArgs:  []string{"--kinds=configmaps"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := renderWithRBAC(t, tc.values)
			require.Equal(t, tc.wantKinds, r.kinds())
			dep := one[*appsv1.Deployment](t, r)
			pod := dep.Spec.Template.Spec

			// Its own pod, not behind the server's Service.
			require.Equal(t, int32(1), *dep.Spec.Replicas)
			sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
			require.NoError(t, err)
			require.True(t, sel.Matches(labels.Set(dep.Spec.Template.Labels)))
			svc := one[*corev1.Service](t, r)
			require.False(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)), "the Service does not select the watcher")
			sts := one[*appsv1.StatefulSet](t, r)
			require.False(t, sel.Matches(labels.Set(sts.Spec.Template.Labels)), "the watcher's selector does not select the server")
			for _, o := range []metav1.Object{dep, named[*corev1.ServiceAccount](t, r, watcherName)} {
				require.Equal(t, "watcher", o.GetLabels()["app.kubernetes.io/component"])
				require.Equal(t, releaseName, o.GetLabels()["app.kubernetes.io/instance"])
			}

			// The server: the Service's name and port, the token's
			// organization, the token from the Secret the server reads.
			require.Len(t, pod.Containers, 1)
			c := pod.Containers[0]
			env := map[string]corev1.EnvVar{}
			for _, e := range c.Env {
				env[e.Name] = e
			}
			require.Equal(t, fmt.Sprintf("http://%s.%s.svc:%d", svc.Name, namespace, svc.Spec.Ports[0].Port), env["TIDEMARK_URL"].Value)
			require.Equal(t, tc.wantOrg, env["TIDEMARK_ORG"].Value)
			ref := env["TIDEMARK_TOKEN"].ValueFrom.SecretKeyRef
			require.NotNil(t, ref)
			require.Equal(t, tc.wantSecret, ref.Name)
			require.Equal(t, tc.wantKey, ref.Key)
			require.Equal(t, tc.wantSecret, volume(t, sts, "tokens").Secret.SecretName, "the Secret the server reads its tokens from")
			if secrets := all[*corev1.Secret](r); len(secrets) > 0 {
				require.Contains(t, secrets[0].Data, ref.Key)
			}

			// The command line.
			require.Equal(t, "watch", c.Args[0])
			for _, a := range tc.wantArgs {
				require.Contains(t, c.Args, a)
			}
			for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
				require.NotNil(t, p.HTTPGet)
				require.Equal(t, 9471, int(portNumber(t, c, p.HTTPGet.Port)))
			}
			require.Equal(t, "/-/ready", c.ReadinessProbe.HTTPGet.Path)
			require.Equal(t, "/-/healthy", c.LivenessProbe.HTTPGet.Path)

			// Non-root, read-only, no privilege escalation.
			require.True(t, *pod.SecurityContext.RunAsNonRoot)
			require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
			require.False(t, *c.SecurityContext.AllowPrivilegeEscalation)

			// Read-only RBAC for its own ServiceAccount, on the kinds only.
			require.Equal(t, watcherName, pod.ServiceAccountName)
			require.True(t, *pod.AutomountServiceAccountToken)
			role := one[*rbacv1.ClusterRole](t, r)
			got := map[string][]string{}
			for _, rule := range role.Rules {
				require.Equal(t, []string{"get", "list", "watch"}, rule.Verbs)
				require.Len(t, rule.APIGroups, 1)
				require.Empty(t, rule.ResourceNames)
				got[rule.APIGroups[0]] = append(got[rule.APIGroups[0]], rule.Resources...)
			}
			require.Equal(t, tc.wantRules, got)
			subject := rbacv1.Subject{Kind: "ServiceAccount", Name: watcherName, Namespace: namespace}
			ref2 := rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name}
			if tc.bindings == nil {
				crb := one[*rbacv1.ClusterRoleBinding](t, r)
				require.Equal(t, ref2, crb.RoleRef)
				require.Equal(t, []rbacv1.Subject{subject}, crb.Subjects)
				require.Empty(t, all[*rbacv1.RoleBinding](r))
			} else {
				require.Empty(t, all[*rbacv1.ClusterRoleBinding](r))
				var nss []string
				for _, rb := range all[*rbacv1.RoleBinding](r) {
					require.Equal(t, ref2, rb.RoleRef)
					require.Equal(t, []rbacv1.Subject{subject}, rb.Subjects)
					nss = append(nss, rb.Namespace)
				}
				sort.Strings(nss)
				require.Equal(t, tc.bindings, nss)
			}
		})
	}
}

func TestWatcherRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name, values, wantErr string
	}{
		{"no token", "watcher: {enabled: true}", "watcher.enabled needs a token of scope write"},
		{"read token", watcherTokens + "watcher: {enabled: true, token: grafana}", `watcher.token "grafana" has scope read`},
		{"unknown token", watcherTokens + "watcher: {enabled: true, token: nope}", `watcher.token "nope" is not a token declared`},
		{"unknown kind", watcherTokens + "watcher: {enabled: true, kinds: [pods]}", "kinds"},
		{"unknown field", watcherTokens + "watcher: {enabled: true, namespace: shop}", "namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(t, tc.values)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func TestWatcherLint(t *testing.T) {
	vals, err := chartutil.ReadValues([]byte(watcherTokens + `
watcher:
  enabled: true
  namespaces: [shop]
  attributes: {cluster: eu}
`))
	require.NoError(t, err)
	lint := action.NewLint()
	lint.Strict = true
	lint.Namespace = namespace
	lint.KubeVersion, err = chartutil.ParseKubeVersion(kubeVersion)
	require.NoError(t, err)
	res := lint.Run([]string{chartDir}, vals)
	for _, m := range res.Messages {
		require.LessOrEqual(t, m.Severity, support.InfoSev, m.Error())
	}
	require.Empty(t, res.Errors)
}

// TestWatcherCommandLine runs the real binary with the arguments and
// environment the chart gives the watcher: every flag is one that
// `tidemark watch` accepts (it then stops at the missing cluster config).
func TestWatcherCommandLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the tidemark binary")
	}
	bin := filepath.Join(t.TempDir(), "tidemark")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tidemark")
	build.Dir = "../.."
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	r := renderWithRBAC(t, watcherTokens+`
watcher:
  enabled: true
  namespaces: [shop, payments]
  selector: "tier in (web, api)"
  kinds: [deployments, horizontalpodautoscalers]
  attributes: {cluster: prod-eu, region: eu_west}
  extraArgs: [--retries=7]
`)
	c := one[*appsv1.Deployment](t, r).Spec.Template.Spec.Containers[0]
	cmd := exec.Command(bin, c.Args...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "KUBECONFIG=" + filepath.Join(t.TempDir(), "none"), "TIDEMARK_TOKEN=t0ken-from-the-secret"}
	for _, e := range c.Env {
		if e.Value != "" {
			cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
		}
	}
	out, err = cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "%s", out)
	require.Equal(t, 1, ee.ExitCode(), "%s", out)
	require.Contains(t, string(out), "Kubernetes client config", "the flags parsed; the cluster config is what is missing")
	require.False(t, slices.ContainsFunc(c.Args, func(a string) bool { return strings.Contains(a, "t0ken") }))
}
