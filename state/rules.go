package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// RuleGroupRow is one rule group of the ruler API. Body is the group as
// Prometheus rule-group YAML (one element of a rule file's groups); the
// state database stores it as given and does not parse it.
type RuleGroupRow struct {
	Org       string
	Namespace string
	Name      string
	Body      string
	// UpdatedAt is when the group was last stored, in milliseconds.
	UpdatedAt int64
}

// RuleGroupQuery selects rule groups. An empty Org selects every
// organization; an empty Namespace every namespace of the selected ones.
type RuleGroupQuery struct {
	Org       string
	Namespace string
}

// PutRuleGroup stores a rule group, replacing the one of the same
// organization, namespace and name.
func (s *DB) PutRuleGroup(ctx context.Context, r RuleGroupRow) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO rule_groups (org, namespace, name, body, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (org, namespace, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`,
		r.Org, r.Namespace, r.Name, r.Body, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("store rule group %q of namespace %q: %w", r.Name, r.Namespace, err)
	}
	return nil
}

// RuleGroups lists the rule groups q selects, ordered by organization,
// namespace and name.
func (s *DB) RuleGroups(ctx context.Context, q RuleGroupQuery) ([]RuleGroupRow, error) {
	query := `SELECT org, namespace, name, body, updated_at FROM rule_groups`
	var args []any
	switch {
	case q.Org != "" && q.Namespace != "":
		query += ` WHERE org = ? AND namespace = ?`
		args = append(args, q.Org, q.Namespace)
	case q.Org != "":
		query += ` WHERE org = ?`
		args = append(args, q.Org)
	case q.Namespace != "":
		query += ` WHERE namespace = ?`
		args = append(args, q.Namespace)
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY org, namespace, name`, args...)
	if err != nil {
		return nil, fmt.Errorf("list rule groups: %w", err)
	}
	defer rows.Close()
	var out []RuleGroupRow
	for rows.Next() {
		var r RuleGroupRow
		if err := rows.Scan(&r.Org, &r.Namespace, &r.Name, &r.Body, &r.UpdatedAt); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RuleGroup returns one rule group, or ErrNotFound.
func (s *DB) RuleGroup(ctx context.Context, org, namespace, name string) (RuleGroupRow, error) {
	r := RuleGroupRow{Org: org, Namespace: namespace, Name: name}
	err := s.db.QueryRowContext(ctx, `SELECT body, updated_at FROM rule_groups WHERE org = ? AND namespace = ? AND name = ?`,
		org, namespace, name).Scan(&r.Body, &r.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("rule group %q of namespace %q: %w", name, namespace, ErrNotFound)
	}
	return r, err
}

// DeleteRuleGroup deletes one rule group; ErrNotFound when there is none.
func (s *DB) DeleteRuleGroup(ctx context.Context, org, namespace, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM rule_groups WHERE org = ? AND namespace = ? AND name = ?`, org, namespace, name)
	if err != nil {
		return fmt.Errorf("delete rule group %q of namespace %q: %w", name, namespace, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("rule group %q of namespace %q: %w", name, namespace, ErrNotFound)
	}
	return nil
}

// DeleteRuleNamespace deletes every rule group of a namespace; ErrNotFound
// when it has none.
func (s *DB) DeleteRuleNamespace(ctx context.Context, org, namespace string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM rule_groups WHERE org = ? AND namespace = ?`, org, namespace)
	if err != nil {
		return fmt.Errorf("delete rule namespace %q: %w", namespace, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("rule namespace %q: %w", namespace, ErrNotFound)
	}
	return nil
}
