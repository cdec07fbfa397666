package projection

import (
	"context"
	"fmt"
	"maps"
	"sync"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
)

var _ TrackingStore[*MemoryTx[string, int]] = (*MemoryStore[string, int])(nil)

// MemoryStore is a TrackingStore in memory: a read model of keys and values, and the tracking marks of
// the projections that write it, changed together by transactions. It is for tests, examples and read
// models that are rebuilt from the upstream log at every start (a new MemoryStore has no marks, so its
// runners start from the first notification).
//
// A transaction's writes are buffered in its MemoryTx and applied, with the tracking record, under one
// lock when it commits, so readers see a read model that is always at a batch boundary, never half a
// batch. Values are stored as given: store values, or pointers that are never modified after Put,
// since a value read with Get is shared.
//
// The zero MemoryStore is not usable; make one with NewMemoryStore.
type MemoryStore[K comparable, V any] struct {
	process sync.Mutex // serialises transactions, so that one's reads see all earlier commits

	mu       sync.RWMutex
	data     map[K]V
	tracking recorder.Marks
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore[K comparable, V any]() *MemoryStore[K, V] {
	return &MemoryStore[K, V]{data: make(map[K]V), tracking: make(recorder.Marks)}
}

// MemoryTx is a transaction on a MemoryStore: reads see the store with the transaction's own writes.
// It is valid only during the function given to Process.
type MemoryTx[K comparable, V any] struct {
	store   *MemoryStore[K, V]
	writes  map[K]write[V]
	cleared bool // Clear was called: reads see only the transaction's own writes
}

type write[V any] struct {
	value   V
	deleted bool
}

// Get returns the value of key.
func (tx *MemoryTx[K, V]) Get(key K) (V, bool) {
	if w, ok := tx.writes[key]; ok {
		return w.value, !w.deleted
	}
	if tx.cleared {
		var zero V
		return zero, false
	}
	return tx.store.Get(key)
}

// Put sets the value of key.
func (tx *MemoryTx[K, V]) Put(key K, value V) { tx.writes[key] = write[V]{value: value} }

// Delete removes key.
func (tx *MemoryTx[K, V]) Delete(key K) { tx.writes[key] = write[V]{deleted: true} }

// Clear removes every key: the reset of a read model (see WithReset).
func (tx *MemoryTx[K, V]) Clear() {
	clear(tx.writes)
	tx.cleared = true
}

// MaxTrackingID returns the mark of consumer for upstream, 0 when nothing is tracked.
func (s *MemoryStore[K, V]) MaxTrackingID(ctx context.Context, consumer, upstream string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("projection: memory store: max tracking ID: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tracking[recorder.TrackingKey{Consumer: consumer, Upstream: upstream}], nil
}

// DeleteTracking removes the mark of consumer for upstream.
func (s *MemoryStore[K, V]) DeleteTracking(ctx context.Context, consumer, upstream string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("projection: memory store: delete tracking: %w", err)
	}
	s.process.Lock()
	defer s.process.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tracking, recorder.TrackingKey{Consumer: consumer, Upstream: upstream})
	return nil
}

// TrackingMarks returns every mark, ordered by consumer and upstream.
func (s *MemoryStore[K, V]) TrackingMarks() []es.Tracking {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tracking.Sorted()
}

// Process runs fn in a transaction and commits its writes together with t. When the mark is not
// t.Prior it fails with an error wrapping eventsourcing.ErrConflict without calling fn. When fn fails
// or panics, or ctx has ended by the time fn returns (as a SQL transaction would be rolled back),
// nothing is committed.
func (s *MemoryStore[K, V]) Process(ctx context.Context, t es.Tracking, fn func(ctx context.Context, tx *MemoryTx[K, V]) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("projection: memory store: process: %w", err)
	}
	s.process.Lock()
	defer s.process.Unlock()
	s.mu.RLock()
	err := s.tracking.Check(t)
	s.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("projection: memory store: %w", err)
	}
	tx := &MemoryTx[K, V]{store: s, writes: make(map[K]write[V])}
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("projection: memory store: commit: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if tx.cleared {
		clear(s.data)
	}
	for k, w := range tx.writes {
		if w.deleted {
			delete(s.data, k)
		} else {
			s.data[k] = w.value
		}
	}
	s.tracking[recorder.TrackingKey{Consumer: t.Consumer, Upstream: t.Upstream}] = t.NotificationID
	tx.writes = nil
	return nil
}

// Get returns the committed value of key.
func (s *MemoryStore[K, V]) Get(key K) (V, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.data[key]
	return v, ok
}

// Snapshot returns a copy of the committed read model.
func (s *MemoryStore[K, V]) Snapshot() map[K]V {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.data)
}

// Len returns the number of keys in the committed read model.
func (s *MemoryStore[K, V]) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.data)
}
