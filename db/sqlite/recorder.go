package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/internal/dbsqlc"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

var (
	_ es.ProcessRecorder = (*ProcessRecorder)(nil)
	_ io.Closer          = (*ProcessRecorder)(nil)
	_ io.Closer          = (*SnapshotRecorder)(nil)
)

// ProcessRecorder records an application's events in the events table of a SQLite database, keeps its
// notification log (the events table's notification_id column) and the tracking records of the upstream
// notifications it has processed. It is the SQLite recorder of an application and of a process
// application.
//
// Writes go through one connection that the recorder keeps, with group commit; reads go through the
// pool (see the package documentation).
//
// A ProcessRecorder is safe for concurrent use. Close it before closing the *sql.DB: database/sql does
// not close a connection that is in use, so the writer's connection would stay open (and writable)
// until Close. A *sql.DB from ncruces.Open tells its recorders when it is closed: their writes then fail with
// database/sql's "database is closed", like their reads.
type ProcessRecorder struct {
	base
	notify recorder.Broadcast
}

// base is what the recorders share: the read side, the writer, the configuration and the life.
type base struct {
	reads *stmtCache
	q     *dbsqlc.Queries // reads, through the pool
	w     *writer
	cfg   config
	trace recorder.Tracing
	life  recorder.Life
}

// open is the constructors' common work: prepare, check with probe (each of its queries retried
// while a shared-cache lock is in the way) that the recorder's tables answer, and start the writer
// with insert, which calls onCommit after each commit (nil: nothing).
func (b *base) open(ctx context.Context, op string, db *sql.DB, opts []Option, snapshots bool, insert insertFunc, onCommit func(),
	probe ...func(ctx context.Context, q *dbsqlc.Queries) error) error {
	cfg, reads, err := prepare(ctx, op, db, opts)
	if err != nil {
		return err
	}
	b.reads, b.q, b.cfg, b.trace = reads, dbsqlc.New(reads), cfg, cfg.tracing(snapshots)
	for _, p := range probe {
		if _, err := whileLocked(ctx, cfg.busyTimeout, func() (struct{}, error) { return struct{}{}, p(ctx, b.q) }); err != nil {
			reads.close()
			return opError(op, err)
		}
	}
	if b.w, err = newWriter(ctx, db, cfg, b.trace, insert, onCommit); err != nil {
		reads.close()
		return opError(op, err)
	}
	return nil
}

// close ends the recorder once: it stops the writer and closes the read side.
func (b *base) close() {
	if b.life.Close() {
		b.w.close()
		b.reads.close()
	}
}

// frame is the frame of the recorders' methods (see recorder.Frame).
func (b *base) frame() recorder.Frame {
	return recorder.Frame{Life: &b.life, Tracing: b.trace, OpError: opError}
}

