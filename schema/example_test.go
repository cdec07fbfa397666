package schema_test

import (
	"context"
	"database/sql"
	"log"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/eventsourcing-go/eventsourcing/schema"
)

// The embedded migrations with goose's own API, for programs that manage migrations with goose (goose
// up, down, status, …): the files are served as they are, so, as with the goose command-line tool, the
// tables go to the connection's search_path. Migrate with WithSchema names a schema instead; `esctl
// migrations export DIR` writes the files for the command-line tool.
func ExampleFS() {
	ctx := context.Background()
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	fsys, err := schema.FS(schema.Postgres)
	if err != nil {
		log.Fatal(err)
	}
	migrations, err := goose.NewProvider(goose.DialectPostgres, db, fsys)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := migrations.Up(ctx); err != nil {
		log.Fatal(err)
	}
}
