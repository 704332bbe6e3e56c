package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	promstorage "github.com/prometheus/prometheus/storage"

	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// A group of requests is written in one event-log transaction, in steps:
//
//  1. plan, request by request (planRequest): which events are new and which
//     are duplicates (of the log, of an earlier request of the group, of the
//     same request); how starts and stops pair against the open set, through
//     an overlay, so that a request can be undone alone; the samples that
//     follow;
//  2. stage, request by request (stageRequest): the samples, with the first
//     active samples of the starts it opened, are appended, uncommitted, to
//     the organization's storage (a remote engine is sent them then: see
//     storage.Preparer); a request whose samples are refused is undone and
//     answered alone; then for the group (store): seqs from the database,
//     the rows inserted, pairs closed;
//  3. commit: the log transaction first — from then on the log is the truth,
//     and a crash before the TSDB commit is repaired by replaying uncommitted
//     rows — then the TSDB appenders, then the rows are marked committed.
//
// The open starts a group pairs with are read from the log in its
// transaction, so writers in several processes pair each other's starts
// and stops; the database keeps two from closing or opening the same one.
//
// If the log refuses a row as a duplicate (another writer stored the same
// event after this group looked), or PostgreSQL ends the transaction to
// break a deadlock with another writer (state.IsConflict), everything is
// rolled back and the group is planned again, once it can see that
// writer's rows.

// maxReplans bounds how often a group is planned again.
const maxReplans = 3

// groupWrite is a group of requests on its way to being stored.
type groupWrite struct {
	s   *Service
	tx  state.EventTx
	now time.Time
	// open are the open starts of the log the group has read (locked
	// until it commits), by organization and name; ov its changes to them.
	open *openSet
	ov   *overlay
	// seen are the new rows of the group's requests staged so far, by
	// organization and dedup key.
	seen map[string]*state.EventRow
	// replayed are the seqs of uncommitted log rows whose samples a request
	// of the group writes again.
	replayed map[int64]bool
	// keys are the dedup keys of the group's requests' events, by request;
	// stored the rows of the log stored under them, by organization and key.
	keys   [][]string
	stored map[string]state.EventRow
	// pairKeys are the pair keys of the group's requests' events, by
	// request.
	pairKeys [][]string
	reqs     []*plannedRequest
}

// plannedRequest is one request of a group.
type plannedRequest struct {
	req     *request
	results []Result
	// resultRows[i], when set, is the new row results[i] stands for: its
	// seq is known only once the group is stored.
	resultRows []*state.EventRow
	// rows are the request's new rows, in order.
	rows []*state.EventRow
	// local are the new rows of this request, by organization and dedup key.
	local   map[string]*state.EventRow
	opened  []openedStart
	pairs   []closedPair
	samples []sample
	// replays are the seqs of uncommitted rows this request writes again;
	// rewind are those of them that are open starts, whose active series is
	// written again from the start.
	replays []int64
	rewind  []state.EventRow
	undo    []undoEntry
	app     promstorage.AppenderV2
	err     error
}

// openedStart is a start that a request opened: the open set learns its
// seq when the group is stored.
type openedStart struct {
	row *state.EventRow
	ev  *openEvent
}

// closedPair is a stop that ended an open start.
type closedPair struct {
	start      *openEvent
	stop       *state.EventRow
	durationMS int64
}

// process writes a group of requests and answers each.
func (s *Service) process(group []*request) {
	start := s.now()
	defer func() { s.batchTime.Observe(time.Since(start).Seconds()) }()
	for attempt := 0; ; attempt++ {
		g, err := s.writeGroup(group, start)
		if errors.Is(err, state.ErrDuplicate) && attempt < maxReplans {
			s.replanned.Inc()
			s.logger.Info("another writer stored an event of this group meanwhile; planning it again", "err", err)
			continue
		}
		if state.IsConflict(err) && attempt < maxReplans {
			s.replanned.Inc()
			s.logger.Info("the event log ended this group's transaction for a conflict with another writer; planning it again", "err", err)
			continue
		}
		if err != nil {
			s.logger.Error("write change events", "err", err)
			for _, r := range group {
				r.reply <- reply{err: ErrUnavailable}
			}
			return
		}
		g.reply()
		return
	}
}

