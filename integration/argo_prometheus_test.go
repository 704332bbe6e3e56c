package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-rollouts/metricproviders/prometheus"
	rolloutsv1alpha1 "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	analysisutil "github.com/argoproj/argo-rollouts/utils/analysis"
	log "github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The example's namespace for the Rollout (kubectl apply -n sample).
const appNamespace = "sample"

// TestStageAwareQueryIsTheTestedOne: the stage-aware query of the example
// AnalysisTemplate is the query tested end to end in cmd/tidemark.
func TestStageAwareQueryIsTheTestedOne(t *testing.T) {
	tested, err := os.ReadFile("../cmd/tidemark/testdata/stage-aware.promql")
	require.NoError(t, err)
	tmpl := example[*rolloutsv1alpha1.AnalysisTemplate](t, "argo-rollouts/analysis-templates.yaml", "tidemark-stage-aware-success")
	require.Len(t, tmpl.Spec.Metrics, 1)
	require.Equal(t, strings.TrimSpace(string(tested)), strings.TrimSpace(tmpl.Spec.Metrics[0].Provider.Prometheus.Query))
}

// exampleSecretValue is what the analysis controller reads for a
// secretKeyRef argument: the example Secret "tidemark", whose placeholder
// values the test replaces with its server's tokens.
func exampleSecretValue(t *testing.T, name, key string) string {
	t.Helper()
	sec := example[*corev1.Secret](t, "argo-rollouts/tidemark-credentials.yaml", "tidemark")
	require.Equal(t, sec.Name, name, "secretKeyRef names the example Secret")
	v, ok := sec.StringData[key]
	require.True(t, ok, "the example Secret has no key %q", key)
	require.True(t, strings.HasPrefix(v, "replace-with-"), "the example Secret holds placeholders only")
	return map[string]string{"read-token": readToken, "write-token": writeToken}[key]
}

// resolvedMetric builds an AnalysisRun from templates and args as the
// rollout controller does, resolves the secret arguments as the analysis
// controller does (from the example Secret), and returns the named metric
// with its arguments substituted, pointed at srv.
func resolvedMetric(t *testing.T, srv *server, templates []*rolloutsv1alpha1.AnalysisTemplate, args []rolloutsv1alpha1.Argument, name string) (*rolloutsv1alpha1.AnalysisRun, rolloutsv1alpha1.Metric) {
	t.Helper()
	run, err := analysisutil.NewAnalysisRunFromTemplates(templates, nil, args, nil, nil, nil, nil, "sample-app-analysis", "", appNamespace)
	require.NoError(t, err)
	for i, a := range run.Spec.Args {
		if a.ValueFrom != nil && a.ValueFrom.SecretKeyRef != nil {
			v := exampleSecretValue(t, a.ValueFrom.SecretKeyRef.Name, a.ValueFrom.SecretKeyRef.Key)
			run.Spec.Args[i].Value = &v
		}
	}
	for _, m := range run.Spec.Metrics {
		if m.Name != name {
			continue
		}
		resolved, err := analysisutil.ResolveMetricArgs(m, run.Spec.Args)
		require.NoError(t, err)
		if p := resolved.Provider.Prometheus; p != nil {
			require.Equal(t, inCluster+"/api/v4/organizations/"+org+"/prometheus", p.Address, "the example points at the organization's base URL")
			p.Address = srv.local(p.Address)
		}
		return run, *resolved
	}
	t.Fatalf("no metric %s", name)
	return nil, rolloutsv1alpha1.Metric{}
}

// measure runs one measurement with Argo Rollouts' prometheus provider,
// constructed as the controller's provider factory does
// (metricproviders.ProviderFactory.NewProvider).
func measure(t *testing.T, run *rolloutsv1alpha1.AnalysisRun, metric rolloutsv1alpha1.Metric) rolloutsv1alpha1.Measurement {
	t.Helper()
	api, err := prometheus.NewPrometheusAPI(metric)
	require.NoError(t, err)
	p, err := prometheus.NewPrometheusProvider(api, *log.WithField("test", t.Name()), metric)
	require.NoError(t, err)
	return p.Run(run, metric)
}

