package events

import (
	"context"
	"log/slog"
	"math"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// conflictingLog is an event log whose next inserts fail as PostgreSQL's
// do when it ends a transaction to break a deadlock between two writers.
type conflictingLog struct {
	state.EventLog
	fail *atomic.Int32
}

func (l conflictingLog) BeginEvents(ctx context.Context) (state.EventTx, error) {
	tx, err := l.EventLog.BeginEvents(ctx)
	return conflictingTx{tx, l.fail}, err
}

type conflictingTx struct {
	state.EventTx
	fail *atomic.Int32
}

func (tx conflictingTx) Insert(rows []*state.EventRow) error {
	if tx.fail.Add(-1) >= 0 {
		return &pgconn.PgError{Severity: "ERROR", Code: "40P01", Message: "deadlock detected"}
	}
	return tx.EventTx.Insert(rows)
}

// TestReplanOnConflict: a group whose transaction the database ended for a
// conflict with another writer is planned again and stored once; one that
// keeps meeting conflicts is answered 503 (ErrUnavailable), storing
// nothing.
func TestReplanOnConflict(t *testing.T) {
	dir := t.TempDir()
	db, err := state.Open(filepath.Join(dir, "state.db"))
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.EnsureOrg(context.Background(), "default"))
	backend := storage.NewEmbedded(slog.New(slog.DiscardHandler), nil, storage.EmbeddedOptions{
		Dir: filepath.Join(dir, "tsdb"), Retention: 30 * 24 * time.Hour, OutOfOrderWindow: DefaultLimits.Backfill,
	})
	defer backend.Close()
	fail := new(atomic.Int32)
	reg := prometheus.NewRegistry()
	svc := NewService(slog.New(slog.DiscardHandler), reg, conflictingLog{db, fail}, backend, Options{Limits: DefaultLimits})
	require.NoError(t, svc.Recover(context.Background()))
	write := func(body string) error {
		evs, err := Decode([]byte(body), time.Now(), DefaultLimits)
		require.NoError(t, err)
		req := &request{ctx: context.Background(), org: "default", events: evs, reply: make(chan reply, 1)}
		svc.process([]*request{req})
		return (<-req.reply).err
	}
	logged := func(name string) int {
		rows, err := db.ListEvents(context.Background(), state.EventQuery{Org: "default", Name: name, Start: 0, End: math.MaxInt64, Limit: 10})
		require.NoError(t, err)
		return len(rows)
	}

	fail.Store(2)
	require.NoError(t, write(`[{"event_name":"deploy","attributes":{"service":"api"}},{"event_name":"config","attributes":{"service":"api"}}]`))
	require.Equal(t, 2.0, promtestutil.ToFloat64(svc.replanned), "planned again after each conflict")
	require.Equal(t, 1, logged("deploy"))
	require.Equal(t, 1, logged("config"))

	fail.Store(maxReplans + 1)
	require.ErrorIs(t, write(`{"event_name":"rollback","attributes":{"service":"api"}}`), ErrUnavailable)
	require.Equal(t, 0, logged("rollback"), "nothing stored")
}
