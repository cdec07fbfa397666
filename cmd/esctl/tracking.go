package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"text/tabwriter"
)

// Tracking, in one place: what a tracking record is, how info shows the marks and how copy carries
// them over. A mark says that a consumer has processed an upstream application's notifications up to
// an ID.

// mark is one row of the tracking table.
type mark struct {
	upstream       string // the upstream application
	notificationID int64  // the last of its notifications processed
}

var (
	selectMarks = query{
		sqlite:   `SELECT application_name, notification_id FROM tracking ORDER BY application_name`,
		postgres: `SELECT application_name, notification_id FROM /* TEMPLATE: schema */tracking ORDER BY application_name`,
	}
	// raiseMark never lowers a mark the target has already.
	raiseMark = query{
		sqlite: `INSERT INTO tracking (application_name, notification_id) VALUES (?, ?)
			ON CONFLICT (application_name) DO UPDATE SET notification_id = excluded.notification_id
			WHERE excluded.notification_id > tracking.notification_id`,
		postgres: `INSERT INTO /* TEMPLATE: schema */tracking AS t (application_name, notification_id) VALUES ($1, $2)
			ON CONFLICT (application_name) DO UPDATE SET notification_id = excluded.notification_id
			WHERE excluded.notification_id > t.notification_id`,
	}
)

// readMarks returns the store's tracking marks.
func readMarks(ctx context.Context, s *store) ([]mark, error) {
	rows, err := s.db.QueryContext(ctx, s.text(selectMarks))
	if err != nil {
		return nil, fmt.Errorf("%s: read tracking: %w", s, err)
	}
	defer rows.Close()
	var marks []mark
	for rows.Next() {
		var m mark
		if err := rows.Scan(&m.upstream, &m.notificationID); err != nil {
			return nil, fmt.Errorf("%s: read tracking: %w", s, err)
		}
		marks = append(marks, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: read tracking: %w", s, err)
	}
	return marks, nil
}

// printMarks shows the marks under info's heading.
func printMarks(w io.Writer, marks []mark) error {
	fmt.Fprintf(w, "tracking:               %s\n", plural(int64(len(marks)), "mark"))
	if len(marks) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  upstream\tprocessed up to notification")
	for _, m := range marks {
		fmt.Fprintf(tw, "  %s\t%d\n", m.upstream, m.notificationID)
	}
	return tw.Flush()
}

// writeMarks raises the target's marks to marks, in one transaction.
func writeMarks(ctx context.Context, s *store, marks []mark) error {
	return inTx(ctx, s.db, func(tx *sql.Tx) error {
		for _, m := range marks {
			if _, err := tx.ExecContext(ctx, s.text(raiseMark), m.upstream, m.notificationID); err != nil {
				return fmt.Errorf("%s: write tracking of %q: %w", s, m.upstream, err)
			}
		}
		return nil
	})
}
