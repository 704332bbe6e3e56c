package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
)

// binary is the tidemark binary built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tidemark-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "tidemark")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build tidemark: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binServer is a running tidemark binary.
type binServer struct {
	t    testing.TB
	cmd  *exec.Cmd
	url  string
	dir  string
	addr string
	args []string
	log  *syncBuffer
	// defaultAddr starts the server with no --web.listen-address.
	defaultAddr bool
	// env is added to the test's environment.
	env []string
}

// syncBuffer is a server's output: written by the goroutine exec copies
// it with, read by the test while the server runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) raw() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// String is the output so far. When a process panicked or hit a fatal
// error, the crash comes first: a failure message that is cut to fit
// (as CI's report is) still shows why the server went away.
func (b *syncBuffer) String() string {
	out := b.raw()
	if c := crash(out); c != "" {
		return "the process crashed:\n" + c + "\n--- its whole output:\n" + out
	}
	return out
}

// crash is the first panic or fatal error of a Go process's output (a
// handler's panic that net/http recovered from included), from the start
// of its line, with the lines that follow it (at most 60: the message and
// the crashing goroutine's stack), or "" when there is none.
func crash(out string) string {
	at := -1
	for _, mark := range []string{"\npanic: ", "\nfatal error: ", "\nunexpected fault address ", "http: panic serving "} {
		if i := strings.Index("\n"+out, mark); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at < 0 {
		return ""
	}
	at = strings.LastIndexByte(out[:at], '\n') + 1
	lines := strings.SplitN(out[at:], "\n", 61)
	return strings.Join(lines[:min(len(lines), 60)], "\n")
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// startServer starts `tidemark serve` on dir (its working directory) and a
// free loopback port, and waits until it is ready.
func startServer(t testing.TB, dir string, args ...string) *binServer {
	s := &binServer{t: t, dir: dir, addr: freeAddr(t), args: args}
	s.start()
	t.Cleanup(func() {
		s.stop(syscall.SIGKILL)
		// A failure a server's crash caused (a refused connection, an
		// EOF) names the crash too.
		if c := crash(s.log.raw()); t.Failed() && c != "" {
			t.Logf("the server at %s crashed:\n%s", s.url, c)
		}
	})
	return s
}

func (s *binServer) start() {
	s.log = &syncBuffer{}
	args := append([]string{"serve", "--web.listen-address=" + s.addr}, s.args...)
	if s.defaultAddr {
		args = append([]string{"serve"}, s.args...)
	}
	s.cmd = exec.Command(binary, args...)
	s.cmd.Env = append(os.Environ(), s.env...)
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	require.NoError(s.t, s.cmd.Start())
	s.url = "http://" + s.addr
	waitReady(s.t, s.url, s.log)
}

func waitReady(t testing.TB, url string, log fmt.Stringer) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server at %s not ready after 30s; log:\n%s", url, log)
}

// stop ends the server with sig and waits for it.
func (s *binServer) stop(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-done
		s.t.Errorf("server did not stop within 60s after %s; log:\n%s", sig, s.log)
	}
}

func (s *binServer) restart() {
	s.stop(syscall.SIGTERM)
	require.Contains(s.t, s.log.String(), "received signal, shutting down")
	s.start()
}

func (s *binServer) bootstrapToken() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "data", "bootstrap-token"))
	require.NoError(s.t, err)
	return strings.TrimSpace(string(b))
}

// tidemark runs the binary (not serve) and returns its exit code and output.
func tidemark(t testing.TB, env []string, args ...string) (int, string) {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	require.NoError(t, err, "%s", out)
	return 0, string(out)
}

// listAll lists, through every page of the events API, the events of
// organization acme matching q, newest first.
func listAll(t testing.TB, srv *binServer, q client.ListQuery) []client.Logged {
	t.Helper()
	c, err := client.New(client.Options{URL: srv.url, Org: "acme", Token: acmeRead})
	require.NoError(t, err)
	q.Limit = 1000
	var all []client.Logged
	for {
		page, err := c.List(context.Background(), q)
		require.NoError(t, err)
		all = append(all, page.Events...)
		if page.NextCursor == "" {
			return all
		}
		q.Cursor = page.NextCursor
	}
}

// eventIDs counts how often each event id of organization acme matching q
// is listed.
func eventIDs(t testing.TB, srv *binServer, q client.ListQuery) map[string]int {
	ids := map[string]int{}
	for _, e := range listAll(t, srv, q) {
		ids[e.ID]++
	}
	return ids
}

// TestCrashFirst: a server's output puts a panic before the log lines that
// led to it, so that a failure message cut short still names the crash.
func TestCrashFirst(t *testing.T) {
	var b syncBuffer
	fmt.Fprint(&b, "level=INFO msg=ready\n")
	require.Equal(t, "level=INFO msg=ready\n", b.String(), "no crash: the output as it is")
	fmt.Fprint(&b, "panic: queue is not running\n\ngoroutine 7 [running]:\nmain.f()\n")
	got := b.String()
	require.True(t, strings.HasPrefix(got, "the process crashed:\npanic: queue is not running\n\ngoroutine 7 [running]:\nmain.f()\n"), got)
	require.True(t, strings.HasSuffix(got, "--- its whole output:\nlevel=INFO msg=ready\npanic: queue is not running\n\ngoroutine 7 [running]:\nmain.f()\n"), got)
	require.Equal(t, "fatal error: concurrent map writes", crash("fatal error: concurrent map writes"))
	require.Equal(t, "2026/12/01 23:13:24 http: panic serving 127.0.0.1:36232: boom\ngoroutine 361 [running]:",
		crash("level=INFO msg=ready\n2026/12/01 23:13:24 http: panic serving 127.0.0.1:36232: boom\ngoroutine 361 [running]:"))
}
