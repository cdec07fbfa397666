// The suites through pgx's stdlib driver, as the module's own tests run them, beside lib/pq.
package pgx_test

import (
	"net/url"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/eventsourcing-go/eventsourcing/drivertest"
)

func TestSuites(t *testing.T) { drivertest.Postgres(t, "pgx") }

// TestQueryExecModes runs the suites with pgx's other ways of sending a query: without preparing it
// (exec, as behind a connection pooler in transaction mode), and with its arguments written into its
// text (simple_protocol). Neither tells the driver the types of the parameters, so every argument
// must be of a Go type that pgx can send without them.
func TestQueryExecModes(t *testing.T) {
	for _, mode := range []string{"exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			drivertest.PostgresWithParams(t, "pgx", url.Values{"default_query_exec_mode": {mode}})
		})
	}
}

// BenchmarkWakeUp: pgx's recorders hear of other recorders' appends through LISTEN/NOTIFY.
func BenchmarkWakeUp(b *testing.B) { drivertest.WakeUp(b, drivertest.PostgresDatabase(b, "pgx")) }

func BenchmarkAppend(b *testing.B) { drivertest.Append(b, drivertest.PostgresDatabase(b, "pgx")) }
