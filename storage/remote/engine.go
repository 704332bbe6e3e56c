package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/stats"
)

// QueryEngine runs PromQL in the engine: a promql.QueryEngine whose queries
// are the engine's /api/v1/query and /api/v1/query_range for the
// organization of the query's context, through client_golang's API client.
// The Queryable it is handed is not used. Results are floats; native
// histogram results are refused with an error.
func (b *Backend) QueryEngine() promql.QueryEngine {
	b.engineOnce.Do(func() {
		c, err := api.NewClient(api.Config{Address: b.queryURL.String(), RoundTripper: tenantTransport{b}})
		if err != nil {
			// The URL was checked by New.
			panic(err)
		}
		b.engine = &queryEngine{b: b, api: v1.NewAPI(c), parser: parser.NewParser(parser.Options{})}
	})
	return b.engine
}

// tenantTransport adds the tenant of the request context's organization.
type tenantTransport struct{ b *Backend }

func (t tenantTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tenant, err := t.b.tenantOf(r.Context())
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Header.Set(t.b.opts.TenantHeader, tenant)
	return t.b.http.Transport.RoundTrip(r)
}

type queryEngine struct {
	b      *Backend
	api    v1.API
	parser parser.Parser
}

var _ promql.QueryEngine = (*queryEngine)(nil)

func (e *queryEngine) NewInstantQuery(_ context.Context, _ promstorage.Queryable, _ promql.QueryOpts, qs string, ts time.Time) (promql.Query, error) {
	return e.newQuery(qs, ts, ts, 0)
}

func (e *queryEngine) NewRangeQuery(_ context.Context, _ promstorage.Queryable, _ promql.QueryOpts, qs string, start, end time.Time, step time.Duration) (promql.Query, error) {
	if step <= 0 {
		return nil, errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	return e.newQuery(qs, start, end, step)
}

func (e *queryEngine) newQuery(qs string, start, end time.Time, step time.Duration) (promql.Query, error) {
	expr, err := e.parser.ParseExpr(qs)
	if err != nil {
		return nil, err
	}
	return &query{e: e, qs: qs, expr: expr, start: start, end: end, step: step}, nil
}

// query is one query of the engine's API.
type query struct {
	e          *queryEngine
	qs         string
	expr       parser.Expr
	start, end time.Time
	step       time.Duration

	mtx    sync.Mutex
	cancel context.CancelFunc
}

// Exec implements promql.Query.
func (q *query) Exec(ctx context.Context) *promql.Result {
	ctx, cancel := context.WithTimeout(ctx, q.e.b.opts.Timeout)
	defer cancel()
	q.mtx.Lock()
	q.cancel = cancel
	q.mtx.Unlock()
	start := time.Now()
	var (
		v        model.Value
		warnings v1.Warnings
		err      error
	)
	if q.step == 0 {
		v, warnings, _, err = q.e.api.Query(ctx, q.qs, q.start)
	} else {
		v, warnings, _, err = q.e.api.QueryRange(ctx, q.qs, v1.Range{Start: q.start, End: q.end, Step: q.step})
	}
	code := 200
	if err != nil {
		code = 0
	}
	q.e.b.observe("query", code, start)
	if err != nil {
		var apiErr *v1.Error
		if errors.As(err, &apiErr) && apiErr.Type == v1.ErrBadData {
			return &promql.Result{Err: fmt.Errorf("the metrics engine refused the query: %s", apiErr.Msg)}
		}
		return &promql.Result{Err: promql.ErrStorage{Err: fmt.Errorf("query the metrics engine: %w", err)}}
	}
	res := &promql.Result{}
	for _, w := range warnings {
		res.Warnings = res.Warnings.Add(errors.New(w))
	}
	res.Value, res.Err = fromModel(v)
	return res
}

// fromModel converts an API answer into PromQL's values.
func fromModel(v model.Value) (parser.Value, error) {
	switch v := v.(type) {
	case model.Vector:
		out := make(promql.Vector, 0, len(v))
		for _, s := range v {
			if s.Histogram != nil {
				return nil, errors.New("native histogram results are not read from the metrics engine; query a float (e.g. histogram_quantile) instead")
			}
			out = append(out, promql.Sample{Metric: labelsOf(s.Metric), T: int64(s.Timestamp), F: float64(s.Value)})
		}
		return out, nil
	case model.Matrix:
		out := make(promql.Matrix, 0, len(v))
		for _, ss := range v {
			if len(ss.Histograms) > 0 {
				return nil, errors.New("native histogram results are not read from the metrics engine; query a float (e.g. histogram_quantile) instead")
			}
			ps := make([]promql.FPoint, len(ss.Values))
			for i, p := range ss.Values {
				ps[i] = promql.FPoint{T: int64(p.Timestamp), F: float64(p.Value)}
			}
			out = append(out, promql.Series{Metric: labelsOf(ss.Metric), Floats: ps})
		}
		return out, nil
	case *model.Scalar:
		return promql.Scalar{T: int64(v.Timestamp), V: float64(v.Value)}, nil
	case *model.String:
		return promql.String{T: int64(v.Timestamp), V: v.Value}, nil
	}
	return nil, fmt.Errorf("unexpected result type %T from the metrics engine", v)
}

func labelsOf(m model.Metric) labels.Labels {
	b := labels.NewScratchBuilder(len(m))
	for k, v := range m {
		b.Add(string(k), string(v))
	}
	b.Sort()
	return b.Labels()
}

func (q *query) Close() {}
func (q *query) Statement() parser.Statement {
	return &parser.EvalStmt{Expr: q.expr, Start: q.start, End: q.end, Interval: q.step}
}
func (q *query) String() string { return q.qs }
func (q *query) Stats() *stats.Statistics {
	return &stats.Statistics{Timers: stats.NewQueryTimers(), Samples: stats.NewQuerySamples(false)}
}

func (q *query) Cancel() {
	q.mtx.Lock()
	defer q.mtx.Unlock()
	if q.cancel != nil {
		q.cancel()
	}
}
