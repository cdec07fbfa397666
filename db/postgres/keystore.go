package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/dbsqlc"
	"github.com/eventsourcing-go/eventsourcing/internal/keystore"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// sqlstateUndefinedTable is PostgreSQL's error for a table that does not exist.
const sqlstateUndefinedTable = "42P01"

// KeyStore is a [datakey.Store] in the data_keys table of the application's schema: the data keys of
// its subjects, wrapped by the key ring, beside the events they encrypt. It is safe for concurrent use
// and holds nothing but db, so it needs no Close.
//
// A data key is written once per subject, when the subject's first event is encoded, in a statement of
// its own before the event's append. A key whose event then fails to be recorded stays, unused and
// harmless.
type KeyStore struct{ s *keystore.Store }

var _ datakey.Store = (*KeyStore)(nil)

// NewKeyStore returns the key store of db, in the schema of WithSchema (the only option that applies),
// which must have been migrated with schema.Migrate(ctx, db, schema.Postgres, …).
func NewKeyStore(ctx context.Context, db *sql.DB, opts ...Option) (*KeyStore, error) {
	const op = "new key store"
	if db == nil {
		return nil, fmt.Errorf("postgres: %s: nil *sql.DB", op)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	q := dbsqlc.New(newQualifier(db, cfg.schema))
	s := keystore.New(keystore.Dialect{
		Name:    "postgres",
		OpError: opError,
		Get: func(ctx context.Context, subject string) (datakey.Entry, error) {
			r, err := q.GetDataKey(ctx, subject)
			return keystore.Entry(subject, r.KeyID, r.WrappedKey, r.ForgottenAt), err
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
				ForgottenAt: sql.NullTime{Time: at.UTC().Truncate(time.Microsecond), Valid: true},
			})
		},
		List: func(ctx context.Context, after string, limit int) ([]datakey.Entry, error) {
			rows, err := q.ListDataKeys(ctx, dbsqlc.ListDataKeysParams{After: after, Lim: int32(min(limit, math.MaxInt32))})
			entries := make([]datakey.Entry, len(rows))
			for i, r := range rows {
				entries[i] = keystore.Entry(r.Subject, r.KeyID, r.WrappedKey, r.ForgottenAt)
			}
			return entries, err
		},
		Rewrap: func(ctx context.Context, keys []datakey.Rewrapped) (int, string, error) {
			subjects, previous, ids, wrapped := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys)), make([][]byte, len(keys))
			for i, k := range keys {
				subjects[i], previous[i], ids[i], wrapped[i] = k.Subject, k.PreviousKeyID, k.KeyID, k.Wrapped
			}
			n, err := q.RewrapDataKeys(ctx, dbsqlc.RewrapDataKeysParams{Subjects: subjects, PreviousKeyIds: previous, KeyIds: ids, WrappedKeys: wrapped})
			return int(n), "", err
		},
	})
	if _, err := q.ListDataKeys(ctx, dbsqlc.ListDataKeysParams{Lim: 0}); err != nil {
		if sqlState(err) == sqlstateUndefinedTable {
			return nil, fmt.Errorf("postgres: %s: %w: no data_keys table; run schema.Migrate first: %w", op, schema.ErrNotMigrated, err)
		}
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

// Rewrap implements datakey.Store: one statement for the batch, a compare-and-set per key.
func (s *KeyStore) Rewrap(ctx context.Context, keys []datakey.Rewrapped) (int, error) {
	return s.s.Rewrap(ctx, keys)
}
