package state

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTokensAndOrgs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(path)
	require.NoError(t, err)

	require.NoError(t, db.CreateOrg(ctx, "acme"))
	require.ErrorIs(t, db.CreateOrg(ctx, "acme"), ErrExists)
	require.ErrorContains(t, db.CreateOrg(ctx, "../etc"), "not accepted")
	require.ErrorContains(t, db.CreateOrg(ctx, "Acme"), "not accepted")

	tok := NewToken()
	require.True(t, strings.HasPrefix(tok, TokenPrefix))
	require.GreaterOrEqual(t, len(tok), 40)
	require.NotEqual(t, tok, NewToken())
	require.NoError(t, db.AddToken(ctx, "acme", ScopeWrite, "ci", SourceCLI, tok))
	require.ErrorIs(t, db.AddToken(ctx, "nope", ScopeRead, "x", SourceCLI, NewToken()), ErrNotFound)
	require.ErrorContains(t, db.AddToken(ctx, "acme", Scope("root"), "x", SourceCLI, NewToken()), `scope "root" is not accepted`)

	ti, err := db.LookupToken(ctx, tok)
	require.NoError(t, err)
	require.Equal(t, TokenInfo{Org: "acme", Scope: ScopeWrite, Name: "ci"}, ti)
	_, err = db.LookupToken(ctx, tok+"x")
	require.ErrorIs(t, err, ErrNotFound)

	// Only the hash is stored.
	var stored string
	require.NoError(t, db.db.db.QueryRow(`SELECT hash FROM tokens`).Scan(&stored))
	require.NotContains(t, stored, tok)
	require.Equal(t, HashToken(tok), stored)

	// Config tokens are replaced on each sync; others stay.
	require.NoError(t, db.SyncConfig(ctx, []string{"globex"}, []ConfigToken{{Org: "globex", Name: "g", Scope: ScopeRead, Value: "globex-read-token-1"}}))
	_, err = db.LookupToken(ctx, "globex-read-token-1")
	require.NoError(t, err)
	require.NoError(t, db.SyncConfig(ctx, []string{"globex"}, []ConfigToken{{Org: "globex", Name: "g", Scope: ScopeAdmin, Value: "globex-read-token-2"}}))
	_, err = db.LookupToken(ctx, "globex-read-token-1")
	require.ErrorIs(t, err, ErrNotFound)
	ti, err = db.LookupToken(ctx, "globex-read-token-2")
	require.NoError(t, err)
	require.Equal(t, ScopeAdmin, ti.Scope)
	_, err = db.LookupToken(ctx, tok)
	require.NoError(t, err, "a CLI token survives a config sync")

	orgs, err := db.Orgs(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"acme", "globex"}, orgs)

	// Reopening applies no migration twice and keeps everything.
	require.NoError(t, db.Close())
	db, err = Open(path)
	require.NoError(t, err)
	defer db.Close()
	var versions int
	require.NoError(t, db.db.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&versions))
	require.Equal(t, len(migrations), versions)
	_, err = db.LookupToken(ctx, tok)
	require.NoError(t, err)
}

func TestScopes(t *testing.T) {
	for _, tc := range []struct {
		have, need Scope
		ok         bool
	}{
		{ScopeRead, ScopeRead, true}, {ScopeRead, ScopeWrite, false}, {ScopeRead, ScopeAdmin, false},
		{ScopeWrite, ScopeWrite, true}, {ScopeWrite, ScopeRead, false},
		{ScopeAdmin, ScopeRead, true}, {ScopeAdmin, ScopeWrite, true}, {ScopeAdmin, ScopeAdmin, true},
	} {
		require.Equal(t, tc.ok, tc.have.Allows(tc.need), "%s allows %s", tc.have, tc.need)
	}
}
