package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	es "github.com/eventsourcing-go/eventsourcing"
)

// Tracking, in one place: what a tracking record is, how info and the tracking command show the
// marks, how copy carries them over, and how an operator asks for a rebuild. A mark says that a
// consumer (a projection or a process application) has processed an upstream application's
// notifications up to an ID.

// mark is one row of the tracking table.
type mark struct {
	consumer       string // the projection or process application
	upstream       string // the upstream application
	notificationID int64  // the last of its notifications processed
}

// raiseMark never lowers a mark the target has already.
var raiseMark = query{
	sqlite: `INSERT INTO tracking (consumer, upstream, notification_id) VALUES (?, ?, ?)
		ON CONFLICT (consumer, upstream) DO UPDATE SET notification_id = excluded.notification_id
		WHERE excluded.notification_id > tracking.notification_id`,
	postgres: `INSERT INTO /* TEMPLATE: schema */tracking AS t (consumer, upstream, notification_id) VALUES ($1, $2, $3)
		ON CONFLICT (consumer, upstream) DO UPDATE SET notification_id = excluded.notification_id
		WHERE excluded.notification_id > t.notification_id`,
}

// readMarks returns the store's tracking marks, ordered by consumer and upstream.
func readMarks(ctx context.Context, s *store) ([]mark, error) {
	rec, err := s.recorder(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := rec.TrackingMarks(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: read tracking: %w", s, err)
	}
	marks := make([]mark, len(ts))
	for i, t := range ts {
		marks[i] = mark{consumer: t.Consumer, upstream: t.Upstream, notificationID: t.NotificationID}
	}
	return marks, nil
}

// printMarks shows the marks under info's heading, with their lag behind head when head is known
// (head >= 0).
func printMarks(w io.Writer, marks []mark, head int64) error {
	fmt.Fprintf(w, "tracking:               %s\n", plural(int64(len(marks)), "mark"))
	if len(marks) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if head < 0 {
		fmt.Fprintln(tw, "  consumer\tupstream\tprocessed up to notification")
	} else {
		fmt.Fprintf(tw, "  consumer\tupstream\tprocessed up to notification\tlag behind %d\n", head)
	}
	for _, m := range marks {
		consumer := m.consumer
		if consumer == "" {
			consumer = `""`
		}
		if head < 0 {
			fmt.Fprintf(tw, "  %s\t%s\t%d\n", consumer, m.upstream, m.notificationID)
		} else {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\n", consumer, m.upstream, m.notificationID, max(head-m.notificationID, 0))
		}
	}
	return tw.Flush()
}

// writeMarks raises the target's marks to marks, in one transaction.
func writeMarks(ctx context.Context, s *store, marks []mark) error {
	return inTx(ctx, s.db, func(tx *sql.Tx) error {
		for _, m := range marks {
			if _, err := tx.ExecContext(ctx, s.text(raiseMark), m.consumer, m.upstream, m.notificationID); err != nil {
				return fmt.Errorf("%s: write tracking of %q for %q: %w", s, m.consumer, m.upstream, err)
			}
		}
		return nil
	})
}

const trackingUsage = `usage: esctl tracking [command] [flags]

commands:
  (none)    show every consumer's mark per upstream, and its lag behind the upstream's log
  rebuild   delete a consumer's mark, so that it rebuilds its read model (see projection.WithReset)
  adopt     give the marks of the consumer "" (from before marks were kept per consumer) to a consumer

run 'esctl tracking <command> -h' for a command's flags`

func cmdTracking(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		return commands{
			"rebuild": cmdTrackingRebuild,
			"adopt":   cmdTrackingAdopt,
		}.run(ctx, "tracking", trackingUsage, args, out, errOut)
	}
	fs := flag.NewFlagSet("tracking", flag.ContinueOnError)
	sf := addStoreFlags(fs, "", "store")
	logf := addStoreFlags(fs, "log", "upstream's log")
	// What leaving them out means is said here, once per flag: the store's own log.
	fs.Lookup(logf.dsnFlag).Usage = "the upstream's log, for the lag: postgres://… DSN, or a SQLite file path (default: the store itself)"
	fs.Lookup(logf.schemaFlag).Usage = "PostgreSQL schema of the upstream's log (default: the store's -schema without -" + logf.dsnFlag +
		", the search_path with it)"
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	return withStore(ctx, sf, readOnly, func(s *store) error { return lag(ctx, s, sf, logf, out) })
}

