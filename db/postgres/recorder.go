package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/dbsqlc"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
	"github.com/eventsourcing-go/eventsourcing/observe"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

var (
	_ es.ProcessRecorder = (*ProcessRecorder)(nil)
	_ io.Closer          = (*ProcessRecorder)(nil)
	_ io.Closer          = (*SnapshotRecorder)(nil)
)

// base is what the recorders share: the database, the generated queries over a qualifying DBTX, and
// the schema name for messages.
type base struct {
	life      *recorder.Life
	db        *sql.DB
	q         *dbsqlc.Queries
	qualifier *qualifier
	schema    string
	ids       idEncoding
	trace     recorder.Tracing
}

// newBase checks db and the options and connects: the constructors' common start.
func newBase(ctx context.Context, db *sql.DB, op string, opts []Option) (base, config, error) {
	if db == nil {
		return base{}, config{}, fmt.Errorf("postgres: %s: nil *sql.DB", op)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return base{}, config{}, fmt.Errorf("postgres: %s: %w", op, err)
	}
	qual := newQualifier(db, cfg.schema)
	b := base{life: new(recorder.Life), db: db, q: dbsqlc.New(qual), qualifier: qual, schema: cfg.schema, ids: idEncodingOf(db),
		trace: recorder.Tracing{Tracer: cfg.tracer, Dialect: observe.DialectPostgres, Schema: cfg.schema}}
	if err := db.PingContext(ctx); err != nil {
		return base{}, config{}, fmt.Errorf("postgres: %s: connect to the database: %w", op, err)
	}
	missing, err := b.q.MissingObjects(ctx)
	if err != nil {
		// Asked only now, to spare every constructor a round trip: a SQLite database fails here.
		if dErr := schema.CheckDialect(ctx, db, schema.Postgres); errors.Is(dErr, schema.ErrWrongDialect) {
			return base{}, config{}, fmt.Errorf("postgres: %s: %w", op, dErr)
		}
		return base{}, config{}, fmt.Errorf("postgres: %s: look up the schema's tables: %w", op, err)
	}
	if len(missing) > 0 {
		what := "lacks " + strings.Join(missing, ", ")
		if len(missing) == requiredObjects {
			what = "has none of the recorders' tables"
		}
		return base{}, config{}, fmt.Errorf("postgres: %s: %w: %s %s; run schema.Migrate(ctx, db, schema.Postgres%s) first",
			op, schema.ErrNotMigrated, b.describeSchema(), what, b.schemaOption())
	}
	return b, cfg, nil
}

// frame is the frame of the recorders' methods (see recorder.Frame).
func (b *base) frame() recorder.Frame {
	return recorder.Frame{Life: b.life, Tracing: b.trace, OpError: opError}
}

func (b *base) describeSchema() string {
	if b.schema == "" {
		return "the search_path's schema"
	}
	return fmt.Sprintf("schema %q", b.schema)
}

func (b *base) schemaOption() string {
	if b.schema == "" {
		return ""
	}
	return fmt.Sprintf(", schema.WithSchema(%q)", b.schema)
}

// requiredObjects is how many objects MissingObjects looks for (queries/postgres/setup.sql).
const requiredObjects = 12

// ProcessRecorder is the recorder of an application on PostgreSQL: its events, its notification log,
// and the tracking marks of the upstream notifications it has processed. It is safe for concurrent use
// by any number of goroutines and processes.
//
// An append is one round trip: one statement, which is its own transaction (see the package
// documentation). The notification log has no late fills under either [Ordering]. A recorder made
// [WithReadOnly] only reads, and can be opened on a standby.
type ProcessRecorder struct {
	base
	ordering Ordering
	readOnly bool
	horizon  bool // readers fall back on the horizon when rows are held back (OrderingXID, on a primary)
	// final is the highest notification ID this recorder has returned from MaxNotificationID when
	// horizon is true: every append below it has ended, for good. Reads count the rows up to it as
	// final whatever their xid, since the horizon that made it final may be out of their reach (an
	// append in flight) while a transaction elsewhere holds the xmin back: without it, rows below an
	// ID a reader has seen could appear later.
	final        atomic.Int64
	lockTimeout  sql.NullString
	pollInterval time.Duration
	// reconnectTimeout bounds a subscription's retries of reads that fail on a broken connection.
	reconnectTimeout time.Duration
	logger           *slog.Logger

	// Wake-ups for subscriptions: committed appends of this recorder wake its subscriptions directly
	// and, through the notifier, those of other processes; the listener relays other processes'.
	wake      recorder.Broadcast
	kick      chan struct{}   // to the notifier; capacity 1, so bursts of appends coalesce
	bg        context.Context // the background goroutines run until Close cancels it (stop)
	stop      context.CancelFunc
	wg        sync.WaitGroup
	mu        sync.Mutex // guards listening and the closing of life, so that no goroutine starts after Close
	listening bool
	channel   string // LISTEN/NOTIFY channel, shared by all schemas
	payload   string // the schema name, so that other schemas' notifications can be ignored
}

