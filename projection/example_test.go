package projection_test

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// The domain of the examples: accounts that receive payments.
type (
	PaymentReceived struct {
		Owner  string `json:"owner"`
		Amount int64  `json:"amount"`
	}
	ReceiptIssued struct {
		Payment uuid.UUID `json:"payment"`
		Amount  int64     `json:"amount"`
	}
)

type Payment struct{ aggregate.Base }

func (*Payment) Apply(any) {}

type Receipt struct {
	aggregate.Base
	Amount int64
}

func (r *Receipt) Apply(e any) {
	if e, ok := e.(ReceiptIssued); ok {
		r.Amount = e.Amount
	}
}

func exampleRegistry() *mapper.Registry {
	r := mapper.NewRegistry()
	mapper.Register[PaymentReceived](r, "example.PaymentReceived")
	mapper.Register[ReceiptIssued](r, "example.ReceiptIssued")
	mapper.Register[Receipt](r, "example.Receipt") // names the type of the receipts' streams
	return r
}

// exampleStore returns an event store of the examples' events in memory.
func exampleStore() *eventstore.EventStore {
	m, err := mapper.New(exampleRegistry())
	if err != nil {
		panic(err)
	}
	return eventstore.New(m, memory.NewProcessRecorder())
}

func pay(ctx context.Context, app projection.Application, owner string, amount int64) int64 {
	p := &Payment{}
	aggregate.Trigger(p, PaymentReceived{Owner: owner, Amount: amount})
	ids, err := app.Store.Put(ctx, p.Collect())
	if err != nil {
		panic(err)
	}
	return ids[0]
}

// A projection keeps the total paid per owner in a MemoryStore. Wait gives read-your-writes: once it
// returns, the read model includes the payment.
func ExampleNewRunner() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	payments := projection.Application{
		Name:  "payments",
		Store: exampleStore(),
	}
	totals := projection.NewMemoryStore[string, int64]()

	r, err := projection.NewRunner("totals", payments, totals,
		func(ctx context.Context, tx *projection.MemoryTx[string, int64], e aggregate.Event) error {
			p := e.Data.(PaymentReceived)
			total, _ := tx.Get(p.Owner)
			tx.Put(p.Owner, total+p.Amount)
			return nil
		},
		projection.WithTopics("example.PaymentReceived"))
	if err != nil {
		panic(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	pay(ctx, payments, "ada", 30)
	pay(ctx, payments, "bob", 5)
	last := pay(ctx, payments, "ada", 12)
	if err := r.Wait(ctx, last); err != nil {
		panic(err)
	}
	model := totals.Snapshot()
	for _, owner := range slices.Sorted(maps.Keys(model)) {
		fmt.Println(owner, model[owner])
	}
	cancel()
	fmt.Println("stopped:", <-done)
	// Output:
	// ada 42
	// bob 5
	// stopped: <nil>
}

// A projection that writes a batch of events at once, and can be rebuilt: the reset function clears
// its read model in the transaction of the first batch whenever the runner starts from nothing, here
// after Rebuild.
func ExampleNewBatchRunner() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	payments := projection.Application{Name: "payments", Store: exampleStore()}
	counts := projection.NewMemoryStore[string, int]()
	countPayments := func(ctx context.Context, tx *projection.MemoryTx[string, int], events []aggregate.Event) error {
		n, _ := tx.Get("payments")
		tx.Put("payments", n+len(events))
		return nil
	}
	reset := projection.WithReset(func(ctx context.Context, tx *projection.MemoryTx[string, int]) error {
		tx.Clear()
		return nil
	})
	pay(ctx, payments, "ada", 30)
	last := pay(ctx, payments, "bob", 5)

	for run := 1; run <= 2; run++ {
		r, err := projection.NewBatchRunner("counts", payments, counts, countPayments, reset)
		if err != nil {
			panic(err)
		}
		if run == 2 {
			if err := r.Rebuild(ctx); err != nil {
				panic(err)
			}
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(runCtx) }()
		if err := r.Wait(ctx, last); err != nil {
			panic(err)
		}
		status, _ := r.Status(ctx)
		stop()
		<-done
		n, _ := counts.Get("payments")
		fmt.Printf("run %d: %d payments, lag %d\n", run, n, status.Lag)
	}
	// Output:
	// run 1: 2 payments, lag 0
	// run 2: 2 payments, lag 0
}

