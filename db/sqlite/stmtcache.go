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

// use runs f with the prepared statement of query, preparing it on first use, or with nil when the cache
// is full or closed (f then runs the query unprepared). The read lock held while f runs keeps close from
// closing a statement in use.
func (c *stmtCache) use(ctx context.Context, query string, f func(*sql.Stmt) error) error {
	for {
		c.mu.RLock()
		s, ok := c.stmts[query]
		if ok || c.stmts == nil || len(c.stmts) >= maxCachedStmts {
			defer c.mu.RUnlock()
			return f(s)
		}
		c.mu.RUnlock()
		if err := c.prepare(ctx, query); err != nil {
			return err
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

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (res sql.Result, err error) {
	err = c.use(ctx, query, func(s *sql.Stmt) error {
		if s == nil {
			res, err = c.p.ExecContext(ctx, query, args...)
		} else {
			res, err = s.ExecContext(ctx, args...)
		}
		return err
	})
	return res, err
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (rows *sql.Rows, err error) {
	err = c.use(ctx, query, func(s *sql.Stmt) error {
		if s == nil {
			rows, err = c.p.QueryContext(ctx, query, args...)
		} else {
			rows, err = s.QueryContext(ctx, args...)
		}
		return err
	})
	return rows, err
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) (row *sql.Row) {
	err := c.use(ctx, query, func(s *sql.Stmt) error {
		if s == nil {
			row = c.p.QueryRowContext(ctx, query, args...)
		} else {
			row = s.QueryRowContext(ctx, args...)
		}
		return nil
	})
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
