package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Ordering chooses how a [ProcessRecorder] keeps the notification log free of late fills: once any
// reader has seen notification ID n, no ID below n ever appears. PostgreSQL needs help here, because
// an ID is taken when a row is inserted but becomes visible when its transaction commits, and
// transactions commit in any order.
//
// All recorders of one schema must use the same ordering: the readers of one are not safe against the
// writers of the other. The first recorder to open a schema records its ordering there, and a recorder
// configured with another one is refused with [ErrOrderingMismatch].
type Ordering int

const (
	// OrderingDefault is the zero Ordering: the schema's recorded ordering when there is one, and
	// OrderingXID for a schema that has none yet.
	OrderingDefault Ordering = iota

	// OrderingXID lets appends commit concurrently. Each append allocates its transaction ID (xid) and
	// then its notification IDs inside a short critical section (an advisory lock held for
	// microseconds, released before the rows are written), so xid order and ID order agree between
	// appends. Readers return the rows whose xid is below the xmin of their snapshot: every append with
	// a lower ID has a lower xid, so it has finished, and what a reader sees is closed downwards.
	// Appends also hold a shared "in flight" lock until they end; a reader that finds none in flight
	// knows every ID taken so far is final and reads everything committed.
	//
	// The cost is on the reading side, and only while appends of the schema are in flight: then a
	// transaction that holds an xid (one that has written something; read-only transactions do not
	// count), anywhere in the PostgreSQL cluster, delays what readers see until it ends, as long as it
	// is older than the appends. A long-running writing transaction can so hold back the subscribers of
	// a busy application — never its writers. An application whose appends have all ended reads them
	// at once, whatever else runs in the cluster.
	OrderingXID

	// OrderingTableLock is the ordering of the Python eventsourcing library: every append locks the
	// events table (LOCK TABLE … IN EXCLUSIVE MODE) until it commits, so IDs are allocated in commit
	// order and readers need no filter. Appends to one schema are serialised, each waiting for the
	// previous one's commit to be flushed; readers are never held back by other transactions. The
	// lock also conflicts with autovacuum of the events table, which PostgreSQL cancels only after
	// deadlock_timeout (1 s by default): appends can stall that long while the table is vacuumed.
	OrderingTableLock
)

// String returns the name under which the ordering is recorded in the schema.
func (o Ordering) String() string {
	switch o {
	case OrderingDefault:
		return "default"
	case OrderingXID:
		return "xid"
	case OrderingTableLock:
		return "table_lock"
	default:
		return fmt.Sprintf("Ordering(%d)", int(o))
	}
}

func parseOrdering(s string) (Ordering, bool) {
	switch s {
	case "xid":
		return OrderingXID, true
	case "table_lock":
		return OrderingTableLock, true
	default:
		return 0, false
	}
}

// claimOrdering records want as the schema's ordering unless one is recorded, and returns the
// recorded one; OrderingDefault takes whatever is recorded (OrderingXID on a new schema).
func claimOrdering(ctx context.Context, b *base, want Ordering) (Ordering, error) {
	claim := want
	if claim == OrderingDefault {
		claim = OrderingXID
	}
	var recorded string
	var err error
	// Two recorders racing on a new schema: the loser's insert does nothing and its statement's
	// snapshot may predate the winner's row, so it finds no row at all; the next attempt sees it.
	for range 3 {
		recorded, err = b.q.ClaimOrdering(ctx, claim.String())
		if !errors.Is(err, sql.ErrNoRows) {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("record the ordering: %w", err)
	}
	got, ok := parseOrdering(recorded)
	if !ok {
		return 0, fmt.Errorf("%s records the unknown ordering %q", b.describeSchema(), recorded)
	}
	if want != OrderingDefault && got != want {
		return 0, fmt.Errorf("%w: %s records ordering %v, the recorder asks for %v; all recorders of a schema must use "+
			"one ordering (to change it, stop every process using the schema and update its recorder_settings row)",
			ErrOrderingMismatch, b.describeSchema(), got, want)
	}
	return got, nil
}

// Ordering returns the notification ordering in use.
func (r *ProcessRecorder) Ordering() Ordering { return r.ordering }
