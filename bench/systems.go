package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Versions of the peers. Prometheus is the version Tidemark is built on
// (this module's go.mod requires the same one as the root's).
const (
	victoriaMetricsModule  = "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics"
	victoriaMetricsVersion = "v1.151.0"
	prometheusCmd          = "github.com/prometheus/prometheus/cmd/prometheus"
)

const (
	benchOrg   = "bench"
	writeToken = "bench-write-token-0001"
	readToken  = "bench-read-token-00001"
	adminToken = "bench-admin-token-0001"
)

// system is one store under test: how to start it and where it takes
// writes and queries.
type system struct {
	name    string
	version string
	bin     string
	// argv returns the arguments to serve from dir on addr.
	argv func(dir, addr string) []string
	// writePath and queryPrefix are relative to the base URL: remote write,
	// and the prefix of /api/v1/query.
	writePath, queryPrefix string
	wToken, rToken         string
	// coldArgs are added to argv, and coldQuery to every query, when the
	// system runs with every cache off (cold queries); without them its
	// caches are on (repeated-dashboard queries).
	coldArgs  []string
	coldQuery url.Values
	// eventsPath is the change-events API (Tidemark only).
	eventsPath string
	// env is added to the process's environment.
	env []string
	// profile, when set, is the path prefix of the CPU profiles fetched
	// from the process's /debug/pprof/profile while it runs (Tidemark with
	// --debug.pprof only).
	profile string
}

// tidemarkSystem is the tidemark binary bin; extra are further flags of
// `tidemark serve`.
func tidemarkSystem(bin, configFile string, extra ...string) *system {
	base := "/api/v4/organizations/" + benchOrg
	return &system{
		name: "Tidemark", version: "this tree", bin: bin,
		argv: func(dir, addr string) []string {
			return append([]string{"serve", "--web.listen-address=" + addr, "--storage.path=" + dir, "--config.file=" + configFile}, extra...)
		},
		writePath: base + "/prometheus/api/v1/write", queryPrefix: base + "/prometheus",
		wToken: writeToken, rToken: readToken,
		eventsPath: base + "/change_events",
	}
}

func prometheusSystem(bin, version, configFile string) *system {
	return &system{
		name: "Prometheus", version: version, bin: bin,
		argv: func(dir, addr string) []string {
			return []string{"--config.file=" + configFile, "--storage.tsdb.path=" + dir, "--web.listen-address=" + addr,
				"--web.enable-remote-write-receiver"}
		},
		writePath: "/api/v1/write",
	}
}

func victoriaMetricsSystem(bin string) *system {
	return &system{
		name: "VictoriaMetrics", version: victoriaMetricsVersion, bin: bin,
		argv: func(dir, addr string) []string {
			return []string{"-storageDataPath=" + dir, "-httpListenAddr=" + addr, "-loggerLevel=WARN"}
		},
		writePath: "/api/v1/write",
		// Cold: its caches off, so that every query is computed. nocache
		// also skips the 30s -search.latencyOffset for queries at "now"
		// (the write-to-visible measurement).
		coldArgs:  []string{"-search.disableCache"},
		coldQuery: url.Values{"nocache": {"1"}},
	}
}

// writeConfigs writes the config files the systems start with into dir.
func writeConfigs(dir string) (tidemarkCfg, promCfg string, err error) {
	tidemarkCfg = filepath.Join(dir, "tidemark.yml")
	promCfg = filepath.Join(dir, "prometheus.yml")
	t := fmt.Sprintf(`organizations:
  - slug: %s
    tokens:
      - {name: w, scope: write, value: %s}
      - {name: r, scope: read, value: %s}
      - {name: a, scope: admin, value: %s}
`, benchOrg, writeToken, readToken, adminToken)
	if err := os.WriteFile(tidemarkCfg, []byte(t), 0o600); err != nil {
		return "", "", err
	}
	// No scrape jobs: samples come by remote write only.
	if err := os.WriteFile(promCfg, []byte("global:\n  scrape_interval: 15s\n"), 0o644); err != nil {
		return "", "", err
	}
	return tidemarkCfg, promCfg, nil
}

// proc is a running system.
type proc struct {
	sys *system
	// cached: the system runs with its caches on.
	cached  bool
	cmd     *exec.Cmd
	base    string
	started time.Time
	exited  chan struct{}
	waitErr error
	log     *os.File
	http    *http.Client
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start starts sys with every cache off on dir and a free loopback port;
// its output goes to logPath (appended).
func start(sys *system, dir, logPath string) (*proc, error) {
	return launch(sys, dir, logPath, false)
}

// startCached starts sys as start does, with its caches on.
func startCached(sys *system, dir, logPath string) (*proc, error) {
	return launch(sys, dir, logPath, true)
}

func launch(sys *system, dir, logPath string, cached bool) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := sys.argv(dir, addr)
	if !cached {
		args = append(args, sys.coldArgs...)
	}
	cmd := exec.Command(sys.bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), sys.env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	p := &proc{sys: sys, cached: cached, cmd: cmd, base: "http://" + addr, exited: make(chan struct{}), log: lf,
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 5 * time.Minute}}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", sys.name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if sys.profile != "" {
		go p.profileLoop()
	}
	return p, nil
}

