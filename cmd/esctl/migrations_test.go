package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// The exported files are the module's, and goose runs them from the directory (as its command-line
// tool would) into a database the recorders accept.
func TestMigrationsExport(t *testing.T) {
	for _, d := range []schema.Dialect{schema.Postgres, schema.SQLite} {
		dir := filepath.Join(t.TempDir(), "migrations")
		if out, _, err := esctl(t, "migrations", "export", "-dialect", string(d), dir); err != nil || !strings.Contains(out, "written") {
			t.Fatalf("%s: export: %q %v", d, out, err)
		}
		src, err := schema.FS(d)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := fs.Glob(src, "*.sql")
		got, _ := filepath.Glob(filepath.Join(dir, "*.sql"))
		if len(want) == 0 || len(got) != len(want) {
			t.Fatalf("%s: exported %v, want %v", d, got, want)
		}
		for _, name := range want {
			a, _ := fs.ReadFile(src, name)
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || string(a) != string(b) {
				t.Fatalf("%s: %s differs from the module's (%v)", d, name, err)
			}
		}
		if out, _, err := esctl(t, "migrations", "export", "-dialect", string(d), dir); err != nil || !strings.Contains(out, "up to date") {
			t.Fatalf("%s: export again: %q %v", d, out, err)
		}
		if err := os.WriteFile(filepath.Join(dir, want[0]), []byte("-- edited"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := esctl(t, "migrations", "export", "-dialect", string(d), dir); err == nil || !strings.Contains(err.Error(), "not overwritten") {
			t.Fatalf("%s: export over an edited file: %v", d, err)
		}
	}
	if _, _, err := esctl(t, "migrations", "export", "-dialect", "oracle", t.TempDir()); err == nil {
		t.Error("unknown dialect accepted")
	}
	if _, _, err := esctl(t, "migrations", "export"); err == nil {
		t.Error("no directory accepted")
	}

	ctx := context.Background()
	dir := t.TempDir()
	if _, _, err := esctl(t, "migrations", "export", "-dialect", "sqlite", dir); err != nil {
		t.Fatal(err)
	}
	db, err := ncruces.Open(ctx, filepath.Join(t.TempDir(), "goose.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("goose up from the exported files: %v", err)
	}
	r, err := sqlite.NewProcessRecorder(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t"}}); err != nil {
		t.Fatal(err)
	}
}
