package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Every query goes through these helpers rather than pgxpool's own, which
// wait for a free connection as long as the context lets them: here the
// wait is bounded by the acquire timeout, after which the caller gets
// ErrUnavailable (503 overloaded) — a request fails fast rather than
// queueing without bound behind an exhausted pool.

func (db *DB) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c, err := db.acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer c.Release()
	tag, err := c.Exec(ctx, sql, args...)
	return tag, classify(err)
}

func (db *DB) query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c, err := db.acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		c.Release()
		return nil, classify(err)
	}
	return &releasingRows{Rows: rows, conn: c}, nil
}

func (db *DB) queryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c, err := db.acquire(ctx)
	if err != nil {
		return errRow{err}
	}
	return &releasingRow{row: c.QueryRow(ctx, sql, args...), conn: c}
}

func (db *DB) beginFunc(ctx context.Context, fn func(pgx.Tx) error) error {
	c, err := db.acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return classify(pgx.BeginFunc(ctx, c, fn))
}

type releasingRows struct {
	pgx.Rows
	conn *pgxpool.Conn
}

func (r *releasingRows) Close() {
	r.Rows.Close()
	if r.conn != nil {
		r.conn.Release()
		r.conn = nil
	}
}

func (r *releasingRows) Err() error { return classify(r.Rows.Err()) }

func (r *releasingRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

type releasingRow struct {
	row  pgx.Row
	conn *pgxpool.Conn
}

func (r *releasingRow) Scan(dest ...any) error {
	defer r.conn.Release()
	return classify(r.row.Scan(dest...))
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
