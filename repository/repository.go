// Package repository loads aggregates by replaying their events and saves their new events atomically.
//
// A [Repository] is typed by the aggregate it serves, so Get returns *Account, not an interface to cast.
// It bounds replay with snapshots (taken every N events, or on demand) and can keep recently used
// aggregates in an LRU cache that is brought up to date with the events recorded since, on every Get.
// [Repository.Update] is the usual command loop (load, run the command, save, and on a concurrent
// change do it again), and every save returns the notification IDs of what it recorded, for
// read-your-writes through a projection.
package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/internal/lru"
	"github.com/eventsourcing-go/eventsourcing/internal/option"
	"github.com/eventsourcing-go/eventsourcing/observe"
)

// Aggregate is the constraint on a repository's type parameters: P is a pointer to T that implements
// aggregate.Root (T embeds aggregate.Base and *T has Apply). Write Repository[Account] and P is inferred.
type Aggregate[T any] interface {
	*T
	aggregate.Root
}

// ErrWrongType is wrapped by the error of loading a stream that an aggregate of another type started:
// an ID of one type given to the repository of another.
var ErrWrongType = errors.New("repository: stream of another aggregate type")

// DefaultUpdateRetries is how many times Update and UpdateAll run a command again, on freshly loaded
// state, when its save meets a concurrent change (WithUpdateRetries).
const DefaultUpdateRetries = 5

// Repository loads and saves aggregates of one type. It is safe for concurrent use; the aggregates it
// returns are not shared (each Get returns a fresh value), so callers may modify them freely.
//
// The streams a repository starts name their aggregate type: the first event of each (version 1) carries
// the topic under which T is registered (aggregate.Event.OriginatorTopic), and Get refuses, with an error
// wrapping ErrWrongType, a stream whose first event names another type. Streams recorded without the
// name (before it existed) load as before.
type Repository[T any, P Aggregate[T]] struct {
	events    *eventstore.EventStore
	snapshots *eventstore.EventStore
	every     int64
	cache     *lru.Cache[uuid.UUID, cached[P]]
	logger    *slog.Logger
	topic     string // T's topic in the events' registry: the name its streams carry
	retries   int
	tracer    observe.RepositoryTracer // nil: none
}

// Option configures a Repository. Options record their values; New checks them.
type Option func(*options)

type options struct {
	snapshots    *eventstore.EventStore
	snapshotsSet bool
	every        int
	cacheSize    int
	logger       *slog.Logger
	retries      int
	retriesSet   bool
	tracer       observe.RepositoryTracer
}

// WithSnapshots stores snapshots in store (usually over a snapshot recorder, with a mapper in whose
// registry the aggregate type is registered; New fails otherwise) and takes one whenever a save crosses
// a multiple of every events. With every 0, snapshots are taken only by TakeSnapshot; New fails when
// every is negative or store is nil. The aggregate's state must survive a JSON round trip: exported
// fields only, or custom JSON methods.
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

// WithTracer tells t about the repository's loads, saves and snapshots (see package observe). Without
// it, or with nil, there is no tracer.
func WithTracer(t observe.RepositoryTracer) Option { return func(o *options) { o.tracer = t } }

// WithUpdateRetries sets how many times Update and UpdateAll run a command again when its save meets a
// concurrent change (DefaultUpdateRetries when not given; 0 never retries; New fails when n is
// negative).
func WithUpdateRetries(n int) Option { return func(o *options) { o.retries, o.retriesSet = n, true } }

