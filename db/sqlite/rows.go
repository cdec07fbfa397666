package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
)

// eventBounds turns an EventQuery into the queries' parameters: no upper bound is max int64, no limit
// is -1 (SQLite's "no limit").
func eventBounds(q es.EventQuery) (after, upTo, limit int64, err error) {
	if err := recorder.CheckEventQuery(q); err != nil {
		return 0, 0, 0, err
	}
	upTo = q.UpTo
	if upTo == 0 {
		upTo = math.MaxInt64
	}
	limit = int64(q.Limit)
	if limit == 0 {
		limit = -1
	}
	return q.After, upTo, limit, nil
}

// A page's slice starts small, since a caught-up reader's pages are mostly empty, and is sized for the
// whole page once its first rows fill it, rather than grown row by row.
const (
	pageStart = 16
	pageMost  = 4096 // the most a page's slice is sized for at once; beyond, it grows as it fills
)

// pageCap is the capacity of a page's slice for a query of limit rows (-1: no limit) that has
// returned n rows so far.
func pageCap(limit int64, n int) int {
	most := int64(pageStart)
	if n >= pageStart {
		most = pageMost
	}
	if limit >= 0 {
		most = min(most, limit)
	}
	return int(most)
}

// eventParams is the shape of the parameters of every generated SelectEvents-like query.
type eventParams = struct {
	OriginatorID []byte
	After        int64
	UpTo         int64
	Lim          int64
}

// selectEvents is the SelectEvents of both recorders, named op, over the ascending and the descending
// query of their table (the hand-scanned Query* of package dbsqlc), retried within busyTimeout (see
// whileLocked).
func selectEvents[AP, DP ~eventParams](ctx context.Context, f recorder.Frame, busyTimeout time.Duration, op string, originatorID uuid.UUID, q es.EventQuery,
	asc func(context.Context, AP) (*sql.Rows, error), desc func(context.Context, DP) (*sql.Rows, error)) ([]es.StoredEvent, error) {
	return f.SelectEvents(ctx, op, originatorID, func(ctx context.Context) ([]es.StoredEvent, error) {
		after, upTo, limit, err := eventBounds(q)
		if err != nil {
			return nil, err
		}
		p := eventParams{OriginatorID: originatorID[:], After: after, UpTo: upTo, Lim: limit}
		return whileLocked(ctx, busyTimeout, func() ([]es.StoredEvent, error) {
			var rows *sql.Rows
			var err error
			if q.Desc {
				rows, err = desc(ctx, DP(p))
			} else {
				rows, err = asc(ctx, AP(p))
			}
			if err != nil {
				return nil, err
			}
			return scanEvents(rows, originatorID, limit)
		})
	})
}

