package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// The subprocess test: a child process saves batches of one to three events from many goroutines at
// once (so that the writer commits them in groups) and prints each save once InsertEvents has
// returned; the parent kills it with SIGKILL at a random moment, three times on one file. Then every
// save the child acknowledged is in the file, every save is whole (an aggregate's versions run from 1
// without a gap: no batch was kept in part), and notification IDs are unique and follow each batch's
// order.

const (
	killChildEnv  = "SQLITE_KILL_TEST_FILE" // the database file of the child of TestKillDuringGroupCommit
	killWriters   = 12
	killMinAcks   = 150 // acknowledgements the parent reads before it picks its moment
	killAckPrefix = "ACK"
)

// TestKillChild is the child's side; it does nothing unless started by TestKillDuringGroupCommit.
func TestKillChild(t *testing.T) {
	path := os.Getenv(killChildEnv)
	if path == "" {
		t.Skip("run by TestKillDuringGroupCommit in a child process")
	}
	ctx := context.Background()
	r := newProcessRecorder(t, openMigrated(t, path))
	var out sync.Mutex
	var wg sync.WaitGroup
	for range killWriters {
		wg.Go(func() {
			id, v := uuid.New(), int64(0)
			for {
				n := 1 + rand.IntN(3)
				events := make([]es.StoredEvent, n)
				for i := range events {
					events[i] = es.StoredEvent{OriginatorID: id, OriginatorVersion: v + int64(i) + 1, Topic: "t", State: []byte("s")}
				}
				ids, err := r.InsertEvents(ctx, events)
				if err != nil {
					t.Errorf("insert: %v", err)
					return
				}
				v += int64(n)
				out.Lock()
				fmt.Printf("%s %s %d %s .\n", killAckPrefix, id, v, strings.Trim(fmt.Sprint(ids), "[]"))
				out.Unlock()
			}
		})
	}
	wg.Wait()
}

// ack is a save the child acknowledged: the aggregate's version after it, and its events' IDs.
type ack struct {
	id      uuid.UUID
	version int64
	ids     []int64
}

// parseAck reads a whole acknowledgement line; a line the kill cut short has no final ".".
func parseAck(line string) (ack, bool) {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != killAckPrefix || f[len(f)-1] != "." {
		return ack{}, false
	}
	id, err := uuid.Parse(f[1])
	if err != nil {
		return ack{}, false
	}
	v, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return ack{}, false
	}
	a := ack{id: id, version: v}
	for _, s := range f[3 : len(f)-1] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return ack{}, false
		}
		a.ids = append(a.ids, n)
	}
	return a, true
}

func TestKillDuringGroupCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "events.db")
	openMigrated(t, path) // migrated once, by the parent
	var acks []ack
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), killChildEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		read, killAt := 0, killMinAcks+rand.IntN(killMinAcks)
		for lines.Scan() {
			a, ok := parseAck(lines.Text())
			if !ok {
				continue
			}
			acks = append(acks, a)
			if read++; read == killAt {
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		if err := cmd.Wait(); err == nil || read < killAt {
			t.Fatalf("round %d: the child ended by itself (%v) after %d acknowledgements", round, err, read)
		}
	}
	db := openMigrated(t, path)
	check := newProcessRecorder(t, db)
	ctx := context.Background()
	for _, a := range acks {
		events, err := check.SelectEvents(ctx, a.id, es.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(events)) < a.version {
			t.Fatalf("aggregate %s: the child acknowledged version %d, the file holds %d events", a.id, a.version, len(events))
		}
	}
	notes, err := check.SelectNotifications(ctx, es.NotificationQuery{Limit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	versions := map[uuid.UUID]int64{}
	byID := map[int64]es.Notification{}
	for i, n := range notes {
		if i > 0 && n.ID <= notes[i-1].ID {
			t.Fatalf("notification %d after %d", n.ID, notes[i-1].ID)
		}
		if want := versions[n.OriginatorID] + 1; n.OriginatorVersion != want {
			t.Fatalf("aggregate %s: version %d after %d: a save was kept in part", n.OriginatorID, n.OriginatorVersion, want-1)
		}
		versions[n.OriginatorID] = n.OriginatorVersion
		byID[n.ID] = n
	}
	for _, a := range acks {
		for i, id := range a.ids {
			n, ok := byID[id]
			if want := a.version - int64(len(a.ids)) + int64(i) + 1; !ok || n.OriginatorID != a.id || n.OriginatorVersion != want {
				t.Fatalf("acknowledged notification %d (%s v%d) is %+v in the file", id, a.id, want, n)
			}
		}
	}
	var integrity string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity check: %q %v", integrity, err)
	}
	t.Logf("%d saves acknowledged over 3 kills; %d events in the file", len(acks), len(notes))
}
