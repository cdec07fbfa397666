package bank

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// Service is the application: commands on accounts, each loaded from and saved to the event store.
type Service struct {
	Accounts *repository.Repository[Account, *Account]
}

// NewService returns a service keeping events in events and snapshots (every snapshotEvery events) in
// snapshots.
func NewService(events, snapshots *eventstore.EventStore, snapshotEvery int) (*Service, error) {
	accounts, err := repository.New[Account](events, repository.WithSnapshots(snapshots, snapshotEvery), repository.WithCache(1000))
	if err != nil {
		return nil, err
	}
	return &Service{Accounts: accounts}, nil
}

// OpenAccount opens an account and returns its ID.
func (s *Service) OpenAccount(ctx context.Context, owner string) (uuid.UUID, error) {
	a := Open(owner)
	if err := s.Accounts.Save(ctx, a); err != nil {
		return uuid.Nil, err
	}
	return a.ID, nil
}

// Deposit adds amount to account id.
func (s *Service) Deposit(ctx context.Context, id uuid.UUID, amount int64) error {
	return s.update(ctx, func(accs ...*Account) error { return accs[0].Deposit(amount) }, id)
}

// Withdraw takes amount out of account id.
func (s *Service) Withdraw(ctx context.Context, id uuid.UUID, amount int64) error {
	return s.update(ctx, func(accs ...*Account) error { return accs[0].Withdraw(amount) }, id)
}

// Transfer moves amount from one account to another; both changes are recorded atomically.
func (s *Service) Transfer(ctx context.Context, from, to uuid.UUID, amount int64) error {
	return s.update(ctx, func(accs ...*Account) error { return accs[0].TransferTo(accs[1], amount) }, from, to)
}

// Balance returns the balance of account id.
func (s *Service) Balance(ctx context.Context, id uuid.UUID) (int64, error) {
	a, err := s.Accounts.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	return a.Balance, nil
}

// update loads the accounts, runs the command and saves them together. When another writer changed one
// of them in between (a version conflict), it reloads and runs the command again: the command decides on
// fresh state, so a retry cannot overdraw an account.
func (s *Service) update(ctx context.Context, command func(...*Account) error, ids ...uuid.UUID) error {
	const attempts = 10
	for attempt := 1; ; attempt++ {
		accs := make([]*Account, len(ids))
		for i, id := range ids {
			a, err := s.Accounts.Get(ctx, id)
			if err != nil {
				return err
			}
			accs[i] = a
		}
		if err := command(accs...); err != nil {
			return err
		}
		err := s.Accounts.Save(ctx, accs...)
		if err == nil || !errors.Is(err, es.ErrConflict) || attempt == attempts {
			if err != nil {
				return fmt.Errorf("bank: after %d attempts: %w", attempt, err)
			}
			return nil
		}
	}
}
