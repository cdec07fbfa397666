package datakey

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a Store in memory, for tests and for programs whose events live in memory too. It is
// safe for concurrent use; the zero MemoryStore is empty and ready to use.
type MemoryStore struct {
	mu      sync.Mutex
	entries map[string]Entry
	sorted  []string // the subjects in order; nil when an Add has not been sorted in yet
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return new(MemoryStore) }

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, subject string) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[subject]
	if !ok {
		return Entry{}, ErrNoKey
	}
	return e.clone(), nil
}

// Add implements Store.
func (s *MemoryStore) Add(ctx context.Context, e Entry) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.entries[e.Subject]; ok {
		return old.clone(), nil
	}
	e = e.clone()
	s.put(e)
	return e.clone(), nil
}

// Forget implements Store.
func (s *MemoryStore) Forget(ctx context.Context, subject string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.entries[subject]; ok && old.Forgotten() {
		return nil
	}
	s.put(Entry{Subject: subject, ForgottenAt: time.Now().UTC()})
	return nil
}

// List implements Store.
func (s *MemoryStore) List(ctx context.Context, after string, limit int) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, fmt.Errorf("datakey: list: limit %d: must not be negative", limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sorted == nil {
		s.sorted = make([]string, 0, len(s.entries))
		for k := range s.entries {
			s.sorted = append(s.sorted, k)
		}
		slices.Sort(s.sorted)
	}
	i, found := slices.BinarySearch(s.sorted, after)
	if found {
		i++
	}
	out := make([]Entry, 0, min(limit, len(s.sorted)-i))
	for ; i < len(s.sorted) && len(out) < limit; i++ {
		out = append(out, s.entries[s.sorted[i]].clone())
	}
	return out, nil
}

// Rewrap implements Store.
func (s *MemoryStore) Rewrap(ctx context.Context, keys []Rewrapped) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, k := range keys {
		old, ok := s.entries[k.Subject]
		if !ok || old.Forgotten() || old.KeyID != k.PreviousKeyID {
			continue
		}
		s.entries[k.Subject] = Entry{Subject: k.Subject, KeyID: k.KeyID, Wrapped: bytes.Clone(k.Wrapped)}
		n++
	}
	return n, nil
}

// put records e; the caller holds the lock.
func (s *MemoryStore) put(e Entry) {
	if s.entries == nil {
		s.entries = make(map[string]Entry)
	}
	if _, ok := s.entries[e.Subject]; !ok {
		s.sorted = nil
	}
	s.entries[e.Subject] = e
}

func (e Entry) clone() Entry {
	e.Wrapped = bytes.Clone(e.Wrapped)
	return e
}
