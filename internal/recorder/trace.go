package recorder

import (
	"context"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/observe"
)

// Tracing is a recorder's tracer (its WithTracer option) and what the recorder says of itself in
// every record it gives it. The zero value has no tracer: the recorder checks Tracer against nil
// before it calls any method, so that an untraced call costs that comparison only.
type Tracing struct {
	Tracer    observe.RecorderTracer
	Dialect   string // observe.DialectSQLite or observe.DialectPostgres
	Schema    string
	Snapshots bool // the recorder is a snapshot store
}

// Append runs write, an append of events (with opts), and tells the tracer when it starts and how it
// ends. write carries on with the context the tracer returns.
func (t Tracing) Append(ctx context.Context, events []es.StoredEvent, opts []es.InsertOption, write func(context.Context) ([]int64, error)) (ids []int64, err error) {
	if t.Tracer == nil {
		return write(ctx)
	}
	a := observe.Append{Dialect: t.Dialect, Schema: t.Schema, Snapshots: t.Snapshots, Events: len(events), Start: time.Now()}
	for _, e := range events {
		a.Bytes += len(e.State)
	}
	if tr := es.ApplyInsertOptions(opts...).Tracking; tr != nil {
		a.Consumer, a.Upstream = tr.Consumer, tr.Upstream
	}
	ctx = t.Tracer.AppendStart(ctx, a)
	defer func() {
		if n := len(ids); n > 0 {
			a.FirstNotificationID, a.LastNotificationID = ids[0], ids[n-1]
		}
		a.Err = err
		t.Tracer.AppendEnd(ctx, a)
	}()
	return write(ctx)
}

// SelectEvents runs read, a read of the events of originatorID, and tells the tracer when it starts
// and how it ends. read carries on with the context the tracer returns.
func (t Tracing) SelectEvents(ctx context.Context, originatorID uuid.UUID, read func(context.Context) ([]es.StoredEvent, error)) (got []es.StoredEvent, err error) {
	if t.Tracer == nil {
		return read(ctx)
	}
	ctx, s := t.startSelect(ctx, false, originatorID)
	defer func() {
		s.Events, s.Err = len(got), err
		for _, e := range got {
			s.Bytes += len(e.State)
		}
		t.Tracer.SelectEnd(ctx, s)
	}()
	return read(ctx)
}

// SelectNotifications runs read, a read of the notification log, and tells the tracer when it starts
// and how it ends. read carries on with the context the tracer returns.
func (t Tracing) SelectNotifications(ctx context.Context, read func(context.Context) ([]es.Notification, error)) (got []es.Notification, err error) {
	if t.Tracer == nil {
		return read(ctx)
	}
	ctx, s := t.startSelect(ctx, true, uuid.Nil)
	defer func() {
		s.Events, s.Err = len(got), err
		for _, n := range got {
			s.Bytes += len(n.State)
		}
		if k := len(got); k > 0 {
			s.FirstNotificationID, s.LastNotificationID = got[0].ID, got[k-1].ID
		}
		t.Tracer.SelectEnd(ctx, s)
	}()
	return read(ctx)
}

// startSelect tells the tracer that a read starts: of the notification log, or of the events of
// originatorID.
func (t Tracing) startSelect(ctx context.Context, notifications bool, originatorID uuid.UUID) (context.Context, observe.Select) {
	s := observe.Select{Dialect: t.Dialect, Schema: t.Schema, Snapshots: t.Snapshots, Notifications: notifications,
		OriginatorID: originatorID, Start: time.Now()}
	return t.Tracer.SelectStart(ctx, s), s
}
