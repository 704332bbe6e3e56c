package testservices

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"go.yaml.in/yaml/v3"
)

// TenantHeader is the header that names the tenant of a Cortex request.
const TenantHeader = "X-Scope-OrgID"

// CortexOOOWindow is how old a sample Cortex accepts (its out-of-order
// window): more than Tidemark's 7-day backfill window, so that an event
// accepted at the edge of that window is not refused by the time it is
// pushed.
const CortexOOOWindow = 8 * 24 * time.Hour

// CortexServer is a running Cortex.
type CortexServer struct {
	// URL is its HTTP base URL, http://127.0.0.1:PORT.
	URL string
	// PushURL is its remote-write endpoint (URL/api/v1/push).
	PushURL string
	// QueryURL is the base URL of its Prometheus API (URL/prometheus):
	// /api/v1/query, /api/v1/query_range, /api/v1/series, /api/v1/read ...
	// are below it.
	QueryURL string
	// OTLPURL is its OTLP/HTTP metrics endpoint (URL/api/v1/otlp/v1/metrics).
	OTLPURL string
	// GRPCAddr is its gRPC listen address.
	GRPCAddr string
	// StartupTime is how long it took from the start of the process to the
	// first sample written and read back.
	StartupTime time.Duration
}

// Client returns an HTTP client that sends every request as tenant.
func (c *CortexServer) Client(tenant string) *http.Client {
	return &http.Client{Transport: TenantRoundTripper(tenant, nil), Timeout: time.Minute}
}

// TenantRoundTripper returns a round tripper that sets the tenant header on
// every request before next (http.DefaultTransport when nil) sends it.
func TenantRoundTripper(tenant string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return tenantRT{tenant: tenant, next: next}
}

type tenantRT struct {
	tenant string
	next   http.RoundTripper
}

func (rt tenantRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(TenantHeader, rt.tenant)
	return rt.next.RoundTrip(r)
}

// CortexOption changes how Cortex is started.
type CortexOption func(*cortexOptions)

type cortexOptions struct {
	flags        []string
	tenantLimits map[string]map[string]any
}

// CortexFlags adds command-line flags after the harness's own. A Cortex
// flag overrides the config file, so any setting of Cortex's config
// reference can be changed this way, e.g. "-distributor.ingestion-rate-limit=10".
func CortexFlags(flags ...string) CortexOption {
	return func(o *cortexOptions) { o.flags = append(o.flags, flags...) }
}

// CortexTenantLimits sets limits of one tenant through Cortex's runtime
// config (its overrides), named as in the config reference's
// limits_config, e.g. {"ingestion_rate": 1, "ingestion_burst_size": 1}.
func CortexTenantLimits(tenant string, limits map[string]any) CortexOption {
	return func(o *cortexOptions) {
		if o.tenantLimits == nil {
			o.tenantLimits = map[string]map[string]any{}
		}
		o.tenantLimits[tenant] = limits
	}
}

// Cortex starts Cortex (CortexBinary) single-process, -target=all, for the
// test and stops it when the test ends. It listens on 127.0.0.1 on free
// HTTP and gRPC ports, requires a tenant (X-Scope-OrgID) on every request,
// keeps blocks on the filesystem and its rings in memory, and advertises
// 127.0.0.1 in every ring (otherwise it advertises the machine's interface
// address). Samples up to CortexOOOWindow old are accepted, and queries
// always reach the ingesters, so a sample is queryable as soon as its push
// has been answered (by a query with an explicit time: see the package doc).
//
// Cortex returns once a probe sample of the tenant "testservices-probe" has
// been pushed and read back through the query frontend.
func Cortex(t testing.TB, opts ...CortexOption) *CortexServer {
	t.Helper()
	var o cortexOptions
	for _, opt := range opts {
		opt(&o)
	}
	bin := CortexBinary(t)
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		c, svc, err := startCortex(bin, o)
		if err == nil {
			t.Logf("cortex %s at %s ready in %s", CortexVersion, c.URL, c.StartupTime.Round(time.Millisecond))
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("cortex log (last lines):\n%s", svc.logTail(60))
				}
				if err := svc.stop(30 * time.Second); err != nil {
					t.Errorf("stop cortex: %v", err)
				}
			})
			return c
		}
		errs = append(errs, err)
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("cortex: %v", errors.Join(errs...))
	return nil
}

