// Package eventstore puts domain events into a recorder and gets them back: a Mapper plus a recorder.
//
// The repository, snapshots and projections are built on it; use it directly for event streams that are
// not aggregates, such as a log of IDs.
package eventstore

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/internal/option"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/observe"
)

// EventStore maps domain events to stored events and records them, and the reverse.
type EventStore struct {
	mapper   *mapper.Mapper
	recorder es.AggregateRecorder
	tracer   observe.EventStoreTracer // nil: none
}

// Option configures an EventStore.
type Option func(*EventStore)

// WithTracer tells t about the store's puts and gets (see package observe). Without it, or with nil,
// there is no tracer.
func WithTracer(t observe.EventStoreTracer) Option {
	return func(s *EventStore) { s.tracer = t }
}

// New returns an EventStore that encodes with m and records in r. Nil options are skipped.
func New(m *mapper.Mapper, r es.AggregateRecorder, opts ...Option) *EventStore {
	s := &EventStore{mapper: m, recorder: r}
	option.Apply(s, opts)
	s.tracer = observe.Use(s.tracer)
	return s
}

// Mapper returns the store's mapper.
func (s *EventStore) Mapper() *mapper.Mapper { return s.mapper }

// Recorder returns the store's recorder.
func (s *EventStore) Recorder() es.AggregateRecorder { return s.recorder }

// Put encodes events and records them in one InsertEvents call, so all of them are recorded or none is.
// It returns their notification IDs when the recorder keeps an application sequence.
//
// The events of each originator must follow on from one another in the order given (versions n, n+1,
// …): a batch that skips or repeats a version is refused with an error wrapping aggregate.ErrVersionGap
// before anything is encoded. (Whether the first of them follows on from what is recorded, the
// recorder checks: a version recorded already is a conflict.)
func (s *EventStore) Put(ctx context.Context, events []aggregate.Event, opts ...es.InsertOption) (_ []int64, err error) {
	if s.tracer != nil {
		p := observe.Put{Events: len(events), Start: time.Now()}
		ctx = s.tracer.PutStart(ctx, p)
		defer func() { p.Err = err; s.tracer.PutEnd(ctx, p) }()
	}
	if err := checkSequence(events); err != nil {
		return nil, fmt.Errorf("eventstore: put: %w", err)
	}
	stored := make([]es.StoredEvent, len(events))
	for i, e := range events {
		se, err := s.mapper.EncodeContext(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("eventstore: put: %w", err)
		}
		stored[i] = se
	}
	ids, err := s.recorder.InsertEvents(ctx, stored, opts...)
	if err != nil {
		return nil, fmt.Errorf("eventstore: put: %w", err)
	}
	return ids, nil
}

// checkSequence checks that the events of each originator follow on from one another. A batch of one
// originator needs no memory; the last version of each earlier run is remembered only when runs of
// several originators alternate.
func checkSequence(events []aggregate.Event) error {
	var ended map[uuid.UUID]int64 // last version of each run of events seen so far, once there are two runs
	for i := 1; i < len(events); i++ {
		e, prev := events[i], events[i-1]
		want := prev.OriginatorVersion + 1
		if e.OriginatorID != prev.OriginatorID {
			if ended == nil {
				ended = make(map[uuid.UUID]int64)
			}
			ended[prev.OriginatorID] = prev.OriginatorVersion
			v, ok := ended[e.OriginatorID]
			if !ok {
				continue
			}
			want = v + 1
		}
		if e.OriginatorVersion != want {
			return fmt.Errorf("%w: event %d of the batch is version %d of %s, where version %d was due",
				aggregate.ErrVersionGap, i+1, e.OriginatorVersion, e.OriginatorID, want)
		}
	}
	return nil
}

// Get returns the events of originatorID selected by q, decoded.
func (s *EventStore) Get(ctx context.Context, originatorID uuid.UUID, q es.EventQuery) ([]aggregate.Event, error) {
	return s.get(ctx, originatorID, q, nil)
}

// get is Get, decoding into dst's memory when it is large enough.
func (s *EventStore) get(ctx context.Context, originatorID uuid.UUID, q es.EventQuery, dst []aggregate.Event) (got []aggregate.Event, err error) {
	if s.tracer != nil {
		g := observe.Get{OriginatorID: originatorID, Start: time.Now()}
		ctx = s.tracer.GetStart(ctx, g)
		defer func() { g.Events, g.Err = len(got), err; s.tracer.GetEnd(ctx, g) }()
	}
	stored, err := s.recorder.SelectEvents(ctx, originatorID, q)
	if err != nil {
		return nil, fmt.Errorf("eventstore: get %s: %w", originatorID, err)
	}
	events := slices.Grow(dst[:0], len(stored))[:len(stored)]
	for i, se := range stored {
		e, err := s.mapper.DecodeContext(ctx, se)
		if err != nil {
			return nil, fmt.Errorf("eventstore: get %s: %w", originatorID, err)
		}
		events[i] = e
	}
	return events, nil
}

// DefaultPageSize is the page size of All when it is given none: large enough that reading a stream is
// not dominated by round trips, small enough that a page of decoded events stays small.
const DefaultPageSize = 1000

// Pages yields the events of originatorID after version after, up to version upTo (0: to the end), a
// page of at most pageSize at a time (DefaultPageSize when below 1), so that a long stream is read
// without holding it in memory. It stops at the first error, after yielding it. A page is the caller's
// until the next one is asked for: the next page reuses its memory.
func (s *EventStore) Pages(ctx context.Context, originatorID uuid.UUID, after, upTo int64, pageSize int) iter.Seq2[[]aggregate.Event, error] {
	if pageSize < 1 {
		pageSize = DefaultPageSize
	}
	return func(yield func([]aggregate.Event, error) bool) {
		var page []aggregate.Event
		for {
			var err error
			page, err = s.get(ctx, originatorID, es.EventQuery{After: after, UpTo: upTo, Limit: pageSize}, page)
			if err != nil {
				yield(nil, err)
				return
			}
			if len(page) > 0 && !yield(page, nil) {
				return
			}
			if len(page) < pageSize {
				return
			}
			after = page[len(page)-1].OriginatorVersion
		}
	}
}

// All yields the events of Pages one at a time.
func (s *EventStore) All(ctx context.Context, originatorID uuid.UUID, after, upTo int64, pageSize int) iter.Seq2[aggregate.Event, error] {
	return func(yield func(aggregate.Event, error) bool) {
		for page, err := range s.Pages(ctx, originatorID, after, upTo, pageSize) {
			if err != nil {
				yield(aggregate.Event{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
		}
	}
}
