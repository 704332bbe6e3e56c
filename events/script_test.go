package events

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

var update = flag.Bool("update", false, "rewrite the expectations of testdata/*.txt with what the code does")

// TestScripts runs the behaviour scripts in testdata/: events in, series
// and event-log rows out. See testdata/README.md for the language.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			runScript(t, f)
		})
	}
}

// harness drives a Service synchronously, on the test's goroutine, with a
// clock the script sets.
type harness struct {
	t       *testing.T
	dir     string
	db      *state.DB
	backend *storage.Embedded
	svc     *Service
	now     time.Time
	// failCommits makes TSDB commits fail, as a crash between the event
	// log's commit and the TSDB's would.
	failCommits bool
	opts        Options
	engine      *promql.Engine
}

func newHarness(t *testing.T, opts Options) *harness {
	h := &harness{t: t, dir: t.TempDir(), opts: opts}
	h.engine = promql.NewEngine(promql.EngineOpts{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	h.open()
	t.Cleanup(h.close)
	return h
}

func (h *harness) open() {
	db, err := state.Open(filepath.Join(h.dir, "state.db"))
	require.NoError(h.t, err)
	for _, org := range []string{"default", "other"} {
		require.NoError(h.t, db.EnsureOrg(context.Background(), org))
	}
	h.db = db
	h.backend = storage.NewEmbedded(slog.New(slog.DiscardHandler), nil, storage.EmbeddedOptions{
		Dir: filepath.Join(h.dir, "tsdb"), Retention: 30 * 24 * time.Hour, OutOfOrderWindow: h.opts.Limits.Backfill,
	})
	h.svc = NewService(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), db, faultyBackend{h.backend, &h.failCommits}, h.opts)
	h.svc.now = func() time.Time { return h.now }
	require.NoError(h.t, h.svc.Recover(context.Background()))
}

func (h *harness) close() {
	if h.backend != nil {
		h.backend.Close()
		h.db.Close()
		h.backend = nil
	}
}

// scriptWrite is one request of a script: an organization and a body.
type scriptWrite struct {
	org  string
	body []byte
}

// write sends requests through the writer as one group, as the writer
// loop does with requests that wait together, and returns each one's
// outcome.
func (h *harness) write(ws ...scriptWrite) []reply {
	out := make([]reply, len(ws))
	var group []*request
	var at []int
	for i, w := range ws {
		evs, err := Decode(w.body, h.now, h.svc.opts.Limits)
		if err != nil {
			out[i] = reply{err: err}
			continue
		}
		group = append(group, &request{ctx: context.Background(), org: w.org, events: evs, reply: make(chan reply, 1)})
		at = append(at, i)
	}
	if len(group) > 0 {
		h.svc.process(group)
	}
	for j, req := range group {
		out[at[j]] = <-req.reply
	}
	return out
}

func (h *harness) eval(org string, ts time.Time, q string) []string {
	st, err := h.backend.Org(org)
	require.NoError(h.t, err)
	qry, err := h.engine.NewInstantQuery(context.Background(), st, nil, q, ts)
	require.NoError(h.t, err)
	defer qry.Close()
	res := qry.Exec(context.Background())
	require.NoError(h.t, res.Err, "query %s", q)
	var out []string
	switch v := res.Value.(type) {
	case promql.Vector:
		for _, s := range v {
			out = append(out, s.Metric.String()+" "+strconv.FormatFloat(s.F, 'g', -1, 64))
		}
	case promql.Scalar:
		out = append(out, "scalar "+strconv.FormatFloat(v.V, 'g', -1, 64))
	default:
		h.t.Fatalf("query %s: unexpected result type %s", q, res.Value.Type())
	}
	sort.Strings(out)
	return out
}

func (h *harness) log(org string, args string) []string {
	q := ListQuery{Org: org, End: math.MaxInt64, Limit: 1000}
	for _, kv := range strings.Fields(args) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "name":
			q.Name = v
		case "match":
			ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(v)
			require.NoError(h.t, err)
			q.Matchers = append(q.Matchers, ms...)
		case "limit":
			q.Limit, _ = strconv.Atoi(v)
		default:
			h.t.Fatalf("log: unknown argument %q", kv)
		}
	}
	res, err := h.svc.List(context.Background(), q)
	require.NoError(h.t, err)
	var out []string
	for _, e := range res.Events {
		dur := "-"
		if e.Duration != nil {
			dur = strconv.FormatFloat(*e.Duration, 'g', -1, 64) + "s"
		}
		pair := "-"
		if e.PairID != "" {
			pair = "paired"
		}
		out = append(out, fmt.Sprintf("%s %s %s %v open=%v duration=%s %s", e.Name, e.State, e.Timestamp, e.Labels, e.Open, dur, pair))
	}
	return out
}

func parseTime(t *testing.T, s string) time.Time {
	ts, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err, "time %q", s)
	return ts
}

