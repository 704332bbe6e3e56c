package testservices

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPrometheusBinaries builds (or finds) Prometheus and promtool, so that
// a CI step can build them before the end-to-end tests that run them.
func TestPrometheusBinaries(t *testing.T) {
	for _, cmd := range []string{PrometheusCmd, PromtoolCmd} {
		path := PrometheusBinary(t, cmd)
		out, err := exec.Command(path, "--version").CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.True(t, strings.Contains(string(out), "version"), "%s", out)
	}
}
