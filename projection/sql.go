package projection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	es "github.com/eventsourcing-go/eventsourcing"
)

// SQLTx is what a projection on SQL writes its read model with: the transaction of a SQLTracker. It has
// the methods of the DBTX interface that sqlc generates, so a projection can use sqlc-generated queries
// (dbsqlc.New(tx)). *sql.Tx has them, and so has the *sql.Conn of a recorder that controls its
// transactions itself (as the SQLite recorder does, to commit many writers' batches in one transaction,
// each in a savepoint). The projection must not end the transaction: no COMMIT, ROLLBACK or RELEASE.
//
// It is an alias of an interface type literal, so that a recorder can declare ProcessTracked with the
// same literal (or its own alias of it) without importing this package.
type SQLTx = interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// SQLTracker is what a SQL recorder provides for projections whose read model lives in its database:
// transactions that record a tracking record with whatever the projection writes. The SQLite and
// PostgreSQL process recorders implement it; projectiontest.TestSQLTracker checks an implementation.
type SQLTracker interface {
	// MaxTrackingID returns the mark of consumer for upstream, 0 when nothing is tracked (as in
	// eventsourcing.TrackingRecorder).
	MaxTrackingID(ctx context.Context, consumer, upstream string) (int64, error)
	// DeleteTracking removes the mark of consumer for upstream (as in eventsourcing.TrackingRecorder).
	DeleteTracking(ctx context.Context, consumer, upstream string) error
	// ProcessTracked runs fn in a write transaction (on SQLite: BEGIN IMMEDIATE, or a savepoint of one)
	// that also records t, a compare-and-set on t.Prior, and commits both, or neither:
	//   - the mark of t.Consumer for t.Upstream is not t.Prior (or t.NotificationID is not above it):
	//     an error wrapping eventsourcing.ErrConflict, and fn's writes (if fn ran) are undone;
	//   - fn fails: its error is returned (wrapped or not), and its writes are undone;
	//   - fn panics: its writes are undone, and the panic reaches the caller (re-panicked in the
	//     caller's goroutine) or becomes the error returned; never a commit;
	//   - ctx ends before the commit: ctx's error, nothing committed.
	// fn's reads see the database as of the transaction, with its own writes.
	ProcessTracked(ctx context.Context, t es.Tracking, fn func(ctx context.Context, tx SQLTx) error) error
}

// SQL returns the TrackingStore of a SQL recorder: the projection writes its tables in the transaction
// in which the recorder records the tracking, in the recorder's database. Keep the read model's tables in
// the same database as the tracking table, of course; the projection's writes are otherwise not atomic
// with its position.
func SQL(t SQLTracker) TrackingStore[SQLTx] { return sqlStore{t} }

type sqlStore struct{ t SQLTracker }

func (s sqlStore) MaxTrackingID(ctx context.Context, consumer, upstream string) (int64, error) {
	return s.t.MaxTrackingID(ctx, consumer, upstream)
}

func (s sqlStore) DeleteTracking(ctx context.Context, consumer, upstream string) error {
	return s.t.DeleteTracking(ctx, consumer, upstream)
}

func (s sqlStore) Process(ctx context.Context, t es.Tracking, fn func(ctx context.Context, tx SQLTx) error) error {
	return s.t.ProcessTracked(ctx, t, func(ctx context.Context, tx SQLTx) error {
		if tx == nil {
			return errors.New("projection: SQL tracker gave a nil transaction")
		}
		if err := fn(ctx, tx); err != nil {
			if errors.Is(err, sql.ErrTxDone) {
				return fmt.Errorf("projection: the projection must not commit or roll back the transaction: %w", err)
			}
			return err
		}
		return nil
	})
}
