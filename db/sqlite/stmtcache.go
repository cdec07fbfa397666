package sqlite

import (
	"context"
	"database/sql"
	"sync"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite/internal/dbsqlc"
)

// maxCachedStmts bounds a stmtCache. The recorders' queries are a dozen static texts; only the topic
// filter's text varies (with the number of topics), and beyond the bound such texts are run unprepared.
const maxCachedStmts = 64

// stmtCache is the dbsqlc.DBTX of the recorders: it prepares each query text once and reuses the
// statement, so that sqlc's generated code, which passes query texts, does not make the driver parse
// the SQL again at every call (database/sql prepares and discards a statement for every call with
// arguments). On the writer's connection a statement is prepared once; on a *sql.DB, database/sql
// prepares it lazily on each pool connection that runs it and keeps it there.
type stmtCache struct {
	p     dbsqlc.DBTX // a *sql.Conn (the writer's) or a *sql.DB (the readers')
	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

func newStmtCache(p dbsqlc.DBTX) *stmtCache {
	return &stmtCache{p: p, stmts: make(map[string]*sql.Stmt)}
}

// statement is a query ready to run: its prepared *sql.Stmt, or its text unprepared.
type statement interface {
	ExecContext(ctx context.Context, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, args ...any) *sql.Row
}

// unprepared runs query on p without preparing it.
type unprepared struct {
	p     dbsqlc.DBTX
	query string
}

func (u unprepared) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	return u.p.ExecContext(ctx, u.query, args...)
}

func (u unprepared) QueryContext(ctx context.Context, args ...any) (*sql.Rows, error) {
	return u.p.QueryContext(ctx, u.query, args...)
}

func (u unprepared) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	return u.p.QueryRowContext(ctx, u.query, args...)
}

// use runs f with the prepared statement of query, preparing it on first use, or with the query
// unprepared when the cache is full or closed. The read lock held while f runs keeps close from closing
// a statement in use.
func use[T any](c *stmtCache, ctx context.Context, query string, f func(statement) (T, error)) (T, error) {
	for {
		c.mu.RLock()
		s, ok := c.stmts[query]
		if ok {
			defer c.mu.RUnlock()
			return f(s)
		}
		if c.stmts == nil || len(c.stmts) >= maxCachedStmts {
			defer c.mu.RUnlock()
			return f(unprepared{c.p, query})
		}
		c.mu.RUnlock()
		if err := c.prepare(ctx, query); err != nil {
			var zero T
			return zero, err
		}
	}
}

func (c *stmtCache) prepare(ctx context.Context, query string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.stmts[query]; ok || c.stmts == nil || len(c.stmts) >= maxCachedStmts {
		return nil
	}
	s, err := c.p.PrepareContext(ctx, query)
	if err != nil {
		return err
	}
	c.stmts[query] = s
	return nil
}

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return use(c, ctx, query, func(s statement) (sql.Result, error) { return s.ExecContext(ctx, args...) })
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return use(c, ctx, query, func(s statement) (*sql.Rows, error) { return s.QueryContext(ctx, args...) })
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	row, err := use(c, ctx, query, func(s statement) (*sql.Row, error) { return s.QueryRowContext(ctx, args...), nil })
	if err != nil {
		// A *sql.Row cannot be made from an error: let the unprepared path report it.
		row = c.p.QueryRowContext(ctx, query, args...)
	}
	return row
}

func (c *stmtCache) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return c.p.PrepareContext(ctx, query)
}

// close closes every statement, waiting for those in use; the cache then runs queries unprepared.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.stmts {
		s.Close()
	}
	c.stmts = nil
}
