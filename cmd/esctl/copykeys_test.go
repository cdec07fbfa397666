package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// ring is the key ring the keyed store's events were written with.
func (ks keyedStore) ring(t *testing.T) *cipher.KeyRing {
	t.Helper()
	ring, err := cipher.ParseKeyRing("1:" + ks.k1)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// withKeys runs fn with the SQLite store at path (migrated already): its recorder and its key store.
func withKeys(t *testing.T, path string, fn func(es.ApplicationRecorder, datakey.Store)) {
	t.Helper()
	withSQLite(t, path, func(db *sql.DB, rec *sqlite.ProcessRecorder) {
		store, err := sqlite.NewKeyStore(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		fn(rec, store)
	})
}

// withPostgresKeys is withKeys for the PostgreSQL schema name of db.
func withPostgresKeys(t *testing.T, db *sql.DB, name string, fn func(es.ApplicationRecorder, datakey.Store)) {
	t.Helper()
	ctx := context.Background()
	rec, err := postgres.NewProcessRecorder(ctx, db, postgres.WithSchema(name))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	store, err := postgres.NewKeyStore(ctx, db, postgres.WithSchema(name))
	if err != nil {
		t.Fatal(err)
	}
	fn(rec, store)
}

// entries returns every entry of a key store.
func entries(t *testing.T, store datakey.Store) []datakey.Entry {
	t.Helper()
	all, err := store.List(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// checkDecodes decodes every event of a copy of the keyed store with the store's ring through the
// copy's own key store: the events of the subjects in forgotten fail with datakey.ErrForgotten, all the
// others decode. The forgotten subjects cannot get a new data key in the copy either.
func (ks keyedStore) checkDecodes(t *testing.T, rec es.ApplicationRecorder, store datakey.Store, forgotten ...uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	keys, err := datakey.New(ks.ring(t), store, datakey.WithCacheSize(0))
	if err != nil {
		t.Fatal(err)
	}
	reg := mapper.NewRegistry()
	mapper.Register[Opened](reg, "test.Opened")
	mapper.Register[Deposited](reg, "test.Deposited")
	m, err := mapper.New(reg, mapper.WithDataKeys(keys))
	if err != nil {
		t.Fatal(err)
	}
	notes, err := rec.SelectNotifications(ctx, es.NotificationQuery{Limit: 100})
	if err != nil || len(notes) != 5 {
		t.Fatalf("the copy holds %d events, %v; want 5", len(notes), err)
	}
	for _, n := range notes {
		_, err := m.DecodeContext(ctx, n.StoredEvent)
		if slices.Contains(forgotten, n.OriginatorID) {
			if !errors.Is(err, datakey.ErrForgotten) {
				t.Errorf("event %d of forgotten subject %s in the copy: %v; want datakey.ErrForgotten", n.ID, n.OriginatorID, err)
			}
		} else if err != nil {
			t.Errorf("event %d of %s does not decode in the copy: %v", n.ID, n.OriginatorID, err)
		}
	}
	for _, s := range forgotten {
		if _, err := keys.GetOrCreate(ctx, s.String()); !errors.Is(err, datakey.ErrForgotten) {
			t.Errorf("forgotten subject %s can get a key in the copy: %v", s, err)
		}
		if e, err := store.Get(ctx, s.String()); err != nil || !e.Forgotten() || e.Wrapped != nil {
			t.Errorf("forgotten subject %s in the copy: %+v %v; want a tombstone", s, e, err)
		}
	}
}

// checkCopy checks a copy of the keyed store, which target opens: it holds the data key of ada as the
// source does, and its events decode, but for those of bob, who is forgotten (see checkDecodes).
func (ks keyedStore) checkCopy(t *testing.T, target func(fn func(es.ApplicationRecorder, datakey.Store))) {
	t.Helper()
	withKeys(t, ks.path, func(_ es.ApplicationRecorder, from datakey.Store) {
		target(func(rec es.ApplicationRecorder, to datakey.Store) {
			sameKeys(t, from, to, ks.ada)
			ks.checkDecodes(t, rec, to, ks.bob)
		})
	})
}

// sameKeys fails unless the data keys of the subjects are the same, wrapped alike, in both stores.
func sameKeys(t *testing.T, a, b datakey.Store, subjects ...uuid.UUID) {
	t.Helper()
	for _, s := range subjects {
		ea, errA := a.Get(context.Background(), s.String())
		eb, errB := b.Get(context.Background(), s.String())
		if errA != nil || errB != nil || ea.Forgotten() || ea.KeyID != eb.KeyID || !bytes.Equal(ea.Wrapped, eb.Wrapped) || eb.Forgotten() {
			t.Errorf("the data key of %s was not copied as it is: %+v %v, copied %+v %v", s, ea, errA, eb, errB)
		}
	}
}

// copy copies the data keys and tombstones before the events, as they are: the copy decodes with the
// same ring, a subject forgotten in the source stays forgotten, and copying again is a resume.
func TestCopyCopiesDataKeys(t *testing.T) {
	ks := newKeyedStore(t)
	if _, err := ks.run(t, "", "keys", "forget", "-dsn", ks.path, ks.bob.String()); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "dst.db")
	out, err := ks.run(t, "", "copy", "-quiet", "-dsn", ks.path, "-to", dst, "-batch", "1")
	if err != nil || !strings.Contains(out, "copied 5 events (notification IDs kept), 0 snapshots, 0 tracking marks, 1 data key, 1 tombstone\n") {
		t.Fatalf("copy: %q %v", out, err)
	}
	if strings.Contains(out, "not copied") {
		t.Errorf("copy says it left keys behind:\n%s", out)
	}
	var source []datakey.Entry
	withKeys(t, ks.path, func(_ es.ApplicationRecorder, from datakey.Store) {
		source = entries(t, from)
		withKeys(t, dst, func(rec es.ApplicationRecorder, to datakey.Store) {
			sameKeys(t, from, to, ks.ada)
			ks.checkDecodes(t, rec, to, ks.bob)
		})
	})
	// esctl decodes the copy too.
	out, err = ks.run(t, "1:"+ks.k1, "tail", "-dsn", dst, "-after", "0", "-decode")
	if err != nil || strings.Count(out, `{"owner":"o"}`) != 2 || strings.Count(out, "was forgotten at") != 1 {
		t.Fatalf("tail -decode of the copy: %q %v", out, err)
	}

	// Copying again is a resume: nothing new, nothing changed.
	out, err = ks.run(t, "", "copy", "-quiet", "-dsn", ks.path, "-to", dst)
	if err != nil || !strings.Contains(out, "copied 0 events (notification IDs kept), 0 snapshots, 0 tracking marks, 0 data keys, 0 tombstones\n") {
		t.Fatalf("copy again: %q %v", out, err)
	}
	withKeys(t, ks.path, func(_ es.ApplicationRecorder, from datakey.Store) {
		if now := entries(t, from); len(now) != len(source) {
			t.Fatalf("copy changed the source's key store: %+v, was %+v", now, source)
		}
	})

	// Forgotten in the source since: forgotten in the target by the next copy.
	if _, err := ks.run(t, "", "keys", "forget", "-dsn", ks.path, ks.ada.String()); err != nil {
		t.Fatal(err)
	}
	out, err = ks.run(t, "", "copy", "-quiet", "-dsn", ks.path, "-to", dst)
	if err != nil || !strings.Contains(out, ", 0 data keys, 1 tombstone\n") {
		t.Fatalf("copy after forgetting in the source: %q %v", out, err)
	}
	withKeys(t, dst, func(rec es.ApplicationRecorder, to datakey.Store) { ks.checkDecodes(t, rec, to, ks.ada, ks.bob) })
}

// A subject with a key in the source and a tombstone in the target stays forgotten, and is counted.
func TestCopyKeepsTheTargetsTombstones(t *testing.T) {
	ks := newKeyedStore(t)
	dst := filepath.Join(t.TempDir(), "dst.db")
	if out, err := ks.run(t, "", "copy", "-quiet", "-dsn", ks.path, "-to", dst); err != nil || !strings.Contains(out, ", 2 data keys, 0 tombstones\n") {
		t.Fatalf("copy: %q %v", out, err)
	}
	if _, err := ks.run(t, "", "keys", "forget", "-dsn", dst, ks.bob.String()); err != nil {
		t.Fatal(err)
	}
	// Entries of the target's own, sorting before and after the source's, are passed over.
	withKeys(t, dst, func(_ es.ApplicationRecorder, to datakey.Store) {
		keys, err := datakey.New(ks.ring(t), to)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"0-first", "~last"} {
			if _, err := keys.GetOrCreate(context.Background(), s); err != nil {
				t.Fatal(err)
			}
		}
	})
	out, err := ks.run(t, "", "copy", "-quiet", "-dsn", ks.path, "-to", dst, "-batch", "1")
	if err != nil || !strings.Contains(out, ", 0 data keys, 0 tombstones (1 subject forgotten in the target stayed forgotten)\n") {
		t.Fatalf("copy into a target that forgot a subject: %q %v", out, err)
	}
	ks.checkCopy(t, func(fn func(es.ApplicationRecorder, datakey.Store)) { withKeys(t, dst, fn) })
}

// A target with another data key for one of the source's subjects is not a copy of the source: copy
// refuses it, naming the subject, before it writes anything.
func TestCopyRefusesAnotherDataKey(t *testing.T) {
	ks := newKeyedStore(t)
	// The subject that sorts last, so that a copy that wrote the first before finding the second would
	// have changed the target.
	first, last := ks.ada.String(), ks.bob.String()
	if last < first {
		first, last = last, first
	}
	dst := migrated(t, filepath.Join(t.TempDir(), "dst.db"))
	var before []datakey.Entry
	withKeys(t, dst, func(_ es.ApplicationRecorder, to datakey.Store) {
		keys, err := datakey.New(ks.ring(t), to)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.GetOrCreate(context.Background(), last); err != nil {
			t.Fatal(err)
		}
		before = entries(t, to)
	})
	out, err := ks.run(t, "", "copy", "-quiet", "-dsn", ks.path, "-to", dst)
	if !errors.Is(err, errTargetChanged) || !strings.Contains(err.Error(), `another data key for subject "`+last+`"`) ||
		!strings.Contains(err.Error(), "the target is not a copy of the source") {
		t.Fatalf("copy into a target with another key: %q %v", out, err)
	}
	// The key ring tells a key wrapped anew from another key: it refuses the target all the same.
	out, err = ks.run(t, "1:"+ks.k1, "copy", "-quiet", "-dsn", ks.path, "-to", dst)
	if !errors.Is(err, errTargetChanged) || !strings.Contains(err.Error(), `another data key for subject "`+last+`"`) {
		t.Fatalf("copy into a target with another key, with the key ring: %q %v", out, err)
	}
	withKeys(t, dst, func(rec es.ApplicationRecorder, to datakey.Store) {
		if after := entries(t, to); len(after) != 1 || after[0].Subject != last || !bytes.Equal(after[0].Wrapped, before[0].Wrapped) {
			t.Errorf("the refused copy changed the target's key store: %+v, was %+v", after, before)
		}
		if max, err := rec.MaxNotificationID(context.Background()); err != nil || max != 0 {
			t.Errorf("the refused copy wrote events: %d %v", max, err)
		}
	})
}

// A target copied before the source's keys were rotated holds the same data keys wrapped by the old
// key: without the key ring, copy cannot tell them from another store's and refuses, saying how to let
// it check; with the ring, it checks that they are the same keys and rewraps them in the target as in
// the source. A key ring that lacks the old key refuses the target too.
func TestCopyAfterRotation(t *testing.T) {
	ks := newKeyedStore(t)
	dst := filepath.Join(t.TempDir(), "dst.db")
	if _, err := ks.run(t, "", "copy", "-quiet", "-dsn", ks.path, "-to", dst); err != nil {
		t.Fatal(err)
	}
	both := "1:" + ks.k1 + ",2:" + ks.k2
	if _, err := ks.run(t, both, "keys", "rotate", "-dsn", ks.path); err != nil {
		t.Fatal(err)
	}
	if out, err := ks.run(t, "", "copy", "-quiet", "-dsn", ks.path, "-to", dst); !errors.Is(err, errTargetChanged) ||
		!strings.Contains(err.Error(), "set "+keysEnv) {
		t.Fatalf("copy after a rotation without the ring: %q %v; want a refusal that says to set %s", out, err, keysEnv)
	}
	if out, err := ks.run(t, "2:"+ks.k2, "copy", "-quiet", "-dsn", ks.path, "-to", dst); !errors.Is(err, cipher.ErrUnknownKey) ||
		!strings.Contains(err.Error(), `key "1"`) {
		t.Fatalf("copy after a rotation with a ring that lacks the old key: %q %v; want a refusal naming it", out, err)
	}
	out, err := ks.run(t, both, "copy", "-quiet", "-dsn", ks.path, "-to", dst)
	if err != nil || !strings.Contains(out, "(2 data keys rewrapped as in the source)") {
		t.Fatalf("copy after a rotation with the ring: %q %v", out, err)
	}
	withKeys(t, ks.path, func(_ es.ApplicationRecorder, from datakey.Store) {
		withKeys(t, dst, func(rec es.ApplicationRecorder, to datakey.Store) {
			sameKeys(t, from, to, ks.ada, ks.bob)
			for _, e := range entries(t, to) {
				if e.KeyID != "2" {
					t.Errorf("the target's key of %s is wrapped by key %q, not 2", e.Subject, e.KeyID)
				}
			}
		})
	})
	if out, err := ks.run(t, both, "copy", "-quiet", "-dsn", ks.path, "-to", dst); err != nil || strings.Contains(out, "rewrapped") {
		t.Fatalf("copy again: %q %v; want nothing rewrapped", out, err)
	}
}

// -keys=false leaves the data keys behind, and says so.
func TestCopyWithoutKeys(t *testing.T) {
	ks := newKeyedStore(t)
	dst := filepath.Join(t.TempDir(), "dst.db")
	out, err := ks.run(t, "", "copy", "-quiet", "-keys=false", "-dsn", ks.path, "-to", dst)
	if err != nil || !strings.Contains(out, "copied 5 events (notification IDs kept), 0 snapshots, 0 tracking marks\n") ||
		!strings.Contains(out, "not copied (-keys=false): the source's 2 data keys") {
		t.Fatalf("copy -keys=false: %q %v", out, err)
	}
	withKeys(t, dst, func(_ es.ApplicationRecorder, to datakey.Store) {
		if e := entries(t, to); len(e) != 0 {
			t.Errorf("copy -keys=false copied %d data keys", len(e))
		}
	})
	out, err = ks.run(t, "1:"+ks.k1, "events", "-dsn", dst, "-id", ks.ada.String(), "-decode")
	if err != nil || strings.Count(out, "no data key") != 2 {
		t.Fatalf("events of a copy without keys: %q %v", out, err)
	}
}

// From SQLite to PostgreSQL and back, with the data keys; a PostgreSQL target with another key is
// refused unchanged.
func TestPostgresCopyDataKeys(t *testing.T) {
	dsn, _, name, db := postgresSchema(t)
	ks := newKeyedStore(t)
	if _, err := ks.run(t, "", "keys", "forget", "-dsn", ks.path, ks.bob.String()); err != nil {
		t.Fatal(err)
	}
	out, err := ks.run(t, "", "copy", "-quiet", "-dsn", ks.path, "-to", dsn, "-to-schema", name, "-batch", "1")
	if err != nil || !strings.Contains(out, "copied 5 events (notification IDs kept), 0 snapshots, 0 tracking marks, 1 data key, 1 tombstone\n") {
		t.Fatalf("copy to PostgreSQL: %q %v", out, err)
	}
	ks.checkCopy(t, func(fn func(es.ApplicationRecorder, datakey.Store)) { withPostgresKeys(t, db, name, fn) })
	out, err = ks.run(t, "", "copy", "-quiet", "-dsn", ks.path, "-to", dsn, "-to-schema", name)
	if err != nil || !strings.Contains(out, "copied 0 events (notification IDs kept), 0 snapshots, 0 tracking marks, 0 data keys, 0 tombstones\n") {
		t.Fatalf("copy to PostgreSQL again: %q %v", out, err)
	}

	// Back to SQLite.
	back := filepath.Join(t.TempDir(), "back.db")
	out, err = ks.run(t, "", "copy", "-quiet", "-dsn", dsn, "-schema", name, "-to", back)
	if err != nil || !strings.Contains(out, "copied 5 events (notification IDs kept), 0 snapshots, 0 tracking marks, 1 data key, 1 tombstone\n") {
		t.Fatalf("copy from PostgreSQL: %q %v", out, err)
	}
	ks.checkCopy(t, func(fn func(es.ApplicationRecorder, datakey.Store)) { withKeys(t, back, fn) })

	// Another PostgreSQL target, with its own key for ada.
	dsn2, _, other, db2 := postgresSchema(t)
	if _, _, err := esctl(t, "migrate", "-dsn", dsn2, "-schema", other); err != nil {
		t.Fatal(err)
	}
	withPostgresKeys(t, db2, other, func(_ es.ApplicationRecorder, to datakey.Store) {
		keys, err := datakey.New(ks.ring(t), to)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.GetOrCreate(context.Background(), ks.ada.String()); err != nil {
			t.Fatal(err)
		}
	})
	_, err = ks.run(t, "", "copy", "-quiet", "-dsn", ks.path, "-to", dsn2, "-to-schema", other)
	if !errors.Is(err, errTargetChanged) || !strings.Contains(err.Error(), `another data key for subject "`+ks.ada.String()+`"`) {
		t.Fatalf("copy into a PostgreSQL target with another key: %v", err)
	}
	withPostgresKeys(t, db2, other, func(rec es.ApplicationRecorder, to datakey.Store) {
		if e := entries(t, to); len(e) != 1 || e[0].Subject != ks.ada.String() || e[0].Forgotten() {
			t.Errorf("the refused copy changed the target's key store: %+v", e)
		}
		if max, err := rec.MaxNotificationID(context.Background()); err != nil || max != 0 {
			t.Errorf("the refused copy wrote events: %d %v", max, err)
		}
	})
}

// The data keys are copied before the events: a copy interrupted in its first batch of events has
// copied them all, and one interrupted among the data keys has copied no event; both resume.
func TestCopyCopiesKeysBeforeEvents(t *testing.T) {
	for _, at := range []string{"events", "data keys"} {
		t.Run(at, func(t *testing.T) {
			ks := newKeyedStore(t)
			if _, err := ks.run(t, "", "keys", "forget", "-dsn", ks.path, ks.bob.String()); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "dst.db")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out bytes.Buffer
			// A progress bar's first output comes after its first step is done: interrupt there.
			err := run(ctx, []string{"copy", "-dsn", ks.path, "-to", dst, "-batch", "1"}, &out, writerFunc(func(p []byte) (int, error) {
				if strings.Contains(string(p), at) {
					cancel()
				}
				return len(p), nil
			}))
			if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "run the same command again to resume") {
				t.Fatalf("interrupted copy: %v\n%s", err, out.String())
			}
			withKeys(t, ks.path, func(_ es.ApplicationRecorder, from datakey.Store) {
				withKeys(t, dst, func(rec es.ApplicationRecorder, to datakey.Store) {
					max, err := rec.MaxNotificationID(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					switch at {
					case "events":
						if max == 0 {
							t.Fatal("the copy interrupted among the events copied none")
						}
						sameKeys(t, from, to, ks.ada)
						if e, err := to.Get(context.Background(), ks.bob.String()); err != nil || !e.Forgotten() {
							t.Errorf("the copy interrupted among the events has not copied the tombstone of bob first: %+v %v", e, err)
						}
					default:
						if max != 0 {
							t.Errorf("the copy interrupted among the data keys has copied events up to %d", max)
						}
						if n := len(entries(t, to)); n != 1 {
							t.Errorf("the copy interrupted after its first data key left %d entries in the target", n)
						}
					}
				})
			})
			o, err := ks.run(t, "", "copy", "-quiet", "-dsn", ks.path, "-to", dst, "-batch", "1")
			if err != nil || !strings.Contains(o, "tracking marks, ") {
				t.Fatalf("resumed copy: %q %v", o, err)
			}
			ks.checkCopy(t, func(fn func(es.ApplicationRecorder, datakey.Store)) { withKeys(t, dst, fn) })
		})
	}
}
