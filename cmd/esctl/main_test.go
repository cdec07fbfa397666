package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
)

func esctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, &out)
	return out.String(), err
}

func seed(t *testing.T, path string, ids ...uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	db, err := ncruces.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec, err := sqlite.NewProcessRecorder(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	for _, id := range ids {
		var batch []es.StoredEvent
		for v := int64(1); v <= 3; v++ {
			batch = append(batch, es.StoredEvent{OriginatorID: id, OriginatorVersion: v, Topic: fmt.Sprintf("test.E%d", v), State: []byte("state")})
		}
		if _, err := rec.InsertEvents(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.db"), filepath.Join(dir, "dst.db")
	if out, err := esctl(t, "migrate", "-dsn", src); err != nil || !strings.Contains(out, "migrated") {
		t.Fatalf("migrate: %q %v", out, err)
	}
	a, b := uuid.New(), uuid.New()
	seed(t, src, a, b)

	out, err := esctl(t, "info", "-dsn", src)
	if err != nil || !strings.Contains(out, "max notification ID:    6") || !strings.Contains(out, "events:                 6 (30 bytes") {
		t.Fatalf("info: %q %v", out, err)
	}
	out, err = esctl(t, "tail", "-dsn", src, "-after", "4")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.HasPrefix(out, "5\t"+b.String()+"\tv2\ttest.E2") {
		t.Fatalf("tail: %q %v", out, err)
	}
	out, err = esctl(t, "tail", "-dsn", src, "-topics", "test.E3")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "3\t"+a.String()) {
		t.Fatalf("tail -topics: %q %v", out, err)
	}
	out, err = esctl(t, "events", "-dsn", src, "-id", a.String())
	if err != nil || out != "v1\ttest.E1\t5 bytes\nv2\ttest.E2\t5 bytes\nv3\ttest.E3\t5 bytes\n" {
		t.Fatalf("events: %q %v", out, err)
	}
	out, err = esctl(t, "copy", "-dsn", src, "-to", dst, "-batch", "4")
	if err != nil || out != "copied 6 events\n" {
		t.Fatalf("copy: %q %v", out, err)
	}
	srcTail, _ := esctl(t, "tail", "-dsn", src, "-after", "0")
	dstTail, _ := esctl(t, "tail", "-dsn", dst, "-after", "0")
	if srcTail != dstTail {
		t.Fatalf("copy changed the log:\n%s\n%s", srcTail, dstTail)
	}
	if _, err := esctl(t, "copy", "-dsn", src, "-to", dst); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("copy into a non-empty store: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.db")
	cases := map[string][]string{
		"no command":      {},
		"unknown command": {"frobnicate"},
		"no store":        {"info"},
		"unmigrated":      {"info", "-dsn", path},
		"bad id":          {"events", "-dsn", path, "-id", "nope"},
		"schema on file":  {"info", "-dsn", path, "-schema", "x"},
		"extra args":      {"info", "-dsn", path, "extra"},
		"unknown id":      {"events", "-dsn", filepath.Join(dir, "m.db"), "-id", uuid.NewString()},
	}
	if _, err := esctl(t, "migrate", "-dsn", filepath.Join(dir, "m.db")); err != nil {
		t.Fatal(err)
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			if out, err := esctl(t, args...); err == nil {
				t.Fatalf("no error; output %q", out)
			}
		})
	}
}
