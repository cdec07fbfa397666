package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// defaultCopyBatch is how many events (or snapshots) copy writes per transaction of the target.
const defaultCopyBatch = 500

// errTargetChanged is wrapped by the error of a copy whose target was written to by someone else.
var errTargetChanged = errors.New("the target is not a copy of the source")

// cmdCopy copies a store into another: its data keys and tombstones (copyDataKeys), then its events
// with their notification IDs, then its snapshots and its tracking marks. With -keys=false it copies no
// data keys, and says so when the source has any. Each batch of events is one transaction of the
// target, so an interrupted copy leaves a target that holds the source's first events, and running copy
// again resumes after them.
//
// Notification IDs are kept, so that the tracking marks of the target's consumers mean what they meant
// on the source. That needs IDs written explicitly, which is safe only while nobody else appends to the
// target: copy refuses a target whose events are not the source's first ones, and each batch checks,
// inside its transaction, that the target's last notification is the last one copied. On PostgreSQL
// the batch also holds the events table's EXCLUSIVE lock, which every append needs too, so an append
// cannot interleave with it: it waits, or, with the xid ordering, when it took its notification IDs
// before the batch, fails on them afterwards (a unique violation), and in both cases readers never see a
// lower ID appear after a higher one (the batch's xid is newer than any such append's). The batch then
// moves the sequence past the copied IDs, so the target's own appends go on after them.
//
// Tracking marks are read before the events: copied from a source that is still being written, a mark
// then never claims more than the copied events hold (a consumer may process some notifications again,
// but none is lost). Copy a stopped source for an exact copy; run copy again to bring what came since.
//
// Data keys are copied after the source's last notification is read and before any event: a subject's
// data key is stored before its first event, so every event the copy brings finds its key in the
// target, and a subject forgotten in the source is forgotten in the target before its events arrive, so
// that no application of the target can give it a new key. A target that holds another key for a
// subject is refused before anything is written, unless the key ring of ES_CIPHER_KEYS shows that it
// is the same key wrapped by another key (a copy made before the source's keys were rotated), which
// copy then rewraps as in the source.
func cmdCopy(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("copy", flag.ContinueOnError)
	from := addStoreFlags(fs, "", "source")
	to := addStoreFlags(fs, "to", "target")
	batch := fs.Int("batch", defaultCopyBatch, "events or snapshots per transaction of the target, and data keys per page read")
	quiet := fs.Bool("quiet", false, "no progress bars")
	keys := fs.Bool("keys", true, "copy the data keys of subjects, still wrapped (no key ring needed), and the tombstones of\n"+
		"forgotten subjects (dated when copied), before the events; -keys=false leaves them behind,\n"+
		"and the target cannot decrypt the events and snapshots they encrypt")
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	if *batch < 1 {
		return fmt.Errorf("-batch %d: must be at least 1", *batch)
	}
	if *to.dsn == "" {
		return errors.New("no target given (-to)")
	}
	src, err := openStore(ctx, from, readOnly)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer src.Close()
	dst, err := openStore(ctx, to, readWrite)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer dst.Close()
	if err := dst.migrate(ctx); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	srcRec, err := src.recorder(ctx)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	progress := errOut
	if *quiet {
		progress = io.Discard
	}

	marks, err := readMarks(ctx, src)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	upTo, err := srcRec.MaxNotificationID(ctx)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	done, err := copiedBefore(ctx, srcRec, dst, upTo)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "copying %s to %s\n", src, dst)
	var keyed copiedKeys
	if *keys {
		ring, err := ringFromEnv()
		if err != nil {
			return err
		}
		if keyed, err = copyDataKeys(ctx, src, dst, ring, *batch, progress); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("copy interrupted while copying the data keys (run the same command again to resume): %w", err)
			}
			return err
		}
	}
	if done > 0 {
		fmt.Fprintf(out, "resuming after notification %d, copied before\n", done)
	}
	var total int64
	if err := src.db.QueryRowContext(ctx, src.text(countEvents), done, upTo).Scan(&total); err != nil {
		return fmt.Errorf("source: count events: %w", err)
	}
	bar := newBar(progress, total, "events")
	copied, last, err := copyEvents(ctx, srcRec, dst, done, upTo, *batch, bar)
	if err != nil {
		_ = bar.Exit()
		if ctx.Err() != nil {
			return fmt.Errorf("copy interrupted after notification %d (run the same command again to resume): %w", last, err)
		}
		return err
	}
	_ = bar.Finish()

	snapshots, err := copySnapshots(ctx, src, dst, *batch, progress)
	if err != nil {
		return err
	}
	if err := writeMarks(ctx, dst, marks); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	summary := fmt.Sprintf("copied %s (notification IDs kept), %s, %s",
		plural(copied, "event"), plural(snapshots, "snapshot"), plural(int64(len(marks)), "tracking mark"))
	if keyed.source > 0 {
		summary += fmt.Sprintf(", %s, %s", plural(keyed.keys, "data key"), plural(keyed.tombstones, "tombstone"))
		if keyed.rewrapped > 0 {
			summary += fmt.Sprintf(" (%s rewrapped as in the source)", plural(keyed.rewrapped, "data key"))
		}
		if keyed.keptForgotten > 0 {
			summary += fmt.Sprintf(" (%s forgotten in the target stayed forgotten)", plural(keyed.keptForgotten, "subject"))
		}
	}
	fmt.Fprintln(out, summary)
	if last < upTo {
		fmt.Fprintf(out, "the source's notifications after %d were not final yet (appends in progress): run copy again to bring them\n", last)
	}
	if !*keys {
		return noteDataKeys(ctx, src, out)
	}
	return nil
}