// jobStep runs what the pod of the example's stage-event job would run:
// the rollout controller builds the step's arguments (fieldRef metadata.*),
// the AnalysisRun merges them with the template's, and the job's container
// command, with its arguments substituted, runs with the container's
// environment (the Secret's token, the server's address instead of the
// in-cluster one).
func jobStep(t *testing.T, srv *server, ro *rolloutsv1alpha1.Rollout, step rolloutsv1alpha1.CanaryStep) (state, weight string) {
	t.Helper()
	require.NotNil(t, step.Analysis, "not an analysis step")
	args, err := analysisutil.BuildArgumentsForRolloutAnalysisRun(step.Analysis.Args, nil, nil, ro)
	require.NoError(t, err)
	require.Len(t, step.Analysis.Templates, 1)
	tmpl := example[*rolloutsv1alpha1.AnalysisTemplate](t, "argo-rollouts/analysis-templates.yaml", step.Analysis.Templates[0].TemplateName)
	run, metric := resolvedMetric(t, srv, []*rolloutsv1alpha1.AnalysisTemplate{tmpl}, args, "stage-event")
	for _, a := range run.Spec.Args {
		switch a.Name {
		case "state":
			state = *a.Value
		case "weight":
			weight = *a.Value
		}
	}
	require.NotNil(t, metric.Provider.Job)
	c := metric.Provider.Job.Spec.Template.Spec.Containers[0]
	require.Equal(t, []string{"/tidemark"}, c.Command, "the image's binary")
	var env []string
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = exampleSecretValue(t, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
		}
		env = append(env, e.Name+"="+srv.local(v))
	}
	code, out := runTidemark(t, env, c.Args...)
	require.Equal(t, 0, code, "tidemark %s: %s", strings.Join(c.Args, " "), out)
	return state, weight
}

// TestArgoRolloutsPrometheusProvider runs Argo Rollouts' prometheus metric
// provider with the example's stage-aware AnalysisTemplate (its query, its
// headers, its conditions) against Tidemark holding remote-written RED
// metrics, with the stage event written by the example's job step:
// Successful for a healthy canary, Failed for a degraded one and for a
// healthy one held to the 99% outside any stage, and Error with a readable
// message when there is no data or the token is refused.
func TestArgoRolloutsPrometheusProvider(t *testing.T) {
	tmpl := example[*rolloutsv1alpha1.AnalysisTemplate](t, "argo-rollouts/analysis-templates.yaml", "tidemark-stage-aware-success")
	jobRollout := example[*rolloutsv1alpha1.Rollout](t, "argo-rollouts/sample-app-job-steps.yaml", "sample-app")
	jobRollout.Namespace = appNamespace
	startStage20 := jobRollout.Spec.Strategy.Canary.Steps[1]

	cases := []struct {
		name      string
		ratio     float64 // success ratio; 0: no data at all
		stage     bool    // the stage event sample-app-20 is open
		phase     rolloutsv1alpha1.AnalysisPhase
		value     string
		message   string
		readToken string
	}{
		{name: "healthy canary in stage 20", ratio: 0.985, stage: true, phase: rolloutsv1alpha1.AnalysisPhaseSuccessful, value: "[1]"},
		{name: "degraded canary in stage 20", ratio: 0.93, stage: true, phase: rolloutsv1alpha1.AnalysisPhaseFailed, value: "[0]"},
		{name: "healthy canary outside any stage", ratio: 0.985, phase: rolloutsv1alpha1.AnalysisPhaseFailed, value: "[0]"},
		{name: "no data", stage: true, phase: rolloutsv1alpha1.AnalysisPhaseError,
			message: `could not evaluate successCondition "result[0] == 1": metric result is nil or empty: no data returned from the metric provider`},
		{name: "refused token", ratio: 0.985, stage: true, phase: rolloutsv1alpha1.AnalysisPhaseError, readToken: "not-a-token-of-this-server", message: "401"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t)
			now := time.Now()
			if tc.ratio > 0 {
				srv.remoteWrite(t, requests(map[string]string{"app": "sample-app", "namespace": appNamespace}, 100, tc.ratio, now))
			}
			if tc.stage {
				state, weight := jobStep(t, srv, jobRollout, startStage20)
				require.Equal(t, []string{"start", "20"}, []string{state, weight})
				evs := srv.events(t, `{event_name="sample-app-20"}`)
				require.Len(t, evs, 1)
				require.Equal(t, map[string]string{"rollout": "sample-app", "namespace": appNamespace, "weight": "20"}, evs[0].Labels)
			}
			run, metric := resolvedMetric(t, srv, []*rolloutsv1alpha1.AnalysisTemplate{tmpl}, nil, "success-share")
			require.Equal(t, []rolloutsv1alpha1.WebMetricHeader{{Key: "Authorization", Value: "Bearer " + readToken}}, metric.Provider.Prometheus.Headers)
			if tc.readToken != "" {
				metric.Provider.Prometheus.Headers[0].Value = "Bearer " + tc.readToken
			}
			m := measure(t, run, metric)
			require.Equal(t, tc.phase, m.Phase, "measurement %+v", m)
			if tc.value != "" {
				require.Equal(t, tc.value, m.Value)
			}
			require.Contains(t, m.Message, tc.message)
			if tc.phase == rolloutsv1alpha1.AnalysisPhaseError {
				t.Logf("Argo Rollouts reports: %s", m.Message)
			}
		})
	}
}

