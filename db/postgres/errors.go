package postgres

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	es "github.com/eventsourcing-go/eventsourcing"
)

// ErrOrderingMismatch is wrapped by NewProcessRecorder's error when the schema records another ordering
// than the one asked for with WithOrdering.
var ErrOrderingMismatch = errors.New("postgres: ordering differs from the schema's")

// ErrReadOnly is wrapped by the errors of the writing methods of a recorder made WithReadOnly.
var ErrReadOnly = errors.New("postgres: read-only recorder")

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
		if detail := serverDetail(err); detail != "" {
			return fmt.Errorf("postgres: %s: %w: %s: %w", op, es.ErrConflict, strings.TrimSuffix(detail, "."), err)
		}
		return fmt.Errorf("postgres: %s: %w: %w", op, es.ErrConflict, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// serverError is what the error types of PostgreSQL drivers have in common: pgx's *pgconn.PgError
// and lib/pq's *pq.Error both report the SQLSTATE through this method, so errors are classified
// without importing any driver's error type.
type serverError interface{ SQLState() string }

// sqlState returns the SQLSTATE of the server error in err's chain, "" when there is none.
func sqlState(err error) string {
	var e serverError
	if errors.As(err, &e) {
		return e.SQLState()
	}
	return ""
}

// serverDetail returns the DETAIL of the server error in err's chain (for a unique violation, the key
// that clashed), "" when there is none. No method reports it, but every PostgreSQL driver's error
// type keeps it in a string field named Detail, as the protocol names it (pgx's *pgconn.PgError,
// lib/pq's *pq.Error): it is read by that name.
func serverDetail(err error) string {
	var e serverError
	if !errors.As(err, &e) {
		return ""
	}
	v := reflect.Indirect(reflect.ValueOf(e))
	if v.Kind() != reflect.Struct {
		return ""
	}
	if f := v.FieldByName("Detail"); f.IsValid() && f.Kind() == reflect.String {
		return f.String()
	}
	return ""
}
