// Package eventstore puts domain events into a recorder and gets them back: a Mapper plus a recorder.
//
// The repository, snapshots and projections are built on it; use it directly for event streams that are
// not aggregates, such as a log of IDs.
package eventstore

import (
	"context"
	"fmt"
	"iter"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// EventStore maps domain events to stored events and records them, and the reverse.
type EventStore struct {
	mapper   *mapper.Mapper
	recorder es.AggregateRecorder
}

// New returns an EventStore that encodes with m and records in r.
func New(m *mapper.Mapper, r es.AggregateRecorder) *EventStore {
	return &EventStore{mapper: m, recorder: r}
}

// Mapper returns the store's mapper.
func (s *EventStore) Mapper() *mapper.Mapper { return s.mapper }

// Recorder returns the store's recorder.
func (s *EventStore) Recorder() es.AggregateRecorder { return s.recorder }

// Put encodes events and records them in one InsertEvents call, so all of them are recorded or none is.
// It returns their notification IDs when the recorder keeps an application sequence.
func (s *EventStore) Put(ctx context.Context, events []aggregate.Event, opts ...es.InsertOption) ([]int64, error) {
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

// Get returns the events of originatorID selected by q, decoded.
func (s *EventStore) Get(ctx context.Context, originatorID uuid.UUID, q es.EventQuery) ([]aggregate.Event, error) {
	stored, err := s.recorder.SelectEvents(ctx, originatorID, q)
	if err != nil {
		return nil, fmt.Errorf("eventstore: get %s: %w", originatorID, err)
	}
	events := make([]aggregate.Event, len(stored))
	for i, se := range stored {
		e, err := s.mapper.DecodeContext(ctx, se)
		if err != nil {
			return nil, fmt.Errorf("eventstore: get %s: %w", originatorID, err)
		}
		events[i] = e
	}
	return events, nil
}

// All yields the events of originatorID from version after+1 on, in pages of pageSize, so a long stream
// is read without holding it in memory. It stops at the first error, after yielding it.
func (s *EventStore) All(ctx context.Context, originatorID uuid.UUID, after int64, pageSize int) iter.Seq2[aggregate.Event, error] {
	if pageSize < 1 {
		pageSize = 1000
	}
	return func(yield func(aggregate.Event, error) bool) {
		for {
			page, err := s.Get(ctx, originatorID, es.EventQuery{After: after, Limit: pageSize})
			if err != nil {
				yield(aggregate.Event{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
				after = e.OriginatorVersion
			}
			if len(page) < pageSize {
				return
			}
		}
	}
}
