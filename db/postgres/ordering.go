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
// All recorders of one schema must use the same ordering: the readers of the table-lock ordering are
// not safe against the writers of the xid ordering. The first recorder to open a schema records its
// ordering there, and a recorder configured with another one is refused with [ErrOrderingMismatch].
//
// Whatever the ordering, every lock an append takes is a transaction-level lock, which PostgreSQL
// releases when the append's transaction (or the part of it that took the lock) ends, however it ends:
// no cancellation, statement or lock timeout, or terminated session can leave a lock behind to block
// the appends that follow.
type Ordering int

const (
	// OrderingDefault is the zero Ordering: the schema's recorded ordering when there is one, and
	// OrderingXID for a schema that has none yet.
	OrderingDefault Ordering = iota

	// OrderingXID lets appends commit concurrently. Each append assigns its transaction ID (xid) and
	// takes its notification IDs inside a short critical section (a lock taken in a subtransaction
	// that is rolled back as soon as the IDs are taken, which releases the lock long before the
	// append commits), so xid order and ID order agree between appends. Readers return the rows whose
	// xid is below the xmin of their snapshot, up to the first that is not: every append with a lower
	// ID has a lower xid, so it has finished, and what a reader sees is closed downwards. Appends also
	// hold a shared "in flight" lock until they end; a reader that finds rows held back, and no append
	// in flight, knows every ID taken so far is final and reads everything committed (the horizon).
	//
	// The cost is on the reading side, and only while appends of the schema are in flight: then a
	// transaction that holds an xid (one that has written something; read-only transactions do not
	// count), anywhere in the PostgreSQL cluster, delays what readers see until it ends, as long as it
	// is older than the appends. A long-running writing transaction can so hold back the subscribers of
	// a busy application — never its writers. An application whose appends have all ended reads them
	// at once, whatever else runs in the cluster. The critical section costs each append a PL/pgSQL
	// call and a subtransaction; a session-level lock would be cheaper, but a session-level lock can
	// be left behind by a cancellation that arrives while it is being released.
	//
	// On a hot standby the horizon is not used (its locks and its sequence say nothing about the
	// primary's appends): readers there rely on the xid filter alone, which a standby's snapshots
	// keep as safe as the primary's, and see an append once the standby has replayed the end of every
	// older transaction of the primary.
	OrderingXID

	// OrderingTableLock is the ordering of the Python eventsourcing library: appends run one at a
	// time, each holding an exclusive lock of the schema from before it takes its IDs until it commits,
	// so IDs are allocated in commit order and readers need no filter. Appends to one schema are so
	// serialised, each waiting for the previous one's commit to be flushed; readers are never held back
	// by other transactions. (The Python library locks the events table; these appends take an
	// advisory lock of the schema instead, which excludes the same appends without making them wait
	// for autovacuum of the table.)
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

// sqlstateReadOnlyTransaction is the error of a write on a standby (or in a read-only transaction).
const sqlstateReadOnlyTransaction = "25006"

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
	if sqlState(err) == sqlstateReadOnlyTransaction {
		return 0, fmt.Errorf("record the ordering: the server accepts no writes (a standby?); "+
			"a recorder that only reads is made WithReadOnly: %w", err)
	}
	if err != nil {
		return 0, fmt.Errorf("record the ordering: %w", err)
	}
	return checkOrdering(b, recorded, want)
}

// readOrdering returns the ordering a read-only recorder reads with: the recorded one, or OrderingXID
// while none is recorded, since its readers are safe with the writers of either ordering (the table
// lock allocates IDs in commit order, which the xid filter and the horizon respect too).
func readOrdering(ctx context.Context, b *base, want Ordering) (Ordering, error) {
	recorded, err := b.q.RecordedOrdering(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the ordering: %w", err)
	}
	if len(recorded) == 0 {
		return OrderingXID, nil
	}
	return checkOrdering(b, recorded[0], want)
}

// checkOrdering parses the recorded ordering and refuses it when want is another one.
func checkOrdering(b *base, recorded string, want Ordering) (Ordering, error) {
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