// notifyChannel is the LISTEN/NOTIFY channel of every recorder; the payload names the schema.
const notifyChannel = "eventsourcing_events"

// NewProcessRecorder returns a recorder on db. It checks that the database answers and that the
// schema has been migrated (see schema.Migrate), so that a wrong DSN, an unreachable server or a
// forgotten migration fail here with a clear error rather than at the first append. It also records
// the ordering in the schema on first use, and refuses an ordering other than the recorded one; made
// [WithReadOnly], it only reads the recorded ordering.
//
// Close the recorder to stop its background goroutines; db stays open.
func NewProcessRecorder(ctx context.Context, db *sql.DB, opts ...Option) (*ProcessRecorder, error) {
	const op = "new process recorder"
	b, cfg, err := newBase(ctx, db, op, opts)
	if err != nil {
		return nil, err
	}
	var ordering Ordering
	standby := false // a server that took the ordering's claim is no standby
	if cfg.readOnly {
		ordering, err = readOrdering(ctx, &b, cfg.ordering)
		if err == nil {
			standby, err = b.q.InRecovery(ctx)
		}
	} else {
		ordering, err = claimOrdering(ctx, &b, cfg.ordering)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	r := &ProcessRecorder{
		base:             b,
		ordering:         ordering,
		readOnly:         cfg.readOnly,
		horizon:          ordering == OrderingXID && !standby,
		pollInterval:     cfg.pollInterval,
		reconnectTimeout: cfg.reconnect,
		logger:           cfg.logger.With("dialect", observe.DialectPostgres),
		kick:             make(chan struct{}, 1),
		channel:          notifyChannel,
		payload:          cfg.schema,
	}
	if cfg.lockTimeout > 0 {
		ms := max(cfg.lockTimeout.Milliseconds(), 1)
		r.lockTimeout = sql.NullString{String: strconv.FormatInt(ms, 10) + "ms", Valid: true}
	}
	r.bg, r.stop = context.WithCancel(context.Background())
	if !r.readOnly {
		r.wg.Go(r.notifier)
	}
	return r, nil
}

// Close stops the recorder's background goroutines (the notifier and, once something has subscribed,
// the listener) and waits for them; subscriptions end with an error wrapping es.ErrClosed, and so does
// every later call. It does not close the *sql.DB. Calling it again does nothing.
func (r *ProcessRecorder) Close() error {
	r.mu.Lock()
	closing := r.life.Close()
	r.mu.Unlock()
	if closing {
		r.stop()
		r.wg.Wait()
	}
	return nil
}

// InsertEvents records events atomically, with the tracking record of WithTracking if given, in one
// round trip. The returned notification IDs are consecutive, in input order.
func (r *ProcessRecorder) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	return r.trace.Append(ctx, events, opts, func(ctx context.Context) ([]int64, error) { return r.insertEvents(ctx, events, opts) })
}

func (r *ProcessRecorder) insertEvents(ctx context.Context, events []es.StoredEvent, opts []es.InsertOption) ([]int64, error) {
	const op = "insert events"
	if err := r.canWrite(op); err != nil {
		return nil, err
	}
	o := es.ApplyInsertOptions(opts...)
	if len(events) == 0 && o.Tracking == nil {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("postgres: %s: %w", op, err)
		}
		return []int64{}, nil
	}
	if err := recorder.ValidateEvents(events); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	if t := o.Tracking; t != nil {
		if err := recorder.ValidateTracking(*t); err != nil {
			return nil, fmt.Errorf("postgres: %s: %w", op, err)
		}
	}
	var first int64
	var err error
	switch {
	case o.Tracking != nil || r.lockTimeout.Valid:
		// events_append sets the lock timeout before it takes any lock; an INSERT locks the events
		// table as it starts, before the timeout is set (see WithLockTimeout).
		first, err = r.append(ctx, r.q, newColumns(events, r.ids), o.Tracking)
	case len(events) == 1:
		first, err = r.appendOne(ctx, events[0])
	default:
		first, err = r.appendBatch(ctx, newColumns(events, r.ids))
	}
	if err != nil {
		return nil, opError(op, err)
	}
	ids := make([]int64, len(events))
	for i := range ids {
		ids[i] = first + int64(i)
	}
	if len(events) > 0 {
		r.committed()
	}
	return ids, nil
}

