package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/eventsourcing-go/eventsourcing/schema"
)

// cmdMigrations writes the migration files embedded in the module into a directory, for the goose
// command-line tool (goose -dir DIR postgres "$DSN" up) and for projects that keep their migrations
// with their own.
func cmdMigrations(_ context.Context, args []string, out, errOut io.Writer) error {
	fset := flag.NewFlagSet("migrations", flag.ContinueOnError)
	fset.SetOutput(errOut)
	dialect := fset.String("dialect", string(schema.Postgres), "postgres or sqlite")
	fset.Usage = func() {
		fmt.Fprintln(errOut, `usage: esctl migrations export [-dialect postgres|sqlite] DIR

Writes the migration files of the dialect into DIR (created if missing), as goose runs them:
  goose -dir DIR postgres "$DSN" up      (the tables go to the connection's search_path)
  goose -dir DIR sqlite3 bank.db up
A file that exists already is left alone when it is the same, and is an error otherwise.`)
		fset.PrintDefaults()
	}
	if len(args) == 0 || args[0] != "export" {
		fset.Usage()
		return errors.New("migrations: the subcommand is export")
	}
	if err := fset.Parse(args[1:]); err != nil {
		return err
	}
	if fset.NArg() != 1 {
		fset.Usage()
		return errors.New("migrations export: one directory expected")
	}
	dir := fset.Arg(0)
	src, err := schema.FS(schema.Dialect(*dialect))
	if err != nil {
		return fmt.Errorf("migrations export: %w", err)
	}
	files, err := fs.Glob(src, "*.sql")
	if err != nil {
		return fmt.Errorf("migrations export: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("migrations export: %w", err)
	}
	for _, name := range files {
		b, err := fs.ReadFile(src, name)
		if err != nil {
			return fmt.Errorf("migrations export: %w", err)
		}
		path := filepath.Join(dir, name)
		switch existing, err := os.ReadFile(path); {
		case err == nil && bytes.Equal(existing, b):
			fmt.Fprintf(out, "%s: up to date\n", path)
			continue
		case err == nil:
			return fmt.Errorf("migrations export: %s exists and differs from the module's; not overwritten", path)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("migrations export: %w", err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("migrations export: %w", err)
		}
		fmt.Fprintf(out, "%s: written\n", path)
	}
	return nil
}
