// Command esctl inspects and maintains the event stores of this module's SQL recorders: it migrates
// schemas, prints the notification log (once, or following it live), lists an aggregate's events,
// shows counts, and copies an application's events from one store to another (for example from a
// SQLite file to PostgreSQL), preserving their order.
//
// A store is named by a DSN: postgres://… or postgresql://… for PostgreSQL (with -schema for the
// application's schema), anything else is a SQLite file path.
//
//	esctl migrate -dsn bank.db
//	esctl migrate -dsn postgres://postgres@localhost/app -schema bank
//	esctl info    -dsn bank.db
//	esctl tail    -dsn bank.db -after 100 -follow
//	esctl events  -dsn bank.db -id 0193…
//	esctl copy    -dsn bank.db -to postgres://postgres@localhost/app -to-schema bank
//
// It works on stored events as recorded (topics, versions, sizes); it does not decode state, which
// needs the application's event types and keys.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "esctl:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage: esctl <command> [flags]

commands:
  migrate   bring a store's schema up to date
  migrations export DIR   write the migration files, for the goose command-line tool
  info      show the highest notification ID and the number of events
  tail      print the notification log (-follow: keep printing new events)
  events    print the events of one aggregate
  copy      copy every event of a store into another, in notification order

run 'esctl <command> -h' for a command's flags`

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(out, usage)
		return errors.New("no command")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "migrate":
		return cmdMigrate(ctx, args, out)
	case "migrations":
		return cmdMigrations(ctx, args, out)
	case "info":
		return cmdInfo(ctx, args, out)
	case "tail":
		return cmdTail(ctx, args, out)
	case "events":
		return cmdEvents(ctx, args, out)
	case "copy":
		return cmdCopy(ctx, args, out)
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(out, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

// storeFlags are the flags naming a store.
type storeFlags struct {
	dsn    *string
	schema *string
}

func addStoreFlags(fs *flag.FlagSet, prefix string) storeFlags {
	name := func(s string) string {
		if prefix == "" {
			return s
		}
		return prefix + "-" + s
	}
	dsnName := "dsn"
	if prefix != "" {
		dsnName = prefix
	}
	return storeFlags{
		dsn:    fs.String(dsnName, "", "store: postgres://… DSN, or a SQLite file path"),
		schema: fs.String(name("schema"), "", "PostgreSQL schema of the application (default: the search_path)"),
	}
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}
