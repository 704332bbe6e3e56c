package state

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Scope is what a token may do.
type Scope string

// The scopes. Admin implies read and write.
const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
	ScopeAdmin Scope = "admin"
)

// ParseScope parses a scope name.
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case ScopeRead, ScopeWrite, ScopeAdmin:
		return Scope(s), nil
	}
	return "", fmt.Errorf("scope %q is not accepted: use read, write or admin", s)
}

// Allows reports whether a token of scope s may do what need requires.
func (s Scope) Allows(need Scope) bool {
	return s == need || s == ScopeAdmin
}

// Token sources: tokens declared in the config file are replaced whenever
// the file is loaded; the others are kept.
const (
	SourceCLI       = "cli"
	SourceAPI       = "api"
	SourceConfig    = "config"
	SourceBootstrap = "bootstrap"
)

// TokenPrefix starts every generated token, so that leaked tokens are easy
// to recognise in logs and by secret scanners.
const TokenPrefix = "tdm_"

// MinTokenLength is the shortest token accepted from a config file.
const MinTokenLength = 16

// NewToken returns a new random token: 256 bits from crypto/rand.
func NewToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand.Read does not fail on supported platforms.
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashToken returns the stored form of a token. Tokens are long random
// strings, so a plain SHA-256 is enough; lookups go by hash, so the token is
// never compared in variable time.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// TokenInfo is what a token grants.
type TokenInfo struct {
	Org   string
	Scope Scope
	Name  string
}

// AddToken stores the hash of token for org with the given scope.
func (s *DB) AddToken(ctx context.Context, org string, scope Scope, name, source, token string) error {
	if _, err := ParseScope(string(scope)); err != nil {
		return err
	}
	ok, err := s.OrgExists(ctx, org)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("organization %q: %w", org, ErrNotFound)
	}
	if err := ValidTokenName(name); err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO tokens (hash, org, scope, name, source, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		HashToken(token), org, string(scope), name, source, s.now().UnixMilli())
	if err != nil {
		if s.db.d.isUnique(err) {
			if taken, _ := s.tokenNameTaken(ctx, org, name); taken {
				return fmt.Errorf("organization %q has a token named %q; token names are unique per organization (revoke it first, or choose another name): %w", org, name, ErrExists)
			}
			return fmt.Errorf("token %q: this token value is stored already: %w", name, ErrExists)
		}
		return fmt.Errorf("add token %q: %w", name, err)
	}
	return nil
}

