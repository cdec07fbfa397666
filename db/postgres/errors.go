package postgres

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	es "github.com/eventsourcing-go/eventsourcing"
)

// ErrOrderingMismatch is wrapped by NewProcessRecorder's error when the schema records another ordering
// than the one asked for with WithOrdering.
var ErrOrderingMismatch = errors.New("postgres: ordering differs from the schema's")

// SQLSTATEs raised by events_append (see the migration).
const (
	sqlstateUniqueViolation  = "23505"
	sqlstateTrackingConflict = "ES001"
)

// opError names the operation and wraps the cause; for uniqueness violations it wraps es.ErrConflict
// too, with the server's detail (which key clashed).
func opError(op string, err error) error {
	switch sqlState(err) {
	case sqlstateUniqueViolation, sqlstateTrackingConflict:
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Detail != "" {
			return fmt.Errorf("postgres: %s: %w: %s: %w", op, es.ErrConflict, strings.TrimSuffix(pgErr.Detail, "."), err)
		}
		return fmt.Errorf("postgres: %s: %w: %w", op, es.ErrConflict, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// sqlState returns the SQLSTATE of a server error, through any driver whose error type reports it
// (pgx's *pgconn.PgError does).
func sqlState(err error) string {
	var e interface{ SQLState() string }
	if errors.As(err, &e) {
		return e.SQLState()
	}
	return ""
}
