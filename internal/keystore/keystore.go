// Package keystore is the data key store of the SQL dialects: what a datakey.Store does over a
// data_keys table, with the statements, which differ by dialect, given as functions.
package keystore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/eventsourcing-go/eventsourcing/datakey"
)

// Dialect is what a dialect gives the store: the name its errors start with, how it names an
// operation's error, and its statements on the data_keys table. The statements return their driver's
// errors as they are (sql.ErrNoRows for a missing row); the store names them.
type Dialect struct {
	Name    string                           // "postgres" or "sqlite"
	OpError func(op string, err error) error // names op and wraps err, the dialect's way

	Get func(ctx context.Context, subject string) (datakey.Entry, error)
	// Insert does nothing when the subject has an entry.
	Insert func(ctx context.Context, e datakey.Entry) error
	Forget func(ctx context.Context, subject string, at time.Time) error
	// List reads up to limit entries (limit >= 0) with subjects after after, in subject order.
	List func(ctx context.Context, after string, limit int) ([]datakey.Entry, error)
	// Rewrap sets each key whose key ID is still its previous one, and returns how many it set. When a
	// statement of one key fails, failed is that key's subject.
	Rewrap func(ctx context.Context, keys []datakey.Rewrapped) (n int, failed string, err error)
}

// Store is a datakey.Store over a dialect's statements. It is safe for concurrent use as far as the
// statements are.
type Store struct{ d Dialect }

// New returns the store of d.
func New(d Dialect) *Store { return &Store{d: d} }

// Get implements datakey.Store.
func (s *Store) Get(ctx context.Context, subject string) (datakey.Entry, error) {
	e, err := s.d.Get(ctx, subject)
	if err != nil {
		return datakey.Entry{}, s.Error("get data key", subject, err)
	}
	return e, nil
}

// Add implements datakey.Store: an insert that does nothing when the subject has an entry, then a read
// of the entry.
func (s *Store) Add(ctx context.Context, e datakey.Entry) (datakey.Entry, error) {
	if err := s.d.Insert(ctx, e); err != nil {
		return datakey.Entry{}, s.Error("add data key", e.Subject, err)
	}
	return s.Get(ctx, e.Subject)
}

// Forget implements datakey.Store.
func (s *Store) Forget(ctx context.Context, subject string) error {
	if err := s.d.Forget(ctx, subject, time.Now()); err != nil {
		return s.Error("forget data key", subject, err)
	}
	return nil
}

// List implements datakey.Store.
func (s *Store) List(ctx context.Context, after string, limit int) ([]datakey.Entry, error) {
	if limit < 0 {
		return nil, fmt.Errorf("%s: list data keys: limit %d: must not be negative", s.d.Name, limit)
	}
	entries, err := s.d.List(ctx, after, limit)
	if err != nil {
		return nil, s.Error("list data keys", "", err)
	}
	return entries, nil
}

// Rewrap implements datakey.Store.
func (s *Store) Rewrap(ctx context.Context, keys []datakey.Rewrapped) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	n, failed, err := s.d.Rewrap(ctx, keys)
	if err != nil {
		return 0, s.Error("rewrap data keys", failed, err)
	}
	return n, nil
}

// Error names the operation and the subject (none when it is ""), and wraps datakey.ErrNoKey for a
// missing row; other errors are the dialect's OpError.
func (s *Store) Error(op, subject string, err error) error {
	if subject != "" {
		op = fmt.Sprintf("%s of subject %q", op, subject)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %s: %w", s.d.Name, op, datakey.ErrNoKey)
	}
	return s.d.OpError(op, err)
}

// Entry is the entry of a row of data_keys. A forgotten entry has no wrapped key.
func Entry(subject string, keyID sql.NullString, wrapped []byte, forgottenAt sql.NullTime) datakey.Entry {
	e := datakey.Entry{Subject: subject, KeyID: keyID.String, Wrapped: wrapped}
	if forgottenAt.Valid {
		e.ForgottenAt = forgottenAt.Time.UTC()
		e.Wrapped = nil
	}
	return e
}
