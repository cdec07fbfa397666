package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/google/uuid"
)

// Benchmarks of the recorders, each beside a raw baseline doing the same work through the same driver
// in the same run: hand-written SQL with no ordering, no function and no checks, scanning into the same
// Go types. Recorder and baseline take turns, so that they see the same load; the ratios
// (x-raw-speed, xid/table_lock) are the figures to read. Run with
//
//	ES_REQUIRE_POSTGRES=1 go test -run '^$' -bench 'Append|SelectEvents|ConcurrentWriters' -benchtime 1000x ./db/postgres
//	ES_REQUIRE_POSTGRES=1 go test -run '^$' -bench PageNotifications -benchtime 5x ./db/postgres
//
// (fixed iteration counts keep the run short; one PageNotifications op reads 100,000 notifications).

var payload = make([]byte, 200) // a typical encrypted, compressed event

// events returns n events of fresh originators (ten versions each, so batches span originators).
func events(n int) []eventsourcing.StoredEvent {
	out := make([]eventsourcing.StoredEvent, n)
	var id uuid.UUID
	for i := range out {
		if i%10 == 0 {
			id = uuid.New()
		}
		out[i] = eventsourcing.StoredEvent{OriginatorID: id, OriginatorVersion: int64(i%10 + 1), Topic: "bench", State: payload}
	}
	return out
}

// rawInsert is the baseline append: one unnest insert taking IDs straight from the sequence.
type rawInsert struct {
	db *sql.DB
	q  string
}

func newRawInsert(db *sql.DB, schemaName string) rawInsert {
	return rawInsert{db, fmt.Sprintf(`INSERT INTO %[1]s.events (notification_id, originator_id, originator_version, xid, topic, state)
SELECT nextval('%[1]s.events_notification_id_seq'), u.o, u.v, pg_current_xact_id(), u.t, u.s
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[]) AS u (o, v, t, s)
RETURNING notification_id`, schemaName)}
}

func (r rawInsert) insert(ctx context.Context, events []eventsourcing.StoredEvent) ([]int64, error) {
	ids, vs, topics, states := make([][16]byte, len(events)), make([]int64, len(events)), make([]string, len(events)), make([][]byte, len(events))
	for i, e := range events {
		ids[i], vs[i], topics[i], states[i] = e.OriginatorID, e.OriginatorVersion, e.Topic, e.State
	}
	rows, err := r.db.QueryContext(ctx, r.q, ids, vs, topics, states)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]int64, 0, len(events))
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// paired runs the recorder's and the baseline's version of one operation alternately, once each per
// iteration, and reports both times and their ratio (raw time / recorder time: 1 means as fast as the
// baseline). Alternating makes both see the same load on the server, so the ratio holds even on a busy
// machine where the absolute figures do not.
func paired(b *testing.B, recorder, raw func() error) {
	var tRec, tRaw time.Duration
	n := 0
	for b.Loop() {
		first, second, tFirst, tSecond := recorder, raw, &tRec, &tRaw
		if n%2 == 1 {
			first, second, tFirst, tSecond = raw, recorder, &tRaw, &tRec
		}
		start := time.Now()
		if err := first(); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := second(); err != nil {
			b.Fatal(err)
		}
		*tFirst += mid.Sub(start)
		*tSecond += time.Since(mid)
		n++
	}
	b.ReportMetric(float64(tRec.Nanoseconds())/float64(n), "recorder-ns/op")
	b.ReportMetric(float64(tRaw.Nanoseconds())/float64(n), "raw-ns/op")
	b.ReportMetric(float64(tRaw)/float64(tRec), "x-raw-speed")
}

func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1, 10, 100} {
		for _, o := range orderings {
			b.Run(fmt.Sprintf("events=%d/%v", size, o), func(b *testing.B) {
				r := newProcess(b, postgres.WithOrdering(o))
				db, name := pgtestSchema(b)
				raw := newRawInsert(db, name)
				paired(b, func() error {
					_, err := r.InsertEvents(context.Background(), events(size))
					return err
				}, func() error {
					_, err := raw.insert(context.Background(), events(size))
					return err
				})
			})
		}
	}
}

