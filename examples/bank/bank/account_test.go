package bank_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/aggregate/aggregatetest"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/examples/bank/bank"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
)

func TestWithdraw(t *testing.T) {
	acc := aggregatetest.Given[bank.Account](t, bank.AccountOpened{Owner: "ada"}, bank.MoneyDeposited{Amount: 100})
	aggregatetest.Then(t, acc, acc.Withdraw(30), bank.MoneyWithdrawn{Amount: 30})
	aggregatetest.ThenError(t, acc, acc.Withdraw(71), bank.ErrInsufficientFunds)
	aggregatetest.ThenError(t, acc, acc.Deposit(-1), bank.ErrInvalidAmount)
}

func TestServiceTransferIsAtomic(t *testing.T) {
	ctx := context.Background()
	m := must(mapper.New(bank.Registry()))
	svc := must(bank.NewService(eventstore.New(m, memory.NewProcessRecorder()), eventstore.New(m, memory.NewAggregateRecorder()), 10))
	a, _ := svc.OpenAccount(ctx, "ada")
	b, _ := svc.OpenAccount(ctx, "bob")
	if err := svc.Deposit(ctx, a, 100); err != nil {
		t.Fatal(err)
	}
	if err := svc.Transfer(ctx, a, b, 60); err != nil {
		t.Fatal(err)
	}
	if err := svc.Transfer(ctx, a, b, 60); !errors.Is(err, bank.ErrInsufficientFunds) {
		t.Fatalf("got %v, want ErrInsufficientFunds", err)
	}
	ba, _ := svc.Balance(ctx, a)
	bb, _ := svc.Balance(ctx, b)
	if ba != 40 || bb != 60 {
		t.Fatalf("balances %d %d", ba, bb)
	}
}

// must returns v and panics on err: for constructors whose arguments the test controls.
func must[V any](v V, err error) V {
	if err != nil {
		panic(err)
	}
	return v
}

func TestMoney(t *testing.T) {
	for cents, want := range map[int64]string{0: "0.00", 5: "0.05", 5000: "50.00", 250000: "2,500.00", 123456789: "1,234,567.89", -50: "-0.50", -100000: "-1,000.00"} {
		if got := bank.Money(cents); got != want {
			t.Errorf("Money(%d) = %q, want %q", cents, got, want)
		}
	}
}
