package demo

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// The example runs end to end on a SQLite file, twice on the same file with the same key ring, as a user
// keeping -db and ES_CIPHER_KEYS would.
func TestExampleRunsOnSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	const keys = "1:Sj6THKQnjKg5AE+RbNIq8L/LgD/WAuopnOF/vRauU+Y="
	for run := 1; run <= 2; run++ {
		var out bytes.Buffer
		if err := Run(context.Background(), &out, Config{DB: path, Keys: keys}); err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, &out)
		}
	}
}

// Amounts are shown in one unit throughout, the refused withdrawal's error included.
func TestExampleShowsAmountsInOneUnit(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), &out, Config{DB: filepath.Join(t.TempDir(), "bank.db")}); err != nil {
		t.Fatalf("%v\n%s", err, &out)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "withdraw 50.00 from bob") {
			if !strings.Contains(line, "withdraw 50.00: bank: insufficient funds: balance 0.00") {
				t.Fatalf("the refusal shows amounts in another unit: %q", line)
			}
			return
		}
	}
	t.Fatalf("no refused withdrawal in the output:\n%s", &out)
}
