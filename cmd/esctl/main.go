// Command esctl inspects and maintains the event stores of this module's SQL recorders: it migrates
// schemas, prints the notification log (once, or following it live), lists an aggregate's events,
// shows what a store holds, and copies a store into another (for example from a SQLite file to
// PostgreSQL), keeping the notification IDs. copy copies the data keys first, still wrapped (it needs no
// key ring), so that the copy decrypts with the same ring, and the tombstones of forgotten subjects,
// dated when copied, so that they stay forgotten; it refuses a target holding another key for a
// subject (unless ES_CIPHER_KEYS shows it is the same key, wrapped before a rotation of the source's
// keys: copy then rewraps it as in the source), and with -keys=false leaves the keys behind.
//
// A store is named by a DSN: postgres://… or postgresql://… for PostgreSQL (with -schema for the
// application's schema), anything else is a SQLite file path or "file:" URI.
//
//	esctl migrate -dsn bank.db
//	esctl migrate -dsn postgres://postgres@localhost/app -schema bank
//	esctl info    -dsn bank.db
//	esctl tail    -dsn bank.db -after 100 -follow
//	esctl events  -dsn bank.db -id 0193…
//	esctl copy    -dsn bank.db -to postgres://postgres@localhost/app -to-schema bank
//	esctl keys rotate -dsn bank.db
//	esctl keys forget -dsn bank.db 0193…
//	esctl tracking -dsn bank.db
//	esctl tracking rebuild -dsn bank.db -consumer balances -upstream bank
//
// It works on stored events as recorded (topics, versions, sizes, and the keys their headers name).
// With -decode, events and tail show each event's data as the JSON it was stored as, without the
// application's types; encrypted events need the key ring, which esctl reads from the environment
// variable ES_CIPHER_KEYS (ID:BASE64,ID:BASE64,…) and never from a flag. keys rotate rewraps the data
// keys with the ring's current key; keys forget deletes a subject's data key. Passwords in DSNs are
// never printed. Only migrate, copy's target, keys, and tracking rebuild and adopt write, and only
// migrate and copy's target create a missing SQLite file: the reading commands open a SQLite file
// read-only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "esctl:", err)
	}
	os.Exit(exitCode(err))
}

// exitCode is esctl's exit status after run returned err: 0 when it did its work or showed the help
// asked for, 2 otherwise.
func exitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

const usage = `usage: esctl <command> [flags]

commands:
  migrate   create a store's tables, or bring them up to date
  migrations export DIR   write the migration files, for the goose command-line tool
  info      show a store's schema version, events per topic, snapshots and tracking marks
  tail      print the notification log (-follow: keep printing new events)
  events    print the events of one aggregate
  copy      copy a store's data keys, events, snapshots and tracking marks into another (resumable)
  keys      rotate the key ring's key over the data keys, or forget a subject (esctl keys -h)
  tracking  show consumers' marks and lag; rebuild a projection; adopt marks (esctl tracking help)

run 'esctl <command> -h' for a command's flags`

// run runs the command line args, printing results to out and progress and flag help to errOut. Its
// error never shows a password given on the command line.
func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	return scrub(dispatch(ctx, args, out, errOut), secretsIn(args))
}

func dispatch(ctx context.Context, args []string, out, errOut io.Writer) error {
	return commands{
		"migrate":    cmdMigrate,
		"migrations": cmdMigrations,
		"info":       cmdInfo,
		"tail":       cmdTail,
		"events":     cmdEvents,
		"copy":       cmdCopy,
		"keys":       cmdKeys,
		"tracking":   cmdTracking,
	}.run(ctx, "", usage, args, out, errOut)
}

// commands are the commands of esctl or of one of its commands, by name.
type commands map[string]func(ctx context.Context, args []string, out, errOut io.Writer) error

// run runs the command args[0] names with the rest of args, or prints usage for help. parent names
// the command whose commands c are in errors ("keys"; "" for esctl's own).
func (c commands) run(ctx context.Context, parent, usage string, args []string, out, errOut io.Writer) error {
	prefix := ""
	if parent != "" {
		prefix = parent + ": "
	}
	if len(args) == 0 {
		fmt.Fprintln(out, usage)
		return errors.New(prefix + "no command")
	}
	if cmd, ok := c[args[0]]; ok {
		return cmd(ctx, args[1:], out, errOut)
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(out, usage)
		return nil
	}
	return fmt.Errorf("%sunknown command %q\n%s", prefix, args[0], usage)
}

// storeFlags are the flags naming a store.
type storeFlags struct {
	dsn        *string
	schema     *string
	dsnFlag    string // the flags' names, for messages
	schemaFlag string
}

// addStoreFlags adds -dsn and -schema, or with a prefix -<prefix> and -<prefix>-schema.
func addStoreFlags(fs *flag.FlagSet, prefix, role string) storeFlags {
	sf := storeFlags{dsnFlag: "dsn", schemaFlag: "schema"}
	if prefix != "" {
		sf.dsnFlag, sf.schemaFlag = prefix, prefix+"-schema"
	}
	sf.dsn = fs.String(sf.dsnFlag, "", role+": postgres://… DSN, or a SQLite file path")
	sf.schema = fs.String(sf.schemaFlag, "", "PostgreSQL schema of the "+role+"'s application (default: the search_path)")
	return sf
}

// keywordDSN matches a PostgreSQL DSN in keyword/value form (host=… dbname=…), which is not a URL.
var keywordDSN = regexp.MustCompile(`(?i)(^|\s)(host|hostaddr|port|dbname|user|password|sslmode|service)\s*=`)

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func parse(fs *flag.FlagSet, args []string, errOut io.Writer) error {
	fs.SetOutput(errOut)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}
