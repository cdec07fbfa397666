package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	es "github.com/eventsourcing-go/eventsourcing"
)

// otherDriverError has the shape of the server errors of PostgreSQL drivers other than pgx (lib/pq's
// *pq.Error): a SQLState method and a Detail field, and no relation to pgconn.
type otherDriverError struct {
	Code    string
	Message string
	Detail  string
}

func (e *otherDriverError) Error() string    { return "other: " + e.Message + " (" + e.Code + ")" }
func (e *otherDriverError) SQLState() string { return e.Code }

// Errors are classified by SQLSTATE whatever the driver's error type.
func TestBrokenConnectionByState(t *testing.T) {
	for _, c := range []struct {
		err    error
		broken bool
	}{
		{&otherDriverError{Code: "42P01", Message: "relation does not exist"}, false},
		{&otherDriverError{Code: "57014", Message: "canceling statement due to statement timeout"}, false},
		{&otherDriverError{Code: "23505", Message: "duplicate key"}, false},
		{&otherDriverError{Code: "08006", Message: "connection failure"}, true},
		{&otherDriverError{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{&otherDriverError{Code: "57P03", Message: "the database system is starting up"}, true},
		{fmt.Errorf("wrapped: %w", &otherDriverError{Code: "57P02", Message: "crash shutdown"}), true},
		{&pgconn.PgError{Code: "42P01"}, false},
		{&pgconn.PgError{Code: "57P03"}, true},
		{io.ErrUnexpectedEOF, true}, // no answer from the server
		{context.Canceled, false},
		{fmt.Errorf("read: %w", context.DeadlineExceeded), false},
	} {
		if got := brokenConnection(c.err); got != c.broken {
			t.Errorf("brokenConnection(%v) = %v, want %v", c.err, got, c.broken)
		}
	}
}

// A conflict keeps the server's detail (the key that clashed) whatever the driver's error type.
func TestConflictDetail(t *testing.T) {
	const detail = "Key (originator_id, originator_version)=(0193, 1) already exists."
	for _, cause := range []error{
		&otherDriverError{Code: sqlstateUniqueViolation, Message: "duplicate key value violates unique constraint", Detail: detail},
		&pgconn.PgError{Code: sqlstateUniqueViolation, Message: "duplicate key value violates unique constraint", Detail: detail},
	} {
		err := opError("insert events", fmt.Errorf("call: %w", cause))
		if !errors.Is(err, es.ErrConflict) {
			t.Errorf("%T: %v does not wrap ErrConflict", cause, err)
		}
		if !strings.Contains(err.Error(), strings.TrimSuffix(detail, ".")) {
			t.Errorf("%T: %q lacks the detail %q", cause, err, detail)
		}
	}
	if err := opError("insert events", &otherDriverError{Code: "42P01", Detail: "x"}); errors.Is(err, es.ErrConflict) {
		t.Errorf("%v wraps ErrConflict", err)
	}
}
