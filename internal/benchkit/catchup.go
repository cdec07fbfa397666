package benchkit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// The catch-up benchmarks: an upstream application's log of deposits, and what follows it in the
// same database: a projection of balances (one UPSERT per event) and a process application that
// books every deposit on an account of its own. Each is measured through package projection's runners
// and beside a hand-written loop that does the same work with the least code.

// SQLRecorder is a recorder whose database holds an application's log, the tracking of its
// consumers and their read models: the SQLite and PostgreSQL process recorders.
type SQLRecorder interface {
	es.ProcessRecorder
	projection.SQLTracker
}

const (
	// CatchUpSave is how many events the upstream application records per save (InsertEvents call).
	CatchUpSave = 100
	// CatchUpPage is how many notifications the hand-written loops read per page and commit per
	// transaction.
	CatchUpPage = 1000
)

// CatchUp is an upstream application ("bank") whose log holds deposits, ten per account, encoded by
// AppMapper, with a read model of balances in the same database as its recorder. Every call of its
// operations is a consumer of a new name, which starts from the first notification; all of them write
// the same read model, whose rows they update alike.
type CatchUp struct {
	App projection.Application // the upstream application

	rec       SQLRecorder
	db        *sql.DB
	tables    []string // the read model's tables: CREATE TABLE statements
	ids       []int64  // the log's notification IDs, in order
	upsert    string   // the projection's statement
	position  string   // the hand-written loop's position: read
	advance   string   // and recorded
	consumers atomic.Int64
}

// NewCatchUp returns a CatchUp on rec, whose database is db, with an empty log; schemaName is the
// PostgreSQL schema of rec's tables, where the read model's go too ("" on SQLite). Fill makes the read
// model's tables and records the log.
func NewCatchUp(rec SQLRecorder, db *sql.DB, schemaName string) *CatchUp {
	if schemaName != "" {
		schemaName += "."
	}
	return &CatchUp{App: projection.Application{Name: "bank", Store: eventstore.New(AppMapper(), rec)}, rec: rec, db: db,
		tables: []string{
			"CREATE TABLE IF NOT EXISTS " + schemaName + "bench_balances (account_id text PRIMARY KEY, balance bigint NOT NULL, deposits bigint NOT NULL)",
			"CREATE TABLE IF NOT EXISTS " + schemaName + "bench_positions (name text PRIMARY KEY, notification_id bigint NOT NULL)",
		},
		upsert: fmt.Sprintf(`INSERT INTO %sbench_balances AS b (account_id, balance, deposits) VALUES ($1, $2, 1)
ON CONFLICT (account_id) DO UPDATE SET balance = b.balance + excluded.balance, deposits = b.deposits + 1`, schemaName),
		position: fmt.Sprintf(`SELECT notification_id FROM %sbench_positions WHERE name = $1`, schemaName),
		advance: fmt.Sprintf(`INSERT INTO %sbench_positions AS p (name, notification_id) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET notification_id = excluded.notification_id`, schemaName),
	}
}

// Fill makes the read model's tables, unless they exist, and records deposits until the log holds
// events, in saves of CatchUpSave events.
func (c *CatchUp) Fill(ctx context.Context, events int) error {
	for _, table := range c.tables {
		if _, err := c.db.ExecContext(ctx, table); err != nil {
			return fmt.Errorf("benchkit: create the read model: %w", err)
		}
	}
	for len(c.ids) < events {
		if err := c.record(ctx, min(events-len(c.ids), CatchUpSave)); err != nil {
			return fmt.Errorf("benchkit: record the upstream log: %w", err)
		}
	}
	return nil
}

// record saves n deposits, to accounts of ten deposits each, in one InsertEvents call.
func (c *CatchUp) record(ctx context.Context, n int) error {
	events := make([]aggregate.Event, n)
	var id uuid.UUID
	for i := range events {
		if i%10 == 0 {
			id = NewID()
		}
		events[i] = aggregate.Event{OriginatorID: id, OriginatorVersion: int64(i%10 + 1), Timestamp: time.Now().UTC(), Data: Deposit(len(c.ids) + i)}
	}
	ids, err := c.App.Store.Put(ctx, events)
	c.ids = append(c.ids, ids...)
	return err
}

// Events returns how many events the log holds.
func (c *CatchUp) Events() int { return len(c.ids) }

// consumer returns a new consumer name.
func (c *CatchUp) consumer(name string) string {
	return name + "-" + strconv.FormatInt(c.consumers.Add(1), 10)
}

// Project is the projection: one UPSERT of the deposit's account in the balances table.
func (c *CatchUp) Project(ctx context.Context, tx projection.SQLTx, e aggregate.Event) error {
	d, ok := e.Data.(MoneyDeposited)
	if !ok {
		return fmt.Errorf("benchkit: project a %T", e.Data)
	}
	_, err := tx.ExecContext(ctx, c.upsert, e.OriginatorID.String(), d.Amount)
	return err
}

// first returns the ID of the n-th notification of the log, or an error when it has fewer.
func (c *CatchUp) first(n int) (int64, error) {
	if n < 1 || n > len(c.ids) {
		return 0, fmt.Errorf("benchkit: catch up with %d events of a log of %d", n, len(c.ids))
	}
	return c.ids[n-1], nil
}

