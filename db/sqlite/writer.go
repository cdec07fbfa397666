package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/internal/closing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/internal/dbsqlc"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
	"github.com/eventsourcing-go/eventsourcing/observe"
)

// A group is bounded so that one transaction does not grow the write-ahead log without limit, nor keep
// the last callers of a huge group waiting for everybody else's inserts. A request is never split.
const (
	maxGroupRequests = 512
	maxGroupEvents   = 8192
)

// Transaction control. Constant texts, prepared once on the writer's connection like the queries.
const (
	sqlBegin      = "BEGIN IMMEDIATE"
	sqlCommit     = "COMMIT"
	sqlRollback   = "ROLLBACK"
	sqlSavepoint  = "SAVEPOINT batch"
	sqlRollbackTo = "ROLLBACK TO batch"
	sqlRelease    = "RELEASE batch"
)

// States of a request: the writer claims a pending request just before writing it; a caller whose ctx
// ends first abandons it, and the writer skips it. Whoever wins the compare-and-swap decides.
const (
	pending int32 = iota
	claimed
	abandoned
)

// request is one caller's batch: events (and a tracking record) that commit together or not at all.
type request struct {
	ctx      context.Context
	events   []es.StoredEvent
	tracking *es.Tracking
	write    func(ctx context.Context, q *dbsqlc.Queries) error // another write, after the tracking insert
	run      func(ctx context.Context) error                    // ProcessTracked's function, run last
	state    atomic.Int32
	ids      []int64       // set by the insert function on success
	err      error         // the outcome, once done is closed
	done     chan struct{} // closed by the writer when ids and err are final
}

// singleStatement reports whether r is written by one statement: one event, and nothing else.
func (r *request) singleStatement() bool {
	return len(r.events) == 1 && r.tracking == nil && r.write == nil && r.run == nil
}

func newRequest(ctx context.Context, events []es.StoredEvent, t *es.Tracking) *request {
	return &request{ctx: ctx, events: events, tracking: t, done: make(chan struct{})}
}

// insertFunc writes r inside the writer's transaction and sets r.ids. Its error names the event or
// tracking record at fault; for a uniqueness violation it wraps es.ErrConflict.
type insertFunc func(ctx context.Context, q *dbsqlc.Queries, r *request) error

// writer owns one connection of the pool, and every write of its recorder goes through it: the
// recorder's callers never contend for SQLite's write lock, so they never see "database is locked".
//
// It implements the group commit described in the package documentation: each caller waits for at
// most the transaction in progress and its own.
type writer struct {
	db       *sql.DB
	conn     *sql.Conn
	stmts    *stmtCache
	q        *dbsqlc.Queries
	insert   insertFunc
	onCommit func() // after a commit that recorded events
	trace    recorder.Tracing
	dbClosed <-chan struct{}
	restore  []string // pragmas that give the connection back as it was lent
	// busyTimeout also bounds the retries of a transaction that a shared-cache table lock got in the
	// way of (see commit).
	busyTimeout time.Duration

	// connMu is held by whoever writes through conn (a caller or the writer goroutine) and by stop.
	connMu   sync.Mutex
	released bool // conn has gone back to the pool

	mu      sync.Mutex
	busy    bool // a transaction is being written; requests queue. Invariant: queue not empty ⇒ busy.
	queue   []*request
	spare   []*request
	stopErr error // set when the writer stops accepting requests

	commits atomic.Int64 // transactions committed, for tests

	wake    chan struct{} // capacity 1: the writer goroutine is to drain the queue
	quit    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

func newWriter(ctx context.Context, db *sql.DB, cfg config, trace recorder.Tracing, insert insertFunc, onCommit func()) (*writer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &writer{
		db:          db,
		conn:        conn,
		insert:      insert,
		onCommit:    onCommit,
		trace:       trace,
		dbClosed:    closing.Signal(db),
		busyTimeout: cfg.busyTimeout,
		wake:        make(chan struct{}, 1),
		quit:        make(chan struct{}),
		stopped:     make(chan struct{}),
	}
	if err := w.setup(ctx, cfg); err != nil {
		conn.Close()
		return nil, err
	}
	w.stmts = newStmtCache(conn)
	w.q = dbsqlc.New(w.stmts)
	go w.run()
	return w, nil
}

// setup sets the connection's pragmas, remembering the values to restore when it goes back to the
// pool. Pragmas cannot take parameters: the texts are constants or formatted integers.
func (w *writer) setup(ctx context.Context, cfg config) error {
	var oldSync, oldBusy int64
	if err := w.conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&oldSync); err != nil {
		return fmt.Errorf("read synchronous: %w", err)
	}
	if err := w.conn.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&oldBusy); err != nil {
		return fmt.Errorf("read busy_timeout: %w", err)
	}
	pragmas, err := cfg.pragmas()
	if err != nil {
		return err
	}
	for _, p := range pragmas {
		if _, err := w.conn.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	// WAL is a property of the database file (a no-op when it is on already; in-memory databases keep
	// their journal). Readers then never block the writer. A file opened read-only cannot be switched,
	// and needs not be: nothing is written through it, and its writes fail as they would in WAL mode.
	var mode string
	if err := w.conn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil && !isReadOnly(err) {
		return fmt.Errorf("set WAL mode: %w", err)
	}
	w.restore = []string{
		"PRAGMA synchronous = " + strconv.FormatInt(oldSync, 10),
		"PRAGMA busy_timeout = " + strconv.FormatInt(oldBusy, 10),
	}
	return nil
}

