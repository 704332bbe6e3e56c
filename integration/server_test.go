package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	log "github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

// binary is the tidemark binary built from the repository root.
var binary string

// The tokens of the organization "default" of every test server.
const (
	readToken  = "integration-read-token-0123456789"
	writeToken = "integration-write-token-0123456789"
	org        = "default"
	// inCluster is the Tidemark address the examples use; tests replace it
	// with their server's.
	inCluster = "http://tidemark.tidemark.svc:9470"
)

func TestMain(m *testing.M) {
	// Argo Rollouts and notifications-engine log every notification at info.
	log.SetLevel(log.WarnLevel)
	dir, err := os.MkdirTemp("", "tidemark-integration")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "tidemark")
	build := exec.Command("go", "build", "-o", binary, "github.com/tidemark/tidemark/cmd/tidemark")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build tidemark: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running `tidemark serve`.
type server struct {
	url string
	log *bytes.Buffer
}

// startServer starts the binary on a temporary directory and a free
// loopback port, with a config file declaring the organization "default"
// and its read and write tokens, and stops it when the test ends.
func startServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tidemark.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
organizations:
  - slug: `+org+`
    tokens:
      - {name: read, scope: read, value: `+readToken+`}
      - {name: write, scope: write, value: `+writeToken+`}
`), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()

	s := &server{url: "http://" + addr, log: &bytes.Buffer{}}
	cmd := exec.Command(binary, "serve", "--web.listen-address="+addr,
		"--storage.path="+filepath.Join(dir, "data"), "--config.file="+cfg)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("tidemark log:\n%s", s.log)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case <-done:
			t.Fatalf("tidemark exited before it was ready:\n%s", s.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("tidemark not ready after 30s:\n%s", s.log)
	return nil
}

// base is the organization's Prometheus base URL.
func (s *server) base() string {
	return s.url + "/api/v4/organizations/" + org + "/prometheus"
}

// inClusterToLocal points an address of the examples at this server.
func (s *server) local(u string) string {
	return strings.Replace(u, inCluster, s.url, 1)
}

// series is one series to remote-write.
type series struct {
	labels  map[string]string
	samples []sample
}

type sample struct {
	t time.Time
	v float64
}

// encodeWriteRequest encodes series as a remote write 1.0 request
// (prometheus.WriteRequest, protobuf, snappy block format).
func encodeWriteRequest(ss []series) []byte {
	var req []byte
	for _, s := range ss {
		var ts []byte
		names := make([]string, 0, len(s.labels))
		for n := range s.labels {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			var l []byte
			l = protowire.AppendTag(l, 1, protowire.BytesType)
			l = protowire.AppendString(l, n)
			l = protowire.AppendTag(l, 2, protowire.BytesType)
			l = protowire.AppendString(l, s.labels[n])
			ts = protowire.AppendTag(ts, 1, protowire.BytesType)
			ts = protowire.AppendBytes(ts, l)
		}
		for _, smp := range s.samples {
			var b []byte
			b = protowire.AppendTag(b, 1, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, math.Float64bits(smp.v))
			b = protowire.AppendTag(b, 2, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(smp.t.UnixMilli()))
			ts = protowire.AppendTag(ts, 2, protowire.BytesType)
			ts = protowire.AppendBytes(ts, b)
		}
		req = protowire.AppendTag(req, 1, protowire.BytesType)
		req = protowire.AppendBytes(req, ts)
	}
	return snappy.Encode(nil, req)
}

// remoteWrite sends series to the organization's remote-write endpoint as
// Prometheus does.
func (s *server) remoteWrite(t *testing.T, ss []series) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.base()+"/api/v1/write", bytes.NewReader(encodeWriteRequest(ss)))
	require.NoError(t, err)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("Authorization", "Bearer "+writeToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, "remote write: %s", body)
}

// requests returns the counter series sample_app_requests_count{success}
// (with extra labels) of an app serving rps requests per second with the
// given success ratio, one sample every 15s over the 10 minutes up to now.
func requests(extra map[string]string, rps, ratio float64, now time.Time) []series {
	var ok, failed []sample
	start := now.Add(-10 * time.Minute)
	for ts, n := start, 0.0; !ts.After(now); ts, n = ts.Add(15*time.Second), n+1 {
		total := n * 15 * rps
		ok = append(ok, sample{ts, total * ratio})
		failed = append(failed, sample{ts, total * (1 - ratio)})
	}
	lbls := func(success string) map[string]string {
		m := map[string]string{"__name__": "sample_app_requests_count", "success": success}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	return []series{{lbls("true"), ok}, {lbls("false"), failed}}
}

// loggedEvent is an event of the change-events listing. It repeats part of
// client.Logged because this module cannot import the client: requiring the
// root module raises k8s.io/api to the server's version, which no longer
// has packages (scheduling/v1alpha1) that Argo Rollouts v1.10 imports.
type loggedEvent struct {
	ID       string            `json:"id"`
	Name     string            `json:"event_name"`
	State    string            `json:"event_state"`
	Time     string            `json:"timestamp"`
	Labels   map[string]string `json:"labels"`
	Metadata map[string]any    `json:"metadata"`
	Open     bool              `json:"open"`
	PairID   string            `json:"pair_id"`
	Duration *float64          `json:"duration_seconds"`
}

// events lists the organization's events (newest first) matching a
// selector, e.g. {event_name=~"sample-app.*"}.
func (s *server) events(t *testing.T, selector string) []loggedEvent {
	t.Helper()
	q := url.Values{"match[]": {selector}, "limit": {"1000"}}
	req, err := http.NewRequest(http.MethodGet, s.url+"/api/v4/organizations/"+org+"/change_events?"+q.Encode(), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+readToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, 200, resp.StatusCode, "GET change_events?%s: %s", q.Encode(), body)
	var out struct {
		Events []loggedEvent `json:"events"`
	}
	require.NoError(t, json.Unmarshal(body, &out), "%s", body)
	return out.Events
}

// openEvents returns the names of the open events among evs (starts with no
// stop yet), sorted.
func openEvents(evs []loggedEvent) []string {
	var names []string
	for _, e := range evs {
		if e.State == "start" && e.Open {
			names = append(names, e.Name)
		}
	}
	sort.Strings(names)
	return names
}

// runTidemark runs the binary (a client command) with env and returns its
// exit code and output.
func runTidemark(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	require.NoError(t, err, "%s", out)
	return 0, string(out)
}