// cortexConfig is the config file; the address flags are in cortexArgs.
var cortexConfig = template.Must(template.New("cortex.yaml").Parse(`# Written by Tidemark's testservices for one test.
target: all
auth_enabled: true

server:
  http_listen_address: 127.0.0.1
  http_listen_port: {{.HTTPPort}}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: {{.GRPCPort}}
  log_level: warn
  graceful_shutdown_timeout: 5s

distributor:
  # As a production distributor does; global series limits need it.
  shard_by_all_labels: true
  ring:
    kvstore: {store: inmemory}
ingester:
  lifecycler:
    ring:
      kvstore: {store: inmemory}
      replication_factor: 1
    # Ready and able to take writes at once; no wait at shutdown.
    join_after: 0s
    min_ready_duration: 0s
    observe_period: 0s
    final_sleep: 0s
    num_tokens: 128
compactor:
  data_dir: {{.Dir}}/compactor
  sharding_ring:
    kvstore: {store: inmemory}
store_gateway:
  sharding_ring:
    kvstore: {store: inmemory}
ruler:
  enable_api: true
  rule_path: {{.Dir}}/ruler
  ring:
    kvstore: {store: inmemory}
ruler_storage:
  backend: local
  local: {directory: {{.Dir}}/rules}
alertmanager:
  data_dir: {{.Dir}}/alertmanager
  external_url: http://127.0.0.1:{{.HTTPPort}}/alertmanager
  # An empty listen address turns the gossip cluster off (it would take
  # 0.0.0.0:9094).
  cluster: {listen_address: ""}
  sharding_ring:
    kvstore: {store: inmemory}
alertmanager_storage:
  backend: local
  local: {path: {{.Dir}}/alertmanager-configs}
memberlist:
  bind_addr: [127.0.0.1]
  bind_port: {{.MemberlistPort}}
  advertise_addr: 127.0.0.1
  advertise_port: {{.MemberlistPort}}
frontend_worker:
  frontend_address: 127.0.0.1:{{.GRPCPort}}

blocks_storage:
  backend: filesystem
  filesystem: {dir: {{.Dir}}/blocks}
  tsdb: {dir: {{.Dir}}/tsdb}
  bucket_store: {sync_dir: {{.Dir}}/tsdb-sync}

querier:
  # Every query reaches the ingesters (0 = no cut-off) as well as the
  # store-gateway, so recent samples are found at once.
  query_ingesters_within: 0s
  query_store_after: 0s

limits:
  # Change events are backfilled up to 7 days.
  out_of_order_time_window: {{.OOOWindow}}

runtime_config:
  file: {{.Dir}}/runtime.yaml
  period: 1s
`))

