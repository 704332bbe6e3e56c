package state

import (
	"context"
	"errors"
)

// The contracts of the state. *DB implements all of them; consumers declare
// the one they use, so that a second implementation (or a test double that
// honours the same promises) can stand in.
//
// Common to every contract:
//   - Methods are safe for concurrent use by any number of goroutines and,
//     on a shared database, by any number of processes.
//   - A method that returns nil has committed what it wrote: it is on disk
//     (fsynced) and survives a crash of the process or the machine.
//   - Returned values (rows, slices, maps) belong to the caller.

// Sentinel errors beside the contracts they belong to.
var (
	// ErrNotFound: a looked-up organization, token, rule group or event
	// does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: what is being created exists already.
	ErrExists = errors.New("already exists")
	// ErrDuplicate: an event row's id or dedup key is stored already (see
	// EventTx.Insert).
	ErrDuplicate = errors.New("duplicate change event")
)

// Store is the whole state of Tidemark but the samples.
type Store interface {
	Orgs
	Tokens
	RuleStore
	EventLog
	// Close closes the store; nothing may use it afterwards.
	Close() error
}

// Orgs are the organizations.
type Orgs interface {
	// CreateOrg creates an organization; ErrExists when it exists. The
	// slug must be valid (storage.ValidSlug); an invalid one is refused.
	CreateOrg(ctx context.Context, slug string) error
	// EnsureOrg creates an organization unless it exists.
	EnsureOrg(ctx context.Context, slug string) error
	// OrgExists reports whether an organization exists.
	OrgExists(ctx context.Context, slug string) (bool, error)
	// Orgs lists every organization's slug, sorted.
	Orgs(ctx context.Context) ([]string, error)
}

// Tokens are the hashed tokens of every organization. Only hashes are
// stored (HashToken); a token's value is never kept.
type Tokens interface {
	// AddToken stores the hash of token for org: ErrNotFound when the
	// organization does not exist, ErrExists when the token is stored.
	AddToken(ctx context.Context, org string, scope Scope, name, source, token string) error
	// LookupTokenHash returns what the token with the hash grants, or
	// ErrNotFound.
	LookupTokenHash(ctx context.Context, hash string) (TokenInfo, error)
	// SyncConfig makes the organizations and the config-sourced tokens match
	// the config file, in one transaction.
	SyncConfig(ctx context.Context, orgs []string, tokens []ConfigToken) error
}

// RuleStore holds the rule groups of the ruler API, as YAML it does not
// parse.
type RuleStore interface {
	// PutRuleGroup stores a group, replacing the one of the same
	// organization, namespace and name.
	PutRuleGroup(ctx context.Context, r RuleGroupRow) error
	// RuleGroups lists the groups q selects, by organization, namespace
	// and name.
	RuleGroups(ctx context.Context, q RuleGroupQuery) ([]RuleGroupRow, error)
	// RuleGroup returns one group, or ErrNotFound.
	RuleGroup(ctx context.Context, org, namespace, name string) (RuleGroupRow, error)
	// DeleteRuleGroup deletes one group; ErrNotFound when there is none.
	DeleteRuleGroup(ctx context.Context, org, namespace, name string) error
	// DeleteRuleNamespace deletes every group of a namespace; ErrNotFound
	// when it has none.
	DeleteRuleNamespace(ctx context.Context, org, namespace string) error
}

// EventLog is the change-event log: the truth about change events, from
// which their series can always be written again.
//
// A row's Seq is assigned by the database (EventTx.Insert), never by a
// writer: it identifies the row and orders the log. Rows are written with
// Committed false, before the samples they stand for; MarkCommitted records
// that the samples are in the series storage. A crash in between leaves
// rows that UncommittedEvents returns, for their samples to be written again
// (writing the same samples twice is harmless). Open starts (Open true) are
// the log's own record of which events are running, so the set of open
// events is derived from the log alone.
type EventLog interface {
	// BeginEvents starts a write transaction. It is used by one goroutine.
	BeginEvents(ctx context.Context) (EventTx, error)
	// MarkCommitted records that the samples of the rows seqs are stored.
	MarkCommitted(ctx context.Context, seqs []int64) error
	// ExpireOpen closes a start that ran past the maximum duration.
	ExpireOpen(ctx context.Context, seq int64) error
	// UncommittedEvents returns, in seq order, the rows whose samples may
	// be missing from the series storage.
	UncommittedEvents(ctx context.Context) ([]EventRow, error)
	// OpenEvents returns the starts without a stop, in seq order.
	OpenEvents(ctx context.Context) ([]EventRow, error)
	// ListEvents returns committed rows of one organization, newest first.
	ListEvents(ctx context.Context, q EventQuery) ([]EventRow, error)
	// EventBySeq returns one row, or ErrNotFound.
	EventBySeq(ctx context.Context, seq int64) (EventRow, error)
}

// EventTx is a write transaction on the event log. Nothing it writes is
// visible to others, or durable, before Commit returns nil; Rollback undoes
// all of it.
type EventTx interface {
	// FindDedups returns the rows stored under any of an organization's
	// dedup keys, by key.
	FindDedups(org string, keys []string) (map[string]EventRow, error)
	// AllocSeqs reserves n consecutive seqs from the database and returns
	// the first. Seqs of transactions that roll back are not reused, so
	// the log may have gaps.
	AllocSeqs(n int) (int64, error)
	// Insert stores rows whose Seq came from AllocSeqs. The database
	// refuses a row whose id or dedup key is stored already (by another
	// writer since FindDedups): then Insert returns ErrDuplicate, the
	// transaction must be rolled back, and the caller may plan again.
	Insert(rows []*EventRow) error
	// ClosePair records that the start startSeq was stopped by stopSeq.
	ClosePair(startSeq, stopSeq, durationMS int64) error
	// ExpireOpen closes a start that ran past the maximum duration.
	ExpireOpen(seq int64) error
	Commit() error
	Rollback() error
}

var _ Store = (*DB)(nil)
