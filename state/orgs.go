package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tidemark/tidemark/storage"
)

// CreateOrg creates an organization.
func (s *DB) CreateOrg(ctx context.Context, slug string) error {
	if err := storage.ValidSlug(slug); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO organizations (slug, created_at) VALUES (?, ?) ON CONFLICT (slug) DO NOTHING`, slug, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("create organization %q: %w", slug, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("organization %q: %w", slug, ErrExists)
	}
	return nil
}

// EnsureOrg creates an organization unless it exists.
func (s *DB) EnsureOrg(ctx context.Context, slug string) error {
	if err := s.CreateOrg(ctx, slug); err != nil && !errors.Is(err, ErrExists) {
		return err
	}
	return nil
}

// OrgExists reports whether an organization exists.
func (s *DB) OrgExists(ctx context.Context, slug string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM organizations WHERE slug = ?`, slug).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Orgs lists the slugs of all organizations.
func (s *DB) Orgs(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT slug FROM organizations ORDER BY slug`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var slug string
		if err := rows.Scan(&slug); err != nil {
			return nil, err
		}
		out = append(out, slug)
	}
	return out, rows.Err()
}
