package testservices

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Prometheus's commands the end-to-end tests run: a Prometheus that
// remote_reads from Tidemark, and promtool.
const (
	PrometheusCmd = "github.com/prometheus/prometheus/cmd/prometheus"
	PromtoolCmd   = "github.com/prometheus/prometheus/cmd/promtool"
)

// prometheusModuleDir is the module Prometheus's commands are built from:
// it requires them as tools, at the Prometheus version of the root module
// (which has the go.sum entries only of the packages it imports).
const prometheusModuleDir = "tools/prometheus"

// PrometheusBinary returns the path of Prometheus's command cmd
// (PrometheusCmd, PromtoolCmd) at the version the root module requires,
// building it when it is missing into the user's cache directory
// (os.UserCacheDir()/tidemark, else the temporary directory) as the
// benchmark caches it: tens of seconds on a warm build cache, minutes on an
// empty one. A lock file makes test binaries that start together build it
// once.
func PrometheusBinary(t testing.TB, cmd string) string {
	t.Helper()
	path, err := prometheusBinary(cmd, t.Logf)
	if err != nil {
		t.Fatalf("%s binary: %v", filepath.Base(cmd), err)
	}
	return path
}

func prometheusBinary(cmd string, logf func(string, ...any)) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	version, err := moduleVersion(root, "github.com/prometheus/prometheus")
	if err != nil {
		return "", err
	}
	modDir := filepath.Join(root, prometheusModuleDir)
	if v, err := moduleVersion(modDir, "github.com/prometheus/prometheus"); err != nil || v != version {
		return "", fmt.Errorf("%s/go.mod requires github.com/prometheus/prometheus %s, the root module %s: change both together (%v)", prometheusModuleDir, v, version, err)
	}
	key, err := moduleKey(modDir)
	if err != nil {
		return "", err
	}
	return cachedBuild{
		modDir: modDir, pkg: cmd,
		file: filepath.Base(cmd) + "-" + version + "-" + key, lock: "prometheus.lock",
	}.path(logf)
}

// moduleKey is a short hash of a module's go.mod and go.sum.
func moduleKey(modDir string) (string, error) {
	h := sha256.New()
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(modDir, name))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// moduleVersion is the version of module that the module in dir requires.
func moduleVersion(dir, module string) (string, error) {
	c := exec.Command("go", "list", "-m", "-f", "{{.Version}}", module)
	c.Dir = dir
	out, err := c.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s in %s: %w", module, dir, err)
	}
	return strings.TrimSpace(string(out)), nil
}
