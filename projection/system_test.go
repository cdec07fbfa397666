package projection_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

func newSystem(t *testing.T, orders, inv, mailer projection.Application) *projection.System {
	t.Helper()
	s := projection.NewSystem()
	if err := s.Add(orders, inv, mailer); err != nil {
		t.Fatal(err)
	}
	if err := s.Follow("invoicing", "orders"); err != nil {
		t.Fatal(err)
	}
	if err := s.Follow("mailer", "invoicing"); err != nil {
		t.Fatal(err)
	}
	return s
}

func maxID(t *testing.T, app projection.Application) int64 {
	t.Helper()
	id, err := app.Store.Recorder().(es.ApplicationRecorder).MaxNotificationID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// settle waits until the orders have gone through the whole system.
func settle(t *testing.T, ctx context.Context, s *projection.System, lastOrder int64, inv projection.Application) {
	t.Helper()
	if err := s.Wait(ctx, "invoicing", "orders", lastOrder); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(ctx, "mailer", "invoicing", maxID(t, inv)); err != nil {
		t.Fatal(err)
	}
}

func TestSystemLeaderFollowerFollower(t *testing.T) {
	ctx := guarded(t)
	orders, inv, mailer := newApp("orders", nil), newApp("invoicing", invoicing(nil)), newApp("mailer", mailing)

	s := newSystem(t, orders, inv, mailer)
	stop := start(t, s)
	last := placeOrders(t, orders, 1, 2, 3, 4, 5, 6, 7, 8)
	notes(t, orders, 3)
	settle(t, ctx, s, last+3, inv)
	if err := stop(); err != nil {
		t.Fatalf("a clean stop returned %v", err)
	}
	if err := s.Wait(ctx, "invoicing", "orders", last+4); !errors.Is(err, projection.ErrStopped) {
		t.Fatalf("Wait on a stopped system: %v", err)
	}
	if err := s.Run(ctx); err == nil {
		t.Fatal("a second Run was accepted")
	}

	// Orders placed while the system is down are processed by the next one, and nothing twice.
	last = placeOrders(t, orders, 9, 10)
	s = newSystem(t, orders, inv, mailer)
	stop = start(t, s)
	settle(t, ctx, s, last, inv)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	oneInvoicePerOrder(t, orders, inv)
	emails := map[string]int{}
	for _, e := range logOf(t, mailer) {
		emails[e.Data.(EmailQueued).Invoice.String()]++
	}
	if len(emails) != 10 {
		t.Fatalf("%d invoices mailed, want 10", len(emails))
	}
	for id, n := range emails {
		if n != 1 {
			t.Fatalf("invoice %s mailed %d times", id, n)
		}
	}
}

func TestSystemStopsOnTheFirstError(t *testing.T) {
	ctx := guarded(t)
	orders, inv, mailer := newApp("orders", nil), newApp("invoicing", invoicing(nil)), newApp("mailer", mailing)
	s := newSystem(t, orders, inv, mailer)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	placeOrders(t, orders, 1, 2, -3, 4)
	err := <-done // the mailer pipe, healthy, must stop too for Run to return
	var perr *projection.Error
	if !errors.As(err, &perr) || perr.NotificationID != 3 || !strings.Contains(err.Error(), `"invoicing" following "orders"`) {
		t.Fatalf("Run: %v, want the invoicing pipe's error at notification 3", err)
	}
	if err := s.Wait(ctx, "invoicing", "orders", 4); !errors.As(err, &perr) {
		t.Fatalf("Wait on the failed pipe: %v", err)
	}
	if err := s.Wait(ctx, "mailer", "invoicing", 100); !errors.Is(err, projection.ErrStopped) {
		t.Fatalf("Wait on the stopped healthy pipe: %v", err)
	}
}

func TestSystemRefusesMisconfiguration(t *testing.T) {
	orders, inv := newApp("orders", nil), newApp("invoicing", invoicing(nil))
	s := projection.NewSystem()
	if err := s.Add(orders, inv); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"duplicate name", s.Add(newApp("orders", nil))},
		{"no name", s.Add(projection.Application{Store: orders.Store})},
		{"unknown follower", s.Follow("nobody", "orders")},
		{"unknown leader", s.Follow("invoicing", "nobody")},
		{"leader without a policy as follower", s.Follow("orders", "invoicing")},
		{"self", s.Follow("invoicing", "invoicing")},
		{"wait on a missing pipe", s.Wait(context.Background(), "invoicing", "orders", 1)},
	} {
		if tc.err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if err := s.Follow("invoicing", "orders"); err != nil {
		t.Fatal(err)
	}
	if err := s.Follow("invoicing", "orders"); err == nil {
		t.Error("a second pipe between the same applications was accepted")
	}
}
