package state

import (
	"context"
	"database/sql"
	"errors"
	"time"
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
	// ErrConfigToken: a token declared in the config file cannot be
	// revoked but there (see Tokens.RevokeToken).
	ErrConfigToken = errors.New("token is declared in the config file")
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
	ImpactLog
	Leases
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
	// AddToken stores the hash of token for org under name, which is
	// unique in the organization (ValidTokenName): ErrNotFound when the
	// organization does not exist, ErrExists when the organization has a
	// token of that name or the token is stored.
	AddToken(ctx context.Context, org string, scope Scope, name, source, token string) error
	// ListTokens lists an organization's tokens by name, never their
	// values (which are not stored); ErrNotFound when the organization
	// does not exist.
	ListTokens(ctx context.Context, org string) ([]TokenRow, error)
	// RevokeToken removes an organization's token by name: ErrNotFound when
	// there is none, ErrConfigToken when the config file declares it.
	// Lookups of it fail once it returns, in every process.
	RevokeToken(ctx context.Context, org, name string) error
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
// A row's Seq is assigned by the database (EventTx.AllocSeqs), never by a
// writer: it identifies the row and orders the log. Rows are written with
// Committed false, before the samples they stand for; EventTx.MarkCommitted
// records, then or later (a writer may carry the mark over to its next
// transaction), that the samples are in the series storage. A crash in
// between leaves rows that UncommittedEvents returns, for their samples to
// be written again (writing the same samples twice is harmless). A row is
// the truth from its transaction's commit: listings show it whether or not
// it is marked, unless Hide took it out of them.
//
// The set of open events is the log's too: a start without a stop is Open
// (at most one per organization and pair key: the database refuses a
// second), and its ActiveNext says how far its change_event_active series is
// written. So any writer, in any process, can pair a stop with a start
// another wrote, and any process can take over writing the active series.
type EventLog interface {
	// BeginEvents starts a write transaction. It is used by one goroutine.
	BeginEvents(ctx context.Context) (EventTx, error)
	// UncommittedEvents returns, in seq order, the rows q selects whose
	// samples may be missing from the series storage.
	UncommittedEvents(ctx context.Context, q UncommittedQuery) ([]EventRow, error)
	// OpenCount is the number of open starts of every organization.
	OpenCount(ctx context.Context) (int, error)
	// OpenEvents returns the open starts q selects, in seq order, without
	// locking them (EventTx.OpenStarts locks).
	OpenEvents(ctx context.Context, q OpenQuery) ([]EventRow, error)
	// ListEvents returns rows of one organization, newest first, but those
	// hidden (EventTx.Hide).
	ListEvents(ctx context.Context, q EventQuery) ([]EventRow, error)
	// EventBySeq returns one row, or ErrNotFound.
	EventBySeq(ctx context.Context, seq int64) (EventRow, error)
	// EventByID returns the row of an organization's event id, or
	// ErrNotFound.
	EventByID(ctx context.Context, org, id string) (EventRow, error)
}

// ImpactLog keeps what change events did to their signals (package
// impact): at most one row per start, keyed by its seq.
//
// Which starts are still to be scored is read from the log itself
// (UnscoredStarts), not from memory, so whichever process holds an
// organization's lease can take over its scoring, and one that restarts
// scores what it missed. Rows are only added or replaced, never deleted.
type ImpactLog interface {
	// UnscoredStarts returns, in seq order, the starts q selects that have
	// no impact row, committed or not (their samples do not matter here).
	// With several writers seqs may commit out of order
	// (EventTx.AllocSeqs): a row with a smaller seq than one already seen
	// may appear while another writer's transaction is in flight.
	UnscoredStarts(ctx context.Context, q UnscoredQuery) ([]EventRow, error)
	// AddImpacts stores rows in one transaction, leaving alone the row of
	// an event that has one: the first writer wins, in any process, so an
	// event is scored once however many try.
	AddImpacts(ctx context.Context, rows []ImpactRow) error
	// PutImpact stores a row, replacing the event's row if it has one (a
	// score asked for again).
	PutImpact(ctx context.Context, row ImpactRow) error
	// Impacts returns the rows of the events seqs of org that have one, by
	// seq.
	Impacts(ctx context.Context, org string, seqs []int64) (map[int64]ImpactRow, error)
}

// UncommittedQuery selects uncommitted rows.
type UncommittedQuery struct {
	// Orgs, when not nil, are the only organizations selected.
	Orgs []string
	// ReceivedBefore, when set, selects rows received before it
	// (milliseconds): older than any write still in flight.
	ReceivedBefore int64
}

// OpenQuery selects open starts.
type OpenQuery struct {
	// Orgs and Names, when not nil, are the only organizations and event
	// names selected.
	Orgs, Names []string
	// PairKeys, when not nil, are the only pair keys selected (with Names
	// nil).
	PairKeys []string
	// AfterSeq, when not 0, selects only starts with a greater seq.
	AfterSeq int64
}

// Progress is how far an open start's active series is written.
type Progress struct {
	Seq int64
	// ActiveNext is EventRow.ActiveNext.
	ActiveNext sql.NullInt64
}

// WrittenTo is the Progress of the start seq written up to next.
func WrittenTo(seq, next int64) Progress {
	return Progress{Seq: seq, ActiveNext: sql.NullInt64{Int64: next, Valid: true}}
}

// EventTx is a write transaction on the event log. Nothing it writes is
// visible to others, or durable, before Commit returns nil; Rollback undoes
// all of it.
type EventTx interface {
	// FindDedups returns the rows stored under any of an organization's
	// dedup keys, by key.
	FindDedups(org string, keys []string) (map[string]EventRow, error)
	// OpenStarts returns the open starts q selects, in seq order. No other
	// transaction can change them (pair, expire, advance) until this one
	// ends.
	OpenStarts(q OpenQuery) ([]EventRow, error)
	// OpenProgress is OpenStarts with only the seq and ActiveNext of each
	// row, for a reader that has the rest (which never changes) already.
	OpenProgress(q OpenQuery) ([]Progress, error)
	// AllocSeqs reserves n consecutive seqs from the database and returns
	// the first. Seqs are unique and grow from one allocation to the next.
	// With several writers (PostgreSQL) they are taken outside the
	// transaction, so that writers do not wait for each other: a
	// transaction that rolls back leaves a gap, and seqs of concurrent
	// writers may commit out of order. With one (SQLite) a rolled-back
	// transaction gives its seqs back.
	AllocSeqs(n int) (int64, error)
	// Insert stores rows whose Seq came from AllocSeqs. The database
	// refuses a row whose id or dedup key is stored already, or an open
	// start of a series that has one (another writer stored it since this
	// transaction looked): then Insert returns ErrDuplicate, the
	// transaction must be rolled back, and the caller may plan again.
	Insert(rows []*EventRow) error
	// ClosePair records that the start startSeq was stopped by stopSeq.
	ClosePair(startSeq, stopSeq, durationMS int64) error
	// ExpireOpen closes a start that ran past the maximum duration.
	ExpireOpen(seq int64) error
	// SetActive records how far the active series of open starts are
	// written: each up to its ActiveNext (exclusive), which must be valid.
	SetActive(ps ...Progress) error
	// MarkCommitted records that the samples of the rows seqs (sorted) are
	// stored (and lifts Hide).
	MarkCommitted(seqs []int64) error
	// Hide leaves the unmarked rows seqs (sorted) out of listings until
	// MarkCommitted: writing their samples failed, and their requests were
	// refused.
	Hide(seqs []int64) error
	Commit() error
	Rollback() error
}

// Leases give work that must happen once (per organization: the active
// series, rules and alerts) to one process at a time. A lease is held until
// its expiry unless renewed; holders' clocks are assumed to agree to well
// within a lease's time to live.
type Leases interface {
	// AcquireLease takes the lease name for holder, or renews it, until
	// ttl from now. It reports false when another holder's lease has not
	// expired.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives up holder's lease, so another may take it at once.
	ReleaseLease(ctx context.Context, name, holder string) error
	// LeaseHolder returns who holds a lease and until when, or ErrNotFound.
	LeaseHolder(ctx context.Context, name string) (string, time.Time, error)
}

var _ Store = (*DB)(nil)
