package projectiontest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// TestSQLTracker checks a projection.SQLTracker: a tracked transaction commits the projection's writes
// with the tracking record, or neither (on a conflict, an error, a panic, a cancelled context: a panic
// may reach the caller or become the error returned); a tracking record is a compare-and-set on the
// consumer's prior mark, and marks are per consumer and upstream; of transactions racing from one mark
// one wins; a deleted mark starts over. Then projection runners over it, with batches: interrupted
// mid-batch and restarted, they build the read model of a single pass; two projections with different
// names in one database both process every event; two instances of one projection process each event
// once between them; and a rebuild gives the read model of the first build. newTracker returns a
// tracker on a fresh, migrated database.
//
// The suite keeps its read model in a table of its own, projectiontest_rows, which it creates and
// reads in tracked transactions (of consumer "projectiontest.probe"): it needs nothing of the database
// but the transactions the tracker gives, whatever the dialect. Its SQL has no parameters, so it runs
// unchanged on SQLite and PostgreSQL.
func TestSQLTracker(t *testing.T, newTracker func(t *testing.T) projection.SQLTracker) {
	t.Helper()
	const consumer, app = "projectiontest.projection", "projectiontest.upstream"
	track := func(prior, n int64) es.Tracking {
		return es.Tracking{Consumer: consumer, Upstream: app, NotificationID: n, Prior: prior}
	}
	run := func(name string, f func(t *testing.T, s *sqlSuite)) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			s := &sqlSuite{tr: newTracker(t), ctx: ctx}
			s.exec(t, "CREATE TABLE projectiontest_rows (k BIGINT PRIMARY KEY, v BIGINT NOT NULL)")
			f(t, s)
		})
	}

	run("commits writes with tracking", func(t *testing.T, s *sqlSuite) {
		s.mark(t, consumer, app, 0)
		if err := s.tr.ProcessTracked(s.ctx, track(0, 3), insert(1, 10)); err != nil {
			t.Fatalf("ProcessTracked: %v", err)
		}
		s.mark(t, consumer, app, 3)
		s.rows(t, map[int64]int64{1: 10})
	})

	run("rolls back on error", func(t *testing.T, s *sqlSuite) {
		boom := errors.New("boom")
		err := s.tr.ProcessTracked(s.ctx, track(0, 1), func(ctx context.Context, tx projection.SQLTx) error {
			if err := insert(1, 10)(ctx, tx); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("ProcessTracked returned %v, want the error of fn", err)
		}
		s.mark(t, consumer, app, 0)
		s.rows(t, map[int64]int64{})
	})

	run("a prior mark that is not the mark conflicts and rolls back", func(t *testing.T, s *sqlSuite) {
		if err := s.tr.ProcessTracked(s.ctx, track(0, 5), insert(1, 10)); err != nil {
			t.Fatal(err)
		}
		for i, tr := range []es.Tracking{track(0, 6), track(4, 6), track(5, 5), track(5, 4), track(6, 9)} {
			err := s.tr.ProcessTracked(s.ctx, tr, insert(100+int64(i), 1))
			if !errors.Is(err, es.ErrConflict) {
				t.Fatalf("tracking from %d to %d with the mark at 5: got %v, want ErrConflict", tr.Prior, tr.NotificationID, err)
			}
		}
		if err := s.tr.ProcessTracked(s.ctx, track(5, 7), insert(2, 20)); err != nil {
			t.Fatalf("tracking from 5 to 7 (gaps are allowed): %v", err)
		}
		s.mark(t, consumer, app, 7)
		s.rows(t, map[int64]int64{1: 10, 2: 20})
	})

	run("marks are per consumer and upstream", func(t *testing.T, s *sqlSuite) {
		for i, tr := range []es.Tracking{
			{Consumer: "a", Upstream: app, NotificationID: 9},
			{Consumer: "b", Upstream: app, NotificationID: 2},
			{Consumer: "a", Upstream: "other", NotificationID: 1},
		} {
			if err := s.tr.ProcessTracked(s.ctx, tr, insert(int64(i), 1)); err != nil {
				t.Fatalf("%+v: %v", tr, err)
			}
		}
		s.mark(t, "a", app, 9)
		s.mark(t, "b", app, 2)
		s.mark(t, "a", "other", 1)
		s.mark(t, "c", app, 0)
	})

	run("panic rolls back", func(t *testing.T, s *sqlSuite) {
		var (
			recovered any
			err       error
		)
		func() {
			defer func() { recovered = recover() }()
			err = s.tr.ProcessTracked(s.ctx, track(0, 1), func(ctx context.Context, tx projection.SQLTx) error {
				if err := insert(1, 10)(ctx, tx); err != nil {
					return err
				}
				panic("projectiontest: panic in a projection")
			})
		}()
		if recovered == nil && err == nil {
			t.Fatal("ProcessTracked returned nil although fn panicked")
		}
		s.mark(t, consumer, app, 0)
		s.rows(t, map[int64]int64{})
		// The transaction must be over: the database takes writes again.
		if err := s.tr.ProcessTracked(s.ctx, track(0, 1), insert(1, 11)); err != nil {
			t.Fatalf("ProcessTracked after a panic: %v", err)
		}
		s.rows(t, map[int64]int64{1: 11})
	})

	run("cancelled context rolls back", func(t *testing.T, s *sqlSuite) {
		ctx, cancel := context.WithCancel(s.ctx)
		err := s.tr.ProcessTracked(ctx, track(0, 1), func(ctx context.Context, tx projection.SQLTx) error {
			if err := insert(1, 10)(ctx, tx); err != nil {
				return err
			}
			cancel()
			return nil
		})
		if err == nil {
			t.Fatal("ProcessTracked committed although its context ended before the commit")
		}
		s.mark(t, consumer, app, 0)
		s.rows(t, map[int64]int64{})
	})

	run("one of transactions racing from one mark wins", func(t *testing.T, s *sqlSuite) {
		const racers = 4
		var mark int64
		for round := int64(1); round <= 5; round++ {
			var wg sync.WaitGroup
			errs := make([]error, racers)
			start := make(chan struct{})
			for i := range racers {
				wg.Go(func() {
					<-start
					// Batches of different lengths, all after the same mark.
					errs[i] = s.tr.ProcessTracked(s.ctx, track(mark, mark+1+int64(i)), insert(round*100+int64(i), round))
				})
			}
			close(start)
			wg.Wait()
			won := -1
			for i, err := range errs {
				switch {
				case err == nil && won >= 0:
					t.Fatalf("round %d: racers %d and %d both committed from mark %d", round, won, i, mark)
				case err == nil:
					won = i
				case !errors.Is(err, es.ErrConflict):
					t.Fatalf("round %d racer %d: %v, want nil or ErrConflict", round, i, err)
				}
			}
			if won < 0 {
				t.Fatalf("round %d: no racer committed from mark %d", round, mark)
			}
			mark += 1 + int64(won)
			s.mark(t, consumer, app, mark)
		}
		if got := s.read(t); len(got) != 5 {
			t.Fatalf("%d rows after 5 rounds: %v", len(got), got)
		}
	})

	run("a deleted mark starts over", func(t *testing.T, s *sqlSuite) {
		if err := s.tr.ProcessTracked(s.ctx, track(0, 4), insert(1, 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.tr.DeleteTracking(s.ctx, consumer, app); err != nil {
			t.Fatalf("DeleteTracking: %v", err)
		}
		s.mark(t, consumer, app, 0)
		if err := s.tr.DeleteTracking(s.ctx, consumer, app); err != nil {
			t.Fatalf("DeleteTracking of a mark that is not there: %v", err)
		}
		if err := s.tr.ProcessTracked(s.ctx, track(4, 5), insert(2, 2)); !errors.Is(err, es.ErrConflict) {
			t.Fatalf("tracking from 4 after the mark was deleted: %v, want ErrConflict", err)
		}
		if err := s.tr.ProcessTracked(s.ctx, track(0, 2), insert(3, 3)); err != nil {
			t.Fatalf("tracking from 0 after the mark was deleted: %v", err)
		}
		s.mark(t, consumer, app, 2)
		s.rows(t, map[int64]int64{1: 1, 3: 3})
	})

	run("runner restarted mid-batch processes each event once", func(t *testing.T, s *sqlSuite) {
		upstream, want, last, store := s.upstream(t, app)
		// Each run stops inside the transaction of a different event of its batches of 7; the next
		// resumes.
		for _, stopAt := range []int{3, 1, 17, 9} {
			ctx, cancel := context.WithCancel(s.ctx)
			calls := 0
			r, err := projection.NewRunner(consumer, upstream, store, func(ctx context.Context, tx projection.SQLTx, e aggregate.Event) error {
				if err := project(ctx, tx, e); err != nil {
					return err
				}
				if calls++; calls == stopAt {
					cancel()
				}
				return nil
			}, projection.WithBatch(7, time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Run(ctx); err != nil {
				t.Fatalf("run stopped at its event %d: %v", stopAt, err)
			}
			cancel()
		}
		catchUp(t, s.ctx, consumer, upstream, store, last)
		s.mark(t, consumer, app, last)
		s.rows(t, want)
	})

	run("two projections in one database each process every event", func(t *testing.T, s *sqlSuite) {
		upstream, want, last, store := s.upstream(t, app)
		s.exec(t, "CREATE TABLE projectiontest_copy (k BIGINT PRIMARY KEY, v BIGINT NOT NULL)")
		copyRow := func(ctx context.Context, tx projection.SQLTx, e aggregate.Event) error {
			r := e.Data.(rowAdded)
			_, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO projectiontest_copy (k, v) VALUES (%d, %d)", r.Key, r.Value))
			return err
		}
		first := newRunner(t, "first", upstream, store, project, projection.WithBatch(5, time.Minute))
		second := newRunner(t, "second", upstream, store, copyRow, projection.WithBatch(3, time.Minute))
		runAll(t, s.ctx, last, first, second)
		s.mark(t, "first", app, last)
		s.mark(t, "second", app, last)
		s.rows(t, want)
		if got := s.readTable(t, "projectiontest_copy"); !maps.Equal(got, want) {
			t.Fatalf("projectiontest_copy holds %v, want %v", got, want)
		}
	})

	run("two instances of one projection process each event once", func(t *testing.T, s *sqlSuite) {
		upstream, want, last, store := s.upstream(t, app)
		// project fails on a key inserted twice: an event applied by both instances stops one.
		var instances []*projection.Runner[projection.SQLTx]
		for range 2 {
			instances = append(instances, newRunner(t, consumer, upstream, store, project, projection.WithBatch(4, time.Minute)))
		}
		runAll(t, s.ctx, last, instances...)
		s.mark(t, consumer, app, last)
		s.rows(t, want)
	})

	run("a rebuild gives the read model of the first build", func(t *testing.T, s *sqlSuite) {
		upstream, want, last, store := s.upstream(t, app)
		reset := projection.WithReset(func(ctx context.Context, tx projection.SQLTx) error {
			_, err := tx.ExecContext(ctx, "DELETE FROM projectiontest_rows")
			return err
		})
		catchUp(t, s.ctx, consumer, upstream, store, last, reset)
		s.rows(t, want)
		r := newRunner(t, consumer, upstream, store, project, reset, projection.WithBatch(6, time.Minute))
		if err := r.Rebuild(s.ctx); err != nil {
			t.Fatalf("Rebuild: %v", err)
		}
		s.mark(t, consumer, app, 0)
		s.rows(t, want) // the old read model serves until the rebuild's first batch replaces it
		runAll(t, s.ctx, last, r)
		s.mark(t, consumer, app, last)
		s.rows(t, want)
	})
}

// project inserts the row of a rowAdded event; a key inserted twice fails, so nothing is applied twice
// unnoticed.
func project(ctx context.Context, tx projection.SQLTx, e aggregate.Event) error {
	r := e.Data.(rowAdded)
	return insert(r.Key, r.Value)(ctx, tx)
}

// newUpstream returns an upstream application in memory with 40 rowAdded events in batches of 8, and
// the read model they make.
func newUpstream(t *testing.T, ctx context.Context, name string) (projection.Application, map[int64]int64) {
	t.Helper()
	reg := mapper.NewRegistry()
	mapper.Register[rowAdded](reg, "projectiontest.RowAdded")
	m, err := mapper.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	upstream := projection.Application{Name: name, Store: eventstore.New(m, memory.NewProcessRecorder())}
	want := map[int64]int64{}
	for i := range 5 {
		a := &row{}
		for v := range 8 {
			k := int64(i*100 + v)
			aggregate.Trigger(a, rowAdded{Key: k, Value: k * 3})
			want[k] = k * 3
		}
		if _, err := upstream.Store.Put(ctx, a.Collect()); err != nil {
			t.Fatal(err)
		}
	}
	return upstream, want
}

// catchUp runs a new runner named name until it has processed last.
func catchUp(t *testing.T, ctx context.Context, name string, upstream projection.Application, store projection.TrackingStore[projection.SQLTx], last int64, opts ...projection.Option) {
	t.Helper()
	runAll(t, ctx, last, newRunner(t, name, upstream, store, project, opts...))
}

// newRunner returns a new runner; an error fails the test.
func newRunner(t *testing.T, name string, upstream projection.Application, store projection.TrackingStore[projection.SQLTx], p projection.Projection[projection.SQLTx], opts ...projection.Option) *projection.Runner[projection.SQLTx] {
	t.Helper()
	r, err := projection.NewRunner(name, upstream, store, p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runAll runs the runners together until each has processed last, then stops them; none may fail.
func runAll(t *testing.T, ctx context.Context, last int64, runners ...*projection.Runner[projection.SQLTx]) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, len(runners))
	for _, r := range runners {
		go func() { done <- r.Run(ctx) }()
	}
	for _, r := range runners {
		if err := r.Wait(ctx, last); err != nil {
			t.Errorf("runner %s: Wait(%d): %v", r.Name(), last, err)
		}
	}
	cancel()
	for range runners {
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

type rowAdded struct {
	Key   int64 `json:"key"`
	Value int64 `json:"value"`
}

type row struct{ aggregate.Base }

func (*row) Apply(any) {}

// sqlSuite runs the suite's own SQL in tracked transactions of a probe application.
type sqlSuite struct {
	tr    projection.SQLTracker
	ctx   context.Context
	probe int64
}

// The probe's tracking: a consumer of its own, whose mark the suite advances one by one.
const probeConsumer, probeApp = "projectiontest.probe", "projectiontest.probe"

// upstream returns a new upstream application named name with its events recorded, the read model they
// make, the notification ID of the last, and the tracking store on the suite's tracker.
func (s *sqlSuite) upstream(t *testing.T, name string) (projection.Application, map[int64]int64, int64, projection.TrackingStore[projection.SQLTx]) {
	t.Helper()
	upstream, want := newUpstream(t, s.ctx, name)
	return upstream, want, int64(len(want)), projection.SQL(s.tr)
}

func (s *sqlSuite) exec(t *testing.T, stmt string) {
	t.Helper()
	err := s.tr.ProcessTracked(s.ctx, s.nextProbe(), func(ctx context.Context, tx projection.SQLTx) error {
		_, err := tx.ExecContext(ctx, stmt)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// nextProbe returns the probe's next tracking record.
func (s *sqlSuite) nextProbe() es.Tracking {
	s.probe++
	return es.Tracking{Consumer: probeConsumer, Upstream: probeApp, NotificationID: s.probe, Prior: s.probe - 1}
}

func (s *sqlSuite) read(t *testing.T) map[int64]int64 {
	t.Helper()
	return s.readTable(t, "projectiontest_rows")
}

// readTable reads a table of the suite (a constant name).
func (s *sqlSuite) readTable(t *testing.T, table string) map[int64]int64 {
	t.Helper()
	got := map[int64]int64{}
	err := s.tr.ProcessTracked(s.ctx, s.nextProbe(), func(ctx context.Context, tx projection.SQLTx) error {
		rows, err := tx.QueryContext(ctx, "SELECT k, v FROM "+table)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k, v int64
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			got[k] = v
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return got
}

func (s *sqlSuite) rows(t *testing.T, want map[int64]int64) {
	t.Helper()
	if got := s.read(t); !maps.Equal(got, want) {
		t.Fatalf("projectiontest_rows holds %v, want %v", got, want)
	}
}

func (s *sqlSuite) mark(t *testing.T, consumer, upstream string, want int64) {
	t.Helper()
	got, err := s.tr.MaxTrackingID(s.ctx, consumer, upstream)
	if err != nil {
		t.Fatalf("MaxTrackingID(%q, %q): %v", consumer, upstream, err)
	}
	if got != want {
		t.Fatalf("MaxTrackingID(%q, %q) = %d, want %d", consumer, upstream, got, want)
	}
}

func insert(k, v int64) func(ctx context.Context, tx projection.SQLTx) error {
	return func(ctx context.Context, tx projection.SQLTx) error {
		_, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO projectiontest_rows (k, v) VALUES (%d, %d)", k, v))
		return err
	}
}
