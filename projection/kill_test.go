package projection_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventsourcing-go/eventsourcing/internal/sqlitetest"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// sqliteTracker is the SQLite process recorder, with the database it keeps its tracking in, where the
// projection's read model lives too.
type sqliteTracker struct {
	db *sql.DB
	*sqlite.ProcessRecorder
}

var _ projection.SQLTracker = (*sqlite.ProcessRecorder)(nil)

func openSQLite(t testing.TB, path string) *sqliteTracker {
	t.Helper()
	ctx := context.Background()
	db := sqlitetest.OpenMigrated(t, path)
	rec, err := sqlite.NewProcessRecorder(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	return &sqliteTracker{db: db, ProcessRecorder: rec}
}

// The subprocess test: a child process runs a projection of an upstream application (on the SQLite
// recorder) into a store of its own (a SQLite file, or a PostgreSQL schema), in batches, and is killed
// with SIGKILL in the middle of a batch's transaction, three times; a last run completes while the
// parent records more upstream events. Every event must be applied exactly once, and the read model
// must equal that of a single pass.

const (
	childEnv      = "PROJECTION_TEST_CHILD"    // "stop:<k>" blocks in the transaction of the k-th event it processes; "finish"
	childStore    = "PROJECTION_TEST_STORE"    // the kind of the projection's store: sqlite or postgres
	childDB       = "PROJECTION_TEST_DB"       // the projection's database file or schema
	childUpstream = "PROJECTION_TEST_UPSTREAM" // the upstream application's database
	childMany     = 300
	childBatch    = 25
)

// killStore is a kind of store for the projection of the subprocess test.
type killStore struct {
	name string
	// make creates a store for the test and returns its name (a file or a schema).
	make func(t *testing.T) string
	// open opens the store named name: its database (for checks) and its tracker.
	open func(t testing.TB, name string) (*sql.DB, projection.SQLTracker)
	// upsert adds an amount to an owner's balance; record logs an applied event (it has no key, so
	// an event applied twice shows). Both take their arguments in the dialect's placeholders.
	upsert, record string
}

var killStores = []killStore{
	{
		name: "sqlite",
		make: func(t *testing.T) string { return filepath.Join(t.TempDir(), "projection.db") },
		open: func(t testing.TB, path string) (*sql.DB, projection.SQLTracker) {
			tr := openSQLite(t, path)
			return tr.db, tr
		},
		upsert: `INSERT INTO balances (owner, total, n) VALUES (?, ?, 1)
			ON CONFLICT (owner) DO UPDATE SET total = balances.total + excluded.total, n = balances.n + 1`,
		record: "INSERT INTO applied (originator, version) VALUES (?, ?)",
	},
	{
		name: "postgres",
		make: func(t *testing.T) string {
			_, name := pgtest.Schema(t)
			return name
		},
		open: func(t testing.TB, name string) (*sql.DB, projection.SQLTracker) {
			db := pgtest.InSchema(t, name)
			rec, err := postgres.NewProcessRecorder(context.Background(), db, postgres.WithSchema(name))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rec.Close() })
			return db, rec
		},
		upsert: `INSERT INTO balances (owner, total, n) VALUES ($1, $2, 1)
			ON CONFLICT (owner) DO UPDATE SET total = balances.total + excluded.total, n = balances.n + 1`,
		record: "INSERT INTO applied (originator, version) VALUES ($1, $2)",
	},
}

func (s killStore) project(ctx context.Context, tx projection.SQLTx, e aggregate.Event) error {
	d := e.Data.(Deposited)
	if _, err := tx.ExecContext(ctx, s.upsert, d.Owner, d.Amount); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, s.record, e.OriginatorID.String(), e.OriginatorVersion)
	return err
}

func childSchema(t testing.TB, db *sql.DB) {
	t.Helper()
	for _, stmt := range []string{
		"CREATE TABLE IF NOT EXISTS balances (owner TEXT PRIMARY KEY, total BIGINT NOT NULL, n BIGINT NOT NULL)",
		"CREATE TABLE IF NOT EXISTS applied (originator TEXT NOT NULL, version BIGINT NOT NULL)",
	} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
}

// openUpstream opens the upstream application "bank" on the SQLite recorder.
func openUpstream(t testing.TB, path string) projection.Application {
	t.Helper()
	tr := openSQLite(t, path)
	return projection.Application{Name: "bank", Store: eventstore.New(must(mapper.New(registry())), tr.ProcessRecorder)}
}

