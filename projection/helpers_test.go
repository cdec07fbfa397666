package projection_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
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

// Events of the upstream "bank" of these tests.
type (
	Deposited struct {
		Owner  string `json:"owner"`
		Amount int64  `json:"amount"`
	}
	Noted struct {
		Text string `json:"text"`
	}
)

const (
	topicDeposited = "test.Deposited"
	topicNoted     = "test.Noted"
)

// Account is the upstream aggregate.
type Account struct {
	aggregate.Base
	Owner string
	Total int64
}

func (a *Account) Apply(e any) {
	switch e := e.(type) {
	case Deposited:
		a.Owner = e.Owner
		a.Total += e.Amount
	}
}

var namespace = uuid.MustParse("0d1f4f5e-4a53-4fa5-9a2b-4a6b8a3f1c11")

func registry() *mapper.Registry {
	r := mapper.NewRegistry()
	mapper.Register[Deposited](r, topicDeposited)
	mapper.Register[Noted](r, topicNoted)
	mapper.Register[OrderPlaced](r, "test.OrderPlaced")
	mapper.Register[InvoiceIssued](r, "test.InvoiceIssued")
	mapper.Register[EmailQueued](r, "test.EmailQueued")
	mapper.Register[Audited](r, "test.Audited")
	mapper.Register[Customer](r, "test.Customer")
	// The aggregates, whose topics name the types of their streams.
	mapper.Register[Order](r, "test.Order")
	mapper.Register[Invoice](r, "test.Invoice")
	mapper.Register[Email](r, "test.Email")
	mapper.Register[Audit](r, "test.Audit")
	return r
}

// newUpstream returns an application on a fresh memory recorder.
func newUpstream(t testing.TB, name string) projection.Application {
	t.Helper()
	return projection.Application{Name: name, Store: eventstore.New(must(mapper.New(registry())), memory.NewProcessRecorder())}
}

// bankOf returns the upstream "bank" on a fresh memory recorder, with the first n deposits recorded.
func bankOf(t testing.TB, n int) projection.Application {
	t.Helper()
	up := newUpstream(t, "bank")
	deposits(t, up, n)
	return up
}

// deposit is the i-th deposit of the deterministic history: ten owners, varied amounts.
func deposit(i int) (owner string, amount int64) {
	return fmt.Sprintf("owner-%d", i%10), int64(i*7%50 + 1)
}

// deposits records the deposits 0..n-1 of the deterministic history, one InsertEvents each, so that
// deposit i has notification ID i+1 on a fresh recorder.
func deposits(t testing.TB, app projection.Application, n int) { depositRange(t, app, 0, n) }

