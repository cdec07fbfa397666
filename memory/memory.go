// Package memory provides in-memory recorders: an [AggregateRecorder] for snapshot stores and a
// [ProcessRecorder] that keeps events, the notification log and tracking records, and serves as the
// [es.ApplicationRecorder] of an application as well. They are meant for tests, examples and
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
// ([uuid.Nil]). Such errors do not wrap [es.ErrConflict]. A negative [es.EventQuery]
// Limit is an error too.
package memory

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
)

var (
	_ es.AggregateRecorder = (*AggregateRecorder)(nil)
	_ es.ProcessRecorder   = (*ProcessRecorder)(nil)
	_ io.Closer            = (*AggregateRecorder)(nil)
	_ io.Closer            = (*ProcessRecorder)(nil)
)

// AggregateRecorder stores events per originator without an application sequence: InsertEvents returns
// nil IDs. It is the recorder of a snapshot store. It is not a TrackingRecorder, so InsertEvents fails
// when given [es.WithTracking].
//
// The zero value is an empty recorder ready to use. An AggregateRecorder must not be copied after first
// use.
type AggregateRecorder struct {
	base
}

// base is what both recorders hold: the events, their lock and the recorder's life.
type base struct {
	mu    sync.RWMutex
	store store
	life  recorder.Life
}

// NewAggregateRecorder returns an empty AggregateRecorder.
func NewAggregateRecorder() *AggregateRecorder {
	return new(AggregateRecorder)
}

// Close closes the recorder: every later call fails with an error wrapping es.ErrClosed, and the
// subscriptions of a ProcessRecorder end with such an error. Calling it again does nothing.
func (r *base) Close() error {
	r.life.Close()
	return nil
}

// check returns the error of the operation op on a closed recorder or with an ended ctx: what every
// method checks first.
func (r *base) check(ctx context.Context, op string) error {
	err := r.life.Err()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("memory: %s: %w", op, err)
	}
	return nil
}

// InsertEvents records events atomically and returns nil IDs. A version that is recorded already for its
// originator, or that appears twice in events, fails the call with an error wrapping
// [es.ErrConflict] and records nothing.
func (r *AggregateRecorder) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	if err := r.check(ctx, "insert events"); err != nil {
		return nil, err
	}
	if err := recorder.RefuseTracking("an AggregateRecorder", opts); err != nil {
		return nil, fmt.Errorf("memory: insert events: %w", err)
	}
	if err := recorder.ValidateEvents(events); err != nil {
		return nil, fmt.Errorf("memory: insert events: %w", err)
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

// SelectEvents returns the events of originatorID matching q (see [es.EventQuery]). The
// result is a copy; an unknown originator gives an empty result.
func (r *base) SelectEvents(ctx context.Context, originatorID uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	if err := r.check(ctx, "select events"); err != nil {
		return nil, err
	}
	if err := recorder.CheckEventQuery(q); err != nil {
		return nil, fmt.Errorf("memory: select events: %w", err)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.store.selectEvents(originatorID, q), nil
}
