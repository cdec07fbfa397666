package sqlite

import (
	"fmt"
	"math"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/internal/dbsqlc"
)

// eventRow is every row type sqlc generates for the events and snapshots queries: one type per query,
// all with the same fields, so one conversion serves them all.
type eventRow interface {
	dbsqlc.SelectEventsRow | dbsqlc.SelectEventsDescRow | dbsqlc.SelectSnapshotsRow | dbsqlc.SelectSnapshotsDescRow
}

func storedEvents[R eventRow](id uuid.UUID, rows []R) []es.StoredEvent {
	out := make([]es.StoredEvent, len(rows))
	for i, row := range rows {
		e := dbsqlc.SelectEventsRow(row)
		out[i] = es.StoredEvent{OriginatorID: id, OriginatorVersion: e.OriginatorVersion, Topic: e.Topic, State: e.State}
	}
	return out
}

// eventBounds turns an EventQuery into the queries' parameters: no upper bound is max int64, no limit
// is -1 (SQLite's "no limit").
func eventBounds(q es.EventQuery) (after, upTo, limit int64, err error) {
	if q.Limit < 0 {
		return 0, 0, 0, fmt.Errorf("limit %d: must be >= 0 (0: all)", q.Limit)
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

// notifications converts rows of the events table.
func notifications(rows []dbsqlc.Event) ([]es.Notification, error) {
	out := make([]es.Notification, len(rows))
	for i, row := range rows {
		id, err := originatorID(row.OriginatorID)
		if err != nil {
			return nil, fmt.Errorf("notification %d: %w", row.NotificationID, err)
		}
		out[i] = es.Notification{ID: row.NotificationID, StoredEvent: es.StoredEvent{
			OriginatorID: id, OriginatorVersion: row.OriginatorVersion, Topic: row.Topic, State: row.State,
		}}
	}
	return out, nil
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
