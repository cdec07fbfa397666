package projection_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

func TestBatchesFormWhileCatchingUp(t *testing.T) {
	const n = 2000
	ctx := guarded(t)
	up := bankOf(t, n)
	// The notification ID that each committed batch ended with, and its size.
	var (
		mu      sync.Mutex
		batches []int64
		sizes   []int
	)
	store := &committing{MemoryStore: newBalances(), committed: func(t es.Tracking) {
		mu.Lock()
		batches = append(batches, t.NotificationID)
		sizes = append(sizes, int(t.NotificationID-t.Prior))
		mu.Unlock()
	}}
	r := balancesRunner(t, up, store, projection.WithBatch(500, time.Minute))
	runTo(ctx, t, r, n)
	checkAppliedOnce(t, store.MemoryStore, singlePass(t, n), n)
	mu.Lock()
	defer mu.Unlock()
	// Catching up, the runner takes what is at hand: batches up to the bound, never beyond it. The
	// subscription reads pages, so most batches are larger than one.
	if len(batches) >= n/2 {
		t.Fatalf("%d transactions for %d events waiting in the log: the runner did not batch", len(batches), n)
	}
	if m := slices.Max(sizes); m > 500 {
		t.Fatalf("a batch of %d notifications, above the bound of 500", m)
	}
}

