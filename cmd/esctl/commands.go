package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

func cmdMigrate(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	sf := addStoreFlags(fs, "")
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := openStore(ctx, sf)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "migrated", *sf.dsn)
	return nil
}

func cmdInfo(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	sf := addStoreFlags(fs, "")
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := openStore(ctx, sf)
	if err != nil {
		return err
	}
	defer s.Close()
	rec, err := s.recorder(ctx)
	if err != nil {
		return err
	}
	last, err := rec.MaxNotificationID(ctx)
	if err != nil {
		return err
	}
	var events, bytes int64
	topics := map[string]int64{}
	var order []string
	var keys keyCounts
	for n, err := range pages(ctx, rec, 0, nil) {
		if err != nil {
			return err
		}
		keys.add(n.StoredEvent)
		events++
		bytes += int64(len(n.State))
		if _, ok := topics[n.Topic]; !ok {
			order = append(order, n.Topic)
		}
		topics[n.Topic]++
	}
	fmt.Fprintf(out, "store:                  %s\n", *sf.dsn)
	fmt.Fprintf(out, "max notification ID:    %d\n", last)
	fmt.Fprintf(out, "events:                 %d (%d bytes of state)\n", events, bytes)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "topic\tevents")
	for _, t := range order {
		fmt.Fprintf(tw, "%s\t%d\n", t, topics[t])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return keys.print(ctx, s, out)
}

// pages yields the notification log after after, page by page, until its current end.
func pages(ctx context.Context, rec es.ApplicationRecorder, after int64, topics []string) func(func(es.Notification, error) bool) {
	return func(yield func(es.Notification, error) bool) {
		for {
			page, err := rec.SelectNotifications(ctx, es.NotificationQuery{After: after, Limit: 1000, Topics: topics})
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
			if len(page) < 1000 {
				return
			}
		}
	}
}

func cmdTail(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	sf := addStoreFlags(fs, "")
	after := fs.Int64("after", -1, "print notifications after this ID (default: the last 20)")
	follow := fs.Bool("follow", false, "keep printing new notifications until interrupted")
	topicList := fs.String("topics", "", "comma-separated topics to print (default: all)")
	decode := fs.Bool("decode", false, "print each event's timestamp and data as JSON (keys from $"+keysEnv+")")
	if err := parse(fs, args); err != nil {
		return err
	}
	var topics []string
	if *topicList != "" {
		topics = strings.Split(*topicList, ",")
	}
	s, err := openStore(ctx, sf)
	if err != nil {
		return err
	}
	defer s.Close()
	rec, err := s.recorder(ctx)
	if err != nil {
		return err
	}
	if *after < 0 {
		last, err := rec.MaxNotificationID(ctx)
		if err != nil {
			return err
		}
		*after = max(0, last-20)
	}
	var dec *bodyDecoder
	if *decode {
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
		for n, err := range pages(ctx, rec, *after, topics) {
			if err != nil {
				return err
			}
			print(n)
		}
		return nil
	}
	for n, err := range rec.Subscribe(ctx, *after, topics...) {
		if err != nil {
			return err
		}
		print(n)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil
	}
	return ctx.Err()
}

func cmdEvents(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	sf := addStoreFlags(fs, "")
	id := fs.String("id", "", "the aggregate's ID")
	decode := fs.Bool("decode", false, "print each event's timestamp and data as JSON (keys from $"+keysEnv+")")
	if err := parse(fs, args); err != nil {
		return err
	}
	oid, err := uuid.Parse(*id)
	if err != nil {
		return fmt.Errorf("-id: %w", err)
	}
	s, err := openStore(ctx, sf)
	if err != nil {
		return err
	}
	defer s.Close()
	rec, err := s.recorder(ctx)
	if err != nil {
		return err
	}
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
}

func cmdCopy(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("copy", flag.ContinueOnError)
	from := addStoreFlags(fs, "")
	to := addStoreFlags(fs, "to")
	batch := fs.Int("batch", 500, "events per InsertEvents call")
	if err := parse(fs, args); err != nil {
		return err
	}
	src, err := openStore(ctx, from)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer src.Close()
	dst, err := openStore(ctx, to)
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
	dstRec, err := dst.recorder(ctx)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if n, err := dstRec.MaxNotificationID(ctx); err != nil {
		return fmt.Errorf("target: %w", err)
	} else if n != 0 {
		return fmt.Errorf("target is not empty (notification %d): copy into an empty store only", n)
	}
	var copied int64
	buf := make([]es.StoredEvent, 0, *batch)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := dstRec.InsertEvents(ctx, buf); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		copied += int64(len(buf))
		buf = buf[:0]
		return nil
	}
	for n, err := range pages(ctx, srcRec, 0, nil) {
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		buf = append(buf, n.StoredEvent)
		if len(buf) == cap(buf) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "copied %d events\n", copied)
	return nil
}
