package web

import (
	"net/http"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql/parser"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/httputil"
	"google.golang.org/protobuf/proto"

	"github.com/tidemark/tidemark/state"
)

// registerFederate serves /federate under every base URL (read scope).
func (h *Handler) registerFederate() {
	fed := httputil.CompressionHandler{Handler: http.HandlerFunc(h.federate)}
	h.handle("GET "+orgBase+"/federate", h.auth.require(state.ScopeRead, promError, h.readyGate(fed.ServeHTTP)))
	h.handle("GET /federate", h.auth.require(state.ScopeRead, promError, h.readyGate(fed.ServeHTTP)))
}

// federate answers as Prometheus's /federate does: for every series the
// match[] selectors select, its newest sample within the lookback delta,
// with its timestamp, in the exposition format the client accepts (text,
// protobuf), families sorted by name and untyped, with instance="" where a
// series has no instance label, so that a federating Prometheus keeps the
// series' labels. Prometheus's handler is a method of its whole web UI and
// cannot be served alone; this one follows it for float samples. Native
// histograms are left out, as Prometheus leaves them out of its text
// formats. It reads through the same storage as queries, so it serves a
// remote engine's samples too.
func (h *Handler) federate(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "error parsing form values: "+err.Error(), http.StatusBadRequest)
		return
	}
	p := parser.NewParser(parser.Options{})
	matcherSets, err := p.ParseMetricSelectors(r.Form["match[]"])
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := h.now()
	maxt := now.UnixMilli()
	mint := now.Add(-h.opts.LookbackDelta).UnixMilli()
	format := expfmt.NegotiateAccept(r.Header, expfmt.NewFormat(expfmt.TypeProtoDelim), expfmt.NewFormat(expfmt.TypeProtoText), expfmt.NewFormat(expfmt.TypeProtoCompact), expfmt.NewFormat(expfmt.TypeTextPlain))

	q, err := h.queryable.Querier(mint, maxt)
	if err != nil {
		h.logger.Error("federate", "err", err)
		http.Error(w, internalMessage, http.StatusInternalServerError)
		return
	}
	defer q.Close()
	hints := &promstorage.SelectHints{Start: mint, End: maxt}
	sets := make([]promstorage.SeriesSet, 0, len(matcherSets))
	for _, ms := range matcherSets {
		sets = append(sets, q.Select(r.Context(), true, hints, ms...))
	}
	set := promstorage.NewMergeSeriesSet(sets, 0, promstorage.ChainedSeriesMerge)

	type sample struct {
		ls labels.Labels
		t  int64
		f  float64
	}
	var out []sample
	var it chunkenc.Iterator
	for set.Next() {
		s := set.At()
		it = s.Iterator(it)
		found := false
		var last sample
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				found = false // A histogram is newer than any float before it.
				continue
			}
			t, f := it.At()
			if t > maxt {
				break
			}
			if t >= mint {
				last, found = sample{t: t, f: f}, true
			}
		}
		if it.Err() != nil {
			h.federateError(w, it.Err())
			return
		}
		// The exposition formats have no stale markers: a series marked
		// stale is left out.
		if !found || value.IsStaleNaN(last.f) {
			continue
		}
		last.ls = s.Labels()
		out = append(out, last)
	}
	if err := set.Err(); err != nil {
		h.federateError(w, err)
		return
	}
	slices.SortStableFunc(out, func(a, b sample) int {
		return strings.Compare(a.ls.Get(model.MetricNameLabel), b.ls.Get(model.MetricNameLabel))
	})

	w.Header().Set("Content-Type", string(format))
	enc := expfmt.NewEncoder(w, format)
	var fam *dto.MetricFamily
	flush := func() bool {
		if fam == nil {
			return true
		}
		if err := enc.Encode(fam); err != nil {
			h.logger.Warn("federate: write the answer", "err", err)
			return false
		}
		return true
	}
	for _, s := range out {
		name := s.ls.Get(model.MetricNameLabel)
		if name == "" {
			continue
		}
		if fam == nil || fam.GetName() != name {
			if !flush() {
				return
			}
			fam = &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_UNTYPED.Enum()}
		}
		m := &dto.Metric{TimestampMs: proto.Int64(s.t), Untyped: &dto.Untyped{Value: proto.Float64(s.f)}}
		hasInstance := false
		s.ls.Range(func(l labels.Label) {
			if l.Name == model.MetricNameLabel || l.Value == "" {
				return
			}
			hasInstance = hasInstance || l.Name == model.InstanceLabel
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
		})
		if !hasInstance {
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(model.InstanceLabel), Value: proto.String("")})
		}
		fam.Metric = append(fam.Metric, m)
	}
	flush()
}

func (h *Handler) federateError(w http.ResponseWriter, err error) {
	h.logger.Error("federate", "err", err)
	http.Error(w, internalMessage, http.StatusInternalServerError)
}