// copiedKeys counts what copyDataKeys wrote, or would write. The summary of a copy names data keys
// only when the source has some (or tombstones).
type copiedKeys struct {
	source        int64 // entries of the source: data keys and tombstones
	keys          int64 // data keys added to the target
	tombstones    int64 // subjects forgotten in the target because they are in the source
	keptForgotten int64 // subjects with a key in the source and a tombstone in the target, left forgotten
	rewrapped     int64 // data keys of the target replaced by the source's, the same keys wrapped anew
}

// copyDataKeys copies the entries of the source's key store into the target's through the datakey.Store
// interface alone: wrapped keys as they are (same key ID, same wrapped bytes), so that no key ring is
// needed and no key is ever unwrapped, and tombstones by forgetting their subjects in the target (the
// target's tombstone is dated when it is copied). A source without a key store (migrated before data
// keys) has none to copy.
//
// It reads both stores in subject order, side by side, twice: first to check every entry, so that a
// target holding another data key for a subject is refused before anything is written (never
// overwritten: the target is not a copy of this source), then to write what the target lacks. An entry
// the target has already is left alone and not counted, so a resumed copy writes only what is new; a
// subject forgotten in the target stays forgotten, and one forgotten in the source since the last copy
// is forgotten in the target too.
func copyDataKeys(ctx context.Context, src, dst *store, ring *cipher.KeyRing, batch int, progress io.Writer) (copiedKeys, error) {
	from, err := src.keyStore(ctx)
	if errors.Is(err, schema.ErrNotMigrated) {
		return copiedKeys{}, nil // a store from before data keys
	}
	if err != nil {
		return copiedKeys{}, fmt.Errorf("source: %w", err)
	}
	to, err := dst.keyStore(ctx)
	if err != nil {
		return copiedKeys{}, fmt.Errorf("target: %w", err)
	}
	m := keyMerge{from: from, to: to, ring: ring, batch: batch}
	plan, err := m.run(ctx, false, nil)
	if err != nil {
		return copiedKeys{}, err
	}
	bar := newBar(progress, plan.keys+plan.tombstones+plan.rewrapped, "data keys")
	done, err := m.run(ctx, true, bar)
	if err != nil {
		_ = bar.Exit()
		return done, err
	}
	_ = bar.Finish()
	return done, nil
}

