// Package bank is the domain of the example application: bank accounts as event-sourced aggregates.
package bank

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// Events of an account. They are plain structs; their topics are registered in Registry.
type (
	// AccountOpened starts an account's history.
	AccountOpened struct {
		Owner string `json:"owner"`
	}
	// MoneyDeposited adds money.
	MoneyDeposited struct {
		Amount int64 `json:"amount"`
	}
	// MoneyWithdrawn takes money out.
	MoneyWithdrawn struct {
		Amount int64 `json:"amount"`
	}
	// TransferSent moves money to another account; the matching TransferReceived is saved atomically.
	TransferSent struct {
		TransferID uuid.UUID `json:"transfer_id"`
		To         uuid.UUID `json:"to"`
		Amount     int64     `json:"amount"`
	}
	// TransferReceived is the receiving side of a transfer.
	TransferReceived struct {
		TransferID uuid.UUID `json:"transfer_id"`
		From       uuid.UUID `json:"from"`
		Amount     int64     `json:"amount"`
	}
)

// Errors of the account's commands. A failing command triggers no event, so nothing is recorded.
var (
	ErrInsufficientFunds = errors.New("bank: insufficient funds")
	ErrInvalidAmount     = errors.New("bank: amount must be positive")
	ErrSameAccount       = errors.New("bank: cannot transfer to the same account")
)

// Money formats an amount in cents as it is shown to people: 250000 is "2,500.00".
func Money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	units := strconv.FormatInt(cents/100, 10)
	for i := len(units) - 3; i > 0; i -= 3 {
		units = units[:i] + "," + units[i:]
	}
	return fmt.Sprintf("%s%s.%02d", sign, units, cents%100)
}

// Account is a bank account. Its balance is in cents.
type Account struct {
	aggregate.Base
	Owner   string `json:"owner"`
	Balance int64  `json:"balance"`
}

// Open returns a new account owned by owner.
func Open(owner string) *Account {
	a := &Account{}
	aggregate.Trigger(a, AccountOpened{Owner: owner})
	return a
}

// Deposit adds amount to the balance.
func (a *Account) Deposit(amount int64) error {
	if amount <= 0 {
		return fmt.Errorf("deposit %s: %w", Money(amount), ErrInvalidAmount)
	}
	aggregate.Trigger(a, MoneyDeposited{Amount: amount})
	return nil
}

// Withdraw takes amount out, if the balance covers it.
func (a *Account) Withdraw(amount int64) error {
	if err := a.canPay(amount); err != nil {
		return fmt.Errorf("withdraw %s: %w", Money(amount), err)
	}
	aggregate.Trigger(a, MoneyWithdrawn{Amount: amount})
	return nil
}

// TransferTo moves amount from a to b. Both accounts change; save them together.
func (a *Account) TransferTo(b *Account, amount int64) error {
	if a.ID == b.ID {
		return ErrSameAccount
	}
	if err := a.canPay(amount); err != nil {
		return fmt.Errorf("transfer %s: %w", Money(amount), err)
	}
	id := aggregate.NewID()
	aggregate.Trigger(a, TransferSent{TransferID: id, To: b.ID, Amount: amount})
	aggregate.Trigger(b, TransferReceived{TransferID: id, From: a.ID, Amount: amount})
	return nil
}

func (a *Account) canPay(amount int64) error {
	if amount <= 0 {
		return ErrInvalidAmount
	}
	if amount > a.Balance {
		return fmt.Errorf("%w: balance %s", ErrInsufficientFunds, Money(a.Balance))
	}
	return nil
}

// Apply changes the state for one event.
func (a *Account) Apply(event any) {
	switch e := event.(type) {
	case AccountOpened:
		a.Owner = e.Owner
	case MoneyDeposited:
		a.Balance += e.Amount
	case MoneyWithdrawn:
		a.Balance -= e.Amount
	case TransferSent:
		a.Balance -= e.Amount
	case TransferReceived:
		a.Balance += e.Amount
	}
}

// Registry registers the account's events, and the account itself (the type its streams name, and its
// snapshots' topic), under stable topics.
func Registry() *mapper.Registry {
	r := mapper.NewRegistry()
	mapper.Register[AccountOpened](r, "bank.AccountOpened")
	mapper.Register[MoneyDeposited](r, "bank.MoneyDeposited")
	mapper.Register[MoneyWithdrawn](r, "bank.MoneyWithdrawn")
	mapper.Register[TransferSent](r, "bank.TransferSent")
	mapper.Register[TransferReceived](r, "bank.TransferReceived")
	mapper.Register[Account](r, "bank.Account")
	return r
}
