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
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/schema"
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
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := schema.Migrate(ctx, db, schema.SQLite); err != nil {
		t.Fatal(err)
	}
	rec, err := sqlite.NewProcessRecorder(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	return &sqliteTracker{db: db, ProcessRecorder: rec}
}

// The subprocess test: a child process runs a projection of an upstream application on the SQLite
// recorder into a SQLite file of its own, and is killed with SIGKILL inside an event's transaction,
// three times; a last run completes while the parent records more upstream events. Every event must
// be applied exactly once, and the read model must equal that of a single pass.

const (
	childEnv      = "PROJECTION_TEST_CHILD"    // "stop:<k>" blocks in the transaction of the k-th event it processes; "finish"
	childDB       = "PROJECTION_TEST_DB"       // the projection's database
	childUpstream = "PROJECTION_TEST_UPSTREAM" // the upstream application's database
	childMany     = 300
)

// openUpstream opens the upstream application "bank" on the SQLite recorder.
func openUpstream(t testing.TB, path string) projection.Application {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := schema.Migrate(ctx, db, schema.SQLite); err != nil {
		t.Fatal(err)
	}
	rec, err := sqlite.NewProcessRecorder(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	return projection.Application{Name: "bank", Store: eventstore.New(must(mapper.New(registry())), rec)}
}

// childProjection writes the balances of owners and a log of applied events, which has no key, so
// that an event applied twice would show.
func childProjection(ctx context.Context, tx projection.SQLTx, e aggregate.Event) error {
	d := e.Data.(Deposited)
	if _, err := tx.ExecContext(ctx, `INSERT INTO balances (owner, total, n) VALUES (?, ?, 1)
		ON CONFLICT (owner) DO UPDATE SET total = total + excluded.total, n = n + 1`, d.Owner, d.Amount); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO applied (originator, version) VALUES (?, ?)", e.OriginatorID.String(), e.OriginatorVersion)
	return err
}

func childSchema(t testing.TB, db *sql.DB) {
	t.Helper()
	for _, stmt := range []string{
		"CREATE TABLE IF NOT EXISTS balances (owner TEXT PRIMARY KEY, total INTEGER NOT NULL, n INTEGER NOT NULL)",
		"CREATE TABLE IF NOT EXISTS applied (originator TEXT NOT NULL, version INTEGER NOT NULL)",
	} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
}

// TestChildProjection is the child's side; it does nothing unless started by TestKillAndRestart.
func TestChildProjection(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("run by TestKillAndRestart in a child process")
	}
	tr := openSQLite(t, os.Getenv(childDB))
	childSchema(t, tr.db)
	upstream := openUpstream(t, os.Getenv(childUpstream))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stopAt := -1
	if k, ok := strings.CutPrefix(mode, "stop:"); ok {
		stopAt, _ = strconv.Atoi(k)
	}
	calls := 0
	r, err := projection.NewRunner(upstream, projection.SQL(tr), func(ctx context.Context, tx projection.SQLTx, e aggregate.Event) error {
		if err := childProjection(ctx, tx, e); err != nil {
			return err
		}
		if calls++; calls == stopAt {
			fmt.Printf("INSIDE %d\n", calls)
			os.Stdout.Sync()
			<-ctx.Done() // killed here, with the transaction open
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	if err := r.Wait(ctx, childMany); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	fmt.Println("DONE")
}

func TestKillAndRestart(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	path, upPath := filepath.Join(dir, "projection.db"), filepath.Join(dir, "bank.db")
	up := openUpstream(t, upPath)
	depositRange(t, up, 0, 200)                                    // the rest while the last child runs
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a failure guard only
	defer cancel()
	child := func(mode string) (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestChildProjection$", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"="+mode, childDB+"="+path, childUpstream+"="+upPath)
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
	killInside := func(k int) {
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
	}

	tr := openSQLite(t, path)
	childSchema(t, tr.db)
	mark := func() int64 {
		id, err := tr.MaxTrackingID(ctx, "bank")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	killInside(120) // events 1..119 committed, 120 in flight
	if got := mark(); got != 119 {
		t.Fatalf("after a kill inside event 120, the mark is %d, want 119", got)
	}
	killInside(1) // killed inside its first event: nothing more committed
	if got := mark(); got != 119 {
		t.Fatalf("after a kill inside event 120 again, the mark is %d, want 119", got)
	}
	killInside(60) // 120..178 committed
	if got := mark(); got != 178 {
		t.Fatalf("after a kill inside event 179, the mark is %d, want 178", got)
	}
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
	if err := tr.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM applied
		GROUP BY originator, version HAVING count(*) > 1)`).Scan(&dup); err != nil {
		t.Fatal(err)
	}
	var applied int
	if err := tr.db.QueryRowContext(ctx, "SELECT count(*) FROM applied").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if dup != 0 || applied != childMany {
		t.Fatalf("%d events applied, %d of them more than once; want %d, once each", applied, dup, childMany)
	}
	got := map[string]balance{}
	rows, err := tr.db.QueryContext(ctx, "SELECT owner, total, n FROM balances")
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
