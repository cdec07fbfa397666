package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
)

// BenchmarkSchemaChoice measures the choices made in schema/sqlite on stand-alone tables: the events
// table's ID column (a plain rowid, as chosen, against AUTOINCREMENT) and the snapshots table's layout
// (a rowid table, as chosen, against WITHOUT ROWID, which loses for kilobyte states). Each iteration
// commits one transaction of n rows for a new originator and reads back the latest row of an earlier
// one; cpu-ns/op is the fairer figure on a busy machine.
func BenchmarkSchemaChoice(b *testing.B) {
	ctx := context.Background()
	cases := []struct {
		name, table string
		state, rows int
	}{
		{"events/id=rowid", `CREATE TABLE t (id INTEGER PRIMARY KEY, oid BLOB NOT NULL CHECK (length(oid) = 16), v INTEGER NOT NULL, topic TEXT NOT NULL, state BLOB, UNIQUE (oid, v)) STRICT`, 200, 10},
		{"events/id=autoincrement", `CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, oid BLOB NOT NULL CHECK (length(oid) = 16), v INTEGER NOT NULL, topic TEXT NOT NULL, state BLOB, UNIQUE (oid, v)) STRICT`, 200, 10},
		{"snapshots/state=200/rowid", `CREATE TABLE t (oid BLOB NOT NULL, v INTEGER NOT NULL, topic TEXT NOT NULL, state BLOB, PRIMARY KEY (oid, v)) STRICT`, 200, 1},
		{"snapshots/state=200/without-rowid", `CREATE TABLE t (oid BLOB NOT NULL, v INTEGER NOT NULL, topic TEXT NOT NULL, state BLOB, PRIMARY KEY (oid, v)) STRICT, WITHOUT ROWID`, 200, 1},
		{"snapshots/state=4000/rowid", `CREATE TABLE t (oid BLOB NOT NULL, v INTEGER NOT NULL, topic TEXT NOT NULL, state BLOB, PRIMARY KEY (oid, v)) STRICT`, 4000, 1},
		{"snapshots/state=4000/without-rowid", `CREATE TABLE t (oid BLOB NOT NULL, v INTEGER NOT NULL, topic TEXT NOT NULL, state BLOB, PRIMARY KEY (oid, v)) STRICT, WITHOUT ROWID`, 4000, 1},
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("%s/rows=%d", c.name, c.rows), func(b *testing.B) {
			db := openRaw(b, filepath.Join(b.TempDir(), "choice.db"), sqlite.WithSynchronous(sqlite.SynchronousNormal))
			if _, err := db.Exec(c.table); err != nil {
				b.Fatal(err)
			}
			conn, err := db.Conn(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			ins, err := conn.PrepareContext(ctx, `INSERT INTO t (oid, v, topic, state) VALUES (?, ?, ?, ?)`)
			if err != nil {
				b.Fatal(err)
			}
			sel, err := db.PrepareContext(ctx, `SELECT v, topic, state FROM t WHERE oid = ? AND v <= ? ORDER BY v DESC LIMIT 1`)
			if err != nil {
				b.Fatal(err)
			}
			state := bytes.Repeat([]byte("y"), c.state)
			ids := make([]uuid.UUID, 0, 1024)
			cpu := benchkit.CPUTime()
			for b.Loop() {
				id := uuid.New()
				if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
					b.Fatal(err)
				}
				for v := range c.rows {
					if _, err := ins.ExecContext(ctx, id[:], v+1, "Topic", state); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
					b.Fatal(err)
				}
				if len(ids) < cap(ids) {
					ids = append(ids, id)
				}
				var v int64
				var topic string
				var st []byte
				if err := sel.QueryRowContext(ctx, ids[len(ids)/2][:], int64(1)<<40).Scan(&v, &topic, &st); err != nil {
					b.Fatal(err)
				}
			}
			benchkit.ReportCPU(b, cpu)
		})
	}
}
