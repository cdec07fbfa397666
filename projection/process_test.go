package projection_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// The system of these tests: orders → invoicing → mailer.
type (
	OrderPlaced struct {
		Customer string `json:"customer"`
		Amount   int64  `json:"amount"`
	}
	InvoiceIssued struct {
		Order  uuid.UUID `json:"order"`
		Amount int64     `json:"amount"`
	}
	EmailQueued struct {
		Invoice uuid.UUID `json:"invoice"`
	}
	Audited struct {
		Order uuid.UUID `json:"order"`
	}
)

type Order struct {
	aggregate.Base
	Amount int64
}

func (o *Order) Apply(e any) {
	if e, ok := e.(OrderPlaced); ok {
		o.Amount = e.Amount
	}
}

type Invoice struct {
	aggregate.Base
	Order uuid.UUID
}

func (i *Invoice) Apply(e any) {
	if e, ok := e.(InvoiceIssued); ok {
		i.Order = e.Order
	}
}

type Email struct{ aggregate.Base }

func (*Email) Apply(any) {}

// Audit is one aggregate that every order changes: the policies that use it meet concurrent changes.
type Audit struct {
	aggregate.Base
	Orders int
}

func (a *Audit) Apply(e any) {
	if _, ok := e.(Audited); ok {
		a.Orders++
	}
}

var auditID = aggregate.NameID(namespace, "audit")

func newApp(name string, policy projection.Policy) projection.Application {
	return projection.Application{Name: name, Store: eventstore.New(must(mapper.New(registry())), memory.NewProcessRecorder()), Policy: policy}
}

// invoicing issues an invoice, with a random ID, for each order: only tracking prevents a second
// invoice for an order delivered twice.
func invoicing(calls *atomic.Int64) projection.Policy {
	return func(ctx context.Context, p *projection.Processing, e aggregate.Event) error {
		if calls != nil {
			calls.Add(1)
		}
		o, ok := e.Data.(OrderPlaced)
		if !ok {
			return nil // nothing to do: the tracking is still recorded
		}
		if o.Amount < 0 {
			return fmt.Errorf("order %s: negative amount %d", e.OriginatorID, o.Amount)
		}
		inv := &Invoice{}
		aggregate.Trigger(inv, InvoiceIssued{Order: e.OriginatorID, Amount: o.Amount})
		p.Collect(inv, inv) // twice: saved once
		return nil
	}
}

func mailing(ctx context.Context, p *projection.Processing, e aggregate.Event) error {
	if _, ok := e.Data.(InvoiceIssued); ok {
		m := &Email{}
		aggregate.Trigger(m, EmailQueued{Invoice: e.OriginatorID})
		p.Collect(m)
	}
	return nil
}

func placeOrders(t *testing.T, app projection.Application, amounts ...int64) int64 {
	t.Helper()
	var last int64
	for _, a := range amounts {
		o := &Order{}
		aggregate.Trigger(o, OrderPlaced{Customer: "c", Amount: a})
		ids, err := app.Store.Put(context.Background(), o.Collect())
		if err != nil {
			t.Fatal(err)
		}
		last = ids[0]
	}
	return last
}

// logOf returns the events of app's notification log, decoded.
func logOf(t *testing.T, app projection.Application) []aggregate.Event {
	t.Helper()
	rec := app.Store.Recorder().(es.ApplicationRecorder)
	ns, err := rec.SelectNotifications(context.Background(), es.NotificationQuery{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]aggregate.Event, len(ns))
	for i, n := range ns {
		if out[i], err = app.Store.Mapper().Decode(n.StoredEvent); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func mark(t *testing.T, app projection.Application, upstream string) int64 {
	t.Helper()
	id, err := app.Store.Recorder().(es.TrackingRecorder).MaxTrackingID(context.Background(), app.Name, upstream)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// oneInvoicePerOrder checks that the follower's log holds exactly one invoice for each order.
func oneInvoicePerOrder(t *testing.T, orders, follower projection.Application) {
	t.Helper()
	want := map[uuid.UUID]int{}
	for _, e := range logOf(t, orders) {
		if _, ok := e.Data.(OrderPlaced); ok {
			want[e.OriginatorID] = 1
		}
	}
	got := map[uuid.UUID]int{}
	for _, e := range logOf(t, follower) {
		got[e.Data.(InvoiceIssued).Order]++
	}
	if len(got) != len(want) {
		t.Fatalf("%d orders invoiced, want %d", len(got), len(want))
	}
	for id, n := range got {
		if n != 1 || want[id] != 1 {
			t.Fatalf("order %s invoiced %d times", id, n)
		}
	}
}

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
		a, err := audits.Get(ctx, auditID)
		if errors.Is(err, es.ErrNotFound) {
			a = &Audit{}
			a.ID = auditID
		} else if err != nil {
			return err
		}
		aggregate.Trigger(a, Audited{Order: e.OriginatorID})
		p.Collect(a)
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
