package projectiontest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// TestSQLTracker checks a projection.SQLTracker: a tracked transaction commits the projection's writes
// with the tracking record, or neither (on a conflict, an error, a panic, a cancelled context: a panic
// may reach the caller or become the error returned); marks
// are per upstream application and never go back; of two transactions racing for one tracking record
// one wins; and a projection runner over it, interrupted mid-transaction and restarted, builds the
// read model of a single pass. newTracker returns a tracker on a fresh, migrated database.
//
// The suite keeps its read model in a table of its own, projectiontest_rows, which it creates and
// reads in tracked transactions (of upstream application "projectiontest.probe"): it needs nothing of
// the database but the transactions the tracker gives, whatever the dialect. Its SQL has no
// parameters, so it runs unchanged on SQLite and PostgreSQL.
func TestSQLTracker(t *testing.T, newTracker func(t *testing.T) projection.SQLTracker) {
	t.Helper()
	const app = "projectiontest.upstream"
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
		s.mark(t, app, 0)
		if err := s.tr.ProcessTracked(s.ctx, es.Tracking{ApplicationName: app, NotificationID: 3}, insert(1, 10)); err != nil {
			t.Fatalf("ProcessTracked: %v", err)
		}
		s.mark(t, app, 3)
		s.rows(t, map[int64]int64{1: 10})
	})

	run("rolls back on error", func(t *testing.T, s *sqlSuite) {
		boom := errors.New("boom")
		err := s.tr.ProcessTracked(s.ctx, es.Tracking{ApplicationName: app, NotificationID: 1}, func(ctx context.Context, tx projection.SQLTx) error {
			if err := insert(1, 10)(ctx, tx); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("ProcessTracked returned %v, want the error of fn", err)
		}
		s.mark(t, app, 0)
		s.rows(t, map[int64]int64{})
	})

	run("conflict at or below the mark rolls back", func(t *testing.T, s *sqlSuite) {
		if err := s.tr.ProcessTracked(s.ctx, es.Tracking{ApplicationName: app, NotificationID: 5}, insert(1, 10)); err != nil {
			t.Fatal(err)
		}
		for _, id := range []int64{5, 4, 1} {
			err := s.tr.ProcessTracked(s.ctx, es.Tracking{ApplicationName: app, NotificationID: id}, insert(100+id, 1))
			if !errors.Is(err, es.ErrConflict) {
				t.Fatalf("tracking %d with the mark at 5: got %v, want ErrConflict", id, err)
			}
		}
		if err := s.tr.ProcessTracked(s.ctx, es.Tracking{ApplicationName: app, NotificationID: 7}, insert(2, 20)); err != nil {
			t.Fatalf("tracking 7 after 5 (gaps are allowed): %v", err)
		}
		s.mark(t, app, 7)
		s.rows(t, map[int64]int64{1: 10, 2: 20})
	})

	run("marks are per application", func(t *testing.T, s *sqlSuite) {
		if err := s.tr.ProcessTracked(s.ctx, es.Tracking{ApplicationName: "a", NotificationID: 9}, insert(1, 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.tr.ProcessTracked(s.ctx, es.Tracking{ApplicationName: "b", NotificationID: 2}, insert(2, 2)); err != nil {
			t.Fatalf("application b at 2 while a is at 9: %v", err)
		}
		s.mark(t, "a", 9)
		s.mark(t, "b", 2)
		s.mark(t, "c", 0)
	})

	run("panic rolls back", func(t *testing.T, s *sqlSuite) {
		var (
			recovered any
			err       error
		)
		func() {
			defer func() { recovered = recover() }()
			err = s.tr.ProcessTracked(s.ctx, es.Tracking{ApplicationName: app, NotificationID: 1}, func(ctx context.Context, tx projection.SQLTx) error {
				if err := insert(1, 10)(ctx, tx); err != nil {
					return err
				}
				panic("projectiontest: panic in a projection")
			})
		}()
		if recovered == nil && err == nil {
			t.Fatal("ProcessTracked returned nil although fn panicked")
		}
		s.mark(t, app, 0)
		s.rows(t, map[int64]int64{})
		// The transaction must be over: the database takes writes again.
		if err := s.tr.ProcessTracked(s.ctx, es.Tracking{ApplicationName: app, NotificationID: 1}, insert(1, 11)); err != nil {
			t.Fatalf("ProcessTracked after a panic: %v", err)
		}
		s.rows(t, map[int64]int64{1: 11})
	})

	run("cancelled context rolls back", func(t *testing.T, s *sqlSuite) {
		ctx, cancel := context.WithCancel(s.ctx)
		err := s.tr.ProcessTracked(ctx, es.Tracking{ApplicationName: app, NotificationID: 1}, func(ctx context.Context, tx projection.SQLTx) error {
			if err := insert(1, 10)(ctx, tx); err != nil {
				return err
			}
			cancel()
			return nil
		})
		if err == nil {
			t.Fatal("ProcessTracked committed although its context ended before the commit")
		}
		s.mark(t, app, 0)
		s.rows(t, map[int64]int64{})
	})

	run("one of two racing transactions wins", func(t *testing.T, s *sqlSuite) {
		const racers = 4
		for round := int64(1); round <= 5; round++ {
			var wg sync.WaitGroup
			errs := make([]error, racers)
			start := make(chan struct{})
			for i := range racers {
				wg.Go(func() {
					<-start
					errs[i] = s.tr.ProcessTracked(s.ctx, es.Tracking{ApplicationName: app, NotificationID: round},
						insert(round*100+int64(i), round))
				})
			}
			close(start)
			wg.Wait()
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, es.ErrConflict):
					t.Fatalf("round %d racer %d: %v, want nil or ErrConflict", round, i, err)
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d transactions recorded tracking %d", round, won, round)
			}
		}
		s.mark(t, app, 5)
		if got := s.read(t); len(got) != 5 {
			t.Fatalf("%d rows after 5 rounds: %v", len(got), got)
		}
	})

	run("runner restarted mid-transaction processes each event once", func(t *testing.T, s *sqlSuite) {
		reg := mapper.NewRegistry()
		mapper.Register[rowAdded](reg, "projectiontest.RowAdded")
		m, err := mapper.New(reg)
		if err != nil {
			t.Fatal(err)
		}
		upstream := projection.Application{Name: app, Store: eventstore.New(m, memory.NewProcessRecorder())}
		want := map[int64]int64{}
		for i := range 5 {
			a := &row{}
			for v := range 8 {
				k := int64(i*100 + v)
				aggregate.Trigger(a, rowAdded{Key: k, Value: k * 3})
				want[k] = k * 3
			}
			if _, err := upstream.Store.Put(s.ctx, a.Collect()); err != nil {
				t.Fatal(err)
			}
		}
		last := int64(len(want))
		store := projection.SQL(s.tr)
		project := func(ctx context.Context, tx projection.SQLTx, e aggregate.Event) error {
			r := e.Data.(rowAdded)
			return insert(r.Key, r.Value)(ctx, tx) // a second insert of a key fails: nothing twice
		}
		// Each run stops inside the transaction of a different event; the next resumes.
		for _, stopAt := range []int{3, 1, 17, 9} {
			ctx, cancel := context.WithCancel(s.ctx)
			calls := 0
			r, err := projection.NewRunner(upstream, store, func(ctx context.Context, tx projection.SQLTx, e aggregate.Event) error {
				if err := project(ctx, tx, e); err != nil {
					return err
				}
				if calls++; calls == stopAt {
					cancel()
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Run(ctx); err != nil {
				t.Fatalf("run stopped at its event %d: %v", stopAt, err)
			}
			cancel()
		}
		r, err := projection.NewRunner(upstream, store, project)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(s.ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		if err := r.Wait(ctx, last); err != nil {
			t.Fatalf("Wait(%d): %v", last, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		s.mark(t, app, last)
		s.rows(t, want)
	})
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

const probeApp = "projectiontest.probe"

func (s *sqlSuite) exec(t *testing.T, stmt string) {
	t.Helper()
	s.probe++
	err := s.tr.ProcessTracked(s.ctx, es.Tracking{ApplicationName: probeApp, NotificationID: s.probe}, func(ctx context.Context, tx projection.SQLTx) error {
		_, err := tx.ExecContext(ctx, stmt)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func (s *sqlSuite) read(t *testing.T) map[int64]int64 {
	t.Helper()
	got := map[int64]int64{}
	s.probe++
	err := s.tr.ProcessTracked(s.ctx, es.Tracking{ApplicationName: probeApp, NotificationID: s.probe}, func(ctx context.Context, tx projection.SQLTx) error {
		rows, err := tx.QueryContext(ctx, "SELECT k, v FROM projectiontest_rows")
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
		t.Fatalf("read projectiontest_rows: %v", err)
	}
	return got
}

func (s *sqlSuite) rows(t *testing.T, want map[int64]int64) {
	t.Helper()
	if got := s.read(t); !maps.Equal(got, want) {
		t.Fatalf("projectiontest_rows holds %v, want %v", got, want)
	}
}

func (s *sqlSuite) mark(t *testing.T, app string, want int64) {
	t.Helper()
	got, err := s.tr.MaxTrackingID(s.ctx, app)
	if err != nil {
		t.Fatalf("MaxTrackingID(%q): %v", app, err)
	}
	if got != want {
		t.Fatalf("MaxTrackingID(%q) = %d, want %d", app, got, want)
	}
}

func insert(k, v int64) func(ctx context.Context, tx projection.SQLTx) error {
	return func(ctx context.Context, tx projection.SQLTx) error {
		_, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO projectiontest_rows (k, v) VALUES (%d, %d)", k, v))
		return err
	}
}
