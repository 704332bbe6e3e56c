package watch

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

// TestDocs: the PromQL recipes of docs/kubernetes.md parse, and they and
// the tables name the events and labels the watcher writes.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../docs/kubernetes.md")
	require.NoError(t, err)
	doc := string(b)
	blocks := regexp.MustCompile("(?s)```promql\n(.*?)```").FindAllStringSubmatch(doc, -1)
	require.GreaterOrEqual(t, len(blocks), 8)
	p := parser.NewParser(parser.Options{})
	for _, m := range blocks {
		_, err := p.ParseExpr(m[1])
		require.NoError(t, err, m[1])
	}
	for _, name := range []string{eventDeploy, eventStep, eventWeight, eventPause, eventPromote, eventScale, eventConfig} {
		require.Contains(t, doc, "| `"+name+"` |")
	}
	for _, l := range []string{labelNamespace, labelKind, labelName, labelService, labelApp, labelOutcome, "direction", "from_replicas", "to_replicas", "target_kind", "target_name", "weight", "step", "full"} {
		require.Contains(t, doc, "`"+l+"`")
	}
	for _, o := range []string{outcomeCompleted, outcomeFailed, outcomeAborted, outcomeSuperseded, outcomeDeleted, outcomeAdvanced, outcomeChanged, outcomePromoted, outcomeResumed} {
		require.True(t, strings.Contains(doc, "`"+o+"`"), o)
	}
	for _, k := range AllKinds {
		require.Contains(t, doc, "`"+string(k)+"`")
	}
}
