package query

import (
	"sync"
	"time"
)

// grid is the steps of a range query, in milliseconds: start, start+step,
// ... up to end, the last step at or before the query's end.
type grid struct {
	start, end, step int64
}

func newGrid(start, end time.Time, step time.Duration) grid {
	s, e, d := start.UnixMilli(), end.UnixMilli(), step.Milliseconds()
	if d <= 0 {
		d = 1
	}
	return grid{start: s, end: s + (e-s)/d*d, step: d}
}

// span is a range of steps of a grid, first and last inclusive.
type span struct{ from, to int64 }

func (g grid) steps(s span) int64 { return (s.to-s.from)/g.step + 1 }

// ceil is the first step of g at or after t.
func (g grid) ceil(t int64) int64 {
	if t <= g.start {
		return g.start
	}
	return g.start + (t-g.start+g.step-1)/g.step*g.step
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// split cuts s into at most parts sub-spans of at least minSteps (and at
// least 2) steps each, on the grid, at boundaries as near to even as the
// multiples of align allow: the TSDB cuts blocks and chunks there, so each
// sub-query reads its own chunks, and only those of the previous sub-range
// that its range functions look back into. A span that holds no multiple
// of align is not cut.
func (g grid) split(s span, parts, minSteps int, align int64) []span {
	n := g.steps(s)
	minSteps = max(minSteps, 2)
	if k := n / int64(minSteps); k < int64(parts) {
		parts = int(k)
	}
	if parts <= 1 {
		return []span{s}
	}
	length := (s.to - s.from + g.step) / int64(parts)
	out := make([]span, 0, parts)
	from := s.from
	for i := 1; i < parts; i++ {
		b := s.from + int64(i)*length
		b = floorDiv(b+align/2, align) * align
		b = g.ceil(b)
		if b <= from || b > s.to || g.steps(span{from, b - g.step}) < int64(minSteps) || g.steps(span{b, s.to}) < int64(minSteps) {
			continue
		}
		out = append(out, span{from, b - g.step})
		from = b
	}
	return append(out, span{from, s.to})
}

// parallel runs every task with at most n at a time and returns when all
// have returned.
func parallel(n int, tasks []func()) {
	if n <= 1 || len(tasks) == 1 {
		for _, t := range tasks {
			t()
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan func())
	for range min(n, len(tasks)) {
		wg.Go(func() {
			for t := range next {
				t()
			}
		})
	}
	for _, t := range tasks {
		next <- t
	}
	close(next)
	wg.Wait()
}