// RunnerOp catches up, per call, with the first n events of the log through a new projection runner
// (projection.NewRunner of Project on projection.SQL of the recorder) with opts; its units are events.
func (c *CatchUp) RunnerOp(name string, n int, opts ...projection.Option) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		last, err := c.first(n)
		if err != nil {
			return 0, err
		}
		r, err := projection.NewRunner(c.consumer(name), c.App, projection.SQL(c.rec), c.Project, opts...)
		if err != nil {
			return 0, err
		}
		return n, runUntil(ctx, r, last)
	}}
}

// runUntil runs r until it has processed notification id, then stops it.
func runUntil[Tx any](ctx context.Context, r *projection.Runner[Tx], id int64) error {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	err := r.Wait(ctx, id)
	cancel()
	if runErr := <-done; err == nil {
		err = runErr
	}
	return err
}

// LoopOp catches up, per call, with the whole log by hand: it reads its position from a table of its
// own, reads the log in pages of CatchUpPage (the recorder's SelectNotifications), and applies each
// page in one transaction of the database: every event decoded with the mapper and applied with
// Project, and the new position recorded. Its units are events.
func (c *CatchUp) LoopOp(name string) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		consumer := c.consumer(name)
		var after int64
		if err := c.db.QueryRowContext(ctx, c.position, consumer).Scan(&after); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
		return c.loop(ctx, after, func(ctx context.Context, events []aggregate.Event, last int64) error {
			tx, err := c.db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			for _, e := range events {
				if err := c.Project(ctx, tx, e); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, c.advance, consumer, last); err != nil {
				return err
			}
			return tx.Commit()
		})
	}}
}

// loop reads the log after the notification after in pages, decodes each page's events and has apply
// process them, and returns how many it processed; it fails unless that is the whole log.
func (c *CatchUp) loop(ctx context.Context, after int64, apply func(ctx context.Context, events []aggregate.Event, last int64) error) (int, error) {
	n := 0
	for {
		ns, err := c.rec.SelectNotifications(ctx, es.NotificationQuery{After: after, Limit: CatchUpPage})
		if err != nil {
			return n, err
		}
		if len(ns) == 0 {
			if n != len(c.ids) {
				return n, fmt.Errorf("benchkit: caught up with %d events of a log of %d", n, len(c.ids))
			}
			return n, nil
		}
		events := make([]aggregate.Event, len(ns))
		for i, note := range ns {
			if events[i], err = c.App.Store.Mapper().Decode(note.StoredEvent); err != nil {
				return n, err
			}
		}
		after = ns[len(ns)-1].ID
		if err := apply(ctx, events, after); err != nil {
			return n, err
		}
		n += len(ns)
	}
}

// ledger returns the event store and the repository of accounts of a process application recording
// into follower, with the upstream's mapper.
func (c *CatchUp) ledger(follower es.ProcessRecorder) (*eventstore.EventStore, *Repository, error) {
	store := eventstore.New(c.App.Store.Mapper(), follower)
	accounts, err := repository.New[Account](store)
	return store, accounts, err
}

// book is the policy of the process applications (and of their hand-written loop): consumer books
// each upstream deposit on an account of its own for the upstream account, which it opens at the
// first deposit, so that every event creates or changes one aggregate. The accounts of every
// consumer are new, so every call starts from nothing.
func book(ctx context.Context, accounts *Repository, consumer string, e aggregate.Event) (*Account, error) {
	d, ok := e.Data.(MoneyDeposited)
	if !ok {
		return nil, fmt.Errorf("benchkit: book a %T", e.Data)
	}
	id := aggregate.NameID(e.OriginatorID, consumer)
	a, err := accounts.Get(ctx, id)
	switch {
	case errors.Is(err, es.ErrNotFound):
		a = &Account{}
		a.ID = id
		aggregate.Trigger(a, AccountOpened{Owner: d.Counterparty, Currency: d.Currency})
	case err != nil:
		return nil, err
	default:
		aggregate.Trigger(a, d)
	}
	return a, nil
}

// ProcessOp catches up, per call, with the first n events of the log through a new process
// application (projection.NewProcess, with opts) recording into follower, whose policy is book; its
// units are events.
func (c *CatchUp) ProcessOp(name string, follower es.ProcessRecorder, n int, opts ...projection.Option) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		store, accounts, err := c.ledger(follower)
		last, ferr := c.first(n)
		if err = errors.Join(err, ferr); err != nil {
			return 0, err
		}
		consumer := c.consumer(name)
		r, err := projection.NewProcess(projection.Application{Name: consumer, Store: store,
			Policy: func(ctx context.Context, p *projection.Processing, e aggregate.Event) error {
				a, err := book(ctx, accounts, consumer, e)
				if err == nil {
					p.Collect(a)
				}
				return err
			}}, c.App, opts...)
		if err != nil {
			return 0, err
		}
		return n, runUntil(ctx, r, last)
	}}
}

