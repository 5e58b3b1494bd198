package postgres

import (
	"context"
	"log/slog"
	"time"
)

// Stats is a periodic sample of the database's size: read from the
// catalog's estimates and a partial index, never by scanning the ledger, so
// that a scrape costs the database nothing and the sample little.
type Stats struct {
	// Partitions lists every partition of the partitioned tables with
	// pg_class.reltuples (the planner's row estimate; -1 before the first
	// VACUUM or ANALYZE, reported as 0).
	Partitions []PartitionStat
	// PendingHolds counts holds waiting with a deadline (the partial index
	// transactions_expiry). Holds without a deadline are not counted: no
	// index finds them without a scan.
	PendingHolds int64
	// AuditUnchained counts the audit entries no chainer has linked yet,
	// and AuditOldest is when the oldest of them was written (zero when
	// there is none): the chain lag (docs/audit.md).
	AuditUnchained int64
	AuditOldest    time.Time
	At             time.Time
}

// PartitionStat is one partition's row estimate.
type PartitionStat struct {
	Table, Partition string
	Rows             float64
}

// SampleStats reads a Stats sample.
func (db *DB) SampleStats(ctx context.Context) (*Stats, error) {
	rows, err := db.query(ctx, `SELECT parent.relname, child.relname, greatest(child.reltuples, 0)::float8
		FROM pg_inherits
		JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
		JOIN pg_class child ON child.oid = pg_inherits.inhrelid
		WHERE parent.relname = ANY($1) AND parent.relnamespace = to_regnamespace(current_schema())::oid
		ORDER BY 1, 2`, partitioned)
	if err != nil {
		return nil, err
	}
	s := &Stats{At: time.Now()}
	for rows.Next() {
		var p PartitionStat
		if err := rows.Scan(&p.Table, &p.Partition, &p.Rows); err != nil {
			rows.Close()
			return nil, err
		}
		s.Partitions = append(s.Partitions, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	err = db.queryRow(ctx, `SELECT count(*) FROM transactions WHERE status = 'pending' AND expires_at IS NOT NULL`).
		Scan(&s.PendingHolds)
	if err != nil {
		return nil, err
	}
	if s.AuditUnchained, s.AuditOldest, err = db.auditLag(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// SampleStatsEvery keeps the sample the metrics serve up to date until ctx
// ends: a scrape reads the last sample instead of querying.
func (db *DB) SampleStatsEvery(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s, err := db.SampleStats(qctx)
		cancel()
		if err == nil {
			db.stats.Store(s)
		} else if ctx.Err() == nil {
			log.Warn("database stats sample", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
