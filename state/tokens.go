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
	_, err = s.db.ExecContext(ctx, `INSERT INTO tokens (hash, org, scope, name, source, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		HashToken(token), org, string(scope), name, source, s.now().UnixMilli())
	if err != nil {
		if s.db.d.isUnique(err) {
			return fmt.Errorf("token %q: %w", name, ErrExists)
		}
		return fmt.Errorf("add token %q: %w", name, err)
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
	for _, t := range tokens {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, org, scope, name, source, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			HashToken(t.Value), t.Org, string(t.Scope), t.Name, SourceConfig, now); err != nil {
			return fmt.Errorf("add config token %q of organization %q (a token value may be used once): %w", t.Name, t.Org, err)
		}
	}
	return tx.Commit()
}