// submit writes r and returns its outcome. When no transaction is in progress, r is written at once
// on the caller's goroutine; otherwise it is queued for the writer goroutine's next group. A ctx that
// ends while r waits (in the queue, or for the file lock) abandons it: r is not written and submit
// returns ctx's error. Once r is written, submit waits for the commit and reports its outcome.
func (w *writer) submit(ctx context.Context, r *request) error {
	if w.isDBClosed() {
		w.stopAccepting(w.dbClosedErr())
	}
	w.mu.Lock()
	if w.stopErr != nil {
		err := w.stopErr
		w.mu.Unlock()
		return err
	}
	if !w.busy {
		w.busy = true
		w.mu.Unlock()
		w.connMu.Lock()
		w.commit(ctx, []*request{r})
		w.connMu.Unlock()
		w.mu.Lock()
		if len(w.queue) > 0 {
			w.signal() // callers queued meanwhile: the writer goroutine takes over, busy stays set
		} else {
			w.busy = false
		}
		w.mu.Unlock()
		return r.err
	}
	w.queue = append(w.queue, r)
	w.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(pending, abandoned) {
			return ctx.Err()
		}
		<-r.done
		return r.err
	}
}

// signal wakes the writer goroutine.
func (w *writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *writer) run() {
	defer close(w.stopped)
	for {
		select {
		case <-w.wake:
		case <-w.quit:
			w.stop(es.ErrClosed)
			return
		case <-w.dbClosed:
			w.stop(w.dbClosedErr())
			return
		}
		released, took := 0, time.Duration(0) // the callers of the group just committed, and its time
		for {
			if w.isDBClosed() {
				w.stop(w.dbClosedErr())
				return
			}
			w.awaitReturn(released, min(took/awaitShare, maxAwait))
			w.mu.Lock()
			group := w.take()
			if len(group) == 0 {
				w.busy = false
				w.mu.Unlock()
				break
			}
			w.mu.Unlock()
			start := time.Now()
			w.connMu.Lock()
			// The group's transaction runs to completion whatever happens to its callers' contexts.
			w.commit(context.Background(), group)
			w.connMu.Unlock()
			released, took = len(group), time.Since(start)
			w.recycle(group)
		}
	}
}

// awaitReturn awaits a group's callers for a quarter (1/awaitShare) of its transaction's time: they
// come back within a small part of it, and waiting longer would idle the writer. maxAwait caps that
// for transactions that took long for other reasons (waiting for another process's lock, say), since
// awaiting is yielding, which keeps a processor busy.
const (
	awaitShare = 4
	maxAwait   = time.Millisecond
)

// awaitReturn lets the callers of the group just committed, released of them, run before the next
// group is taken. Under concurrency they are about to save again: a group that waits for them shares
// its sync with all of them, and its transaction then runs while they wait rather than while they
// compete with it for the processor. Taking the queue at once splits the callers into cohorts that
// take turns, each committing while the other queues, and a sync serves fewer of them. awaitReturn
// yields the processor until as many requests are queued as were released, or until budget (a share
// of the time of the transaction just committed) has passed: it never sleeps, and callers that do not
// come back cost a few turns of the scheduler. It follows only groups of several callers; a lone
// caller commits on its own goroutine and never comes here.
func (w *writer) awaitReturn(released int, budget time.Duration) {
	if released < 2 {
		return
	}
	start := time.Now()
	for {
		runtime.Gosched()
		w.mu.Lock()
		queued := len(w.queue)
		w.mu.Unlock()
		if queued >= released || time.Since(start) >= budget {
			return
		}
	}
}

