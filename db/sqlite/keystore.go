package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/internal/dbsqlc"
)

// KeyStore is a [datakey.Store] in the data_keys table of the application's database: the data keys
// of its subjects, wrapped by the key ring, beside the events they encrypt. It is safe for concurrent
// use and holds nothing but db, so it needs no Close.
//
// It writes through db's pool, not through a recorder's writer connection: a data key is written once
// per subject, when the subject's first event is encoded, in a transaction of its own before the
// event's. A key whose event then fails to be recorded stays, unused and harmless.
type KeyStore struct {
	db *sql.DB
	q  *dbsqlc.Queries
}

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
	s := &KeyStore{db: db, q: dbsqlc.New(db)}
	if _, err := s.q.ListDataKeys(ctx, dbsqlc.ListDataKeysParams{Lim: 0}); err != nil {
		return nil, keyStoreError(op, "", err)
	}
	return s, nil
}

// Get implements datakey.Store.
func (s *KeyStore) Get(ctx context.Context, subject string) (datakey.Entry, error) {
	row, err := s.q.GetDataKey(ctx, subject)
	if err != nil {
		return datakey.Entry{}, keyStoreError("get data key", subject, err)
	}
	return entryOf(dbsqlc.DataKey{Subject: subject, KeyID: row.KeyID, WrappedKey: row.WrappedKey, ForgottenAt: row.ForgottenAt}), nil
}

// Add implements datakey.Store: an insert that does nothing when the subject has an entry, then a read
// of the entry.
func (s *KeyStore) Add(ctx context.Context, e datakey.Entry) (datakey.Entry, error) {
	err := s.q.InsertDataKey(ctx, dbsqlc.InsertDataKeyParams{
		Subject:    e.Subject,
		KeyID:      sql.NullString{String: e.KeyID, Valid: true},
		WrappedKey: e.Wrapped,
	})
	if err != nil {
		return datakey.Entry{}, keyStoreError("add data key", e.Subject, err)
	}
	return s.Get(ctx, e.Subject)
}

// Forget implements datakey.Store.
func (s *KeyStore) Forget(ctx context.Context, subject string) error {
	err := s.q.ForgetDataKey(ctx, dbsqlc.ForgetDataKeyParams{
		Subject:     subject,
		ForgottenAt: sql.NullInt64{Int64: time.Now().UnixMicro(), Valid: true},
	})
	if err != nil {
		return keyStoreError("forget data key", subject, err)
	}
	return nil
}

// List implements datakey.Store.
func (s *KeyStore) List(ctx context.Context, after string, limit int) ([]datakey.Entry, error) {
	if limit < 0 {
		return nil, fmt.Errorf("sqlite: list data keys: limit %d: must not be negative", limit)
	}
	rows, err := s.q.ListDataKeys(ctx, dbsqlc.ListDataKeysParams{After: after, Lim: int64(limit)})
	if err != nil {
		return nil, keyStoreError("list data keys", "", err)
	}
	entries := make([]datakey.Entry, len(rows))
	for i, r := range rows {
		entries[i] = entryOf(r)
	}
	return entries, nil
}

// Rewrap implements datakey.Store: one transaction for the batch, one compare-and-set UPDATE per key.
func (s *KeyStore) Rewrap(ctx context.Context, keys []datakey.Rewrapped) (n int, err error) {
	const op = "rewrap data keys"
	if len(keys) == 0 {
		return 0, nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, keyStoreError(op, "", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	q := s.q.WithTx(tx)
	for _, k := range keys {
		m, err := q.RewrapDataKey(ctx, dbsqlc.RewrapDataKeyParams{
			KeyID:         sql.NullString{String: k.KeyID, Valid: true},
			WrappedKey:    k.Wrapped,
			Subject:       k.Subject,
			PreviousKeyID: sql.NullString{String: k.PreviousKeyID, Valid: true},
		})
		if err != nil {
			return 0, keyStoreError(op, k.Subject, err)
		}
		n += int(m)
	}
	if err := tx.Commit(); err != nil {
		return 0, keyStoreError(op, "", err)
	}
	return n, nil
}

// entryOf turns a row of data_keys into an entry.
func entryOf(r dbsqlc.DataKey) datakey.Entry {
	e := datakey.Entry{Subject: r.Subject, KeyID: r.KeyID.String, Wrapped: r.WrappedKey}
	if r.ForgottenAt.Valid {
		e.ForgottenAt = time.UnixMicro(r.ForgottenAt.Int64).UTC()
		e.Wrapped = nil
	}
	return e
}

// keyStoreError names the operation and the subject, and wraps datakey.ErrNoKey for a missing row and
// schema.ErrNotMigrated for a missing table.
func keyStoreError(op, subject string, err error) error {
	if subject != "" {
		op = fmt.Sprintf("%s of subject %q", op, subject)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", op, datakey.ErrNoKey)
	}
	return opError(op, err)
}
