package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// The baselines: the least code that does the same work, written by hand, through the same driver and
// on a database set up the same way (same schema, same synchronous setting). They have no ordering
// guarantees beyond what the database gives, no validation and no error wrapping.

// rawMem is the in-memory baseline: a log and a map of versions under one mutex, copying states in and
// out as the memory recorder does.
type rawMem struct {
	mu   sync.Mutex
	keys map[rawKey]struct{}
	byID map[uuid.UUID][]int
	log  []es.Notification
}

type rawKey struct {
	id uuid.UUID
	v  int64
}

func newRawMem() *rawMem {
	return &rawMem{keys: map[rawKey]struct{}{}, byID: map[uuid.UUID][]int{}}
}

var errRawConflict = errors.New("conflict")

func (m *rawMem) append(events []es.StoredEvent) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range events {
		if _, ok := m.keys[rawKey{e.OriginatorID, e.OriginatorVersion}]; ok {
			return nil, errRawConflict
		}
	}
	ids := make([]int64, len(events))
	for i, e := range events {
		e.State = append([]byte(nil), e.State...)
		m.keys[rawKey{e.OriginatorID, e.OriginatorVersion}] = struct{}{}
		m.byID[e.OriginatorID] = append(m.byID[e.OriginatorID], len(m.log))
		ids[i] = int64(len(m.log) + 1)
		m.log = append(m.log, es.Notification{ID: ids[i], StoredEvent: e})
	}
	return ids, nil
}

func (m *rawMem) events(id uuid.UUID) []es.StoredEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	pos := m.byID[id]
	out := make([]es.StoredEvent, len(pos))
	for i, p := range pos {
		out[i] = m.log[p].StoredEvent
		out[i].State = append([]byte(nil), out[i].State...)
	}
	return out
}

// SQLite baselines.

const (
	sqliteRawInsert = `INSERT INTO events (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)`
	sqliteRawEvents = `SELECT originator_version, topic, state FROM events WHERE originator_id = ? ORDER BY originator_version`
	sqliteRawPage   = `SELECT notification_id, originator_id, originator_version, topic, state FROM events WHERE notification_id > ? ORDER BY notification_id LIMIT ?`
	sqliteRawPoint  = `SELECT notification_id FROM events WHERE notification_id = ?`
)

// sqliteRawWriter is a connection of its own with INSERT, BEGIN IMMEDIATE, COMMIT and ROLLBACK
// prepared once; every append is one transaction.
type sqliteRawWriter struct {
	conn                         *sql.Conn
	ins, begin, commit, rollback *sql.Stmt
}

func newSQLiteRawWriter(ctx context.Context, e *env, db *sql.DB) (*sqliteRawWriter, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &sqliteRawWriter{conn: conn}
	e.onClose(func() { conn.Close() })
	for _, p := range []struct {
		stmt **sql.Stmt
		text string
	}{{&w.ins, sqliteRawInsert}, {&w.begin, "BEGIN IMMEDIATE"}, {&w.commit, "COMMIT"}, {&w.rollback, "ROLLBACK"}} {
		if *p.stmt, err = conn.PrepareContext(ctx, p.text); err != nil {
			return nil, err
		}
		stmt := *p.stmt
		e.onClose(func() { stmt.Close() })
	}
	return w, nil
}

func (w *sqliteRawWriter) append(ctx context.Context, events []es.StoredEvent) ([]int64, error) {
	if _, err := w.begin.ExecContext(ctx); err != nil {
		return nil, err
	}
	ids := make([]int64, len(events))
	for i, e := range events {
		res, err := w.ins.ExecContext(ctx, e.OriginatorID[:], e.OriginatorVersion, e.Topic, e.State)
		if err == nil {
			ids[i], err = res.LastInsertId()
		}
		if err != nil {
			w.rollback.ExecContext(ctx)
			return nil, err
		}
	}
	if _, err := w.commit.ExecContext(ctx); err != nil {
		w.rollback.ExecContext(ctx)
		return nil, err
	}
	return ids, nil
}

// sqlReader runs the read baselines through a pool with statements prepared once.
type sqlReader struct {
	events, page, point *sql.Stmt
	pg                  bool // PostgreSQL scans UUIDs directly, SQLite as 16-byte blobs
}

func newSQLiteReader(ctx context.Context, e *env, db *sql.DB) (*sqlReader, error) {
	return newSQLReader(ctx, e, db, false, sqliteRawEvents, sqliteRawPage, sqliteRawPoint)
}

func newSQLReader(ctx context.Context, e *env, db *sql.DB, pg bool, events, page, point string) (*sqlReader, error) {
	r := &sqlReader{pg: pg}
	var err error
	for _, p := range []struct {
		stmt **sql.Stmt
		text string
	}{{&r.events, events}, {&r.page, page}, {&r.point, point}} {
		if *p.stmt, err = db.PrepareContext(ctx, p.text); err != nil {
			return nil, err
		}
		stmt := *p.stmt
		e.onClose(func() { stmt.Close() })
	}
	return r, nil
}