// TestChildProjection is the child's side; it does nothing unless started by TestKillAndRestart.
func TestChildProjection(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("run by TestKillAndRestart in a child process")
	}
	i := slices.IndexFunc(killStores, func(s killStore) bool { return s.name == os.Getenv(childStore) })
	if i < 0 {
		t.Fatalf("unknown store %q", os.Getenv(childStore))
	}
	store := killStores[i]
	db, tr := store.open(t, os.Getenv(childDB))
	childSchema(t, db)
	upstream := openUpstream(t, os.Getenv(childUpstream))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stopAt := -1
	if k, ok := strings.CutPrefix(mode, "stop:"); ok {
		stopAt, _ = strconv.Atoi(k)
	}
	calls := 0
	r, err := projection.NewRunner("balances", upstream, projection.SQL(tr), func(ctx context.Context, tx projection.SQLTx, e aggregate.Event) error {
		if err := store.project(ctx, tx, e); err != nil {
			return err
		}
		if calls++; calls == stopAt {
			fmt.Printf("INSIDE %d\n", calls)
			os.Stdout.Sync()
			<-ctx.Done() // killed here, with the batch's transaction open
		}
		return nil
	}, projection.WithBatch(childBatch, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	runTo(ctx, t, r, childMany)
	fmt.Println("DONE")
}

func TestKillAndRestart(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in the child")
	}
	for _, store := range killStores {
		t.Run(store.name, func(t *testing.T) { killAndRestart(t, store) })
	}
}

func killAndRestart(t *testing.T, store killStore) {
	name := store.make(t)
	upPath := filepath.Join(t.TempDir(), "bank.db")
	up := openUpstream(t, upPath)
	depositRange(t, up, 0, 200)                                    // the rest while the last child runs
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a failure guard only
	defer cancel()
	child := func(mode string) (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestChildProjection$", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"="+mode, childStore+"="+store.name, childDB+"="+name, childUpstream+"="+upPath)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, bufio.NewScanner(out)
	}
	db, tr := store.open(t, name)
	childSchema(t, db)
	mark := func() int64 {
		id, err := tr.MaxTrackingID(ctx, "balances", "bank")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// killInside kills a child inside the transaction of the k-th event it processes, in the middle of
	// a batch: the batches before it are committed, the one in flight is not.
	killInside := func(k int) {
		before := mark()
		cmd, lines := child(fmt.Sprintf("stop:%d", k))
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), "INSIDE ") {
				break
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Success() {
			t.Fatalf("killed child: %v", err)
		}
		if after := mark(); after < before || after >= before+int64(k) {
			t.Fatalf("killed inside event %d after mark %d, the mark is %d: want a batch boundary in [%d, %d)",
				k, before, after, before, before+int64(k))
		}
	}
	killInside(120) // mid-batch: 5 batches of 25 and none in flight would be 125
	killInside(1)
	killInside(61)
	cmd, lines := child("finish")
	depositRange(t, up, 200, childMany) // delivered live, across processes
	finished := false
	for lines.Scan() {
		finished = finished || lines.Text() == "DONE"
	}
	if err := cmd.Wait(); err != nil || !finished {
		t.Fatalf("finishing child: %v (DONE printed: %v)", err, finished)
	}
	if got := mark(); got != childMany {
		t.Fatalf("the mark is %d, want %d", got, childMany)
	}

	var dup int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM applied
		GROUP BY originator, version HAVING count(*) > 1) AS d`).Scan(&dup); err != nil {
		t.Fatal(err)
	}
	var applied int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM applied").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if dup != 0 || applied != childMany {
		t.Fatalf("%d events applied, %d of them more than once; want %d, once each", applied, dup, childMany)
	}
	got := map[string]balance{}
	rows, err := db.QueryContext(ctx, "SELECT owner, total, n FROM balances")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var owner string
		var b balance
		if err := rows.Scan(&owner, &b.Total, &b.Count); err != nil {
			t.Fatal(err)
		}
		got[owner] = b
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := singlePass(t, childMany); !equalBalances(got, want) {
		t.Fatalf("read model after kills and restarts:\n%v\nsingle pass:\n%v", got, want)
	}
}
