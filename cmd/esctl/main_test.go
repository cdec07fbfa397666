package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
)

// esctl runs the command line args and returns what it printed to stdout and stderr.
func esctl(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return esctlCtx(context.Background(), args...)
}

func esctlCtx(ctx context.Context, args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// seed records three events for each of ids in the SQLite store at path.
func seed(t *testing.T, path string, ids ...uuid.UUID) {
	t.Helper()
	withSQLite(t, path, func(db *sql.DB, rec *sqlite.ProcessRecorder) {
		for _, id := range ids {
			if _, err := rec.InsertEvents(context.Background(), events(id, 3)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func events(id uuid.UUID, n int) []es.StoredEvent {
	var batch []es.StoredEvent
	for v := int64(1); v <= int64(n); v++ {
		batch = append(batch, es.StoredEvent{OriginatorID: id, OriginatorVersion: v, Topic: fmt.Sprintf("test.E%d", v), State: []byte("state")})
	}
	return batch
}

// withSQLite runs fn with the SQLite store at path (migrated already) and its process recorder.
func withSQLite(t *testing.T, path string, fn func(*sql.DB, *sqlite.ProcessRecorder)) {
	t.Helper()
	ctx := context.Background()
	db, err := ncruces.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec, err := sqlite.NewProcessRecorder(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	fn(db, rec)
}

func migrated(t *testing.T, path string) string {
	t.Helper()
	if out, _, err := esctl(t, "migrate", "-dsn", path); err != nil || !strings.Contains(out, "migrated") {
		t.Fatalf("migrate: %q %v", out, err)
	}
	return path
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	src, dst := migrated(t, filepath.Join(dir, "src.db")), filepath.Join(dir, "dst.db")
	a, b := uuid.New(), uuid.New()
	seed(t, src, a, b)

	out, _, err := esctl(t, "info", "-dsn", src)
	if err != nil || !strings.Contains(out, "max notification ID:    6") || !strings.Contains(out, "events:                 6 (30 bytes") {
		t.Fatalf("info: %q %v", out, err)
	}
	out, _, err = esctl(t, "tail", "-dsn", src, "-after", "4")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.HasPrefix(out, "5\t"+b.String()+"\tv2\ttest.E2") {
		t.Fatalf("tail: %q %v", out, err)
	}
	out, _, err = esctl(t, "tail", "-dsn", src, "-topics", "test.E3")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "3\t"+a.String()) {
		t.Fatalf("tail -topics: %q %v", out, err)
	}
	out, _, err = esctl(t, "events", "-dsn", src, "-id", a.String())
	if err != nil || out != "v1\ttest.E1\t5 bytes\nv2\ttest.E2\t5 bytes\nv3\ttest.E3\t5 bytes\n" {
		t.Fatalf("events: %q %v", out, err)
	}
	out, _, err = esctl(t, "copy", "-dsn", src, "-to", dst, "-batch", "4")
	if err != nil || !strings.Contains(out, "copied 6 events (notification IDs kept), 0 snapshots, 0 tracking marks\n") {
		t.Fatalf("copy: %q %v", out, err)
	}
	sameLog(t, []string{src}, []string{dst})
	// Copying again finds nothing new.
	if out, _, err := esctl(t, "copy", "-dsn", src, "-to", dst); err != nil || !strings.Contains(out, "copied 0 events") {
		t.Fatalf("copy again: %q %v", out, err)
	}
}

// sameLog fails the test unless the notification logs of two stores are the same, IDs included. A
// store is its DSN, and its schema when it has one.
func sameLog(t *testing.T, a, b []string) {
	t.Helper()
	tail := func(store []string) []string {
		args := []string{"tail", "-after", "0", "-dsn", store[0]}
		if len(store) > 1 {
			args = append(args, "-schema", store[1])
		}
		return args
	}
	aLog, _, errA := esctl(t, tail(a)...)
	bLog, _, errB := esctl(t, tail(b)...)
	if errA != nil || errB != nil || aLog != bLog {
		t.Fatalf("the logs differ (%v, %v):\n%s\n%s", errA, errB, aLog, bLog)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.db")
	m := migrated(t, filepath.Join(dir, "m.db"))
	cases := map[string][]string{
		"no command":      {},
		"unknown command": {"frobnicate"},
		"no store":        {"info"},
		"missing file":    {"info", "-dsn", path},
		"bad id":          {"events", "-dsn", m, "-id", "nope"},
		"schema on file":  {"info", "-dsn", path, "-schema", "x"},
		"extra args":      {"info", "-dsn", path, "extra"},
		"unknown id":      {"events", "-dsn", m, "-id", uuid.NewString()},
		"bad -after":      {"tail", "-dsn", m, "-after", "-3"},
		"no target":       {"copy", "-dsn", m},
		"bad batch":       {"copy", "-dsn", m, "-to", filepath.Join(dir, "t.db"), "-batch", "0"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			if out, _, err := esctl(t, args...); err == nil {
				t.Fatalf("no error; output %q", out)
			}
		})
	}
}

// goCode is what an operator cannot run: Go calls in a message.
var goCode = regexp.MustCompile(`schema\.Migrate|\(ctx`)

// A read command given a path that is not a database creates nothing, and says how to make one.
func TestReadCommandsNeverCreateAFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.db")
	for _, args := range [][]string{
		{"info", "-dsn", missing},
		{"tail", "-dsn", missing},
		{"events", "-dsn", missing, "-id", uuid.NewString()},
		{"copy", "-dsn", missing, "-to", filepath.Join(dir, "target.db")},
	} {
		_, _, err := esctl(t, args...)
		if err == nil || !strings.Contains(err.Error(), "esctl migrate -dsn "+missing) || goCode.MatchString(err.Error()) {
			t.Errorf("%s: got %v, want an error pointing to esctl migrate", args[0], err)
		}
		if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s created %s", args[0], missing)
		}
	}

	// An existing file without the tables is not changed either.
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"info", "tail"} {
		_, _, err := esctl(t, cmd, "-dsn", empty)
		if err == nil || !strings.Contains(err.Error(), "esctl migrate -dsn "+empty) || goCode.MatchString(err.Error()) {
			t.Errorf("%s on an empty file: got %v", cmd, err)
		}
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
		t.Fatalf("the empty file was written to: %v %v", fi.Size(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("files appeared: %v", entries)
	}
}

// The commands that change a store without creating it (keys, tracking rebuild and adopt) refuse a
// missing file, creating nothing, and point to esctl migrate for a store without their tables.
func TestUpdateCommandsNeverCreateAFile(t *testing.T) {
	key, err := cipher.GenerateKey(256)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(keysEnv, "1:"+key)
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.db")
	commands := func(path string) [][]string {
		return [][]string{
			{"keys", "rotate", "-dsn", path},
			{"keys", "forget", "-dsn", path, "subject"},
			{"tracking", "rebuild", "-dsn", path, "-consumer", "c", "-upstream", "u"},
			{"tracking", "adopt", "-dsn", path, "-consumer", "c"},
		}
	}
	for _, args := range commands(missing) {
		_, _, err := esctl(t, args...)
		if err == nil || !strings.Contains(err.Error(), "no such database file") || goCode.MatchString(err.Error()) {
			t.Errorf("%s %s: got %v, want an error saying the file is missing", args[0], args[1], err)
		}
		if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s %s created %s", args[0], args[1], missing)
		}
	}

	// A file without the tables, and a store migrated before data keys existed, are not migrated
	// behind the operator's back: the error says what to run.
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	old := migrated(t, filepath.Join(dir, "old.db"))
	withSQLite(t, old, func(db *sql.DB, _ *sqlite.ProcessRecorder) {
		if _, err := db.Exec(`DROP TABLE data_keys`); err != nil {
			t.Fatal(err)
		}
	})
	for _, args := range append(commands(empty), commands(old)[:2]...) {
		path := args[3]
		_, _, err := esctl(t, args...)
		if err == nil || !strings.Contains(err.Error(), "esctl migrate -dsn "+path) || goCode.MatchString(err.Error()) {
			t.Errorf("%s %s on %s: got %v, want an error pointing to esctl migrate", args[0], args[1], filepath.Base(path), err)
		}
	}
}

func TestInfoShowsSchemaSnapshotsAndTracking(t *testing.T) {
	ctx := context.Background()
	path := migrated(t, filepath.Join(t.TempDir(), "s.db"))
	a := uuid.New()
	withSQLite(t, path, func(db *sql.DB, rec *sqlite.ProcessRecorder) {
		if _, err := rec.InsertEvents(ctx, events(a, 3), es.WithTracking(es.Tracking{Consumer: "invoicing", Upstream: "orders", NotificationID: 42})); err != nil {
			t.Fatal(err)
		}
		if err := rec.InsertTracking(ctx, es.Tracking{Consumer: "ledger", Upstream: "billing", NotificationID: 7}); err != nil {
			t.Fatal(err)
		}
		snaps, err := sqlite.NewSnapshotRecorder(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer snaps.Close()
		if _, err := snaps.InsertEvents(ctx, []es.StoredEvent{
			{OriginatorID: a, OriginatorVersion: 2, Topic: "test.Snap", State: []byte("0123456789")},
			{OriginatorID: a, OriginatorVersion: 3, Topic: "test.Snap", State: []byte("0123456789")},
		}); err != nil {
			t.Fatal(err)
		}
	})
	out, _, err := esctl(t, "info", "-dsn", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"store:                  " + path + ", SQLite\n",
		"schema:                 migration 3 (up to date)\n",
		"snapshots:              2 of 1 aggregate (20 bytes of state)\n",
		"tracking:               2 marks\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("info does not say %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^\s+ledger\s+billing\s+7$`).MatchString(out) || !regexp.MustCompile(`(?m)^\s+invoicing\s+orders\s+42$`).MatchString(out) {
		t.Errorf("info does not show the tracking marks:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^\s+test\.E1\s+1\s+5$`).MatchString(out) {
		t.Errorf("info does not show events per topic:\n%s", out)
	}
}

// Every flag's default appears once in a command's help.
func TestHelpShowsEachDefaultOnce(t *testing.T) {
	for _, cmd := range []string{"migrate", "info", "tail", "events", "copy", "tracking", "tracking rebuild", "tracking adopt",
		"keys rotate", "keys forget"} {
		_, help, err := esctl(t, append(strings.Fields(cmd), "-h")...)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(help, "\n  -dsn") {
			t.Fatalf("%s -h: %v, help %q", cmd, err, help)
		}
		// Each flag's block starts with "  -name"; its usage follows on indented lines.
		for _, block := range regexp.MustCompile(`(?m)^  -`).Split(help, -1)[1:] {
			if n := strings.Count(strings.ToLower(block), "default"); n > 1 {
				t.Errorf("%s -h: a flag shows %d defaults:\n  -%s", cmd, n, block)
			}
		}
	}
}

// A gap in the source's notification IDs (a deleted event) is kept in the copy: consumers' tracking
// marks stay valid.
func TestCopyKeepsNotificationIDs(t *testing.T) {
	dir := t.TempDir()
	src, dst := migrated(t, filepath.Join(dir, "src.db")), filepath.Join(dir, "dst.db")
	seed(t, src, uuid.New(), uuid.New(), uuid.New())
	withSQLite(t, src, func(db *sql.DB, _ *sqlite.ProcessRecorder) {
		if _, err := db.Exec(`DELETE FROM events WHERE notification_id IN (2, 3, 4)`); err != nil {
			t.Fatal(err)
		}
	})
	if out, _, err := esctl(t, "copy", "-dsn", src, "-to", dst, "-batch", "2"); err != nil || !strings.Contains(out, "copied 6 events") {
		t.Fatalf("copy: %q %v", out, err)
	}
	sameLog(t, []string{src}, []string{dst})
	out, _, _ := esctl(t, "tail", "-dsn", dst, "-after", "0")
	if !strings.HasPrefix(out, "1\t") || !strings.Contains(out, "\n5\t") || strings.Contains(out, "\n2\t") {
		t.Fatalf("the copy renumbered the log:\n%s", out)
	}
	// The target's own appends go on after the copied IDs.
	withSQLite(t, dst, func(_ *sql.DB, rec *sqlite.ProcessRecorder) {
		ids, err := rec.InsertEvents(context.Background(), events(uuid.New(), 1))
		if err != nil || ids[0] != 10 {
			t.Fatalf("the next append got %v, %v; want notification 10", ids, err)
		}
	})
}

// An interrupted copy leaves the target with the source's first events; the same command resumes.
func TestCopyResumesAfterInterruption(t *testing.T) {
	dir := t.TempDir()
	src, dst := migrated(t, filepath.Join(dir, "src.db")), filepath.Join(dir, "dst.db")
	seed(t, src, uuid.New(), uuid.New(), uuid.New(), uuid.New())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	// The progress bar's first output comes after the first batch commits: interrupt there.
	err := run(ctx, []string{"copy", "-dsn", src, "-to", dst, "-batch", "5"}, &out, writerFunc(func(p []byte) (int, error) {
		cancel()
		return len(p), nil
	}))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "run the same command again to resume") {
		t.Fatalf("interrupted copy: %v", err)
	}
	partial, _, _ := esctl(t, "tail", "-dsn", dst, "-after", "0")
	if n := strings.Count(partial, "\n"); n != 5 {
		t.Fatalf("the interrupted copy left %d events, want the first batch of 5:\n%s", n, partial)
	}
	o, _, err := esctl(t, "copy", "-dsn", src, "-to", dst, "-batch", "5")
	if err != nil || !strings.Contains(o, "resuming after notification 5") || !strings.Contains(o, "copied 7 events") {
		t.Fatalf("resumed copy: %q %v", o, err)
	}
	sameLog(t, []string{src}, []string{dst})

	// The source grows; copying again brings the new events only.
	seed(t, src, uuid.New())
	if o, _, err := esctl(t, "copy", "-dsn", src, "-to", dst); err != nil || !strings.Contains(o, "copied 3 events") {
		t.Fatalf("copy after the source grew: %q %v", o, err)
	}
	sameLog(t, []string{src}, []string{dst})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A target with events of its own is refused, and left as it was.
func TestCopyRefusesAForeignTarget(t *testing.T) {
	dir := t.TempDir()
	src, dst := migrated(t, filepath.Join(dir, "src.db")), migrated(t, filepath.Join(dir, "dst.db"))
	seed(t, src, uuid.New(), uuid.New())
	seed(t, dst, uuid.New())
	before, _, _ := esctl(t, "tail", "-dsn", dst, "-after", "0")
	_, _, err := esctl(t, "copy", "-dsn", src, "-to", dst)
	if !errors.Is(err, errTargetChanged) || !strings.Contains(err.Error(), "copy into an empty store") {
		t.Fatalf("got %v, want a refusal", err)
	}
	if after, _, _ := esctl(t, "tail", "-dsn", dst, "-after", "0"); after != before {
		t.Fatalf("the refused copy changed the target:\n%s\n%s", before, after)
	}
}

// Snapshots and tracking marks are copied with the events; the progress bars show rate and time left.
func TestCopyCopiesSnapshotsAndTracking(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, dst := migrated(t, filepath.Join(dir, "src.db")), filepath.Join(dir, "dst.db")
	a := uuid.New()
	withSQLite(t, src, func(db *sql.DB, rec *sqlite.ProcessRecorder) {
		if _, err := rec.InsertEvents(ctx, events(a, 3), es.WithTracking(es.Tracking{Consumer: "consumer", Upstream: "upstream", NotificationID: 9})); err != nil {
			t.Fatal(err)
		}
		snaps, err := sqlite.NewSnapshotRecorder(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer snaps.Close()
		for v := int64(1); v <= 3; v++ {
			if _, err := snaps.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: a, OriginatorVersion: v, Topic: "test.Snap", State: []byte("s")}}); err != nil {
				t.Fatal(err)
			}
		}
	})
	out, progress, err := esctl(t, "copy", "-dsn", src, "-to", dst, "-batch", "2")
	if err != nil || !strings.Contains(out, "copied 3 events (notification IDs kept), 3 snapshots, 1 tracking mark\n") {
		t.Fatalf("copy: %q %v", out, err)
	}
	for _, want := range []string{"3/3", "events/s", "snapshots/s"} {
		if !strings.Contains(progress, want) {
			t.Errorf("the progress output does not show %q:\n%q", want, progress)
		}
	}
	if !regexp.MustCompile(`events .*\[\d+s:\d+s\]`).MatchString(progress) {
		t.Errorf("the progress output shows no time left:\n%q", progress)
	}
	info, _, err := esctl(t, "info", "-dsn", dst)
	if err != nil || !strings.Contains(info, "snapshots:              3 of 1 aggregate ") || !regexp.MustCompile(`(?m)^\s+consumer\s+upstream\s+9$`).MatchString(info) {
		t.Fatalf("the target's info: %v\n%s", err, info)
	}
	// Run again: the target has every snapshot, and the count says that none was copied this time.
	out, progress, err = esctl(t, "copy", "-quiet", "-dsn", src, "-to", dst)
	if progress != "" {
		t.Fatalf("-quiet printed progress: %q", progress)
	}
	if err != nil || !strings.Contains(out, "copied 0 events (notification IDs kept), 0 snapshots, 1 tracking mark\n") {
		t.Fatalf("copy again: %q %v", out, err)
	}
}

// Passwords never appear in what esctl prints, errors included.
func TestPasswordsAreRedacted(t *testing.T) {
	const secret = "s3cret-pw"
	for _, dsn := range []string{
		"postgres://esctl:" + secret + "@127.0.0.1:1/nowhere?connect_timeout=5",
		"postgres://esctl@127.0.0.1:1/nowhere?password=" + secret + "&connect_timeout=5",
	} {
		for _, args := range [][]string{{"info", "-dsn", dsn}, {"migrate", "-dsn=" + dsn}, {"copy", "-dsn", dsn, "-to", filepath.Join(t.TempDir(), "x.db")}} {
			out, errOut, err := esctl(t, args...)
			if err == nil {
				t.Fatalf("%s: no error from an unreachable server", args[0])
			}
			if strings.Contains(out+errOut+err.Error(), secret) {
				t.Errorf("%s printed the password: %v", args[0], err)
			}
		}
	}
	for dsn, want := range map[string]string{
		"postgres://u:" + secret + "@h/db":                     "postgres://u:xxxxx@h/db",
		"postgres://u@h/db?sslpassword=" + secret + "&x=1":     "postgres://u@h/db?sslpassword=xxxxx&x=1",
		"host=h password=" + secret + " dbname=x":              "host=h password=xxxxx dbname=x",
		"host=h password='" + secret + " with space' dbname=x": "host=h password=xxxxx dbname=x",
		"bank.db": "bank.db",
	} {
		if got := redactDSN(dsn); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", dsn, got, want)
		}
	}
}

// A keyword/value PostgreSQL DSN (host=… dbname=…), which pgx accepts elsewhere, is not taken for a
// SQLite file: migrate made a file of that name (password included) and reported success.
func TestKeywordDSNIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	dsn := "host=127.0.0.1 user=postgres password=hunter2 dbname=test"
	for _, args := range [][]string{
		{"migrate", "-dsn", dsn},
		{"info", "-dsn", dsn},
		{"copy", "-dsn", migrated(t, filepath.Join(dir, "src.db")), "-to", dsn},
	} {
		out, _, err := esctl(t, args...)
		if err == nil || !strings.Contains(err.Error(), "postgres://") || strings.Contains(err.Error()+out, "hunter2") {
			t.Errorf("%s: got %q, %v; want an error asking for a postgres:// URL, without the password", args[0], out, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "host=") {
			t.Fatalf("a file named after the DSN appeared: %q", e.Name())
		}
	}
}

// A SQLite file in rollback-journal mode, as the goose command-line tool leaves one, is read as it is:
// the reading commands cannot switch it to WAL mode through their read-only connection.
func TestReadCommandsOnAFileWithoutWAL(t *testing.T) {
	path := migrated(t, filepath.Join(t.TempDir(), "journal.db"))
	seed(t, path, uuid.New())
	withSQLite(t, path, func(db *sql.DB, rec *sqlite.ProcessRecorder) {
		rec.Close() // its writer connection is the pool's: let the pragma below have the file alone
		if _, err := db.Exec(`PRAGMA journal_mode = DELETE`); err != nil {
			t.Fatal(err)
		}
	})
	for _, args := range [][]string{{"info"}, {"tail"}, {"tracking"}} {
		out, _, err := esctl(t, append(args, "-dsn", path)...)
		if err != nil {
			t.Errorf("%s: %v", args[0], err)
		}
		if args[0] == "tail" && strings.Count(out, "\n") != 3 {
			t.Errorf("tail: %q, want 3 events", out)
		}
	}
}

// A directory given as a SQLite file is named as such, not reported as a disk I/O error.
func TestDirectoryIsNotADatabase(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"info", "-dsn", dir},
		{"tail", "-dsn", dir},
		{"keys", "forget", "-dsn", dir, "subject"},
	} {
		_, _, err := esctl(t, args...)
		if err == nil || !strings.Contains(err.Error(), "is a directory") {
			t.Errorf("%s: got %v, want an error saying it is a directory", args[0], err)
		}
	}
}

// Help asked for is not a failure: 'esctl migrate -h' exits 0, as 'esctl -h' does and as the flag
// package's own ExitOnError has it; a usage error exits 2.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"migrate", "-h"}, {"tracking", "rebuild", "-help"}, {"keys", "-h"}} {
		_, _, err := esctl(t, args...)
		if code := exitCode(err); code != 0 {
			t.Errorf("%v: exit code %d, want 0 (%v)", args, code, err)
		}
	}
	for _, args := range [][]string{{}, {"migrate", "-nope"}, {"info"}} {
		_, _, err := esctl(t, args...)
		if code := exitCode(err); code != 2 {
			t.Errorf("%v: exit code %d, want 2 (%v)", args, code, err)
		}
	}
}
