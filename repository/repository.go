// Package repository loads aggregates by replaying their events and saves their new events atomically.
//
// A [Repository] is typed by the aggregate it serves, so Get returns *Account, not an interface to cast.
// It bounds replay with snapshots (taken every N events, or on demand) and can keep recently used
// aggregates in an LRU cache that is brought up to date with the events recorded since, on every Get.
package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/internal/lru"
)

// Aggregate is the constraint on a repository's type parameters: P is a pointer to T that implements
// aggregate.Root (T embeds aggregate.Base and *T has Apply). Write Repository[Account] and P is inferred.
type Aggregate[T any] interface {
	*T
	aggregate.Root
}

// Repository loads and saves aggregates of one type. It is safe for concurrent use; the aggregates it
// returns are not shared (each Get returns a fresh value), so callers may modify them freely.
type Repository[T any, P Aggregate[T]] struct {
	events    *eventstore.EventStore
	snapshots *eventstore.EventStore
	every     int64
	cache     *lru.Cache[uuid.UUID, cached[P]]
	logger    *slog.Logger
}

// Option configures a Repository. Options record their values; New checks them.
type Option func(*options)

type options struct {
	snapshots    *eventstore.EventStore
	snapshotsSet bool
	every        int
	cacheSize    int
	logger       *slog.Logger
}

// WithSnapshots stores snapshots in store (usually over a snapshot recorder, with a mapper in whose
// registry the aggregate type is registered) and takes one whenever a save crosses a multiple of every
// events. With every 0, snapshots are taken only by TakeSnapshot; New fails when every is negative or
// store is nil. The aggregate's state must survive a JSON round trip: exported fields only, or custom
// JSON methods.
func WithSnapshots(store *eventstore.EventStore, every int) Option {
	return func(o *options) { o.snapshots, o.snapshotsSet, o.every = store, true, every }
}

// WithCache keeps up to size recently used aggregates in memory (0, the default: no cache; New fails
// when size is negative). A cached aggregate is cloned and fast-forwarded with the events recorded
// after it on every Get, so the cache never returns stale state, even when other processes write; it
// saves the replay of the history, not the query. Nor does it return an aggregate of a subject
// forgotten through the data keys of the repository's mappers (mapper.WithDataKeys): Get then reads
// the store, and fails as a Get without a cache would. The clone is made by the aggregate's Clone() method
// when *T has one that returns *T, and by a JSON round trip otherwise.
func WithCache(size int) Option { return func(o *options) { o.cacheSize = size } }

// WithLogger reports failures to take automatic snapshots (which do not fail the save that caused
// them) to l. Without it, or with nil, they go to slog.Default() as it is when New is called.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// New returns a repository of aggregates of type T whose events are kept in events. It fails when
// events is nil or an option has an invalid value.
func New[T any, P Aggregate[T]](events *eventstore.EventStore, opts ...Option) (*Repository[T, P], error) {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	var zero T
	switch {
	case events == nil:
		return nil, fmt.Errorf("repository: new %T: nil event store", zero)
	case o.snapshotsSet && o.snapshots == nil:
		return nil, fmt.Errorf("repository: new %T: WithSnapshots: nil snapshot store", zero)
	case o.every < 0:
		return nil, fmt.Errorf("repository: new %T: WithSnapshots: every %d events: must not be negative", zero, o.every)
	case o.cacheSize < 0:
		return nil, fmt.Errorf("repository: new %T: WithCache(%d): must not be negative", zero, o.cacheSize)
	}
	r := &Repository[T, P]{events: events, snapshots: o.snapshots, every: int64(o.every), logger: o.logger}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	if o.cacheSize > 0 {
		r.cache = lru.New[uuid.UUID, cached[P]](o.cacheSize)
	}
	return r, nil
}

// Get returns the aggregate with the given ID at its latest version. It fails with an error wrapping
// es.ErrNotFound when no event of id is recorded. In a context with a UnitOfWork, it returns the
// unit's instance of the aggregate when it holds one, and adds what it loads.
func (r *Repository[T, P]) Get(ctx context.Context, id uuid.UUID) (P, error) {
	u := unitOfWork(ctx)
	if u != nil {
		if held, ok := u.get(id); ok {
			return r.held(id, held)
		}
	}
	a, err := r.get(ctx, id, 0)
	if err != nil || u == nil {
		return a, err
	}
	return r.held(id, u.addIfAbsent(a))
}