// TestArgoRolloutsCanaryVsStable runs the example's background analysis as
// the controller builds it: the Rollout's args (podTemplateHashValue Latest
// and Stable, resolved from the two ReplicaSets' pod template hashes) with
// both templates, and measures the canary-vs-stable metric with Argo
// Rollouts' prometheus provider against pods labelled
// rollouts_pod_template_hash.
func TestArgoRolloutsCanaryVsStable(t *testing.T) {
	srv := startServer(t)
	now := time.Now()
	const stable, good, bad = "6d4f8b9c7", "7b5c9d8e1", "85f6c7d9a"
	for hash, ratio := range map[string]float64{stable: 0.995, good: 0.99, bad: 0.95} {
		srv.remoteWrite(t, requests(map[string]string{"app": "sample-app", "rollouts_pod_template_hash": hash}, 20, ratio, now))
	}
	ro := example[*rolloutsv1alpha1.Rollout](t, "argo-rollouts/sample-app.yaml", "sample-app")
	ro.Namespace = appNamespace
	var templates []*rolloutsv1alpha1.AnalysisTemplate
	for _, ref := range ro.Spec.Strategy.Canary.Analysis.Templates {
		templates = append(templates, example[*rolloutsv1alpha1.AnalysisTemplate](t, "argo-rollouts/analysis-templates.yaml", ref.TemplateName))
	}
	rs := func(hash string) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "sample-app-" + hash, Labels: map[string]string{rolloutsv1alpha1.DefaultRolloutUniqueLabelKey: hash}}}
	}
	for canary, want := range map[string]rolloutsv1alpha1.AnalysisPhase{good: rolloutsv1alpha1.AnalysisPhaseSuccessful, bad: rolloutsv1alpha1.AnalysisPhaseFailed} {
		args, err := analysisutil.BuildArgumentsForRolloutAnalysisRun(ro.Spec.Strategy.Canary.Analysis.Args, rs(stable), rs(canary), ro)
		require.NoError(t, err)
		run, metric := resolvedMetric(t, srv, templates, args, "canary-vs-stable-success")
		require.Contains(t, metric.Provider.Prometheus.Query, fmt.Sprintf(`rollouts_pod_template_hash="%s"`, canary))
		require.Contains(t, metric.Provider.Prometheus.Query, fmt.Sprintf(`rollouts_pod_template_hash="%s"`, stable))
		m := measure(t, run, metric)
		require.Equal(t, want, m.Phase, "canary %s: measurement %+v", canary, m)
		t.Logf("canary %s: %s %s", canary, m.Phase, m.Value)
	}
}
