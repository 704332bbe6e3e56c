// Package scenario generates services' RED metrics (rate, errors,
// duration) with the noise of real traffic, and change events that do, or
// do not, change them: the material the impact scorer is tested and
// measured with.
//
// A scenario is deterministic given its seed. Requests arrive as a Poisson
// process whose rate drifts slowly (a daily-like swell); each request fails
// with the service's error ratio and lasts a log-normal time around its
// median latency, which drifts a little too. Per scrape, every counter and
// histogram bucket grows by a Poisson draw of its expected increase (the
// split of a Poisson process), so the series have the noise of counting
// real requests, from none at 0.1 requests a second to little at 1000.
// A change multiplies the error ratio, the latency or the traffic of its
// service from its time on.
package scenario

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// Convention is how a service names its metrics.
type Convention int

// The conventions.
const (
	// Prometheus: http_requests_total{code} and
	// http_request_duration_seconds (client libraries' conventions).
	Prometheus Convention = iota
	// OTel: http_server_request_duration_seconds{http_response_status_code},
	// OpenTelemetry's semantic conventions as Prometheus names them.
	OTel
)

// Service is a service that serves requests.
type Service struct {
	Name string
	Env  string
	// RPS is its mean traffic in requests per second; 0: idle (its series
	// exist but do not grow).
	RPS float64
	// ErrorRatio is the share of requests that fail with a 5xx.
	ErrorRatio float64
	// Latency is the median request duration in seconds; Sigma the spread
	// of its logarithm (0.5 when 0).
	Latency, Sigma float64
	Convention     Convention
}

// Change is a change event of a service and what it does to it from its
// time on (factors of 0 mean 1: no effect).
type Change struct {
	EventName string
	// Kind says what sort of change it is (deploy, config, scale-up), for
	// reports; it becomes the label kind.
	Kind    string
	Service string
	// Labels are further labels of the event.
	Labels map[string]string
	At     time.Time
	// Duration, when set, makes a start and a stop that long after; 0: a
	// point event.
	Duration time.Duration
	// ErrorFactor multiplies the error ratio (capped at 1), LatencyFactor
	// the latency, TrafficFactor the traffic.
	ErrorFactor, LatencyFactor, TrafficFactor float64
	// Expect is the verdict the scorer should give.
	Expect string
}

// Scenario is services over a time range and the changes in it.
type Scenario struct {
	Seed       uint64
	Start, End time.Time
	// Scrape is the interval between samples (15s when 0).
	Scrape   time.Duration
	Services []Service
	Changes  []Change
}

// Series is a generated series.
type Series struct {
	Labels  labels.Labels
	Samples []Sample
}

// Sample is one sample: milliseconds and value.
type Sample struct {
	T int64
	V float64
}

// Buckets are the upper bounds of the latency histograms: Prometheus's
// client libraries' defaults.
var Buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Series generates the metrics of every service, in a stable order.
func (s *Scenario) Series() []Series {
	scrape := s.Scrape
	if scrape <= 0 {
		scrape = 15 * time.Second
	}
	var out []Series
	for i, svc := range s.Services {
		out = append(out, s.service(i, svc, scrape)...)
	}
	return out
}

