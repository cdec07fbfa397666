package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// keysEnv names the environment variable that gives esctl the application's key ring, in
// cipher.ParseKeyRing's form (ID:BASE64,ID:BASE64,…, the current key last). Keys are never taken from
// flags, which end up in shell histories and process lists, and never printed.
const keysEnv = "ES_CIPHER_KEYS"

const keysUsage = `usage: esctl keys <command> [flags]

commands:
  rotate   rewrap every data key with the current key of the ring in $` + keysEnv + `: add the new
           key at the end of the ring, give every process of the application the new ring, then
           rotate; afterwards the older keys wrap no data key
  forget   esctl keys forget [flags] SUBJECT: delete the data key of SUBJECT, making its events and
           snapshots unreadable for good (crypto-shredding); needs no keys

The key ring is read from $` + keysEnv + ` only (ID:BASE64,ID:BASE64,…, the current key last).`

func cmdKeys(ctx context.Context, args []string, out, errOut io.Writer) error {
	return commands{
		"rotate": cmdKeysRotate,
		"forget": cmdKeysForget,
	}.run(ctx, "keys", keysUsage, args, out, errOut)
}

func cmdKeysRotate(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	sf := addStoreFlags(fs, "", "store")
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	ring, err := ringFromEnv()
	if err != nil {
		return err
	}
	if ring == nil {
		return fmt.Errorf("keys rotate: set %s to the key ring, with the new key last", keysEnv)
	}
	return withKeyStore(ctx, sf, func(ks datakey.Store) error {
		keys, err := datakey.New(ring, ks, datakey.WithCacheSize(0))
		if err != nil {
			return err
		}
		res, err := keys.Rewrap(ctx)
		fmt.Fprintf(out, "rewrapped %s with key %q; %d were wrapped by it already; %s passed over\n",
			plural(int64(res.Rewrapped), "data key"), res.KeyID, res.Current, plural(int64(res.Forgotten), "forgotten subject"))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "every data key is wrapped by key %q: the other keys of the ring wrap none (see esctl info for events that name them)\n", res.KeyID)
		return nil
	})
}

func cmdKeysForget(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("keys forget", flag.ContinueOnError)
	fs.SetOutput(errOut)
	sf := addStoreFlags(fs, "", "store")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("keys forget: give exactly one subject, after the flags: esctl keys forget -dsn … SUBJECT")
	}
	subject := fs.Arg(0)
	if err := datakey.ValidateSubject(subject); err != nil {
		return fmt.Errorf("keys forget: %w", err)
	}
	return withKeyStore(ctx, sf, func(ks datakey.Store) error { return forget(ctx, ks, subject, out) })
}

// forget is keys forget's work on the key store.
func forget(ctx context.Context, ks datakey.Store, subject string, out io.Writer) error {
	before, err := ks.Get(ctx, subject)
	hadKey := err == nil
	if err != nil && !errors.Is(err, datakey.ErrNoKey) {
		return err
	}
	if hadKey && before.Forgotten() {
		fmt.Fprintf(out, "subject %q was forgotten already, at %s\n", subject, before.ForgottenAt.Format(time.RFC3339))
		return nil
	}
	if err := ks.Forget(ctx, subject); err != nil {
		return err
	}
	if hadKey {
		fmt.Fprintf(out, "forgot subject %q: its data key is deleted, and its events and snapshots can no longer be decrypted\n", subject)
	} else {
		fmt.Fprintf(out, "subject %q had no data key; it is recorded as forgotten, so that it never gets one\n", subject)
	}
	fmt.Fprintf(out, "running processes stop using a cached copy of the key within their cache's maximum age (%v by default);\n"+
		"read models and backups of the key store are not reached: see the datakey package documentation\n", datakey.DefaultCacheMaxAge)
	return nil
}

// ringFromEnv returns the key ring of $ES_CIPHER_KEYS, or nil when it is not set.
func ringFromEnv() (*cipher.KeyRing, error) {
	text, ok := os.LookupEnv(keysEnv)
	if !ok || strings.TrimSpace(text) == "" {
		return nil, nil
	}
	ring, err := cipher.ParseKeyRing(text)
	if err != nil {
		return nil, fmt.Errorf("$%s: %w", keysEnv, err)
	}
	return ring, nil
}

