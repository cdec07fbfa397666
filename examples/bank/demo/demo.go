// Package demo is the bank example's script: what `go run ./examples/bank` does, and, traced, what
// the OpenTelemetry module's copy of the example (otel/examples/bank) does.
//
// It opens accounts, deposits, withdraws (a withdrawal the balance does not cover fails and records
// nothing), and transfers money between accounts (both accounts' events saved atomically). Events are
// compressed and encrypted, each account's with a data key of its own; accounts are snapshotted every
// few events. At the end it forgets an account holder (crypto-shredding) and shows that the rest
// carries on. A projection keeps the balances per owner in a SQL table, and a process application,
// "compliance", flags large transfers by recording events of its own together with the tracking of
// the bank events it has processed.
package demo

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/examples/bank/bank"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/observe"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/repository"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// Config is where the example runs and what observes it.
type Config struct {
	// DB is the SQLite database file; "" makes a new file in a temporary directory, removed at the end.
	DB string
	// Postgres, when set, is the DSN of a PostgreSQL database in which the example runs, in the
	// schemas "bank" and "compliance", instead of SQLite.
	Postgres string
	// Keys is the key ring (ID:BASE64,…; see cipher.ParseKeyRing); "" makes a new one, never shown.
	Keys string
	// Tracer, when set, is given to every recorder, event store, repository and runner.
	Tracer observe.Tracer
}

// Flags defines the example's flags on fs and returns the Config they fill in, with the key ring from
// ES_CIPHER_KEYS and the PostgreSQL DSN defaulting to ES_POSTGRES_DSN.
func Flags(fs *flag.FlagSet) *Config {
	c := &Config{Keys: os.Getenv("ES_CIPHER_KEYS")}
	fs.StringVar(&c.DB, "db", "", "SQLite database file (default: a new file in a temporary directory)")
	fs.StringVar(&c.Postgres, "postgres", os.Getenv("ES_POSTGRES_DSN"), "PostgreSQL DSN; when set, the example runs on PostgreSQL (default $ES_POSTGRES_DSN)")
	return c
}

// recorder is what the example needs of a recorder: the application's events and notification log,
// tracking, and transactions for the projection's read model.
type recorder interface {
	es.ProcessRecorder
	projection.SQLTracker
}

// storage is the example's databases: the bank application's, with its snapshots and the read model,
// and the compliance application's own.
type storage struct {
	db         *sql.DB // the bank's database, where the read model lives too
	bank       recorder
	snapshots  es.AggregateRecorder
	keys       datakey.Store // the bank's data keys
	compliance es.ProcessRecorder
	describe   string
	close      func()
}

