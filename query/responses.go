package query

import "context"

// A refresh of an unchanged dashboard asks the same range queries again:
// Grafana aligns a range to its step, so every refresh within one step, and
// every viewer, sends the same request. Evaluating such a request is cheap
// once its extent is cached; encoding the answer is not (most of a cached
// 24h answer's time is Prometheus's JSON of its points). So the cache also
// keeps, beside an extent, the encoded answers of the requests it answered
// whole, and gives them back while the extent still holds every step such
// an answer covers: an append that cuts the extent below a request's last
// step drops that answer with the steps.

// Answer is where a range query records the extent that answered it whole
// (see WithAnswer), so that the encoded answer can be kept beside it.
type Answer struct {
	org, key string
	want     span
	e        *extent
}

type answerKey struct{}

// WithAnswer returns a context in which a range query on an Engine with a
// results cache records, in the returned Answer, the extent that holds its
// whole answer, if one does once it is done.
func WithAnswer(ctx context.Context) (context.Context, *Answer) {
	a := &Answer{}
	return context.WithValue(ctx, answerKey{}, a), a
}

func recordAnswer(ctx context.Context, org, key string, want span, e *extent) {
	if a, ok := ctx.Value(answerKey{}).(*Answer); ok && e != nil {
		*a = Answer{org: org, key: key, want: want, e: e}
	}
}

// response is an encoded answer kept beside its extent.
type response struct {
	want span
	body []byte
}

// holds reports whether e is still its organization's extent for its key
// and holds every step of want.
func (c *ResultsCache) holds(oc *orgCache, e *extent, want span) bool {
	return oc != nil && oc.entries[e.key] == e && e.from <= want.from && want.to <= e.to
}

// KeepResponse keeps body, the encoded answer to the request rk (a key of
// the caller's that tells requests with the same answer apart), beside the
// extent a recorded, if that extent still holds the whole answer. The
// cache owns body from then on.
func (c *ResultsCache) KeepResponse(a *Answer, rk string, body []byte) {
	if a == nil || a.e == nil {
		return
	}
	c.mtx.Lock()
	defer c.mtx.Unlock()
	oc := c.orgs[a.org]
	if !c.holds(oc, a.e, a.want) {
		return
	}
	e := a.e
	n := responseBytes(rk, body)
	if old, ok := e.responses[rk]; ok {
		n -= responseBytes(rk, old.body)
	}
	if e.bytes+n > c.maxBytes/2 {
		return
	}
	if e.responses == nil {
		e.responses = map[string]response{}
	}
	e.responses[rk] = response{want: a.want, body: body}
	if oc.responses == nil {
		oc.responses = map[string]*extent{}
	}
	oc.responses[rk] = e
	e.bytes += n
	c.bytes += n
	c.lru.MoveToFront(e.elem)
	c.evict()
}

// Response returns the encoded answer kept for the request rk of org, if
// its extent still holds every step of it. The body is the cache's: the
// caller must not change it.
func (c *ResultsCache) Response(org, rk string) ([]byte, bool) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	oc := c.orgs[org]
	if oc == nil {
		return nil, false
	}
	e := oc.responses[rk]
	if e == nil {
		return nil, false
	}
	r, ok := e.responses[rk]
	if !ok || !c.holds(oc, e, r.want) {
		return nil, false
	}
	c.lru.MoveToFront(e.elem)
	c.requests.WithLabelValues("response").Inc()
	return r.body, true
}

// dropResponses forgets the answers of e that cover steps after to.
func (c *ResultsCache) dropResponses(oc *orgCache, e *extent, to int64) {
	for rk, r := range e.responses {
		if r.want.to <= to {
			continue
		}
		delete(e.responses, rk)
		if oc.responses[rk] == e {
			delete(oc.responses, rk)
		}
	}
}

func responseBytes(rk string, body []byte) int64 { return int64(len(rk)+len(body)) + 64 }
