// Package observe declares the hooks through which the module reports its work to instrumentation:
// a tracer, given to a package's constructor with its WithTracer option, is told when a load, save,
// snapshot, append, read, group commit or projection batch starts and ends, with what an operator
// needs to know about it. The module implements no tracer itself: package
// github.com/eventsourcing-go/eventsourcing/otel (a Go module of its own, so that applications that do
// not use OpenTelemetry never depend on it) makes spans and metrics of them, and anyone can write
// another.
//
// # The hooks
//
// Each package takes the interface of the operations it performs: repository.WithTracer a
// [RepositoryTracer], eventstore.WithTracer an [EventStoreTracer], the SQLite and PostgreSQL
// recorders' WithTracer a [RecorderTracer], projection.WithTracer a [ProjectionTracer]. A type that
// implements them all is a [Tracer], and one value can be given to every package.
//
// An operation's Start method receives the operation's context and what is known of the operation
// when it starts, and returns the context that the operation carries on with, so that what the
// operation does (the event store's put inside a repository's save, the recorder's append inside
// that) is reported as part of it: a tracer that makes spans returns a context holding its span. The
// End method receives that context and the same record, completed: its results, and Err, nil on
// success. Start, as a time, is in the record for implementations that time the operation. Hooks run
// on the caller's goroutine, inside the operation: they must be quick, safe for concurrent use, and
// must not call back into what they observe.
//
// No hook ever receives event data, keys or stored state, only counts, sizes, identifiers and names.
// Without a tracer (the default) an operation costs what it cost before hooks existed: one comparison
// with nil, and no allocation.
//
// # One vocabulary for logs and telemetry
//
// What the module logs (through log/slog, see "Options and lifecycles" in the root package) uses the
// same keys as the attributes that the otel module gives its spans and metrics, so that a log line and
// a span about the same operation can be matched:
//
//	aggregate_type         the topic under which the aggregate type is registered
//	aggregate_id           an aggregate's ID (its originator ID)
//	aggregates             how many aggregates a save records together
//	version                an aggregate's version after the operation
//	snapshot_version       the version of the snapshot a load started from (0: none)
//	cached                 a load started from the repository's cache
//	events                 how many events (or notifications) the operation handled
//	bytes                  the size of their stored state, in bytes
//	notification_id        one notification's ID
//	first_notification_id  the first of a range of notifications
//	last_notification_id   the last of them
//	consumer               a projection's or process application's name (the tracking consumer)
//	upstream               the application whose notification log a consumer follows
//	prior                  a tracking mark before an operation
//	mark                   a tracking mark after it
//	lag                    notifications recorded upstream but not yet processed by a consumer
//	dialect                a recorder's SQL dialect: sqlite or postgres
//	schema                 a PostgreSQL recorder's schema ("" for the search_path's)
//	snapshots              the recorder is a snapshot store
//	topic                  an event's topic (its type's registered name)
//	error                  what went wrong
package observe

import (
	"context"
	"reflect"
	"time"

	"github.com/google/uuid"
)

// The dialects a recorder reports.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Tracer is every hook of the module: what an instrumentation implements to be given to every
// package.
type Tracer interface {
	RepositoryTracer
	EventStoreTracer
	RecorderTracer
	ProjectionTracer
}

// RepositoryTracer is told about a repository's loads, saves and snapshots.
type RepositoryTracer interface {
	LoadStart(ctx context.Context, l Load) context.Context
	LoadEnd(ctx context.Context, l Load)
	SaveStart(ctx context.Context, s Save) context.Context
	SaveEnd(ctx context.Context, s Save)
	SnapshotStart(ctx context.Context, s Snapshot) context.Context
	SnapshotEnd(ctx context.Context, s Snapshot)
}

// EventStoreTracer is told about an event store's puts and gets: the encoding (or decoding) of domain
// events together with the recorder's work.
type EventStoreTracer interface {
	PutStart(ctx context.Context, p Put) context.Context
	PutEnd(ctx context.Context, p Put)
	GetStart(ctx context.Context, g Get) context.Context
	GetEnd(ctx context.Context, g Get)
}

// RecorderTracer is told about a recorder's appends and reads, and (SQLite) its group commits.
type RecorderTracer interface {
	AppendStart(ctx context.Context, a Append) context.Context
	AppendEnd(ctx context.Context, a Append)
	SelectStart(ctx context.Context, s Select) context.Context
	SelectEnd(ctx context.Context, s Select)
	// GroupCommit is told about each transaction of a SQLite recorder's writer once it has ended: how
	// many callers' appends it committed together. ctx is that of one of them.
	GroupCommit(ctx context.Context, g GroupCommit)
}

// ProjectionTracer is told about a runner's batches (of a projection or a process application) and
// about every notification its subscription delivers.
type ProjectionTracer interface {
	BatchStart(ctx context.Context, b Batch) context.Context
	BatchEnd(ctx context.Context, b Batch)
	// Delivered is told about each notification the runner's subscription delivers, once decoded,
	// before it joins a batch. ctx is the runner's.
	Delivered(ctx context.Context, d Delivery)
}

// Load is a repository's Get (or GetAt) of one aggregate.
type Load struct {
	AggregateType string    // the topic of the repository's aggregate type
	AggregateID   uuid.UUID // the aggregate loaded
	UpTo          int64     // the version asked for (GetAt); 0: the latest
	Start         time.Time

	// Known at the end.
	Version         int64 // the version loaded
	SnapshotVersion int64 // the version of the snapshot the load started from; 0: none
	Cached          bool  // the load started from the repository's cache
	Events          int   // the events replayed (after the snapshot or the cached copy)
	Err             error
}

// Save is a repository's Save of one or more aggregates in one InsertEvents call.
type Save struct {
	AggregateType string    // the topic of the repository's aggregate type
	AggregateID   uuid.UUID // the first aggregate's ID
	Aggregates    int       // how many aggregates are saved together
	Events        int       // their pending events
	Start         time.Time

	// Known at the end.
	Version                                 int64 // the first aggregate's version after the save
	FirstNotificationID, LastNotificationID int64 // the notifications recorded (0 when none)
	Err                                     error // wraps eventsourcing.ErrConflict on a concurrent change
}

// Snapshot is a repository's taking of a snapshot (automatic, after a save, or TakeSnapshot).
type Snapshot struct {
	AggregateType string
	AggregateID   uuid.UUID
	Version       int64 // the version the snapshot holds
	Start         time.Time

	Err error // known at the end
}

// Put is an event store's Put: the encoding of domain events and their recording.
type Put struct {
	Events int
	Start  time.Time

	Err error // known at the end
}

// Get is an event store's Get: the recorder's read of one originator's events and their decoding.
type Get struct {
	OriginatorID uuid.UUID
	Start        time.Time

	Events int // known at the end
	Err    error
}

// Append is a recorder's InsertEvents.
type Append struct {
	Dialect   string // DialectSQLite or DialectPostgres
	Schema    string // the PostgreSQL schema; "" for the search_path's, and for SQLite
	Snapshots bool   // the recorder is a snapshot store
	Events    int
	Bytes     int    // the size of the events' stored state
	Consumer  string // the tracking record's consumer, when the append records one (WithTracking)
	Upstream  string // and its upstream
	Start     time.Time

	// Known at the end.
	FirstNotificationID, LastNotificationID int64 // 0 for a snapshot store, or no events
	Err                                     error // wraps eventsourcing.ErrConflict on a uniqueness violation
}

// Select is a recorder's read: SelectEvents of one originator, or SelectNotifications.
type Select struct {
	Dialect       string
	Schema        string
	Snapshots     bool      // the recorder is a snapshot store
	Notifications bool      // a page of the notification log; else events of OriginatorID
	OriginatorID  uuid.UUID // SelectEvents' originator
	Start         time.Time

	// Known at the end.
	Events                                  int
	Bytes                                   int
	FirstNotificationID, LastNotificationID int64 // a page of the notification log's range
	Err                                     error
}

// GroupCommit is one transaction of a SQLite recorder's writer (see package sqlite: group commit).
type GroupCommit struct {
	Dialect   string
	Snapshots bool
	Requests  int // the callers' appends (and tracking records) written in the transaction
	Events    int // their events
	Start     time.Time
	Err       error // the transaction failed: none of them was committed
}

// Batch is one transaction of a projection runner (or process application): a batch of upstream
// notifications applied together with the tracking of the last one. A failed batch is narrowed
// down, so a failure is followed by batches of parts of it.
type Batch struct {
	Consumer, Upstream                      string
	Events                                  int   // the notifications in the batch
	FirstNotificationID, LastNotificationID int64 // their range
	Prior                                   int64 // the consumer's mark the batch started after
	Start                                   time.Time

	// Known at the end.
	Timestamp time.Time // when the batch's last event was triggered (zero if it was not decoded)
	Head      int64     // the upstream's last notification when the batch ended (0: not known)
	Err       error     // wraps eventsourcing.ErrConflict when another instance moved the mark
}

// Lag returns how many upstream notifications were recorded and not yet processed when the batch
// ended (0 when Head is not known or the batch failed).
func (b Batch) Lag() int64 {
	if b.Err != nil || b.Head == 0 {
		return 0
	}
	return max(b.Head-b.LastNotificationID, 0)
}

// Delivery is a notification delivered to a runner by its subscription.
type Delivery struct {
	Consumer, Upstream string
	NotificationID     int64
	Timestamp          time.Time // when its event was triggered; zero when it could not be decoded
}

// Use returns t, or nil when t holds a nil pointer, map, function, channel or slice: a tracer that
// would panic at its first call. The constructors take their WithTracer option through it, so that a
// nil tracer of any kind means no tracer.
func Use[T any](t T) T {
	var zero T
	v := reflect.ValueOf(any(t))
	if !v.IsValid() {
		return zero
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface:
		if v.IsNil() {
			return zero
		}
	}
	return t
}
