// Package eventsourcing is the contract of the framework: the records that recorders store and the
// interfaces every recorder (memory, SQLite, PostgreSQL, or a third party's) implements.
//
// Everything else builds on these types: the mapper turns domain events into [StoredEvent] values, the
// eventstore records them through an [AggregateRecorder], the repository loads aggregates from them, and
// projections follow an [ApplicationRecorder]'s notification log. This package imports nothing else of
// the module, so a recorder written elsewhere depends only on it.
//
// The rules every recorder honours are stated on the interfaces below and checked by the conformance
// suite in package recordertest.
//
// # Options and lifecycles
//
// Every package of the module is configured the same way. Constructors take functional options that
// only record values; the constructor checks them and returns an error for an invalid one (panics are
// kept for programmer errors at registration time, such as registering an event type twice). Nil
// options are skipped. Every default is an exported constant of the package that applies it. What
// logs does so through the *slog.Logger of its WithLogger option, or slog.Default() as it is when the
// constructor runs, with routine messages at debug level and problems at warn or error, so that by
// default only problems show. Log records name what they are about with the keys listed in package
// observe (consumer, upstream, notification_id, aggregate_type, aggregate_id, dialect, schema …), the
// names of the attributes of the spans and metrics that the otel module makes. The packages whose
// operations can be traced (repository, eventstore, projection, the SQL recorders) take a WithTracer
// option with a hook of package observe; a nil tracer is no tracer, and without one tracing costs
// nothing.
//
// Every recorder is an io.Closer with the same semantics on every backend: Close stops the recorder's
// background work and returns nil (again when called twice); every later call fails with an error
// wrapping ErrClosed, and subscriptions waiting at Close end with such an error. Closing a SQL
// recorder does not close its *sql.DB.
package eventsourcing

import (
	"context"
	"errors"
	"iter"

	"github.com/google/uuid"
)

// StoredEvent is one event as a recorder stores it: the position in its originator's sequence, a topic
// naming its type, and state that is opaque to recorders (the mapper owns its format).
type StoredEvent struct {
	OriginatorID      uuid.UUID // the aggregate or stream the event belongs to
	OriginatorVersion int64     // 1, 2, 3 … per originator
	Topic             string    // names the event type; the mapper resolves it
	State             []byte    // opaque to recorders
}

// Notification is a stored event at its position in the application sequence, the totally ordered log
// of every event an application records.
type Notification struct {
	ID int64 // position in the application sequence, starting at 1
	StoredEvent
}

// Tracking records how far a consumer (a projection or a process application) has processed an
// upstream application's notification log. Recorded in the same transaction as the events (or read
// model changes) it accounts for, it makes processing exactly once.
//
// A tracking recorder keeps one mark per consumer and upstream, so any number of consumers share one
// recorder (one database) without taking each other's marks. Recording a mark is a compare-and-set:
// it succeeds only while the consumer's mark is still Prior, the mark its work started after. A
// transaction that covers several notifications therefore cannot commit over the work of another
// instance of the same consumer that started from the same mark: one of them fails with ErrConflict,
// and nothing it did is committed.
type Tracking struct {
	Consumer       string // the projection or process application that did the processing
	Upstream       string // the application whose notification log it follows
	NotificationID int64  // the last upstream notification processed: the new mark
	Prior          int64  // the mark this record replaces (0: nothing processed before)
}

// EventQuery selects events of one originator.
type EventQuery struct {
	After int64 // versions > After (0: from the first)
	UpTo  int64 // versions <= UpTo (0: no upper bound)
	Desc  bool  // newest first
	Limit int   // at most this many (0: all)
}

// NotificationQuery selects a page of the notification log.
type NotificationQuery struct {
	After  int64    // IDs > After
	UpTo   int64    // IDs <= UpTo (0: no upper bound)
	Limit  int      // at most this many; must be >= 1
	Topics []string // only these topics (empty: all)
}

// AggregateRecorder stores events per originator. On its own (without an application sequence) it is
// what snapshot stores use.
type AggregateRecorder interface {
	// InsertEvents records all events atomically: every one commits, or none does. A version that is
	// already recorded for its originator, or that appears twice in events, fails the whole call with an
	// error wrapping ErrConflict. It returns the notification IDs of the events in input order on
	// recorders that keep an application sequence, and nil on those that do not. With WithTracking, the
	// tracking record is inserted in the same transaction; events may then be empty.
	InsertEvents(ctx context.Context, events []StoredEvent, opts ...InsertOption) ([]int64, error)
	// SelectEvents returns the events of one originator matching q: ascending versions unless q.Desc,
	// q.After exclusive, q.UpTo inclusive, q.Limit applied after filtering and ordering. An unknown
	// originator gives an empty result, not an error.
	SelectEvents(ctx context.Context, originatorID uuid.UUID, q EventQuery) ([]StoredEvent, error)
}

