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

// StartAppend tells the tracer that an append of events (with opts) starts, and returns the context
// the append carries on with and the record that EndAppend completes.
func (t Tracing) StartAppend(ctx context.Context, events []es.StoredEvent, opts []es.InsertOption) (context.Context, observe.Append) {
	a := observe.Append{Dialect: t.Dialect, Schema: t.Schema, Snapshots: t.Snapshots, Events: len(events), Start: time.Now()}
	for _, e := range events {
		a.Bytes += len(e.State)
	}
	if tr := es.ApplyInsertOptions(opts...).Tracking; tr != nil {
		a.Consumer, a.Upstream = tr.Consumer, tr.Upstream
	}
	return t.Tracer.AppendStart(ctx, a), a
}

// EndAppend tells the tracer how the append of a ended.
func (t Tracing) EndAppend(ctx context.Context, a observe.Append, ids []int64, err error) {
	if n := len(ids); n > 0 {
		a.FirstNotificationID, a.LastNotificationID = ids[0], ids[n-1]
	}
	a.Err = err
	t.Tracer.AppendEnd(ctx, a)
}

// StartSelect tells the tracer that a read starts: of the notification log, or of the events of
// originatorID. It returns the context the read carries on with and the record that EndSelectEvents or
// EndSelectNotifications completes.
func (t Tracing) StartSelect(ctx context.Context, notifications bool, originatorID uuid.UUID) (context.Context, observe.Select) {
	s := observe.Select{Dialect: t.Dialect, Schema: t.Schema, Snapshots: t.Snapshots, Notifications: notifications,
		OriginatorID: originatorID, Start: time.Now()}
	return t.Tracer.SelectStart(ctx, s), s
}

// EndSelectEvents tells the tracer how a read of events ended.
func (t Tracing) EndSelectEvents(ctx context.Context, s observe.Select, events []es.StoredEvent, err error) {
	s.Events, s.Err = len(events), err
	for _, e := range events {
		s.Bytes += len(e.State)
	}
	t.Tracer.SelectEnd(ctx, s)
}

// EndSelectNotifications tells the tracer how a read of the notification log ended.
func (t Tracing) EndSelectNotifications(ctx context.Context, s observe.Select, ns []es.Notification, err error) {
	s.Events, s.Err = len(ns), err
	for _, n := range ns {
		s.Bytes += len(n.State)
	}
	if k := len(ns); k > 0 {
		s.FirstNotificationID, s.LastNotificationID = ns[0].ID, ns[k-1].ID
	}
	t.Tracer.SelectEnd(ctx, s)
}
