package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Replica is a PostgreSQL primary and a hot standby streaming from it, each a cluster of its own on a
// free local port, made for one test and removed when it ends. The server at ES_POSTGRES_DSN is not
// involved.
type Replica struct {
	// Primary and Standby are the DSNs of the two servers (database postgres, user postgres).
	Primary, Standby string
}

// StartReplica makes a primary (wal_level replica) and a standby of it (pg_basebackup with a
// replication slot, then hot standby), using the PostgreSQL programs of ES_PG_BINDIR, of the directory
// of the initdb on PATH, or of the newest /usr/lib/postgresql/*/bin. The test is skipped, with a
// message, where those programs are missing, or when it runs as root and there is no user postgres to
// run them as (PostgreSQL refuses to run as root).
func StartReplica(t testing.TB) *Replica {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		t.Skipf("pgtest: no PostgreSQL programs to make a primary and a standby with: %v; set ES_PG_BINDIR", err)
	}
	var cred *syscall.Credential
	dir, err := os.MkdirTemp("", "es-replica-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("pgtest: running as root, and there is no user postgres to run the PostgreSQL programs as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pgtest: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	primary, standby := filepath.Join(dir, "primary"), filepath.Join(dir, "standby")
	primaryPort, standbyPort := freePort(t), freePort(t)
	for standbyPort == primaryPort {
		standbyPort = freePort(t)
	}

	run("initdb", "-D", primary, "-A", "trust", "-U", "postgres", "--no-sync")
	// Small and fast: nothing here needs to survive a crash.
	writeConf(t, filepath.Join(primary, "postgresql.conf"), map[string]string{
		"port":                    strconv.Itoa(primaryPort),
		"listen_addresses":        "'127.0.0.1'",
		"unix_socket_directories": "'" + dir + "'",
		"wal_level":               "replica",
		"max_wal_senders":         "4",
		"max_connections":         "60",
		"shared_buffers":          "32MB",
		"fsync":                   "off",
		"hot_standby":             "on",
	})
	stop := func(data string) {
		cmd := exec.Command(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		_ = cmd.Run() // not running is fine
	}
	run("pg_ctl", "-D", primary, "-l", filepath.Join(dir, "primary.log"), "-w", "-t", "60", "start")
	t.Cleanup(func() { stop(primary) })

	run("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(primaryPort), "-U", "postgres", "-D", standby,
		"-X", "stream", "-R", "-C", "-S", "es_test_standby", "--no-sync")
	writeConf(t, filepath.Join(standby, "postgresql.conf"), map[string]string{"port": strconv.Itoa(standbyPort)})
	run("pg_ctl", "-D", standby, "-l", filepath.Join(dir, "standby.log"), "-w", "-t", "60", "start")
	t.Cleanup(func() { stop(standby) })

	dsn := func(port int) string {
		return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	}
	r := &Replica{Primary: dsn(primaryPort), Standby: dsn(standbyPort)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := OpenDSN(t, r.Standby)
	for {
		var inRecovery bool
		err := db.QueryRowContext(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery)
		if err == nil && !inRecovery {
			t.Fatal("pgtest: the standby is not in recovery")
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("pgtest: the standby does not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

// WaitReplayed waits until the standby has replayed everything the primary had written when it was
// called.
func (r *Replica) WaitReplayed(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var lsn string
	if err := OpenDSN(t, r.Primary).QueryRowContext(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	standby := OpenDSN(t, r.Standby)
	for {
		var done bool
		err := standby.QueryRowContext(ctx, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&done)
		if err != nil {
			t.Fatalf("pgtest: waiting for the standby to replay %s: %v", lsn, err)
		}
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// OpenDSN returns a new *sql.DB on dsn (pgx stdlib driver), closed when the test ends. Unlike Open, it
// neither checks nor skips.
func OpenDSN(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("pgtest: open %s: %v", dsn, err)
	}
	// database/sql keeps 2 idle connections by default: concurrent tests and benchmarks would open and
	// close connections all the time.
	db.SetMaxIdleConns(32)
	t.Cleanup(func() { db.Close() })
	return db
}

// postgresBin finds the directory of initdb, pg_ctl and pg_basebackup.
func postgresBin() (string, error) {
	var candidates []string
	if d := os.Getenv("ES_PG_BINDIR"); d != "" {
		candidates = append(candidates, d)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		candidates = append(candidates, filepath.Dir(p))
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(versions, func(a, b string) int { return versionOf(b) - versionOf(a) })
	candidates = append(candidates, versions...)
	for _, d := range candidates {
		ok := true
		for _, p := range []string{"initdb", "pg_ctl", "pg_basebackup", "postgres"} {
			if _, err := os.Stat(filepath.Join(d, p)); err != nil {
				ok = false
				break
			}
		}
		if ok {
			return d, nil
		}
	}
	return "", fmt.Errorf("initdb, pg_ctl, pg_basebackup and postgres not found together in %v", candidates)
}

// versionOf returns the major version in a path /usr/lib/postgresql/<version>/bin, 0 if none.
func versionOf(bin string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return v
}

// writeConf appends settings to a postgresql.conf; later lines override earlier ones.
func writeConf(t testing.TB, path string, settings map[string]string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		if _, err := fmt.Fprintf(f, "%s = %s\n", k, settings[k]); err != nil {
			t.Fatal(err)
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on at the moment.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