// lag prints the marks of the store s and how far they are behind the upstream log, which logf names
// (default: s).
func lag(ctx context.Context, s *store, sf, logf storeFlags, out io.Writer) error {
	marks, err := readMarks(ctx, s)
	if err != nil {
		return err
	}
	log := s
	if *logf.dsn != "" || *logf.schema != "" {
		if *logf.dsn == "" {
			*logf.dsn = *sf.dsn // another schema of the store's database
		}
		if log, err = openStore(ctx, logf, readOnly); err != nil {
			return err
		}
		defer log.Close()
	}
	rec, err := log.recorder(ctx)
	if err != nil {
		return err
	}
	head, err := rec.MaxNotificationID(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", log, err)
	}
	fmt.Fprintf(out, "upstream log:           %s, up to notification %d\n", log, head)
	return printMarks(out, marks, head)
}

func cmdTrackingRebuild(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("tracking rebuild", flag.ContinueOnError)
	sf := addStoreFlags(fs, "", "store")
	consumer := fs.String("consumer", "", "the projection to rebuild (its runner's name)")
	upstream := fs.String("upstream", "", "the upstream application whose log it rebuilds from")
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	if *consumer == "" || *upstream == "" {
		return errors.New("tracking rebuild: give -consumer and -upstream")
	}
	return withRecorder(ctx, sf, update, func(s *store, rec es.ProcessRecorder) error {
		mark, err := rec.MaxTrackingID(ctx, *consumer, *upstream)
		if err != nil {
			return err
		}
		if mark == 0 {
			return fmt.Errorf("tracking rebuild: %q has no mark for %q in %s: nothing to rebuild (check the names with 'esctl tracking')", *consumer, *upstream, s)
		}
		if err := rec.DeleteTracking(ctx, *consumer, *upstream); err != nil {
			return err
		}
		fmt.Fprintf(out, "deleted the mark of %q for %q (it was at notification %d)\n", *consumer, *upstream, mark)
		fmt.Fprintln(out, "its runner starts over and clears the old read model in its first batch: it must have a reset function (projection.WithReset);")
		fmt.Fprintln(out, "a running one starts over at its next batch, a runner without a reset function stops with projection.ErrReset")
		return nil
	})
}

func cmdTrackingAdopt(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("tracking adopt", flag.ContinueOnError)
	sf := addStoreFlags(fs, "", "store")
	consumer := fs.String("consumer", "", `the consumer to give the marks of "" to`)
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	if *consumer == "" {
		return errors.New("tracking adopt: give -consumer")
	}
	return withRecorder(ctx, sf, update, func(s *store, rec es.ProcessRecorder) error { return adopt(ctx, s, rec, *consumer, out) })
}

// adopt is tracking adopt's work on the store's recorder.
func adopt(ctx context.Context, s *store, rec es.ProcessRecorder, consumer string, out io.Writer) error {
	marks, err := rec.TrackingMarks(ctx)
	if err != nil {
		return err
	}
	adopted := 0
	for _, m := range marks {
		if m.Consumer != "" {
			continue
		}
		// The new mark first, then the old one goes: an interruption leaves both, never neither.
		t := es.Tracking{Consumer: consumer, Upstream: m.Upstream, NotificationID: m.NotificationID}
		if err := rec.InsertTracking(ctx, t); err != nil {
			return fmt.Errorf("tracking adopt: %q has a mark for %q already, or it could not be written: %w", consumer, m.Upstream, err)
		}
		if err := rec.DeleteTracking(ctx, "", m.Upstream); err != nil {
			return err
		}
		fmt.Fprintf(out, "%q now tracks %q up to notification %d\n", consumer, m.Upstream, m.NotificationID)
		adopted++
	}
	if adopted == 0 {
		return fmt.Errorf(`tracking adopt: the consumer "" has no marks in %s`, s)
	}
	return nil
}
