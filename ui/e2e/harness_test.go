package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// The organization and tokens every test server declares.
const (
	org        = "acme"
	readToken  = "acme-read-token-0123456789"
	writeToken = "acme-write-token-0123456789"
)

// binary is the tidemark binary, built from this checkout by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tidemark-ui-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tidemark")
	build := exec.Command("go", "build", "-o", binary, "./cmd/tidemark")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build tidemark: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running tidemark.
type server struct {
	url string
	cmd *exec.Cmd
	log *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startServer runs the binary on a free loopback port with the acme
// organization and extraConfig appended to its config file.
func startServer(t *testing.T, extraConfig string) *server {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tidemark.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(`organizations:
  - slug: `+org+`
    tokens:
      - {name: ui, scope: read, value: `+readToken+`}
      - {name: w, scope: write, value: `+writeToken+`}
`+extraConfig), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	s := &server{url: "http://" + addr, log: &syncBuffer{}}
	s.cmd = exec.Command(binary, "serve", "--web.listen-address="+addr,
		"--storage.path="+filepath.Join(dir, "data"), "--config.file="+cfg)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	require.NoError(t, s.cmd.Start())
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.log)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server at %s not ready after 30s; log:\n%s", s.url, s.log)
	return nil
}

// do sends a request with a bearer token and returns the status and body.
func (s *server) do(t *testing.T, method, path, token, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// event is a change event as the API takes it.
type event map[string]any

// postEvents writes events as one batch.
func (s *server) postEvents(t *testing.T, evs []event) {
	t.Helper()
	body, err := json.Marshal(evs)
	require.NoError(t, err)
	code, resp := s.do(t, "POST", "/api/v4/organizations/"+org+"/change_events", writeToken, "application/json", body)
	require.Equal(t, http.StatusOK, code, string(resp))
}

// promError runs a range query that must fail and returns Prometheus's
// error message for it.
func (s *server) promError(t *testing.T, query string, start, end time.Time, step time.Duration) string {
	t.Helper()
	q := url.Values{"query": {query}, "start": {fmt.Sprint(start.Unix())}, "end": {fmt.Sprint(end.Unix())}, "step": {fmt.Sprint(step.Seconds())}}
	code, body := s.do(t, "GET", "/api/v1/query_range?"+q.Encode(), readToken, "", nil)
	require.Equal(t, http.StatusBadRequest, code, string(body))
	var e struct{ Status, ErrorType, Error string }
	require.NoError(t, json.Unmarshal(body, &e))
	require.Equal(t, "error", e.Status)
	return e.Error
}

// chromium finds the browser: $TIDEMARK_CHROMIUM, or chromium (Debian's
// package, which .ci/run installs) or Chrome on the PATH.
func chromium(t *testing.T) string {
	if p := os.Getenv("TIDEMARK_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium on the PATH: apt-get install chromium (.ci/run does), or set TIDEMARK_CHROMIUM")
	return ""
}

// browser is a headless Chromium tab and what it saw: every request the
// page made, and its errors.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	requests []string
	errors   []string
}

// newBrowser starts headless Chromium with a fresh profile, kept off the
// network but for the test's server.
func newBrowser(t *testing.T) *browser {
	exe := chromium(t)
	profile := t.TempDir() // removed after the browser has exited (cleanups run last-in first-out)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.WindowSize(1400, 1000),
	)
	b := &browser{}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(b.observe))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	t.Cleanup(func() {
		if t.Failed() {
			b.mu.Lock()
			defer b.mu.Unlock()
			t.Logf("errors in the page: %q", b.errors)
		}
	})
	require.NoError(t, chromedp.Do(tabCtx), "start Chromium")
	ctx, cancel := context.WithTimeout(tabCtx, 3*time.Minute)
	t.Cleanup(cancel)
	b.ctx = ctx
	return b
}