// ProcessLoopOp catches up, per call, with the whole log by hand, doing a process application's work:
// it reads its tracking mark in follower, reads the log in pages of CatchUpPage as LoopOp does, runs book
// for each event of a page (in a repository.UnitOfWork, so that the page's later events find the
// accounts as the earlier ones left them), and saves the new events of the page with the tracking of
// its last notification in one InsertEvents call. Its units are events.
func (c *CatchUp) ProcessLoopOp(name string, follower es.ProcessRecorder) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		store, accounts, err := c.ledger(follower)
		if err != nil {
			return 0, err
		}
		consumer := c.consumer(name)
		mark, err := follower.MaxTrackingID(ctx, consumer, c.App.Name)
		if err != nil {
			return 0, err
		}
		return c.loop(ctx, mark, func(ctx context.Context, events []aggregate.Event, last int64) error {
			unit := repository.NewUnitOfWork()
			var aggs []aggregate.Root
			seen := make(map[*Account]bool)
			for _, e := range events {
				a, err := book(repository.WithUnitOfWork(ctx, unit), accounts, consumer, e)
				if err != nil {
					return err
				}
				if !seen[a] {
					seen[a] = true
					aggs = append(aggs, a)
					unit.Add(a)
				}
			}
			t := es.Tracking{Consumer: consumer, Upstream: c.App.Name, NotificationID: last, Prior: mark}
			_, err := repository.SaveAll(ctx, store, aggs, es.WithTracking(t))
			mark = last
			return err
		})
	}}
}

// PerEventOp catches up, per call, with the first n events of the log as the runners did before they
// processed batches: each notification decoded as the subscription yields it and processed in a
// transaction of its own with its tracking record. process chooses the work: book into follower (one
// InsertEvents with tracking per event), or else Project through the recorder's tracked transactions.
// It is the baseline of what batching gains; its units are events.
func (c *CatchUp) PerEventOp(name string, follower es.ProcessRecorder, n int) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		last, err := c.first(n)
		if err != nil {
			return 0, err
		}
		consumer := c.consumer(name)
		var store *eventstore.EventStore
		var accounts *Repository
		if follower != nil {
			if store, accounts, err = c.ledger(follower); err != nil {
				return 0, err
			}
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var mark int64
		for nt, err := range c.rec.Subscribe(ctx, 0) {
			if err != nil {
				return 0, err
			}
			e, err := c.App.Store.Mapper().DecodeContext(ctx, nt.StoredEvent)
			if err != nil {
				return 0, err
			}
			t := es.Tracking{Consumer: consumer, Upstream: c.App.Name, NotificationID: nt.ID, Prior: mark}
			if follower == nil {
				err = c.rec.ProcessTracked(ctx, t, func(ctx context.Context, tx projection.SQLTx) error { return c.Project(ctx, tx, e) })
			} else {
				var a *Account
				if a, err = book(ctx, accounts, consumer, e); err == nil {
					_, err = repository.SaveAll(ctx, store, []aggregate.Root{a}, es.WithTracking(t))
				}
			}
			if err != nil {
				return 0, err
			}
			if mark = nt.ID; mark >= last {
				break
			}
		}
		return n, nil
	}}
}

// Live is a projection runner (of Project, as RunnerOp's) that follows a CatchUp's log as it grows.
type Live struct {
	c       *CatchUp
	r       *projection.Runner[projection.SQLTx]
	samples int
	close   func() error
}

// Live starts a runner with opts on the log, in the background until ctx ends or Close is called, and
// returns once it has caught up. Its Measure takes samples latencies.
func (c *CatchUp) Live(ctx context.Context, name string, samples int, opts ...projection.Option) (*Live, error) {
	r, err := projection.NewRunner(c.consumer(name), c.App, projection.SQL(c.rec), c.Project, opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	l := &Live{c: c, r: r, samples: samples, close: sync.OnceValue(func() error { cancel(); return <-done })}
	if len(c.ids) > 0 {
		if err := r.Wait(ctx, c.ids[len(c.ids)-1]); err != nil {
			return nil, errors.Join(err, l.Close())
		}
	}
	return l, nil
}

// Close stops the runner and returns the error it stopped with, if any.
func (l *Live) Close() error { return l.close() }

// Measure records deposits in the log, one at a time, each once the runner has applied the one
// before, and returns the latency of each (as many as Live was given): the time from its commit
// (InsertEvents returning) to the commit of the runner's transaction that applied it (Wait returning).
// It is a LatencyFunc, without a baseline.
func (l *Live) Measure(ctx context.Context) (latencies, _ []time.Duration, err error) {
	latencies = make([]time.Duration, l.samples)
	for i := range latencies {
		ids, err := l.c.App.Store.Put(ctx, []aggregate.Event{{OriginatorID: NewID(), OriginatorVersion: 1, Timestamp: time.Now().UTC(), Data: Deposit(i)}})
		committed := time.Now()
		if err != nil {
			return nil, nil, err
		}
		l.c.ids = append(l.c.ids, ids...)
		if err := l.r.Wait(ctx, ids[0]); err != nil {
			return nil, nil, err
		}
		latencies[i] = time.Since(committed)
	}
	return latencies, nil, nil
}