func BenchmarkSelectEvents(b *testing.B) {
	r := newProcess(b)
	db, name := dbOf(b, r)
	id := uuid.New()
	aggregate := make([]eventsourcing.StoredEvent, 100)
	for i := range aggregate {
		aggregate[i] = eventsourcing.StoredEvent{OriginatorID: id, OriginatorVersion: int64(i + 1), Topic: "bench", State: payload}
	}
	if _, err := r.InsertEvents(context.Background(), aggregate); err != nil {
		b.Fatal(err)
	}
	q := `SELECT originator_version, topic, state FROM ` + name + `.events WHERE originator_id = $1 ORDER BY originator_version`
	paired(b, func() error {
		got, err := r.SelectEvents(context.Background(), id, eventsourcing.EventQuery{})
		if err == nil && len(got) != 100 {
			err = fmt.Errorf("%d events", len(got))
		}
		return err
	}, func() error {
		rows, err := db.QueryContext(context.Background(), q, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		var got []eventsourcing.StoredEvent
		for rows.Next() {
			e := eventsourcing.StoredEvent{OriginatorID: id}
			if err := rows.Scan(&e.OriginatorVersion, &e.Topic, &e.State); err != nil {
				return err
			}
			got = append(got, e)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(got) != 100 {
			return fmt.Errorf("%d events", len(got))
		}
		return nil
	})
}

// BenchmarkPageNotifications reads a log of 100,000 notifications in pages of 1,000; one op is the
// whole log.
func BenchmarkPageNotifications(b *testing.B) {
	const total, page = 100_000, 1000
	for _, o := range orderings {
		b.Run(o.String(), func(b *testing.B) {
			r := newProcess(b, postgres.WithOrdering(o))
			for range total / 1000 {
				if _, err := r.InsertEvents(context.Background(), events(1000)); err != nil {
					b.Fatal(err)
				}
			}
			db, name := dbOf(b, r)
			q := `SELECT notification_id, originator_id, originator_version, topic, state FROM ` + name + `.events
WHERE notification_id > $1 ORDER BY notification_id LIMIT $2`
			paired(b, func() error {
				var after int64
				n := 0
				for {
					ns, err := r.SelectNotifications(context.Background(), eventsourcing.NotificationQuery{After: after, Limit: page})
					if err != nil {
						return err
					}
					if len(ns) == 0 {
						break
					}
					n += len(ns)
					after = ns[len(ns)-1].ID
				}
				if n != total {
					return fmt.Errorf("%d notifications", n)
				}
				return nil
			}, func() error {
				var after int64
				n := 0
				for {
					rows, err := db.QueryContext(context.Background(), q, after, page)
					if err != nil {
						return err
					}
					var ns []eventsourcing.Notification
					for rows.Next() {
						var x eventsourcing.Notification
						if err := rows.Scan(&x.ID, &x.OriginatorID, &x.OriginatorVersion, &x.Topic, &x.State); err != nil {
							rows.Close()
							return err
						}
						ns = append(ns, x)
					}
					rows.Close()
					if err := rows.Err(); err != nil {
						return err
					}
					if len(ns) == 0 {
						break
					}
					n += len(ns)
					after = ns[len(ns)-1].ID
				}
				if n != total {
					return fmt.Errorf("%d notifications", n)
				}
				return nil
			})
		})
	}
}

// BenchmarkConcurrentWriters: 16 goroutines, each appending one event per call to an aggregate of its
// own, with each ordering and with the raw baseline (IDs taken with no ordering at all, which would
// allow late fills: the ceiling). The three take turns in chunks of 500 appends, so they see the same
// load; b.N appends are made with each (use a multiple of 500). It reports events/s of each and xid/table_lock, the speed-up
// of the xid ordering.
func BenchmarkConcurrentWriters(b *testing.B) {
	const writers, chunk = 16, 500
	xid := newProcess(b, postgres.WithOrdering(postgres.OrderingXID))
	lock := newProcess(b, postgres.WithOrdering(postgres.OrderingTableLock))
	db, name := pgtestSchema(b)
	raw := newRawInsert(db, name)
	modes := []struct {
		name string
		save func(ctx context.Context, id uuid.UUID, v int64) error
	}{
		{"xid", func(ctx context.Context, id uuid.UUID, v int64) error {
			_, err := xid.InsertEvents(ctx, oneEvent(id, v))
			return err
		}},
		{"table_lock", func(ctx context.Context, id uuid.UUID, v int64) error {
			_, err := lock.InsertEvents(ctx, oneEvent(id, v))
			return err
		}},
		{"raw", func(ctx context.Context, id uuid.UUID, v int64) error {
			_, err := raw.insert(ctx, oneEvent(id, v))
			return err
		}},
	}
	elapsed := make([]time.Duration, len(modes))
	versions := make([][]int64, len(modes)) // per mode, per writer: the last version
	ids := make([]uuid.UUID, writers)
	for w := range ids {
		ids[w] = uuid.New()
	}
	for m := range modes {
		versions[m] = make([]int64, writers)
	}
	b.ResetTimer()
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		for m, mode := range modes {
			elapsed[m] += runWriters(b, writers, n, ids, versions[m], mode.save)
		}
	}
	b.StopTimer()
	rate := make([]float64, len(modes))
	for m, mode := range modes {
		rate[m] = float64(b.N) / elapsed[m].Seconds()
		b.ReportMetric(rate[m], mode.name+"-events/s")
	}
	b.ReportMetric(rate[0]/rate[1], "xid/table_lock")
	b.ReportMetric(rate[0]/rate[2], "xid/raw")
}

// runWriters makes n calls of save spread over writers goroutines (writer w appends to ids[w], after
// version versions[w]) and returns how long they took.
func runWriters(b *testing.B, writers, n int, ids []uuid.UUID, versions []int64, save func(ctx context.Context, id uuid.UUID, v int64) error) time.Duration {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				versions[w]++
				if err := save(ctx, ids[w], versions[w]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
