package main

import (
	"bytes"
	"context"
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
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// defaultCopyBatch is how many events (or snapshots) copy writes per transaction of the target.
const defaultCopyBatch = 500

// errTargetChanged is wrapped by the error of a copy whose target was written to by someone else.
var errTargetChanged = errors.New("the target is not a copy of the source")

// cmdCopy copies a store into another: its events with their notification IDs, then its snapshots and
// its tracking marks. It copies no data keys, and says so when the source has any. Each batch of events is one transaction of the target, so an interrupted copy
// leaves a target that holds the source's first events, and running copy again resumes after them.
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
func cmdCopy(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("copy", flag.ContinueOnError)
	from := addStoreFlags(fs, "", "source")
	to := addStoreFlags(fs, "to", "target")
	batch := fs.Int("batch", defaultCopyBatch, "events or snapshots per transaction of the target")
	quiet := fs.Bool("quiet", false, "no progress bars")
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
	fmt.Fprintf(out, "copied %s (notification IDs kept), %s, %s\n",
		plural(copied, "event"), plural(snapshots, "snapshot"), plural(int64(len(marks)), "tracking mark"))
	if last < upTo {
		fmt.Fprintf(out, "the source's notifications after %d were not final yet (appends in progress): run copy again to bring them\n", last)
	}
	return noteDataKeys(ctx, src, out)
}

// noteDataKeys says, when the source has a data key store with entries, that copy leaves them behind:
// the target cannot decrypt the events of those subjects without them, and a subject forgotten in the
// source could get a new key in the target.
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
	fmt.Fprintf(out, "not copied (esctl copies no data keys): %s\n", strings.Join(what, ", and "))
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