// isDBClosed reports whether the *sql.DB (one from ncruces.Open) has been closed. database/sql would let the
// writer go on using its connection; the recorder refuses instead, as every other use of the *sql.DB
// does.
func (w *writer) isDBClosed() bool {
	select {
	case <-w.dbClosed:
		return true
	default:
		return false
	}
}

// dbClosedErr is database/sql's own error for a closed *sql.DB.
func (w *writer) dbClosedErr() error {
	if err := w.db.PingContext(context.Background()); err != nil {
		return err
	}
	return errors.New("sql: database is closed")
}

// stopAccepting makes every later submit fail with err.
func (w *writer) stopAccepting(err error) {
	w.mu.Lock()
	if w.stopErr == nil {
		w.stopErr = err
	}
	w.mu.Unlock()
}

// take removes the next group from the queue. w.mu must be held.
func (w *writer) take() []*request {
	n, events := 0, 0
	for n < len(w.queue) && n < maxGroupRequests && events < maxGroupEvents {
		events += len(w.queue[n].events)
		n++
	}
	if n == len(w.queue) {
		group := w.queue
		w.queue, w.spare = w.spare[:0], nil
		return group
	}
	group := make([]*request, n)
	copy(group, w.queue)
	rest := copy(w.queue, w.queue[n:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	return group
}

// recycle gives a group's slice back for the next take.
func (w *writer) recycle(group []*request) {
	clear(group)
	w.mu.Lock()
	if w.spare == nil && cap(group) <= 2*maxGroupRequests {
		w.spare = group[:0]
	}
	w.mu.Unlock()
}

// commit writes group in one transaction and reports each request's outcome. ctx bounds only the
// wait for the file lock (BEGIN IMMEDIATE, when another process holds it); once the transaction has
// begun, its statements run to completion: it is never interrupted halfway. w.connMu must be held.
//
// A table lock of SQLite's shared-cache mode (SQLITE_LOCKED: a reader of the same cache is reading a
// table the transaction writes) is not waited for by the busy timeout: the transaction is rolled back
// and written again, for up to the busy timeout, so that the lock never reaches a caller in place of
// the transaction's real outcome (a conflict, say). A ProcessTracked function then runs again.
func (w *writer) commit(ctx context.Context, group []*request) {
	if w.released {
		for _, r := range group {
			if r.state.CompareAndSwap(pending, claimed) {
				w.finish(r, es.ErrClosed)
			}
		}
		return
	}
	live := 0
	for _, r := range group {
		if r.state.Load() == pending {
			live++
		}
	}
	if live == 0 {
		return
	}
	var lockWait lockedRetry
	for {
		if _, err := w.stmts.ExecContext(ctx, sqlBegin); err != nil {
			if isLocked(err) && lockWait.pause(ctx, w.busyTimeout) {
				continue
			}
			if ctx.Err() != nil {
				err = ctx.Err()
			} else {
				err = fmt.Errorf("begin transaction: %w", err)
			}
			for _, r := range group {
				if r.state.CompareAndSwap(pending, claimed) {
					w.finish(r, err)
				}
			}
			return
		}
		ctx = context.Background()
		locked := w.write(ctx, group, live > 1)
		if locked == nil {
			return
		}
		// Everything was rolled back: the claimed requests are written again, or fail once the busy
		// timeout has passed.
		again := lockWait.pause(ctx, w.busyTimeout)
		for _, r := range group {
			if r.state.Load() != claimed {
				continue
			}
			if again {
				r.state.Store(pending)
			} else {
				w.finish(r, fmt.Errorf("transaction rolled back: %w", locked))
			}
		}
		if !again {
			return
		}
	}
}

// write writes group in the transaction just begun, each request inside a savepoint of its own when
// isolate, then commits and reports each request's outcome. When a shared-cache table lock got in the
// way, it rolls back and returns the lock's error, having reported nothing.
func (w *writer) write(ctx context.Context, group []*request, isolate bool) (locked error) {
	var written []*request
	var failed []*request
	var fatal error // the transaction is gone: everything fails
	var traced observe.GroupCommit
	if w.trace.Tracer != nil {
		traced.Start = time.Now()
	}
	for _, r := range group {
		if fatal != nil {
			if r.state.CompareAndSwap(pending, claimed) {
				r.err = fatal
				failed = append(failed, r)
			}
			continue
		}
		if !r.state.CompareAndSwap(pending, claimed) {
			continue // abandoned: its caller has returned ctx's error
		}
		r.err, r.ids = nil, nil
		if err := r.ctx.Err(); err != nil {
			r.err = err
			failed = append(failed, r)
			continue
		}
		if !isolate {
			if err := w.insert(ctx, w.q, r); err != nil {
				r.err = err
				failed = append(failed, r)
				fatal = err
				continue
			}
			written = append(written, r)
			continue
		}
		if r.singleStatement() {
			// One statement is atomic on its own: SQLite backs out a statement that violates a
			// constraint and keeps the transaction, so it needs no savepoint. Any other failure may
			// have ended the transaction, and ends the group's.
			if err := w.insert(ctx, w.q, r); err != nil {
				r.err = err
				r.ids = nil
				failed = append(failed, r)
				if !errors.Is(err, es.ErrConflict) {
					fatal = err
				}
				continue
			}
			written = append(written, r)
			continue
		}
		if _, err := w.stmts.ExecContext(ctx, sqlSavepoint); err != nil {
			fatal = fmt.Errorf("savepoint: %w", err)
			r.err = fatal
			failed = append(failed, r)
			continue
		}
		if err := w.insert(ctx, w.q, r); err != nil {
			r.err = err
			r.ids = nil
			failed = append(failed, r)
			if isLocked(err) {
				fatal = err
				continue
			}
			if _, rbErr := w.stmts.ExecContext(ctx, sqlRollbackTo); rbErr != nil {
				fatal = fmt.Errorf("roll back to savepoint after %v: %w", err, rbErr)
				continue
			}
		}
		if _, err := w.stmts.ExecContext(ctx, sqlRelease); err != nil {
			fatal = fmt.Errorf("release savepoint: %w", err)
			if r.err == nil {
				r.err = fatal
				failed = append(failed, r)
			}
			continue
		}
		if r.err == nil {
			written = append(written, r)
		}
	}

	if fatal != nil {
		w.stmts.ExecContext(ctx, sqlRollback) // may fail when SQLite rolled back already: nothing to undo
		if isLocked(fatal) {
			return fatal
		}
		for _, r := range written {
			r.ids = nil
			r.err = fmt.Errorf("transaction rolled back: %w", fatal)
		}
	} else if _, err := w.stmts.ExecContext(ctx, sqlCommit); err != nil {
		w.stmts.ExecContext(ctx, sqlRollback)
		if isLocked(err) {
			return err
		}
		for _, r := range written {
			r.ids = nil
			r.err = fmt.Errorf("commit: %w", err)
		}
	} else {
		w.commits.Add(1)
		recorded := false
		for _, r := range written {
			recorded = recorded || len(r.events) > 0
		}
		if recorded && w.onCommit != nil {
			w.onCommit()
		}
	}
	for _, r := range written {
		close(r.done)
	}
	for _, r := range failed {
		close(r.done)
	}
	if w.trace.Tracer != nil {
		w.traceGroup(traced, written, failed, fatal)
	}
	return nil
}

// traceGroup tells the tracer about the transaction just ended, which wrote the requests written
// (committed, unless they failed with the transaction) and failed (which failed on their own, or with
// the transaction when fatal is set).
func (w *writer) traceGroup(g observe.GroupCommit, written, failed []*request, fatal error) {
	g.Dialect, g.Snapshots, g.Requests, g.Err = w.trace.Dialect, w.trace.Snapshots, len(written)+len(failed), fatal
	if g.Requests == 0 {
		return
	}
	for _, r := range written {
		g.Events += len(r.events)
		if g.Err == nil && r.err != nil {
			g.Err = r.err // the commit failed: all of them failed with it
		}
	}
	for _, r := range failed {
		g.Events += len(r.events)
	}
	first := failed
	if len(written) > 0 {
		first = written
	}
	w.trace.Tracer.GroupCommit(first[0].ctx, g)
}

func (w *writer) finish(r *request, err error) {
	r.ids = nil
	r.err = err
	close(r.done)
}

// stop refuses new requests, fails the queued ones with err and gives the connection back, once the
// transaction in progress (if any) has ended.
func (w *writer) stop(err error) {
	w.connMu.Lock()
	defer w.connMu.Unlock()
	w.mu.Lock()
	if w.stopErr == nil {
		w.stopErr = err
	}
	err = w.stopErr
	queued := w.queue
	w.queue = nil
	w.mu.Unlock()
	for _, r := range queued {
		if r.state.CompareAndSwap(pending, claimed) {
			w.finish(r, err)
		}
	}
	w.stmts.close()
	w.released = true
	if errors.Is(err, es.ErrClosed) { // else the database is closed: the connection is closed on release
		for _, p := range w.restore {
			w.conn.ExecContext(context.Background(), p)
		}
	}
	w.conn.Close()
}

// close stops the writer after the group in progress, and waits for it.
func (w *writer) close() {
	w.once.Do(func() {
		w.stopAccepting(es.ErrClosed)
		close(w.quit)
	})
	<-w.stopped
}
