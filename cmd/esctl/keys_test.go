package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

type Opened struct {
	Owner string `json:"owner"`
}

type Deposited struct {
	Amount int64 `json:"amount"`
}

// keyedStore is a SQLite store with events of three kinds: under ring key "1" (aggregate ringed), and
// under the data keys of two subjects (ada, bob).
type keyedStore struct {
	path             string
	ringed, ada, bob uuid.UUID
	k1, k2           string // the ring's keys, base64
}

func newKeyedStore(t *testing.T) keyedStore {
	t.Helper()
	ctx := context.Background()
	ks := keyedStore{path: filepath.Join(t.TempDir(), "keys.db"), ringed: uuid.New(), ada: uuid.New(), bob: uuid.New()}
	var err error
	if ks.k1, err = cipher.GenerateKey(256); err != nil {
		t.Fatal(err)
	}
	if ks.k2, err = cipher.GenerateKey(256); err != nil {
		t.Fatal(err)
	}
	withSQLite(t, migrated(t, ks.path), func(db *sql.DB, rec *sqlite.ProcessRecorder) {
		store, err := sqlite.NewKeyStore(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		reg := mapper.NewRegistry()
		mapper.Register[Opened](reg, "test.Opened")
		mapper.Register[Deposited](reg, "test.Deposited")
		ring, err := cipher.ParseKeyRing("1:" + ks.k1)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := datakey.New(ring, store)
		if err != nil {
			t.Fatal(err)
		}
		ringed, err := mapper.New(reg, mapper.WithKeyRing(ring))
		if err != nil {
			t.Fatal(err)
		}
		keyed, err := mapper.New(reg, mapper.WithCompression(mapper.DefaultCompressionQuality), mapper.WithDataKeys(keys))
		if err != nil {
			t.Fatal(err)
		}
		for m, id := range map[*mapper.Mapper]uuid.UUID{ringed: ks.ringed, keyed: ks.ada} {
			if _, err := eventstore.New(m, rec).Put(ctx, []aggregate.Event{
				{OriginatorID: id, OriginatorVersion: 1, Data: Opened{Owner: "o"}},
				{OriginatorID: id, OriginatorVersion: 2, Data: Deposited{Amount: 5}},
			}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := eventstore.New(keyed, rec).Put(ctx, []aggregate.Event{{OriginatorID: ks.bob, OriginatorVersion: 1, Data: Opened{Owner: "bob"}}}); err != nil {
			t.Fatal(err)
		}
	})
	return ks
}

// run runs esctl with $ES_CIPHER_KEYS set to keys (unset when empty) and fails the test if the output
// or the error show a key.
func (ks keyedStore) run(t *testing.T, keys string, args ...string) (string, error) {
	t.Helper()
	t.Setenv(keysEnv, keys)
	out, errOut, err := esctl(t, args...)
	all := out + errOut
	if err != nil {
		all += err.Error()
	}
	for _, k := range []string{ks.k1, ks.k2} {
		raw, _ := base64.StdEncoding.DecodeString(k)
		if strings.Contains(all, k) || strings.Contains(all, k[:16]) || strings.Contains(all, string(raw[:12])) {
			t.Fatalf("esctl %v shows key material:\n%s", args, all)
		}
	}
	return out, err
}

func TestDecode(t *testing.T) {
	ks := newKeyedStore(t)
	out, err := ks.run(t, "1:"+ks.k1, "events", "-dsn", ks.path, "-id", ks.ada.String(), "-decode")
	if err != nil || !strings.Contains(out, "v1\ttest.Opened\t") || !strings.Contains(out, "\t{\"owner\":\"o\"}\n") ||
		!strings.Contains(out, "v2\ttest.Deposited\t") || !strings.Contains(out, "\t{\"amount\":5}\n") {
		t.Fatalf("events -decode: %q %v", out, err)
	}
	out, err = ks.run(t, "1:"+ks.k1, "tail", "-dsn", ks.path, "-after", "0", "-decode")
	if err != nil || strings.Count(out, "\n") != 5 || strings.Contains(out, "error") || strings.Count(out, `{"owner":`) != 3 {
		t.Fatalf("tail -decode: %q %v", out, err)
	}
	// Without keys: the events are listed, and say why their data is not shown.
	out, err = ks.run(t, "", "events", "-dsn", ks.path, "-id", ks.ringed.String(), "-decode")
	if err != nil || strings.Count(out, "error: encrypted (set ES_CIPHER_KEYS to decrypt)") != 2 {
		t.Fatalf("events -decode without keys: %q %v", out, err)
	}
	// With a ring that lacks the key: the missing key ID is named.
	out, err = ks.run(t, "2:"+ks.k2, "events", "-dsn", ks.path, "-id", ks.ringed.String(), "-decode")
	if err != nil || !strings.Contains(out, `no key "1"`) {
		t.Fatalf("events -decode with another key: %q %v", out, err)
	}
	// A malformed ring is refused without repeating it.
	if _, err := ks.run(t, ks.k1, "events", "-dsn", ks.path, "-id", ks.ada.String(), "-decode"); err == nil || !strings.Contains(err.Error(), "ES_CIPHER_KEYS") {
		t.Fatalf("bad ring: %v", err)
	}
	// No flag takes a key.
	if _, err := ks.run(t, "", "events", "-dsn", ks.path, "-id", ks.ada.String(), "-key", ks.k1); err == nil {
		t.Fatal("a key was accepted as a flag")
	}
}

func TestInfoShowsKeys(t *testing.T) {
	ks := newKeyedStore(t)
	out, err := ks.run(t, "", "info", "-dsn", ks.path)
	out = strings.Join(strings.Fields(out), " ") // whatever the alignment
	for _, want := range []string{`none 0`, `ring key "1" 2`, `data keys of subjects 3`, `data keys: 2 subjects (wrapped 2 by "1"), 0 forgotten`} {
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("info: want %q in\n%s%v", want, out, err)
		}
	}
}

func TestKeysRotateAndForget(t *testing.T) {
	ks := newKeyedStore(t)
	if _, err := ks.run(t, "", "keys", "rotate", "-dsn", ks.path); err == nil || !strings.Contains(err.Error(), keysEnv) {
		t.Fatalf("rotate without keys: %v", err)
	}
	out, err := ks.run(t, "1:"+ks.k1+",2:"+ks.k2, "keys", "rotate", "-dsn", ks.path)
	if err != nil || !strings.Contains(out, `rewrapped 2 data keys with key "2"; 0 were wrapped by it already`) {
		t.Fatalf("rotate: %q %v", out, err)
	}
	if out, err := ks.run(t, "", "info", "-dsn", ks.path); err != nil || !strings.Contains(out, `2 subjects (wrapped 2 by "2")`) {
		t.Fatalf("info after rotate: %q %v", out, err)
	}
	// Key 1 retired: the data keys' events decode with key 2 alone; the ring key's events need key 1.
	out, err = ks.run(t, "2:"+ks.k2, "tail", "-dsn", ks.path, "-after", "0", "-decode")
	if err != nil || strings.Count(out, `no key "1"`) != 2 || strings.Count(out, `{"owner":`) != 2 {
		t.Fatalf("tail with key 2 only: %q %v", out, err)
	}

	out, err = ks.run(t, "", "keys", "forget", "-dsn", ks.path, ks.ada.String())
	if err != nil || !strings.Contains(out, "forgot subject \""+ks.ada.String()+"\"") {
		t.Fatalf("forget: %q %v", out, err)
	}
	if out, err := ks.run(t, "", "keys", "forget", "-dsn", ks.path, ks.ada.String()); err != nil || !strings.Contains(out, "forgotten already") {
		t.Fatalf("forget again: %q %v", out, err)
	}
	out, err = ks.run(t, "2:"+ks.k2, "events", "-dsn", ks.path, "-id", ks.ada.String(), "-decode")
	if err != nil || strings.Count(out, "was forgotten at") != 2 {
		t.Fatalf("events of a forgotten subject: %q %v", out, err)
	}
	out, err = ks.run(t, "2:"+ks.k2, "events", "-dsn", ks.path, "-id", ks.bob.String(), "-decode")
	if err != nil || !strings.Contains(out, `{"owner":"bob"}`) {
		t.Fatalf("bob after forgetting ada: %q %v", out, err)
	}
	if out, err := ks.run(t, "", "info", "-dsn", ks.path); err != nil || !strings.Contains(out, "1 subjects (wrapped 1 by \"2\"), 1 forgotten") {
		t.Fatalf("info after forget: %q %v", out, err)
	}

	for name, args := range map[string][]string{
		"no command":          {"keys"},
		"unknown command":     {"keys", "burn"},
		"no subject":          {"keys", "forget", "-dsn", ks.path},
		"two subjects":        {"keys", "forget", "-dsn", ks.path, "a", "b"},
		"invalid subject":     {"keys", "forget", "-dsn", ks.path, "a\tb"},
		"not migrated":        {"keys", "forget", "-dsn", filepath.Join(t.TempDir(), "none.db"), "a"},
		"rotate extra args":   {"keys", "rotate", "-dsn", ks.path, "x"},
		"rotate bad ring env": {"keys", "rotate", "-dsn", ks.path},
	} {
		keys := ""
		if name == "rotate bad ring env" {
			keys = "1:" + ks.k1[:20]
		}
		if out, err := ks.run(t, keys, args...); err == nil {
			t.Errorf("%s: no error; output %q", name, out)
		}
	}
}

// copy -keys=false does not copy data keys: it says so when the source has any, since the target
// cannot decrypt those subjects' events without them.
func TestCopySaysDataKeysStayBehind(t *testing.T) {
	ks := newKeyedStore(t)
	dst := filepath.Join(t.TempDir(), "dst.db")
	out, err := ks.run(t, "", "copy", "-quiet", "-keys=false", "-dsn", ks.path, "-to", dst)
	if err != nil || !strings.Contains(out, "copied 5 events") {
		t.Fatalf("copy: %q %v", out, err)
	}
	if !strings.Contains(out, "2 data keys") || !strings.Contains(out, "not copied") {
		t.Errorf("copy does not say that the source's 2 data keys stay behind:\n%s", out)
	}
	// A source without data keys: no such note.
	plain := migrated(t, filepath.Join(t.TempDir(), "plain.db"))
	seed(t, plain, uuid.New())
	if out, err := ks.run(t, "", "copy", "-quiet", "-keys=false", "-dsn", plain, "-to", filepath.Join(t.TempDir(), "p.db")); err != nil || strings.Contains(out, "data key") {
		t.Errorf("copy of a store without data keys: %q %v", out, err)
	}
}

// A source whose only entries are tombstones: the note of -keys=false names them alone.
func TestCopyNamesTombstonesAlone(t *testing.T) {
	ks := newKeyedStore(t)
	for _, s := range []uuid.UUID{ks.ada, ks.bob} {
		if _, err := ks.run(t, "", "keys", "forget", "-dsn", ks.path, s.String()); err != nil {
			t.Fatal(err)
		}
	}
	out, err := ks.run(t, "", "copy", "-quiet", "-keys=false", "-dsn", ks.path, "-to", filepath.Join(t.TempDir(), "dst.db"))
	if err != nil || !strings.Contains(out, "not copied (-keys=false): the tombstones of the source's 2 forgotten subjects\n") {
		t.Errorf("copy of a source with tombstones only: %q %v", out, err)
	}
}