// Run runs the example, writing what it does to out.
func Run(ctx context.Context, out io.Writer, c Config) error {
	var st *storage
	var err error
	if c.Postgres != "" {
		st, err = openPostgres(ctx, c.Postgres, c.Tracer)
	} else {
		st, err = openSQLite(ctx, c.DB, c.Tracer)
	}
	if err != nil {
		return err
	}
	defer st.close()
	fmt.Fprintln(out, "storage:", st.describe)

	keyRing := c.Keys
	if keyRing == "" {
		key, err := cipher.GenerateKey(256)
		if err != nil {
			return err
		}
		keyRing = "1:" + key
		fmt.Fprintln(out, "key ring: new, not shown, so this run's data cannot be read again (to reuse a database, set ES_CIPHER_KEYS before its first run)")
	}
	ring, err := cipher.ParseKeyRing(keyRing)
	if err != nil {
		return err
	}
	keys, err := datakey.New(ring, st.keys) // a data key per account, wrapped by the ring
	if err != nil {
		return err
	}
	m, err := mapper.New(bank.Registry(), mapper.WithCompression(mapper.DefaultCompressionQuality), mapper.WithDataKeys(keys))
	if err != nil {
		return err
	}
	cm, err := mapper.New(bank.ComplianceRegistry(), mapper.WithKeyRing(ring))
	if err != nil {
		return err
	}

	traced := eventstore.WithTracer(c.Tracer)
	bankApp := projection.Application{Name: "bank", Store: eventstore.New(m, st.bank, traced)}
	complianceApp := projection.Application{
		Name:   "compliance",
		Store:  eventstore.New(cm, st.compliance, traced),
		Policy: bank.CompliancePolicy(1000_00),
	}
	svc, err := bank.NewService(bankApp.Store, eventstore.New(m, st.snapshots, traced), 5, repository.WithTracer(c.Tracer))
	if err != nil {
		return err
	}

	// Downstream: two projections, with tracking marks of their own in one database, and the compliance
	// process follow the bank's log.
	for _, table := range []string{bank.BalancesTable, bank.ActivityTable} {
		if _, err := st.db.ExecContext(ctx, table); err != nil {
			return fmt.Errorf("create read model: %w", err)
		}
	}
	balances, err := projection.NewRunner("balances", bankApp, projection.SQL(st.bank), bank.Balances,
		projection.WithReset(bank.ResetBalances), projection.WithTracer(c.Tracer))
	if err != nil {
		return err
	}
	activity, err := projection.NewBatchRunner("activity", bankApp, projection.SQL(st.bank), bank.Activity,
		projection.WithReset(bank.ResetActivity), projection.WithTracer(c.Tracer))
	if err != nil {
		return err
	}
	system := projection.NewSystem()
	if err := system.Add(bankApp, complianceApp); err != nil {
		return err
	}
	if err := system.Follow("compliance", "bank", projection.WithTracer(c.Tracer)); err != nil {
		return err
	}
	downstream, stopDownstream := context.WithCancel(ctx)
	defer stopDownstream()
	errs := make(chan error, 3)
	go func() { errs <- balances.Run(downstream) }()
	go func() { errs <- activity.Run(downstream) }()
	go func() { errs <- system.Run(downstream) }()

	// What earlier runs on the same database recorded is left alone: their events may be encrypted with
	// another key.
	complianceBefore, err := st.compliance.MaxNotificationID(ctx)
	if err != nil {
		return err
	}

	// Upstream: the bank's commands.
	step := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		fmt.Fprintln(out, "  ", what)
		return nil
	}
	fmt.Fprintln(out, "commands:")
	ada, err := svc.OpenAccount(ctx, "ada")
	if err := step("open account of ada", err); err != nil {
		return err
	}
	bob, err := svc.OpenAccount(ctx, "bob")
	if err := step("open account of bob", err); err != nil {
		return err
	}
	ada2, err := svc.OpenAccount(ctx, "ada")
	if err := step("open a second account of ada", err); err != nil {
		return err
	}
	if err := step("deposit 2,500.00 to ada", svc.Deposit(ctx, ada, 2500_00)); err != nil {
		return err
	}
	if err := step("withdraw 200.00 from ada", svc.Withdraw(ctx, ada, 200_00)); err != nil {
		return err
	}
	err = svc.Withdraw(ctx, bob, 50_00)
	if !errors.Is(err, bank.ErrInsufficientFunds) {
		return fmt.Errorf("withdraw from an empty account: got %v, want insufficient funds", err)
	}
	fmt.Fprintln(out, "   withdraw 50.00 from bob: refused, nothing recorded:", err)
	if err := step("transfer 300.00 from ada to bob (both accounts saved atomically)", svc.Transfer(ctx, ada, bob, 300_00)); err != nil {
		return err
	}
	if err := step("transfer 1,500.00 from ada to bob (large: compliance flags it)", svc.Transfer(ctx, ada, bob, 1500_00)); err != nil {
		return err
	}
	for i := 1; i <= 6; i++ {
		if err := svc.Deposit(ctx, ada2, int64(i)*10_00); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "   deposit 6 times to ada's second account (a snapshot is taken every 5 events)")

	fmt.Fprintln(out, "accounts (loaded from snapshots and events):")
	names := map[uuid.UUID]string{ada: "ada", bob: "bob", ada2: "ada (2nd)"}
	for _, id := range []uuid.UUID{ada, bob, ada2} {
		a, err := svc.Accounts.Get(ctx, id)
		if err != nil {
			return err
		}
		snaps, err := st.snapshots.SelectEvents(ctx, id, es.EventQuery{})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "   %-10s version %2d  balance %9s  snapshots %d\n", names[id], a.Version, bank.Money(a.Balance), len(snaps))
	}
	first, err := svc.Accounts.GetAt(ctx, ada, 2)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   ada at version 2: balance %s\n", bank.Money(first.Balance))

	stored, err := st.bank.SelectEvents(ctx, ada, es.EventQuery{Limit: 1})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "stored state of ada's first event (%s): %d bytes, encrypted: %x…\n",
		stored[0].Topic, len(stored[0].State), stored[0].State[:min(16, len(stored[0].State))])

	// Read-your-writes downstream: wait until both followers have processed the last notification.
	last, err := st.bank.MaxNotificationID(ctx)
	if err != nil {
		return err
	}
	if err := balances.Wait(ctx, last); err != nil {
		return fmt.Errorf("balances projection: %w", err)
	}
	if err := activity.Wait(ctx, last); err != nil {
		return fmt.Errorf("activity projection: %w", err)
	}
	if err := system.Wait(ctx, "compliance", "bank", last); err != nil {
		return fmt.Errorf("compliance process: %w", err)
	}
	fmt.Fprintf(out, "projection (balances by owner, up to notification %d, including earlier runs on this database):\n", last)
	err = eachRow(ctx, st.db, bank.BalancesByOwner, func(owner string, total int64) {
		fmt.Fprintf(out, "   %-5s %9s\n", owner, bank.Money(total))
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "projection (activity, batches of events counted at once, in the same database):")
	err = eachRow(ctx, st.db, bank.ActivityByKind, func(kind string, n int64) {
		fmt.Fprintf(out, "   %-16s %3d\n", kind, n)
	})
	if err != nil {
		return err
	}
	for _, r := range []interface {
		Status(context.Context) (projection.Status, error)
	}{balances, activity} {
		s, err := r.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "   %-8s at notification %d of %d: lag %d\n", s.Consumer, s.Position, s.Head, s.Lag)
	}

	fmt.Fprintln(out, "compliance (process application):")
	reviews, err := repository.New[bank.Review](complianceApp.Store, repository.WithTracer(c.Tracer))
	if err != nil {
		return err
	}
	notes, err := st.compliance.SelectNotifications(ctx, es.NotificationQuery{After: complianceBefore, Limit: 100})
	if err != nil {
		return err
	}
	for _, n := range notes {
		r, err := reviews.Get(ctx, n.OriginatorID)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "   flagged transfer of %s from %s to %s\n", bank.Money(r.Transfer.Amount), names[r.Transfer.From], names[r.Transfer.To])
	}
	tracked, err := st.compliance.MaxTrackingID(ctx, "compliance", "bank")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   has processed the bank's notifications up to %d\n", tracked)

	// Bob asks to be forgotten: deleting his account's data key makes its events and snapshots
	// unreadable for good, without touching the log. The read model is the application's to clean.
	fmt.Fprintln(out, "forget bob (crypto-shredding):")
	if err := keys.Forget(ctx, bob.String()); err != nil {
		return err
	}
	if _, err := st.db.ExecContext(ctx, bank.ForgetBalance, bob.String()); err != nil {
		return err
	}
	if _, err := svc.Accounts.Get(ctx, bob); !errors.Is(err, datakey.ErrForgotten) {
		return fmt.Errorf("bob's account after forgetting him: got %v, want datakey.ErrForgotten", err)
	}
	fmt.Fprintln(out, "   bob's account cannot be read any more: datakey.ErrForgotten")
	if err := svc.Transfer(ctx, ada, bob, 1_00); !errors.Is(err, datakey.ErrForgotten) {
		return fmt.Errorf("transfer to bob after forgetting him: got %v, want datakey.ErrForgotten", err)
	}
	fmt.Fprintln(out, "   transfer 1.00 from ada to bob: refused, nothing recorded")
	if err := step("transfer 100.00 from ada to her second account: the rest carries on", svc.Transfer(ctx, ada, ada2, 100_00)); err != nil {
		return err
	}
	if last, err = st.bank.MaxNotificationID(ctx); err != nil {
		return err
	}
	if err := balances.Wait(ctx, last); err != nil {
		return fmt.Errorf("balances projection: %w", err)
	}
	for _, id := range []uuid.UUID{ada, ada2} {
		a, err := svc.Accounts.Get(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "   %-10s version %2d  balance %9s\n", names[id], a.Version, bank.Money(a.Balance))
	}

	stopDownstream()
	for range 3 {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

func openSQLite(ctx context.Context, path string, tracer observe.Tracer) (*storage, error) {
	var cleanup []func()
	closeAll := func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	if path == "" {
		dir, err := os.MkdirTemp("", "bank-example-")
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { os.RemoveAll(dir) })
		path = filepath.Join(dir, "bank.db")
	}
	open := func(path string) (*sql.DB, error) {
		db, err := ncruces.Open(ctx, path)
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { db.Close() })
		return db, schema.Migrate(ctx, db, schema.SQLite)
	}
	st := &storage{describe: "SQLite " + path, close: closeAll}
	db, err := open(path)
	if err != nil {
		closeAll()
		return nil, err
	}
	st.db = db
	bankRec, err := sqlite.NewProcessRecorder(ctx, db, sqlite.WithTracer(tracer))
	if err != nil {
		closeAll()
		return nil, err
	}
	cleanup = append(cleanup, func() { bankRec.Close() })
	snaps, err := sqlite.NewSnapshotRecorder(ctx, db, sqlite.WithTracer(tracer))
	if err != nil {
		closeAll()
		return nil, err
	}
	cleanup = append(cleanup, func() { snaps.Close() })
	// Each application has a database of its own.
	cdb, err := open(path + "-compliance.db")
	if err != nil {
		closeAll()
		return nil, err
	}
	compliance, err := sqlite.NewProcessRecorder(ctx, cdb, sqlite.WithTracer(tracer))
	if err != nil {
		closeAll()
		return nil, err
	}
	cleanup = append(cleanup, func() { compliance.Close() })
	keys, err := sqlite.NewKeyStore(ctx, db)
	if err != nil {
		closeAll()
		return nil, err
	}
	st.bank, st.snapshots, st.keys, st.compliance = bankRec, snaps, keys, compliance
	return st, nil
}