// New returns a repository of aggregates of type T whose events are kept in events. T must be registered
// in the registry of events' mapper: its topic is the name that the streams the repository starts
// carry (and the topic of its snapshots). New fails when T is not registered there, nor, with
// WithSnapshots, in the snapshot store's, when events is nil, or when an option has an invalid value.
func New[T any, P Aggregate[T]](events *eventstore.EventStore, opts ...Option) (*Repository[T, P], error) {
	o := options{retries: DefaultUpdateRetries}
	option.Apply(&o, opts)
	var zero T
	switch {
	case events == nil:
		return nil, fmt.Errorf("repository: new %T: nil event store", zero)
	case events.Mapper() == nil:
		return nil, fmt.Errorf("repository: new %T: the event store has no mapper", zero)
	case o.snapshotsSet && o.snapshots == nil:
		return nil, fmt.Errorf("repository: new %T: WithSnapshots: nil snapshot store", zero)
	case o.snapshotsSet && o.snapshots.Mapper() == nil:
		return nil, fmt.Errorf("repository: new %T: WithSnapshots: the snapshot store has no mapper", zero)
	case o.every < 0:
		return nil, fmt.Errorf("repository: new %T: WithSnapshots: every %d events: must not be negative", zero, o.every)
	case o.cacheSize < 0:
		return nil, fmt.Errorf("repository: new %T: WithCache(%d): must not be negative", zero, o.cacheSize)
	case o.retries < 0:
		return nil, fmt.Errorf("repository: new %T: WithUpdateRetries(%d): must not be negative", zero, o.retries)
	}
	topic, err := events.Mapper().Registry().Topic(zero)
	if err != nil {
		return nil, fmt.Errorf("repository: new %T: the event store's mapper: %w: register the aggregate type too "+
			"(mapper.Register[%T]); its topic names the type of every stream the repository starts", zero, err, zero)
	}
	if o.snapshots != nil {
		if _, err := o.snapshots.Mapper().Registry().Topic(zero); err != nil {
			return nil, fmt.Errorf("repository: new %T: WithSnapshots: the snapshot store's mapper: %w: "+
				"register the aggregate type (mapper.Register[%T]) so that its snapshots can be stored", zero, err, zero)
		}
	}
	r := &Repository[T, P]{events: events, snapshots: o.snapshots, every: int64(o.every), logger: o.logger,
		topic: topic, retries: o.retries, tracer: observe.Use(o.tracer)}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	if o.cacheSize > 0 {
		r.cache = lru.New[uuid.UUID, cached[P]](o.cacheSize)
	}
	return r, nil
}

// Get returns the aggregate with the given ID at its latest version. It fails with an error wrapping
// es.ErrNotFound when no event of id is recorded, and with one wrapping ErrWrongType when the stream
// belongs to another aggregate type. The events are read and replayed page by page
// (eventstore.DefaultPageSize), so a long stream is never held in memory whole. In a context with a
// UnitOfWork, it returns the unit's instance of the aggregate when it holds one, and adds what it loads.
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

func (r *Repository[T, P]) get(ctx context.Context, id uuid.UUID, upTo int64) (_ P, err error) {
	var load observe.Load // what the tracer is told
	if r.tracer != nil {
		load = observe.Load{AggregateType: r.topic, AggregateID: id, UpTo: upTo, Start: time.Now()}
		ctx = r.tracer.LoadStart(ctx, load)
		defer func() { load.Err = err; r.tracer.LoadEnd(ctx, load) }()
	}
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
	replayed := 0
	for page, err := range r.events.Pages(ctx, id, a.AggregateBase().Version, upTo, eventstore.DefaultPageSize) {
		if err != nil {
			return nil, fmt.Errorf("repository: get %s: %w", id, err)
		}
		if page[0].OriginatorVersion == 1 {
			if err := r.checkType(id, page[0]); err != nil {
				return nil, err
			}
		}
		if err := aggregate.Replay(a, page...); err != nil {
			return nil, fmt.Errorf("repository: get %s: %w", id, err)
		}
		replayed += len(page)
	}
	if a.AggregateBase().Version == 0 {
		return nil, fmt.Errorf("repository: get %s: %w", id, es.ErrNotFound)
	}
	if upTo > 0 && a.AggregateBase().Version != upTo {
		return nil, fmt.Errorf("repository: get %s at version %d: latest version is %d: %w",
			id, upTo, a.AggregateBase().Version, es.ErrNotFound)
	}
	// A cache hit with nothing new leaves the cached copy as it is: no second clone.
	if upTo == 0 && r.cache != nil && (!fromCache || replayed > 0) {
		r.remember(a, forgets)
	}
	if r.tracer != nil {
		load.Version, load.Events, load.Cached = a.AggregateBase().Version, replayed, fromCache
		if !fromCache {
			load.SnapshotVersion = load.Version - int64(replayed)
		}
	}
	return a, nil
}

