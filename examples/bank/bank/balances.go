package bank

import (
	"context"
	"fmt"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// BalancesTable creates the read model of the balances projection: one row per account. The SQL is
// the same on SQLite and PostgreSQL.
const BalancesTable = `CREATE TABLE IF NOT EXISTS account_balances (
	account_id TEXT PRIMARY KEY,
	owner      TEXT NOT NULL,
	balance    BIGINT NOT NULL
)`

// ForgetBalance deletes the row of an account whose holder was forgotten: forgetting deletes the data
// key, which a read model does not use, so the application deletes what it derived itself.
const ForgetBalance = `DELETE FROM account_balances WHERE account_id = $1`

// BalancesByOwner reads the read model: total balance per owner.
const BalancesByOwner = `SELECT owner, sum(balance) FROM account_balances GROUP BY owner ORDER BY owner`

// Balances is a projection of the bank's events into account_balances. The runner calls it inside the
// transaction that also records how far it has got, so each event changes the table exactly once.
func Balances(ctx context.Context, tx projection.SQLTx, e aggregate.Event) error {
	id := e.OriginatorID.String()
	var err error
	switch d := e.Data.(type) {
	case AccountOpened:
		_, err = tx.ExecContext(ctx, `INSERT INTO account_balances (account_id, owner, balance) VALUES ($1, $2, 0)`, id, d.Owner)
	case MoneyDeposited:
		err = addBalance(ctx, tx, id, d.Amount)
	case MoneyWithdrawn:
		err = addBalance(ctx, tx, id, -d.Amount)
	case TransferSent:
		err = addBalance(ctx, tx, id, -d.Amount)
	case TransferReceived:
		err = addBalance(ctx, tx, id, d.Amount)
	}
	return err
}

func addBalance(ctx context.Context, tx projection.SQLTx, id string, amount int64) error {
	res, err := tx.ExecContext(ctx, `UPDATE account_balances SET balance = balance + $1 WHERE account_id = $2`, amount, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("balances: account %s is not in the read model", id)
	}
	return nil
}

// ResetBalances clears the read model of the balances projection, for a rebuild (projection.WithReset).
func ResetBalances(ctx context.Context, tx projection.SQLTx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM account_balances`)
	return err
}
