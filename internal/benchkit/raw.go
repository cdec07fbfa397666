package benchkit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// The raw baselines: the least code that does a recorder's work, written by hand, through the same
// driver and on a database set up the same way (same schema, same synchronous setting). They have no
// ordering guarantees beyond what the database gives, no validation and no error wrapping.

// MemLog is the in-memory baseline: a log and an index of versions under one mutex, copying states in
// and out as the memory recorder does.
type MemLog struct {
	mu   sync.Mutex
	keys map[memKey]struct{}
	byID map[uuid.UUID][]int
	log  []es.Notification
}

type memKey struct {
	id uuid.UUID
	v  int64
}

// NewMemLog returns an empty MemLog.
func NewMemLog() *MemLog { return &MemLog{keys: map[memKey]struct{}{}, byID: map[uuid.UUID][]int{}} }

var errVersionExists = errors.New("benchkit: version exists")

// Append records events, all or none, and returns their positions in the log (from 1).
func (m *MemLog) Append(_ context.Context, events []es.StoredEvent) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range events {
		if _, ok := m.keys[memKey{e.OriginatorID, e.OriginatorVersion}]; ok {
			return nil, errVersionExists
		}
	}
	ids := make([]int64, len(events))
	for i, e := range events {
		e.State = append([]byte(nil), e.State...)
		m.keys[memKey{e.OriginatorID, e.OriginatorVersion}] = struct{}{}
		m.byID[e.OriginatorID] = append(m.byID[e.OriginatorID], len(m.log))
		ids[i] = int64(len(m.log) + 1)
		m.log = append(m.log, es.Notification{ID: ids[i], StoredEvent: e})
	}
	return ids, nil
}

// SelectEvents returns the events of originator id in the order they were appended.
func (m *MemLog) SelectEvents(_ context.Context, id uuid.UUID) ([]es.StoredEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]es.StoredEvent, len(m.byID[id]))
	for i, p := range m.byID[id] {
		out[i] = m.log[p].StoredEvent
		out[i].State = append([]byte(nil), out[i].State...)
	}
	return out, nil
}

// Reader runs the read baselines through a pool, with statements prepared once.
type Reader struct {
	events, page, point *sql.Stmt
	blobIDs             bool // SQLite stores originator IDs as 16-byte blobs
}

func newReader(ctx context.Context, db *sql.DB, blobIDs bool, events, page, point string) (*Reader, error) {
	r := &Reader{blobIDs: blobIDs}
	if err := prepare(ctx, db, []**sql.Stmt{&r.events, &r.page, &r.point}, events, page, point); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close closes the prepared statements.
func (r *Reader) Close() error { return closeAll(r.events, r.page, r.point) }

// prepare prepares texts[i] on p into *stmts[i], up to the first error.
func prepare(ctx context.Context, p interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}, stmts []**sql.Stmt, texts ...string) error {
	for i, text := range texts {
		var err error
		if *stmts[i], err = p.PrepareContext(ctx, text); err != nil {
			return err
		}
	}
	return nil
}

// closeAll closes the statements that are not nil.
func closeAll(stmts ...*sql.Stmt) error {
	var errs []error
	for _, s := range stmts {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// SelectEvents reads the events of originator id in version order.
func (r *Reader) SelectEvents(ctx context.Context, id uuid.UUID) ([]es.StoredEvent, error) {
	var arg any = id
	if r.blobIDs {
		arg = id[:]
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

// SelectPage reads at most limit notifications after the ID after, in ID order.
func (r *Reader) SelectPage(ctx context.Context, after int64, limit int) ([]es.Notification, error) {
	rows, err := r.page.QueryContext(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]es.Notification, 0, limit)
	for rows.Next() {
		var n es.Notification
		if r.blobIDs {
			var oid []byte
			if err = rows.Scan(&n.ID, &oid, &n.OriginatorVersion, &n.Topic, &n.State); err == nil {
				copy(n.OriginatorID[:], oid)
			}
		} else {
			err = rows.Scan(&n.ID, &n.OriginatorID, &n.OriginatorVersion, &n.Topic, &n.State)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// PointRead reads the notification ID id back: one query round trip.
func (r *Reader) PointRead(ctx context.Context, id int64) error {
	var got int64
	if err := r.point.QueryRowContext(ctx, id).Scan(&got); err != nil {
		return err
	}
	if got != id {
		return fmt.Errorf("read %d, want %d", got, id)
	}
	return nil
}

// PageFunc reads a page of the notification log: at most limit notifications after the ID after.
type PageFunc func(ctx context.Context, after int64, limit int) ([]es.Notification, error)

// RecorderPages is r's SelectNotifications as a PageFunc.
func RecorderPages(r es.ApplicationRecorder) PageFunc {
	return func(ctx context.Context, after int64, limit int) ([]es.Notification, error) {
		return r.SelectNotifications(ctx, es.NotificationQuery{After: after, Limit: limit})
	}
}

// ReadLog walks the whole notification log in pages of page with next and returns how many
// notifications it read.
func ReadLog(ctx context.Context, page int, next PageFunc) (int, error) {
	n, after := 0, int64(0)
	for {
		ns, err := next(ctx, after, page)
		if err != nil || len(ns) == 0 {
			return n, err
		}
		n += len(ns)
		after = ns[len(ns)-1].ID
	}
}
