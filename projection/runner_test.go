package projection_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// stopAfter returns a TrackingStore on s that cancels the run once it has committed the k-th batch (with
// batches of one, event), so that the runner is stopped between two batches.
func stopAfter(s *projection.MemoryStore[string, balance], k int, cancel context.CancelFunc) *committing {
	n := 0
	return &committing{MemoryStore: s, committed: func(es.Tracking) {
		if n++; n == k {
			cancel()
		}
	}}
}

func TestRestartsBuildTheReadModelOfASinglePass(t *testing.T) {
	const n = 300
	ctx := guarded(t)
	up := bankOf(t, n)

	// One pass.
	one := newBalances()
	r := balancesRunner(t, up, one)
	runTo(ctx, t, r, n)
	oneBal, _ := readModel(one)
	if want := singlePass(t, n); !equalBalances(oneBal, want) {
		t.Fatalf("single pass built %v, want %v", oneBal, want)
	}

	// Many runs over one store, each cancelled at another point: between two events, or inside an
	// event's transaction (which then does not commit).
	store := newBalances()
	for run, k := range []int{1, 37, 2, 90, 13, 64} {
		runCtx, cancel := context.WithCancel(ctx)
		var ts projection.TrackingStore[*memTx] = stopAfter(store, k, cancel)
		project := balances
		if run%2 == 1 {
			ts = store
			calls := 0
			project = func(ctx context.Context, tx *memTx, e aggregate.Event) error {
				if err := balances(ctx, tx, e); err != nil {
					return err
				}
				if calls++; calls == k {
					cancel()
				}
				return nil
			}
		}
		before, _ := store.MaxTrackingID(ctx, "balances", "bank")
		// One event per transaction, to stop between two chosen events; batches, to stop inside one.
		batch := projection.WithBatch(1, time.Minute)
		if run%2 == 1 {
			batch = projection.WithBatch(16, time.Minute)
		}
		r, err := projection.NewRunner("balances", up, ts, project, batch)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Run(runCtx); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		cancel()
		after, _ := store.MaxTrackingID(ctx, "balances", "bank")
		if run%2 == 0 && after != before+int64(k) {
			t.Fatalf("run %d stopped at %d, want %d", run, after, before+int64(k))
		}
		// The batch of the k-th event was cancelled inside its transaction: it and everything after it
		// stay unprocessed.
		if run%2 == 1 && (after < before || after >= before+int64(k)) {
			t.Fatalf("run %d stopped at %d, want a batch boundary in [%d, %d)", run, after, before, before+int64(k))
		}
		if err := r.Wait(ctx, after+1); !errors.Is(err, projection.ErrStopped) {
			t.Fatalf("Wait on a stopped runner: %v, want ErrStopped", err)
		}
	}
	r = balancesRunner(t, up, store)
	runTo(ctx, t, r, n)
	checkAppliedOnce(t, store, oneBal, n)
}

func TestReplayedNotificationsAreSkipped(t *testing.T) {
	const n = 40
	ctx := guarded(t)
	up := bankOf(t, n)
	store := newBalances()
	// The first runner sees a clean log and stops after 25; the second sees everything twice, from
	// the start.
	runCtx, cancel := context.WithCancel(ctx)
	first := balancesRunner(t, up, stopAfter(store, 25, cancel), projection.WithBatch(1, time.Minute))
	if err := first.Run(runCtx); err != nil {
		t.Fatal(err)
	}
	if mark, _ := store.MaxTrackingID(ctx, "balances", "bank"); mark != 25 {
		t.Fatalf("first run stopped at %d", mark)
	}
	calls := 0
	second, _ := projection.NewRunner("balances", withRecorder(up, func(r es.ApplicationRecorder) es.ApplicationRecorder { return replaying{r} }), store,
		func(ctx context.Context, tx *memTx, e aggregate.Event) error {
			calls++
			return balances(ctx, tx, e)
		})
	stop := start(t, second)
	if err := second.Wait(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("a replay stopped the runner: %v", err)
	}
	if calls != n-25 {
		t.Fatalf("the projection ran %d times for %d new events", calls, n-25)
	}
	checkAppliedOnce(t, store, singlePass(t, n), n)
}

func TestRunnersSharingAStoreProcessEachEventOnce(t *testing.T) {
	instancesProcessEachEventOnce(t, 200)
}

