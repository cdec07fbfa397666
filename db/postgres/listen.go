package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/dbsqlc"
)

// committed is called after an append has committed: it wakes this recorder's subscriptions and asks
// the notifier to tell other processes.
func (r *ProcessRecorder) committed() {
	r.wake.Notify()
	select {
	case r.kick <- struct{}{}:
	default: // a notification is pending already; it will cover this append too
	}
}

// notifyGap is the least time between two NOTIFYs of one recorder. Under a stream of appends, each
// NOTIFY is a transaction of its own competing with the appends (sent back to back, they cost a
// measurable share of the throughput of concurrent writers); 10 ms keeps other processes'
// subscriptions well within the delivery time the contract promises.
const notifyGap = 10 * time.Millisecond

// notifier sends a NOTIFY after appends have committed: appends never wait for it, and every append
// of a burst is covered by one NOTIFY (at most one every notifyGap).
func (r *ProcessRecorder) notifier() {
	gap := time.NewTimer(notifyGap)
	gap.Stop()
	for {
		select {
		case <-r.bg.Done():
			return
		case <-r.kick:
		}
		ctx, cancel := context.WithTimeout(r.bg, 5*time.Second)
		err := r.q.Notify(ctx, dbsqlc.NotifyParams{Channel: r.channel, Payload: r.payload})
		cancel()
		if err != nil && r.bg.Err() == nil {
			r.logger.Warn("postgres recorder: notify failed; subscribers of other processes will poll", "schema", r.schema, "error", err)
		}
		gap.Reset(notifyGap)
		select {
		case <-r.bg.Done():
			return
		case <-gap.C:
		}
	}
}

// startListener starts the listener goroutine on the first subscription, unless the recorder is
// closed.
func (r *ProcessRecorder) startListener() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.listening || r.life.Err() != nil {
		return
	}
	r.listening = true
	r.wg.Go(r.listener)
}

// errNotPgx means the driver is not pgx's stdlib: subscriptions poll.
var errNotPgx = errors.New("the driver is not pgx/v5/stdlib")

// errStandby means the server is a standby, which refuses LISTEN (and where no NOTIFY of the primary
// arrives): subscriptions poll.
var errStandby = errors.New("the server is a standby")

// listener relays PostgreSQL notifications to this recorder's subscriptions, over a connection of its
// own (outside the pool), reopened (with backoff) whenever it fails. Each time it starts listening it wakes the
// subscriptions, since notifications may have been missed while it was away.
func (r *ProcessRecorder) listener() {
	backoff := 50 * time.Millisecond
	for r.bg.Err() == nil {
		start := time.Now()
		err := r.listenOnce(r.bg)
		if r.bg.Err() != nil {
			return
		}
		if errors.Is(err, errNotPgx) {
			r.logger.Info("postgres recorder: not a pgx connection; subscriptions poll", "schema", r.schema)
			return
		}
		if errors.Is(err, errStandby) {
			r.logger.Debug("postgres recorder: the server is a standby, which has no LISTEN; subscriptions poll", "schema", r.schema)
			return
		}
		r.wake.Notify()
		if time.Since(start) > time.Minute {
			backoff = 50 * time.Millisecond
		}
		r.logger.Warn("postgres recorder: listener connection lost; reopening", "schema", r.schema, "error", err, "retry_in", backoff)
		select {
		case <-r.bg.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listenCheck is how long the listener waits for a notification before it checks its connection.
const listenCheck = 30 * time.Second

func (r *ProcessRecorder) listenOnce(ctx context.Context) error {
	cfg, err := r.listenerConfig(ctx)
	if err != nil {
		return err
	}
	// The listener has a connection of its own, outside the *sql.DB's pool: a pooled connection held
	// for as long as subscriptions last would be taken from the application, and database/sql would
	// make closing the *sql.DB (and other clean-ups that need every connection) wait for it.
	pc, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect the listener: %w", err)
	}
	defer pc.Close(context.Background())
	var standby bool
	if err := pc.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
		return err
	}
	if standby {
		return errStandby
	}
	if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{r.channel}.Sanitize()); err != nil {
		return err
	}
	r.wake.Notify()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		n, err := pc.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if n.Payload == r.payload {
				r.wake.Notify()
			}
		case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && !pc.IsClosed():
			// Quiet for a while: make sure the connection is still there.
			if err := pc.Ping(ctx); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// listenerConfig returns the connection settings of the *sql.DB's connections (as pgx's stdlib
// driver made them), for the listener's own connection; errNotPgx for other drivers.
func (r *ProcessRecorder) listenerConfig(ctx context.Context) (*pgx.ConnConfig, error) {
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var cfg *pgx.ConnConfig
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return errNotPgx
		}
		cfg = sc.Conn().Config().Copy()
		// pgx fills in the handler that queues a connection's notifications when it connects; the copy
		// carries the pooled connection's, which would queue ours there.
		cfg.OnNotification = nil
		return nil
	})
	return cfg, err
}
