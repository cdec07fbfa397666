package postgres

import (
	"database/sql"
	"fmt"
	"math"
	"slices"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// eventBounds turns an EventQuery into the queries' parameters: bounds that exclude nothing where the
// query has none.
func eventBounds(q es.EventQuery) (upTo int64, limit sql.NullInt32, err error) {
	upTo = q.UpTo
	if upTo == 0 {
		upTo = math.MaxInt64
	}
	switch {
	case q.Limit < 0:
		return 0, limit, fmt.Errorf("negative limit %d", q.Limit)
	case q.Limit > 0:
		limit = sql.NullInt32{Int32: int32(min(q.Limit, math.MaxInt32)), Valid: true}
	}
	return upTo, limit, nil
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

// notificationRow is the shape of every generated SelectNotifications-like row type.
type notificationRow = struct {
	NotificationID    int64
	OriginatorID      uuid.UUID
	OriginatorVersion int64
	Topic             string
	State             []byte
}

func notifications[R ~notificationRow](rows []R) []es.Notification {
	out := make([]es.Notification, len(rows))
	for i, row := range rows {
		r := notificationRow(row)
		out[i] = es.Notification{
			ID: r.NotificationID,
			StoredEvent: es.StoredEvent{
				OriginatorID:      r.OriginatorID,
				OriginatorVersion: r.OriginatorVersion,
				Topic:             r.Topic,
				State:             r.State,
			},
		}
	}
	return out
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
