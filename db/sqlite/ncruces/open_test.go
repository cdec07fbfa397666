package ncruces_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
	"github.com/eventsourcing-go/eventsourcing/internal/sqlitetest"
)

// openRaw opens name, closed when the test ends.
var openRaw = sqlitetest.OpenRaw

func TestOpen(t *testing.T) {
	ctx := context.Background()
	t.Run("FileIsWAL", func(t *testing.T) {
		db := openRaw(t, filepath.Join(t.TempDir(), "wal.db"), sqlite.WithSynchronous(sqlite.SynchronousNormal))
		var mode string
		var sync, busy int
		if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal mode %q, %v", mode, err)
		}
		if err := db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 1 {
			t.Fatalf("synchronous %d (want 1, NORMAL), %v", sync, err)
		}
		if err := db.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil || busy != int(sqlite.DefaultBusyTimeout.Milliseconds()) {
			t.Fatalf("busy_timeout %d, %v", busy, err)
		}
	})
	t.Run("URI", func(t *testing.T) {
		db := openRaw(t, "file:"+filepath.Join(t.TempDir(), "uri.db")+"?_txlock=immediate")
		var mode string
		if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal mode %q, %v", mode, err)
		}
	})
	t.Run("MemorySharedByThePool", func(t *testing.T) {
		db := openRaw(t, ncruces.Memory)
		a, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if _, err := a.ExecContext(ctx, "CREATE TABLE t (x INTEGER)"); err != nil {
			t.Fatal(err)
		}
		b, err := db.Conn(ctx) // a second connection, while a is held
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if _, err := b.ExecContext(ctx, "INSERT INTO t VALUES (1)"); err != nil {
			t.Fatalf("the second connection does not see the first one's table: %v", err)
		}
		other := openRaw(t, ncruces.Memory)
		if _, err := other.Exec("SELECT * FROM t"); err == nil {
			t.Fatal("two in-memory databases share a table")
		}
	})
	t.Run("Errors", func(t *testing.T) {
		if _, err := ncruces.Open(ctx, ""); err == nil {
			t.Error("empty name: no error")
		}
		bad := filepath.Join(t.TempDir(), "missing", "dir", "x.db")
		if _, err := ncruces.Open(ctx, bad); err == nil || !strings.Contains(err.Error(), "missing") {
			t.Errorf("a path in a missing directory: %v, want an error naming it", err)
		}
		if _, err := ncruces.Open(ctx, ncruces.Memory, sqlite.WithBusyTimeout(-1)); err == nil {
			t.Error("negative busy timeout: no error")
		}
	})
}
