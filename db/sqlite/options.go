package sqlite

import (
	"fmt"
	"strconv"
	"time"

	"github.com/eventsourcing-go/eventsourcing/internal/option"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
	"github.com/eventsourcing-go/eventsourcing/observe"
)

// Synchronous is SQLite's synchronous setting for the recorder's writes: how hard a commit works to
// survive a power loss. In WAL mode neither setting can corrupt the database; they differ in what the
// last moments before a power cut may lose.
type Synchronous int

const (
	// SynchronousFull (the default) syncs the write-ahead log to stable storage at every commit: once
	// InsertEvents has returned, the events survive a power loss or an operating system crash. This is
	// what an event store promises, and group commit (see the package documentation) spreads the cost of each
	// sync over every caller waiting at the time.
	SynchronousFull Synchronous = iota
	// SynchronousNormal syncs the write-ahead log only at checkpoints. Commits survive a crash of the
	// process, but the last transactions before a power loss or operating system crash may be rolled
	// back when the database is next opened (it stays consistent: whole transactions disappear, never
	// parts of them). Appends are several times faster on disks with slow syncs. Choose it when the
	// events can be recreated, or an upstream source will be replayed after a power loss anyway.
	SynchronousNormal
)

// String returns the SQLite name of the setting.
func (s Synchronous) String() string {
	switch s {
	case SynchronousFull:
		return "FULL"
	case SynchronousNormal:
		return "NORMAL"
	default:
		return fmt.Sprintf("Synchronous(%d)", int(s))
	}
}

// pragma returns the statement that sets s; statements are constants, never built from input.
func (s Synchronous) pragma() (string, error) {
	switch s {
	case SynchronousFull:
		return "PRAGMA synchronous = FULL", nil
	case SynchronousNormal:
		return "PRAGMA synchronous = NORMAL", nil
	default:
		return "", fmt.Errorf("invalid synchronous setting %d", int(s))
	}
}

// Defaults of the options.
const (
	// DefaultBusyTimeout is how long a connection waits for a lock held by another connection (another
	// process, or a writer outside the recorder) before it fails with "database is locked". Writers of
	// one recorder never wait on each other: they share one connection.
	DefaultBusyTimeout = 10 * time.Second
	// DefaultPollInterval is how often a caught-up subscription looks for events written by other
	// processes or other recorders. Events written through the same recorder wake it at once.
	DefaultPollInterval = 100 * time.Millisecond
)

// Option configures the recorders and [Pragmas] (and so ncruces.Open). Each option says where it
// applies; elsewhere it is ignored, so one list of options can be given to ncruces.Open and to the
// recorders alike.
type Option func(*config)

type config struct {
	synchronous  Synchronous
	busyTimeout  time.Duration
	pollInterval time.Duration
	tracer       observe.RecorderTracer
}

func newConfig(opts []Option) (config, error) {
	c := config{
		synchronous:  SynchronousFull,
		busyTimeout:  DefaultBusyTimeout,
		pollInterval: DefaultPollInterval,
	}
	option.Apply(&c, opts)
	if _, err := c.synchronous.pragma(); err != nil {
		return c, err
	}
	if c.busyTimeout < 0 {
		return c, fmt.Errorf("busy timeout %v: must not be negative", c.busyTimeout)
	}
	if c.pollInterval <= 0 {
		return c, fmt.Errorf("poll interval %v: must be positive", c.pollInterval)
	}
	c.tracer = observe.Use(c.tracer)
	return c, nil
}

// tracing is what a recorder (a snapshot store, or not) tells its tracer about itself.
func (c config) tracing(snapshots bool) recorder.Tracing {
	return recorder.Tracing{Tracer: c.tracer, Dialect: observe.DialectSQLite, Snapshots: snapshots}
}

// Pragmas returns the statements that set a connection up as opts ask, each "PRAGMA name = value":
// the busy timeout ([WithBusyTimeout]) first, then the synchronous setting ([WithSynchronous]). A
// recorder runs them on the connection it writes through; ncruces.Open runs them on every connection
// of its pool; with another driver, run them from its connection hook (or give the same settings in
// its DSN) for the pool's other connections to have them too. An invalid option is an error.
func Pragmas(opts ...Option) ([]string, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return cfg.pragmas()
}

// pragmas returns the connection's settings (see Pragmas). The texts are constants or formatted
// integers: pragmas cannot take parameters.
func (c config) pragmas() ([]string, error) {
	syncPragma, err := c.synchronous.pragma()
	if err != nil {
		return nil, err
	}
	return []string{"PRAGMA busy_timeout = " + strconv.FormatInt(c.busyTimeout.Milliseconds(), 10), syncPragma}, nil
}

// WithSynchronous sets the durability of commits (default [SynchronousFull]). It applies to the
// recorders' writer connection and, through [Pragmas], to every connection of a pool from ncruces.Open.
func WithSynchronous(s Synchronous) Option { return func(c *config) { c.synchronous = s } }

// WithBusyTimeout sets how long a connection waits for a lock held elsewhere before it fails (default
// [DefaultBusyTimeout]). It applies to the recorders' writer connection and, through [Pragmas], to
// every connection of a pool from ncruces.Open. Milliseconds are the unit SQLite keeps. A recorder's
// reads, which go through the pool's connections (of any driver, with whatever busy timeout its DSN
// gives them), are tried again for as long when they find the file busy or a shared-cache table locked.
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// WithPollInterval sets how often a caught-up subscription polls for events committed by other
// processes (default [DefaultPollInterval]). It applies to [ProcessRecorder.Subscribe].
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithTracer tells t about the recorders' appends, reads and group commits (see package observe), as
// dialect "sqlite". Without it, or with nil, there is no tracer. It applies to both recorders.
func WithTracer(t observe.RecorderTracer) Option { return func(c *config) { c.tracer = t } }