// ApplicationRecorder is an AggregateRecorder that also keeps the application sequence: every recorded
// event gets a notification ID.
//
// Notification IDs are strictly increasing in input order, starting at 1 on a fresh store. Gaps are
// allowed only where a transaction failed. There are no late fills: once any reader has seen ID n, no ID
// below n ever appears. Two concurrent InsertEvents calls occupy disjoint, non-interleaved ranges.
type ApplicationRecorder interface {
	AggregateRecorder
	// SelectNotifications returns notifications in ascending ID order: q.After exclusive, q.UpTo
	// inclusive, the topic filter applied before q.Limit. q.Limit < 1 is an error.
	SelectNotifications(ctx context.Context, q NotificationQuery) ([]Notification, error)
	// MaxNotificationID returns the highest notification ID recorded, or 0 on an empty store.
	MaxNotificationID(ctx context.Context) (int64, error)
	// Subscribe yields every notification with ID > after (restricted to topics, when given) in ID
	// order, exactly once: first the history, then live as new events commit, until ctx ends. It
	// blocks while caught up and never skips. An error ends the sequence after it is yielded; the end of
	// ctx ends it without an error.
	Subscribe(ctx context.Context, after int64, topics ...string) iter.Seq2[Notification, error]
}

// TrackingRecorder keeps, per consumer and upstream application, the high-water mark of the processed
// notifications: gaps below a mark are never filled, so the mark is all there is to know.
type TrackingRecorder interface {
	// InsertTracking moves the mark of t.Consumer for t.Upstream from t.Prior to t.NotificationID. It
	// fails with an error wrapping ErrConflict, and changes nothing, when the mark is not t.Prior (no
	// mark counts as 0) or t.NotificationID is not above t.Prior.
	InsertTracking(ctx context.Context, t Tracking) error
	// MaxTrackingID returns the mark of consumer for upstream, 0 when nothing is tracked.
	MaxTrackingID(ctx context.Context, consumer, upstream string) (int64, error)
	// HasTrackingID reports whether consumer has processed upstream's notificationID: the mark is at or
	// above it.
	HasTrackingID(ctx context.Context, consumer, upstream string, notificationID int64) (bool, error)
	// TrackingMarks returns every mark, ordered by consumer and then upstream (Prior is 0).
	TrackingMarks(ctx context.Context) ([]Tracking, error)
	// DeleteTracking removes the mark of consumer for upstream, so that the consumer processes the
	// upstream from its start again (to rebuild a projection). Deleting a mark that does not exist is
	// not an error.
	DeleteTracking(ctx context.Context, consumer, upstream string) error
}

// ProcessRecorder is the recorder of a process application: its own events and notification log, plus
// the tracking of the upstream notifications it has processed.
type ProcessRecorder interface {
	ApplicationRecorder
	TrackingRecorder
}

// InsertOptions are the options of InsertEvents, gathered from InsertOption values.
type InsertOptions struct {
	// Tracking, when not nil, is recorded in the same transaction as the events.
	Tracking *Tracking
}

// InsertOption sets an option of InsertEvents.
type InsertOption func(*InsertOptions)

// WithTracking records t in the same transaction as the events, so that the events and the fact that
// the upstream notification was processed commit together or not at all. Recorders that are not
// TrackingRecorders fail the call.
func WithTracking(t Tracking) InsertOption {
	return func(o *InsertOptions) { o.Tracking = &t }
}

// ApplyInsertOptions gathers opts into InsertOptions, for recorder implementations.
func ApplyInsertOptions(opts ...InsertOption) InsertOptions {
	var o InsertOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

var (
	// ErrConflict is wrapped by every error caused by a uniqueness violation: an originator version that
	// is recorded already (a concurrent modification) or a tracking record whose prior mark is not the
	// recorded one.
	ErrConflict = errors.New("eventsourcing: conflict")
	// ErrNotFound is wrapped by the error returned for an aggregate that does not exist.
	ErrNotFound = errors.New("eventsourcing: not found")
	// ErrClosed is wrapped by the error of every call of a recorder after its Close (and ends the
	// subscriptions that were waiting when it was closed), whatever the backend.
	ErrClosed = errors.New("eventsourcing: recorder closed")
)