// keyMerge copies the entries of one key store into another (see copyDataKeys). ring, when set (the
// key ring of ES_CIPHER_KEYS), tells a data key that the source rewrapped since an earlier copy from
// another store's key (see rewrapped).
type keyMerge struct {
	from, to datakey.Store
	ring     *cipher.KeyRing
	batch    int
}

// run goes through the entries of from, in pages of batch, beside those of to, and counts what copying
// them changes in to; when write, it changes it, adding one step to bar per entry written.
func (m keyMerge) run(ctx context.Context, write bool, bar *progressbar.ProgressBar) (copiedKeys, error) {
	to := m.to
	var n copiedKeys
	target := &keyCursor{ks: to, batch: m.batch}
	after := ""
	for {
		page, err := m.from.List(ctx, after, m.batch)
		if err != nil {
			return n, fmt.Errorf("source: %w", err)
		}
		n.source += int64(len(page))
		for _, e := range page {
			t, ok, err := target.find(ctx, e.Subject)
			if err != nil {
				return n, fmt.Errorf("target: %w", err)
			}
			switch {
			case e.Forgotten():
				if ok && t.Forgotten() {
					continue // copied before, or forgotten in the target too
				}
				if write {
					if err := to.Forget(ctx, e.Subject); err != nil {
						return n, fmt.Errorf("target: %w", err)
					}
					_ = bar.Add(1)
				}
				n.tombstones++
			case ok && t.Forgotten():
				n.keptForgotten++
			case ok && sameKey(e, t):
				// copied before
			case ok:
				// Checked in both passes: the write pass reads the target's entry anew.
				if err := m.rewrapped(ctx, e, t); err != nil {
					return n, err
				}
				if write {
					// A compare-and-set on the key that wrapped the target's entry when it was read.
					if done, err := to.Rewrap(ctx, []datakey.Rewrapped{{Entry: e, PreviousKeyID: t.KeyID}}); err != nil {
						return n, fmt.Errorf("target: %w", err)
					} else if done != 1 {
						return n, fmt.Errorf("%w: the data key of subject %q changed in the target during the copy", errTargetChanged, e.Subject)
					}
					_ = bar.Add(1)
				}
				n.rewrapped++
			default:
				if write {
					got, err := to.Add(ctx, e)
					if err != nil {
						return n, fmt.Errorf("target: %w", err)
					}
					// Someone wrote the subject's entry since it was read: the same checks.
					if got.Forgotten() {
						n.keptForgotten++
						continue
					}
					if !sameKey(e, got) {
						return n, otherKeyError(e, got)
					}
					_ = bar.Add(1)
				}
				n.keys++
			}
		}
		if len(page) < m.batch {
			return n, nil
		}
		after = page[len(page)-1].Subject
	}
}

// sameKey reports whether two entries hold the same wrapped data key.
func sameKey(a, b datakey.Entry) bool {
	return a.KeyID == b.KeyID && bytes.Equal(a.Wrapped, b.Wrapped)
}

// otherKeyError is the error for a target whose data key of a subject is not the source's.
func otherKeyError(src, dst datakey.Entry) error {
	return fmt.Errorf("%w: the target has another data key for subject %q (wrapped by key %q; the source's by key %q), "+
		"which copy never overwrites: copy into an empty store", errTargetChanged, src.Subject, dst.KeyID, src.KeyID)
}

