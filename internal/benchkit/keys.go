package benchkit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"time"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// KeyStore is a data key store under a name, for the cases of KeyOps.
type KeyStore struct {
	Name  string
	Store datakey.Store
}

// KeyRing returns a key ring holding Key alone, under the ID "1". It panics only if Key, a constant,
// is refused.
func KeyRing() *cipher.KeyRing {
	ring, err := cipher.ParseKeyRing("1:" + Key)
	if err != nil {
		panic(fmt.Sprintf("benchkit: the fixed key ring is refused: %v", err))
	}
	return ring
}

// KeyOps returns, per way of choosing the Mapper's keys, the AES-GCM round trip of a MoneyDeposited
// (RoundTripOp): first the single key (WithCipher with Key), the baseline of the others; then a key
// ring (WithKeyRing); per-subject data keys (WithDataKeys) whose key is in the cache; and, for each of
// stores, per-subject data keys with the cache off, so that every encode and every decode reads the
// subject's key from that store and unwraps it. The subject is the event's originator.
func KeyOps(ctx context.Context, stores ...KeyStore) ([]Op, error) {
	c, err := cipher.NewFromBase64(Key)
	if err != nil {
		return nil, err
	}
	type setting struct {
		name  string
		store datakey.Store
		opt   []datakey.Option
	}
	settings := []setting{{name: "single key"}, {name: "key ring"}, {name: "data keys, cache hit", store: datakey.NewMemoryStore()}}
	for _, s := range stores {
		settings = append(settings, setting{"data keys, cache miss, " + s.Name, s.Store, []datakey.Option{datakey.WithCacheSize(0)}})
	}
	ops := make([]Op, 0, len(settings))
	for i, s := range settings {
		var opt mapper.Option
		switch {
		case i == 0:
			opt = mapper.WithCipher(c)
		case i == 1:
			opt = mapper.WithKeyRing(KeyRing())
		default:
			keys, err := datakey.New(KeyRing(), s.store, s.opt...)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			opt = mapper.WithDataKeys(keys)
		}
		m, err := mapper.New(NewRegistry(), opt)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		e := aggregate.Event{OriginatorID: NewID(), OriginatorVersion: 42, Timestamp: time.Now().UTC(), Data: Deposit(1)}
		// The first round trip makes the subject's data key, which the cases then read or find cached.
		op := RoundTripOp(s.name, m, e)
		if _, err := op.Call(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// KeyEntries returns n data keys wrapped by ring's current key, as datakey.Keys makes them, for the
// subjects subject-0000000, subject-0000001 and so on.
func KeyEntries(ctx context.Context, ring *cipher.KeyRing, n int) ([]datakey.Entry, error) {
	mem := datakey.NewMemoryStore()
	keys, err := datakey.New(ring, mem, datakey.WithCacheSize(0))
	if err != nil {
		return nil, err
	}
	for i := range n {
		if _, err := keys.GetOrCreate(ctx, fmt.Sprintf("subject-%07d", i)); err != nil {
			return nil, err
		}
	}
	return mem.List(ctx, "", n)
}

// KeyPlaces are the databases of MeasureKeys' SQL key stores, each migrated: SQLite databases and,
// when Postgres is set, schemas of it. The round trips read keys from the first of each pair; the
// second is filled with the keys to rewrap.
type KeyPlaces struct {
	SQLite   [2]*sql.DB
	Postgres *sql.DB // nil: PostgreSQL is left out
	Schemas  [2]string
}

// Measured is what one operation of an interleaved measurement did, round by round.
type Measured struct {
	Name    string
	Samples []Sample
}

// MeasureKeys measures the round trips of KeyOps by p, with a cache miss reading from a memory, a
// SQLite and (when at.Postgres is set) a PostgreSQL key store, then RewrapOp of n data keys in a store
// of each kind, once per round of p and store. Each result lists its stores in that order; the round
// trips' first is the single key, the baseline.
func MeasureKeys(ctx context.Context, p Plan, n int, at KeyPlaces) (roundTrips, rewraps []Measured, err error) {
	ring := KeyRing()
	entries, err := KeyEntries(ctx, ring, n)
	if err != nil {
		return nil, nil, err
	}
	var stores, filled []KeyStore
	for i, dst := range []*[]KeyStore{&stores, &filled} {
		fill := entries[:i*n] // none for the round trips' stores
		mem := datakey.NewMemoryStore()
		for _, e := range fill {
			if _, err := mem.Add(ctx, e); err != nil {
				return nil, nil, err
			}
		}
		*dst = append(*dst, KeyStore{"memory", mem})
		lite, err := sqlite.NewKeyStore(ctx, at.SQLite[i])
		if err == nil {
			err = InsertKeysSQLite(ctx, at.SQLite[i], fill)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("SQLite key store: %w", err)
		}
		*dst = append(*dst, KeyStore{"SQLite", lite})
		if at.Postgres == nil {
			continue
		}
		pg, err := postgres.NewKeyStore(ctx, at.Postgres, postgres.WithSchema(at.Schemas[i]))
		if err == nil {
			err = InsertKeysPostgres(ctx, at.Postgres, at.Schemas[i], fill)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("PostgreSQL key store: %w", err)
		}
		*dst = append(*dst, KeyStore{"PostgreSQL", pg})
	}
	ops, err := KeyOps(ctx, stores...)
	if err != nil {
		return nil, nil, err
	}
	res, err := Interleave(ctx, p, ops...)
	if err != nil {
		return nil, nil, err
	}
	for i, op := range ops {
		roundTrips = append(roundTrips, Measured{op.Name, res[i]})
	}
	ops = ops[:0]
	for _, s := range filled {
		op, err := RewrapOp(s.Name, s.Store, ring, n)
		if err != nil {
			return nil, nil, err
		}
		ops = append(ops, op)
	}
	res, err = Interleave(ctx, Plan{Rounds: p.Rounds, Chunks: 1, Chunk: time.Nanosecond, MinCalls: 1}, ops...)
	if err != nil {
		return nil, nil, err
	}
	for i, op := range ops {
		rewraps = append(rewraps, Measured{op.Name, res[i]})
	}
	return roundTrips, rewraps, nil
}

// Filling a key store through Add would commit once per key, which for 100,000 keys takes most of a
// minute; the SQL stores are filled in one transaction (SQLite) or one statement (PostgreSQL) instead.

// InsertKeysSQLite writes entries into the data_keys table of db in one transaction.
func InsertKeysSQLite(ctx context.Context, db *sql.DB, entries []datakey.Entry) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, e := range entries {
		if _, err := tx.ExecContext(ctx, `INSERT INTO data_keys (subject, key_id, wrapped_key) VALUES (?, ?, ?)`, e.Subject, e.KeyID, e.Wrapped); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// InsertKeysPostgres writes entries into the data_keys table of schema (an identifier the caller
// trusts) in one statement.
func InsertKeysPostgres(ctx context.Context, db *sql.DB, schema string, entries []datakey.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	subjects, ids, wrapped := make([]string, len(entries)), make([]string, len(entries)), make([][]byte, len(entries))
	for i, e := range entries {
		subjects[i], ids[i], wrapped[i] = e.Subject, e.KeyID, e.Wrapped
	}
	_, err := db.ExecContext(ctx, `INSERT INTO `+schema+`.data_keys (subject, key_id, wrapped_key)
SELECT unnest($1::text[]), unnest($2::text[]), unnest($3::bytea[])`, subjects, ids, wrapped)
	return err
}

// RewrapOp rewraps, per call, the n data keys of store, which were wrapped by a key of ring: it adds a
// new key to ring, so that every data key is due, and runs datakey.Keys.Rewrap, which must rewrap all
// n. Its units are data keys. Adding the key is timed too; it is a microsecond beside the rewrap.
func RewrapOp(name string, store datakey.Store, ring *cipher.KeyRing, n int) (Op, error) {
	keys, err := datakey.New(ring, store)
	if err != nil {
		return Op{}, err
	}
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		raw := make([]byte, 32)
		rand.Read(raw)
		// Named by the ring's size, so that ops sharing a ring add keys of distinct IDs.
		if err := ring.Add(fmt.Sprint("rewrap-", ring.Len()), raw); err != nil {
			return 0, err
		}
		res, err := keys.Rewrap(ctx)
		if err == nil && res.Rewrapped != n {
			err = fmt.Errorf("rewrapped %d of %d data keys", res.Rewrapped, n)
		}
		return res.Rewrapped, err
	}}, nil
}