func (s *DB) tokenNameTaken(ctx context.Context, org, name string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM tokens WHERE org = ? AND name = ?`, org, name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// MaxTokenNameLength is the longest token name accepted.
const MaxTokenNameLength = 128

// ValidTokenName checks a token's name: 1 to 128 characters, printable,
// without '/' (it is a path segment of the admin API).
func ValidTokenName(name string) error {
	ok := name != "" && len(name) <= MaxTokenNameLength && utf8.ValidString(name)
	for _, c := range name {
		if c == '/' || !unicode.IsPrint(c) {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("token name %q is not accepted: use 1 to %d printable characters other than '/'", name, MaxTokenNameLength)
	}
	return nil
}

// TokenRow is what is known of a stored token: never its value, nor its
// hash.
type TokenRow struct {
	Name      string
	Scope     Scope
	Source    string
	CreatedAt time.Time
}

// ListTokens lists the tokens of an organization by name; ErrNotFound when
// the organization does not exist.
func (s *DB) ListTokens(ctx context.Context, org string) ([]TokenRow, error) {
	ok, err := s.OrgExists(ctx, org)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("organization %q: %w", org, ErrNotFound)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name, scope, source, created_at FROM tokens WHERE org = ? ORDER BY name`, org)
	if err != nil {
		return nil, fmt.Errorf("list tokens of organization %q: %w", org, err)
	}
	defer rows.Close()
	out := []TokenRow{}
	for rows.Next() {
		var r TokenRow
		var scope string
		var created int64
		if err := rows.Scan(&r.Name, &scope, &r.Source, &created); err != nil {
			return nil, err
		}
		r.Scope, r.CreatedAt = Scope(scope), time.UnixMilli(created).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// RevokeToken removes the token named name of org: ErrNotFound when there
// is none, ErrConfigToken when the config file declares it.
func (s *DB) RevokeToken(ctx context.Context, org, name string) error {
	var source string
	err := s.db.QueryRowContext(ctx, `SELECT source FROM tokens WHERE org = ? AND name = ?`, org, name).Scan(&source)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("organization %q has no token named %q: %w", org, name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("revoke token %q: %w", name, err)
	}
	if source == SourceConfig {
		return fmt.Errorf("token %q of organization %q is declared in the config file: remove it there (it would come back at the next start): %w", name, org, ErrConfigToken)
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM tokens WHERE org = ? AND name = ? AND source <> ?`, org, name, SourceConfig)
	if err != nil {
		return fmt.Errorf("revoke token %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("organization %q has no token named %q: %w", org, name, ErrNotFound)
	}
	return nil
}

// LookupToken returns what a token grants, or ErrNotFound.
func (s *DB) LookupToken(ctx context.Context, token string) (TokenInfo, error) {
	return s.LookupTokenHash(ctx, HashToken(token))
}

// LookupTokenHash returns what the token with the given hash grants, or
// ErrNotFound.
func (s *DB) LookupTokenHash(ctx context.Context, hash string) (TokenInfo, error) {
	var ti TokenInfo
	var scope string
	err := s.db.QueryRowContext(ctx, `SELECT org, scope, name FROM tokens WHERE hash = ?`, hash).Scan(&ti.Org, &scope, &ti.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return ti, ErrNotFound
	}
	if err != nil {
		return ti, fmt.Errorf("look up token: %w", err)
	}
	ti.Scope = Scope(scope)
	return ti, nil
}

// ConfigToken is a token declared in the config file.
type ConfigToken struct {
	Org   string
	Name  string
	Scope Scope
	Value string
}

// SyncConfig makes the organizations and config-sourced tokens match the
// config file: declared organizations are created, declared tokens are
// stored, and config tokens no longer declared are removed.
func (s *DB) SyncConfig(ctx context.Context, orgs []string, tokens []ConfigToken) error {
	tx, err := s.db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Replicas starting together each sync the same file: one at a time.
	if err := s.db.d.lock(ctx, tx.tx, configLockKey); err != nil {
		return fmt.Errorf("take the config lock: %w", err)
	}
	now := s.now().UnixMilli()
	for _, slug := range orgs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO organizations (slug, created_at) VALUES (?, ?) ON CONFLICT (slug) DO NOTHING`, slug, now); err != nil {
			return fmt.Errorf("create organization %q: %w", slug, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE source = ?`, SourceConfig); err != nil {
		return err
	}
	seen := map[[2]string]bool{}
	for _, t := range tokens {
		if err := ValidTokenName(t.Name); err != nil {
			return fmt.Errorf("config token of organization %q: %w", t.Org, err)
		}
		k := [2]string{t.Org, t.Name}
		if seen[k] {
			return fmt.Errorf("the config file declares two tokens named %q in organization %q: token names are unique per organization", t.Name, t.Org)
		}
		seen[k] = true
		var other string
		err := tx.QueryRowContext(ctx, `SELECT source FROM tokens WHERE org = ? AND name = ?`, t.Org, t.Name).Scan(&other)
		if err == nil {
			return fmt.Errorf("the config file declares token %q in organization %q, and a token of that name was made by %s: token names are unique per organization; rename one, or revoke the other (tidemark token revoke)", t.Name, t.Org, other)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, org, scope, name, source, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			HashToken(t.Value), t.Org, string(t.Scope), t.Name, SourceConfig, now); err != nil {
			return fmt.Errorf("add config token %q of organization %q (a token value may be used once): %w", t.Name, t.Org, err)
		}
	}
	return tx.Commit()
}