func (r *sqlReader) selectEvents(ctx context.Context, id uuid.UUID) ([]es.StoredEvent, error) {
	var arg any = id[:]
	if r.pg {
		arg = id
	}
	rows, err := r.events.QueryContext(ctx, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []es.StoredEvent
	for rows.Next() {
		e := es.StoredEvent{OriginatorID: id}
		if err := rows.Scan(&e.OriginatorVersion, &e.Topic, &e.State); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (r *sqlReader) selectPage(ctx context.Context, after int64, limit int) ([]es.Notification, error) {
	rows, err := r.page.QueryContext(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]es.Notification, 0, limit)
	for rows.Next() {
		var n es.Notification
		if r.pg {
			err = rows.Scan(&n.ID, &n.OriginatorID, &n.OriginatorVersion, &n.Topic, &n.State)
		} else {
			var oid []byte
			if err = rows.Scan(&n.ID, &oid, &n.OriginatorVersion, &n.Topic, &n.State); err == nil {
				copy(n.OriginatorID[:], oid)
			}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// pointRead reads one notification ID back: one query round trip.
func (r *sqlReader) pointRead(ctx context.Context, id int64) error {
	var got int64
	if err := r.point.QueryRowContext(ctx, id).Scan(&got); err != nil {
		return err
	}
	if got != id {
		return fmt.Errorf("read %d, want %d", got, id)
	}
	return nil
}

// PostgreSQL baselines, on the events table of a schema migrated like the recorders' (so the same
// columns, keys and indexes), taking IDs straight from its sequence with no ordering at all.

type pgRaw struct {
	db                *sql.DB
	one, batch        string
	events, page, pnt string
}

func newPGRaw(db *sql.DB, schemaName string) *pgRaw {
	s := schemaName
	return &pgRaw{
		db: db,
		one: fmt.Sprintf(`INSERT INTO %[1]s.events (notification_id, originator_id, originator_version, xid, topic, state)
VALUES (nextval('%[1]s.events_notification_id_seq'), $1, $2, pg_current_xact_id(), $3, $4)
RETURNING notification_id`, s),
		batch: fmt.Sprintf(`INSERT INTO %[1]s.events (notification_id, originator_id, originator_version, xid, topic, state)
SELECT nextval('%[1]s.events_notification_id_seq'), u.o, u.v, pg_current_xact_id(), u.t, u.s
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[]) WITH ORDINALITY AS u (o, v, t, s, n)
ORDER BY u.n
RETURNING notification_id`, s),
		events: fmt.Sprintf(`SELECT originator_version, topic, state FROM %s.events WHERE originator_id = $1 ORDER BY originator_version`, s),
		page:   fmt.Sprintf(`SELECT notification_id, originator_id, originator_version, topic, state FROM %s.events WHERE notification_id > $1 ORDER BY notification_id LIMIT $2`, s),
		pnt:    fmt.Sprintf(`SELECT notification_id FROM %s.events WHERE notification_id = $1`, s),
	}
}

// insertOne is INSERT … RETURNING in autocommit: one round trip, one transaction.
func (p *pgRaw) insertOne(ctx context.Context, e es.StoredEvent) (int64, error) {
	var id int64
	err := p.db.QueryRowContext(ctx, p.one, e.OriginatorID, e.OriginatorVersion, e.Topic, e.State).Scan(&id)
	return id, err
}

// insertBatch is one INSERT … SELECT FROM unnest(arrays) in autocommit.
func (p *pgRaw) insertBatch(ctx context.Context, events []es.StoredEvent) ([]int64, error) {
	ids, vs, topics, states := make([][16]byte, len(events)), make([]int64, len(events)), make([]string, len(events)), make([][]byte, len(events))
	for i, e := range events {
		ids[i], vs[i], topics[i], states[i] = e.OriginatorID, e.OriginatorVersion, e.Topic, e.State
	}
	rows, err := p.db.QueryContext(ctx, p.batch, ids, vs, topics, states)
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

func (p *pgRaw) reader(ctx context.Context, e *env) (*sqlReader, error) {
	return newSQLReader(ctx, e, p.db, true, p.events, p.page, p.pnt)
}

// readLog walks the whole notification log in pages with next and returns how many it read.
func readLog(ctx context.Context, page int, next func(ctx context.Context, after int64, limit int) ([]es.Notification, error)) (int, error) {
	n, after := 0, int64(0)
	for {
		ns, err := next(ctx, after, page)
		if err != nil {
			return n, err
		}
		if len(ns) == 0 {
			return n, nil
		}
		n += len(ns)
		after = ns[len(ns)-1].ID
	}
}