func startCortex(bin string, o cortexOptions) (*CortexServer, *service, error) {
	dir, err := os.MkdirTemp("", "tidemark-cortex-")
	if err != nil {
		return nil, nil, err
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
	}
	httpPort, grpcPort, mlPort := ports[0], ports[1], ports[2]
	if err := writeCortexFiles(dir, httpPort, grpcPort, mlPort, o); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	args := append([]string{bin, "-config.file=" + filepath.Join(dir, "cortex.yaml")}, cortexAddrFlags...)
	args = append(args, o.flags...)
	svc, err := startService(serviceSpec{
		name: "cortex", dir: dir, logPath: filepath.Join(dir, "cortex.log"),
		stopSignal: "TERM", argv: args,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	c := &CortexServer{
		URL: base, PushURL: base + "/api/v1/push", QueryURL: base + "/prometheus",
		OTLPURL: base + "/api/v1/otlp/v1/metrics", GRPCAddr: "127.0.0.1:" + strconv.Itoa(grpcPort),
	}
	start := time.Now()
	if err := waitCortex(c, svc, 2*time.Minute); err != nil {
		log := svc.logTail(40)
		svc.stop(30 * time.Second)
		if strings.Contains(log, "address already in use") {
			return nil, nil, fmt.Errorf("%w: %v\n%s", errPortTaken, err, log)
		}
		return nil, nil, fmt.Errorf("%v\ncortex log (last lines):\n%s", err, log)
	}
	c.StartupTime = time.Since(start)
	return c, svc, nil
}

// cortexAddrFlags make every ring and lifecycler advertise 127.0.0.1. They
// are flags because these settings are hidden from the config reference.
var cortexAddrFlags = []string{
	"-ingester.lifecycler.addr=127.0.0.1",
	"-distributor.ring.instance-addr=127.0.0.1",
	"-compactor.ring.instance-addr=127.0.0.1",
	"-store-gateway.sharding-ring.instance-addr=127.0.0.1",
	"-ruler.ring.instance-addr=127.0.0.1",
	"-alertmanager.sharding-ring.instance-addr=127.0.0.1",
	"-frontend.instance-addr=127.0.0.1",
	"-querier.instance-addr=127.0.0.1",
}

func writeCortexFiles(dir string, httpPort, grpcPort, mlPort int, o cortexOptions) error {
	for _, d := range []string{"ruler", "rules", "alertmanager-configs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	var cfg bytes.Buffer
	err := cortexConfig.Execute(&cfg, map[string]any{
		"Dir": dir, "HTTPPort": httpPort, "GRPCPort": grpcPort, "MemberlistPort": mlPort,
		"OOOWindow": strconv.Itoa(int(CortexOOOWindow/time.Hour)) + "h",
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cortex.yaml"), cfg.Bytes(), 0o644); err != nil {
		return err
	}
	runtime := []byte("{}\n")
	if len(o.tenantLimits) > 0 {
		if runtime, err = yaml.Marshal(map[string]any{"overrides": o.tenantLimits}); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "runtime.yaml"), runtime, 0o644)
}

const (
	probeTenant = "testservices-probe"
	probeMetric = "testservices_probe"
)

// waitCortex waits until Cortex says it is ready, takes a sample and
// answers a query with it.
func waitCortex(c *CortexServer, svc *service, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 5 * time.Second}
	ts := time.Now().UnixMilli()
	var last error
	for stage := 0; stage < 3; {
		if done, err := svc.exitedErr(); done {
			return fmt.Errorf("cortex exited before it was ready: %v", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cortex not ready within %s: %v", timeout, last)
		}
		switch stage {
		case 0:
			last = cortexReady(hc, c.URL)
		case 1:
			last = pushProbe(hc, c.PushURL, ts)
		case 2:
			last = queryProbe(hc, c.QueryURL, ts)
		}
		if last == nil {
			stage++
			continue
		}
		time.Sleep(25 * time.Millisecond)
	}
	return nil
}

func cortexReady(hc *http.Client, base string) error {
	resp, err := hc.Get(base + "/ready")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/ready: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

func pushProbe(hc *http.Client, pushURL string, ts int64) error {
	wr := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: probeMetric}},
		Samples: []prompb.Sample{{Timestamp: ts, Value: 1}},
	}}}
	b, err := wr.Marshal()
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, pushURL, bytes.NewReader(snappy.Encode(nil, b)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set(TenantHeader, probeTenant)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("push: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// queryProbe queries at the probe's time: with no time, Cortex's query
// frontend evaluates at the start of the current second, before the sample.
func queryProbe(hc *http.Client, queryURL string, ts int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, queryURL+"/api/v1/query?"+url.Values{
		"query": {probeMetric}, "time": {strconv.FormatFloat(float64(ts)/1000, 'f', 3, 64)}}.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set(TenantHeader, probeTenant)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("query: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var r struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("query: %w: %s", err, body)
	}
	if len(r.Data.Result) == 0 {
		return fmt.Errorf("query: the probe sample is not visible yet: %s", body)
	}
	return nil
}
