package sqlite_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// The recorders read a page's states into shared blocks of memory: each state read back is its own,
// as written (nil and empty ones too), and appending to one leaves the others as they were.
func TestReadStatesAreSeparate(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		db := open(t)
		r, snaps := newProcessRecorder(t, db), newSnapshotRecorder(t, db)
		id := uuid.New()
		states := [][]byte{[]byte("one"), nil, {}, bytes.Repeat([]byte("x"), 10_000), []byte("five")}
		var written []es.StoredEvent
		for i, s := range states {
			written = append(written, es.StoredEvent{OriginatorID: id, OriginatorVersion: int64(i + 1), Topic: "T", State: s})
		}
		if _, err := r.InsertEvents(t.Context(), written); err != nil {
			t.Fatal(err)
		}
		if _, err := snaps.InsertEvents(t.Context(), written); err != nil {
			t.Fatal(err)
		}
		check := func(what string, got [][]byte) {
			t.Helper()
			if len(got) != len(states) {
				t.Fatalf("%s: %d states, want %d", what, len(got), len(states))
			}
			for i, s := range got {
				if !bytes.Equal(s, states[i]) || (s == nil) != (states[i] == nil) {
					t.Errorf("%s: state %d is %q (nil: %t), want %q (nil: %t)", what, i, s, s == nil, states[i], states[i] == nil)
				}
			}
			for i := range got {
				got[i] = append(got[i], "appended"...)
			}
			for i, s := range got {
				if want := string(states[i]) + "appended"; string(s) != want {
					t.Errorf("%s: after appending to every state, state %d is %q, want %q", what, i, s, want)
				}
			}
		}
		for name, rec := range map[string]es.AggregateRecorder{"events": r, "snapshots": snaps} {
			evs, err := rec.SelectEvents(t.Context(), id, es.EventQuery{})
			if err != nil {
				t.Fatal(err)
			}
			var got [][]byte
			for _, e := range evs {
				got = append(got, e.State)
			}
			check(name, got)
		}
		ns, err := r.SelectNotifications(t.Context(), es.NotificationQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for _, n := range ns {
			if n.OriginatorID != id || n.Topic != "T" {
				t.Errorf("notification %d: originator %s, topic %q; want %s, %q", n.ID, n.OriginatorID, n.Topic, id, "T")
			}
			got = append(got, n.State)
		}
		check("notifications", got)
	})
}

// Topics read back as written, whether a page has one topic or many, more than the recorders keep
// one string each for.
func TestReadTopics(t *testing.T) {
	db := openFile(t)
	r := newProcessRecorder(t, db)
	id := uuid.New()
	var written []es.StoredEvent
	for v := int64(1); v <= 100; v++ {
		topic := "Topic" + strings.Repeat("!", int(v%7)) // runs and repeats
		if v > 50 {
			topic = "Other" + strings.Repeat("?", int(v-50)) // each its own
		}
		written = append(written, es.StoredEvent{OriginatorID: id, OriginatorVersion: v, Topic: topic, State: []byte{byte(v)}})
	}
	if _, err := r.InsertEvents(t.Context(), written); err != nil {
		t.Fatal(err)
	}
	for _, desc := range []bool{false, true} {
		got, err := r.SelectEvents(t.Context(), id, es.EventQuery{Desc: desc})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(written) {
			t.Fatalf("desc %t: %d events, want %d", desc, len(got), len(written))
		}
		for i, e := range got {
			w := written[i]
			if desc {
				w = written[len(written)-1-i]
			}
			if e.OriginatorVersion != w.OriginatorVersion || e.Topic != w.Topic || !bytes.Equal(e.State, w.State) {
				t.Errorf("desc %t: event %d is (%d, %q, %v), want (%d, %q, %v)", desc, i, e.OriginatorVersion, e.Topic, e.State, w.OriginatorVersion, w.Topic, w.State)
			}
		}
	}
}

// A row whose originator ID is not 16 bytes (the table's CHECK refuses one, short of writing to the
// file without it) fails the read of the notification log with an error that names it, rather than a
// panic or a wrong ID.
func TestMalformedOriginatorID(t *testing.T) {
	db := openFile(t)
	r := newProcessRecorder(t, db)
	if _, err := r.InsertEvents(t.Context(), []es.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "T"}}); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		`PRAGMA ignore_check_constraints = ON`,
		`INSERT INTO events (originator_id, originator_version, topic, state) VALUES (x'0102', 1, 'T', NULL)`,
		`PRAGMA ignore_check_constraints = OFF`,
	} {
		if _, err := conn.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close()
	for _, q := range []es.NotificationQuery{{Limit: 10}, {Limit: 10, Topics: []string{"T"}}} {
		_, err := r.SelectNotifications(t.Context(), q)
		if err == nil || !strings.Contains(err.Error(), "notification 2: originator ID of 2 bytes, want 16") {
			t.Errorf("topics %v: got error %v, want one naming notification 2 and its 2-byte originator ID", q.Topics, err)
		}
	}
}
