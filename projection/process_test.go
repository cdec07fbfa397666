package projection_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

func TestProcessApplication(t *testing.T) {
	ctx := guarded(t)
	orders := newApp("orders", nil)
	var calls atomic.Int64
	inv := newApp("invoicing", invoicing(&calls))
	placeOrders(t, orders, 10, 20, 30)
	last := notes(t, orders, 2) // nothing to do for these, but tracked
	placeOrders(t, orders, 40)
	last++

	r, err := projection.NewProcess(inv, orders)
	if err != nil {
		t.Fatal(err)
	}
	runTo(ctx, t, r, last)
	oneInvoicePerOrder(t, orders, inv)
	if m := mark(t, inv, "orders"); m != last {
		t.Fatalf("tracking mark %d, want %d (events without effect must be tracked too)", m, last)
	}

	t.Run("duplicate delivery is a no-op", func(t *testing.T) {
		calls.Store(0)
		replay := withRecorder(orders, func(r es.ApplicationRecorder) es.ApplicationRecorder { return replaying{r} })
		r, err := projection.NewProcess(inv, replay)
		if err != nil {
			t.Fatal(err)
		}
		stop := start(t, r)
		more := placeOrders(t, orders, 50)
		if err := r.Wait(ctx, more); err != nil {
			t.Fatal(err)
		}
		if err := stop(); err != nil {
			t.Fatalf("duplicates stopped the process: %v", err)
		}
		oneInvoicePerOrder(t, orders, inv)
		if n := calls.Load(); n != 1 {
			t.Fatalf("the policy ran %d times for 1 new event among %d duplicates", n, 2*more)
		}
	})

	t.Run("two instances process each event once", func(t *testing.T) {
		var rs []*projection.Runner[*projection.Processing]
		for range 2 {
			r, err := projection.NewProcess(inv, orders)
			if err != nil {
				t.Fatal(err)
			}
			start(t, r)
			rs = append(rs, r)
		}
		amounts := make([]int64, 60)
		for i := range amounts {
			amounts[i] = int64(i + 1)
		}
		last := placeOrders(t, orders, amounts...)
		for _, r := range rs {
			if err := r.Wait(ctx, last); err != nil {
				t.Fatal(err)
			}
		}
		oneInvoicePerOrder(t, orders, inv)
	})
}

func TestProcessPolicyErrorRecordsNothing(t *testing.T) {
	ctx := guarded(t)
	orders := newApp("orders", nil)
	inv := newApp("invoicing", invoicing(nil))
	placeOrders(t, orders, 1, 2, -3, 4)
	r, _ := projection.NewProcess(inv, orders)
	err := r.Run(ctx)
	var perr *projection.Error
	if !errors.As(err, &perr) || perr.NotificationID != 3 || !strings.Contains(err.Error(), "negative amount") {
		t.Fatalf("Run: %v, want an *Error for notification 3", err)
	}
	if m := mark(t, inv, "orders"); m != 2 {
		t.Fatalf("mark %d, want 2", m)
	}
	if n := len(logOf(t, inv)); n != 2 {
		t.Fatalf("%d invoices, want 2", n)
	}
}

func TestProcessRetriesAPolicyOnAConcurrentChange(t *testing.T) {
	ctx := guarded(t)
	orders := newApp("orders", nil)
	var audit *projection.Application
	var interfered atomic.Bool
	var attempts atomic.Int64
	policy := func(ctx context.Context, p *projection.Processing, e aggregate.Event) error {
		attempts.Add(1)
		audits := must(repository.New[Audit](audit.Store))
		if err := audited(ctx, p, audits, auditID, e); err != nil {
			return err
		}
		if p.NotificationID == 2 && interfered.CompareAndSwap(false, true) {
			// Another writer (outside the policy's unit of work) changes the audit between the
			// policy's load and its save.
			b, err := audits.Get(context.Background(), auditID)
			if err != nil {
				return err
			}
			aggregate.Trigger(b, Audited{Order: uuid.Nil})
			if _, err := audits.Save(context.Background(), b); err != nil {
				return err
			}
		}
		return nil
	}
	app := newApp("audit", policy)
	audit = &app
	last := placeOrders(t, orders, 1, 2, 3)
	r, _ := projection.NewProcess(app, orders, projection.WithBatch(1, time.Minute)) // to count the runs
	runTo(ctx, t, r, last)
	a, err := must(repository.New[Audit](app.Store)).Get(ctx, auditID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Orders != 4 || attempts.Load() != 4 {
		t.Fatalf("audit counts %d orders after %d policy runs, want 4 (3 orders and the interference) after 4", a.Orders, attempts.Load())
	}
}

func TestNewProcessRefusesMisconfiguration(t *testing.T) {
	orders := newApp("orders", nil)
	if _, err := projection.NewProcess(newApp("x", nil), orders); err == nil {
		t.Error("a follower without a policy was accepted")
	}
	if _, err := projection.NewProcess(newApp("orders", mailing), orders); err == nil {
		t.Error("an application following itself was accepted")
	}
	noTracking := withRecorder(newApp("x", mailing), func(r es.ApplicationRecorder) es.ApplicationRecorder {
		return struct{ es.ApplicationRecorder }{r}
	})
	noTracking.Policy = mailing
	if _, err := projection.NewProcess(noTracking, orders); err == nil {
		t.Error("a follower without tracking records was accepted")
	}
}
