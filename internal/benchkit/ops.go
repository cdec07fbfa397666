package benchkit

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// The measured operations, each written once for both harnesses: cmd/esbench interleaves them
// (Interleave), the Go benchmarks run them (Run, Paired, RunWriters).

// AppendFunc appends events: a recorder's InsertEvents (see Inserts) or a baseline's Append.
type AppendFunc func(ctx context.Context, events []es.StoredEvent) ([]int64, error)

// Inserts is r's InsertEvents as an AppendFunc.
func Inserts(r es.AggregateRecorder) AppendFunc {
	return func(ctx context.Context, events []es.StoredEvent) ([]int64, error) {
		return r.InsertEvents(ctx, events)
	}
}

// AppendOp appends, per call, n deposits of a new originator (as a new aggregate's first save does),
// each with state; its units are events.
func AppendOp(name string, f AppendFunc, n int, state []byte) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		_, err := f(ctx, StoredEvents(NewID(), 1, n, state))
		return n, err
	}}
}

// GroupOp appends, per call, the next event of each of n aggregates of its own in one call of f: the
// transaction a perfect group commit of n writers, each saving one event at a time to an aggregate of
// its own, would make. Its units are events.
func GroupOp(name string, f AppendFunc, n int, state []byte) Op {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = NewID()
	}
	group := make([]es.StoredEvent, n)
	v := int64(0)
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		v++
		for i, id := range ids {
			group[i] = StoredEvents(id, v, 1, state)[0]
		}
		_, err := f(ctx, group)
		return n, err
	}}
}

// WalkOp walks, per call, the whole notification log in pages of page with next, and fails unless
// it reads total notifications; its units are notifications.
func WalkOp(name string, next PageFunc, page, total int) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		n, err := ReadLog(ctx, page, next)
		if err == nil && n != total {
			err = fmt.Errorf("read %d notifications, want %d", n, total)
		}
		return n, err
	}}
}

// LoadOp loads, per call, the account id of n events with get, and fails unless it has version n; its
// unit is the load.
func LoadOp(name string, get func(context.Context, uuid.UUID) (*Account, error), id uuid.UUID, n int) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		a, err := get(ctx, id)
		if err == nil && a.Version != int64(n) {
			err = fmt.Errorf("loaded version %d, want %d", a.Version, n)
		}
		return 1, err
	}}
}

// ReadFunc reads the events of originator id: a recorder's SelectEvents (see Selects) or a baseline's.
type ReadFunc func(ctx context.Context, id uuid.UUID) ([]es.StoredEvent, error)

// Selects is r's SelectEvents of all versions as a ReadFunc.
func Selects(r es.AggregateRecorder) ReadFunc {
	return func(ctx context.Context, id uuid.UUID) ([]es.StoredEvent, error) {
		return r.SelectEvents(ctx, id, es.EventQuery{})
	}
}

// SelectOp reads, per call, the events of originator id with read, and fails unless there are n; its
// units are events.
func SelectOp(name string, read ReadFunc, id uuid.UUID, n int) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		events, err := read(ctx, id)
		if err == nil && len(events) != n {
			err = fmt.Errorf("read %d events, want %d", len(events), n)
		}
		return len(events), err
	}}
}
