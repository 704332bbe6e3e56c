package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/argoproj/argo-rollouts/metricproviders/webmetric"
	rolloutsv1alpha1 "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	log "github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"
)

// TestArgoRolloutsWebProviderJudge runs the example judge templates with
// Argo Rollouts' own web metric provider against the real server: the
// canary's error ratio against the stable pods' over the stage event's
// window. A healthy canary is Successful, a degraded one Failed.
func TestArgoRolloutsWebProviderJudge(t *testing.T) {
	const canaryHash, stableHash = "6d8f7c9b5", "5c4b3a291"
	for _, template := range []string{"tidemark-judge", "tidemark-judge-post"} {
		for _, tc := range []struct {
			name        string
			canaryRatio float64
			phase       rolloutsv1alpha1.AnalysisPhase
			verdict     string
		}{
			{"healthy", 0.99, rolloutsv1alpha1.AnalysisPhaseSuccessful, "pass"},
			{"degraded", 0.90, rolloutsv1alpha1.AnalysisPhaseFailed, "fail"},
		} {
			t.Run(template+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t)
				now := time.Now()
				var ss []series
				ss = append(ss, requests(map[string]string{"rollouts_pod_template_hash": canaryHash}, 20, tc.canaryRatio, now)...)
				ss = append(ss, requests(map[string]string{"rollouts_pod_template_hash": stableHash}, 80, 0.99, now)...)
				srv.remoteWrite(t, ss)
				// The stage event, as the notifications receiver or a job step writes it.
				body := fmt.Sprintf(`{"event_name":"sample-app-20","timestamp":%d,"attributes":{"rollout":"sample-app","namespace":%q,"weight":20}}`,
					now.Add(-9*time.Minute).UnixMilli(), appNamespace)
				req, _ := http.NewRequest(http.MethodPost, srv.url+"/api/v4/organizations/"+org+"/change_events", bytes.NewReader([]byte(body)))
				req.Header.Set("Authorization", "Bearer "+writeToken)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, 200, resp.StatusCode)

				tmpl := example[*rolloutsv1alpha1.AnalysisTemplate](t, "argo-rollouts/analysis-template-judge.yaml", template)
				str := func(s string) *string { return &s }
				run, metric := resolvedMetric(t, srv, []*rolloutsv1alpha1.AnalysisTemplate{tmpl}, []rolloutsv1alpha1.Argument{
					{Name: "rollout", Value: str("sample-app")},
					{Name: "namespace", Value: str(appNamespace)},
					{Name: "weight", Value: str("20")},
					{Name: "canary-hash", Value: str(canaryHash)},
					{Name: "stable-hash", Value: str(stableHash)},
				}, "canary-judge")
				metric.Provider.Web.URL = srv.local(metric.Provider.Web.URL)

				client, err := webmetric.NewWebMetricHttpClient(metric)
				require.NoError(t, err)
				parser, err := webmetric.NewWebMetricJsonParser(metric)
				require.NoError(t, err)
				p := webmetric.NewWebMetricProvider(*log.WithField("test", t.Name()), client, parser)
				m := p.Run(run, metric)
				require.Equal(t, tc.phase, m.Phase, "measurement %+v", m)
				require.Equal(t, `"`+tc.verdict+`"`, m.Value, "the provider reports the JSON value at {$.verdict}")
			})
		}
	}
}
