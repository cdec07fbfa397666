package schema_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/schema"
)

func TestValidateSchemaName(t *testing.T) {
	for _, ok := range []string{"app", "_x", "bank_2", strings.Repeat("a", 63)} {
		if err := schema.ValidateSchemaName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "App", "1app", "a-b", "x; drop table events", `"x"`, "a.b", strings.Repeat("a", 64), "ünï"} {
		if err := schema.ValidateSchemaName(bad); !errors.Is(err, schema.ErrInvalidSchemaName) {
			t.Errorf("%q: got %v, want ErrInvalidSchemaName", bad, err)
		}
	}
}

func TestQualify(t *testing.T) {
	q := "SELECT * FROM " + schema.TemplateMarker + "events JOIN " + schema.TemplateMarker + "tracking"
	if got := schema.Qualify(q, "bank"); got != "SELECT * FROM bank.events JOIN bank.tracking" {
		t.Fatalf("got %q", got)
	}
	if got := schema.Qualify(q, ""); got != "SELECT * FROM events JOIN tracking" {
		t.Fatalf("got %q", got)
	}
}

func TestEmbeddedMigrations(t *testing.T) {
	for _, d := range []schema.Dialect{schema.Postgres, schema.SQLite} {
		fsys, err := schema.FS(d)
		if err != nil {
			t.Fatal(err)
		}
		files, err := fs.Glob(fsys, "*.sql")
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no migrations (%v)", d, err)
		}
		for _, f := range files {
			b, _ := fs.ReadFile(fsys, f)
			if !strings.Contains(string(b), "-- +goose Up") || !strings.Contains(string(b), "-- +goose Down") {
				t.Errorf("%s/%s lacks an Up or a Down section", d, f)
			}
		}
	}
	if _, err := schema.FS("mysql"); err == nil {
		t.Fatal("an unknown dialect must be refused")
	}
}

func TestMigrateRefusesBadArguments(t *testing.T) {
	ctx := context.Background()
	if err := schema.Migrate(ctx, nil, schema.SQLite); err == nil {
		t.Fatal("nil *sql.DB accepted")
	}
}
