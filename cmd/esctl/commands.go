package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

func cmdMigrate(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	sf := addStoreFlags(fs, "", "store")
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	return withStore(ctx, sf, readWrite, func(s *store) error {
		if err := s.migrate(ctx); err != nil {
			return err
		}
		var version int64
		if err := s.db.QueryRowContext(ctx, s.text(migrationVersion)).Scan(&version); err != nil {
			return fmt.Errorf("%s: read the migration version: %w", s, err)
		}
		fmt.Fprintf(out, "migrated %s to migration %d\n", s, version)
		return nil
	})
}

func cmdInfo(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	sf := addStoreFlags(fs, "", "store")
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	return withStore(ctx, sf, readOnly, func(s *store) error { return info(ctx, s, out) })
}

// info prints what the store s holds.
func info(ctx context.Context, s *store, out io.Writer) error {
	var version, last int64
	if err := s.db.QueryRowContext(ctx, s.text(migrationVersion)).Scan(&version); err != nil {
		return fmt.Errorf("%s: read the migration version: %w", s, err)
	}
	latest, err := s.latestMigration()
	if err != nil {
		return err
	}
	if err := s.db.QueryRowContext(ctx, s.text(maxNotificationID)).Scan(&last); err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	type topicCount struct {
		topic         string
		events, bytes int64
	}
	var topics []topicCount
	var events, bytes int64
	rows, err := s.db.QueryContext(ctx, s.text(eventsByTopic))
	if err != nil {
		return fmt.Errorf("%s: count events: %w", s, err)
	}
	for rows.Next() {
		var t topicCount
		if err := rows.Scan(&t.topic, &t.events, &t.bytes); err != nil {
			rows.Close()
			return fmt.Errorf("%s: count events: %w", s, err)
		}
		topics = append(topics, t)
		events += t.events
		bytes += t.bytes
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: count events: %w", s, err)
	}
	var snapshots, snapshotted, snapshotBytes int64
	if err := s.db.QueryRowContext(ctx, s.text(countSnapshots)).Scan(&snapshots, &snapshotted, &snapshotBytes); err != nil {
		return fmt.Errorf("%s: count snapshots: %w", s, err)
	}
	marks, err := readMarks(ctx, s)
	if err != nil {
		return err
	}

	dialect := "SQLite"
	if s.dialect == schema.Postgres {
		dialect = "PostgreSQL"
	}
	fmt.Fprintf(out, "store:                  %s, %s\n", s, dialect)
	if version < latest {
		fmt.Fprintf(out, "schema:                 migration %d of %d: run '%s'\n", version, latest, s.migrateCommand())
	} else {
		fmt.Fprintf(out, "schema:                 migration %d (up to date)\n", version)
	}
	fmt.Fprintf(out, "max notification ID:    %d\n", last)
	fmt.Fprintf(out, "events:                 %d (%d bytes of state)\n", events, bytes)
	if len(topics) > 0 {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  topic\tevents\tbytes")
		for _, t := range topics {
			fmt.Fprintf(tw, "  %s\t%d\t%d\n", t.topic, t.events, t.bytes)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "snapshots:              %d of %s (%d bytes of state)\n", snapshots, plural(snapshotted, "aggregate"), snapshotBytes)
	if err := printMarks(out, marks, -1); err != nil {
		return err
	}
	// The keys that encrypted the events are named in their headers: read them all.
	rec, err := s.recorder(ctx)
	if err != nil {
		return err
	}
	var keys keyCounts
	for n, err := range pages(ctx, rec, 0, 0, nil, tailPage) {
		if err != nil {
			return err
		}
		keys.add(n.StoredEvent)
	}
	return keys.print(ctx, s, out)
}

// pages yields the notification log after after, up to upTo (0: its current end), page by page.
func pages(ctx context.Context, rec es.ApplicationRecorder, after, upTo int64, topics []string, size int) func(func(es.Notification, error) bool) {
	return func(yield func(es.Notification, error) bool) {
		for {
			page, err := rec.SelectNotifications(ctx, es.NotificationQuery{After: after, UpTo: upTo, Limit: size, Topics: topics})
			if err != nil {
				yield(es.Notification{}, err)
				return
			}
			for _, n := range page {
				if !yield(n, nil) {
					return
				}
				after = n.ID
			}
			if len(page) < size {
				return
			}
		}
	}
}

// tailPage is how many notifications tail reads at a time, and tailLast how many it prints without
// -after.
const (
	tailPage = 1000
	tailLast = 20
)

// optionalID is a notification ID flag that may be left out. Its unset value prints no default in -h,
// so that the flag's usage says what leaving it out means, once.
type optionalID struct {
	id  int64
	set bool
}

func (o *optionalID) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.FormatInt(o.id, 10)
}