// canWrite returns the error of a call that writes when the recorder is closed or read-only.
func (r *ProcessRecorder) canWrite(op string) error {
	if err := r.life.Err(); err != nil {
		return opError(op, err)
	}
	if r.readOnly {
		return fmt.Errorf("postgres: %s: %w", op, ErrReadOnly)
	}
	return nil
}

// appendOne records one event with no tracking record, the common append, in one statement rather than
// through events_append (see the query). Appends with a tracking record, or with a lock timeout, go
// through events_append.
func (r *ProcessRecorder) appendOne(ctx context.Context, e es.StoredEvent) (int64, error) {
	return r.q.AppendEvent(ctx, dbsqlc.AppendEventParams{
		Ordering:          r.ordering.String(),
		LockTimeout:       r.lockTimeout,
		OriginatorID:      e.OriginatorID,
		OriginatorVersion: e.OriginatorVersion,
		Topic:             e.Topic,
		State:             nonNil(e.State),
	})
}

// appendBatch records two or more events with no tracking record in one statement, as appendOne
// records one (see the query).
func (r *ProcessRecorder) appendBatch(ctx context.Context, cols columns) (int64, error) {
	return r.q.AppendEventBatch(ctx, dbsqlc.AppendEventBatchParams{
		Ordering: r.ordering.String(), LockTimeout: r.lockTimeout,
		OriginatorIds: cols.ids, Versions: cols.versions, Topics: cols.topics, States: cols.states,
	})
}

// append calls events_append through q: the recorder's queries, or a transaction's (ProcessTracked).
func (r *ProcessRecorder) append(ctx context.Context, q *dbsqlc.Queries, cols columns, t *es.Tracking) (int64, error) {
	p := dbsqlc.AppendEventsParams{
		Ordering:      r.ordering.String(),
		LockTimeout:   r.lockTimeout,
		OriginatorIds: cols.ids,
		Versions:      cols.versions,
		Topics:        cols.topics,
		States:        cols.states,
	}
	if t != nil {
		p.Consumer = sql.NullString{String: t.Consumer, Valid: true}
		p.Upstream = sql.NullString{String: t.Upstream, Valid: true}
		p.TrackingID = sql.NullInt64{Int64: t.NotificationID, Valid: true}
		p.Prior = sql.NullInt64{Int64: t.Prior, Valid: true}
	}
	return q.AppendEvents(ctx, p)
}

// columns are a batch of events as the array parameters of the insert queries: uuid[], bigint[],
// text[] and bytea[]. The drivers tested (pgx's stdlib and lib/pq) encode []int64, []string and
// [][]byte as such arrays. The UUIDs go as text ([]string), except through pgx, which sends
// []pgtype.UUID in binary, without formatting and parsing 36 characters per event; other drivers send
// a [16]byte as something else than a UUID (lib/pq as an array of integers). pgx knows []pgtype.UUID
// as uuid[] without being told the parameter's type, which its exec and simple_protocol query modes
// (connection poolers) do not tell it; a [][16]byte it could send only when told.
type columns struct {
	ids      any // []pgtype.UUID or []string, per idEncoding
	versions []int64
	topics   []string
	states   [][]byte
}

// idEncoding is how a recorder sends originator IDs in arrays (see columns).
type idEncoding int

const (
	idsAsText idEncoding = iota
	idsAsBinary
)

// idEncodingOf chooses the encoding for db's driver.
func idEncodingOf(db *sql.DB) idEncoding {
	if _, ok := db.Driver().(*stdlib.Driver); ok {
		return idsAsBinary
	}
	return idsAsText
}

// newColumns returns events as columns, encoding the IDs as enc says. With no events the arrays are
// empty, not NULL (an append of tracking only).
func newColumns(events []es.StoredEvent, enc idEncoding) columns {
	c := columns{
		versions: make([]int64, len(events)),
		topics:   make([]string, len(events)),
		states:   make([][]byte, len(events)),
	}
	if enc == idsAsBinary {
		ids := make([]pgtype.UUID, len(events))
		for i, e := range events {
			ids[i] = pgtype.UUID{Bytes: e.OriginatorID, Valid: true}
		}
		c.ids = ids
	} else {
		ids := make([]string, len(events))
		for i, e := range events {
			ids[i] = e.OriginatorID.String()
		}
		c.ids = ids
	}
	for i, e := range events {
		c.versions[i] = e.OriginatorVersion
		c.topics[i] = e.Topic
		c.states[i] = nonNil(e.State)
	}
	return c
}