// keyStore returns the store's data key store.
func (s *store) keyStore(ctx context.Context) (datakey.Store, error) {
	if s.dialect == schema.Postgres {
		var opts []postgres.Option
		if *s.sf.schema != "" {
			opts = append(opts, postgres.WithSchema(*s.sf.schema))
		}
		return postgres.NewKeyStore(ctx, s.db, opts...)
	}
	return sqlite.NewKeyStore(ctx, s.db)
}

// bodyDecoder decodes stored events to their JSON without the application's types, with the key ring
// of $ES_CIPHER_KEYS and the store's data keys when there are any.
type bodyDecoder struct {
	m    *mapper.Mapper
	hint string // why encrypted events cannot be decoded, if they cannot
}

func newBodyDecoder(ctx context.Context, s *store) (*bodyDecoder, error) {
	ring, err := ringFromEnv()
	if err != nil {
		return nil, err
	}
	reg := mapper.NewRegistry()
	if ring == nil {
		m, err := mapper.New(reg)
		return &bodyDecoder{m: m, hint: "set " + keysEnv + " to decrypt"}, err
	}
	ks, err := s.keyStore(ctx)
	if err != nil {
		// A store migrated before data keys existed: the ring alone.
		m, err := mapper.New(reg, mapper.WithKeyRing(ring))
		return &bodyDecoder{m: m}, err
	}
	keys, err := datakey.New(ring, ks)
	if err != nil {
		return nil, err
	}
	m, err := mapper.New(reg, mapper.WithDataKeys(keys))
	return &bodyDecoder{m: m}, err
}

// body returns the event's timestamp and data as JSON, or the reason they cannot be shown.
func (d *bodyDecoder) body(ctx context.Context, e es.StoredEvent) string {
	raw, err := d.m.DecodeRaw(ctx, e)
	if err != nil {
		var de *mapper.DecodeError
		if errors.As(err, &de) {
			err = de.Err // the line names the event already
		}
		if d.hint != "" && errors.Is(err, mapper.ErrNoCipher) {
			return fmt.Sprintf("error: encrypted (%s)", d.hint)
		}
		return fmt.Sprintf("error: %v", err)
	}
	return raw.Timestamp.Format(time.RFC3339Nano) + "\t" + string(raw.Data)
}

// keyCounts counts events by what encrypts them, from their headers alone.
type keyCounts struct {
	plain, format1, subjectKeyed, unreadable int64
	byKeyID                                  map[string]int64
}

func (k *keyCounts) add(e es.StoredEvent) {
	info, err := mapper.Inspect(e)
	switch {
	case err != nil:
		k.unreadable++
	case !info.Encrypted:
		k.plain++
	case info.Subject != "":
		k.subjectKeyed++
	case info.KeyID != "":
		if k.byKeyID == nil {
			k.byKeyID = map[string]int64{}
		}
		k.byKeyID[info.KeyID]++
	default:
		k.format1++
	}
}

// print writes the counts, and what the store's data key store holds.
func (k *keyCounts) print(ctx context.Context, s *store, out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "encryption\tevents")
	fmt.Fprintf(tw, "none\t%d\n", k.plain)
	fmt.Fprintf(tw, "one key, no key ID\t%d\n", k.format1)
	for _, id := range slices.Sorted(maps.Keys(k.byKeyID)) {
		fmt.Fprintf(tw, "ring key %q\t%d\n", id, k.byKeyID[id])
	}
	fmt.Fprintf(tw, "data keys of subjects\t%d\n", k.subjectKeyed)
	if k.unreadable > 0 {
		fmt.Fprintf(tw, "unreadable header\t%d\n", k.unreadable)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	ks, err := s.keyStore(ctx)
	if errors.Is(err, schema.ErrNotMigrated) {
		fmt.Fprintln(out, "data keys:              no data key store (esctl migrate adds it)")
		return nil
	}
	if err != nil {
		return err
	}
	sum, err := datakey.Summarize(ctx, ks)
	if err != nil {
		return err
	}
	var by []string
	for _, id := range slices.Sorted(maps.Keys(sum.ByKeyID)) {
		by = append(by, fmt.Sprintf("%d by %q", sum.ByKeyID[id], id))
	}
	wrapped := ""
	if len(by) > 0 {
		wrapped = " (wrapped " + strings.Join(by, ", ") + ")"
	}
	fmt.Fprintf(out, "data keys:              %d subjects%s, %d forgotten\n", sum.Keys, wrapped, sum.Forgotten)
	return nil
}