// A process application issues a receipt for every payment. The receipt's events and the tracking of
// the payment are saved in one InsertEvents call: a restarted process neither loses a receipt nor
// issues one twice.
func ExampleNewProcess() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	payments := projection.Application{
		Name:  "payments",
		Store: exampleStore(),
	}
	receipts := projection.Application{
		Name:  "receipts",
		Store: exampleStore(),
		Policy: func(ctx context.Context, p *projection.Processing, e aggregate.Event) error {
			paid := e.Data.(PaymentReceived)
			r := &Receipt{}
			r.ID = aggregate.NameID(uuid.NameSpaceOID, e.OriginatorID.String())
			aggregate.Trigger(r, ReceiptIssued{Payment: e.OriginatorID, Amount: paid.Amount})
			p.Collect(r)
			return nil
		},
	}
	pay(ctx, payments, "ada", 30)
	last := pay(ctx, payments, "bob", 5)

	for run := 1; run <= 2; run++ { // the second run finds nothing left to do
		r, err := projection.NewProcess(receipts, payments)
		if err != nil {
			panic(err)
		}
		done := make(chan error, 1)
		runCtx, stop := context.WithCancel(ctx)
		go func() { done <- r.Run(runCtx) }()
		if err := r.Wait(ctx, last); err != nil {
			panic(err)
		}
		stop()
		<-done
		n, _ := receipts.Store.Recorder().(es.ApplicationRecorder).MaxNotificationID(ctx)
		fmt.Printf("run %d: %d receipts\n", run, n)
	}
	byPayment, err := repository.New[Receipt](receipts.Store)
	if err != nil {
		panic(err)
	}
	for _, e := range mustLog(ctx, payments) {
		r, err := byPayment.Get(ctx, aggregate.NameID(uuid.NameSpaceOID, e.OriginatorID.String()))
		if err != nil {
			panic(err)
		}
		fmt.Println("receipt for", e.Data.(PaymentReceived).Owner, r.Amount)
	}
	// Output:
	// run 1: 2 receipts
	// run 2: 2 receipts
	// receipt for ada 30
	// receipt for bob 5
}

// A system runs the pipes between applications: here payments → receipts.
func ExampleSystem() {
	ctx, cancel := context.WithCancel(context.Background())
	payments := projection.Application{
		Name:  "payments",
		Store: exampleStore(),
	}
	receipts := projection.Application{
		Name:  "receipts",
		Store: exampleStore(),
		Policy: func(ctx context.Context, p *projection.Processing, e aggregate.Event) error {
			r := &Receipt{}
			aggregate.Trigger(r, ReceiptIssued{Payment: e.OriginatorID, Amount: e.Data.(PaymentReceived).Amount})
			p.Collect(r)
			return nil
		},
	}
	system := projection.NewSystem()
	if err := system.Add(payments, receipts); err != nil {
		panic(err)
	}
	if err := system.Follow("receipts", "payments"); err != nil {
		panic(err)
	}
	done := make(chan error, 1)
	go func() { done <- system.Run(ctx) }()

	last := pay(ctx, payments, "ada", 30)
	if err := system.Wait(ctx, "receipts", "payments", last); err != nil {
		panic(err)
	}
	for _, e := range mustLog(ctx, receipts) {
		fmt.Println("receipt of", e.Data.(ReceiptIssued).Amount)
	}
	cancel()
	fmt.Println("stopped:", <-done)
	// Output:
	// receipt of 30
	// stopped: <nil>
}

func mustLog(ctx context.Context, app projection.Application) []aggregate.Event {
	ns, err := app.Store.Recorder().(es.ApplicationRecorder).SelectNotifications(ctx, es.NotificationQuery{Limit: 1000})
	if err != nil {
		panic(err)
	}
	var out []aggregate.Event
	for _, n := range ns {
		e, err := app.Store.Mapper().Decode(n.StoredEvent)
		if err != nil {
			panic(err)
		}
		out = append(out, e)
	}
	return out
}
