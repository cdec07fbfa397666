package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
)

// esctl tracking shows every consumer's mark and its lag behind the log; rebuild deletes a
// consumer's mark; adopt hands the marks of the consumer "" to a named one.
func TestTracking(t *testing.T) {
	ctx := context.Background()
	path := migrated(t, filepath.Join(t.TempDir(), "t.db"))
	withSQLite(t, path, func(db *sql.DB, rec *sqlite.ProcessRecorder) {
		if _, err := rec.InsertEvents(ctx, events(uuid.New(), 10)); err != nil {
			t.Fatal(err)
		}
		for _, tr := range []es.Tracking{
			{Consumer: "balances", Upstream: "bank", NotificationID: 10},
			{Consumer: "activity", Upstream: "bank", NotificationID: 4},
			{Consumer: "", Upstream: "orders", NotificationID: 7},
		} {
			if err := rec.InsertTracking(ctx, tr); err != nil {
				t.Fatal(err)
			}
		}
	})
	out, _, err := esctl(t, "tracking", "-dsn", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^\s+""\s+orders\s+7\s+3$`, `(?m)^\s+activity\s+bank\s+4\s+6$`, `(?m)^\s+balances\s+bank\s+10\s+0$`, `up to notification 10`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("esctl tracking does not match %s:\n%s", re, out)
		}
	}

	if out, _, err := esctl(t, "tracking", "rebuild", "-dsn", path, "-consumer", "activity", "-upstream", "bank"); err != nil || !strings.Contains(out, "projection.WithReset") {
		t.Fatalf("tracking rebuild: %v\n%s", err, out)
	}
	if _, _, err := esctl(t, "tracking", "rebuild", "-dsn", path, "-consumer", "activity", "-upstream", "bank"); err == nil || !strings.Contains(err.Error(), "nothing to rebuild") {
		t.Fatalf("tracking rebuild of a mark that is gone: %v", err)
	}
	if _, _, err := esctl(t, "tracking", "adopt", "-dsn", path, "-consumer", "invoicing"); err != nil {
		t.Fatalf("tracking adopt: %v", err)
	}
	if _, _, err := esctl(t, "tracking", "adopt", "-dsn", path, "-consumer", "invoicing"); err == nil {
		t.Fatal("tracking adopt without marks of \"\" succeeded")
	}
	withSQLite(t, path, func(db *sql.DB, rec *sqlite.ProcessRecorder) {
		marks, err := rec.TrackingMarks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []es.Tracking{{Consumer: "balances", Upstream: "bank", NotificationID: 10}, {Consumer: "invoicing", Upstream: "orders", NotificationID: 7}}
		if len(marks) != 2 || marks[0] != want[0] || marks[1] != want[1] {
			t.Fatalf("marks after rebuild and adopt: %+v, want %+v", marks, want)
		}
	})
}
