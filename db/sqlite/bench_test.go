package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/google/uuid"
)

// Every benchmark comes in pairs: .../recorder runs the recorder, .../raw a hand-written loop doing the
// same work through the same driver, in the same run, on a database set up the same way (sqlite.Open on
// a file, migrated). The raw loops are the strongest plain code: one connection, every statement
// (BEGIN IMMEDIATE and COMMIT too) prepared once, IDs from LastInsertId; reads through a statement
// prepared once on the pool.

var benchState = bytes.Repeat([]byte("x"), 200) // about the size of a small encrypted, compressed event

const (
	rawInsert = `INSERT INTO events (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)`
	rawSelect = `SELECT originator_version, topic, state FROM events WHERE originator_id = ? ORDER BY originator_version`
	rawPage   = `SELECT notification_id, originator_id, originator_version, topic, state FROM events WHERE notification_id > ? ORDER BY notification_id LIMIT ?`
)

func benchEvents(id uuid.UUID, from int64, n int) []eventsourcing.StoredEvent {
	out := make([]eventsourcing.StoredEvent, n)
	for i := range out {
		out[i] = eventsourcing.StoredEvent{OriginatorID: id, OriginatorVersion: from + int64(i), Topic: "AccountCredited", State: benchState}
	}
	return out
}

// rawWriter is the baseline writer: a connection of its own, and INSERT, BEGIN and COMMIT prepared once.
type rawWriter struct {
	conn                    *sql.Conn
	ins, begin, commit, rbk *sql.Stmt
}

func newRawWriter(b *testing.B, db *sql.DB) *rawWriter {
	b.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	w := &rawWriter{conn: conn}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{{&w.ins, rawInsert}, {&w.begin, "BEGIN IMMEDIATE"}, {&w.commit, "COMMIT"}, {&w.rbk, "ROLLBACK"}} {
		if *p.stmt, err = conn.PrepareContext(ctx, p.sql); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		for _, s := range []*sql.Stmt{w.ins, w.begin, w.commit, w.rbk} {
			s.Close()
		}
		conn.Close()
	})
	return w
}

// append records events in one transaction and returns their IDs.
func (w *rawWriter) append(ctx context.Context, events []eventsourcing.StoredEvent) ([]int64, error) {
	if _, err := w.begin.ExecContext(ctx); err != nil {
		return nil, err
	}
	ids := make([]int64, len(events))
	for i, e := range events {
		res, err := w.ins.ExecContext(ctx, e.OriginatorID[:], e.OriginatorVersion, e.Topic, e.State)
		if err != nil {
			w.rbk.ExecContext(ctx)
			return nil, err
		}
		if ids[i], err = res.LastInsertId(); err != nil {
			w.rbk.ExecContext(ctx)
			return nil, err
		}
	}
	if _, err := w.commit.ExecContext(ctx); err != nil {
		w.rbk.ExecContext(ctx)
		return nil, err
	}
	return ids, nil
}

// cpuTime is the CPU time the process has used, in user and system mode.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since start: unlike ns/op, it does not grow when other
// processes take the machine's cores, so it compares the recorder and the raw loop fairly on a busy
// machine. Wall time (ns/op) is what counts where syncs dominate.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

var syncModes = []struct {
	name string
	mode sqlite.Synchronous
}{{"FULL", sqlite.SynchronousFull}, {"NORMAL", sqlite.SynchronousNormal}}