// writeGroup plans, stages and commits a group. On error nothing of it is
// stored and nothing is answered.
func (s *Service) writeGroup(group []*request, now time.Time) (*groupWrite, error) {
	tx, err := s.log.BeginEvents(context.Background())
	if err != nil {
		return nil, err
	}
	g := &groupWrite{s: s, tx: tx, now: now, open: newOpenSet(), seen: map[string]*state.EventRow{}, replayed: map[int64]bool{}}
	g.ov = newOverlay(g.open)
	// The marks of the groups before, carried over (see commit).
	if err := tx.MarkCommitted(s.marks); err != nil {
		g.abort()
		return nil, fmt.Errorf("mark change events committed: %w", err)
	}
	if err := g.lookUp(group); err != nil {
		g.abort()
		return nil, err
	}
	for i, req := range group {
		p, err := g.planRequest(req, g.keys[i], g.pairKeys[i])
		if err != nil {
			g.abort()
			return nil, err
		}
		g.stageRequest(p)
	}
	if err := g.store(); err != nil {
		g.abort()
		return nil, err
	}
	if err := g.tx.Commit(); err != nil {
		g.abort()
		return nil, fmt.Errorf("commit event log: %w", err)
	}
	s.marks = nil
	g.commit()
	return g, nil
}

// lookUp reads, for a whole group at once, what its requests are planned
// against: the log's rows under their dedup keys, and the open starts their
// events may pair with. Those are read by pair key (an event pairs with the
// open start of its name and labels), and by name only for the stops that
// may fall back to a start with fewer labels (findCovered): a stop whose
// own start is not open in the log, or one of several stops of a series in
// the group, since an earlier one may close it first. So a group's reads
// do not grow with the open starts of other series that share its names.
func (g *groupWrite) lookUp(group []*request) error {
	type orgKeys struct {
		dedup, pair []string
		// stops counts the group's stops by pair key.
		stops map[string]int
	}
	byOrg := map[string]*orgKeys{}
	var orgs []string
	g.keys = make([][]string, len(group))
	g.pairKeys = make([][]string, len(group))
	for i, req := range group {
		ok := byOrg[req.org]
		if ok == nil {
			ok = &orgKeys{stops: map[string]int{}}
			byOrg[req.org] = ok
			orgs = append(orgs, req.org)
		}
		g.keys[i] = make([]string, len(req.events))
		g.pairKeys[i] = make([]string, len(req.events))
		for j := range req.events {
			ev := &req.events[j]
			g.keys[i][j] = dedupKey(ev)
			ok.dedup = append(ok.dedup, g.keys[i][j])
			pk := pairLabels(ev.Name, ev.Labels).String()
			g.pairKeys[i][j] = pk
			if ev.State == StateStop {
				ok.stops[pk]++
			}
			ok.pair = append(ok.pair, pk)
		}
	}
	g.stored = map[string]state.EventRow{}
	for _, org := range orgs {
		ok := byOrg[org]
		stored, err := g.tx.FindDedups(org, ok.dedup)
		if err != nil {
			return err
		}
		for k, row := range stored {
			g.stored[org+"\xff"+k] = row
		}
		slices.Sort(ok.pair)
		if err := g.loadOpen(state.OpenQuery{Orgs: []string{org}, PairKeys: slices.Compact(ok.pair)}); err != nil {
			return err
		}
		var names []string
		for i, req := range group {
			if req.org != org {
				continue
			}
			for j := range req.events {
				ev := &req.events[j]
				pk := g.pairKeys[i][j]
				if ev.State == StateStop && (ok.stops[pk] > 1 || g.open.byKey[openKey(org, pk)] == nil) {
					names = append(names, ev.Name)
				}
			}
		}
		if len(names) == 0 {
			continue
		}
		slices.Sort(names)
		if err := g.loadOpen(state.OpenQuery{Orgs: []string{org}, Names: slices.Compact(names)}); err != nil {
			return err
		}
	}
	return nil
}

