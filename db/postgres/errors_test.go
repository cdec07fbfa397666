package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// constructors are the two recorders' constructors, for tests of what they refuse.
var constructors = map[string]func(context.Context, *sql.DB, ...postgres.Option) (any, error){
	"process": func(ctx context.Context, db *sql.DB, opts ...postgres.Option) (any, error) {
		r, err := postgres.NewProcessRecorder(ctx, db, opts...)
		if r != nil {
			r.Close()
		}
		return r, err
	},
	"snapshot": func(ctx context.Context, db *sql.DB, opts ...postgres.Option) (any, error) {
		return postgres.NewSnapshotRecorder(ctx, db, opts...)
	},
}

// requireErr fails unless err is non-nil and its message contains every one of want.
func requireErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not mention %q", err, w)
		}
	}
}

func TestConstructorsRefuse(t *testing.T) {
	for name, newRecorder := range constructors {
		t.Run(name, func(t *testing.T) {
			t.Run("NilDB", func(t *testing.T) {
				_, err := newRecorder(t.Context(), nil)
				requireErr(t, err, "nil *sql.DB")
			})
			t.Run("MalformedDSN", func(t *testing.T) {
				pgtest.Open(t) // skips without a server, like the others
				db, err := sql.Open("pgx", "postgres://user@host:notaport/db")
				if err != nil {
					t.Fatalf("sql.Open: %v", err) // pgx parses the DSN only when connecting
				}
				defer db.Close()
				_, err = newRecorder(t.Context(), db)
				requireErr(t, err, "connect to the database", "cannot parse")
			})
			t.Run("UnreachableServer", func(t *testing.T) {
				pgtest.Open(t)
				db, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				defer cancel()
				start := time.Now()
				_, err = newRecorder(ctx, db)
				requireErr(t, err, "connect to the database")
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("took %v to give up", d)
				}
			})
			t.Run("ClosedDB", func(t *testing.T) {
				pgtest.Open(t)
				db, err := sql.Open("pgx", pgtest.DSN())
				if err != nil {
					t.Fatal(err)
				}
				db.Close()
				_, err = newRecorder(t.Context(), db)
				requireErr(t, err, "connect to the database", "database is closed")
			})
			t.Run("UnmigratedSchema", func(t *testing.T) {
				db := pgtest.Open(t)
				name := pgtest.EmptySchema(t, db)
				_, err := newRecorder(t.Context(), db, postgres.WithSchema(name))
				requireErr(t, err, name, "schema.Migrate(ctx, db, schema.Postgres, schema.WithSchema(\""+name+"\"))", "has none of the recorders' tables")
				if !errors.Is(err, schema.ErrNotMigrated) {
					t.Errorf("error %q does not wrap ErrNotMigrated", err)
				}
				// Nothing was created on the way.
				var exists bool
				if err := db.QueryRowContext(t.Context(), `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, name).Scan(&exists); err != nil {
					t.Fatal(err)
				}
				if exists {
					t.Errorf("schema %s exists after a refused constructor", name)
				}
			})
			t.Run("InvalidOptions", func(t *testing.T) {
				db, name := pgtest.Schema(t)
				for _, tt := range []struct {
					opt  postgres.Option
					want string
				}{
					{postgres.WithPollInterval(0), "WithPollInterval(0s)"},
					{postgres.WithPollInterval(-time.Second), "WithPollInterval(-1s)"},
					{postgres.WithLockTimeout(-time.Second), "WithLockTimeout(-1s)"},
					{postgres.WithReconnectTimeout(-time.Second), "WithReconnectTimeout(-1s)"},
					{postgres.WithOrdering(postgres.Ordering(99)), "unknown ordering"},
				} {
					_, err := newRecorder(t.Context(), db, postgres.WithSchema(name), nil, tt.opt)
					requireErr(t, err, tt.want)
				}
			})
			t.Run("InvalidSchemaNames", func(t *testing.T) {
				db, _ := pgtest.Schema(t)
				for _, bad := range []string{"x; drop table events", "Upper", "", strings.Repeat("a", 64), "1abc", `a"b`, "a.b", "é"} {
					_, err := newRecorder(t.Context(), db, postgres.WithSchema(bad))
					if !errors.Is(err, schema.ErrInvalidSchemaName) {
						t.Errorf("WithSchema(%q): error %v, want one wrapping schema.ErrInvalidSchemaName", bad, err)
					}
				}
				// The longest valid name is accepted (and then found unmigrated).
				_, err := newRecorder(t.Context(), db, postgres.WithSchema(strings.Repeat("a", 63)))
				if !errors.Is(err, schema.ErrNotMigrated) {
					t.Errorf("WithSchema(63 × a): error %v, want ErrNotMigrated", err)
				}
			})
		})
	}
}

