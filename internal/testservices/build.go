package testservices

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// cachedBuild is a binary built from a module of the tree into the user
// cache dir, once: test binaries that need it at the same time take turns
// on a lock, and those after the first find it built.
type cachedBuild struct {
	// modDir is the module, pkg the main package built in it.
	modDir, pkg string
	// file is the binary's name in the cache (with the version and a key
	// of what it is built from), lock the name of its lock file.
	file, lock string
	flags, env []string
	// hint is logged when a build starts: how to build it ahead.
	hint string
}

// path returns the binary's path, building it when it is missing.
func (b cachedBuild) path(logf func(string, ...any)) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		// No $HOME (or $XDG_CACHE_HOME): as the benchmark does.
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "tidemark")
	path := filepath.Join(dir, b.file)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(filepath.Join(dir, b.lock))
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another test binary may have built it while this one waited.
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	logf("building %s into %s%s", filepath.Base(b.pkg), path, b.hint)
	start := time.Now()
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	args := append(append([]string{"build"}, b.flags...), "-o", tmp, b.pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = b.modDir
	cmd.Env = append(os.Environ(), b.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build %s in %s: %w\n%s", b.pkg, b.modDir, err, lastLines(string(out), 40))
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	logf("built %s in %s", filepath.Base(b.pkg), time.Since(start).Round(time.Second))
	return path, nil
}