// rewrapped returns nil when the target's entry t holds the data key of the source's entry e wrapped by
// another key (the source's keys were rotated since an earlier copy), which only the key ring can
// tell; it returns the reason to refuse the target otherwise. Neither key leaves this function.
func (m keyMerge) rewrapped(ctx context.Context, e, t datakey.Entry) error {
	if m.ring == nil {
		return fmt.Errorf("%w (if the source's keys were rotated since an earlier copy, set %s to the key ring, "+
			"with the keys that wrapped both, to let copy check that they are the same keys and rewrap them in the target)",
			otherKeyError(e, t), keysEnv)
	}
	a, err := unwrapEntry(ctx, m.ring, e)
	if err != nil {
		return fmt.Errorf("source: %w (%s must hold the keys that wrapped the data keys of both stores)", err, keysEnv)
	}
	b, err := unwrapEntry(ctx, m.ring, t)
	if err != nil {
		return fmt.Errorf("target: %w (%s must hold the keys that wrapped the data keys of both stores)", err, keysEnv)
	}
	probe := make([]byte, 32)
	rand.Read(probe)
	sealed, err := a.Encrypt(probe, nil)
	if err != nil {
		return err
	}
	if opened, err := b.Decrypt(sealed, nil); err != nil || !bytes.Equal(opened, probe) {
		return otherKeyError(e, t)
	}
	return nil
}

// unwrapEntry returns the data key of e, unwrapped with ring.
func unwrapEntry(ctx context.Context, ring *cipher.KeyRing, e datakey.Entry) (*cipher.AESGCM, error) {
	store := datakey.NewMemoryStore()
	if _, err := store.Add(ctx, e); err != nil {
		return nil, err
	}
	keys, err := datakey.New(ring, store, datakey.WithCacheSize(0))
	if err != nil {
		return nil, err
	}
	return keys.Get(ctx, e.Subject)
}

// keyCursor reads the entries of a key store in subject order, a page at a time, for finding the
// entries of increasing subjects.
type keyCursor struct {
	ks    datakey.Store
	batch int
	page  []datakey.Entry
	i     int
	last  bool // page is the store's last
}

// find returns the entry of subject, if the store has one. Each call's subject must sort after the
// previous call's.
func (c *keyCursor) find(ctx context.Context, subject string) (datakey.Entry, bool, error) {
	for {
		for c.i < len(c.page) && c.page[c.i].Subject < subject {
			c.i++
		}
		if c.i < len(c.page) {
			e := c.page[c.i]
			return e, e.Subject == subject, nil
		}
		if c.last && c.page != nil {
			return datakey.Entry{}, false, nil
		}
		after := ""
		if len(c.page) > 0 {
			after = c.page[len(c.page)-1].Subject
		}
		page, err := c.ks.List(ctx, after, c.batch)
		if err != nil {
			return datakey.Entry{}, false, err
		}
		c.page, c.i, c.last = page, 0, len(page) < c.batch
		if c.page == nil {
			c.page = []datakey.Entry{}
		}
	}
}

// noteDataKeys says, when the source has a data key store with entries, that copy (with -keys=false)
// leaves them behind: the target cannot decrypt the events of those subjects without them, and a
// subject forgotten in the source could get a new key in the target.
func noteDataKeys(ctx context.Context, src *store, out io.Writer) error {
	ks, err := src.keyStore(ctx)
	if errors.Is(err, schema.ErrNotMigrated) {
		return nil // a store from before data keys
	}
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	sum, err := datakey.Summarize(ctx, ks)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if sum.Keys+sum.Forgotten == 0 {
		return nil
	}
	var what []string
	if sum.Keys > 0 {
		what = append(what, "the source's "+plural(int64(sum.Keys), "data key")+", without which the target cannot decrypt those subjects' events and snapshots")
	}
	if sum.Forgotten > 0 {
		what = append(what, "the tombstones of the source's "+plural(int64(sum.Forgotten), "forgotten subject"))
	}
	fmt.Fprintf(out, "not copied (-keys=false): %s\n", strings.Join(what, ", and "))
	return nil
}