// observe records the page's requests and errors. It runs in the loop that
// reads the tab's messages, so it only appends.
func (b *browser) observe(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.errors = append(b.errors, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			b.errors = append(b.errors, "console.error: "+strings.Join(parts, " "))
		}
	case *log.EventEntryAdded:
		// Answers with an error status are logged by the network source;
		// the tests cause some on purpose. Anything else (a refused
		// script or style, a blocked request) is a defect.
		if ev.Entry.Level == log.EntryLevelError && ev.Entry.Source != log.EntrySourceNetwork {
			b.errors = append(b.errors, fmt.Sprintf("%s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	}
}

// do runs actions in the tab.
func (b *browser) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(b.ctx, actions...))
}

// eval returns the value of a JavaScript expression; a promise is awaited.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	require.NoError(t, err, expr)
	return v
}

// text returns the text of the first element matching the CSS selector.
func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Text(css(sel)))
	require.NoError(t, err, sel)
	return v
}

// css is a CSS selector (the first match).
func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// check fails the test if the page threw, logged an error or sent a
// request anywhere but base.
func (b *browser) check(t *testing.T, base string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(t, b.errors, "errors in the page")
	require.NotEmpty(t, b.requests)
	for _, u := range b.requests {
		if strings.HasPrefix(u, "data:") || u == "about:blank" {
			continue
		}
		require.True(t, strings.HasPrefix(u, base+"/"), "the page requested %s, which is not on %s", u, base)
	}
}

// signIn opens the UI and signs in with the read token.
func (b *browser) signIn(t *testing.T, s *server) {
	t.Helper()
	b.do(t,
		chromedp.Navigate(s.url+"/"),
		chromedp.WaitVisible(css(`[data-testid=signin-form]`)),
		chromedp.SendKeys(css(`[data-testid=signin-token]`), readToken),
		setValue(`[data-testid=signin-org]`, ""),
		chromedp.SendKeys(css(`[data-testid=signin-org]`), org),
		chromedp.Click(css(`[data-testid=signin-submit]`)),
		chromedp.WaitVisible(css(`[data-testid=nav-explore]`)),
	)
}

// dataset returns the data-* attributes of the first element matching sel.
func (b *browser) dataset(t *testing.T, sel string) map[string]string {
	t.Helper()
	return eval[map[string]string](t, b, fmt.Sprintf(`Object.assign({}, document.querySelector(%q).dataset)`, sel))
}

// screenshotDir is where screenshots go: $TIDEMARK_SCREENSHOTS, or
// ui/e2e/screenshots (ignored by git).
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("TIDEMARK_SCREENSHOTS")
	if dir == "" {
		dir = "screenshots"
	}
	dir, err := filepath.Abs(dir)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// screenshot writes the whole page as NAME.png and logs where.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	b.save(t, name, chromedp.FullScreenshot(100))
}

// viewportScreenshot writes what the window shows as NAME.png, without the
// relayout of a whole-page capture (which ends a hover).
func (b *browser) viewportScreenshot(t *testing.T, name string) {
	t.Helper()
	b.save(t, name, chromedp.CaptureScreenshot())
}

func (b *browser) save(t *testing.T, name string, capture chromedp.Action[[]byte]) {
	t.Helper()
	png, err := chromedp.Run(b.ctx, capture)
	require.NoError(t, err)
	p := filepath.Join(screenshotDir(t), name+".png")
	require.NoError(t, os.WriteFile(p, png, 0o644))
	t.Logf("screenshot: %s", p)
}

// waitFor polls the JavaScript expression cond until it is true.
func (b *browser) waitFor(t *testing.T, cond string, timeout time.Duration) {
	t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(timeout)))
	require.NoError(t, err, "waiting for %s", cond)
}

// setValue sets the value of the first input matching the CSS selector, as
// pasting it would: the input's handlers see an input event.
func setValue(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(el => {
		el.value = %q;
		el.dispatchEvent(new Event('input', {bubbles: true}));
	})(document.querySelector(%q))`, value, sel))
}