// held returns an aggregate of a unit of work as a P.
func (r *Repository[T, P]) held(id uuid.UUID, a aggregate.Root) (P, error) {
	p, ok := a.(P)
	if !ok {
		return nil, fmt.Errorf("repository: get %s: the unit of work holds it as a %T, not a %T", id, a, p)
	}
	return p, nil
}

// GetAt returns the aggregate as it was at version. It fails with an error wrapping es.ErrNotFound when
// the aggregate does not exist or has not reached version.
func (r *Repository[T, P]) GetAt(ctx context.Context, id uuid.UUID, version int64) (P, error) {
	if version < 1 {
		return nil, fmt.Errorf("repository: get %s at version %d: versions start at 1", id, version)
	}
	return r.get(ctx, id, version)
}

func (r *Repository[T, P]) get(ctx context.Context, id uuid.UUID, upTo int64) (P, error) {
	var a P
	fromCache := false
	forgets := r.forgets()
	if upTo == 0 && r.cache != nil {
		if cached, ok := r.cache.Get(id); ok && cached.forgets == forgets {
			c, err := r.clone(cached.a)
			if err != nil {
				return nil, fmt.Errorf("repository: get %s: clone cached aggregate: %w", id, err)
			}
			a, fromCache = c, true
		}
	}
	if a == nil && r.snapshots != nil {
		snap, err := r.latestSnapshot(ctx, id, upTo)
		if err != nil {
			return nil, err
		}
		a = snap
	}
	if a == nil {
		a = P(new(T))
	}
	events, err := r.events.Get(ctx, id, es.EventQuery{After: a.AggregateBase().Version, UpTo: upTo})
	if err != nil {
		return nil, fmt.Errorf("repository: get %s: %w", id, err)
	}
	if a.AggregateBase().Version == 0 && len(events) == 0 {
		return nil, fmt.Errorf("repository: get %s: %w", id, es.ErrNotFound)
	}
	if err := aggregate.Replay(a, events...); err != nil {
		return nil, fmt.Errorf("repository: get %s: %w", id, err)
	}
	if upTo > 0 && a.AggregateBase().Version != upTo {
		return nil, fmt.Errorf("repository: get %s at version %d: latest version is %d: %w",
			id, upTo, a.AggregateBase().Version, es.ErrNotFound)
	}
	// A cache hit with nothing new leaves the cached copy as it is: no second clone.
	if upTo == 0 && r.cache != nil && (!fromCache || len(events) > 0) {
		r.remember(a, forgets)
	}
	return a, nil
}