func (o *optionalID) Set(s string) error {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 {
		return errors.New("not a notification ID (0 or more)")
	}
	o.id, o.set = id, true
	return nil
}

func cmdTail(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	sf := addStoreFlags(fs, "", "store")
	var after optionalID
	fs.Var(&after, "after", fmt.Sprintf("print the notifications after this `ID` (default: the last %d)", tailLast))
	follow := fs.Bool("follow", false, "keep printing new notifications until interrupted")
	topicList := fs.String("topics", "", "comma-separated topics to print (default: all)")
	decode := fs.Bool("decode", false, "print each event's timestamp and data as JSON (keys from $"+keysEnv+")")
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	var topics []string
	if *topicList != "" {
		topics = strings.Split(*topicList, ",")
	}
	return withRecorder(ctx, sf, readOnly, func(s *store, rec es.ProcessRecorder) error {
		if !after.set {
			last, err := rec.MaxNotificationID(ctx)
			if err != nil {
				return err
			}
			after.id = max(0, last-tailLast)
		}
		var dec *bodyDecoder
		if *decode {
			var err error
			if dec, err = newBodyDecoder(ctx, s); err != nil {
				return err
			}
		}
		print := func(n es.Notification) {
			if dec != nil {
				fmt.Fprintf(out, "%d\t%s\tv%d\t%s\t%s\n", n.ID, n.OriginatorID, n.OriginatorVersion, n.Topic, dec.body(ctx, n.StoredEvent))
				return
			}
			fmt.Fprintf(out, "%d\t%s\tv%d\t%s\t%d bytes\n", n.ID, n.OriginatorID, n.OriginatorVersion, n.Topic, len(n.State))
		}
		if !*follow {
			for n, err := range pages(ctx, rec, after.id, 0, topics, tailPage) {
				if err != nil {
					return err
				}
				print(n)
			}
			return nil
		}
		for n, err := range rec.Subscribe(ctx, after.id, topics...) {
			if err != nil {
				return err
			}
			print(n)
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil
		}
		return ctx.Err()
	})
}

func cmdEvents(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	sf := addStoreFlags(fs, "", "store")
	id := fs.String("id", "", "the aggregate's ID")
	decode := fs.Bool("decode", false, "print each event's timestamp and data as JSON (keys from $"+keysEnv+")")
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	oid, err := uuid.Parse(*id)
	if err != nil {
		return fmt.Errorf("-id: %w", err)
	}
	return withRecorder(ctx, sf, readOnly, func(s *store, rec es.ProcessRecorder) error {
		events, err := rec.SelectEvents(ctx, oid, es.EventQuery{})
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return fmt.Errorf("no events of %s: %w", oid, es.ErrNotFound)
		}
		var dec *bodyDecoder
		if *decode {
			if dec, err = newBodyDecoder(ctx, s); err != nil {
				return err
			}
		}
		for _, e := range events {
			if dec != nil {
				fmt.Fprintf(out, "v%d\t%s\t%s\n", e.OriginatorVersion, e.Topic, dec.body(ctx, e))
				continue
			}
			fmt.Fprintf(out, "v%d\t%s\t%d bytes\n", e.OriginatorVersion, e.Topic, len(e.State))
		}
		return nil
	})
}
