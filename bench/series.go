package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/prometheus/prometheus/prompb"
)

// The workload's series are what a fleet of HTTP services exposes for RED
// dashboards: per endpoint (service, instance, route, method) a request
// counter per status code, and a latency histogram with 11 buckets, _sum and
// _count — 16 series per endpoint. A small canary service adds the series
// the stage-aware analysis query reads.

// seriesPerEndpoint is the number of series one endpoint exposes.
const seriesPerEndpoint = 16

var (
	codes        = []string{"200", "404", "500"}
	codeShare    = []float64{0.92, 0.05, 0.03}
	buckets      = []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"}
	bucketShare  = []float64{0.02, 0.08, 0.25, 0.45, 0.70, 0.88, 0.95, 0.98, 0.995, 0.999, 1}
	routes       = []string{"/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/cart", "/api/v1/checkout", "/api/v1/users/{id}", "/api/v1/search", "/api/v1/products", "/api/v1/products/{id}", "/healthz", "/metrics"}
	routeMethods = []string{"GET", "GET", "POST", "POST", "GET", "GET", "GET", "GET", "GET", "GET"}
)

// servicesFor is how many services a fleet of n series has: about 30 series
// per instance of 10 routes, 20 to 200 services.
func servicesFor(n int) int {
	return min(max(n/5000, 20), 200)
}

// seriesSet is a fixed set of series with, per series, its labels and how
// much it grows per scrape (counters) or its level (gauges).
type seriesSet struct {
	labels [][]prompb.Label
	inc    []float64
	gauge  []bool
}

func (s *seriesSet) add(inc float64, gauge bool, kv ...string) {
	ls := make([]prompb.Label, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	s.labels = append(s.labels, ls)
	s.inc = append(s.inc, inc)
	s.gauge = append(s.gauge, gauge)
}

func (s *seriesSet) len() int { return len(s.labels) }

// redSeries returns about n series of RED metrics (rounded up to whole
// endpoints), plus the canary service's series when canary is set. Labels
// are in sorted order, as remote write sends them.
func redSeries(n int, canary bool) *seriesSet {
	s := &seriesSet{}
	endpoints := (n + seriesPerEndpoint - 1) / seriesPerEndpoint
	services := servicesFor(n)
	rng := rand.New(rand.NewPCG(1, 2))
	for e := range endpoints {
		route := e % len(routes)
		svc := (e / len(routes)) % services
		inst := e / (len(routes) * services)
		service := fmt.Sprintf("svc-%d", svc)
		instance := fmt.Sprintf("10.%d.%d.%d:8080", svc%250, inst/250, inst%250)
		pod := fmt.Sprintf("%s-7f9c%04x-%d", service, svc*7919%65536, inst)
		common := []string{"cluster", "eu-west-1", "instance", instance, "job", service, "method", routeMethods[route], "namespace", "prod", "pod", pod, "route", routes[route], "service", service}
		// Requests per 15s scrape for this endpoint: 1 to 200.
		rps := 1 + rng.Float64()*200
		for i, code := range codes {
			s.add(rps*codeShare[i], false, with("http_requests_total", common, "code", code, "")...)
		}
		for i, le := range buckets {
			s.add(rps*bucketShare[i], false, with("http_request_duration_seconds_bucket", common, "", "", le)...)
		}
		s.add(rps*0.08, false, with("http_request_duration_seconds_sum", common, "", "", "")...)
		s.add(rps, false, with("http_request_duration_seconds_count", common, "", "", "")...)
	}
	if canary {
		for i := range 8 {
			inst := fmt.Sprintf("10.250.0.%d:8080", i)
			s.add(100, false, "__name__", "sample_app_requests_count", "instance", inst, "job", "sample-app", "namespace", "prod", "service", "sample-app", "success", "true")
			s.add(0.3, false, "__name__", "sample_app_requests_count", "instance", inst, "job", "sample-app", "namespace", "prod", "service", "sample-app", "success", "false")
		}
	}
	return s
}

// with builds a sorted label list: __name__, then common (sorted already),
// with code inserted before "instance" and le between "job" and "method".
func with(name string, common []string, codeName, code, le string) []string {
	out := make([]string, 0, len(common)+4)
	out = append(out, "__name__", name)
	for i := 0; i < len(common); i += 2 {
		if common[i] == "instance" && codeName != "" {
			out = append(out, codeName, code)
		}
		if common[i] == "method" && le != "" {
			out = append(out, "le", le)
		}
		out = append(out, common[i], common[i+1])
	}
	return out
}

// stageSeries is the change_event_active series of the canary stage that
// the stage-aware query reads, written as ordinary samples to every system.
func stageSeries() []prompb.Label {
	return []prompb.Label{{Name: "__name__", Value: "change_event_active"}, {Name: "event_name", Value: "sample-app-40"}, {Name: "service", Value: "sample-app"}}
}

// eventLabels are the labels of change event i: the change_events series
// that Tidemark makes of it, and that peers receive as a sample.
func eventLabels(prefix string, i int) []prompb.Label {
	return []prompb.Label{
		{Name: "__name__", Value: "change_events"},
		{Name: "env", Value: "prod"},
		{Name: "event_name", Value: prefix + "-" + strconv.Itoa(i)},
		{Name: "event_state", Value: "start"},
		{Name: "service", Value: "svc-" + strconv.Itoa(i%100)},
	}
}

// eventJSON is change event i as Tidemark's API takes it, with the same
// labels as eventLabels.
func eventJSON(prefix string, i int) string {
	return `{"event_name":"` + prefix + "-" + strconv.Itoa(i) + `","event_state":"start","attributes":{"service":"svc-` + strconv.Itoa(i%100) + `","env":"prod"}}`
}