// BenchmarkAppend: one InsertEvents call of n events per iteration, each call a new originator.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	for _, s := range syncModes {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("sync=%s/events=%d/recorder", s.name, n), func(b *testing.B) {
				r := newProcessRecorder(b, openFile(b, sqlite.WithSynchronous(s.mode)), sqlite.WithSynchronous(s.mode))
				cpu := cpuTime()
				for b.Loop() {
					if _, err := r.InsertEvents(ctx, benchEvents(newID(), 1, n)); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu)
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
			})
			b.Run(fmt.Sprintf("sync=%s/events=%d/raw", s.name, n), func(b *testing.B) {
				w := newRawWriter(b, openFile(b, sqlite.WithSynchronous(s.mode)))
				cpu := cpuTime()
				for b.Loop() {
					if _, err := w.append(ctx, benchEvents(newID(), 1, n)); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu)
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkSelectEvents: one aggregate's 100 events per iteration.
func BenchmarkSelectEvents(b *testing.B) {
	ctx := context.Background()
	db := openFile(b)
	r := newProcessRecorder(b, db)
	id := newID()
	if _, err := r.InsertEvents(ctx, benchEvents(id, 1, 100)); err != nil {
		b.Fatal(err)
	}
	for range 100 { // other aggregates around it
		if _, err := r.InsertEvents(ctx, benchEvents(newID(), 1, 10)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("events=100/recorder", func(b *testing.B) {
		cpu := cpuTime()
		defer reportCPU(b, cpu)
		for b.Loop() {
			evs, err := r.SelectEvents(ctx, id, eventsourcing.EventQuery{})
			if err != nil || len(evs) != 100 {
				b.Fatal(len(evs), err)
			}
		}
	})
	b.Run("events=100/raw", func(b *testing.B) {
		stmt, err := db.PrepareContext(ctx, rawSelect)
		if err != nil {
			b.Fatal(err)
		}
		defer stmt.Close()
		cpu := cpuTime()
		defer reportCPU(b, cpu)
		for b.Loop() {
			rows, err := stmt.QueryContext(ctx, id[:])
			if err != nil {
				b.Fatal(err)
			}
			var evs []eventsourcing.StoredEvent
			for rows.Next() {
				e := eventsourcing.StoredEvent{OriginatorID: id}
				if err := rows.Scan(&e.OriginatorVersion, &e.Topic, &e.State); err != nil {
					b.Fatal(err)
				}
				evs = append(evs, e)
			}
			if err := rows.Close(); err != nil || len(evs) != 100 {
				b.Fatal(len(evs), err)
			}
		}
	})
}

// BenchmarkSelectNotifications: one iteration pages through 100,000 notifications, 1,000 a page. The
// data is written once for both halves of the pair.
func BenchmarkSelectNotifications(b *testing.B) {
	const total, page = 100_000, 1000
	ctx := context.Background()
	db := openFile(b, sqlite.WithSynchronous(sqlite.SynchronousNormal))
	r := newProcessRecorder(b, db, sqlite.WithSynchronous(sqlite.SynchronousNormal))
	for i := 0; i < total; i += 1000 {
		if _, err := r.InsertEvents(ctx, benchEvents(newID(), 1, 1000)); err != nil {
			b.Fatal(err)
		}
	}
	name := fmt.Sprintf("notifications=%d/page=%d", total, page)
	b.Run(name+"/recorder", func(b *testing.B) {
		cpu := cpuTime()
		defer reportCPU(b, cpu)
		for b.Loop() {
			n, after := 0, int64(0)
			for {
				ns, err := r.SelectNotifications(ctx, eventsourcing.NotificationQuery{After: after, Limit: page})
				if err != nil {
					b.Fatal(err)
				}
				if len(ns) == 0 {
					break
				}
				n += len(ns)
				after = ns[len(ns)-1].ID
			}
			if n != total {
				b.Fatal(n)
			}
		}
		b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "notifications/s")
	})
	b.Run(name+"/raw", func(b *testing.B) {
		stmt, err := db.PrepareContext(ctx, rawPage)
		if err != nil {
			b.Fatal(err)
		}
		defer stmt.Close()
		cpu := cpuTime()
		defer reportCPU(b, cpu)
		for b.Loop() {
			n, after := 0, int64(0)
			for {
				rows, err := stmt.QueryContext(ctx, after, page)
				if err != nil {
					b.Fatal(err)
				}
				ns := make([]eventsourcing.Notification, 0, page)
				for rows.Next() {
					var x eventsourcing.Notification
					var oid []byte
					if err := rows.Scan(&x.ID, &oid, &x.OriginatorVersion, &x.Topic, &x.State); err != nil {
						b.Fatal(err)
					}
					copy(x.OriginatorID[:], oid)
					ns = append(ns, x)
				}
				if err := rows.Close(); err != nil {
					b.Fatal(err)
				}
				if len(ns) == 0 {
					break
				}
				n += len(ns)
				after = ns[len(ns)-1].ID
			}
			if n != total {
				b.Fatal(n)
			}
		}
		b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "notifications/s")
	})
}

// BenchmarkConcurrentAppend: writers goroutines save one event per call, b.N events in all. The
// recorder commits concurrent saves together (group commit); the raw baseline gives each writer its own
// connection, and SQLite's file lock (with the busy timeout) serialises them, one commit each.
func BenchmarkConcurrentAppend(b *testing.B) {
	ctx := context.Background()
	for _, s := range syncModes {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("sync=%s/writers=%d/recorder", s.name, writers), func(b *testing.B) {
				r := newProcessRecorder(b, openFile(b, sqlite.WithSynchronous(s.mode)), sqlite.WithSynchronous(s.mode))
				commits := sqlite.Commits(r)
				runWriters(b, writers, func(_ int, id uuid.UUID, v int64) error {
					_, err := r.InsertEvents(ctx, benchEvents(id, v, 1))
					return err
				})
				b.ReportMetric(float64(b.N)/float64(sqlite.Commits(r)-commits), "events/commit")
			})
			b.Run(fmt.Sprintf("sync=%s/writers=%d/raw", s.name, writers), func(b *testing.B) {
				db := openFile(b, sqlite.WithSynchronous(s.mode))
				ws := make([]*rawWriter, writers)
				for i := range ws {
					ws[i] = newRawWriter(b, db)
				}
				runWriters(b, writers, func(w int, id uuid.UUID, v int64) error {
					_, err := ws[w].append(ctx, benchEvents(id, v, 1))
					return err
				})
			})
		}
	}
}

