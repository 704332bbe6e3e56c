package query

import (
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// concat joins the results of consecutive, disjoint sub-ranges, given in
// time order, into one matrix sorted by labels, as a range query answers.
// Points are copied: the result shares no memory with parts.
func concat(parts []promql.Matrix) promql.Matrix {
	type acc struct {
		metric       labels.Labels
		nF, nH       int
		floats       []promql.FPoint
		hists        []promql.HPoint
		dropName     bool
		nextSameHash int // index+1 of another series with the same hash
	}
	var out []acc
	byHash := map[uint64]int{} // hash -> index+1 of the first series
	find := func(ls labels.Labels) int {
		h := ls.Hash()
		i := byHash[h]
		for i != 0 {
			if labels.Equal(out[i-1].metric, ls) {
				return i - 1
			}
			if out[i-1].nextSameHash == 0 {
				out = append(out, acc{metric: ls})
				out[i-1].nextSameHash = len(out)
				return len(out) - 1
			}
			i = out[i-1].nextSameHash
		}
		out = append(out, acc{metric: ls})
		byHash[h] = len(out)
		return len(out) - 1
	}
	idx := make([][]int, len(parts))
	for p, m := range parts {
		idx[p] = make([]int, len(m))
		for j, s := range m {
			i := find(s.Metric)
			idx[p][j] = i
			out[i].nF += len(s.Floats)
			out[i].nH += len(s.Histograms)
			out[i].dropName = out[i].dropName || s.DropName
		}
	}
	for i := range out {
		if out[i].nF > 0 {
			out[i].floats = make([]promql.FPoint, 0, out[i].nF)
		}
		if out[i].nH > 0 {
			out[i].hists = make([]promql.HPoint, 0, out[i].nH)
		}
	}
	for p, m := range parts {
		for j, s := range m {
			a := &out[idx[p][j]]
			a.floats = append(a.floats, s.Floats...)
			for _, h := range s.Histograms {
				a.hists = append(a.hists, promql.HPoint{T: h.T, H: h.H.Copy()})
			}
		}
	}
	res := make(promql.Matrix, 0, len(out))
	for _, a := range out {
		if a.nF+a.nH == 0 {
			continue
		}
		res = append(res, promql.Series{Metric: a.metric, Floats: a.floats, Histograms: a.hists, DropName: a.dropName})
	}
	sort.Sort(res)
	return res
}
