package postgres

import (
	"fmt"
	"log/slog"
	"time"
)

// Ordering chooses how a [ProcessRecorder] keeps the notification log free of late fills: once any
// reader has seen notification ID n, no ID below n ever appears. PostgreSQL needs help here, because
// an ID is taken when a row is inserted but becomes visible when its transaction commits, and
// transactions commit in any order.
//
// All recorders of one schema must use the same ordering: the readers of one are not safe against the
// writers of the other. The first recorder to open a schema records its ordering there, and a recorder
// configured with another one is refused with [ErrOrderingMismatch].
type Ordering int

const (
	// OrderingDefault is the zero Ordering: the schema's recorded ordering when there is one, and
	// OrderingXID for a schema that has none yet.
	OrderingDefault Ordering = iota

	// OrderingXID lets appends commit concurrently. Each append allocates its transaction ID (xid) and
	// then its notification IDs inside a short critical section (an advisory lock held for
	// microseconds, released before the rows are written), so xid order and ID order agree between
	// appends. Readers return the rows whose xid is below the xmin of their snapshot: every append with
	// a lower ID has a lower xid, so it has finished, and what a reader sees is closed downwards.
	// Appends also hold a shared "in flight" lock until they end; a reader that finds none in flight
	// knows every ID taken so far is final and reads everything committed.
	//
	// The cost is on the reading side, and only while appends of the schema are in flight: then a
	// transaction that holds an xid (one that has written something; read-only transactions do not
	// count), anywhere in the PostgreSQL cluster, delays what readers see until it ends, as long as it
	// is older than the appends. A long-running writing transaction can so hold back the subscribers of
	// a busy application — never its writers. An application whose appends have all ended reads them
	// at once, whatever else runs in the cluster.
	OrderingXID

	// OrderingTableLock is the ordering of the Python eventsourcing library: every append locks the
	// events table (LOCK TABLE … IN EXCLUSIVE MODE) until it commits, so IDs are allocated in commit
	// order and readers need no filter. Appends to one schema are serialised, each waiting for the
	// previous one's commit to be flushed; readers are never held back by other transactions. The
	// lock also conflicts with autovacuum of the events table, which PostgreSQL cancels only after
	// deadlock_timeout (1 s by default): appends can stall that long while the table is vacuumed.
	OrderingTableLock
)

// String returns the name under which the ordering is recorded in the schema.
func (o Ordering) String() string {
	switch o {
	case OrderingDefault:
		return "default"
	case OrderingXID:
		return "xid"
	case OrderingTableLock:
		return "table_lock"
	default:
		return fmt.Sprintf("Ordering(%d)", int(o))
	}
}

func parseOrdering(s string) (Ordering, bool) {
	switch s {
	case "xid":
		return OrderingXID, true
	case "table_lock":
		return OrderingTableLock, true
	default:
		return 0, false
	}
}

// Option configures a recorder.
type Option func(*config)

type config struct {
	schema    string
	schemaSet bool // WithSchema was given, even with ""

	ordering     Ordering
	lockTimeout  time.Duration
	pollInterval time.Duration
	logger       *slog.Logger
}

func newConfig(opts []Option) config {
	c := config{pollInterval: 100 * time.Millisecond}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// WithSchema makes the recorder use the tables of the named schema, as created by
// schema.Migrate(ctx, db, schema.Postgres, schema.WithSchema(name)), so that several applications can
// share one database. The name must be a plain lower-case identifier (schema.ValidateSchemaName);
// anything else makes the constructor fail, since the name becomes part of the SQL text. Without it the
// tables are found through the connection's search_path; an empty name is refused rather than taken
// to mean that, since it is more likely a missing setting.
func WithSchema(name string) Option {
	return func(c *config) { c.schema, c.schemaSet = name, true }
}

// WithOrdering chooses the notification ordering (see [Ordering]). It matters only to the
// [ProcessRecorder]. Without it (or with OrderingDefault) the recorder takes the schema's recorded
// ordering, and records OrderingXID on a schema that has none.
func WithOrdering(o Ordering) Option { return func(c *config) { c.ordering = o } }

// WithLockTimeout bounds how long an append waits for the lock of its ordering (the events table's
// with OrderingTableLock, the advisory lock's with OrderingXID) and for row locks held by concurrent
// appends of the same aggregate. An append that waits longer fails, and nothing of it is written. It is
// set with set_config('lock_timeout', …, true) inside the append's own transaction, so it never leaks
// into other uses of the connection. Zero (the default) keeps the server's setting.
func WithLockTimeout(d time.Duration) Option { return func(c *config) { c.lockTimeout = d } }

// WithPollInterval sets how often a caught-up subscription polls the log when it hears of no new
// events. PostgreSQL's LISTEN/NOTIFY wakes subscriptions sooner; polling covers lost notifications,
// a broken listener connection, drivers other than pgx, and rows held back by the xid ordering. The
// default is 100 ms.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.pollInterval = d
		}
	}
}

// WithLogger receives the recorder's background troubles (a listener connection lost and reopened, a
// failed notification). By default nothing is logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }
