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

// Whole reports whether an extent answered the query whole.
func (a *Answer) Whole() bool { return a.e != nil }

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

// response is an encoded answer kept beside its extent: body, and the
// same compressed as clients asked for it, by content encoding.
type response struct {
	want    span
	body    []byte
	encoded map[string][]byte
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
	r := &response{want: a.want, body: body}
	n := r.bytes(rk)
	if old, ok := e.responses[rk]; ok {
		n -= old.bytes(rk)
	}
	if e.bytes+n > c.maxBytes/2 {
		return
	}
	if e.responses == nil {
		e.responses = map[string]*response{}
	}
	e.responses[rk] = r
	if oc.responses == nil {
		oc.responses = map[string]*extent{}
	}
	oc.responses[rk] = e
	e.bytes += n
	c.bytes += n
	c.lru.MoveToFront(e.elem)
	c.evict()
}

// KeepEncoded keeps enc, the answer body compressed in the content
// encoding encoding, beside the kept answer to the request rk of org if
// that answer is still body (the slice Response returned or KeepResponse
// was given). The cache owns enc from then on.
func (c *ResultsCache) KeepEncoded(org, rk, encoding string, body, enc []byte) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	e, r := c.response(org, rk)
	if r == nil || len(r.body) == 0 || len(body) == 0 || &r.body[0] != &body[0] {
		return
	}
	before := r.bytes(rk)
	old, had := r.encoded[encoding]
	if r.encoded == nil {
		r.encoded = map[string][]byte{}
	}
	r.encoded[encoding] = enc
	n := r.bytes(rk) - before
	if e.bytes+n > c.maxBytes/2 {
		if had {
			r.encoded[encoding] = old
		} else {
			delete(r.encoded, encoding)
		}
		return
	}
	e.bytes += n
	c.bytes += n
	c.evict()
}

// Response returns the encoded answer kept for the request rk of org, if
// its extent still holds every step of it, and the same in the content
// encoding encoding if that is kept too (nil if not, or if encoding is
// empty). The bodies are the cache's: the caller must not change them.
func (c *ResultsCache) Response(org, rk, encoding string) (body, enc []byte, ok bool) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	e, r := c.response(org, rk)
	if r == nil {
		return nil, nil, false
	}
	c.lru.MoveToFront(e.elem)
	c.requests.WithLabelValues("response").Inc()
	if encoding != "" {
		enc = r.encoded[encoding]
	}
	return r.body, enc, true
}

// response is the kept answer to rk of org and its extent, if the extent
// still holds every step of it.
func (c *ResultsCache) response(org, rk string) (*extent, *response) {
	oc := c.orgs[org]
	if oc == nil {
		return nil, nil
	}
	e := oc.responses[rk]
	if e == nil {
		return nil, nil
	}
	r, ok := e.responses[rk]
	if !ok || !c.holds(oc, e, r.want) {
		return nil, nil
	}
	return e, r
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

// bytes estimates the memory r holds as the answer to rk.
func (r *response) bytes(rk string) int64 {
	n := int64(len(rk)+len(r.body)) + 64
	for k, b := range r.encoded {
		n += int64(len(k)+len(b)) + 32
	}
	return n
}
