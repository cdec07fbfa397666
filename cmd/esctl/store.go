package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/stdlib"
	sqlite3driver "github.com/ncruces/go-sqlite3/driver"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// access says whether a command writes to a store.
type access int

const (
	// readOnly stores are never created nor changed: a SQLite file is opened read-only.
	readOnly access = iota
	// update stores are changed but never created nor migrated: a missing SQLite file, or a store
	// without the tables, is an error that points to esctl migrate.
	update
	// readWrite stores are migrated, and created when missing.
	readWrite
)

// sqliteBusyTimeout is how long a read-only SQLite connection waits for a lock, in milliseconds.
const sqliteBusyTimeout = 10000

// store is an opened store: its database and, once asked for, its process recorder.
type store struct {
	sf      storeFlags
	mode    access
	db      *sql.DB
	dialect schema.Dialect
	rec     es.ProcessRecorder
	closers []func()
}

// withStore opens the store named by sf, runs fn on it and closes it: what every command that works on
// one store does.
func withStore(ctx context.Context, sf storeFlags, mode access, fn func(*store) error) error {
	s, err := openStore(ctx, sf, mode)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

// withRecorder is withStore for a command that works through the store's recorder.
func withRecorder(ctx context.Context, sf storeFlags, mode access, fn func(*store, es.ProcessRecorder) error) error {
	return withStore(ctx, sf, mode, func(s *store) error {
		rec, err := s.recorder(ctx)
		if err != nil {
			return err
		}
		return fn(s, rec)
	})
}

// withKeyStore is withStore, for updating, for a command that works on the store's data keys.
func withKeyStore(ctx context.Context, sf storeFlags, fn func(datakey.Store) error) error {
	return withStore(ctx, sf, update, func(s *store) error {
		ks, err := s.keyStore(ctx)
		if errors.Is(err, schema.ErrNotMigrated) {
			// A store migrated before data keys existed. The key store's message tells a Go
			// programmer what to call; this one is for the shell.
			return fmt.Errorf("%s has no data key table (%w): run '%s' first", s, errNotMigrated, s.migrateCommand())
		}
		if err != nil {
			return err
		}
		return fn(ks)
	})
}

func openStore(ctx context.Context, sf storeFlags, mode access) (*store, error) {
	if *sf.dsn == "" {
		return nil, fmt.Errorf("no store given (-%s)", sf.dsnFlag)
	}
	s := &store{sf: sf, mode: mode}
	if isPostgres(*sf.dsn) {
		s.dialect = schema.Postgres
		db, err := sql.Open("pgx", *sf.dsn)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", s, err)
		}
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("connect to %s: %w", s, err)
		}
		s.db = db
	} else {
		if keywordDSN.MatchString(*sf.dsn) {
			return nil, fmt.Errorf("-%s %s: a keyword/value PostgreSQL DSN, which esctl would take for a SQLite file name: "+
				"give PostgreSQL as a URL, postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=…", sf.dsnFlag, s)
		}
		if *sf.schema != "" {
			return nil, fmt.Errorf("-%s is for PostgreSQL; a SQLite application has a file of its own", sf.schemaFlag)
		}
		s.dialect = schema.SQLite
		db, err := openSQLite(ctx, *sf.dsn, mode)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s, err)
		}
		s.db = db
	}
	s.closers = append(s.closers, func() { s.db.Close() })
	if mode != readWrite {
		if err := s.checkMigrated(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// openSQLite opens a SQLite database: read-write with ncruces.Open, which creates a missing file
// (for update, refused first), or read-only, which refuses a missing one, straight through the driver
// (ncruces.Open would switch the file to WAL mode, a write).
func openSQLite(ctx context.Context, dsn string, mode access) (*sql.DB, error) {
	if mode == readWrite {
		return ncruces.Open(ctx, dsn)
	}
	u := &url.URL{Scheme: "file", OmitHost: true, Path: dsn}
	if strings.HasPrefix(dsn, "file:") {
		var err error
		if u, err = url.Parse(dsn); err != nil {
			return nil, err
		}
	}
	file := u.Path
	if file == "" {
		file = u.Opaque
	}
	if fi, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no such database file: to create one, run 'esctl migrate -dsn %s'", dsn)
	} else if err != nil {
		return nil, err
	} else if fi.IsDir() {
		return nil, errors.New("is a directory, not a SQLite database file")
	}
	if mode == update {
		return ncruces.Open(ctx, dsn)
	}
	q := u.Query()
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout("+strconv.Itoa(sqliteBusyTimeout)+")")
	u.RawQuery = q.Encode()
	c, err := (&sqlite3driver.SQLite{}).OpenConnector(u.String())
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// String names the store for people: its DSN without passwords, and its schema.
func (s *store) String() string {
	name := redactDSN(*s.sf.dsn)
	if *s.sf.schema != "" {
		name += fmt.Sprintf(" (schema %q)", *s.sf.schema)
	}
	return name
}

// migrateCommand is the command line that migrates the store.
func (s *store) migrateCommand() string {
	cmd := "esctl migrate -dsn " + redactDSN(*s.sf.dsn)
	if *s.sf.schema != "" {
		cmd += " -schema " + *s.sf.schema
	}
	return cmd
}

// errNotMigrated is wrapped by the error for a store without the recorders' tables.
var errNotMigrated = errors.New("not migrated")

// checkMigrated fails, pointing to esctl migrate, when the store lacks the recorders' tables.
func (s *store) checkMigrated(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx, s.text(countTables)).Scan(&n); err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	if n < len(recorderTables) {
		return fmt.Errorf("%s has no event store tables (%w): run '%s' first", s, errNotMigrated, s.migrateCommand())
	}
	return nil
}

// recorder returns the store's process recorder.
func (s *store) recorder(ctx context.Context) (es.ProcessRecorder, error) {
	if s.rec != nil {
		return s.rec, nil
	}
	var err error
	switch s.dialect {
	case schema.Postgres:
		var opts []postgres.Option
		if *s.sf.schema != "" {
			opts = append(opts, postgres.WithSchema(*s.sf.schema))
		}
		if s.mode == readOnly {
			// A reading command writes nothing, and so works on a hot standby.
			opts = append(opts, postgres.WithReadOnly())
		}
		var r *postgres.ProcessRecorder
		if r, err = postgres.NewProcessRecorder(ctx, s.db, opts...); err == nil {
			s.closers = append(s.closers, func() { r.Close() })
			s.rec = r
		}
	default:
		var r *sqlite.ProcessRecorder
		if r, err = sqlite.NewProcessRecorder(ctx, s.db); err == nil {
			s.closers = append(s.closers, func() { r.Close() })
			s.rec = r
		}
	}
	if errors.Is(err, schema.ErrNotMigrated) {
		// The recorders' own message tells a Go programmer what to call; this one is for the shell.
		return nil, fmt.Errorf("%s has no event store tables (%w): run '%s' first", s, errNotMigrated, s.migrateCommand())
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	return s.rec, nil
}

func (s *store) migrate(ctx context.Context) error {
	var opts []schema.Option
	if *s.sf.schema != "" {
		opts = append(opts, schema.WithSchema(*s.sf.schema))
	}
	if err := schema.Migrate(ctx, s.db, s.dialect, opts...); err != nil {
		return fmt.Errorf("migrate %s: %w", s, err)
	}
	return nil
}

// text returns the store's dialect of q, with the PostgreSQL schema filled in.
func (s *store) text(q query) string {
	if s.dialect == schema.Postgres {
		return schema.Qualify(q.postgres, *s.sf.schema)
	}
	return q.sqlite
}

// latestMigration is the version of the newest migration esctl knows for the store's dialect.
func (s *store) latestMigration() (int64, error) {
	fsys, err := schema.FS(s.dialect)
	if err != nil {
		return 0, err
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, n := range names {
		prefix, _, _ := strings.Cut(path.Base(n), "_")
		if v, err := strconv.ParseInt(prefix, 10, 64); err == nil {
			latest = max(latest, v)
		}
	}
	return latest, nil
}

func (s *store) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// The pgx driver is registered by importing its stdlib package.
var _ = stdlib.GetDefaultDriver
