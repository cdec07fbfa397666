package postgres

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/eventsourcing-go/eventsourcing/internal/option"
	"github.com/eventsourcing-go/eventsourcing/observe"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// DefaultPollInterval is how often a caught-up subscription polls the log when nothing wakes it (see
// WithPollInterval).
const DefaultPollInterval = 100 * time.Millisecond

// DefaultReconnectTimeout is how long a subscription keeps retrying reads that fail on a broken
// connection before it gives up (see WithReconnectTimeout): long enough for a server restart with crash
// recovery, or a failover, to complete.
const DefaultReconnectTimeout = 2 * time.Minute

// Option configures a recorder. Options record values; the constructor checks them and fails on an
// invalid one. Each option says which recorders it matters to; the others ignore it, so one list of
// options can be given to both.
type Option func(*config)

type config struct {
	schema    string
	schemaSet bool // WithSchema was given, even with ""

	ordering     Ordering
	readOnly     bool
	lockTimeout  time.Duration
	pollInterval time.Duration
	reconnect    time.Duration
	logger       *slog.Logger
	tracer       observe.RecorderTracer
}

func newConfig(opts []Option) (config, error) {
	c := config{pollInterval: DefaultPollInterval, reconnect: DefaultReconnectTimeout}
	option.Apply(&c, opts)
	if c.schemaSet {
		if err := schema.ValidateSchemaName(c.schema); err != nil {
			return c, fmt.Errorf("WithSchema: %w", err)
		}
	}
	switch {
	case c.ordering != OrderingDefault && c.ordering != OrderingXID && c.ordering != OrderingTableLock:
		return c, fmt.Errorf("WithOrdering: unknown ordering %v", c.ordering)
	case c.lockTimeout < 0:
		return c, fmt.Errorf("WithLockTimeout(%v): must not be negative", c.lockTimeout)
	case c.pollInterval <= 0:
		return c, fmt.Errorf("WithPollInterval(%v): must be positive", c.pollInterval)
	case c.reconnect < 0:
		return c, fmt.Errorf("WithReconnectTimeout(%v): must not be negative", c.reconnect)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	c.tracer = observe.Use(c.tracer)
	return c, nil
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

// WithReadOnly makes a [ProcessRecorder] that only reads, for a hot standby (a streaming replica) or any
// other server or role that must not be written to. Its constructor writes nothing: it takes the ordering
// recorded in the schema instead of recording one (with none recorded yet it reads as OrderingXID does,
// which is safe with the writers of either ordering; WithOrdering, if given, must match a recorded
// ordering). Its methods that write fail with an error wrapping [ErrReadOnly]; its reads and
// subscriptions work as on the primary, and are as safe on a standby (see the package documentation).
func WithReadOnly() Option { return func(c *config) { c.readOnly = true } }

// WithLockTimeout bounds how long an append waits for the locks of its ordering (see [Ordering]) and
// for row locks held by concurrent appends of the same aggregate. An append that waits longer fails,
// and nothing of it is written. It is set with set_config('lock_timeout', …, true) inside the append's
// own transaction, so it never leaks into other uses of the connection, and before the append takes
// any lock, the events table's included (DDL holding the table, a migration say, makes the append
// fail after d too). With it, every append goes through the function events_append, which sets the
// timeout first, rather than through a plain INSERT, which would lock the table as it starts (the
// function's statements cost more server time than one INSERT). Zero (the default) keeps the
// server's setting.
func WithLockTimeout(d time.Duration) Option { return func(c *config) { c.lockTimeout = d } }

// WithPollInterval sets how often a caught-up subscription polls the log when it hears of no new
// events (default DefaultPollInterval; it must be positive). PostgreSQL's LISTEN/NOTIFY wakes
// subscriptions sooner; polling covers lost notifications, a broken listener connection, drivers other
// than pgx, standbys, and rows held back by the xid ordering.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithReconnectTimeout sets how long a subscription keeps retrying when its reads fail because the
// connection broke or the server does not accept connections yet (SQLSTATE class 08, 57P01–57P03, or
// no answer at all: a restart, crash recovery, a failover), or because a hot standby cancelled them
// for a conflict with recovery (40001), pausing between attempts from 50 ms up to
// 1 s; then it yields the last error, which ends it (default DefaultReconnectTimeout; 0 gives up at
// the first such failure; negative is an error). It matters only to the [ProcessRecorder]'s Subscribe;
// other calls report errors at once, since their callers decide whether to repeat them.
func WithReconnectTimeout(d time.Duration) Option { return func(c *config) { c.reconnect = d } }

// WithLogger receives the recorder's background troubles (a listener connection lost and reopened, a
// failed notification). Without it, or with nil, they go to slog.Default() as it is when the recorder
// is made.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithTracer tells t about the recorders' appends and reads (see package observe), as dialect
// "postgres" with the recorder's schema. Without it, or with nil, there is no tracer. It applies to
// both recorders.
func WithTracer(t observe.RecorderTracer) Option { return func(c *config) { c.tracer = t } }