// loadOpen adds the open starts of the log that q selects to the group's
// open set.
func (g *groupWrite) loadOpen(q state.OpenQuery) error {
	rows, err := g.tx.OpenStarts(q)
	if err != nil {
		return err
	}
	for _, row := range rows {
		k := openKey(row.Org, row.PairKey)
		if g.open.byKey[k] != nil {
			continue
		}
		o, err := openFromRow(row)
		if err != nil {
			return err
		}
		g.open.put(k, o)
	}
	return nil
}

// abort rolls back the log transaction and every appender.
func (g *groupWrite) abort() {
	g.tx.Rollback()
	for _, p := range g.reqs {
		if p.app != nil {
			p.app.Rollback()
		}
	}
}

// planRequest decides what a request stores: step 1.
func (g *groupWrite) planRequest(req *request, keys, pairKeys []string) (*plannedRequest, error) {
	s := g.s
	p := &plannedRequest{req: req, results: make([]Result, len(req.events)), resultRows: make([]*state.EventRow, len(req.events)), local: map[string]*state.EventRow{}}
	g.reqs = append(g.reqs, p)
	for i := range req.events {
		ev := &req.events[i]
		gk := req.org + "\xff" + keys[i]
		if row := p.local[gk]; row != nil {
			p.duplicateOfNew(i, row)
			continue
		}
		if row := g.seen[gk]; row != nil {
			p.duplicateOfNew(i, row)
			continue
		}
		if row, found := g.stored[gk]; found {
			p.results[i] = Result{ID: row.ID, Timestamp: formatTime(row.TS), Duplicate: true, Seq: row.Seq}
			if !row.Committed && !g.replayed[row.Seq] && !s.marked(row.Seq) {
				// Its first write never reached the TSDB: do it now.
				g.replayed[row.Seq] = true
				p.replays = append(p.replays, row.Seq)
				p.samples = append(p.samples, s.rowSamples(row)...)
				if row.Open {
					p.rewind = append(p.rewind, row)
				}
			}
			continue
		}
		row, err := s.newRow(req.org, ev, keys[i], pairKeys[i], g.now)
		if err != nil {
			return nil, err
		}
		s.pair(g.ov, p, row, ev)
		p.samples = append(p.samples, s.pointSamples(ev)...)
		p.rows = append(p.rows, row)
		p.results[i] = Result{ID: row.ID, Timestamp: formatTime(row.TS)}
		p.resultRows[i] = row
		p.local[gk] = row
	}
	return p, nil
}

func (p *plannedRequest) duplicateOfNew(i int, row *state.EventRow) {
	p.results[i] = Result{ID: row.ID, Timestamp: formatTime(row.TS), Duplicate: true}
	p.resultRows[i] = row
}

// stageRequest appends a request's samples, uncommitted: step 2. A request
// whose samples are refused is undone and keeps its error.
func (g *groupWrite) stageRequest(p *plannedRequest) {
	s := g.s
	org, err := s.backend.Org(p.req.org)
	if err != nil {
		g.ov.undo(p.undo)
		p.err = ErrUnavailable
		s.logger.Error("open organization storage", "org", p.req.org, "err", err)
		return
	}
	// The first active samples of the starts it opened (the rest are the
	// ticks'); a start the request itself stopped has them already.
	for _, o := range p.opened {
		k := openKey(o.row.Org, o.row.PairKey)
		if g.ov.get(k) != o.ev {
			continue
		}
		smp, expired := s.activeUpTo(o.ev, g.now.UnixMilli())
		p.samples = append(p.samples, smp...)
		if expired {
			s.logger.Info("open event reached the maximum duration; its active series ends", "org", o.ev.org, "id", o.ev.id, "max_duration", s.opts.MaxDuration)
			o.row.Open = false
			g.ov.set(k, nil, &p.undo)
		}
	}
	p.app = org.AppenderV2(context.Background())
	err = appendAll(p.app, p.samples)
	if pr, ok := p.app.(storage.Preparer); ok && err == nil {
		// Samples stored before the log commits need no mark later.
		var stored bool
		if stored, err = pr.Prepare(); stored {
			for _, row := range p.rows {
				row.Committed = true
			}
		}
	}
	if err != nil {
		p.app.Rollback()
		p.app = nil
		g.ov.undo(p.undo)
		p.err = s.appendError(err)
		return
	}
	for k, row := range p.local {
		g.seen[k] = row
	}
}

// store writes the staged requests' rows into the log transaction.
func (g *groupWrite) store() error {
	var rows []*state.EventRow
	for _, p := range g.reqs {
		if p.err == nil {
			rows = append(rows, p.rows...)
		}
	}
	first, err := g.tx.AllocSeqs(len(rows))
	if err != nil {
		return err
	}
	for i, row := range rows {
		row.Seq = first + int64(i)
	}
	for _, p := range g.reqs {
		if p.err != nil {
			continue
		}
		for _, o := range p.opened {
			o.ev.seq = o.row.Seq
		}
		for _, pr := range p.pairs {
			pr.stop.PairSeq.Int64, pr.stop.PairSeq.Valid = pr.start.seq, true
			pr.stop.DurationMS.Int64, pr.stop.DurationMS.Valid = pr.durationMS, true
		}
		for i, row := range p.resultRows {
			if row != nil {
				p.results[i].Seq = row.Seq
			}
		}
	}
	// A start the group opened and closed is stored closed: it needs no
	// update, and is not a second open row of its series.
	newStarts := map[*openEvent]*state.EventRow{}
	for _, p := range g.reqs {
		if p.err != nil {
			continue
		}
		for _, o := range p.opened {
			o.row.ActiveNext.Int64, o.row.ActiveNext.Valid = o.ev.next, true
			newStarts[o.ev] = o.row
		}
	}
	var closeInLog []closedPair
	for _, p := range g.reqs {
		if p.err != nil {
			continue
		}
		for _, pr := range p.pairs {
			start := newStarts[pr.start]
			if start == nil {
				closeInLog = append(closeInLog, pr)
				continue
			}
			start.Open = false
			start.PairSeq.Int64, start.PairSeq.Valid = pr.stop.Seq, true
			start.DurationMS.Int64, start.DurationMS.Valid = pr.durationMS, true
		}
	}
	// The log's starts are closed first, so that a start of the same
	// series the group opens after the stop is the one open row.
	for _, pr := range closeInLog {
		if err := g.tx.ClosePair(pr.start.seq, pr.stop.Seq, pr.durationMS); err != nil {
			return err
		}
	}
	if err := g.tx.Insert(rows); err != nil {
		return err
	}
	for _, p := range g.reqs {
		if p.err != nil {
			continue
		}
		for _, row := range p.rewind {
			if err := g.tx.SetActive(state.WrittenTo(row.Seq, row.TS)); err != nil {
				return err
			}
		}
	}
	return nil
}

// commit makes the group's samples durable once its log transaction has
// committed: step 3.
func (g *groupWrite) commit() {
	s := g.s
	var committed, failed []int64
	replayed := false
	for _, p := range g.reqs {
		if p.err != nil {
			continue
		}
		if err := p.app.Commit(); err != nil {
			// Its rows stay uncommitted: a tick writes their samples
			// again, and the active series of its starts from the start.
			// Until then they are hidden: the request is refused.
			s.logger.Error("commit change event samples", "org", p.req.org, "err", err)
			p.err = ErrUnavailable
			for _, row := range p.rows {
				if !row.Committed {
					failed = append(failed, row.Seq)
				}
			}
			continue
		}
		for _, row := range p.rows {
			if !row.Committed {
				committed = append(committed, row.Seq)
			}
			s.received.WithLabelValues(row.State).Inc()
		}
		committed = append(committed, p.replays...)
		replayed = replayed || len(p.replays) > 0
		for _, r := range p.results {
			if r.Duplicate {
				s.duplicates.Inc()
			}
		}
	}
	// The mark needs no transaction of its own: it goes with the next
	// one (a group's, or a tick's). Until then a crash leaves the rows
	// unmarked, and their samples are written again.
	s.marks = append(s.marks, committed...)
	slices.Sort(s.marks)
	// Rows whose samples failed are hidden at once (a failure is rare), so
	// that the refused request lists nothing; a replayed row may be hidden,
	// so a retry that replays it is answered once it is listed.
	if len(failed) > 0 || replayed {
		if err := s.flushMarks(context.Background(), failed); err != nil {
			s.logger.Warn("mark change events committed", "err", err)
		}
	}
}

