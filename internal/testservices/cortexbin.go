package testservices

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// CortexVersion is the Cortex release the tests run: the one that
// tools/cortex/go.mod requires.
const CortexVersion = "v1.21.1"

const (
	cortexModuleDir = "tools/cortex"
	cortexCmd       = "github.com/cortexproject/cortex/cmd/cortex"
)

// cortexBuildFlags are those of Cortex's own release build (its Makefile's
// GO_FLAGS, built with CGO_ENABLED=0): without the slicelabels tag its
// ingester panics.
var cortexBuildFlags = []string{"-trimpath", "-tags", "netgo,slicelabels",
	"-ldflags", "-s -w -X main.Version=" + strings.TrimPrefix(CortexVersion, "v")}

// CortexBinary returns the path of the Cortex binary, building it when it is
// missing into the user's cache directory (os.UserCacheDir()/tidemark, else
// the temporary directory), as the benchmark caches its peers. The build is from tools/cortex, a module of
// its own that requires Cortex and repeats its replace directives; it takes
// minutes on an empty build cache. A lock file makes test binaries that start
// together (go test runs packages in parallel) build it once.
//
// The binary's name carries the version and a hash of tools/cortex's go.mod
// and go.sum and of the build flags, so a change of any builds a new one.
func CortexBinary(t testing.TB) string {
	t.Helper()
	path, err := cortexBinary(t.Logf)
	if err != nil {
		t.Fatalf("cortex binary: %v", err)
	}
	return path
}

func cortexBinary(logf func(string, ...any)) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	modDir := filepath.Join(root, cortexModuleDir)
	key, err := cortexModuleKey(modDir)
	if err != nil {
		return "", err
	}
	return cachedBuild{
		modDir: modDir, pkg: cortexCmd,
		file: "cortex-" + CortexVersion + "-" + key, lock: "cortex.lock",
		flags: cortexBuildFlags, env: []string{"CGO_ENABLED=0"},
		hint: ": minutes on an empty build cache, which may not fit go test's default 10m timeout; " +
			"./scripts/test builds it first with: go test -timeout 30m -run '^TestCortexBinary$' ./internal/testservices",
	}.path(logf)
}

// repoRoot finds the root of the Tidemark source tree from the working
// directory (a test runs in its package's directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, cortexModuleDir, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no %s/go.mod in %s or above: run the tests inside the Tidemark tree", cortexModuleDir, dir)
		}
	}
}

// cortexModuleKey checks that tools/cortex requires CortexVersion and
// returns a short hash of its go.mod and go.sum and of the build flags.
func cortexModuleKey(modDir string) (string, error) {
	h := sha256.New()
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(modDir, name))
		if err != nil {
			return "", err
		}
		if name == "go.mod" && !requires(string(b), "github.com/cortexproject/cortex", CortexVersion) {
			return "", fmt.Errorf("%s/go.mod does not require github.com/cortexproject/cortex %s (CortexVersion): change both together", modDir, CortexVersion)
		}
		h.Write(b)
	}
	h.Write([]byte(strings.Join(cortexBuildFlags, "\x00")))
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// lockFile takes an exclusive lock on path, waiting for it, and returns its
// release. The lock goes with the process, so a build that dies frees it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// requires reports whether the go.mod text requires module at version.
func requires(gomod, module, version string) bool {
	for _, line := range strings.Split(gomod, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "require" {
			f = f[1:]
		}
		if len(f) >= 2 && f[0] == module && f[1] == version {
			return true
		}
	}
	return false
}