// profileLoop fetches CPU profiles of 10 s, back to back, from the
// process's /debug/pprof/profile until it exits, each into its own file
// (`go tool pprof` merges the files it is given), and after each a heap
// profile (<prefix>.heap.<pid>.<n>).
func (p *proc) profileLoop() {
	c := &http.Client{Timeout: time.Minute}
	for n := 0; ; {
		select {
		case <-p.exited:
			return
		default:
		}
		body, err := p.fetchProfile(c, "/debug/pprof/profile?seconds=10")
		if err != nil {
			// Not listening yet, or gone.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		heap, err := p.fetchProfile(c, "/debug/pprof/heap")
		if err != nil {
			continue
		}
		for path, b := range map[string][]byte{
			fmt.Sprintf("%s.%d.%03d", p.sys.profile, p.pid(), n):      body,
			fmt.Sprintf("%s.heap.%d.%03d", p.sys.profile, p.pid(), n): heap,
		} {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				fmt.Fprintf(p.log, "bench: write profile: %v\n", err)
				return
			}
		}
		n++
	}
}

// fetchProfile gets one profile from the process's /debug/pprof.
func (p *proc) fetchProfile(c *http.Client, path string) ([]byte, error) {
	req, err := http.NewRequest("GET", p.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %d %s", path, resp.StatusCode, truncate(string(body), 200))
	}
	if err != nil {
		fmt.Fprintf(p.log, "bench: profile: %v\n", err)
		time.Sleep(time.Second)
	}
	return body, err
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// waitReady polls /-/ready until it answers 200 and returns the time from
// the process's start.
func (p *proc) waitReady(timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-p.exited:
			return 0, fmt.Errorf("%s exited before it was ready: %v (log: %s)", p.sys.name, p.waitErr, p.log.Name())
		default:
		}
		resp, err := c.Get(p.base + "/-/ready")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(p.started), nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s not ready %s after its start (log: %s)", p.sys.name, timeout, p.log.Name())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop ends the process with SIGTERM (SIGKILL after two minutes) and waits.
func (p *proc) stop() error {
	defer p.log.Close()
	select {
	case <-p.exited:
		return fmt.Errorf("%s had exited: %v", p.sys.name, p.waitErr)
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(2 * time.Minute):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within 2m of SIGTERM; killed", p.sys.name)
	}
}

func (p *proc) writer() (*writer, error) {
	return newWriter(p.base+p.sys.writePath, p.sys.wToken)
}

// get sends an authorized GET and returns the body of a 200.
func (p *proc) get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	if !p.cached {
		for k, v := range p.sys.coldQuery {
			q[k] = v
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if p.sys.rToken != "" {
		req.Header.Set("Authorization", "Bearer "+p.sys.rToken)
	}
	return p.do(req)
}

// post sends an authorized JSON POST and returns the body of a 200.
func (p *proc) post(ctx context.Context, path, body string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.sys.wToken)
	return p.do(req)
}

// do sends req and returns the body of a 200. A 429 or 503 is retried
// after its Retry-After (or 100ms) for up to a minute, as a client would.
func (p *proc) do(req *http.Request) ([]byte, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := p.http.Do(req)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			return b, nil
		case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) && time.Now().Before(deadline):
			wait := 100 * time.Millisecond
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = time.Duration(s) * time.Second
			}
			time.Sleep(wait)
			if req.GetBody != nil {
				if req.Body, err = req.GetBody(); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, truncate(string(b), 300))
		}
	}
}

// serveFlags returns those of want (flag=value) that `bin serve --help`
// lists, so that the harness runs against older and newer trees alike.
func serveFlags(bin string, want ...string) []string {
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	var have []string
	for _, w := range want {
		name, _, _ := strings.Cut(w, "=")
		if strings.Contains(string(out), name+"=") || strings.Contains(string(out), name+" ") {
			have = append(have, w)
		}
	}
	return have
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// binaries locates or builds the three systems' binaries.
type binaries struct {
	repo, cacheDir string
	buildPeers     bool
	logf           func(format string, args ...any)
}

// tidemark builds the tree's tidemark binary.
func (b binaries) tidemark(out string) error {
	b.logf("building tidemark from %s", b.repo)
	return goCmd(b.repo, nil, "build", "-o", out, "./cmd/tidemark")
}

// prometheusVersion is the Prometheus version this module requires.
func prometheusVersion() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/prometheus/prometheus").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m github.com/prometheus/prometheus: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// prometheus returns the path of Prometheus at version, building it into
// the cache when it is missing and building is allowed ("" if not).
func (b binaries) prometheus(version string) (string, error) {
	path := filepath.Join(b.cacheDir, "prometheus-"+version)
	if _, err := os.Stat(path); err == nil || !b.buildPeers {
		return existing(path)
	}
	b.logf("building prometheus %s into %s", version, path)
	if err := goCmd(".", nil, "build", "-o", path+".tmp", prometheusCmd); err != nil {
		return "", err
	}
	return path, os.Rename(path+".tmp", path)
}

// victoriaMetrics returns the path of VictoriaMetrics, installing it into
// the cache when it is missing and building is allowed ("" if not).
func (b binaries) victoriaMetrics() (string, error) {
	path := filepath.Join(b.cacheDir, "victoria-metrics-"+victoriaMetricsVersion)
	if _, err := os.Stat(path); err == nil || !b.buildPeers {
		return existing(path)
	}
	b.logf("building victoria-metrics %s into %s", victoriaMetricsVersion, path)
	gobin, err := os.MkdirTemp(b.cacheDir, "gobin")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(gobin)
	// Outside any module, so that VictoriaMetrics builds with its own go.mod.
	if err := goCmd(os.TempDir(), []string{"GOBIN=" + gobin}, "install", victoriaMetricsModule+"@"+victoriaMetricsVersion); err != nil {
		return "", err
	}
	return path, os.Rename(filepath.Join(gobin, "victoria-metrics"), path)
}

func existing(path string) (string, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	return path, nil
}

func goCmd(dir string, env []string, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
