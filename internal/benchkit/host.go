package benchkit

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Host describes the machine for a report: its processor, memory and operating system, as Linux's
// /proc tells (elsewhere the architecture, "unknown" and the operating system's name).
func Host() (cpu, memory, osName string) {
	cpu, memory, osName = runtime.GOARCH, "unknown", runtime.GOOS
	if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindStringSubmatch(readFile("/proc/cpuinfo")); m != nil {
		cpu = strings.TrimSpace(m[1])
	}
	if f := strings.Fields(readFile("/proc/meminfo")); len(f) > 1 && f[0] == "MemTotal:" {
		if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
			memory = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	if v := strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")); v != "" {
		osName = "Linux " + v
	}
	return cpu, memory, osName
}

// LoadAvg returns the machine's load averages over 1, 5 and 15 minutes, "unknown" where /proc does not
// tell.
func LoadAvg() string {
	if f := strings.Fields(readFile("/proc/loadavg")); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

func readFile(name string) string {
	b, _ := os.ReadFile(name)
	return string(b)
}

// SQLiteVersion returns the version of SQLite behind db, "unknown" if it cannot tell. It takes the
// database rather than opening one so that this package loads no SQLite driver: a program that links
// another driver registering "sqlite3" (mattn's, in the driver matrix) must not meet ncruces's as well.
func SQLiteVersion(ctx context.Context, db *sql.DB) string {
	v := "unknown"
	if err := db.QueryRowContext(ctx, "select sqlite_version()").Scan(&v); err != nil {
		return "unknown"
	}
	return v
}

// PostgresServer describes the server of db: its version and the settings that decide what a commit
// costs.
func PostgresServer(ctx context.Context, db *sql.DB) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var v, sc, fs string
	if err := db.QueryRowContext(ctx, "SHOW server_version").Scan(&v); err != nil {
		v = "unknown (" + err.Error() + ")"
	}
	_ = db.QueryRowContext(ctx, "SHOW synchronous_commit").Scan(&sc)
	_ = db.QueryRowContext(ctx, "SHOW fsync").Scan(&fs)
	return fmt.Sprintf("%s (synchronous_commit=%s, fsync=%s)", v, sc, fs)
}

// OpenPostgres opens dsn with the pgx driver and pings it: a few attempts, about five seconds in all,
// since a busy server may miss one. Every connection gets a connect timeout (30 s unless the DSN sets
// one), so that a server that stops answering fails a measurement instead of hanging it.
func OpenPostgres(ctx context.Context, dsn string) (*sql.DB, error) {
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if pc.ConnectTimeout == 0 {
		pc.ConnectTimeout = 30 * time.Second
	}
	db := stdlib.OpenDB(*pc)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err == nil {
			return db, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			db.Close()
			return nil, err
		}
	}
}
