package benchkit

import (
	"context"
	"database/sql"
	"fmt"

	es "github.com/eventsourcing-go/eventsourcing"
)

// The PostgreSQL baselines run on the events table of a schema migrated like the recorders' (the same
// columns, keys and indexes), and take IDs straight from its sequence with no ordering at all, so
// that concurrent writers can make late fills.

// Querier is what a PostgresWriter writes through: a *sql.DB (each append in autocommit), a *sql.Conn
// or a *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// PostgresWriter is the PostgreSQL append baseline: one statement per append, INSERT … RETURNING for
// one event, INSERT … SELECT FROM unnest(arrays) for more.
type PostgresWriter struct {
	q          Querier
	one, batch string
}

// NewPostgresWriter returns a writer on the events table of schema, through q.
func NewPostgresWriter(q Querier, schema string) *PostgresWriter {
	return &PostgresWriter{
		q: q,
		one: fmt.Sprintf(`INSERT INTO %[1]s.events (notification_id, originator_id, originator_version, xid, topic, state)
VALUES (nextval('%[1]s.events_notification_id_seq'), $1, $2, pg_current_xact_id(), $3, $4)
RETURNING notification_id`, schema),
		batch: fmt.Sprintf(`INSERT INTO %[1]s.events (notification_id, originator_id, originator_version, xid, topic, state)
SELECT nextval('%[1]s.events_notification_id_seq'), u.o, u.v, pg_current_xact_id(), u.t, u.s
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[]) WITH ORDINALITY AS u (o, v, t, s, n)
ORDER BY u.n
RETURNING notification_id`, schema),
	}
}

// Append records events in one statement and returns their notification IDs, in input order.
func (w *PostgresWriter) Append(ctx context.Context, events []es.StoredEvent) ([]int64, error) {
	var rows *sql.Rows
	var err error
	if len(events) == 1 {
		e := events[0]
		rows, err = w.q.QueryContext(ctx, w.one, e.OriginatorID, e.OriginatorVersion, e.Topic, e.State)
	} else {
		n := len(events)
		ids, vs, topics, states := make([][16]byte, n), make([]int64, n), make([]string, n), make([][]byte, n)
		for i, e := range events {
			ids[i], vs[i], topics[i], states[i] = e.OriginatorID, e.OriginatorVersion, e.Topic, e.State
		}
		rows, err = w.q.QueryContext(ctx, w.batch, ids, vs, topics, states)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]int64, 0, len(events))
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// NewPostgresReader prepares the read baselines on the events table of schema, on db's pool.
func NewPostgresReader(ctx context.Context, db *sql.DB, schema string) (*Reader, error) {
	return newReader(ctx, db, false,
		fmt.Sprintf(`SELECT originator_version, topic, state FROM %s.events WHERE originator_id = $1 ORDER BY originator_version`, schema),
		fmt.Sprintf(`SELECT notification_id, originator_id, originator_version, topic, state FROM %s.events WHERE notification_id > $1 ORDER BY notification_id LIMIT $2`, schema),
		fmt.Sprintf(`SELECT notification_id FROM %s.events WHERE notification_id = $1`, schema))
}
