// Package schema holds the database schema of the SQL recorders as goose migrations, one folder per
// dialect, embedded in the module, and runs them with [Migrate].
//
// The same folders work with the goose command-line tool (see the README). PostgreSQL migrations name
// their tables as /* TEMPLATE: schema */events: the comment is ignored by goose and sqlc, so the tables
// land in the connection's search_path; Migrate with [WithSchema] replaces the marker with the
// schema name, which it accepts only when it is a plain lower-case identifier.
package schema

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/eventsourcing-go/eventsourcing/internal/option"
)

// Dialect names the SQL dialect of a database.
type Dialect string

const (
	// Postgres is PostgreSQL (13 or later).
	Postgres Dialect = "postgres"
	// SQLite is SQLite 3 (3.35 or later, for RETURNING).
	SQLite Dialect = "sqlite"
)

// name is the dialect's name in messages.
func (d Dialect) name() string {
	switch d {
	case Postgres:
		return "PostgreSQL"
	case SQLite:
		return "SQLite"
	default:
		return string(d)
	}
}

// ErrWrongDialect is wrapped by the error of Migrate, and of the recorders' constructors, when the
// database is of another dialect than the one asked for (a PostgreSQL database given to the SQLite
// recorders, say).
var ErrWrongDialect = errors.New("schema: wrong dialect")

// versionQueries ask a database for its version in a way only one dialect answers.
var versionQueries = map[Dialect]string{
	Postgres: "SELECT current_setting('server_version')",
	SQLite:   "SELECT sqlite_version()",
}

// CheckDialect returns nil when db is a database of dialect d. When it is of the other dialect, the
// error wraps ErrWrongDialect and names it; when db does not answer, the error is the query's. A
// database of the right dialect answers one query.
func CheckDialect(ctx context.Context, db *sql.DB, d Dialect) error {
	err := checkDialect(ctx, db, d)
	if err != nil && !errors.Is(err, ErrWrongDialect) {
		err = fmt.Errorf("schema: %w", err)
	}
	return err
}

// checkDialect is CheckDialect with errors that do not name the package (but for ErrWrongDialect's
// own text), for callers whose errors do.
func checkDialect(ctx context.Context, db *sql.DB, d Dialect) error {
	query, ok := versionQueries[d]
	if !ok {
		return fmt.Errorf("unknown dialect %q", d)
	}
	var version string
	err := db.QueryRowContext(ctx, query).Scan(&version)
	if err == nil {
		return nil
	}
	for _, other := range []Dialect{Postgres, SQLite} {
		if other == d || ctx.Err() != nil {
			continue
		}
		if db.QueryRowContext(ctx, versionQueries[other]).Scan(&version) == nil {
			return fmt.Errorf("%w: the database is %s %s, not %s", ErrWrongDialect, other.name(), version, d.name())
		}
	}
	return fmt.Errorf("ask the database for its %s version: %w", d.name(), err)
}

// TemplateMarker precedes every table name in the PostgreSQL migrations and queries. It is replaced by
// `schema.` when a schema is named, and by nothing otherwise.
const TemplateMarker = "/* TEMPLATE: schema */"

//go:embed postgres/*.sql sqlite/*.sql
var migrations embed.FS

// FS returns the migration files of dialect d, as goose reads them.
func FS(d Dialect) (fs.FS, error) {
	switch d {
	case Postgres, SQLite:
		return fs.Sub(migrations, string(d))
	default:
		return nil, fmt.Errorf("schema: unknown dialect %q", d)
	}
}

// ErrNotMigrated is wrapped by the error of a recorder whose database (or PostgreSQL schema) lacks the
// tables and functions of the migrations: run Migrate first.
var ErrNotMigrated = errors.New("schema: database not migrated")

var plainIdentifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ErrInvalidSchemaName is wrapped by the error for a schema name that is not a plain identifier.
var ErrInvalidSchemaName = errors.New("schema: invalid schema name")

// ValidateSchemaName accepts only plain lower-case identifiers (letters, digits and underscores, not
// starting with a digit, at most 63 bytes). Such a name means the same quoted or not, so it can be put
// into SQL without any escaping; anything else is refused rather than quoted.
func ValidateSchemaName(name string) error {
	if !plainIdentifier.MatchString(name) {
		return fmt.Errorf("%w: %q is not a plain lower-case identifier", ErrInvalidSchemaName, name)
	}
	return nil
}

// Qualify returns the SQL text q with every TemplateMarker replaced by the schema prefix: `name.` for a
// schema name, nothing for "". The name must have passed ValidateSchemaName.
func Qualify(q, schemaName string) string {
	if schemaName == "" {
		return strings.ReplaceAll(q, TemplateMarker, "")
	}
	return strings.ReplaceAll(q, TemplateMarker, schemaName+".")
}

// Option configures Migrate. Options record values; Migrate checks them and fails on an invalid one.
type Option func(*config)

type config struct {
	schema    string
	schemaSet bool // WithSchema was given, even with ""
	logger    *slog.Logger
}

