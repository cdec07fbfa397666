package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/dbsqlc"
)

// Tx is what ProcessTracked's function writes through: the methods of *sql.Tx that sqlc's generated
// code (and most hand-written code) uses. It is an alias of an interface literal, so that functions
// written against projection.SQLTx, or any identical alias, fit.
type Tx = interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ProcessTracked records t and runs fn in one transaction, so that a projection's read-model changes
// and the position it has reached commit together or not at all (see package projection). If t is not
// above the application's mark, it fails with an error wrapping [eventsourcing.ErrConflict] before fn
// runs. If fn fails or panics, or ctx ends before the commit, the transaction is rolled back.
//
// fn gets the *sql.Tx itself. Table names in its SQL resolve through the connection's search_path, not
// through the recorder's schema: qualify them, or open the *sql.DB with a search_path. The tracking
// record gives the transaction an xid; with OrderingXID, readers of the notification logs in the
// cluster wait for it while it runs, so keep fn short.
func (r *ProcessRecorder) ProcessTracked(ctx context.Context, t eventsourcing.Tracking, fn func(ctx context.Context, tx Tx) error) (err error) {
	const op = "process tracked"
	if fn == nil {
		return fmt.Errorf("postgres: %s: nil function", op)
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("postgres: %s: begin: %w", op, err)
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()
	q := dbsqlc.New(r.qualifier.inTx(tx))
	if _, err := r.append(ctx, q, noEvents, &t); err != nil {
		return wrap(op, err)
	}
	if err := runTracked(ctx, tx, fn); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("postgres: %s: commit: %w", op, err)
	}
	committed = true
	return nil
}

func runTracked(ctx context.Context, tx *sql.Tx, fn func(ctx context.Context, tx Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("tracked function panicked: %v", p)
		}
	}()
	if err := fn(ctx, tx); err != nil {
		return fmt.Errorf("tracked function: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tracked function: %w", err)
	}
	return nil
}