// copiedBefore returns the last notification a previous copy brought to dst: the target's last one,
// after checking that it is the source's notification of that ID (the target is not someone else's).
func copiedBefore(ctx context.Context, srcRec es.ApplicationRecorder, dst *store, upTo int64) (int64, error) {
	var last int64
	if err := dst.db.QueryRowContext(ctx, dst.text(maxNotificationID)).Scan(&last); err != nil {
		return 0, fmt.Errorf("target: %w", err)
	}
	if last == 0 {
		return 0, nil
	}
	if last > upTo {
		return 0, fmt.Errorf("%w: the target's last notification is %d, the source's %d: copy into an empty store", errTargetChanged, last, upTo)
	}
	var t es.StoredEvent
	if err := dst.db.QueryRowContext(ctx, dst.text(selectNotification), last).Scan(&t.OriginatorID, &t.OriginatorVersion, &t.Topic, &t.State); err != nil {
		return 0, fmt.Errorf("target: notification %d: %w", last, err)
	}
	page, err := srcRec.SelectNotifications(ctx, es.NotificationQuery{After: last - 1, UpTo: last, Limit: 1})
	if err != nil {
		return 0, fmt.Errorf("source: %w", err)
	}
	if len(page) == 0 || !sameEvent(page[0].StoredEvent, t) {
		return 0, fmt.Errorf("%w: the target's notification %d (%s v%d) is not the source's: copy into an empty store, or into the target of an interrupted copy of this source",
			errTargetChanged, last, t.OriginatorID, t.OriginatorVersion)
	}
	return last, nil
}

func sameEvent(a, b es.StoredEvent) bool {
	return a.OriginatorID == b.OriginatorID && a.OriginatorVersion == b.OriginatorVersion && a.Topic == b.Topic && bytes.Equal(a.State, b.State)
}

// copyEvents copies the source's notifications after after, up to upTo, a batch per transaction of the
// target. It returns how many it copied and the last notification ID copied.
func copyEvents(ctx context.Context, srcRec es.ApplicationRecorder, dst *store, after, upTo int64, batch int, bar *progressbar.ProgressBar) (int64, int64, error) {
	var copied int64
	last := after
	for last < upTo {
		page, err := srcRec.SelectNotifications(ctx, es.NotificationQuery{After: last, UpTo: upTo, Limit: batch})
		if err != nil {
			return copied, last, fmt.Errorf("source: %w", err)
		}
		if len(page) == 0 {
			break
		}
		if err := insertEvents(ctx, dst, last, page); err != nil {
			return copied, last, err
		}
		last = page[len(page)-1].ID
		copied += int64(len(page))
		_ = bar.Add64(int64(len(page)))
		if len(page) < batch {
			break
		}
	}
	return copied, last, nil
}

// insertEvents writes page into the target with its notification IDs, in one transaction that first
// checks that the target's last notification is after, the last one copied (see cmdCopy).
func insertEvents(ctx context.Context, dst *store, after int64, page []es.Notification) error {
	return inTx(ctx, dst.db, func(tx *sql.Tx) error {
		if dst.dialect == schema.Postgres {
			if _, err := tx.ExecContext(ctx, dst.text(lockEvents)); err != nil {
				return fmt.Errorf("target: lock the events table: %w", err)
			}
		}
		var last int64
		if err := tx.QueryRowContext(ctx, dst.text(maxNotificationID)).Scan(&last); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		if last != after {
			return fmt.Errorf("%w: its last notification is %d where the copy left it at %d: an application writes to it; stop it and copy into an empty store",
				errTargetChanged, last, after)
		}
		if dst.dialect == schema.Postgres {
			ids, oids, versions, topics, states := make([]int64, len(page)), make([][16]byte, len(page)),
				make([]int64, len(page)), make([]string, len(page)), make([][]byte, len(page))
			for i, n := range page {
				ids[i], oids[i], versions[i], topics[i], states[i] = n.ID, n.OriginatorID, n.OriginatorVersion, n.Topic, notNull(n.State)
			}
			if _, err := tx.ExecContext(ctx, dst.text(insertEvent), ids, oids, versions, topics, states); err != nil {
				return fmt.Errorf("target: insert notifications %d to %d: %w", ids[0], ids[len(ids)-1], err)
			}
			if _, err := tx.ExecContext(ctx, dst.text(advanceSequence), ids[len(ids)-1]); err != nil {
				return fmt.Errorf("target: advance the notification sequence: %w", err)
			}
			return nil
		}
		stmt, err := tx.PrepareContext(ctx, dst.text(insertEvent))
		if err != nil {
			return fmt.Errorf("target: %w", err)
		}
		defer stmt.Close()
		for _, n := range page {
			if _, err := stmt.ExecContext(ctx, n.ID, n.OriginatorID[:], n.OriginatorVersion, n.Topic, n.State); err != nil {
				return fmt.Errorf("target: insert notification %d: %w", n.ID, err)
			}
		}
		return nil
	})
}

