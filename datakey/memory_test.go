package datakey_test

import (
	"context"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/datakey/datakeytest"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
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
	ctx := context.Background()
	ring := testRing(b)
	entries, err := benchkit.KeyEntries(ctx, ring, rewrapKeys)
	if err != nil {
		b.Fatal(err)
	}
	store := datakey.NewMemoryStore()
	for _, e := range entries {
		if _, err := store.Add(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	op, err := benchkit.RewrapOp("rewrap", store, ring, rewrapKeys)
	if err != nil {
		b.Fatal(err)
	}
	benchkit.Run(b, op, "keys")
}

// rewrapKeys is how many data keys BenchmarkRewrap rewraps per iteration.
const rewrapKeys = 100_000