// NewProcessRecorder returns a recorder on db, which must have been migrated with
// schema.Migrate(ctx, db, schema.SQLite): a missing table is reported here, as an error wrapping
// [schema.ErrNotMigrated], rather than at the first write.
//
// The recorder keeps one connection of db's pool for writing until Close, sets its busy timeout and
// synchronous setting ([WithBusyTimeout], [WithSynchronous]) and switches a file database to WAL mode
// (it stays in WAL mode; a file opened read-only is read in the mode it has). db must allow at least
// two open connections: one for the writer, the others for reads.
func NewProcessRecorder(ctx context.Context, db *sql.DB, opts ...Option) (*ProcessRecorder, error) {
	r := new(ProcessRecorder)
	err := r.open(ctx, "new process recorder", db, opts, false, insertEvents, r.notify.Notify,
		func(ctx context.Context, q *dbsqlc.Queries) error {
			_, err := q.MaxNotificationID(ctx)
			return err
		},
		func(ctx context.Context, q *dbsqlc.Queries) error {
			_, err := q.MaxTrackingID(ctx, dbsqlc.MaxTrackingIDParams{})
			return err
		})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// prepare is what both constructors do first: check db and the options, check that db is a SQLite
// database (a question SQLite answers in the process, at no cost; another dialect's database could
// answer the recorder's first queries and fail later with a syntax error), and make the read side's
// statement cache.
func prepare(ctx context.Context, op string, db *sql.DB, opts []Option) (config, *stmtCache, error) {
	if db == nil {
		return config{}, nil, fmt.Errorf("sqlite: %s: nil *sql.DB", op)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return config{}, nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if err := checkPool(db); err != nil {
		return config{}, nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if err := schema.CheckDialect(ctx, db, schema.SQLite); err != nil {
		return config{}, nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return cfg, newStmtCache(db), nil
}

// checkPool refuses a pool of one connection: the writer would hold it and every read would wait for
// it forever.
func checkPool(db *sql.DB) error {
	if n := db.Stats().MaxOpenConnections; n == 1 {
		return errors.New("the pool allows one open connection; the recorder keeps one for writing and reads through others: allow at least two (db.SetMaxOpenConns)")
	}
	return nil
}

// Close stops the writer goroutine after the transaction in progress, fails writes still queued with
// [es.ErrClosed], ends waiting subscriptions with ErrClosed, and gives the writer connection back to the
// pool with its pragmas restored. It does not close db. Calling it again does nothing.
func (r *ProcessRecorder) Close() error {
	r.close()
	return nil
}

// check returns es.ErrClosed after Close, else ctx's error: what every write checks first.
func (r *ProcessRecorder) check(ctx context.Context) error {
	if err := r.life.Err(); err != nil {
		return err
	}
	return ctx.Err()
}

// InsertEvents records events atomically and returns their notification IDs in input order. A version
// recorded already for its originator, or appearing twice in events, fails the call with an error
// wrapping [es.ErrConflict] and records nothing; so does a tracking record (see
// [es.WithTracking]) whose ID is not above the application's mark. Events with the nil
// originator ID or a version below 1 are refused (an error that does not wrap ErrConflict), as every
// recorder of the module does.
//
// If ctx ends before the batch is written, nothing is written and the error wraps ctx's error. Once it
// is written, InsertEvents waits for the commit and reports its outcome.
func (r *ProcessRecorder) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	return r.trace.Append(ctx, events, opts, func(ctx context.Context) ([]int64, error) { return r.insertEvents(ctx, events, opts) })
}

func (r *ProcessRecorder) insertEvents(ctx context.Context, events []es.StoredEvent, opts []es.InsertOption) ([]int64, error) {
	const op = "insert events"
	if err := r.check(ctx); err != nil {
		return nil, opError(op, err)
	}
	o := es.ApplyInsertOptions(opts...)
	if err := recorder.ValidateEvents(events); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if len(events) == 0 && o.Tracking == nil {
		return []int64{}, nil
	}
	if t := o.Tracking; t != nil {
		if err := recorder.ValidateTracking(*t); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", op, err)
		}
	}
	req := newRequest(ctx, events, o.Tracking)
	if err := r.w.submit(ctx, req); err != nil {
		return nil, opError(op, err)
	}
	if req.ids == nil {
		return []int64{}, nil
	}
	return req.ids, nil
}

// insertEvents is the ProcessRecorder's insertFunc.
func insertEvents(ctx context.Context, q *dbsqlc.Queries, r *request) error {
	ids := make([]int64, len(r.events))
	for i, e := range r.events {
		id, err := q.InsertEvent(ctx, dbsqlc.InsertEventParams{
			OriginatorID:      e.OriginatorID[:],
			OriginatorVersion: e.OriginatorVersion,
			Topic:             e.Topic,
			State:             e.State,
		})
		if err != nil {
			return eventError(i, e, err)
		}
		ids[i] = id
	}
	if t := r.tracking; t != nil {
		if err := recordTracking(ctx, q, t); err != nil {
			return err
		}
	}
	if r.write != nil {
		if err := r.write(ctx, q); err != nil {
			return err
		}
	}
	if r.run != nil {
		if err := recorder.RunTracked(r.ctx, r.run); err != nil {
			return err
		}
	}
	r.ids = ids
	return nil
}

// eventError names the event an insert failed on; a uniqueness violation wraps ErrConflict.
func eventError(i int, e es.StoredEvent, err error) error {
	if isUniqueViolation(err) {
		return fmt.Errorf("event %d: originator %s version %d: %w: %w", i, e.OriginatorID, e.OriginatorVersion, es.ErrConflict, err)
	}
	return fmt.Errorf("event %d: originator %s version %d: %w", i, e.OriginatorID, e.OriginatorVersion, err)
}

// SelectEvents returns the events of originatorID matching q (see [es.EventQuery]); an
// unknown originator gives an empty result. A negative q.Limit is an error.
func (r *ProcessRecorder) SelectEvents(ctx context.Context, originatorID uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	return selectEvents(ctx, r.frame(), r.cfg.busyTimeout, "select events", originatorID, q, r.q.QueryEvents, r.q.QueryEventsDesc)
}

// SelectNotifications returns a page of the notification log (see [es.NotificationQuery]).
// q.Limit < 1 is an error.
func (r *ProcessRecorder) SelectNotifications(ctx context.Context, q es.NotificationQuery) ([]es.Notification, error) {
	return r.frame().SelectNotifications(ctx, "select notifications", func(ctx context.Context) ([]es.Notification, error) {
		if err := recorder.CheckNotificationQuery(q); err != nil {
			return nil, err
		}
		return r.selectNotifications(ctx, q.After, q.UpTo, q.Limit, q.Topics)
	})
}

func (r *ProcessRecorder) selectNotifications(ctx context.Context, after, upTo int64, limit int, topics []string) ([]es.Notification, error) {
	if upTo == 0 {
		upTo = math.MaxInt64
	}
	return whileLocked(ctx, r.cfg.busyTimeout, func() ([]es.Notification, error) {
		var rows *sql.Rows
		var err error
		if len(topics) == 0 {
			rows, err = r.q.QueryNotifications(ctx, dbsqlc.SelectNotificationsParams{After: after, UpTo: upTo, Lim: int64(limit)})
		} else {
			rows, err = r.q.QueryNotificationsByTopics(ctx, dbsqlc.SelectNotificationsByTopicsParams{
				NotificationID: after, NotificationID_2: upTo, Topics: topics, Limit: int64(limit),
			})
		}
		if err != nil {
			return nil, err
		}
		return scanPage(rows, int64(limit))
	})
}

// MaxNotificationID returns the highest notification ID recorded, 0 on an empty store.
func (r *ProcessRecorder) MaxNotificationID(ctx context.Context) (int64, error) {
	return recorder.Read(r.frame(), "max notification ID", func() (int64, error) {
		return whileLocked(ctx, r.cfg.busyTimeout, func() (int64, error) { return r.q.MaxNotificationID(ctx) })
	})
}