func openPostgres(ctx context.Context, dsn string, tracer observe.Tracer) (*storage, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres DSN: %w", err)
	}
	// The recorders name their schemas explicitly; the read model's table, which the projection's SQL
	// names plainly, goes to the bank's schema through the connections' search_path.
	cfg.RuntimeParams["search_path"] = "bank"
	db := stdlib.OpenDB(*cfg)
	var cleanup []func()
	cleanup = append(cleanup, func() { db.Close() })
	closeAll := func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	fail := func(err error) (*storage, error) {
		closeAll()
		return nil, err
	}
	for _, s := range []string{"bank", "compliance"} {
		if err := schema.Migrate(ctx, db, schema.Postgres, schema.WithSchema(s)); err != nil {
			return fail(err)
		}
	}
	bankRec, err := postgres.NewProcessRecorder(ctx, db, postgres.WithSchema("bank"), postgres.WithTracer(tracer))
	if err != nil {
		return fail(err)
	}
	cleanup = append(cleanup, func() { bankRec.Close() })
	snaps, err := postgres.NewSnapshotRecorder(ctx, db, postgres.WithSchema("bank"), postgres.WithTracer(tracer))
	if err != nil {
		return fail(err)
	}
	compliance, err := postgres.NewProcessRecorder(ctx, db, postgres.WithSchema("compliance"), postgres.WithTracer(tracer))
	if err != nil {
		return fail(err)
	}
	cleanup = append(cleanup, func() { compliance.Close() })
	keys, err := postgres.NewKeyStore(ctx, db, postgres.WithSchema("bank"))
	if err != nil {
		return fail(err)
	}
	return &storage{db: db, bank: bankRec, snapshots: snaps, keys: keys, compliance: compliance,
		describe: "PostgreSQL, schemas bank and compliance", close: closeAll}, nil
}

// eachRow runs query, whose rows are a name and a number, and calls f with each row.
func eachRow(ctx context.Context, db *sql.DB, query string, f func(name string, n int64)) error {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			return err
		}
		f(name, n)
	}
	return rows.Err()
}