// service generates one service's series.
func (s *Scenario) service(idx int, svc Service, scrape time.Duration) []Series {
	r := rand.New(rand.NewPCG(s.Seed, uint64(idx)+1))
	sigma := svc.Sigma
	if sigma == 0 {
		sigma = 0.5
	}
	// Slow drifts: traffic swells by up to 15% over hours, latency by 4%.
	trafficPhase, latencyPhase := r.Float64()*2*math.Pi, r.Float64()*2*math.Pi
	trafficPeriod := (2 + 2*r.Float64()) * float64(time.Hour)
	latencyPeriod := (1 + r.Float64()) * float64(time.Hour)

	codes := []string{"200", "500"}
	base := []string{"service", svc.Name}
	if svc.Env != "" {
		base = append(base, "env", svc.Env)
	}
	names := struct{ total, bucket, sum, count, code string }{
		"http_requests_total", "http_request_duration_seconds_bucket", "http_request_duration_seconds_sum", "http_request_duration_seconds_count", "code",
	}
	perCode := false
	if svc.Convention == OTel {
		names.bucket, names.sum, names.count, names.code = "http_server_request_duration_seconds_bucket", "http_server_request_duration_seconds_sum", "http_server_request_duration_seconds_count", "http_response_status_code"
		perCode = true
	}
	mk := func(name string, extra ...string) labels.Labels {
		return labels.FromStrings(append(append([]string{"__name__", name}, base...), extra...)...)
	}

	// One accumulator per series, in a fixed order.
	type acc struct {
		ls  labels.Labels
		v   float64
		out []Sample
	}
	var accs []*acc
	add := func(ls labels.Labels) *acc {
		a := &acc{ls: ls}
		accs = append(accs, a)
		return a
	}
	var totals []*acc              // per code (Prometheus convention)
	buckets := map[string][]*acc{} // per code ("" when not split), per bound, +Inf last
	sums, counts := map[string]*acc{}, map[string]*acc{}
	histCodes := []string{""}
	if perCode {
		histCodes = codes
	} else {
		for _, c := range codes {
			totals = append(totals, add(mk(names.total, names.code, c)))
		}
	}
	for _, hc := range histCodes {
		var extra []string
		if hc != "" {
			extra = []string{names.code, hc}
		}
		for _, b := range Buckets {
			buckets[hc] = append(buckets[hc], add(mk(names.bucket, append(append([]string{}, extra...), "le", formatBound(b))...)))
		}
		buckets[hc] = append(buckets[hc], add(mk(names.bucket, append(append([]string{}, extra...), "le", "+Inf")...)))
		sums[hc] = add(mk(names.sum, extra...))
		counts[hc] = add(mk(names.count, extra...))
	}

	changes := s.changesOf(svc.Name)
	step := scrape.Seconds()
	for t := s.Start; !t.After(s.End); t = t.Add(scrape) {
		ms := t.UnixMilli()
		if t.After(s.Start) {
			errF, latF, trafF := effects(changes, t)
			ft := float64(t.Sub(s.Start))
			rps := svc.RPS * trafF * (1 + 0.15*math.Sin(2*math.Pi*ft/trafficPeriod+trafficPhase))
			errRatio := math.Min(1, svc.ErrorRatio*errF)
			median := svc.Latency * latF * (1 + 0.04*math.Sin(2*math.Pi*ft/latencyPeriod+latencyPhase))
			mu := math.Log(median)
			probs := bucketProbs(mu, sigma)
			means := bucketMeans(mu, sigma)
			for ci, code := range codes {
				share := 1 - errRatio
				if code == "500" {
					share = errRatio
				}
				lambda := rps * share * step
				hc := ""
				if perCode {
					hc = code
				}
				// Every bucket counts its own requests here; they are made
				// cumulative at the end.
				n := 0.0
				for bi, p := range probs {
					k := float64(poisson(r, lambda*p))
					n += k
					if bi < len(Buckets) {
						buckets[hc][bi].v += k
					}
					sums[hc].v += k * means[bi]
				}
				if !perCode {
					totals[ci].v += n
				}
				counts[hc].v += n
				buckets[hc][len(Buckets)].v += n // +Inf: every request
			}
		}
		for _, a := range accs {
			a.out = append(a.out, Sample{T: ms, V: a.v})
		}
	}
	// Each bound counts every request at or under it.
	out := make([]Series, 0, len(accs))
	for _, hc := range histCodes {
		bs := buckets[hc]
		for i := range bs[0].out {
			cum := 0.0
			for _, b := range bs[:len(Buckets)] {
				cum += b.out[i].V
				b.out[i].V = cum
			}
		}
	}
	for _, a := range accs {
		out = append(out, Series{Labels: a.ls, Samples: a.out})
	}
	return out
}

