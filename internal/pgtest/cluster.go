package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Cluster is a PostgreSQL server of a test's own, made with initdb in a temporary directory and run on
// a free local port: for tests that stop, crash and restart a server, which they must never do to the
// shared one. It is stopped and removed when the test ends.
type Cluster struct {
	t      testing.TB
	bin    string   // the directory of initdb and pg_ctl
	runAs  []string // runuser -u postgres --, when running as root (initdb refuses root)
	owner  *[2]int  // the postgres user's uid and gid, when running as root
	dir    string
	data   string
	port   int
	logs   string
	params string // the server settings given to pg_ctl start
}

// NewCluster makes and starts a cluster. It skips the test, with a message, when the PostgreSQL server
// programs are not installed (PG_BIN names their directory; else the newest
// /usr/lib/postgresql/*/bin).
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := os.Getenv("PG_BIN")
	if bin == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
		if len(dirs) > 0 {
			bin = dirs[0]
		}
	}
	if _, err := os.Stat(filepath.Join(bin, "initdb")); bin == "" || err != nil {
		t.Skip("pgtest: initdb and pg_ctl not found (set PG_BIN to their directory): this test needs a PostgreSQL server of its own")
	}
	c := newCluster(t, bin)
	if out, err := c.command(filepath.Join(bin, "initdb"), "-D", c.data, "-U", "postgres", "-A", "trust", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	c.Start()
	return c
}

// Standby makes a hot standby of c on a cluster of its own (pg_basebackup, streaming through a
// replication slot) and starts it; it is stopped and removed when the test ends. It skips the test,
// with a message, when pg_basebackup is not installed beside initdb.
func (c *Cluster) Standby() *Cluster {
	c.t.Helper()
	basebackup := filepath.Join(c.bin, "pg_basebackup")
	if _, err := os.Stat(basebackup); err != nil {
		c.t.Skip("pgtest: pg_basebackup not found beside initdb: this test needs a standby of its own")
	}
	s := newCluster(c.t, c.bin)
	if out, err := s.command(basebackup, "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", "postgres", "-D", s.data,
		"-X", "stream", "-R", "-C", "-S", fmt.Sprintf("standby_%d", s.port), "--no-sync").CombinedOutput(); err != nil {
		c.t.Fatalf("pgtest: pg_basebackup: %v\n%s", err, out)
	}
	s.Start()
	return s
}

// newCluster prepares a cluster whose data directory is still to be made: a temporary directory that
// the server's user owns, a free port, and the clean-up.
func newCluster(t testing.TB, bin string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: bin}
	dir, err := os.MkdirTemp("", "es-pgcluster-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir, c.data, c.logs = dir, filepath.Join(dir, "data"), filepath.Join(dir, "server.log")
	t.Cleanup(func() {
		c.pgctl("stop", "-m", "immediate", "-w") // may be stopped already
		os.RemoveAll(dir)
	})
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("pgtest: running as root without a postgres user to run the server as")
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		c.owner = &[2]int{uid, gid}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	c.params = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", c.port, dir)
	return c
}

// WaitReplayed waits until c, a standby, has replayed everything that primary had written when it was
// called.
func (c *Cluster) WaitReplayed(primary *Cluster) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var lsn string
	if err := OpenDSN(c.t, primary.DSN()).QueryRowContext(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		c.t.Fatal(err)
	}
	standby := OpenDSN(c.t, c.DSN())
	for {
		var done bool
		if err := standby.QueryRowContext(ctx, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&done); err != nil {
			c.t.Fatalf("pgtest: waiting for the standby to replay %s: %v", lsn, err)
		}
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// version returns the major version in a path /usr/lib/postgresql/N/bin, 0 when there is none.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// DSN returns the data source name of the cluster's postgres database.
func (c *Cluster) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	c.must(c.pgctl("start", "-w", "-l", c.logs, "-o", c.params))
}

// Stop stops the server in the given mode (smart, fast or immediate: a crash, after which the next
// start recovers from the write-ahead log).
func (c *Cluster) Stop(mode string) {
	c.t.Helper()
	c.must(c.pgctl("stop", "-w", "-m", mode))
}

// StartInRecovery starts the server as a standby with no primary and hot_standby off: it recovers
// and stays in recovery, refusing connections with SQLSTATE 57P03 (as a server does during a long
// crash recovery), until Promote. It does not wait.
func (c *Cluster) StartInRecovery() {
	c.t.Helper()
	signal := filepath.Join(c.data, "standby.signal")
	if err := os.WriteFile(signal, nil, 0o600); err != nil {
		c.t.Fatal(err)
	}
	if c.owner != nil {
		if err := os.Chown(signal, c.owner[0], c.owner[1]); err != nil {
			c.t.Fatal(err)
		}
	}
	c.must(c.pgctl("start", "-W", "-l", c.logs, "-o", c.params+" -c hot_standby=off"))
}

// Promote ends the recovery StartInRecovery began and waits until the server accepts connections.
func (c *Cluster) Promote() {
	c.t.Helper()
	c.must(c.pgctl("promote", "-w"))
}

func (c *Cluster) pgctl(args ...string) ([]byte, error) {
	return c.command(filepath.Join(c.bin, "pg_ctl"), append([]string{"-D", c.data}, args...)...).CombinedOutput()
}

// command runs a server program as the user that may run it.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	all := append(slices.Clone(c.runAs), name)
	all = append(all, args...)
	return exec.Command(all[0], all[1:]...)
}

func (c *Cluster) must(out []byte, err error) {
	c.t.Helper()
	if err != nil {
		log, _ := os.ReadFile(c.logs)
		c.t.Fatalf("pgtest: cluster: %v\n%s\nserver log:\n%s", err, out, log)
	}
}
