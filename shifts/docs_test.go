package shifts_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/config"
	"github.com/tidemark/tidemark/shifts"
)

// TestDocs: the traffic-shift section of docs/sources.md has a config that
// loads and means what it says, the defaults of its table are the code's,
// and its queries parse.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../docs/sources.md")
	require.NoError(t, err)
	doc := string(b)
	_, section, ok := strings.Cut(doc, "\n## Traffic shifts\n")
	require.True(t, ok)
	section, _, _ = strings.Cut(section, "\n## ")

	yamlBlock := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(section)
	require.NotNil(t, yamlBlock)
	c, err := config.Parse([]byte(yamlBlock[1]), t.TempDir())
	require.NoError(t, err)
	top, ok := c.TrafficShiftSettings("globex")
	require.True(t, ok)
	require.Len(t, top.Signals, 1)
	require.Equal(t, "request-rate", top.Signals[0].Name)
	acme, ok := c.TrafficShiftSettings("acme")
	require.True(t, ok)
	require.Equal(t, "orders", acme.Signals[0].Name)
	_, ok = c.TrafficShiftSettings("sandbox")
	require.False(t, ok)

	for key, def := range map[string]time.Duration{
		"interval": shifts.DefaultInterval, "lookback": shifts.DefaultLookback,
		"signals[].baseline_offset": shifts.DefaultBaselineOffset, "signals[].for": shifts.DefaultFor,
	} {
		require.Contains(t, section, "| `"+key+"` | `"+model.Duration(def).String()+"` |", key)
	}
	require.Contains(t, section, "| `signals[].ratio` | `2` |")
	require.Equal(t, 2.0, shifts.DefaultRatio)
	require.Contains(t, section, "at most 11000 steps")
	require.Equal(t, 11000, shifts.MaxPoints)
	require.Contains(t, section, "`"+shifts.EventName+"`")

	_, queries, _ := strings.Cut(doc, "\n## Queries\n")
	blocks := regexp.MustCompile("(?s)```promql\n(.*?)```").FindAllStringSubmatch(queries, -1)
	require.NotEmpty(t, blocks)
	p := parser.NewParser(parser.Options{})
	for _, line := range strings.Split(blocks[0][1], "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		_, err := p.ParseExpr(line)
		require.NoError(t, err, line)
	}
}