// changesOf are the changes of a service, by time.
func (s *Scenario) changesOf(service string) []Change {
	var out []Change
	for _, c := range s.Changes {
		if c.Service == service {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// effects are the factors of the changes in effect at t.
func effects(changes []Change, t time.Time) (errF, latF, trafF float64) {
	errF, latF, trafF = 1, 1, 1
	for _, c := range changes {
		if c.At.After(t) {
			break
		}
		errF *= orOne(c.ErrorFactor)
		latF *= orOne(c.LatencyFactor)
		trafF *= orOne(c.TrafficFactor)
	}
	return errF, latF, trafF
}

func orOne(f float64) float64 {
	if f == 0 {
		return 1
	}
	return f
}

// bucketProbs are the chances of a log-normal duration to fall in each
// bucket, the last one beyond the highest bound.
func bucketProbs(mu, sigma float64) []float64 {
	out := make([]float64, len(Buckets)+1)
	prev := 0.0
	for i, b := range Buckets {
		c := lognormCDF(b, mu, sigma)
		out[i] = c - prev
		prev = c
	}
	out[len(Buckets)] = 1 - prev
	return out
}

// bucketMeans are the mean durations within each bucket.
func bucketMeans(mu, sigma float64) []float64 {
	out := make([]float64, len(Buckets)+1)
	lo := 0.0
	for i := range out {
		hi := math.Inf(1)
		if i < len(Buckets) {
			hi = Buckets[i]
		}
		out[i] = lognormMeanBetween(lo, hi, mu, sigma)
		lo = hi
	}
	return out
}

func lognormCDF(x, mu, sigma float64) float64 {
	if x <= 0 {
		return 0
	}
	return 0.5 * math.Erfc(-(math.Log(x)-mu)/(sigma*math.Sqrt2))
}

// lognormMeanBetween is E[X | lo < X <= hi] of a log-normal X.
func lognormMeanBetween(lo, hi, mu, sigma float64) float64 {
	phi := func(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }
	z := func(x, shift float64) float64 {
		switch {
		case x <= 0:
			return math.Inf(-1)
		case math.IsInf(x, 1):
			return math.Inf(1)
		}
		return (math.Log(x) - mu - shift) / sigma
	}
	p := phi(z(hi, 0)) - phi(z(lo, 0))
	if p <= 1e-300 {
		if math.IsInf(hi, 1) {
			return lo
		}
		return (lo + hi) / 2
	}
	return math.Exp(mu+sigma*sigma/2) * (phi(z(hi, sigma*sigma)) - phi(z(lo, sigma*sigma))) / p
}

// poisson draws from a Poisson distribution of mean lambda: by inversion
// for small means, from its normal approximation for large ones.
func poisson(r *rand.Rand, lambda float64) int {
	switch {
	case lambda <= 0:
		return 0
	case lambda > 50:
		n := math.Round(lambda + math.Sqrt(lambda)*r.NormFloat64())
		return int(math.Max(0, n))
	}
	l := math.Exp(-lambda)
	k, p := 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func formatBound(b float64) string { return strconv.FormatFloat(b, 'f', -1, 64) }

// Event is a change event as the change-event API takes it.
type Event struct {
	ID         string            `json:"id"`
	Name       string            `json:"event_name"`
	State      string            `json:"event_state"`
	Timestamp  int64             `json:"timestamp"`
	Attributes map[string]string `json:"attributes"`
}

// Events are the scenario's change events, by time: a point event, or a
// start and a stop, per change. Ids are derived from the seed and the
// change's position.
func (s *Scenario) Events() []Event {
	var out []Event
	for i, c := range s.Changes {
		attrs := map[string]string{}
		if c.Service != "" {
			attrs["service"] = c.Service
		}
		for _, svc := range s.Services {
			if svc.Name == c.Service && svc.Env != "" {
				attrs["env"] = svc.Env
			}
		}
		if c.Kind != "" {
			attrs["kind"] = c.Kind
		}
		for k, v := range c.Labels {
			attrs[k] = v
		}
		id := fmt.Sprintf("scenario-%d-%d", s.Seed, i)
		out = append(out, Event{ID: id, Name: c.EventName, State: "start", Timestamp: c.At.UnixMilli(), Attributes: attrs})
		if c.Duration > 0 {
			out = append(out, Event{ID: id + "-stop", Name: c.EventName, State: "stop", Timestamp: c.At.Add(c.Duration).UnixMilli(), Attributes: attrs})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp < out[j].Timestamp })
	return out
}

// EventID is the id of the start of the scenario's change i.
func (s *Scenario) EventID(i int) string { return fmt.Sprintf("scenario-%d-%d", s.Seed, i) }
