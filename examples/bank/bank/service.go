package bank

import (
	"context"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// Service is the application: commands on accounts, each loaded from and saved to the event store.
type Service struct {
	Accounts *repository.Repository[Account, *Account]
}

// NewService returns a service keeping events in events and snapshots (every snapshotEvery events) in
// snapshots. Its repository of accounts also takes opts (a tracer, say).
func NewService(events, snapshots *eventstore.EventStore, snapshotEvery int, opts ...repository.Option) (*Service, error) {
	opts = append([]repository.Option{repository.WithSnapshots(snapshots, snapshotEvery), repository.WithCache(1000)}, opts...)
	accounts, err := repository.New[Account](events, opts...)
	if err != nil {
		return nil, err
	}
	return &Service{Accounts: accounts}, nil
}

// OpenAccount opens an account and returns its ID.
func (s *Service) OpenAccount(ctx context.Context, owner string) (uuid.UUID, error) {
	a := Open(owner)
	if _, err := s.Accounts.Save(ctx, a); err != nil {
		return uuid.Nil, err
	}
	return a.ID, nil
}

// Each command below loads the accounts, runs the account's command and saves them together. When
// another writer changed one of them in between (a version conflict), the repository loads them again
// and runs the command again: the command decides on fresh state, so a retry cannot overdraw an
// account.

// Deposit adds amount to account id.
func (s *Service) Deposit(ctx context.Context, id uuid.UUID, amount int64) error {
	_, err := s.Accounts.Update(ctx, id, func(a *Account) error { return a.Deposit(amount) })
	return err
}

// Withdraw takes amount out of account id.
func (s *Service) Withdraw(ctx context.Context, id uuid.UUID, amount int64) error {
	_, err := s.Accounts.Update(ctx, id, func(a *Account) error { return a.Withdraw(amount) })
	return err
}

// Transfer moves amount from one account to another; both changes are recorded atomically.
func (s *Service) Transfer(ctx context.Context, from, to uuid.UUID, amount int64) error {
	if from == to {
		return ErrSameAccount
	}
	_, err := s.Accounts.UpdateAll(ctx, []uuid.UUID{from, to}, func(accs []*Account) error {
		return accs[0].TransferTo(accs[1], amount)
	})
	return err
}

// Balance returns the balance of account id.
func (s *Service) Balance(ctx context.Context, id uuid.UUID) (int64, error) {
	a, err := s.Accounts.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	return a.Balance, nil
}
