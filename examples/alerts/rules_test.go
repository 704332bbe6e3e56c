package alerts

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/tidemark/tidemark/alerting"
)

// groups returns the example rule groups: every NAME.yml here but the
// tests.
func groups(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yml")
	require.NoError(t, err)
	var out []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".test.yml") {
			out = append(out, f)
		}
	}
	require.NotEmpty(t, out)
	return out
}

// TestExamplesAreValidGroups: each example is a group the ruler API
// accepts, and has promtool tests.
func TestExamplesAreValidGroups(t *testing.T) {
	for _, f := range groups(t) {
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		_, err = alerting.ParseGroup(body, parser.NewParser(parser.Options{}))
		require.NoError(t, err, f)
		require.FileExists(t, strings.TrimSuffix(f, ".yml")+".test.yml", "%s has no promtool tests", f)
	}
}

// TestDocsShowTheExamples: the documentation shows each example as it is
// here, so what it shows is what is tested.
func TestDocsShowTheExamples(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "alerts.md"))
	require.NoError(t, err)
	for _, f := range groups(t) {
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		require.Contains(t, string(docs), "```yaml\n"+string(body)+"```", "docs/alerts.md does not show %s as it is", f)
	}
}

// TestPromtool runs each NAME.test.yml with `promtool test rules`.
func TestPromtool(t *testing.T) {
	promtool := promtoolBinary(t)
	tests, err := filepath.Glob("*.test.yml")
	require.NoError(t, err)
	for _, test := range tests {
		t.Run(test, func(t *testing.T) {
			out, err := runPromtool(t, promtool, test)
			require.NoError(t, err, "promtool test rules %s:\n%s", test, out)
			require.Contains(t, out, "SUCCESS")
		})
	}
}

// TestPromtoolFailsAWrongExpectation: the tests can fail. The group's
// alert is pending, not firing, 90s after the canary's errors rise; a test
// that expects it firing then is a failure naming that time.
func TestPromtoolFailsAWrongExpectation(t *testing.T) {
	out, err := runPromtool(t, promtoolBinary(t), filepath.Join("testdata", "too-soon.test.yml"))
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "promtool passed a wrong expectation:\n%s", out)
	require.Contains(t, out, "FAILED")
	require.Contains(t, out, "time: 12m")
}

// runPromtool runs `promtool test rules` on a copy of test beside every
// example group, each written as a rule file (NAME.rules.yml) from what the
// ruler API makes of it.
func runPromtool(t *testing.T, promtool, test string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range groups(t) {
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		rg, err := alerting.ParseGroup(body, parser.NewParser(parser.Options{}))
		require.NoError(t, err, f)
		file, err := yaml.Marshal(rulefmt.RuleGroups{Groups: []rulefmt.RuleGroup{rg}})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, strings.TrimSuffix(f, ".yml")+".rules.yml"), file, 0o644))
	}
	body, err := os.ReadFile(test)
	require.NoError(t, err)
	copied := filepath.Join(dir, filepath.Base(test))
	require.NoError(t, os.WriteFile(copied, body, 0o644))
	cmd := exec.Command(promtool, "test", "rules", copied)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

// promtoolBinary returns Prometheus's promtool at the version of
// Prometheus this module requires: $TIDEMARK_PROMTOOL if set, else
// <user cache>/tidemark-tools/promtool-<version>, installed there from the
// Go module proxy the first time (`go install`, with Prometheus's own
// go.mod; minutes on two cores, as the benchmark's peers are).
func promtoolBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TIDEMARK_PROMTOOL"); p != "" {
		return p
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/prometheus/prometheus").Output()
	require.NoError(t, err, "go list -m github.com/prometheus/prometheus")
	version := strings.TrimSpace(string(out))
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	dir := filepath.Join(cache, "tidemark-tools")
	path := filepath.Join(dir, "promtool-"+version)
	if _, err := os.Stat(path); err == nil {
		return path
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if testing.Short() {
		t.Skipf("promtool %s is not in %s and building it takes minutes: run without -short once, or set TIDEMARK_PROMTOOL", version, dir)
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	gobin, err := os.MkdirTemp(dir, "gobin")
	require.NoError(t, err)
	defer os.RemoveAll(gobin)
	t.Logf("installing promtool %s into %s", version, path)
	cmd := exec.Command("go", "install", "github.com/prometheus/prometheus/cmd/promtool@"+version)
	// Outside this module, so that promtool builds with Prometheus's go.mod.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go install promtool@%s:\n%s", version, b)
	require.NoError(t, os.Rename(filepath.Join(gobin, "promtool"), path))
	return path
}
