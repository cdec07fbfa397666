package benchkit

import (
	"context"
	"database/sql"
	"errors"

	es "github.com/eventsourcing-go/eventsourcing"
)

// The SQLite baselines, on the events table that schema.Migrate makes.
const (
	sqliteInsert = `INSERT INTO events (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)`
	sqliteEvents = `SELECT originator_version, topic, state FROM events WHERE originator_id = ? ORDER BY originator_version`
	sqlitePage   = `SELECT notification_id, originator_id, originator_version, topic, state FROM events WHERE notification_id > ? ORDER BY notification_id LIMIT ?`
	sqlitePoint  = `SELECT notification_id FROM events WHERE notification_id = ?`
)

// SQLiteWriter is the SQLite append baseline, the strongest plain code: a connection of its own with
// the INSERT, BEGIN IMMEDIATE, COMMIT and ROLLBACK prepared once; every append is one transaction, and
// IDs come from LastInsertId.
type SQLiteWriter struct {
	conn                         *sql.Conn
	ins, begin, commit, rollback *sql.Stmt
}

// NewSQLiteWriter takes a connection of db and prepares the statements on it.
func NewSQLiteWriter(ctx context.Context, db *sql.DB) (*SQLiteWriter, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &SQLiteWriter{conn: conn}
	stmts := []**sql.Stmt{&w.ins, &w.begin, &w.commit, &w.rollback}
	if err := prepare(ctx, conn, stmts, sqliteInsert, "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// Close closes the statements and returns the connection to the pool.
func (w *SQLiteWriter) Close() error {
	return errors.Join(closeAll(w.ins, w.begin, w.commit, w.rollback), w.conn.Close())
}

// Append records events in one transaction and returns their notification IDs.
func (w *SQLiteWriter) Append(ctx context.Context, events []es.StoredEvent) ([]int64, error) {
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

// NewSQLiteReader prepares the read baselines on db's pool.
func NewSQLiteReader(ctx context.Context, db *sql.DB) (*Reader, error) {
	return newReader(ctx, db, true, sqliteEvents, sqlitePage, sqlitePoint)
}
