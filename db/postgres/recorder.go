package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/dbsqlc"
	"github.com/eventsourcing-go/eventsourcing/schema"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrNotMigrated is wrapped by the constructors' error when the schema lacks the recorders' tables or
	// functions: run schema.Migrate first.
	ErrNotMigrated = errors.New("schema not migrated")
	// ErrOrderingMismatch is wrapped by NewProcessRecorder's error when the schema records another
	// ordering than the one asked for with WithOrdering.
	ErrOrderingMismatch = errors.New("ordering differs from the schema's")
)

// SQLSTATEs raised by events_append (see the migration).
const (
	sqlstateUniqueViolation  = "23505"
	sqlstateTrackingConflict = "ES001"
)

// base is what the recorders share: the database, the generated queries over a qualifying DBTX, and
// the schema name for messages.
type base struct {
	db        *sql.DB
	q         *dbsqlc.Queries
	qualifier *qualifier
	schema    string
}

func newBase(ctx context.Context, db *sql.DB, op string, cfg config) (base, error) {
	if db == nil {
		return base{}, fmt.Errorf("postgres: %s: nil *sql.DB", op)
	}
	if cfg.schemaSet {
		if err := schema.ValidateSchemaName(cfg.schema); err != nil {
			return base{}, fmt.Errorf("postgres: %s: %w", op, err)
		}
	}
	qual := newQualifier(db, cfg.schema)
	b := base{db: db, q: dbsqlc.New(qual), qualifier: qual, schema: cfg.schema}
	if err := db.PingContext(ctx); err != nil {
		return base{}, fmt.Errorf("postgres: %s: connect to the database: %w", op, err)
	}
	missing, err := b.q.MissingObjects(ctx)
	if err != nil {
		return base{}, fmt.Errorf("postgres: %s: look up the schema's tables: %w", op, err)
	}
	if len(missing) > 0 {
		what := "lacks " + strings.Join(missing, ", ")
		if len(missing) == requiredObjects {
			what = "has none of the recorders' tables"
		}
		return base{}, fmt.Errorf("postgres: %s: %w: %s %s; run schema.Migrate(ctx, db, schema.Postgres%s) first",
			op, ErrNotMigrated, b.describeSchema(), what, b.schemaOption())
	}
	return b, nil
}

func (b *base) describeSchema() string {
	if b.schema == "" {
		return "the search_path's schema"
	}
	return fmt.Sprintf("schema %q", b.schema)
}

func (b *base) schemaOption() string {
	if b.schema == "" {
		return ""
	}
	return fmt.Sprintf(", schema.WithSchema(%q)", b.schema)
}

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

// requiredObjects is how many objects MissingObjects looks for (queries/postgres/setup.sql).
const requiredObjects = 9

// wrap names the operation and, for uniqueness violations, wraps eventsourcing.ErrConflict too, with
// the server's detail (which key clashed).
func wrap(op string, err error) error {
	switch sqlState(err) {
	case sqlstateUniqueViolation, sqlstateTrackingConflict:
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Detail != "" {
			return fmt.Errorf("postgres: %s: %w: %s: %w", op, eventsourcing.ErrConflict, strings.TrimSuffix(pgErr.Detail, "."), err)
		}
		return fmt.Errorf("postgres: %s: %w: %w", op, eventsourcing.ErrConflict, err)
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

// columns are a batch of events as the array parameters of the insert queries. pgx's stdlib driver
// encodes these slices as uuid[], bigint[], text[] and bytea[] in binary; the UUIDs as [16]byte, since
// uuid.UUID values would go through their text form (measured about ten times slower).
type columns struct {
	ids      [][16]byte
	versions []int64
	topics   []string
	states   [][]byte
}

func newColumns(op string, events []eventsourcing.StoredEvent) (columns, error) {
	c := columns{
		ids:      make([][16]byte, len(events)),
		versions: make([]int64, len(events)),
		topics:   make([]string, len(events)),
		states:   make([][]byte, len(events)),
	}
	for i, e := range events {
		if e.OriginatorID == uuid.Nil {
			return columns{}, fmt.Errorf("postgres: %s: event %d (version %d): nil originator ID", op, i, e.OriginatorVersion)
		}
		if e.OriginatorVersion < 1 {
			return columns{}, fmt.Errorf("postgres: %s: event %d: originator %s version %d: versions start at 1", op, i, e.OriginatorID, e.OriginatorVersion)
		}
		c.ids[i] = e.OriginatorID
		c.versions[i] = e.OriginatorVersion
		c.topics[i] = e.Topic
		if e.State == nil {
			c.states[i] = []byte{} // a nil element would be NULL
		} else {
			c.states[i] = e.State
		}
	}
	return c, nil
}

// eventBounds turns an EventQuery into the queries' parameters: bounds that exclude nothing where the
// query has none.
func eventBounds(op string, q eventsourcing.EventQuery) (upTo int64, limit sql.NullInt32, err error) {
	upTo = q.UpTo
	if upTo == 0 {
		upTo = math.MaxInt64
	}
	switch {
	case q.Limit < 0:
		return 0, limit, fmt.Errorf("postgres: %s: negative limit %d", op, q.Limit)
	case q.Limit > 0:
		limit = sql.NullInt32{Int32: int32(min(q.Limit, math.MaxInt32)), Valid: true}
	}
	return upTo, limit, nil
}

// eventRow is the shape of every generated SelectEvents-like row type.
type eventRow = struct {
	OriginatorVersion int64
	Topic             string
	State             []byte
}

func toEvents[R ~eventRow](id uuid.UUID, rows []R) []eventsourcing.StoredEvent {
	out := make([]eventsourcing.StoredEvent, len(rows))
	for i, row := range rows {
		r := eventRow(row)
		out[i] = eventsourcing.StoredEvent{
			OriginatorID:      id,
			OriginatorVersion: r.OriginatorVersion,
			Topic:             r.Topic,
			State:             r.State,
		}
	}
	return out
}
