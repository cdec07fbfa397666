package datakey_test

import (
	"context"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/datakey/datakeytest"
	"github.com/eventsourcing-go/eventsourcing/memory"
)

func TestMemoryStore(t *testing.T) {
	datakeytest.Run(t, func(t *testing.T) datakeytest.Backend {
		return datakeytest.Backend{
			Store:     datakey.NewMemoryStore(),
			Events:    memory.NewProcessRecorder(),
			Snapshots: memory.NewAggregateRecorder(),
		}
	})
}

// BenchmarkRewrap rewraps 100,000 data keys in a MemoryStore.
func BenchmarkRewrap(b *testing.B) {
	ring := testRing(b)
	store := datakey.NewMemoryStore()
	for _, e := range datakeytest.Entries(b, ring, rewrapKeys) {
		if _, err := store.Add(context.Background(), e); err != nil {
			b.Fatal(err)
		}
	}
	datakeytest.BenchmarkRewrap(b, store, ring, rewrapKeys)
}

// rewrapKeys is how many data keys BenchmarkRewrap rewraps per iteration.
const rewrapKeys = 100_000
