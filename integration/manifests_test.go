package integration

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	rolloutsv1alpha1 "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	analysisutil "github.com/argoproj/argo-rollouts/utils/analysis"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// examplesDir is the repository's examples/ directory.
const examplesDir = "../examples"

// scheme knows Kubernetes' built-in kinds and Argo Rollouts' v1alpha1 kinds.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := rolloutsv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// strictDecoder decodes typed objects and refuses unknown and duplicate
// fields.
var strictDecoder = serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()

// decodeManifests parses every YAML document of a file: kinds the scheme
// knows strictly into their Go types, other kinds (Flagger's) into
// unstructured objects.
func decodeManifests(t *testing.T, path string) []runtime.Object {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var objs []runtime.Object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "%s: document %d", path, i)
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		// Strict YAML: duplicate keys are an error.
		js, err := yaml.YAMLToJSONStrict(doc)
		require.NoError(t, err, "%s: document %d", path, i)
		u := &unstructured.Unstructured{}
		require.NoError(t, u.UnmarshalJSON(js), "%s: document %d is not a Kubernetes object", path, i)
		require.NotEmpty(t, u.GetAPIVersion(), "%s: document %d has no apiVersion", path, i)
		require.NotEmpty(t, u.GetKind(), "%s: document %d has no kind", path, i)
		require.NotEmpty(t, u.GetName(), "%s: document %d (%s) has no name", path, i, u.GetKind())
		if !scheme.Recognizes(u.GroupVersionKind()) {
			objs = append(objs, u)
			continue
		}
		obj, gvk, err := strictDecoder.Decode(js, nil, nil)
		require.NoError(t, err, "%s: %s %s", path, u.GetKind(), u.GetName())
		require.Equal(t, u.GroupVersionKind(), *gvk)
		objs = append(objs, obj)
	}
	return objs
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

// kindName is "Kind/name" of an object.
func kindName(o runtime.Object) string {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		panic(err)
	}
	x := unstructured.Unstructured{Object: u}
	kind := o.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		kind = x.GetKind()
	}
	return kind + "/" + x.GetName()
}

// TestExampleManifests: every manifest under examples/ parses as
// Kubernetes objects, strictly for the kinds with Go types (Kubernetes'
// and Argo Rollouts'), and the files hold the objects the READMEs describe.
func TestExampleManifests(t *testing.T) {
	want := map[string][]string{
		"argo-rollouts/analysis-templates.yaml": {
			"AnalysisTemplate/tidemark-stage-aware-success",
			"AnalysisTemplate/tidemark-canary-vs-stable",
			"AnalysisTemplate/tidemark-stage-event",
		},
		"argo-rollouts/analysis-template-judge.yaml": {"AnalysisTemplate/tidemark-judge", "AnalysisTemplate/tidemark-judge-post"},
		"argo-rollouts/notifications.yaml":           {"ConfigMap/argo-rollouts-notification-configmap", "Secret/argo-rollouts-notification-secret"},
		"argo-rollouts/prometheus-agent.yaml":        {"ServiceAccount/prometheus-agent", "Role/prometheus-agent", "RoleBinding/prometheus-agent", "ConfigMap/prometheus-agent", "Deployment/prometheus-agent"},
		"argo-rollouts/sample-app.yaml":              {"Service/sample-app", "Rollout/sample-app", "Deployment/sample-app-load"},
		"argo-rollouts/sample-app-job-steps.yaml":    {"Rollout/sample-app"},
		"argo-rollouts/tidemark-credentials.yaml":    {"Secret/tidemark"},
		"flagger/canary.yaml":                        {"Secret/tidemark-flagger", "MetricTemplate/tidemark-success-percentage", "Deployment/sample-app", "Canary/sample-app"},
	}
	var files []string
	require.NoError(t, filepath.WalkDir(examplesDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// Prometheus rule groups and their promtool tests (package
		// examples/alerts) and Grafana's provisioning files (package
		// examples/grafana): not Kubernetes objects, tested where they are.
		if d.IsDir() && (p == filepath.Join(examplesDir, "alerts") || p == filepath.Join(examplesDir, "grafana")) {
			return fs.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			rel, _ := filepath.Rel(examplesDir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	}))
	sort.Strings(files)
	var wantFiles []string
	for f := range want {
		wantFiles = append(wantFiles, f)
	}
	sort.Strings(wantFiles)
	require.Equal(t, wantFiles, files, "manifests under examples/")

	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			objs := decodeManifests(t, filepath.Join(examplesDir, f))
			var got []string
			for _, o := range objs {
				got = append(got, kindName(o))
				switch o := o.(type) {
				case *rolloutsv1alpha1.AnalysisTemplate:
					// Argo Rollouts' own validation of the metrics.
					require.NoError(t, analysisutil.ValidateMetrics(o.Spec.Metrics), "%s", o.Name)
				case *unstructured.Unstructured:
					require.Equal(t, "flagger.app/v1beta1", o.GetAPIVersion(), "only Flagger's kinds are left untyped")
				}
			}
			require.Equal(t, want[f], got)
		})
	}
}

// example returns the object kind/name of an example file.
func example[T runtime.Object](t *testing.T, file, name string) T {
	t.Helper()
	for _, o := range decodeManifests(t, filepath.Join(examplesDir, file)) {
		if x, ok := o.(T); ok && strings.HasSuffix(kindName(o), "/"+name) {
			return x
		}
	}
	var zero T
	t.Fatalf("%s has no %T named %s", file, zero, name)
	return zero
}

// TestStrictDecodingRefusesUnknownFields: the manifest check is strict. In
// Argo Rollouts v1.10.1 a prometheus provider's `authentication` has only
// sigv4 and oauth2; custom headers are the provider's own `headers`.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	doc := `
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: x
spec:
  metrics:
    - name: m
      provider:
        prometheus:
          address: http://tidemark:9470/api/v4/organizations/default/prometheus
          query: vector(1)
          authentication:
            headers:
              - {key: Authorization, value: Bearer t}
`
	js, err := yaml.YAMLToJSONStrict([]byte(doc))
	require.NoError(t, err)
	_, _, err = strictDecoder.Decode(js, nil, nil)
	require.ErrorContains(t, err, `unknown field "spec.metrics[0].provider.prometheus.authentication.headers"`)
}