// runScript executes one script; with -update it rewrites the expected
// blocks with the actual output.
func runScript(t *testing.T, path string) {
	f, err := os.Open(path)
	require.NoError(t, err)
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	f.Close()

	opts := Options{ActiveResolution: 15 * time.Second, MaxDuration: 24 * time.Hour, Limits: DefaultLimits}
	var h *harness
	start := func() {
		if h == nil {
			h = newHarness(t, opts)
		}
	}
	var out []string
	// grouped are the writes of a group ... end block, sent at its end.
	var grouped []pendingWrite
	expected := func(i int) (want []string, next int) {
		for next = i + 1; next < len(lines) && strings.HasPrefix(lines[next], "  "); next++ {
			want = append(want, strings.TrimPrefix(lines[next], "  "))
		}
		return want, next
	}
	check := func(lineNo int, cmd string, want, got []string) {
		if *update {
			return
		}
		if strings.Join(want, "\n") != strings.Join(got, "\n") {
			t.Errorf("%s:%d: %s\n--- want\n%s\n--- got\n%s", path, lineNo+1, cmd, strings.Join(want, "\n"), strings.Join(got, "\n"))
		}
	}
	for i := 0; i < len(lines); {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(line, "  ") {
			out = append(out, line)
			i++
			continue
		}
		cmd, rest, _ := strings.Cut(trimmed, " ")
		out = append(out, line)
		var got []string
		switch cmd {
		case "option":
			require.Nil(t, h, "%s:%d: options go before the first command", path, i+1)
			k, v, _ := strings.Cut(rest, "=")
			switch k {
			case "compat":
				opts.CompatMetricNames = strings.Split(v, ",")
			case "metric-name":
				opts.MetricName = v
			case "max-duration":
				d, err := time.ParseDuration(v)
				require.NoError(t, err)
				opts.MaxDuration = d
			default:
				t.Fatalf("%s:%d: unknown option %q", path, i+1, k)
			}
			i++
			continue
		case "now":
			start()
			h.now = parseTime(t, rest)
			i++
			continue
		case "tick":
			start()
			h.svc.tick()
			i++
			continue
		case "restart":
			start()
			h.failCommits = false
			h.close()
			h.open()
			i++
			continue
		case "fail-tsdb-commits":
			start()
			h.failCommits = rest != "off"
			i++
			continue
		case "group":
			start()
			require.Nil(t, grouped, "%s:%d: group inside a group", path, i+1)
			grouped = []pendingWrite{}
			i++
			continue
		case "end":
			require.NotNil(t, grouped, "%s:%d: end without group", path, i+1)
			ws := make([]scriptWrite, len(grouped))
			for j, g := range grouped {
				ws[j] = g.w
			}
			reps := h.write(ws...)
			// Each write's outcome goes under its own line.
			for j := len(grouped) - 1; j >= 0; j-- {
				g := grouped[j]
				got := writeOutcome(reps[j])
				check(g.lineNo, g.cmd, g.want, got)
				ins := make([]string, len(got))
				for k, line := range got {
					ins[k] = "  " + line
				}
				out = slices.Insert(out, g.outAt, ins...)
			}
			grouped = nil
			i++
			continue
		case "write":
			start()
			org := "default"
			if strings.HasPrefix(rest, "org=") {
				org, rest, _ = strings.Cut(strings.TrimPrefix(rest, "org="), " ")
			}
			w := scriptWrite{org: org, body: []byte(rest)}
			if grouped != nil {
				want, next := expected(i)
				grouped = append(grouped, pendingWrite{w: w, lineNo: i, cmd: trimmed, want: want, outAt: len(out)})
				i = next
				continue
			}
			got = writeOutcome(h.write(w)[0])
		case "eval":
			start()
			org := "default"
			if strings.HasPrefix(rest, "org=") {
				org, rest, _ = strings.Cut(strings.TrimPrefix(rest, "org="), " ")
			}
			ts, q, _ := strings.Cut(rest, " ")
			got = h.eval(org, parseTime(t, ts), q)
		case "unmarked":
			start()
			rows, err := h.svc.log.UncommittedEvents(context.Background(), state.UncommittedQuery{})
			require.NoError(t, err)
			got = nil
			for _, r := range rows {
				got = append(got, r.ID)
			}
		case "log":
			start()
			org := "default"
			if strings.HasPrefix(rest, "org=") {
				org, rest, _ = strings.Cut(strings.TrimPrefix(rest, "org="), " ")
			}
			got = h.log(org, rest)
		default:
			t.Fatalf("%s:%d: unknown command %q", path, i+1, cmd)
		}
		want, next := expected(i)
		check(i, trimmed, want, got)
		for _, g := range got {
			out = append(out, "  "+g)
		}
		i = next
	}
	require.Nil(t, grouped, "%s: group without end", path)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o644))
	}
}

// pendingWrite is a write of a group block, sent at the block's end.
type pendingWrite struct {
	w      scriptWrite
	lineNo int
	cmd    string
	want   []string
	// outAt is where its outcome goes in the rewritten script.
	outAt int
}

// writeOutcome is a write's expected-output lines: one per event, or the
// error.
func writeOutcome(rep reply) []string {
	if rep.err != nil {
		return []string{"error " + rep.err.Error()}
	}
	var got []string
	for _, r := range rep.results {
		s := "ok " + r.Timestamp
		if r.Duplicate {
			s = "duplicate " + r.Timestamp
		}
		got = append(got, s)
	}
	return got
}

// faultyBackend fails TSDB commits on demand.
type faultyBackend struct {
	storage.Backend
	fail *bool
}

func (b faultyBackend) Org(slug string) (storage.Org, error) {
	o, err := b.Backend.Org(slug)
	if err != nil {
		return nil, err
	}
	return faultyOrg{o, b.fail}, nil
}

type faultyOrg struct {
	storage.Org
	fail *bool
}

func (o faultyOrg) AppenderV2(ctx context.Context) promstorage.AppenderV2 {
	return faultyAppender{o.Org.AppenderV2(ctx), o.fail}
}

type faultyAppender struct {
	promstorage.AppenderV2
	fail *bool
}

func (a faultyAppender) Commit() error {
	if *a.fail {
		a.AppenderV2.Rollback()
		return errors.New("injected: the process died before the TSDB commit")
	}
	return a.AppenderV2.Commit()
}
