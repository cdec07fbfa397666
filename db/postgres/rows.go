package postgres

import (
	"context"
	"database/sql"
	"math"
	"slices"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
)

// eventBounds turns an EventQuery into the queries' parameters: bounds that exclude nothing where the
// query has none.
func eventBounds(q es.EventQuery) (upTo int64, limit sql.NullInt32, err error) {
	upTo = q.UpTo
	if upTo == 0 {
		upTo = math.MaxInt64
	}
	if err := recorder.CheckEventQuery(q); err != nil {
		return 0, limit, err
	}
	if q.Limit > 0 {
		limit = sql.NullInt32{Int32: int32(min(q.Limit, math.MaxInt32)), Valid: true}
	}
	return upTo, limit, nil
}

// eventParams is the shape of the parameters of every generated SelectEvents-like query.
type eventParams = struct {
	OriginatorID uuid.UUID
	After        int64
	UpTo         int64
	Lim          sql.NullInt32
}

// selectEvents is the SelectEvents of both recorders, named op, over the ascending and the descending
// query of their table (the hand-scanned Query* of package dbsqlc).
func selectEvents[AP, DP ~eventParams](ctx context.Context, f recorder.Frame, op string, originatorID uuid.UUID, q es.EventQuery,
	asc func(context.Context, AP) (*sql.Rows, error), desc func(context.Context, DP) (*sql.Rows, error)) ([]es.StoredEvent, error) {
	return f.SelectEvents(ctx, op, originatorID, func(ctx context.Context) ([]es.StoredEvent, error) {
		upTo, limit, err := eventBounds(q)
		if err != nil {
			return nil, err
		}
		p := eventParams{OriginatorID: originatorID, After: q.After, UpTo: upTo, Lim: limit}
		var rows *sql.Rows
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
}

// scanEvents scans the rows of the events or snapshots of originator id (the columns of SelectEvents:
// version, topic, state), of a query of at most limit rows (invalid: no limit), into one slice. The
// slice doubles as it fills, but never beyond the limit: a page of events is often much shorter than
// its limit (most aggregates have few events), unlike a page of the notification log. It closes rows.
func scanEvents(rows *sql.Rows, id uuid.UUID, limit sql.NullInt32) ([]es.StoredEvent, error) {
	defer rows.Close()
	most := math.MaxInt
	if limit.Valid {
		most = int(limit.Int32)
	}
	events := make([]es.StoredEvent, 0, min(most, pageStart))
	for rows.Next() {
		if len(events) == cap(events) {
			events = slices.Grow(events, max(min(len(events), most-len(events)), 1))
		}
		events = append(events, es.StoredEvent{OriginatorID: id})
		e := &events[len(events)-1] // scanned in place: a row of its own would escape to the heap
		if err := rows.Scan(&e.OriginatorVersion, &e.Topic, &e.State); err != nil {
			return nil, err
		}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return events, nil
}

// A page's slice starts small, since a caught-up reader's pages are mostly empty, and is sized for the
// whole page once its first rows fill it, rather than grown row by row.
const (
	pageStart = 16
	pageMost  = 4096 // the most a page's slice is sized for at once; beyond, it grows as it fills
)

// scanPage scans a page of the notification log, up to the first row whose state is NULL (a row that
// the xid ordering holds back: see the query SelectNotificationsXID), and reports whether there was
// one. It closes rows.
func scanPage(rows *sql.Rows, limit int32) (ns []es.Notification, heldBack bool, err error) {
	defer rows.Close()
	ns = make([]es.Notification, 0, min(int(limit), pageStart))
	for rows.Next() {
		if len(ns) == pageStart {
			ns = slices.Grow(ns, min(int(limit), pageMost)-len(ns))
		}
		var n es.Notification
		if err := rows.Scan(&n.ID, &n.OriginatorID, &n.OriginatorVersion, &n.Topic, &n.State); err != nil {
			return nil, false, err
		}
		if n.State == nil {
			heldBack = true
			break
		}
		ns = append(ns, n)
	}
	if err := rows.Close(); err != nil {
		return nil, false, err
	}
	return ns, heldBack, rows.Err()
}