// WithSchema migrates into the named PostgreSQL schema, creating it when missing; the migration history
// is kept in that schema too. Without it, tables go to the connection's current schema. The name must
// pass ValidateSchemaName (an empty name is refused rather than taken to mean the current schema, as
// the recorders' WithSchema does: it is more likely a missing setting).
func WithSchema(name string) Option { return func(c *config) { c.schema, c.schemaSet = name, true } }

// WithLogger logs each applied migration to l, at debug level. Without it, or with nil, Migrate logs
// to slog.Default() as it is when Migrate is called.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Migrate brings the schema of db up to date. Running it again is a no-op. A database of the other
// dialect is refused with an error wrapping ErrWrongDialect (see CheckDialect). On PostgreSQL concurrent
// runs from several processes are serialised by an advisory lock; on SQLite, where the database file is
// locked by each writing transaction, a run that loses a race retries.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, opts ...Option) error {
	if db == nil {
		return errors.New("schema: migrate: nil *sql.DB")
	}
	var cfg config
	option.Apply(&cfg, opts)
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	var results []*goose.MigrationResult
	var err error
	switch d {
	case Postgres:
		if cfg.schemaSet {
			if err := ValidateSchemaName(cfg.schema); err != nil {
				return fmt.Errorf("schema: migrate: WithSchema: %w", err)
			}
		}
	case SQLite:
		if cfg.schemaSet {
			return errors.New("schema: migrate: SQLite has no schemas: use one database file per application")
		}
	default:
		return fmt.Errorf("schema: migrate: unknown dialect %q", d)
	}
	if err := checkDialect(ctx, db, d); err != nil {
		return fmt.Errorf("schema: migrate: %w", err)
	}
	if d == Postgres {
		results, err = migratePostgres(ctx, db, cfg)
	} else {
		results, err = migrateSQLite(ctx, db, cfg)
	}
	for _, r := range results {
		cfg.logger.DebugContext(ctx, "schema: applied migration", "dialect", string(d), "schema", cfg.schema,
			"version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return err
}

func migratePostgres(ctx context.Context, db *sql.DB, cfg config) ([]*goose.MigrationResult, error) {
	fsys, err := FS(Postgres)
	if err != nil {
		return nil, err
	}
	table := goose.DefaultTablename
	if cfg.schema != "" {
		if err := createSchema(ctx, db, cfg.schema); err != nil {
			return nil, err
		}
		table = cfg.schema + "." + table
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("schema: migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, templateFS{fsys, cfg.schema},
		goose.WithTableName(table), goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("schema: migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return results, fmt.Errorf("schema: migrate postgres (schema %q): %w", cfg.schema, err)
	}
	return results, nil
}

// createSchema creates the schema unless it exists. Two processes may both find it missing; the loser's
// unique violation means the schema is there, which is all that was wanted.
func createSchema(ctx context.Context, db *sql.DB, name string) error {
	var exists bool
	if err := db.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("schema: migrate: look up schema %q: %w", name, err)
	}
	if exists {
		return nil
	}
	// name passed ValidateSchemaName: a plain identifier, safe as SQL text.
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+name); err != nil {
		if err2 := db.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, name).Scan(&exists); err2 == nil && exists {
			return nil
		}
		return fmt.Errorf("schema: migrate: create schema %q: %w", name, err)
	}
	return nil
}

func migrateSQLite(ctx context.Context, db *sql.DB, cfg config) ([]*goose.MigrationResult, error) {
	fsys, err := FS(SQLite)
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("schema: migrate: %w", err)
	}
	// Another process may be migrating the same file: its transaction makes ours fail (busy, or a table
	// that now exists). Once it has committed, nothing is pending and we are done.
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		results, err := p.Up(ctx)
		if err == nil {
			return results, nil
		}
		lastErr = err
		pending, err := p.HasPending(ctx)
		if err == nil && !pending {
			return results, nil
		}
		select {
		case <-ctx.Done():
			return results, fmt.Errorf("schema: migrate sqlite: %w", ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("schema: migrate sqlite: %w", lastErr)
}

// templateFS serves migration files with the schema marker replaced.
type templateFS struct {
	fsys   fs.FS
	schema string
}

func (t templateFS) Open(name string) (fs.File, error) {
	f, err := t.fsys.Open(name)
	if err != nil || !strings.HasSuffix(name, ".sql") {
		return f, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	b = []byte(Qualify(string(b), t.schema))
	return &memFile{Reader: bytes.NewReader(b), info: st, size: int64(len(b))}, nil
}

// ReadDir lets goose list the folder through the wrapper.
func (t templateFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(t.fsys, name) }

type memFile struct {
	*bytes.Reader
	info fs.FileInfo
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return sizedInfo{f.info, f.size}, nil }
func (f *memFile) Close() error               { return nil }

type sizedInfo struct {
	fs.FileInfo
	size int64
}

func (s sizedInfo) Size() int64 { return s.size }
