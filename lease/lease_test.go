package lease

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/internal/testservices"
	"github.com/tidemark/tidemark/state"
)

// recorder is a Worker that records its calls.
type recorder struct {
	mtx     sync.Mutex
	running map[string]bool
	calls   []string
}

func (r *recorder) StartOrg(org string) { r.record("start " + org) }
func (r *recorder) StopOrg(org string)  { r.record("stop " + org) }

func (r *recorder) record(c string) {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	if r.running == nil {
		r.running = map[string]bool{}
	}
	r.calls = append(r.calls, c)
	org := c[len("start "):]
	if c[:4] == "stop" {
		org = c[len("stop "):]
	}
	r.running[org] = c[:5] == "start"
}

func (r *recorder) runs() []string {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	var out []string
	for org, on := range r.running {
		if on {
			out = append(out, org)
		}
	}
	slices.Sort(out)
	return out
}

// failing is a Store whose database cannot be reached.
type failing struct{}

func (failing) AcquireLease(context.Context, string, string, time.Duration) (bool, error) {
	return false, errors.New("dial tcp 127.0.0.1:5432: connection refused")
}
func (failing) ReleaseLease(context.Context, string, string) error { return nil }

func TestLeases(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *state.DB
	}{
		{"sqlite", func(t *testing.T) *state.DB {
			db, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
			require.NoError(t, err)
			return db
		}},
		{"postgres", func(t *testing.T) *state.DB {
			db, err := state.OpenPostgres(context.Background(), testservices.Postgres(t))
			require.NoError(t, err)
			return db
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := tc.open(t)
			defer db.Close()
			for _, org := range []string{"acme", "globex"} {
				require.NoError(t, db.CreateOrg(ctx, org))
			}
			const ttl, renew = 600 * time.Millisecond, 200 * time.Millisecond
			newManager := func(holder string, store Store) (*Manager, *recorder) {
				w := &recorder{}
				return New(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), store, Options{
					Holder: holder, TTL: ttl, Renew: renew, Orgs: db.Orgs, Workers: []Worker{w},
				}), w
			}
			m1, w1 := newManager("r1", db)
			m2, w2 := newManager("r2", db)

			m1.Renew(ctx)
			m2.Renew(ctx)
			require.Equal(t, []string{"acme", "globex"}, w1.runs())
			require.Empty(t, w2.runs(), "r1 holds every organization")
			owned, all := m1.Owned()
			require.False(t, all)
			require.Equal(t, []string{"acme", "globex"}, owned)
			require.True(t, m1.Holds("acme"))
			require.False(t, m2.Holds("acme"))

			// r1 stops renewing (it died): r2 takes over once the leases expire.
			start := time.Now()
			for len(w2.runs()) < 2 {
				require.Less(t, time.Since(start), 5*ttl, "r2 never took over")
				time.Sleep(renew)
				m2.Renew(ctx)
			}
			require.GreaterOrEqual(t, time.Since(start), ttl-renew, "not before the leases expired")
			// r1 comes back: it finds another holder and stops at once.
			m1.Renew(ctx)
			require.Empty(t, w1.runs())
			require.Equal(t, []string{"start acme", "start globex", "stop acme", "stop globex"}, w1.calls)

			// r2 stops: it gives the leases up, and r1 takes them at once.
			m2.releaseAll()
			require.Empty(t, w2.runs())
			m1.Renew(ctx)
			require.Equal(t, []string{"acme", "globex"}, w1.runs())
		})
	}
}

// TestLeaseUnreachable: a holder that cannot reach the database stops its
// work before its leases can expire and be taken elsewhere.
func TestLeaseUnreachable(t *testing.T) {
	ctx := context.Background()
	store := &switchable{}
	db, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.CreateOrg(ctx, "acme"))
	store.ok = db
	w := &recorder{}
	const ttl, renew = 600 * time.Millisecond, 200 * time.Millisecond
	m := New(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), store, Options{Holder: "r1", TTL: ttl, Renew: renew, Orgs: db.Orgs, Workers: []Worker{w}})
	m.Renew(ctx)
	require.Equal(t, []string{"acme"}, w.runs())
	store.down = true
	lost := time.Now()
	m.Renew(ctx)
	require.Equal(t, []string{"acme"}, w.runs(), "one failed renewal is not the end")
	for len(w.runs()) > 0 {
		time.Sleep(renew / 4)
		m.Renew(ctx)
		require.Less(t, time.Since(lost), ttl, "still working when the lease may have expired")
	}
	require.GreaterOrEqual(t, time.Since(lost), ttl-2*renew)
}

// switchable is the database, or an unreachable one.
type switchable struct {
	ok   Store
	down bool
}

func (s *switchable) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if s.down {
		return failing{}.AcquireLease(ctx, name, holder, ttl)
	}
	return s.ok.AcquireLease(ctx, name, holder, ttl)
}

func (s *switchable) ReleaseLease(ctx context.Context, name, holder string) error {
	return s.ok.ReleaseLease(ctx, name, holder)
}