func TestProcessRecorderRefusesOtherOrdering(t *testing.T) {
	db, name := pgtest.Schema(t)
	r, err := postgres.NewProcessRecorder(t.Context(), db, postgres.WithSchema(name), postgres.WithOrdering(postgres.OrderingTableLock))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	_, err = postgres.NewProcessRecorder(t.Context(), db, postgres.WithSchema(name), postgres.WithOrdering(postgres.OrderingXID))
	if !errors.Is(err, postgres.ErrOrderingMismatch) {
		t.Fatalf("xid recorder on a table_lock schema: error %v, want ErrOrderingMismatch", err)
	}
	requireErr(t, err, "table_lock", "xid")
	// Without WithOrdering the recorded one is used.
	r, err = postgres.NewProcessRecorder(t.Context(), db, postgres.WithSchema(name))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Ordering() != postgres.OrderingTableLock {
		t.Errorf("default ordering on a table_lock schema is %v", r.Ordering())
	}
	if _, err := postgres.NewProcessRecorder(t.Context(), db, postgres.WithSchema(name), postgres.WithOrdering(postgres.Ordering(42))); err == nil {
		t.Error("unknown ordering accepted")
	}
	if _, err := postgres.NewProcessRecorder(t.Context(), db, postgres.WithSchema(name), postgres.WithLockTimeout(-time.Second)); err == nil {
		t.Error("negative lock timeout accepted")
	}
}

func TestDefaultOrderingIsXID(t *testing.T) {
	r := newProcess(t)
	if r.Ordering() != postgres.OrderingXID {
		t.Errorf("default ordering of a new schema is %v, want xid", r.Ordering())
	}
}

func TestInvalidEventsRefused(t *testing.T) {
	r := newProcess(t)
	id := uuid.New()
	for _, events := range [][]es.StoredEvent{
		{{OriginatorID: uuid.Nil, OriginatorVersion: 1}},
		{{OriginatorID: id, OriginatorVersion: 0}},
		{{OriginatorID: id, OriginatorVersion: 1}, {OriginatorID: id, OriginatorVersion: -1}},
	} {
		if _, err := r.InsertEvents(t.Context(), events); err == nil {
			t.Errorf("InsertEvents(%v): no error", events)
		}
	}
	if got, err := r.MaxNotificationID(t.Context()); err != nil || got != 0 {
		t.Errorf("MaxNotificationID after refused inserts = %d, %v; want 0", got, err)
	}
	if _, err := r.SelectEvents(t.Context(), id, es.EventQuery{Limit: -1}); err == nil {
		t.Error("SelectEvents with a negative limit: no error")
	}
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	db, name := pgtest.Schema(t)
	r := mustProcess(t, db, name)
	ids, err := r.InsertEvents(t.Context(), oneEvent(uuid.New(), 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Migrate(t.Context(), db, schema.Postgres, schema.WithSchema(name)); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if got, err := r.MaxNotificationID(t.Context()); err != nil || got != ids[0] {
		t.Fatalf("after a second Migrate MaxNotificationID = %d, %v; want %d", got, err, ids[0])
	}
}

// A PostgreSQL database given to what is meant for SQLite is refused with an error naming its dialect,
// migrated or not.
func TestWrongDialect(t *testing.T) {
	db, name := pgtest.Schema(t)
	inSchema := pgtest.InSchema(t, name) // the tables in the search_path, where SQLite's queries look
	for what, db := range map[string]*sql.DB{"migrated": inSchema, "empty": pgtest.InSchema(t, pgtest.EmptySchema(t, db))} {
		t.Run(what, func(t *testing.T) {
			ctx := t.Context()
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, schema.ErrWrongDialect) || !strings.Contains(err.Error(), "the database is PostgreSQL") {
					t.Errorf("%s: %v, want an error wrapping schema.ErrWrongDialect naming PostgreSQL", op, err)
				}
			}
			check("schema.Migrate(SQLite)", schema.Migrate(ctx, db, schema.SQLite))
			r, err := sqlite.NewProcessRecorder(ctx, db)
			if err == nil {
				r.Close()
			}
			check("sqlite.NewProcessRecorder", err)
			s, err := sqlite.NewSnapshotRecorder(ctx, db)
			if err == nil {
				s.Close()
			}
			check("sqlite.NewSnapshotRecorder", err)
		})
	}
}
