package memory

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// chunkSize is the number of events per chunk of the log. Chunks never move once full, so the log grows
// without copying what it holds.
const (
	chunkBits = 10
	chunkSize = 1 << chunkBits
)

// store holds events in the order they were recorded (the log) and, per originator, the positions of its
// events in version order. Position i is notification ID i+1. Recorded events are never modified; their
// states are owned by the store. The zero value is empty.
type store struct {
	chunks  [][]es.StoredEvent // position i is chunks[i>>chunkBits][i&(chunkSize-1)]
	len     int64
	streams map[uuid.UUID][]int64 // positions, sorted by the version of the event they hold
}

// at returns the event at position i < s.len.
func (s *store) at(i int64) *es.StoredEvent {
	return &s.chunks[i>>chunkBits][i&(chunkSize-1)]
}

// find returns where version is, or would be, in ps (the positions of one originator), and whether it is
// there.
func (s *store) find(ps []int64, version int64) (int, bool) {
	if n := len(ps); n == 0 || s.at(ps[n-1]).OriginatorVersion < version {
		return n, false // the usual case: a version after the last
	}
	return slices.BinarySearchFunc(ps, version, func(p, v int64) int { return cmp.Compare(s.at(p).OriginatorVersion, v) })
}

// conflict reports the first event of batch whose version is recorded already or appears twice in batch.
func (s *store) conflict(batch []es.StoredEvent) error {
	for _, e := range batch {
		if _, found := s.find(s.streams[e.OriginatorID], e.OriginatorVersion); found {
			return fmt.Errorf("memory: insert events: originator %s version %d: %w", e.OriginatorID, e.OriginatorVersion, es.ErrConflict)
		}
	}
	if e, dup := duplicate(batch); dup {
		return fmt.Errorf("memory: insert events: originator %s version %d appears twice in the batch: %w", e.OriginatorID, e.OriginatorVersion, es.ErrConflict)
	}
	return nil
}

// add appends batch, which must not conflict, to the log, taking the states from buf (the concatenated
// states of batch), and calls f with each new position.
func (s *store) add(batch []es.StoredEvent, buf []byte, f func(i int, pos int64)) {
	if s.streams == nil {
		s.streams = make(map[uuid.UUID][]int64)
	}
	for i, e := range batch {
		if e.State != nil {
			n := len(e.State)
			e.State, buf = buf[:n:n], buf[n:]
		}
		pos := s.len
		if pos&(chunkSize-1) == 0 {
			// The first chunk grows as needed, so that small recorders stay small; later ones are full-size.
			size := chunkSize
			if pos == 0 {
				size = min(chunkSize, max(len(batch), 16))
			}
			s.chunks = append(s.chunks, make([]es.StoredEvent, 0, size))
		}
		c := s.chunks[len(s.chunks)-1]
		if len(c) == cap(c) { // grow the last chunk, never beyond chunkSize
			c = append(make([]es.StoredEvent, 0, min(chunkSize, 2*cap(c))), c...)
		}
		s.chunks[len(s.chunks)-1] = append(c, e)
		s.len++

		ps := s.streams[e.OriginatorID]
		if k, _ := s.find(ps, e.OriginatorVersion); k == len(ps) {
			s.streams[e.OriginatorID] = append(ps, pos)
		} else {
			s.streams[e.OriginatorID] = slices.Insert(ps, k, pos)
		}
		if f != nil {
			f(i, pos)
		}
	}
}

// selectEvents returns the events of id matching q, with copies of their states.
func (s *store) selectEvents(id uuid.UUID, q es.EventQuery) []es.StoredEvent {
	ps := s.streams[id]
	lo, hi := 0, len(ps)
	if q.After > 0 {
		lo, _ = s.find(ps, q.After+1)
	}
	if q.UpTo != 0 {
		hi, _ = s.find(ps, q.UpTo+1)
	}
	if lo >= hi {
		return nil
	}
	n := hi - lo
	if q.Limit > 0 && q.Limit < n {
		n = q.Limit
	}
	if q.Desc {
		lo = hi - n
	}
	ps = ps[lo : lo+n]
	total := 0
	for _, p := range ps {
		total += len(s.at(p).State)
	}
	buf := make([]byte, total)
	out := make([]es.StoredEvent, n)
	for i, p := range ps {
		if q.Desc {
			i = n - 1 - i
		}
		e := s.at(p)
		out[i] = *e
		if e.State != nil {
			k := copy(buf, e.State)
			out[i].State, buf = buf[:k:k], buf[k:]
		}
	}
	return out
}

// concatStates copies the states of events into one new buffer.
func concatStates(events []es.StoredEvent) []byte {
	total := 0
	for _, e := range events {
		total += len(e.State)
	}
	buf := make([]byte, 0, total)
	for _, e := range events {
		buf = append(buf, e.State...)
	}
	return buf
}

// duplicate finds an originator version that appears twice in batch.
func duplicate(batch []es.StoredEvent) (es.StoredEvent, bool) {
	if len(batch) <= 16 {
		for i := 1; i < len(batch); i++ {
			for j := range i {
				if batch[i].OriginatorVersion == batch[j].OriginatorVersion && batch[i].OriginatorID == batch[j].OriginatorID {
					return batch[i], true
				}
			}
		}
		return es.StoredEvent{}, false
	}
	type key struct {
		id      uuid.UUID
		version int64
	}
	seen := make(map[key]struct{}, len(batch))
	for _, e := range batch {
		k := key{e.OriginatorID, e.OriginatorVersion}
		if _, ok := seen[k]; ok {
			return e, true
		}
		seen[k] = struct{}{}
	}
	return es.StoredEvent{}, false
}