func TestProjectionErrorStopsTheRunner(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"plain error", errors.New("projection broke")},
		// A conflict raised by the projection itself must not pass for an event processed already.
		{"conflict of the projection's own", fmt.Errorf("unique key: %w", es.ErrConflict)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := guarded(t)
			up := bankOf(t, 10)
			store := newBalances()
			r, _ := projection.NewRunner("balances", up, store, func(ctx context.Context, tx *memTx, e aggregate.Event) error {
				if err := balances(ctx, tx, e); err != nil {
					return err
				}
				if e.Data.(Deposited).Owner == "owner-6" {
					return tc.err // after writing: the writes must be rolled back
				}
				return nil
			})
			waitErr := make(chan error, 1)
			go func() { waitErr <- r.Wait(ctx, 9) }()
			err := r.Run(ctx)
			var perr *projection.Error
			if !errors.As(err, &perr) || perr.NotificationID != 7 || perr.Topic != topicDeposited ||
				perr.Upstream != "bank" || !errors.Is(err, tc.err) {
				t.Fatalf("Run returned %v, want an *Error for notification 7 wrapping %v", err, tc.err)
			}
			if got := <-waitErr; got != err {
				t.Fatalf("Wait(9) returned %v, want Run's error", got)
			}
			if err := r.Wait(ctx, 6); err != nil {
				t.Fatalf("Wait(6), processed before the error: %v", err)
			}
			if err := r.Wait(ctx, 7); err != perr {
				t.Fatalf("Wait(7): %v", err)
			}
			if mark, _ := store.MaxTrackingID(ctx, "balances", "bank"); mark != 6 {
				t.Fatalf("mark %d, want 6: the runner must not pass the failed event", mark)
			}
			if bal, _ := readModel(store); !equalBalances(bal, singlePass(t, 6)) {
				t.Fatalf("read model %v holds writes of the failed event", bal)
			}
			if err := r.Run(ctx); err == nil {
				t.Fatal("a second Run was accepted")
			}
		})
	}
}

func TestDecodeErrorStopsTheRunner(t *testing.T) {
	ctx := guarded(t)
	up := bankOf(t, 3)
	rec := up.Store.Recorder().(es.ApplicationRecorder)
	if _, err := rec.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: aggregate.NewID(), OriginatorVersion: 1, Topic: "test.Unknown", State: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	r := balancesRunner(t, up, newBalances())
	err := r.Run(ctx)
	var perr *projection.Error
	if !errors.As(err, &perr) || perr.NotificationID != 4 || perr.Topic != "test.Unknown" {
		t.Fatalf("Run: %v, want an *Error for notification 4", err)
	}
}

// notes records n events of topic Noted, returning the ID of the last.
func notes(t *testing.T, app projection.Application, n int) int64 {
	t.Helper()
	var last int64
	for range n {
		a := &Account{}
		aggregate.Trigger(a, Noted{Text: "n"})
		ids, err := app.Store.Put(context.Background(), a.Collect())
		if err != nil {
			t.Fatal(err)
		}
		last = ids[0]
	}
	return last
}

func TestWaitWithATopicFilter(t *testing.T) {
	ctx := guarded(t)
	up := bankOf(t, 5)          // 1..5
	lastNote := notes(t, up, 4) // 6..9, filtered out
	store := newBalances()
	var seen atomic.Int64
	entered, gate := make(chan struct{}), make(chan struct{})
	r, _ := projection.NewRunner("balances", up, store, func(ctx context.Context, tx *memTx, e aggregate.Event) error {
		d, ok := e.Data.(Deposited)
		if !ok {
			return fmt.Errorf("the filter let %T through", e.Data)
		}
		if d.Owner == "gated" {
			close(entered)
			<-gate
		}
		seen.Add(1)
		return balances(ctx, tx, e)
	}, projection.WithTopics(topicDeposited))

	// Waiting before Run starts is fine.
	early := make(chan error, 1)
	go func() { early <- r.Wait(ctx, 3) }()
	stop := start(t, r)
	if err := <-early; err != nil {
		t.Fatal(err)
	}
	// The last notifications are filtered out: the runner never sees them, Wait must still return.
	if err := r.Wait(ctx, lastNote); err != nil {
		t.Fatal(err)
	}
	if seen.Load() != 5 {
		t.Fatalf("Wait(%d) returned with %d of the 5 deposits processed", lastNote, seen.Load())
	}
	// IDs not recorded yet: a future filtered-out one, then a future deposit.
	futureNote := make(chan error, 1)
	go func() { futureNote <- r.Wait(ctx, lastNote+2) }()
	futureDeposit := make(chan error, 1)
	go func() { futureDeposit <- r.Wait(ctx, lastNote+3) }()
	notes(t, up, 2) // 10, 11
	if err := <-futureNote; err != nil {
		t.Fatal(err)
	}
	a := &Account{}
	aggregate.Trigger(a, Deposited{Owner: "late", Amount: 5})
	ids, err := up.Store.Put(ctx, a.Collect())
	if err != nil || ids[0] != lastNote+3 {
		t.Fatalf("deposit got IDs %v, %v", ids, err)
	}
	if err := <-futureDeposit; err != nil {
		t.Fatal(err)
	}
	if b, ok := store.Get("late"); !ok || b.Total != 5 {
		t.Fatal("Wait returned before the deposit was processed")
	}
	// A filtered note after a deposit the runner is still busy with: Wait for the note waits for the
	// deposit, and returns only once it is committed.
	a = &Account{}
	aggregate.Trigger(a, Deposited{Owner: "gated", Amount: 1})
	if _, err := up.Store.Put(ctx, a.Collect()); err != nil { // 13
		t.Fatal(err)
	}
	note := notes(t, up, 1) // 14
	waited := make(chan error, 1)
	go func() {
		err := r.Wait(ctx, note)
		if _, ok := store.Get("gated"); err == nil && !ok {
			err = fmt.Errorf("Wait(%d) returned before deposit %d was committed", note, note-1)
		}
		waited <- err
	}()
	<-entered
	close(gate)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if mark, _ := store.MaxTrackingID(ctx, "balances", "bank"); mark != 13 {
		t.Fatalf("mark %d, want 13: only deposits are tracked", mark)
	}
}

