package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/dbsqlc"
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
type KeyStore struct {
	db *sql.DB
	q  *dbsqlc.Queries
}

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
	s := &KeyStore{db: db, q: dbsqlc.New(newQualifier(db, cfg.schema))}
	if _, err := s.q.ListDataKeys(ctx, dbsqlc.ListDataKeysParams{Lim: 0}); err != nil {
		if sqlState(err) == sqlstateUndefinedTable {
			return nil, fmt.Errorf("postgres: %s: %w: no data_keys table; run schema.Migrate first: %w", op, schema.ErrNotMigrated, err)
		}
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
		ForgottenAt: sql.NullTime{Time: time.Now().UTC().Truncate(time.Microsecond), Valid: true},
	})
	if err != nil {
		return keyStoreError("forget data key", subject, err)
	}
	return nil
}

// List implements datakey.Store.
func (s *KeyStore) List(ctx context.Context, after string, limit int) ([]datakey.Entry, error) {
	if limit < 0 {
		return nil, fmt.Errorf("postgres: list data keys: limit %d: must not be negative", limit)
	}
	rows, err := s.q.ListDataKeys(ctx, dbsqlc.ListDataKeysParams{After: after, Lim: int32(min(limit, math.MaxInt32))})
	if err != nil {
		return nil, keyStoreError("list data keys", "", err)
	}
	entries := make([]datakey.Entry, len(rows))
	for i, r := range rows {
		entries[i] = entryOf(r)
	}
	return entries, nil
}

// Rewrap implements datakey.Store: one statement for the batch, a compare-and-set per key.
func (s *KeyStore) Rewrap(ctx context.Context, keys []datakey.Rewrapped) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	subjects, previous, ids, wrapped := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys)), make([][]byte, len(keys))
	for i, k := range keys {
		subjects[i], previous[i], ids[i], wrapped[i] = k.Subject, k.PreviousKeyID, k.KeyID, k.Wrapped
	}
	n, err := s.q.RewrapDataKeys(ctx, dbsqlc.RewrapDataKeysParams{Subjects: subjects, PreviousKeyIds: previous, KeyIds: ids, WrappedKeys: wrapped})
	if err != nil {
		return 0, keyStoreError("rewrap data keys", "", err)
	}
	return int(n), nil
}

// entryOf turns a row of data_keys into an entry.
func entryOf(r dbsqlc.DataKey) datakey.Entry {
	e := datakey.Entry{Subject: r.Subject, KeyID: r.KeyID.String, Wrapped: r.WrappedKey}
	if r.ForgottenAt.Valid {
		e.ForgottenAt = r.ForgottenAt.Time.UTC()
		e.Wrapped = nil
	}
	return e
}

// keyStoreError names the operation and the subject, and wraps datakey.ErrNoKey for a missing row.
func keyStoreError(op, subject string, err error) error {
	if subject != "" {
		op = fmt.Sprintf("%s of subject %q", op, subject)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", op, datakey.ErrNoKey)
	}
	return opError(op, err)
}