func TestBatchesDoNotDelayAQuietLog(t *testing.T) {
	ctx := guarded(t)
	up := newUpstream(t, "bank")
	store := newBalances()
	// A bound of an hour: a runner that waited for a batch to fill, or for its time, would not
	// process these events before the test's guard ends it.
	r := balancesRunner(t, up, store, projection.WithBatch(1000, time.Hour))
	stop := start(t, r)
	for i := range 5 {
		depositRange(t, up, i, i+1)
		if err := r.Wait(ctx, int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// failAt is a BatchProjection that fails for any batch holding the deposit of owner, and counts the
// batches it is given.
func failAt(owner string, calls *atomic.Int64) projection.BatchProjection[*memTx] {
	return func(ctx context.Context, tx *memTx, events []aggregate.Event) error {
		calls.Add(1)
		for _, e := range events {
			if err := balances(ctx, tx, e); err != nil {
				return err
			}
			if e.Data.(Deposited).Owner == owner {
				return fmt.Errorf("cannot project %s", owner)
			}
		}
		return nil
	}
}

func TestFailingBatchIsNarrowedDown(t *testing.T) {
	ctx := guarded(t)
	const n, k = 40, 27 // notification 27 fails, whatever batch it is in
	const owner = "unlucky"
	up := newUpstream(t, "bank")
	depositRange(t, up, 0, k-1)
	e := aggregate.Event{OriginatorID: aggregate.NewID(), OriginatorVersion: 1, Timestamp: time.Now(), Data: Deposited{Owner: owner, Amount: 1}}
	if _, err := up.Store.Put(ctx, []aggregate.Event{e}); err != nil {
		t.Fatal(err)
	}
	depositRange(t, up, k-1, n)
	store := newBalances()
	var calls atomic.Int64
	r, err := projection.NewBatchRunner("balances", up, store, failAt(owner, &calls), projection.WithBatch(100, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	err = r.Run(ctx)
	var perr *projection.Error
	if !errors.As(err, &perr) || perr.NotificationID != k || perr.Consumer != "balances" || perr.Upstream != "bank" {
		t.Fatalf("Run: %v, want an *Error naming notification %d", err, k)
	}
	// Everything before the failing event is committed, nothing after it.
	if mark, _ := store.MaxTrackingID(ctx, "balances", "bank"); mark != k-1 {
		t.Fatalf("mark %d, want %d", mark, k-1)
	}
	if bal, _ := readModel(store); !equalBalances(bal, singlePass(t, k-1)) {
		t.Fatalf("read model %v, want the single pass of %d", bal, k-1)
	}
	if err := r.Wait(ctx, k-1); err != nil {
		t.Fatalf("Wait(%d): %v", k-1, err)
	}
}

func TestInstancesWithBatchesProcessEachEventOnce(t *testing.T) {
	instancesProcessEachEventOnce(t, 3000, projection.WithBatch(64, time.Minute))
}

func TestTwoProjectionsShareAStore(t *testing.T) {
	const n = 500
	ctx := guarded(t)
	up := bankOf(t, n)
	store := newBalances()
	prefixed := func(prefix string) projection.Projection[*memTx] {
		return func(ctx context.Context, tx *memTx, e aggregate.Event) error {
			d := e.Data.(Deposited)
			b, _ := tx.Get(prefix + d.Owner)
			b.Total += d.Amount
			b.Count++
			tx.Put(prefix+d.Owner, b)
			return nil
		}
	}
	a, _ := projection.NewRunner("a", up, store, prefixed("a:"))
	b, _ := projection.NewRunner("b", up, store, prefixed("b:"), projection.WithBatch(7, time.Minute))
	start(t, a)
	start(t, b)
	for _, r := range []*projection.Runner[*memTx]{a, b} {
		if err := r.Wait(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	got := store.Snapshot()
	for owner, want := range singlePass(t, n) {
		if got["a:"+owner] != want || got["b:"+owner] != want {
			t.Fatalf("%s: a has %v, b has %v, want %v each", owner, got["a:"+owner], got["b:"+owner], want)
		}
	}
	if marks := store.TrackingMarks(); len(marks) != 2 || marks[0].NotificationID != n || marks[1].NotificationID != n {
		t.Fatalf("marks %+v, want a and b at %d", marks, n)
	}
}

func TestRebuildWhileRunning(t *testing.T) {
	ctx := guarded(t)
	up := bankOf(t, 100)
	store := newBalances()
	var resets atomic.Int64
	reset := projection.WithReset(func(ctx context.Context, tx *memTx) error {
		resets.Add(1)
		tx.Clear()
		return nil
	})
	r := balancesRunner(t, up, store, reset)
	stop := start(t, r)
	if err := r.Wait(ctx, 100); err != nil {
		t.Fatal(err)
	}
	// An operator asks for a rebuild (esctl tracking rebuild): the mark goes. The running runner
	// notices at its next batch and starts over, clearing the read model in its first transaction.
	if err := store.DeleteTracking(ctx, "balances", "bank"); err != nil {
		t.Fatal(err)
	}
	depositRange(t, up, 100, 150)
	if err := r.Wait(ctx, 150); err != nil {
		t.Fatal(err)
	}
	// Wait can return for 150 from before the reset was seen; wait for the rebuilt mark instead.
	for {
		if mark, _ := store.MaxTrackingID(ctx, "balances", "bank"); mark == 150 && resets.Load() == 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the rebuild did not complete: %d resets", resets.Load())
		case <-time.After(time.Millisecond):
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkAppliedOnce(t, store, singlePass(t, 150), 150)
}

func TestMarkResetWithoutAResetFunctionStops(t *testing.T) {
	ctx := guarded(t)
	up := bankOf(t, 10)
	store := newBalances()
	r := balancesRunner(t, up, store)
	if err := r.Rebuild(ctx); err == nil {
		t.Fatal("Rebuild without a reset function was accepted")
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	if err := r.Wait(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteTracking(ctx, "balances", "bank"); err != nil {
		t.Fatal(err)
	}
	depositRange(t, up, 10, 11)
	if err := <-done; !errors.Is(err, projection.ErrReset) {
		t.Fatalf("Run: %v, want ErrReset", err)
	}
	if bal, _ := readModel(store); !equalBalances(bal, singlePass(t, 10)) {
		t.Fatal("the runner applied events after its mark was reset")
	}
}

func TestStatus(t *testing.T) {
	ctx := guarded(t)
	up := bankOf(t, 30)
	store := newBalances()
	gate := make(chan struct{})
	r, err := projection.NewRunner("balances", up, store, func(ctx context.Context, tx *memTx, e aggregate.Event) error {
		if e.Data.(Deposited).Owner == "owner-0" && e.OriginatorVersion == 2 { // notification 11
			<-gate
		}
		return balances(ctx, tx, e)
	}, projection.WithBatch(1, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Status(ctx)
	if err != nil || s != (projection.Status{Consumer: "balances", Upstream: "bank", Position: 0, Head: 30, Lag: 30}) {
		t.Fatalf("Status before Run = %+v, %v", s, err)
	}
	stop := start(t, r)
	if err := r.Wait(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if s, err := r.Status(ctx); err != nil || s.Position != 10 || s.Head != 30 || s.Lag != 20 {
		t.Fatalf("Status while blocked at 11 = %+v, %v", s, err)
	}
	close(gate)
	if err := r.Wait(ctx, 30); err != nil {
		t.Fatal(err)
	}
	if s, err := r.Status(ctx); err != nil || s.Lag != 0 || s.Position != 30 {
		t.Fatalf("Status caught up = %+v, %v", s, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// Customer counts the orders of a customer, as Audit counts all orders: every order of the customer
// changes it, so a batch of orders changes it many times.
type Customer struct{ Audit }

// countingRecorder counts the InsertEvents calls of the follower: one per batch.
type countingRecorder struct {
	es.ProcessRecorder
	inserts atomic.Int64
}

func (r *countingRecorder) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	r.inserts.Add(1)
	return r.ProcessRecorder.InsertEvents(ctx, events, opts...)
}

func TestProcessBatchSeesItsOwnChanges(t *testing.T) {
	ctx := guarded(t)
	orders := newApp("orders", nil)
	const n = 300
	amounts := make([]int64, n)
	for i := range amounts {
		amounts[i] = 1
	}
	last := placeOrders(t, orders, amounts...) // all of customer "c"
	var follower projection.Application
	policy := func(ctx context.Context, p *projection.Processing, e aggregate.Event) error {
		customers := must(repository.New[Customer](follower.Store))
		// The batch's unit of work has the customer after its first event.
		return audited(ctx, p, customers, aggregate.NameID(namespace, e.Data.(OrderPlaced).Customer), e)
	}
	follower = newApp("customers", policy)
	rec := &countingRecorder{ProcessRecorder: follower.Store.Recorder().(es.ProcessRecorder)}
	follower = withProcessRecorder(follower, rec)
	r, err := projection.NewProcess(follower, orders)
	if err != nil {
		t.Fatal(err)
	}
	runTo(ctx, t, r, last)
	c, err := must(repository.New[Customer](follower.Store)).Get(ctx, aggregate.NameID(namespace, "c"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Orders != n || c.Version != n {
		t.Fatalf("customer counts %d orders at version %d, want %d at %d", c.Orders, c.Version, n, n)
	}
	if got := rec.inserts.Load(); got >= n/2 {
		t.Fatalf("%d saves for %d orders waiting in the log: the process did not batch", got, n)
	}
}

// newForgettingUpstream returns an upstream whose events are encrypted with a data key per owner's
// account (the originator), and its data keys.
func newForgettingUpstream(t *testing.T) (projection.Application, *datakey.Keys) {
	t.Helper()
	key, err := cipher.GenerateKey(256)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := cipher.ParseKeyRing("1:" + key)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := datakey.New(ring, datakey.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	m := must(mapper.New(registry(), mapper.WithDataKeys(keys)))
	return projection.Application{Name: "bank", Store: eventstore.New(m, memory.NewProcessRecorder())}, keys
}

func TestForgottenSubjects(t *testing.T) {
	const n = 100
	ctx := guarded(t)
	up, keys := newForgettingUpstream(t)
	deposits(t, up, n) // ten owners, each an aggregate with a data key of its own
	forgotten := aggregate.NameID(namespace, "owner-3")
	if err := keys.Forget(ctx, forgotten.String()); err != nil {
		t.Fatal(err)
	}
	t.Run("skipped by default", func(t *testing.T) {
		store := newBalances()
		r := balancesRunner(t, up, store, projection.WithBatch(16, time.Minute))
		runTo(ctx, t, r, n)
		want := singlePass(t, n)
		delete(want, "owner-3")
		checkAppliedOnce(t, store, want, n-n/10) // without owner-3's n/10 events
	})
	t.Run("or the runner stops", func(t *testing.T) {
		r := balancesRunner(t, up, newBalances(), projection.WithForgotten(projection.StopOnForgotten))
		err := r.Run(ctx)
		var perr *projection.Error
		if !errors.As(err, &perr) || perr.NotificationID != 4 || !errors.Is(err, datakey.ErrForgotten) {
			t.Fatalf("Run: %v, want an *Error for notification 4 (owner-3's first deposit) wrapping ErrForgotten", err)
		}
	})
}
