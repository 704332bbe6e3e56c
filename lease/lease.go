// Package lease gives each organization's once-per-organization work — the
// active series of its open change events, its rules and alerts — to one
// process at a time, through leases in the shared state database.
//
// Every process runs a Manager. Every Renew it tries to take or renew the
// lease of every organization; a lease not renewed expires after TTL, and
// another process takes it at its next try, so a dead holder's work moves
// within TTL+Renew. A holder stops an organization's work at once when
// another process holds its lease, and, when it cannot reach the database,
// before its lease can expire (TTL-Renew after its last renewal), so two
// processes never do the same work at once — given clocks that agree to
// well within Renew.
package lease

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Store keeps the leases; *state.DB implements it.
type Store interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Worker does organizations' work while their lease is held. Its methods
// are called from the Manager's goroutine, one at a time.
type Worker interface {
	// StartOrg starts the work of org: its lease was taken.
	StartOrg(org string)
	// StopOrg stops the work of org before returning: its lease was lost,
	// or is being given up.
	StopOrg(org string)
}

// Options configures a Manager.
type Options struct {
	// Holder names this process in the leases; unique among the processes
	// sharing the database.
	Holder string
	// TTL is how long a lease lasts without renewal; Renew how often
	// leases are renewed (and free ones taken). Renew must be well under
	// TTL.
	TTL, Renew time.Duration
	// Orgs lists the organizations whose leases to hold.
	Orgs func(ctx context.Context) ([]string, error)
	// Workers do the work of each organization held.
	Workers []Worker
}

// DefaultTTL and DefaultRenew move a dead holder's work within 20 seconds.
const (
	DefaultTTL   = 15 * time.Second
	DefaultRenew = 5 * time.Second
)

// Manager holds leases for this process.
type Manager struct {
	logger *slog.Logger
	store  Store
	opts   Options
	now    func() time.Time

	mtx  sync.RWMutex
	held map[string]time.Time // org -> last renewal

	heldGauge   prometheus.Gauge
	transitions *prometheus.CounterVec
}

// New returns a Manager; Run holds the leases.
func New(logger *slog.Logger, reg prometheus.Registerer, store Store, opts Options) *Manager {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Renew <= 0 {
		opts.Renew = DefaultRenew
	}
	f := promauto.With(reg)
	return &Manager{
		logger: logger,
		store:  store,
		opts:   opts,
		now:    time.Now,
		held:   map[string]time.Time{},
		heldGauge: f.NewGauge(prometheus.GaugeOpts{
			Name: "tidemark_leases_held",
			Help: "Organizations whose once-per-organization work this process does.",
		}),
		transitions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "tidemark_lease_changes_total",
			Help: "Organization leases taken and lost by this process.",
		}, []string{"change"}),
	}
}

// AddWorker adds a worker; call it before Renew or Run.
func (m *Manager) AddWorker(w Worker) { m.opts.Workers = append(m.opts.Workers, w) }

// leaseName is the lease of an organization.
func leaseName(org string) string { return "org:" + org }

// Owned implements events.Owner: the organizations held now.
func (m *Manager) Owned() ([]string, bool) {
	m.mtx.RLock()
	defer m.mtx.RUnlock()
	out := make([]string, 0, len(m.held))
	for org := range m.held {
		out = append(out, org)
	}
	slices.Sort(out)
	return out, false
}

// Holds reports whether this process holds org's lease.
func (m *Manager) Holds(org string) bool {
	m.mtx.RLock()
	defer m.mtx.RUnlock()
	_, ok := m.held[org]
	return ok
}

// Run takes and renews leases until ctx is done, then stops the work of
// every organization held and gives up their leases, so that another
// process takes them at once.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.Renew)
	defer t.Stop()
	for {
		m.Renew(ctx)
		select {
		case <-ctx.Done():
			m.releaseAll()
			return
		case <-t.C:
		}
	}
}

// Renew takes or renews every organization's lease once. Run calls it
// every Renew; the server calls it once before it is ready, so that a
// single process owns its organizations from the start.
func (m *Manager) Renew(ctx context.Context) {
	orgs, err := m.opts.Orgs(ctx)
	if err != nil {
		m.logger.Error("list organizations for their leases", "err", err)
		orgs = nil
	}
	want := map[string]bool{}
	for _, org := range orgs {
		want[org] = true
		now := m.now()
		ok, err := m.store.AcquireLease(ctx, leaseName(org), m.opts.Holder, m.opts.TTL)
		switch {
		case err != nil:
			m.logger.Warn("renew lease", "org", org, "err", err)
		case ok:
			m.gain(org, now)
		default:
			m.lose(org, "another process holds it")
		}
	}
	// Unreachable database: stop before the lease can expire elsewhere.
	deadline := m.opts.TTL - m.opts.Renew
	for _, org := range m.heldOrgs() {
		if !want[org] && err == nil {
			m.lose(org, "the organization is gone")
			continue
		}
		if last := m.lastRenewal(org); m.now().Sub(last) > deadline {
			m.lose(org, "it could not be renewed in time")
		}
	}
}

func (m *Manager) gain(org string, at time.Time) {
	m.mtx.Lock()
	_, had := m.held[org]
	m.held[org] = at
	n := len(m.held)
	m.mtx.Unlock()
	if had {
		return
	}
	m.heldGauge.Set(float64(n))
	m.transitions.WithLabelValues("taken").Inc()
	m.logger.Info("took the organization's lease", "org", org, "holder", m.opts.Holder)
	for _, w := range m.opts.Workers {
		w.StartOrg(org)
	}
}

func (m *Manager) lose(org, why string) {
	m.mtx.Lock()
	_, had := m.held[org]
	delete(m.held, org)
	n := len(m.held)
	m.mtx.Unlock()
	if !had {
		return
	}
	m.heldGauge.Set(float64(n))
	m.transitions.WithLabelValues("lost").Inc()
	m.logger.Warn("lost the organization's lease; its work stops here", "org", org, "reason", why)
	for _, w := range m.opts.Workers {
		w.StopOrg(org)
	}
}

func (m *Manager) heldOrgs() []string {
	orgs, _ := m.Owned()
	return orgs
}

func (m *Manager) lastRenewal(org string) time.Time {
	m.mtx.RLock()
	defer m.mtx.RUnlock()
	return m.held[org]
}

// releaseAll stops every organization's work, then gives up its lease.
func (m *Manager) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, org := range m.heldOrgs() {
		m.lose(org, "the process is stopping")
		if err := m.store.ReleaseLease(ctx, leaseName(org), m.opts.Holder); err != nil {
			m.logger.Warn("release lease", "org", org, "err", err)
		}
	}
}
