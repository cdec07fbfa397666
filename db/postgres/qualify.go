package postgres

import (
	"context"
	"database/sql"
	"sync"

	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/dbsqlc"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// qualifier is the generated queries' DBTX: it replaces the schema marker in each query text once and
// keeps the result, so every query after the first costs one map look-up and the driver sees the same
// text each time (and reuses its prepared statement).
type qualifier struct {
	db     dbsqlc.DBTX // the pool, or a transaction (see inTx)
	schema string
	texts  *sync.Map // query text → qualified query text, shared with inTx's qualifiers
}

func newQualifier(db *sql.DB, schemaName string) *qualifier {
	return &qualifier{db: db, schema: schemaName, texts: new(sync.Map)}
}

// inTx returns a qualifier that runs the queries in tx, with the same qualified texts.
func (q *qualifier) inTx(tx *sql.Tx) *qualifier {
	return &qualifier{db: tx, schema: q.schema, texts: q.texts}
}

func (q *qualifier) qualify(query string) string {
	if s, ok := q.texts.Load(query); ok {
		return s.(string)
	}
	s := schema.Qualify(query, q.schema)
	q.texts.Store(query, s)
	return s
}

func (q *qualifier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return q.db.ExecContext(ctx, q.qualify(query), args...)
}

func (q *qualifier) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return q.db.PrepareContext(ctx, q.qualify(query))
}

func (q *qualifier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return q.db.QueryContext(ctx, q.qualify(query), args...)
}

func (q *qualifier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return q.db.QueryRowContext(ctx, q.qualify(query), args...)
}