// runWriters runs writers goroutines, each saving to an originator of its own, b.N saves in all, and
// reports the rate.
func runWriters(b *testing.B, writers int, save func(writer int, id uuid.UUID, version int64) error) {
	b.Helper()
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu := cpuTime()
	start := time.Now()
	for w := range writers {
		n := b.N / writers
		if w < b.N%writers {
			n++
		}
		id := newID()
		wg.Go(func() {
			for v := int64(1); v <= int64(n); v++ {
				if err := save(w, id, v); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	reportCPU(b, cpu)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// BenchmarkAppendInterleaved alternates the recorder and the raw loop call by call (each on its own
// database file), so that both see the same machine: on a shared machine, two benchmarks run one after
// the other can differ by more than the code does. It reports both times per call and their ratio
// (raw/recorder: 1 is parity, above 1 the recorder is faster).
func BenchmarkAppendInterleaved(b *testing.B) {
	ctx := context.Background()
	for _, s := range syncModes {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("sync=%s/events=%d", s.name, n), func(b *testing.B) {
				r := newProcessRecorder(b, openFile(b, sqlite.WithSynchronous(s.mode)), sqlite.WithSynchronous(s.mode))
				w := newRawWriter(b, openFile(b, sqlite.WithSynchronous(s.mode)))
				var tr, tw time.Duration
				for b.Loop() {
					t0 := time.Now()
					if _, err := r.InsertEvents(ctx, benchEvents(newID(), 1, n)); err != nil {
						b.Fatal(err)
					}
					t1 := time.Now()
					if _, err := w.append(ctx, benchEvents(newID(), 1, n)); err != nil {
						b.Fatal(err)
					}
					t2 := time.Now()
					tr += t1.Sub(t0)
					tw += t2.Sub(t1)
				}
				b.ReportMetric(float64(tr.Nanoseconds())/float64(b.N), "recorder-ns/op")
				b.ReportMetric(float64(tw.Nanoseconds())/float64(b.N), "raw-ns/op")
				b.ReportMetric(float64(tw)/float64(tr), "raw/recorder")
			})
		}
	}
}

// newID returns a time-ordered (version 7) UUID, as package aggregate gives new aggregates: successive
// originators then land next to each other in the events table's unique index, as in an application.
func newID() uuid.UUID { return uuid.Must(uuid.NewV7()) }
