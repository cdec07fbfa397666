package sqlite

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/ncruces/go-sqlite3"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// SQLite compiles a statement whose LIMIT is a bare parameter again whenever its bindings are cleared,
// which database/sql drivers do after every query: the recorders' reads must run again and again on
// their prepared statements without being compiled again.
func TestReadsAreNotRecompiled(t *testing.T) {
	ctx := t.Context()
	// Not ncruces.Open, which imports this package.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "reads.db")+"?_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(3) // the two recorders' writers and one reader: every read uses the same connection
	if err := schema.Migrate(ctx, db, schema.SQLite); err != nil {
		t.Fatal(err)
	}
	r, err := NewProcessRecorder(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	snaps, err := NewSnapshotRecorder(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer snaps.Close()
	id := uuid.New()
	events := []es.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "a"}, {OriginatorID: id, OriginatorVersion: 2, Topic: "b"}}
	if _, err := r.InsertEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	if _, err := snaps.InsertEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		for _, q := range []es.EventQuery{{After: int64(i)}, {Desc: true, Limit: i + 1}} {
			if _, err := r.SelectEvents(ctx, id, q); err != nil {
				t.Fatal(err)
			}
			if _, err := snaps.SelectEvents(ctx, id, q); err != nil {
				t.Fatal(err)
			}
		}
		for _, q := range []es.NotificationQuery{{After: int64(i), Limit: i + 1}, {Limit: 10, Topics: []string{"a", "b"}}} {
			if _, err := r.SelectNotifications(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}

	conn, err := db.Conn(ctx) // the reader: the writers keep theirs
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	checked := 0
	err = conn.Raw(func(dc any) error {
		for s := range dc.(interface{ Raw() *sqlite3.Conn }).Raw().Stmts() {
			if !strings.Contains(s.SQL(), "LIMIT") {
				continue
			}
			checked++
			if n := s.Status(sqlite3.STMTSTATUS_REPREPARE, false); n != 0 {
				t.Errorf("compiled again %d times:\n%s", n, s.SQL())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 5 { // events ascending and descending, notifications, by topics, snapshots both ways
		t.Fatalf("%d prepared reads with a LIMIT on the reader's connection, want 5 or more", checked)
	}
}
