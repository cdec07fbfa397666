package main

import (
	"context"
	"path/filepath"
	"testing"
)

// The example runs end to end on a SQLite file, twice on the same file with the same key ring, as a user
// keeping -db and ES_CIPHER_KEYS would.
func TestExampleRunsOnSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	const keys = "1:Sj6THKQnjKg5AE+RbNIq8L/LgD/WAuopnOF/vRauU+Y="
	for run := 1; run <= 2; run++ {
		if err := runExample(context.Background(), path, "", keys); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
}
