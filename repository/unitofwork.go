package repository

import (
	"context"
	"sync"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
)

// UnitOfWork is an identity map for the aggregates of one piece of work: while it is in a context
// (WithUnitOfWork), a repository's Get of an aggregate it holds returns that very instance, with the
// changes made to it since, instead of loading the aggregate again; and what Get loads, it adds. A
// process application runs the policy for a batch of events in one, so that the policy sees, for
// each event, what it did for the events before it in the batch, exactly as if they had been
// processed and saved one by one.
//
// A UnitOfWork is safe for concurrent use, but the aggregates it holds are shared by whoever gets them
// through it. The zero value is not usable; make one with NewUnitOfWork.
type UnitOfWork struct {
	mu   sync.Mutex
	aggs map[uuid.UUID]aggregate.Root
}

// NewUnitOfWork returns an empty UnitOfWork.
func NewUnitOfWork() *UnitOfWork { return &UnitOfWork{aggs: make(map[uuid.UUID]aggregate.Root)} }

// Add puts a into the unit of work under its ID, replacing what was there: a new aggregate that later
// Gets of its ID must find.
func (u *UnitOfWork) Add(a aggregate.Root) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.aggs[a.AggregateBase().ID] = a
}

func (u *UnitOfWork) get(id uuid.UUID) (aggregate.Root, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	a, ok := u.aggs[id]
	return a, ok
}

// addIfAbsent adds a unless the unit of work holds an aggregate of its ID already, and returns the
// one it holds.
func (u *UnitOfWork) addIfAbsent(a aggregate.Root) aggregate.Root {
	u.mu.Lock()
	defer u.mu.Unlock()
	if held, ok := u.aggs[a.AggregateBase().ID]; ok {
		return held
	}
	u.aggs[a.AggregateBase().ID] = a
	return a
}

type unitOfWorkKey struct{}

// WithUnitOfWork returns a context in which repositories get and add aggregates through u.
func WithUnitOfWork(ctx context.Context, u *UnitOfWork) context.Context {
	return context.WithValue(ctx, unitOfWorkKey{}, u)
}

func unitOfWork(ctx context.Context) *UnitOfWork {
	u, _ := ctx.Value(unitOfWorkKey{}).(*UnitOfWork)
	return u
}
