package scenario_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/alerting"
	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/impact"
	"github.com/tidemark/tidemark/impact/scenario"
	"github.com/tidemark/tidemark/storage"
)

var seeds = flag.Int("seeds", 8, "scenarios per effect size and traffic in BenchmarkDetection")

// The grid of BenchmarkDetection.
var (
	effectSizes = []float64{1.2, 1.5, 2, 3, 5, 10}
	traffics    = []float64{0.1, 0.3, 1, 3, 10, 100, 1000}
)

// The changes of a detection scenario, by position.
const (
	dEarlyDeploy = iota // healthy, on the bad service, its windows clean
	dBadDeploy
	dStraddle // harmless, on the bad service: its after window holds the bad deploy's start
	dFollow   // harmless, on the bad service: its before window holds the bad deploy
	dOtherDeploy
	dOtherConfig
	dOtherScaleUp
	dIdleDeploy
)

// detectionScenario is one cell's scenario: a service whose deploy at
// end-25m multiplies its errors, its latency or both by effect, with
// harmless changes before and after it, a service with the same traffic
// and only harmless changes, and one with no traffic.
// The kinds of bad deploy: what it multiplies.
var kinds = []string{"errors", "latency", "both"}

func detectionScenario(seed uint64, n int, effect, rps float64, end time.Time) (*scenario.Scenario, time.Duration, int) {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	at := func(d time.Duration) time.Time { return end.Add(-d) }
	bad := fmt.Sprintf("bad-%d", n)
	other := fmt.Sprintf("other-%d", n)
	idle := fmt.Sprintf("idle-%d", n)
	var errF, latF float64
	kind := r.IntN(3)
	switch kind {
	case 0:
		errF = effect
	case 1:
		latF = effect
	default:
		errF, latF = effect, effect
	}
	// The alert fires 3 to 15 minutes after the bad deploy.
	alertAfter := time.Duration(3+r.IntN(13)) * time.Minute
	sc := &scenario.Scenario{
		Seed:  seed*1000 + uint64(n),
		Start: at(95 * time.Minute),
		End:   end,
		Services: []scenario.Service{
			{Name: bad, Env: "prod", RPS: rps, ErrorRatio: 0.02, Latency: 0.1},
			{Name: other, Env: "prod", RPS: rps, ErrorRatio: 0.02, Latency: 0.1, Convention: scenario.Convention(r.IntN(2))},
			{Name: idle, Env: "prod", RPS: 0, Latency: 0.1},
		},
		Changes: []scenario.Change{
			dEarlyDeploy:  {EventName: "deploy", Service: bad, Labels: map[string]string{"version": "v1"}, At: at(60 * time.Minute), Expect: "no_change"},
			dBadDeploy:    {EventName: "deploy", Service: bad, Labels: map[string]string{"version": "v2"}, At: at(25 * time.Minute), ErrorFactor: errF, LatencyFactor: latF, Expect: "degraded"},
			dStraddle:     {EventName: "config-change", Service: bad, At: at(29 * time.Minute)},
			dFollow:       {EventName: "config-change", Service: bad, At: at(25*time.Minute - alertAfter + time.Minute)},
			dOtherDeploy:  {EventName: "deploy", Service: other, At: at(55 * time.Minute), Expect: "no_change"},
			dOtherConfig:  {EventName: "config-change", Service: other, At: at(40 * time.Minute), Expect: "no_change"},
			dOtherScaleUp: {EventName: "scale-up", Service: other, At: at(20 * time.Minute), Duration: 2 * time.Minute, LatencyFactor: 0.95, Expect: "no_change"},
			dIdleDeploy:   {EventName: "deploy", Service: idle, At: at(30 * time.Minute), Expect: "no_data"},
		},
	}
	return sc, alertAfter, kind
}

// cell counts outcomes.
type cell struct{ hit, n int }

func (c cell) rate() string {
	if c.n == 0 {
		return "    -"
	}
	return fmt.Sprintf("%5.1f", 100*float64(c.hit)/float64(c.n))
}

// BenchmarkDetection scores generated scenarios over a grid of effect sizes
// and traffic and prints the detection rate of the bad deploys, the rate
// of false degraded verdicts on harmless changes, the no_data rate of the
// service without traffic, and how often an alert on the bad service
// ranks the bad deploy first among its suspects:
//
//	go test ./impact/scenario -run '^$' -bench Detection -benchtime 1x -seeds 8
func BenchmarkDetection(b *testing.B) {
	for b.Loop() {
		runDetection(b)
	}
}

