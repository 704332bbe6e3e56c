package testservices

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	url1 := Postgres(t)
	t.Logf("first database (server start included) in %s", time.Since(start))
	start = time.Now()
	url2 := Postgres(t)
	t.Logf("second database in %s", time.Since(start))
	require.NotEqual(t, url1, url2)

	c1, err := pgx.Connect(ctx, url1)
	require.NoError(t, err)
	defer c1.Close(ctx)
	_, err = c1.Exec(ctx, `CREATE TABLE events (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, at TIMESTAMPTZ NOT NULL)`)
	require.NoError(t, err)
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var id int64
	require.NoError(t, c1.QueryRow(ctx, `INSERT INTO events (name, at) VALUES ($1, $2) RETURNING id`, "deploy-1", at).Scan(&id))
	require.Equal(t, int64(1), id)
	_, err = c1.Exec(ctx, `INSERT INTO events (name, at) VALUES ($1, $2)`, "deploy-1", at)
	require.Error(t, err, "the database refuses a duplicate")

	var name string
	var got time.Time
	require.NoError(t, c1.QueryRow(ctx, `SELECT name, at FROM events WHERE id = $1`, id).Scan(&name, &got))
	require.Equal(t, "deploy-1", name)
	require.True(t, at.Equal(got), "at %s, got %s", at, got)

	// The second database is another one: the table is not there.
	c2, err := pgx.Connect(ctx, url2)
	require.NoError(t, err)
	defer c2.Close(ctx)
	var n int
	require.NoError(t, c2.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_name = 'events'`).Scan(&n))
	require.Zero(t, n)
	var db1, db2 string
	require.NoError(t, c1.QueryRow(ctx, `SELECT current_database()`).Scan(&db1))
	require.NoError(t, c2.QueryRow(ctx, `SELECT current_database()`).Scan(&db2))
	require.NotEqual(t, db1, db2)
}

// TestPostgresParallel asks for databases from parallel tests at once, as
// the state store's contract tests will.
func TestPostgresParallel(t *testing.T) {
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := pgx.Connect(ctx, Postgres(t))
			require.NoError(t, err)
			defer c.Close(ctx)
			_, err = c.Exec(ctx, `CREATE TABLE orgs (slug TEXT PRIMARY KEY)`)
			require.NoError(t, err, "each test has a database of its own")
		})
	}
}