// reply answers every request of the group.
func (g *groupWrite) reply() {
	for _, p := range g.reqs {
		if p.err != nil {
			p.req.reply <- reply{err: p.err}
		} else {
			p.req.reply <- reply{results: p.results}
		}
	}
}

func formatTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func newID(now time.Time) string {
	b := make([]byte, 8)
	rand.Read(b)
	return fmt.Sprintf("%012x%s", now.UnixMilli(), hex.EncodeToString(b))
}

// dedupKey identifies an event for idempotency: its id, or its name, state,
// time and labels, separated by the unit separator (U+001F: PostgreSQL's
// text holds no NUL, and names carry neither).
func dedupKey(ev *Event) string {
	if ev.ID != "" {
		return "id:" + ev.ID
	}
	return fmt.Sprintf("ev:%s\x1f%s\x1f%d\x1f%s", ev.Name, ev.State, ev.Time, ev.Labels.String())
}

func appendAll(app promstorage.AppenderV2, samples []sample) error {
	for _, sm := range samples {
		if _, err := app.Append(0, sm.ls, 0, sm.t, sm.v, nil, nil, promstorage.AOptions{}); err != nil {
			return fmt.Errorf("series %s at %s: %w", sm.ls.String(), formatTime(sm.t), err)
		}
	}
	return nil
}

func (s *Service) appendError(err error) error {
	if errors.Is(err, promstorage.ErrDuplicateSampleForTimestamp) {
		return &ConflictError{msg: "an event conflicts with a stored one: " + err.Error() + "; send a different timestamp, or the same value"}
	}
	if errors.Is(err, storage.ErrSeriesLimit) {
		return &InputError{Index: -1, Problem: err.Error()}
	}
	var rej *storage.RejectedError
	if errors.As(err, &rej) {
		return &InputError{Index: -1, Problem: err.Error()}
	}
	if errors.Is(err, promstorage.ErrOutOfBounds) || errors.Is(err, promstorage.ErrTooOldSample) || errors.Is(err, promstorage.ErrOutOfOrderSample) {
		return &InputError{Index: -1, Field: "timestamp", Problem: "is too old for storage: " + err.Error(), Accepted: "times within the backfill window"}
	}
	s.logger.Error("append change event samples", "err", err)
	return ErrUnavailable
}

// newRow is the log row of a new event; its Seq is set when the group is
// stored.
func (s *Service) newRow(org string, ev *Event, key, pairKey string, received time.Time) (*state.EventRow, error) {
	id := ev.ID
	if id == "" {
		id = newID(received)
	}
	lbls, err := json.Marshal(ev.Labels)
	if err != nil {
		return nil, err
	}
	links := []byte("[]")
	if len(ev.Links) > 0 {
		if links, err = json.Marshal(ev.Links); err != nil {
			return nil, err
		}
	}
	return &state.EventRow{
		Org:        org,
		ID:         id,
		DedupKey:   key,
		Name:       ev.Name,
		State:      string(ev.State),
		TS:         ev.Time,
		Value:      ev.Value,
		Labels:     string(lbls),
		PairKey:    pairKey,
		Body:       string(ev.Raw),
		Metadata:   string(ev.Metadata),
		Links:      string(links),
		ReceivedAt: received.UnixMilli(),
	}, nil
}
