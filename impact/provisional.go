package impact

import (
	"context"
	"sync"
	"time"

	"github.com/tidemark/tidemark/events"
)

// A start whose after window has not passed is scored provisionally when an
// alert asks about it: over what has passed. The score is cached for
// provisionalTTL, since every alert of a service asks about the same
// events, and it is never stored.

const (
	provisionalTTL = 15 * time.Second
	// provisionalMax entries are cached; a full cache starts over.
	provisionalMax = 10000
)

type provisionalKey struct {
	org string
	seq int64
}

type provisionalEntry struct {
	imp     *events.Impact
	expires time.Time
}

type provisionalCache struct {
	mtx     sync.Mutex
	entries map[provisionalKey]provisionalEntry
}

func (c *provisionalCache) get(k provisionalKey, now time.Time) (*events.Impact, bool) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	e, ok := c.entries[k]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.imp, true
}

func (c *provisionalCache) put(k provisionalKey, imp *events.Impact, now time.Time) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	if len(c.entries) >= provisionalMax {
		clear(c.entries)
	}
	c.entries[k] = provisionalEntry{imp: imp, expires: now.Add(provisionalTTL)}
}

// provisionalImpact scores the start seq of org over what has passed of
// its after window; nil when it is not scored or the engine did not
// answer.
func (s *Service) provisionalImpact(ctx context.Context, org string, seq int64, now time.Time) *events.Impact {
	k := provisionalKey{org: org, seq: seq}
	if imp, ok := s.provisional.get(k, now); ok {
		return imp
	}
	row, err := s.opts.Store.EventBySeq(ctx, seq)
	if err != nil || row.Org != org {
		return nil
	}
	set := s.opts.Settings(org)
	c, ok := s.change(row, set)
	if !ok {
		s.provisional.put(k, nil, now)
		return nil
	}
	imp, err := s.opts.Scorer.Score(ctx, org, set, c, now)
	if err != nil {
		s.logger.Warn("score a change event for an alert", "org", org, "id", c.ID, "err", err)
		return nil
	}
	s.provisional.put(k, imp, now)
	return imp
}
