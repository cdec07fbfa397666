package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// store is an opened store: its database and, once asked for, its process recorder.
type store struct {
	sf      storeFlags
	db      *sql.DB
	dialect schema.Dialect
	rec     es.ProcessRecorder
	closers []func()
}

func openStore(ctx context.Context, sf storeFlags) (*store, error) {
	if *sf.dsn == "" {
		return nil, errors.New("no store given (-dsn)")
	}
	s := &store{sf: sf}
	if isPostgres(*sf.dsn) {
		s.dialect = schema.Postgres
		db, err := sql.Open("pgx", *sf.dsn)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", *sf.dsn, err)
		}
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
		}
		s.db = db
	} else {
		if *sf.schema != "" {
			return nil, errors.New("-schema is for PostgreSQL; a SQLite application has a file of its own")
		}
		s.dialect = schema.SQLite
		db, err := ncruces.Open(ctx, *sf.dsn)
		if err != nil {
			return nil, err
		}
		s.db = db
	}
	s.closers = append(s.closers, func() { s.db.Close() })
	return s, nil
}

// recorder returns the store's process recorder.
func (s *store) recorder(ctx context.Context) (es.ProcessRecorder, error) {
	if s.rec != nil {
		return s.rec, nil
	}
	switch s.dialect {
	case schema.Postgres:
		var opts []postgres.Option
		if *s.sf.schema != "" {
			opts = append(opts, postgres.WithSchema(*s.sf.schema))
		}
		r, err := postgres.NewProcessRecorder(ctx, s.db, opts...)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { r.Close() })
		s.rec = r
	default:
		r, err := sqlite.NewProcessRecorder(ctx, s.db)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { r.Close() })
		s.rec = r
	}
	return s.rec, nil
}

func (s *store) migrate(ctx context.Context) error {
	var opts []schema.Option
	if *s.sf.schema != "" {
		opts = append(opts, schema.WithSchema(*s.sf.schema))
	}
	return schema.Migrate(ctx, s.db, s.dialect, opts...)
}

func (s *store) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// The pgx driver is registered by importing its stdlib package.
var _ = stdlib.GetDefaultDriver