// depositRange records the deposits from..to-1 of the deterministic history.
func depositRange(t testing.TB, app projection.Application, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		owner, amount := deposit(i)
		e := aggregate.Event{
			OriginatorID:      aggregate.NameID(namespace, owner),
			OriginatorVersion: int64(i/10 + 1), // owners take turns
			Timestamp:         time.Now().UTC(),
			Data:              Deposited{Owner: owner, Amount: amount},
		}
		if _, err := app.Store.Put(context.Background(), []aggregate.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
}

// balance is an owner's line in the read model.
type balance struct{ Total, Count int64 }

// singlePass is the read model of the first n deposits, computed without any projection.
func singlePass(t testing.TB, n int) map[string]balance {
	t.Helper()
	m := map[string]balance{}
	for i := range n {
		owner, amount := deposit(i)
		b := m[owner]
		b.Total += amount
		b.Count++
		m[owner] = b
	}
	return m
}

func equalBalances(a, b map[string]balance) bool { return maps.Equal(a, b) }

type memTx = projection.MemoryTx[string, balance]

// balances is the projection of these tests on a MemoryStore: per owner a total and a count, and per
// event an "applied" line counting how often it was applied.
func balances(ctx context.Context, tx *memTx, e aggregate.Event) error {
	switch d := e.Data.(type) {
	case Deposited:
		b, _ := tx.Get(d.Owner)
		b.Total += d.Amount
		b.Count++
		tx.Put(d.Owner, b)
	}
	key := fmt.Sprintf("applied %s/%d", e.OriginatorID, e.OriginatorVersion)
	n, _ := tx.Get(key)
	n.Count++
	tx.Put(key, n)
	return nil
}

// readModel splits a balances store into the balances and the counts of applications per event.
func readModel(s *projection.MemoryStore[string, balance]) (map[string]balance, map[string]int64) {
	bal, applied := map[string]balance{}, map[string]int64{}
	for k, v := range s.Snapshot() {
		if len(k) > 8 && k[:8] == "applied " {
			applied[k] = v.Count
		} else {
			bal[k] = v
		}
	}
	return bal, applied
}

// replaying is an upstream recorder that delivers every notification twice and ignores where the
// subscriber asked to start, as a faulty transport or an at-least-once relay might.
type replaying struct{ es.ApplicationRecorder }

func (r replaying) Subscribe(ctx context.Context, after int64, topics ...string) iter.Seq2[es.Notification, error] {
	return func(yield func(es.Notification, error) bool) {
		for n, err := range r.ApplicationRecorder.Subscribe(ctx, 0, topics...) {
			if !yield(n, err) || err != nil || !yield(n, nil) {
				return
			}
		}
	}
}

func withRecorder(app projection.Application, wrap func(es.ApplicationRecorder) es.ApplicationRecorder) projection.Application {
	rec := app.Store.Recorder().(es.ApplicationRecorder)
	app.Store = eventstore.New(app.Store.Mapper(), wrap(rec))
	return app
}

// committing is a TrackingStore that calls committed with the tracking of each batch it commits.
type committing struct {
	*projection.MemoryStore[string, balance]
	committed func(es.Tracking)
}

func (s *committing) Process(ctx context.Context, t es.Tracking, fn func(context.Context, *memTx) error) error {
	err := s.MemoryStore.Process(ctx, t, fn)
	if err == nil {
		s.committed(t)
	}
	return err
}

// start runs r (a Runner or a System) in the background; the returned function stops it and returns
// Run's result.
func start(t testing.TB, r interface{ Run(context.Context) error }) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	var err error
	stop = func() error {
		if !stopped {
			cancel()
			err, stopped = <-done, true
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// must returns v and panics on err: for constructors whose arguments the test controls.
func must[V any](v V, err error) V {
	if err != nil {
		panic(err)
	}
	return v
}

// withProcessRecorder returns app with its store's recorder replaced by rec.
func withProcessRecorder(app projection.Application, rec es.ProcessRecorder) projection.Application {
	app.Store = eventstore.New(app.Store.Mapper(), rec)
	return app
}

// guard bounds every wait of these tests; reaching it is a failure, not a measurement.
const guard = 30 * time.Second

func guarded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	t.Cleanup(cancel)
	return ctx
}

func newBalances() *projection.MemoryStore[string, balance] {
	return projection.NewMemoryStore[string, balance]()
}

// runTo runs r until it has processed notification n, then stops it; an error of either fails t.
func runTo[Tx any](ctx context.Context, t testing.TB, r *projection.Runner[Tx], n int64) {
	t.Helper()
	stop := start(t, r)
	if err := r.Wait(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// balancesRunner returns a runner "balances" of the balances projection from up to store; an error
// fails t.
func balancesRunner(t testing.TB, up projection.Application, store projection.TrackingStore[*memTx], opts ...projection.Option) *projection.Runner[*memTx] {
	t.Helper()
	r, err := projection.NewRunner("balances", up, store, balances, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkAppliedOnce fails t unless the balances in s are want, built of the given number of events,
// each of them applied exactly once.
func checkAppliedOnce(t testing.TB, s *projection.MemoryStore[string, balance], want map[string]balance, events int) {
	t.Helper()
	bal, applied := readModel(s)
	if !equalBalances(bal, want) || len(applied) != events {
		t.Fatalf("read model %v of %d events, want %v of %d", bal, len(applied), want, events)
	}
	for k, c := range applied {
		if c != 1 {
			t.Fatalf("%s applied %d times", k, c)
		}
	}
}

// instancesProcessEachEventOnce runs three runners of one projection on one store while n deposits
// arrive, and checks that together they applied each event once.
func instancesProcessEachEventOnce(t *testing.T, n int, opts ...projection.Option) {
	ctx := guarded(t)
	up := newUpstream(t, "bank")
	store := newBalances()
	var runners []*projection.Runner[*memTx]
	for range 3 {
		r := balancesRunner(t, up, store, opts...)
		start(t, r)
		runners = append(runners, r)
	}
	deposits(t, up, n)
	for i, r := range runners {
		if err := r.Wait(ctx, int64(n)); err != nil {
			t.Fatalf("runner %d: %v", i, err)
		}
	}
	checkAppliedOnce(t, store, singlePass(t, n), n)
}

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

// audited triggers an Audited of e on the aggregate id of repo (a new one when there is none yet) and
// collects it in p.
func audited[T any, P repository.Aggregate[T]](ctx context.Context, p *projection.Processing, repo *repository.Repository[T, P], id uuid.UUID, e aggregate.Event) error {
	a, err := repo.Get(ctx, id)
	if errors.Is(err, es.ErrNotFound) {
		a = P(new(T))
		a.AggregateBase().ID = id
	} else if err != nil {
		return err
	}
	aggregate.Trigger(a, Audited{Order: e.OriginatorID})
	p.Collect(a)
	return nil
}