// notNull returns state, or an empty one for nil: PostgreSQL's state column is NOT NULL.
func notNull(state []byte) []byte {
	if state == nil {
		return []byte{}
	}
	return state
}

// copySnapshots copies every snapshot of src that dst does not have, in key order, a batch per
// transaction, and returns how many it wrote. Snapshots are few next to events and copying one twice is harmless, so a resumed copy
// goes through them all again rather than trust where the last one stopped.
func copySnapshots(ctx context.Context, src, dst *store, batch int, progress io.Writer) (int64, error) {
	var total, aggregates, size int64
	if err := src.db.QueryRowContext(ctx, src.text(countSnapshots)).Scan(&total, &aggregates, &size); err != nil {
		return 0, fmt.Errorf("source: count snapshots: %w", err)
	}
	bar := newBar(progress, total, "snapshots")
	var copied int64
	var afterID uuid.UUID
	var afterVersion int64
	for {
		page, err := selectSnapshotPage(ctx, src, afterID, afterVersion, batch)
		if err != nil {
			_ = bar.Exit()
			return copied, fmt.Errorf("source: snapshots: %w", err)
		}
		if len(page) == 0 {
			break
		}
		var inserted int64
		err = inTx(ctx, dst.db, func(tx *sql.Tx) error {
			inserted = 0
			for _, s := range page {
				id := any(s.OriginatorID)
				if dst.dialect == schema.SQLite {
					id = s.OriginatorID[:]
				}
				state := s.State
				if dst.dialect == schema.Postgres {
					state = notNull(state)
				}
				res, err := tx.ExecContext(ctx, dst.text(insertSnapshot), id, s.OriginatorVersion, s.Topic, state)
				if err != nil {
					return fmt.Errorf("target: snapshot of %s at version %d: %w", s.OriginatorID, s.OriginatorVersion, err)
				}
				// A snapshot the target has already is skipped (ON CONFLICT DO NOTHING), and not counted.
				if n, err := res.RowsAffected(); err == nil {
					inserted += n
				}
			}
			return nil
		})
		if err != nil {
			_ = bar.Exit()
			return copied, err
		}
		copied += inserted
		_ = bar.Add64(int64(len(page)))
		afterID, afterVersion = page[len(page)-1].OriginatorID, page[len(page)-1].OriginatorVersion
		if len(page) < batch {
			break
		}
	}
	_ = bar.Finish()
	return copied, nil
}

func selectSnapshotPage(ctx context.Context, s *store, afterID uuid.UUID, afterVersion int64, limit int) ([]es.StoredEvent, error) {
	id := any(afterID)
	if s.dialect == schema.SQLite {
		id = afterID[:]
	}
	rows, err := s.db.QueryContext(ctx, s.text(selectSnapshots), id, afterVersion, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var page []es.StoredEvent
	for rows.Next() {
		var e es.StoredEvent
		if err := rows.Scan(&e.OriginatorID, &e.OriginatorVersion, &e.Topic, &e.State); err != nil {
			return nil, err
		}
		page = append(page, e)
	}
	return page, rows.Err()
}

// newBar returns a progress bar of total steps written to w, with the rate and the time left. With
// nothing to do it shows nothing.
func newBar(w io.Writer, total int64, what string) *progressbar.ProgressBar {
	if total == 0 {
		w = io.Discard
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(fmt.Sprintf("%-9s", what)),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(what),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
}

// plural returns "1 event", "2 events".
func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// inTx runs fn in a transaction of db, committed when fn returns nil and rolled back otherwise.
func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