func (r *Repository[T, P]) latestSnapshot(ctx context.Context, id uuid.UUID, upTo int64) (P, error) {
	snaps, err := r.snapshots.Get(ctx, id, es.EventQuery{UpTo: upTo, Desc: true, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("repository: get %s: snapshot: %w", id, err)
	}
	if len(snaps) == 0 {
		return nil, nil
	}
	s := snaps[0]
	state, ok := s.Data.(T)
	if !ok {
		return nil, fmt.Errorf("repository: get %s: snapshot at version %d holds %T, not %T",
			id, s.OriginatorVersion, s.Data, state)
	}
	a := P(&state)
	b := a.AggregateBase()
	if b.ID != id || b.Version != s.OriginatorVersion {
		return nil, fmt.Errorf("repository: get %s: snapshot at version %d describes aggregate %s version %d",
			id, s.OriginatorVersion, b.ID, b.Version)
	}
	b.Collect() // a snapshot carries no pending events; make sure none leak in through a custom decoder
	return a, nil
}

// Save records the pending events of all aggs in one InsertEvents call: all of them or none. When
// another writer has recorded any of those versions first, it fails with an error wrapping
// es.ErrConflict, records nothing and leaves the pending events in place; reload and retry the command.
// On success the pending events are collected and, with a snapshot policy, snapshots are taken of the
// aggregates that crossed a multiple of the policy's interval.
func (r *Repository[T, P]) Save(ctx context.Context, aggs ...P) error {
	roots := make([]aggregate.Root, len(aggs))
	for i, a := range aggs {
		if a == nil {
			return fmt.Errorf("repository: save: aggregate %d is nil", i)
		}
		roots[i] = a
	}
	forgets := r.forgets()
	saved, _, err := save(ctx, r.events, roots)
	if err != nil {
		return err
	}
	for i, a := range aggs {
		v := a.AggregateBase().Version
		before := v - int64(saved[i])
		if r.snapshots != nil && r.every > 0 && v/r.every > before/r.every {
			if err := r.putSnapshot(ctx, a); err != nil {
				r.logger.WarnContext(ctx, "repository: automatic snapshot failed; loads replay more events until the next one",
					"aggregate", a.AggregateBase().ID, "version", v, "error", err)
			}
		}
		if r.cache != nil {
			r.remember(a, forgets)
		}
	}
	return nil
}

// SaveAll records the pending events of aggregates of any types in one InsertEvents call on store, so
// that a change spanning several aggregates (a transfer between two accounts) is atomic. Options such as
// es.WithTracking are passed to the recorder, so a process application records its new events and the
// upstream notification it processed together. It returns the notification IDs of the events. On error
// nothing is recorded and the pending events stay in place.
func SaveAll(ctx context.Context, store *eventstore.EventStore, aggs []aggregate.Root, opts ...es.InsertOption) ([]int64, error) {
	_, ids, err := save(ctx, store, aggs, opts...)
	return ids, err
}

// save records the pending events of aggs and collects them; it returns how many each aggregate had.
func save(ctx context.Context, store *eventstore.EventStore, aggs []aggregate.Root, opts ...es.InsertOption) ([]int, []int64, error) {
	counts := make([]int, len(aggs))
	var events []aggregate.Event
	for i, a := range aggs {
		if a == nil {
			return nil, nil, fmt.Errorf("repository: save: aggregate %d is nil", i)
		}
		p := a.AggregateBase().Pending()
		counts[i] = len(p)
		if events == nil {
			events = p // the usual single aggregate: no second copy
		} else {
			events = append(events, p...)
		}
	}
	if len(events) == 0 && es.ApplyInsertOptions(opts...).Tracking == nil {
		return counts, nil, nil
	}
	ids, err := store.Put(ctx, events, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("repository: save: %w", err)
	}
	for _, a := range aggs {
		a.AggregateBase().Collect()
	}
	return counts, ids, nil
}

// TakeSnapshot stores a snapshot of aggregate id at version (0: the latest), so that later loads replay
// only the events after it. Taking a snapshot that exists already is not an error.
func (r *Repository[T, P]) TakeSnapshot(ctx context.Context, id uuid.UUID, version int64) error {
	if r.snapshots == nil {
		return errors.New("repository: take snapshot: the repository has no snapshot store (WithSnapshots)")
	}
	a, err := r.get(ctx, id, version)
	if err != nil {
		return fmt.Errorf("repository: take snapshot: %w", err)
	}
	return r.putSnapshot(ctx, a)
}

func (r *Repository[T, P]) putSnapshot(ctx context.Context, a P) error {
	b := a.AggregateBase()
	snap := aggregate.Event{OriginatorID: b.ID, OriginatorVersion: b.Version, Timestamp: b.ModifiedOn, Data: *a}
	if _, err := r.snapshots.Put(ctx, []aggregate.Event{snap}); err != nil {
		if errors.Is(err, es.ErrConflict) {
			return nil // the same state is stored already
		}
		return fmt.Errorf("repository: snapshot %s at version %d: %w", b.ID, b.Version, err)
	}
	return nil
}

// cached is an aggregate in the cache, with the mappers' count of forgotten subjects when it was
// decoded: once the count changes, the aggregate may be data of a forgotten subject, and it is read
// from the store again (where its data keys are gone).
type cached[P any] struct {
	a       P
	forgets uint64
}

// forgets returns the mappers' count of subjects forgotten in this process.
func (r *Repository[T, P]) forgets() uint64 {
	n := r.events.Mapper().Forgets()
	if r.snapshots != nil {
		n += r.snapshots.Mapper().Forgets()
	}
	return n
}

// remember caches a copy of a, so that the caller's later changes cannot reach the cache.
func (r *Repository[T, P]) remember(a P, forgets uint64) {
	c, err := r.clone(a)
	if err != nil {
		r.cache.Remove(a.AggregateBase().ID)
		return
	}
	r.cache.Put(a.AggregateBase().ID, cached[P]{a: c, forgets: forgets})
}

func (r *Repository[T, P]) clone(a P) (P, error) {
	if c, ok := any(a).(interface{ Clone() P }); ok {
		return c.Clone(), nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	c := P(new(T))
	if err := json.Unmarshal(b, c); err != nil {
		return nil, err
	}
	return c, nil
}
