// The suites through pgx's stdlib driver, as the module's own tests run them, beside lib/pq.
package pgx_test

import (
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/eventsourcing-go/eventsourcing/drivertest"
)

func TestSuites(t *testing.T) { drivertest.Postgres(t, "pgx") }

// BenchmarkWakeUp: pgx's recorders hear of other recorders' appends through LISTEN/NOTIFY.
func BenchmarkWakeUp(b *testing.B) { drivertest.WakeUp(b, drivertest.PostgresDatabase(b, "pgx")) }

func BenchmarkAppend(b *testing.B) { drivertest.Append(b, drivertest.PostgresDatabase(b, "pgx")) }