func runDetection(b *testing.B) {
	dir := b.TempDir()
	backend := storage.NewEmbedded(slog.New(slog.DiscardHandler), nil, storage.EmbeddedOptions{Dir: filepath.Join(dir, "tsdb"), Retention: 24 * time.Hour, OutOfOrderWindow: 24 * time.Hour})
	require.NoError(b, backend.Open(context.Background()))
	defer backend.Close()
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	scorer := impact.NewScorer(engine, storage.Routed{Backend: backend})
	set := impact.DefaultSettings()
	end := time.Now().Truncate(time.Minute)
	ctx := context.Background()

	detect := map[[2]int]*cell{} // [effect, traffic]
	falsePos := map[int]*cell{}  // by traffic: clean harmless changes
	straddle := map[int]*cell{}  // by traffic: harmless changes whose windows hold the bad deploy
	noData := &cell{}
	top1 := map[[2]int]*cell{}
	byKind := map[[2]int]*cell{} // [kind, traffic], effects >= 2x
	var scoreTime time.Duration
	scored := 0
	n := 0
	for ei, effect := range effectSizes {
		for ti, rps := range traffics {
			for s := range *seeds {
				n++
				sc, alertAfter, kind := detectionScenario(uint64(s+1), n, effect, rps, end)
				st, err := backend.Org("bench")
				require.NoError(b, err)
				app := st.AppenderV2(ctx)
				for _, series := range sc.Series() {
					for _, p := range series.Samples {
						_, err := app.Append(0, series.Labels, 0, p.T, p.V, nil, nil, promstorage.AOptions{})
						require.NoError(b, err)
					}
				}
				require.NoError(b, app.Commit())

				changes := toChanges(sc)
				verdicts := make([]string, len(changes))
				for i, c := range changes {
					t0 := time.Now()
					imp, err := scorer.Score(ctx, "bench", &set, c, end)
					scoreTime += time.Since(t0)
					scored++
					require.NoError(b, err)
					verdicts[i] = imp.Verdict
				}
				get := func(m map[int]*cell, k int) *cell {
					if m[k] == nil {
						m[k] = &cell{}
					}
					return m[k]
				}
				d := get2(detect, ei, ti)
				d.n++
				if verdicts[dBadDeploy] == events.VerdictDegraded {
					d.hit++
				}
				if effect >= 2 {
					k := get2(byKind, kind, ti)
					k.n++
					if verdicts[dBadDeploy] == events.VerdictDegraded {
						k.hit++
					}
				}
				for _, i := range []int{dEarlyDeploy, dOtherDeploy, dOtherConfig, dOtherScaleUp} {
					c := get(falsePos, ti)
					c.n++
					if verdicts[i] == events.VerdictDegraded {
						c.hit++
					}
				}
				for _, i := range []int{dStraddle, dFollow} {
					c := get(straddle, ti)
					c.n++
					if verdicts[i] == events.VerdictDegraded {
						c.hit++
					}
				}
				noData.n++
				if verdicts[dIdleDeploy] == events.VerdictNoData {
					noData.hit++
				}

				// The alert: on the bad service, some minutes after the bad
				// deploy; its context is the service's changes before it.
				activeAt := sc.Changes[dBadDeploy].At.Add(alertAfter)
				alert := labels.FromStrings("alertname", "Errors", "service", sc.Changes[dBadDeploy].Service, "env", "prod")
				var logged []events.Logged
				var impacts []*events.Impact
				for i, c := range changes {
					if sc.Changes[i].Service != sc.Changes[dBadDeploy].Service || sc.Changes[i].At.After(activeAt) {
						continue
					}
					imp, err := scorer.Score(ctx, "bench", &set, c, activeAt)
					require.NoError(b, err)
					logged = append(logged, events.Logged{ID: c.ID, Name: c.Name, State: "start", Time: c.Time, Seq: c.Seq, Labels: c.Labels.Map()})
					impacts = append(impacts, imp)
				}
				sus := alerting.RankSuspects(alert, activeAt, logged, impacts)
				t1 := get2(top1, ei, ti)
				t1.n++
				if sus[0].Labels["version"] == "v2" {
					t1.hit++
				}
			}
		}
	}

	var out strings.Builder
	fmt.Fprintf(&out, "\n%d scenarios (%d per cell), %d scorings, %.2f ms per scoring (3 signals, 30m+10m)\n", n, *seeds, scored, float64(scoreTime.Microseconds())/1000/float64(scored))
	table := func(title string, m map[[2]int]*cell) {
		fmt.Fprintf(&out, "\n%s, %% (rows: effect size; columns: requests/s)\n  effect", title)
		for _, r := range traffics {
			fmt.Fprintf(&out, " %6g", r)
		}
		out.WriteString("\n")
		for ei, e := range effectSizes {
			fmt.Fprintf(&out, "  %5gx ", e)
			for ti := range traffics {
				fmt.Fprintf(&out, " %s ", m[[2]int{ei, ti}].rate())
			}
			out.WriteString("\n")
		}
	}
	table("Detection: the bad deploy degraded", detect)
	table("Top-1 suspect: the bad deploy first in the alert", top1)
	fmt.Fprintf(&out, "\nDetection at effects >= 2x by what the bad deploy changed, %% (columns: requests/s)\n        ")
	for _, r := range traffics {
		fmt.Fprintf(&out, " %6g", r)
	}
	out.WriteString("\n")
	for ki, k := range kinds {
		fmt.Fprintf(&out, "  %-7s", k)
		for ti := range traffics {
			fmt.Fprintf(&out, " %s ", byKind[[2]int{ki, ti}].rate())
		}
		out.WriteString("\n")
	}
	byTraffic := func(title string, m map[int]*cell) {
		fmt.Fprintf(&out, "\n%s, %% by requests/s\n        ", title)
		total := cell{}
		for ti, r := range traffics {
			fmt.Fprintf(&out, " %6g", r)
			total.hit += m[ti].hit
			total.n += m[ti].n
		}
		out.WriteString("    all\n        ")
		for ti := range traffics {
			fmt.Fprintf(&out, " %s ", m[ti].rate())
		}
		fmt.Fprintf(&out, "  %s (%d of %d)\n", total.rate(), total.hit, total.n)
	}
	byTraffic("False degraded: harmless changes with clean windows", falsePos)
	byTraffic("Degraded: harmless changes of the bad service whose windows hold the bad deploy (confounded)", straddle)

	sum := func(m map[[2]int]*cell, keep func(ei, ti int) bool) cell {
		var c cell
		for k, v := range m {
			if keep(k[0], k[1]) {
				c.hit += v.hit
				c.n += v.n
			}
		}
		return c
	}
	target := func(ei, ti int) bool { return effectSizes[ei] >= 2 && traffics[ti] >= 1 }
	all := func(int, int) bool { return true }
	fp := cell{}
	for _, c := range falsePos {
		fp.hit += c.hit
		fp.n += c.n
	}
	fmt.Fprintf(&out, "\nno_data for the service without traffic: %s%%\n", noData.rate())
	fmt.Fprintf(&out, "Targets: false degraded %s%% (<= 2); detection at >= 2x and >= 1 req/s %s%% (>= 95); top-1 at >= 2x and >= 1 req/s %s%%, over all cells %s%% (>= 95)\n",
		fp.rate(), sum(detect, target).rate(), sum(top1, target).rate(), sum(top1, all).rate())
	fmt.Print(out.String())
}

func get2(m map[[2]int]*cell, a, b int) *cell {
	k := [2]int{a, b}
	if m[k] == nil {
		m[k] = &cell{}
	}
	return m[k]
}

// toChanges are the scenario's changes as the scorer takes them.
func toChanges(sc *scenario.Scenario) []impact.Change {
	evs := sc.Events()
	byID := map[string]scenario.Event{}
	for _, e := range evs {
		byID[e.ID] = e
	}
	out := make([]impact.Change, len(sc.Changes))
	for i := range sc.Changes {
		e := byID[sc.EventID(i)]
		c := impact.Change{Seq: int64(i + 1), ID: e.ID, Name: e.Name, Time: e.Timestamp, Labels: labels.FromMap(e.Attributes)}
		if stop, ok := byID[e.ID+"-stop"]; ok {
			c.Stop = stop.Timestamp
		}
		out[i] = c
	}
	return out
}
