package datakey_test

import (
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