// nonNil returns state, or an empty state for nil, which would be NULL.
func nonNil(state []byte) []byte {
	if state == nil {
		return []byte{}
	}
	return state
}

// SelectEvents returns events of one originator.
func (r *ProcessRecorder) SelectEvents(ctx context.Context, originatorID uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	return selectEvents(ctx, r.frame(), "select events", originatorID, q, r.q.QueryEvents, r.q.QueryEventsDesc)
}

// SelectNotifications returns a page of the notification log. With OrderingXID it returns only
// notifications no older transaction can still precede (see [OrderingXID]).
func (r *ProcessRecorder) SelectNotifications(ctx context.Context, q es.NotificationQuery) ([]es.Notification, error) {
	return r.frame().SelectNotifications(ctx, "select notifications", func(ctx context.Context) ([]es.Notification, error) {
		if err := recorder.CheckNotificationQuery(q); err != nil {
			return nil, err
		}
		return r.selectNotifications(ctx, q)
	})
}

func (r *ProcessRecorder) selectNotifications(ctx context.Context, q es.NotificationQuery) ([]es.Notification, error) {
	upTo := q.UpTo
	if upTo == 0 {
		upTo = math.MaxInt64
	}
	limit := int32(min(q.Limit, math.MaxInt32))
	var rows *sql.Rows
	var err error
	switch {
	case r.ordering == OrderingXID:
		return r.selectNotificationsXID(ctx, q.After, upTo, q.Topics, limit)
	case len(q.Topics) == 0:
		rows, err = r.q.QueryNotifications(ctx, dbsqlc.SelectNotificationsParams{After: q.After, UpTo: upTo, Lim: limit})
	default:
		rows, err = r.q.QueryNotificationsByTopics(ctx, dbsqlc.SelectNotificationsByTopicsParams{After: q.After, UpTo: upTo, Topics: q.Topics, Lim: limit})
	}
	if err != nil {
		return nil, err
	}
	ns, _, err := scanPage(rows, limit)
	return ns, err
}

// selectNotificationsXID reads a page with the xid ordering: the plain query, which returns the final
// rows up to the first that is held back; when rows were held back, and a horizon is of use, the page
// again through events_notifications_xid, which takes the horizon before its snapshot. Rows up to the
// highest ID MaxNotificationID has returned (final) count as final whatever their xid, so a read up to
// what MaxNotificationID returned is complete.
func (r *ProcessRecorder) selectNotificationsXID(ctx context.Context, after, upTo int64, topics []string, limit int32) ([]es.Notification, error) {
	var topicsArg any // NULL: all topics
	if len(topics) > 0 {
		topicsArg = topics
	}
	var final int64
	if r.horizon {
		final = r.final.Load()
	}
	rows, err := r.q.QueryNotificationsXID(ctx, dbsqlc.SelectNotificationsXIDParams{Final: final, After: after, UpTo: upTo, Topics: topicsArg, Lim: limit})
	if err != nil {
		return nil, err
	}
	ns, heldBack, err := scanPage(rows, limit)
	if err != nil || !heldBack || !r.horizon {
		return ns, err
	}
	rows, err = r.q.QueryNotificationsXIDHorizon(ctx, dbsqlc.SelectNotificationsXIDHorizonParams{After: after, UpTo: upTo, Topics: topicsArg, Lim: limit})
	if err != nil {
		return nil, err
	}
	hs, _, err := scanPage(rows, limit)
	if err != nil {
		return nil, err
	}
	// Both reads return a prefix of the same final rows; the function's knows nothing of final, so
	// without the horizon it may return fewer.
	if len(hs) <= len(ns) {
		return ns, nil
	}
	return hs, nil
}

// MaxNotificationID returns the highest notification ID a reader can see (0 when there is none).
func (r *ProcessRecorder) MaxNotificationID(ctx context.Context) (int64, error) {
	return recorder.Read(r.frame(), "max notification ID", func() (int64, error) { return r.maxNotificationID(ctx) })
}

func (r *ProcessRecorder) maxNotificationID(ctx context.Context) (int64, error) {
	if r.ordering != OrderingXID {
		return r.q.MaxNotificationID(ctx)
	}
	id, err := r.q.MaxNotificationIDXID(ctx)
	if err != nil || !r.horizon {
		return id, err
	}
	for {
		final := r.final.Load()
		if id <= final {
			return final, nil
		}
		if r.final.CompareAndSwap(final, id) {
			return id, nil
		}
	}
}
