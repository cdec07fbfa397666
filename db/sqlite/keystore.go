package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/internal/dbsqlc"
	"github.com/eventsourcing-go/eventsourcing/internal/keystore"
)

// KeyStore is a [datakey.Store] in the data_keys table of the application's database: the data keys
// of its subjects, wrapped by the key ring, beside the events they encrypt. It is safe for concurrent
// use and holds nothing but db, so it needs no Close.
//
// It writes through db's pool, not through a recorder's writer connection: a data key is written once
// per subject, when the subject's first event is encoded, in a transaction of its own before the
// event's. A key whose event then fails to be recorded stays, unused and harmless.
type KeyStore struct{ s *keystore.Store }

var _ datakey.Store = (*KeyStore)(nil)

// NewKeyStore returns the key store of db, which must have been migrated with
// schema.Migrate(ctx, db, schema.SQLite). No option applies to it; it takes them so that one list of
// options serves Open, the recorders and the key store.
func NewKeyStore(ctx context.Context, db *sql.DB, opts ...Option) (*KeyStore, error) {
	const op = "new key store"
	if db == nil {
		return nil, fmt.Errorf("sqlite: %s: nil *sql.DB", op)
	}
	if _, err := newConfig(opts); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	q := dbsqlc.New(db)
	s := keystore.New(keystore.Dialect{
		Name:    "sqlite",
		OpError: opError,
		Get: func(ctx context.Context, subject string) (datakey.Entry, error) {
			r, err := q.GetDataKey(ctx, subject)
			return keystore.Entry(subject, r.KeyID, r.WrappedKey, forgottenAt(r.ForgottenAt)), err
		},
		Insert: func(ctx context.Context, e datakey.Entry) error {
			return q.InsertDataKey(ctx, dbsqlc.InsertDataKeyParams{
				Subject:    e.Subject,
				KeyID:      sql.NullString{String: e.KeyID, Valid: true},
				WrappedKey: e.Wrapped,
			})
		},
		Forget: func(ctx context.Context, subject string, at time.Time) error {
			return q.ForgetDataKey(ctx, dbsqlc.ForgetDataKeyParams{
				Subject:     subject,
				ForgottenAt: sql.NullInt64{Int64: at.UnixMicro(), Valid: true},
			})
		},
		List: func(ctx context.Context, after string, limit int) ([]datakey.Entry, error) {
			rows, err := q.ListDataKeys(ctx, dbsqlc.ListDataKeysParams{After: after, Lim: int64(limit)})
			entries := make([]datakey.Entry, len(rows))
			for i, r := range rows {
				entries[i] = keystore.Entry(r.Subject, r.KeyID, r.WrappedKey, forgottenAt(r.ForgottenAt))
			}
			return entries, err
		},
		Rewrap: func(ctx context.Context, keys []datakey.Rewrapped) (int, string, error) {
			return rewrapDataKeys(ctx, db, q, keys)
		},
	})
	if _, err := q.ListDataKeys(ctx, dbsqlc.ListDataKeysParams{Lim: 0}); err != nil {
		return nil, s.Error(op, "", err)
	}
	return &KeyStore{s}, nil
}

// Get implements datakey.Store.
func (s *KeyStore) Get(ctx context.Context, subject string) (datakey.Entry, error) {
	return s.s.Get(ctx, subject)
}

// Add implements datakey.Store.
func (s *KeyStore) Add(ctx context.Context, e datakey.Entry) (datakey.Entry, error) {
	return s.s.Add(ctx, e)
}

// Forget implements datakey.Store.
func (s *KeyStore) Forget(ctx context.Context, subject string) error {
	return s.s.Forget(ctx, subject)
}

// List implements datakey.Store.
func (s *KeyStore) List(ctx context.Context, after string, limit int) ([]datakey.Entry, error) {
	return s.s.List(ctx, after, limit)
}

// Rewrap implements datakey.Store: one transaction for the batch, one compare-and-set UPDATE per key.
func (s *KeyStore) Rewrap(ctx context.Context, keys []datakey.Rewrapped) (int, error) {
	return s.s.Rewrap(ctx, keys)
}

// rewrapDataKeys runs KeyStore.Rewrap's transaction; failed is the subject of the key whose UPDATE
// failed.
func rewrapDataKeys(ctx context.Context, db *sql.DB, q *dbsqlc.Queries, keys []datakey.Rewrapped) (n int, failed string, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, "", err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	qtx := q.WithTx(tx)
	for _, k := range keys {
		m, err := qtx.RewrapDataKey(ctx, dbsqlc.RewrapDataKeyParams{
			KeyID:         sql.NullString{String: k.KeyID, Valid: true},
			WrappedKey:    k.Wrapped,
			Subject:       k.Subject,
			PreviousKeyID: sql.NullString{String: k.PreviousKeyID, Valid: true},
		})
		if err != nil {
			return 0, k.Subject, err
		}
		n += int(m)
	}
	if err := tx.Commit(); err != nil {
		return 0, "", err
	}
	return n, "", nil
}

// forgottenAt is the time of a forgotten_at column, which SQLite keeps in microseconds since the epoch.
func forgottenAt(us sql.NullInt64) sql.NullTime {
	if !us.Valid {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: time.UnixMicro(us.Int64), Valid: true}
}
