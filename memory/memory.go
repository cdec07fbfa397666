// Package memory provides in-memory recorders: an [AggregateRecorder] for snapshot stores and a
// [ProcessRecorder] that keeps events, the notification log and tracking records, and serves as the
// [eventsourcing.ApplicationRecorder] of an application as well. They are meant for tests, examples and
// applications that do not need durability, and they honour every rule of the recorder contract
// (package recordertest checks them).
//
// Both recorders are safe for concurrent use. They copy event state on the way in and on the way out, so
// a caller may reuse or modify the slices it passed or received. Events are kept in a log that grows in
// fixed chunks (recorded events never move) and, per originator, as positions in version order: reading
// events of an originator is a binary search and a copy of the result; reading the notification log
// starts at the position of its first ID, without a search.
//
// Beyond the contract, InsertEvents rejects events that no real application produces and that would
// behave differently on other recorders: an originator version below 1 and the nil originator ID
// ([uuid.Nil]). Such errors do not wrap [eventsourcing.ErrConflict]. A negative [eventsourcing.EventQuery]
// Limit is an error too.
package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/google/uuid"
)

var _ eventsourcing.AggregateRecorder = (*AggregateRecorder)(nil)

// AggregateRecorder stores events per originator without an application sequence: InsertEvents returns
// nil IDs. It is the recorder of a snapshot store. It is not a TrackingRecorder, so InsertEvents fails
// when given [eventsourcing.WithTracking].
//
// The zero value is an empty recorder ready to use. An AggregateRecorder must not be copied after first
// use.
type AggregateRecorder struct {
	mu    sync.RWMutex
	store store
}

// NewAggregateRecorder returns an empty AggregateRecorder.
func NewAggregateRecorder() *AggregateRecorder {
	return new(AggregateRecorder)
}

// InsertEvents records events atomically and returns nil IDs. A version that is recorded already for its
// originator, or that appears twice in events, fails the call with an error wrapping
// [eventsourcing.ErrConflict] and records nothing.
func (r *AggregateRecorder) InsertEvents(ctx context.Context, events []eventsourcing.StoredEvent, opts ...eventsourcing.InsertOption) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: insert events: %w", err)
	}
	if o := eventsourcing.ApplyInsertOptions(opts...); o.Tracking != nil {
		return nil, fmt.Errorf("memory: insert events: tracking (application %q, notification %d) given to an AggregateRecorder, which keeps no tracking records", o.Tracking.ApplicationName, o.Tracking.NotificationID)
	}
	if err := validate(events); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, nil
	}
	buf := concatStates(events)

	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.store.conflict(events); err != nil {
		return nil, err
	}
	r.store.add(events, buf, nil)
	return nil, nil
}

// SelectEvents returns the events of originatorID matching q (see [eventsourcing.EventQuery]). The
// result is a copy; an unknown originator gives an empty result.
func (r *AggregateRecorder) SelectEvents(ctx context.Context, originatorID uuid.UUID, q eventsourcing.EventQuery) ([]eventsourcing.StoredEvent, error) {
	if err := checkEventQuery(ctx, q); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.store.selectEvents(originatorID, q), nil
}

// checkEventQuery refuses a select whose context has ended or whose limit is negative.
func checkEventQuery(ctx context.Context, q eventsourcing.EventQuery) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: select events: %w", err)
	}
	if q.Limit < 0 {
		return fmt.Errorf("memory: select events: limit %d: must be >= 0 (0: all)", q.Limit)
	}
	return nil
}
