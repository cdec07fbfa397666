package bank

import (
	"context"
	"maps"
	"slices"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// ActivityTable creates the read model of the activity projection: how many events of each kind the
// bank has recorded. It lives in the same database as the balances, with tracking marks of its own.
const ActivityTable = `CREATE TABLE IF NOT EXISTS bank_activity (
	kind TEXT PRIMARY KEY,
	n    BIGINT NOT NULL
)`

// ActivityByKind reads the read model.
const ActivityByKind = `SELECT kind, n FROM bank_activity ORDER BY kind`

// Activity is a batch projection: it counts the events of a whole batch in memory and writes one row
// per kind, in the transaction that also records the batch's tracking.
func Activity(ctx context.Context, tx projection.SQLTx, events []aggregate.Event) error {
	counts := map[string]int64{}
	for _, e := range events {
		switch e.Data.(type) {
		case AccountOpened:
			counts["accounts opened"]++
		case MoneyDeposited:
			counts["deposits"]++
		case MoneyWithdrawn:
			counts["withdrawals"]++
		case TransferSent:
			counts["transfers"]++
		}
	}
	for _, kind := range slices.Sorted(maps.Keys(counts)) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO bank_activity (kind, n) VALUES ($1, $2)
			ON CONFLICT (kind) DO UPDATE SET n = bank_activity.n + excluded.n`, kind, counts[kind]); err != nil {
			return err
		}
	}
	return nil
}

// ResetActivity clears the read model of the activity projection, for a rebuild.
func ResetActivity(ctx context.Context, tx projection.SQLTx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM bank_activity`)
	return err
}