func TestWaitWithoutAFilter(t *testing.T) {
	ctx := guarded(t)
	up := newUpstream(t, "bank")
	store := newBalances()
	r := balancesRunner(t, up, store)
	stop := start(t, r)
	for i := range 20 {
		a := &Account{}
		aggregate.Trigger(a, Deposited{Owner: fmt.Sprint("o", i), Amount: 1})
		ids, err := up.Store.Put(ctx, a.Collect())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Wait(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}
		if _, ok := store.Get(fmt.Sprint("o", i)); !ok {
			t.Fatalf("Wait(%d) returned before its event was processed", ids[0])
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(ctx, 21); !errors.Is(err, projection.ErrStopped) {
		t.Fatalf("Wait after a clean stop: %v", err)
	}
	if err := r.Wait(ctx, 20); err != nil {
		t.Fatalf("Wait for a processed ID after the stop: %v", err)
	}
}

// counting is an upstream recorder that counts the notifications its subscriptions have yielded.
type counting struct {
	es.ApplicationRecorder
	yielded atomic.Int64
}

func (r *counting) Subscribe(ctx context.Context, after int64, topics ...string) iter.Seq2[es.Notification, error] {
	return func(yield func(es.Notification, error) bool) {
		for n, err := range r.ApplicationRecorder.Subscribe(ctx, after, topics...) {
			r.yielded.Add(1)
			if !yield(n, err) {
				return
			}
		}
	}
}

func TestRunnerReadsAtMostABatchAhead(t *testing.T) {
	ctx := guarded(t)
	up := bankOf(t, 1200) // more than a page of the memory recorder
	var rec *counting
	up = withRecorder(up, func(r es.ApplicationRecorder) es.ApplicationRecorder {
		rec = &counting{ApplicationRecorder: r}
		return rec
	})
	// Nothing queues between the log and the projection but the batch in hand and the next one: the
	// runner takes at most a batch ahead from the subscription (which holds a page of its own).
	const size = 100
	var processed int64
	r, _ := projection.NewRunner("balances", up, newBalances(), func(ctx context.Context, tx *memTx, e aggregate.Event) error {
		processed++
		if ahead := rec.yielded.Load() - processed; ahead > 2*size+1 {
			return fmt.Errorf("%d notifications pulled ahead of the projection, more than two batches of %d", ahead, size)
		}
		return balances(ctx, tx, e)
	}, projection.WithBatch(size, time.Minute))
	runTo(ctx, t, r, 1200)
}

func TestNewRunnerRefusesMisconfiguration(t *testing.T) {
	store := newBalances()
	if _, err := projection.NewRunner("balances", projection.Application{Name: "x"}, store, balances); err == nil {
		t.Error("an application without a store was accepted")
	}
	snap := newUpstream(t, "")
	if _, err := projection.NewRunner("balances", snap, store, balances); err == nil {
		t.Error("an application without a name was accepted")
	}
	noLog := projection.Application{Name: "snapshots", Store: eventstore.New(must(mapper.New(registry())), memory.NewAggregateRecorder())}
	if _, err := projection.NewRunner("balances", noLog, store, balances); err == nil {
		t.Error("an application without a notification log was accepted")
	}
	if _, err := projection.NewRunner[*memTx]("balances", newUpstream(t, "bank"), store, nil); err == nil {
		t.Error("a nil projection was accepted")
	}
	if _, err := projection.NewRunner("", newUpstream(t, "bank"), store, balances); err == nil {
		t.Error("a runner without a name was accepted")
	}
	for _, opt := range []projection.Option{projection.WithBatch(0, time.Second), projection.WithBatch(10, 0)} {
		if _, err := projection.NewRunner("balances", newUpstream(t, "bank"), store, balances, opt); err == nil || !strings.Contains(err.Error(), "WithBatch") {
			t.Errorf("an invalid batch was accepted: %v", err)
		}
	}
	wrongTx := projection.WithReset(func(context.Context, projection.SQLTx) error { return nil })
	if _, err := projection.NewRunner("balances", newUpstream(t, "bank"), store, balances, wrongTx); err == nil || !strings.Contains(err.Error(), "WithReset") {
		t.Errorf("a reset function of another transaction type was accepted: %v", err)
	}
	if _, err := projection.NewRunner("balances", newUpstream(t, "bank"), store, balances, nil); err != nil {
		t.Errorf("a nil option was not skipped: %v", err)
	}
}

func TestMemoryStore(t *testing.T) {
	ctx := guarded(t)
	s := newBalances()
	tr := func(prior, id int64) es.Tracking {
		return es.Tracking{Consumer: "c", Upstream: "a", NotificationID: id, Prior: prior}
	}
	if err := s.Process(ctx, tr(0, 2), func(ctx context.Context, tx *memTx) error {
		tx.Put("x", balance{Total: 1})
		tx.Put("y", balance{Total: 2})
		if v, ok := tx.Get("x"); !ok || v.Total != 1 {
			t.Error("a transaction does not read its own write")
		}
		if _, ok := s.Get("x"); ok {
			t.Error("an uncommitted write is visible")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := s.Process(ctx, tr(2, 3), func(ctx context.Context, tx *memTx) error {
		tx.Delete("x")
		tx.Put("z", balance{})
		if _, ok := tx.Get("x"); ok {
			t.Error("a transaction reads a key it deleted")
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Process: %v", err)
	}
	for _, stale := range []es.Tracking{tr(0, 3), tr(2, 2), tr(1, 5)} {
		if err := s.Process(ctx, stale, func(context.Context, *memTx) error {
			t.Error("fn ran for a tracking record that conflicts")
			return nil
		}); !errors.Is(err, es.ErrConflict) {
			t.Fatalf("Process from %d to %d with the mark at 2: %v", stale.Prior, stale.NotificationID, err)
		}
	}
	func() {
		defer func() { _ = recover() }()
		_ = s.Process(ctx, tr(2, 3), func(ctx context.Context, tx *memTx) error {
			tx.Put("p", balance{})
			panic("boom")
		})
	}()
	if err := s.Process(ctx, tr(2, 4), func(ctx context.Context, tx *memTx) error { tx.Delete("y"); return nil }); err != nil {
		t.Fatalf("Process after a panic: %v", err)
	}
	if got := s.Snapshot(); len(got) != 1 || got["x"].Total != 1 || s.Len() != 1 {
		t.Fatalf("store holds %v", got)
	}
	if mark, _ := s.MaxTrackingID(ctx, "c", "a"); mark != 4 {
		t.Fatalf("mark %d", mark)
	}
	if err := s.Process(ctx, es.Tracking{Consumer: "d", Upstream: "a", NotificationID: 1}, func(ctx context.Context, tx *memTx) error {
		tx.Clear()
		if _, ok := tx.Get("x"); ok {
			t.Error("a transaction reads a key after Clear")
		}
		tx.Put("w", balance{Total: 9})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := s.Snapshot(); len(got) != 1 || got["w"].Total != 9 {
		t.Fatalf("store holds %v after Clear and Put", got)
	}
	if got := s.TrackingMarks(); len(got) != 2 || got[0].Consumer != "c" || got[1] != (es.Tracking{Consumer: "d", Upstream: "a", NotificationID: 1}) {
		t.Fatalf("TrackingMarks = %+v", got)
	}
	if err := s.DeleteTracking(ctx, "c", "a"); err != nil {
		t.Fatal(err)
	}
	if mark, _ := s.MaxTrackingID(ctx, "c", "a"); mark != 0 {
		t.Fatalf("mark %d after DeleteTracking", mark)
	}
}

func BenchmarkSubscriptionLatencyMemory(b *testing.B) {
	benchkit.BenchmarkLatency(b, memory.NewProcessRecorder())
}

// TestConcurrentWaiters checks that many waiters on one runner all return, each once its ID is done.
func TestConcurrentWaiters(t *testing.T) {
	const n = 100
	ctx := guarded(t)
	up := newUpstream(t, "bank")
	store := newBalances()
	r := balancesRunner(t, up, store, projection.WithTopics(topicDeposited))
	start(t, r)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for id := int64(1); id <= 2*n; id++ {
		wg.Go(func() {
			if err := r.Wait(ctx, id); err != nil {
				errs <- fmt.Errorf("Wait(%d): %w", id, err)
			}
		})
	}
	for i := range n {
		a := &Account{}
		aggregate.Trigger(a, Deposited{Owner: "w", Amount: int64(i)})
		if _, err := up.Store.Put(ctx, a.Collect()); err != nil {
			t.Fatal(err)
		}
		notes(t, up, 1)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