// checkType refuses the first event of a stream that names another aggregate type than T (under its
// current topic or an alias).
func (r *Repository[T, P]) checkType(id uuid.UUID, first aggregate.Event) error {
	name := first.OriginatorTopic
	if name == "" || name == r.topic {
		return nil
	}
	typ, known := r.events.Mapper().Registry().Type(name)
	if known && typ == reflect.TypeFor[T]() {
		return nil
	}
	other := fmt.Sprintf("an aggregate of topic %q", name)
	if known {
		other = fmt.Sprintf("%v (topic %q)", typ, name)
	}
	return fmt.Errorf("%w: get %s: the stream was started by %s; this repository loads %v (topic %q)",
		ErrWrongType, id, other, reflect.TypeFor[T](), r.topic)
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
		return nil, fmt.Errorf("repository: get %s: %w: the snapshot at version %d holds %T; this repository loads %T",
			id, ErrWrongType, s.OriginatorVersion, s.Data, state)
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

// Save records the pending events of all aggs in one InsertEvents call: all of them or none, and
// returns their notification IDs (aggregate by aggregate in the order given, each aggregate's events
// oldest first), for read-your-writes through a projection's Wait. When another writer has recorded any
// of those versions first, it fails with an error wrapping es.ErrConflict, records nothing and leaves
// the pending events in place; reload and retry the command (Update does that). An aggregate that
// cannot be saved (aggregate.Base.Err) fails the call before anything is recorded. On success the
// pending events are collected and, with a snapshot policy, snapshots are taken of the aggregates that
// crossed a multiple of the policy's interval.
func (r *Repository[T, P]) Save(ctx context.Context, aggs ...P) (ids []int64, err error) {
	if r.tracer != nil {
		s := r.saveStarts(aggs)
		ctx = r.tracer.SaveStart(ctx, s)
		defer func() { r.tracer.SaveEnd(ctx, r.saveEnded(s, aggs, ids, err)) }()
	}
	roots := make([]aggregate.Root, len(aggs))
	for i, a := range aggs {
		if a == nil {
			return nil, fmt.Errorf("repository: save: aggregate %d of %d is nil", i+1, len(aggs))
		}
		roots[i] = a
	}
	forgets := r.forgets()
	saved, ids, err := save(ctx, r.events, roots, func(aggregate.Root) (string, error) { return r.topic, nil })
	if err != nil {
		return nil, err
	}
	for i, a := range aggs {
		v := a.AggregateBase().Version
		before := v - int64(saved[i])
		if r.snapshots != nil && r.every > 0 && v/r.every > before/r.every {
			if err := r.putSnapshot(ctx, a); err != nil {
				r.logger.WarnContext(ctx, "repository: automatic snapshot failed; loads replay more events until the next one",
					"aggregate_type", r.topic, "aggregate_id", a.AggregateBase().ID, "version", v, "error", err)
			}
		}
		if r.cache != nil {
			r.remember(a, forgets)
		}
	}
	return ids, nil
}

// saveStarts is what the tracer is told when a save of aggs starts.
func (r *Repository[T, P]) saveStarts(aggs []P) observe.Save {
	s := observe.Save{AggregateType: r.topic, Aggregates: len(aggs), Start: time.Now()}
	for i, a := range aggs {
		if a != nil {
			if i == 0 {
				s.AggregateID = a.AggregateBase().ID
			}
			s.Events += len(a.AggregateBase().Pending())
		}
	}
	return s
}

// saveEnded completes s with the outcome of the save of aggs.
func (r *Repository[T, P]) saveEnded(s observe.Save, aggs []P, ids []int64, err error) observe.Save {
	if len(aggs) > 0 && aggs[0] != nil {
		s.Version = aggs[0].AggregateBase().Version
	}
	if n := len(ids); n > 0 {
		s.FirstNotificationID, s.LastNotificationID = ids[0], ids[n-1]
	}
	s.Err = err
	return s
}

// SaveAll records the pending events of aggregates of any types in one InsertEvents call on store, so
// that a change spanning several aggregates (a transfer between two accounts) is atomic. Options such as
// es.WithTracking are passed to the recorder, so a process application records its new events and the
// upstream notification it processed together. It returns the notification IDs of the events, as Save
// does. On error nothing is recorded and the pending events stay in place.
//
// An aggregate that starts a stream names its type in it, as Save does: its type must be registered in
// store's mapper, or SaveAll fails.
func SaveAll(ctx context.Context, store *eventstore.EventStore, aggs []aggregate.Root, opts ...es.InsertOption) ([]int64, error) {
	if store == nil || store.Mapper() == nil {
		return nil, errors.New("repository: save: nil event store, or one without a mapper")
	}
	_, ids, err := save(ctx, store, aggs, func(a aggregate.Root) (string, error) {
		topic, err := store.Mapper().Registry().Topic(a)
		if err != nil {
			return "", fmt.Errorf("%w: register the aggregate type too (mapper.Register); its topic names the type of the stream", err)
		}
		return topic, nil
	}, opts...)
	return ids, err
}

// save records the pending events of aggs and collects them; it returns how many each aggregate had,
// and their notification IDs. topicOf names the type of an aggregate whose stream starts here.
func save(ctx context.Context, store *eventstore.EventStore, aggs []aggregate.Root,
	topicOf func(aggregate.Root) (string, error), opts ...es.InsertOption) ([]int, []int64, error) {
	counts := make([]int, len(aggs))
	var events []aggregate.Event
	for i, a := range aggs {
		if a == nil || isNilPointer(a) {
			return nil, nil, fmt.Errorf("repository: save: aggregate %d of %d is nil (%T)", i+1, len(aggs), a)
		}
		b := a.AggregateBase()
		if err := b.Err(); err != nil {
			return nil, nil, fmt.Errorf("repository: save %T %s: %w", a, b.ID, err)
		}
		p := b.Pending()
		counts[i] = len(p)
		if len(p) > 0 && p[0].OriginatorVersion == 1 {
			topic, err := topicOf(a)
			if err != nil {
				return nil, nil, fmt.Errorf("repository: save %T %s: %w", a, b.ID, err)
			}
			p[0].OriginatorTopic = topic
		}
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
		return nil, nil, fmt.Errorf("repository: save %s: %w", describe(aggs), err)
	}
	for _, a := range aggs {
		a.AggregateBase().Collect()
	}
	return counts, ids, nil
}

// isNilPointer reports whether a holds a nil pointer: an interface that is not nil, but whose
// AggregateBase would dereference nil.
func isNilPointer(a aggregate.Root) bool {
	v := reflect.ValueOf(a)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// describe names the aggregates of a save for its error: type and ID, the first few of many.
func describe(aggs []aggregate.Root) string {
	const named = 3
	var sb strings.Builder
	if len(aggs) > 1 {
		fmt.Fprintf(&sb, "%d aggregates (", len(aggs))
	}
	for i, a := range aggs[:min(len(aggs), named)] {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%T %s", a, a.AggregateBase().ID)
	}
	if len(aggs) > named {
		fmt.Fprintf(&sb, ", and %d more", len(aggs)-named)
	}
	if len(aggs) > 1 {
		sb.WriteString(")")
	}
	return sb.String()
}

// Update loads aggregate id, runs command on it and saves the events the command triggered. When the
// save meets a concurrent change (es.ErrConflict), it loads the aggregate again and runs the command
// again, on the fresh state, up to the repository's retries (WithUpdateRetries); then it gives up with
// an error wrapping the conflict. An error of command is returned as it is (the same value, for
// errors.Is, errors.As and ==), and nothing is saved. It returns the notification IDs of the saved
// events, as Save does. command must have no effect besides the events it triggers, since it may run
// several times.
//
// Update is for aggregates that exist: one that does not fails with an error wrapping es.ErrNotFound.
// Create aggregates with Trigger and Save.
func (r *Repository[T, P]) Update(ctx context.Context, id uuid.UUID, command func(P) error) ([]int64, error) {
	if command == nil {
		return nil, fmt.Errorf("repository: update %s: nil command", id)
	}
	return r.UpdateAll(ctx, []uuid.UUID{id}, func(aggs []P) error { return command(aggs[0]) })
}

// UpdateAll is Update for a command on several aggregates, saved together (all of their events or
// none): aggs holds the aggregates of ids, in that order. An ID given twice is refused.
func (r *Repository[T, P]) UpdateAll(ctx context.Context, ids []uuid.UUID, command func(aggs []P) error) ([]int64, error) {
	if command == nil {
		return nil, errors.New("repository: update: nil command")
	}
	for i, id := range ids {
		if slices.Contains(ids[:i], id) {
			return nil, fmt.Errorf("repository: update: aggregate %s given twice", id)
		}
	}
	var err error
	for attempt := 0; attempt <= r.retries; attempt++ {
		aggs := make([]P, len(ids))
		for i, id := range ids {
			if aggs[i], err = r.Get(ctx, id); err != nil {
				return nil, err
			}
		}
		if err := command(aggs); err != nil {
			return nil, err
		}
		var notifications []int64
		notifications, err = r.Save(ctx, aggs...)
		if !errors.Is(err, es.ErrConflict) {
			return notifications, err
		}
	}
	return nil, fmt.Errorf("repository: update: gave up after %d attempts: %w", r.retries+1, err)
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

func (r *Repository[T, P]) putSnapshot(ctx context.Context, a P) (err error) {
	b := a.AggregateBase()
	if r.tracer != nil {
		s := observe.Snapshot{AggregateType: r.topic, AggregateID: b.ID, Version: b.Version, Start: time.Now()}
		ctx = r.tracer.SnapshotStart(ctx, s)
		defer func() { s.Err = err; r.tracer.SnapshotEnd(ctx, s) }()
	}
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
