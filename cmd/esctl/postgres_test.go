package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
)

// postgresSchema returns the DSN of the test server (ES_POSTGRES_DSN, as the module's other PostgreSQL
// tests use it), with a password when it has none (the test server trusts local connections, so any
// password does), and a fresh schema name, dropped when the test ends. It skips the test when the
// server cannot be reached, unless ES_REQUIRE_POSTGRES=1.
func postgresSchema(t *testing.T) (dsn, password, schemaName string, db *sql.DB) {
	t.Helper()
	dsn = os.Getenv("ES_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("ES_POSTGRES_DSN: %v", err)
	}
	if p, ok := u.User.Password(); ok {
		password = p
	} else {
		password = "esctl-test-password"
		u.User = url.UserPassword(u.User.Username(), password)
	}
	dsn = u.String()
	db, err = sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		if os.Getenv("ES_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL is not reachable (ES_REQUIRE_POSTGRES=1): %v", err)
		}
		t.Skipf("PostgreSQL is not reachable at ES_POSTGRES_DSN: %v", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	schemaName = "es_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		// schemaName is es_test_<hex>: a plain identifier, safe as SQL text.
		if _, err := db.Exec("DROP SCHEMA IF EXISTS " + schemaName + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schemaName, err)
		}
	})
	return dsn, password, schemaName, db
}

// From SQLite to PostgreSQL and back: notification IDs kept (a gap included), the target's sequence
// moved past them, resumable, passwords never printed.
func TestPostgresCopy(t *testing.T) {
	ctx := context.Background()
	dsn, password, name, db := postgresSchema(t)
	dir := t.TempDir()
	src, back := migrated(t, filepath.Join(dir, "src.db")), filepath.Join(dir, "back.db")
	seed(t, src, uuid.New(), uuid.New(), uuid.New())
	withSQLite(t, src, func(db *sql.DB, _ *sqlite.ProcessRecorder) {
		if _, err := db.Exec(`DELETE FROM events WHERE notification_id IN (2, 3)`); err != nil {
			t.Fatal(err)
		}
	})
	var printed strings.Builder
	do := func(args ...string) string {
		t.Helper()
		out, errOut, err := esctl(t, args...)
		printed.WriteString(out + errOut)
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(args[:1], " "), err)
		}
		return out
	}
	if out := do("migrate", "-dsn", dsn, "-schema", name); !strings.Contains(out, ":xxxxx@") {
		t.Fatalf("migrate does not show the DSN redacted: %q", out)
	}
	if out := do("copy", "-dsn", src, "-to", dsn, "-to-schema", name, "-batch", "4"); !strings.Contains(out, "copied 7 events") {
		t.Fatalf("copy to PostgreSQL: %q", out)
	}
	sameLog(t, []string{src}, []string{dsn, name})
	info := do("info", "-dsn", dsn, "-schema", name)
	if !strings.Contains(info, "max notification ID:    9") || !strings.Contains(info, ", PostgreSQL\n") || !strings.Contains(info, `(schema "`+name+`")`) {
		t.Fatalf("info on PostgreSQL:\n%s", info)
	}

	// The source grows; the copy resumes; the target's own appends follow the copied IDs.
	seed(t, src, uuid.New())
	if out := do("copy", "-dsn", src, "-to", dsn, "-to-schema", name); !strings.Contains(out, "resuming after notification 9") || !strings.Contains(out, "copied 3 events") {
		t.Fatalf("resumed copy to PostgreSQL: %q", out)
	}
	sameLog(t, []string{src}, []string{dsn, name})
	rec, err := postgres.NewProcessRecorder(ctx, db, postgres.WithSchema(name))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	ids, err := rec.InsertEvents(ctx, events(uuid.New(), 1))
	if err != nil || ids[0] != 13 {
		t.Fatalf("the next append got %v, %v; want notification 13", ids, err)
	}
	notes, err := rec.SelectNotifications(ctx, es.NotificationQuery{Limit: 100})
	if err != nil || len(notes) != 11 {
		t.Fatalf("the recorder reads %d notifications of the copy, %v", len(notes), err)
	}

	// Back to SQLite.
	if out := do("copy", "-dsn", dsn, "-schema", name, "-to", back); !strings.Contains(out, "copied 11 events") {
		t.Fatalf("copy from PostgreSQL: %q", out)
	}
	sameLog(t, []string{dsn, name}, []string{back})

	// An application appended to the target: copying into it again is refused.
	seed(t, src, uuid.New())
	_, _, err = esctl(t, "copy", "-dsn", src, "-to", dsn, "-to-schema", name)
	if !errors.Is(err, errTargetChanged) {
		t.Fatalf("copy into a target with an application's events: got %v", err)
	}
	if strings.Contains(printed.String()+err.Error(), password) {
		t.Fatalf("the password was printed:\n%s", printed.String())
	}
}

// The reading commands work where nothing can be written, as on a hot standby: here every transaction
// of the session is read-only (default_transaction_read_only), which refuses the same writes a standby
// does.
func TestPostgresReadOnlySession(t *testing.T) {
	ctx := context.Background()
	dsn, _, name, db := postgresSchema(t)
	if _, _, err := esctl(t, "migrate", "-dsn", dsn, "-schema", name); err != nil {
		t.Fatal(err)
	}
	rec, err := postgres.NewProcessRecorder(ctx, db, postgres.WithSchema(name))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	id := uuid.New()
	if _, err := rec.InsertEvents(ctx, events(id, 3)); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("default_transaction_read_only", "on") // pgx sends it as a run-time parameter
	u.RawQuery = q.Encode()
	readOnly := u.String()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"info", "-dsn", readOnly, "-schema", name}, "max notification ID:    3"},
		{[]string{"tail", "-dsn", readOnly, "-schema", name}, "test.E3"},
		{[]string{"events", "-dsn", readOnly, "-schema", name, "-id", id.String()}, "test.E3"},
		{[]string{"tracking", "-dsn", readOnly, "-schema", name}, ""},
	} {
		out, errOut, err := esctl(t, c.args...)
		if err != nil || !strings.Contains(out, c.want) {
			t.Errorf("esctl %s on a read-only session: %v\n%s%s", c.args[0], err, out, errOut)
		}
	}
}
