package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql"

	"github.com/tidemark/tidemark/judge"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// The canary judge's routes (docs/canary-judge.md):
//
//	POST {analysisPath}          an analysis request as JSON
//	GET  {analysisPath}?...      the same as query parameters (Argo Rollouts' web provider)
//	POST {analysisPath}/flagger  Flagger's webhook payload, the request in its metadata
//
// The first two answer 200 with the report whatever the verdict; the
// Flagger route answers 200 on pass and 412 otherwise, as a gate.
const analysisPath = "/api/v4/organizations/{org}/analysis"

type analysisAPI struct {
	h   *Handler
	svc *judge.Service
}

// registerAnalysis adds the canary judge's routes.
func (h *Handler) registerAnalysis() {
	a := &analysisAPI{
		h: h,
		svc: judge.NewService(h.logger.With("component", "judge"), judge.ServiceOptions{
			Query:  h.rangeQuery,
			Events: h.opts.Events,
			Now:    h.now,
		}),
	}
	read := func(next http.Handler) http.Handler {
		return h.auth.require(state.ScopeRead, plainError, h.gated(next))
	}
	h.handle("POST "+analysisPath, read(h.api(plainError, a.post)))
	h.handle("GET "+analysisPath, read(h.api(plainError, a.get)))
	h.handle("POST "+analysisPath+"/flagger", read(http.HandlerFunc(a.flagger)))
}

// rangeQuery is the judge's QueryFunc: a range query on the shared engine
// over the organization of ctx.
func (h *Handler) rangeQuery(ctx context.Context, q string, start, end time.Time, step time.Duration) ([]judge.Series, error) {
	qry, err := h.engine.NewRangeQuery(ctx, h.queryable, nil, q, start, end, step)
	if err != nil {
		return nil, err
	}
	// Close hands the result's points back to the engine: copy them first.
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	m, err := res.Matrix()
	if err != nil {
		return nil, err
	}
	out := make([]judge.Series, 0, len(m))
	for _, s := range m {
		vs := make([]float64, len(s.Floats))
		for i, p := range s.Floats {
			vs[i] = p.F
		}
		out = append(out, judge.Series{Labels: s.Metric.Copy(), Values: vs})
	}
	return out, nil
}

func (a *analysisAPI) post(r *http.Request) (any, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	plan, err := judge.ParseRequest(body)
	if err != nil {
		return nil, analysisError(err)
	}
	return a.analyze(r.Context(), plan)
}

func (a *analysisAPI) get(r *http.Request) (any, error) {
	plan, err := judge.ParseForm(r.URL.Query(), "parameter")
	if err != nil {
		return nil, analysisError(err)
	}
	return a.analyze(r.Context(), plan)
}

func (a *analysisAPI) analyze(ctx context.Context, plan *judge.Plan) (*judge.Report, error) {
	org, _ := storage.OrgFrom(ctx)
	rep, err := a.svc.Analyze(ctx, org, plan)
	if err != nil {
		return nil, analysisError(err)
	}
	return rep, nil
}

// flaggerPayload is the body of Flagger's webhooks (all types).
type flaggerPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata"`
}

// allowMarginalKey is the metadata key that lets a marginal verdict pass
// the Flagger gate.
const allowMarginalKey = "allow_marginal"

// flagger is the canary judge as a Flagger webhook (confirm-promotion,
// pre-rollout, rollout): the analysis request is in the metadata, as flat
// keys or as JSON under "request". Without a window, the window is the
// event that Tidemark's Flagger event webhook keeps for the canary: event
// <name> with labels canary=<name>, namespace=<namespace>. It answers 200
// with the report when the canary passes (or is marginal, with
// allow_marginal "true"), and 412 Precondition Failed with the report
// otherwise, which Flagger counts as a failed check.
func (a *analysisAPI) flagger(w http.ResponseWriter, r *http.Request) {
	rep, err := a.flaggerReport(r)
	if err != nil {
		code, msg := a.h.errorStatus(r, err)
		plainError(w, code, msg)
		return
	}
	code := http.StatusOK
	if rep.Verdict == judge.OutcomeFail || (rep.Verdict == judge.OutcomeMarginal && !rep.allowMarginal) {
		code = http.StatusPreconditionFailed
	}
	writeJSON(w, code, rep.Report)
}

type flaggerReport struct {
	*judge.Report
	allowMarginal bool
}

func (a *analysisAPI) flaggerReport(r *http.Request) (flaggerReport, error) {
	var fp flaggerPayload
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return flaggerReport{}, err
	}
	// Unknown fields are ignored: the payload is Flagger's to extend.
	if err := json.Unmarshal(body, &fp); err != nil {
		return flaggerReport{}, errorf(http.StatusBadRequest, "flagger webhook: the body is not Flagger's webhook payload: "+strings.TrimPrefix(err.Error(), "json: ")+
			"; accepted: {name, namespace, phase, metadata: {request: <analysis request as JSON>} or metadata with the flat keys of docs/canary-judge.md}")
	}
	form := url.Values{}
	allow := false
	for k, v := range fp.Metadata {
		if k == allowMarginalKey {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return flaggerReport{}, errorf(http.StatusBadRequest, "metadata key \""+allowMarginalKey+"\" value "+strconv.Quote(v)+": not a boolean; accepted: true or false")
			}
			allow = b
			continue
		}
		form.Set(k, v)
	}
	_, hasRequest := form["request"]
	if !hasRequest && form.Get("event_name") == "" && form.Get("start") == "" && form.Get("end") == "" && !hasPrefix(form, "match.") {
		if fp.Name == "" || fp.Namespace == "" {
			return flaggerReport{}, errorf(http.StatusBadRequest, `flagger webhook: fields "name" and "namespace" are required when metadata names no window; accepted: Flagger's webhook payload {name, namespace, phase, metadata}`)
		}
		form.Set("event_name", fp.Name)
		form.Set("match.canary", fp.Name)
		form.Set("match.namespace", fp.Namespace)
	}
	plan, err := judge.ParseForm(form, "metadata key")
	if err != nil {
		return flaggerReport{}, analysisError(err)
	}
	rep, err := a.analyze(r.Context(), plan)
	if err != nil {
		return flaggerReport{}, err
	}
	return flaggerReport{Report: rep, allowMarginal: allow}, nil
}

func hasPrefix(form url.Values, prefix string) bool {
	for k := range form {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// analysisError maps the judge's errors to HTTP statuses: the request
// (400), the window's event (422), the queries as Prometheus's API maps
// engine errors (503 for timeouts and cancellations, 500 for storage, 422
// for the rest).
func analysisError(err error) error {
	var re *judge.RequestError
	var we *judge.WindowError
	var qe *judge.QueryError
	switch {
	case errors.As(err, &re):
		return errorf(http.StatusBadRequest, err.Error())
	case errors.As(err, &we):
		return errorf(http.StatusUnprocessableEntity, err.Error())
	case errors.As(err, &qe):
		var eqc promql.ErrQueryCanceled
		var eqt promql.ErrQueryTimeout
		var es promql.ErrStorage
		switch {
		case errors.As(err, &eqc), errors.As(err, &eqt), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return errorf(http.StatusServiceUnavailable, err.Error())
		case errors.As(err, &es):
			return errorf(http.StatusInternalServerError, err.Error())
		}
		return errorf(http.StatusUnprocessableEntity, err.Error())
	}
	return err
}