// scanEvents scans the rows of the events or snapshots of originator id (the columns of SelectEvents:
// version, topic, state), of a query of limit rows (-1: no limit), into one slice. It closes rows.
func scanEvents(rows *sql.Rows, id uuid.UUID, limit int64) ([]es.StoredEvent, error) {
	defer rows.Close()
	events := make([]es.StoredEvent, 0, pageCap(limit, 0))
	var s pageScanner
	s.states.limit = limit
	for rows.Next() {
		if len(events) == cap(events) {
			// Doubled, but never beyond the limit: a page of events is often much shorter than its
			// limit (most aggregates have few events), unlike a page of the notification log.
			more := len(events)
			if limit >= 0 {
				more = min(more, int(limit)-len(events))
			}
			events = slices.Grow(events, max(more, 1))
		}
		events = append(events, es.StoredEvent{OriginatorID: id})
		e := &events[len(events)-1] // scanned in place: a row of its own would escape to the heap
		if err := rows.Scan(&e.OriginatorVersion, &s.topic, &s.state); err != nil {
			return nil, err
		}
		e.Topic, e.State = s.topics.intern(s.topic), s.states.copy(s.state)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return events, nil
}

// scanPage scans a page of the notification log (the columns of SelectNotifications), of a query of
// limit rows, into one slice. It closes rows.
func scanPage(rows *sql.Rows, limit int64) ([]es.Notification, error) {
	defer rows.Close()
	ns := make([]es.Notification, 0, pageCap(limit, 0))
	var s pageScanner
	s.states.limit = limit
	var oid sql.RawBytes
	for rows.Next() {
		if len(ns) == pageStart {
			ns = slices.Grow(ns, pageCap(limit, pageStart)-len(ns))
		}
		ns = append(ns, es.Notification{})
		n := &ns[len(ns)-1] // scanned in place: a row of its own would escape to the heap
		if err := rows.Scan(&n.ID, &oid, &n.OriginatorVersion, &s.topic, &s.state); err != nil {
			return nil, err
		}
		id, err := originatorID(oid)
		if err != nil {
			return nil, fmt.Errorf("notification %d: %w", n.ID, err)
		}
		n.OriginatorID, n.Topic, n.State = id, s.topics.intern(s.topic), s.states.copy(s.state)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return ns, nil
}

// pageScanner holds what scanning a page's rows reuses from row to row: the driver's bytes of the
// topic and state (valid until the next row, so they are copied), the page's topics and the memory its
// states are copied into.
type pageScanner struct {
	topic, state sql.RawBytes
	topics       topicSet
	states       stateBuffer
}

// topicSet turns topic bytes into strings, one string per distinct topic of a page: the rows of a
// page mostly share a few topics, so most rows need no string of their own.
type topicSet struct {
	seen []string
}

// maxTopics bounds a topicSet: beyond it, each row's topic that is not among the first is a string
// of its own.
const maxTopics = 16

func (t *topicSet) intern(b []byte) string {
	for i, s := range t.seen {
		if s == string(b) { // compared without a conversion
			if i > 0 { // keep the last found first: runs of one topic find it at once
				t.seen[0], t.seen[i] = s, t.seen[0]
			}
			return s
		}
	}
	s := string(b)
	if len(t.seen) < maxTopics {
		t.seen = append(t.seen, s)
		t.seen[0], t.seen[len(t.seen)-1] = s, t.seen[0]
	}
	return s
}

// stateBuffer copies the states of a page's rows into a few large allocations rather than one per
// row. A nil state (NULL) stays nil and an empty one empty, as they were written. Each state is its
// own slice, with its capacity cut at its length, so that appending to one never writes over another;
// a state kept after the rest of its page is dropped keeps its block of memory alive.
//
// A block is sized for as many rows again as the page has read (at least pageStart), at the average
// size of their states, but never for more rows than the query's limit leaves: a page that fills its
// limit wastes little, and a short page at most about half of its last block.
type stateBuffer struct {
	free  []byte // what is left of the current block
	limit int64  // the query's limit (-1: none)
	rows  int64  // the rows copied so far
	bytes int64  // their states' bytes
}

// stateBlockMost bounds the rows' share of a block: a block is larger only to hold one large state.
const stateBlockMost = 1 << 20

func (b *stateBuffer) copy(state []byte) []byte {
	n := len(state)
	if n == 0 {
		if state == nil {
			return nil // NULL: a nil state
		}
		return []byte{}
	}
	b.rows++
	b.bytes += int64(n)
	if n > cap(b.free) {
		rows := max(b.rows, pageStart) // this row and as many again as were read before it
		if b.limit >= 0 {
			rows = min(rows, b.limit-b.rows+1)
		}
		avg := b.bytes / b.rows
		b.free = make([]byte, 0, max(int64(n), min(avg*rows, stateBlockMost)))
	}
	s := append(b.free, state...)
	b.free = s[n:n]
	return s[:n:n]
}

// originatorID converts a stored ID; the table's CHECK makes a wrong length impossible short of
// writing to the file by other means.
func originatorID(b []byte) (uuid.UUID, error) {
	var id uuid.UUID
	if len(b) != len(id) {
		return id, fmt.Errorf("originator ID of %d bytes, want %d", len(b), len(id))
	}
	copy(id[:], b)
	return id, nil
}
