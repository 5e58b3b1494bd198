package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// Index maintenance. B-tree indexes of tables whose rows are updated or
// deleted (idempotency keys past expiry, deliveries done, holds resolved)
// keep their emptied pages: vacuum makes the space reusable but rarely
// gives it back, and a scan still walks the sparse pages. The periodic
// job (job/maintenance.go) estimates each index's bloat from the
// catalog and rebuilds the worst one past a threshold with REINDEX INDEX
// CONCURRENTLY, which takes no lock that blocks reads or writes.
//
// The estimate needs no extension (pgstattuple reads every page): the
// index's expected size is its tuple count (pg_class.reltuples, kept by
// vacuum and analyze) times the width of a tuple (the key columns'
// average widths from pg_stats, or their fixed lengths, aligned, plus the
// tuple header and line pointer), over the page space its fillfactor
// leaves; bloat is what the index takes on disk beyond that. It reads
// high for an index filled in random key order, whose pages split to
// about 70 % (a fresh one of 400,000 random keys estimates at 0.2-0.3),
// hence the default threshold of half; B-tree deduplication makes some
// indexes smaller than expected, which reads as no bloat.

// IndexEstimate is one index's size on disk and its estimated bloat.
type IndexEstimate struct {
	// Schema, Index and Table name the index and its table; Root is the
	// table's partition root (the table itself when not a partition).
	Schema, Index, Table, Root string
	Bytes                      int64
	BloatBytes                 int64
}

// Ratio is the share of the index that is bloat.
func (e IndexEstimate) Ratio() float64 {
	if e.Bytes <= 0 {
		return 0
	}
	return float64(e.BloatBytes) / float64(e.Bytes)
}

// IndexEstimatesSQL reads what the estimate needs of every valid B-tree
// index of the database's user tables (partitions included; partitioned
// parents have no storage): its size, tuple count, fillfactor, and each
// key column's width (fixed length, else average from pg_stats) and
// alignment. Indexes never vacuumed or analyzed (reltuples -1) are left
// out, and so, by estimate, are those with a variable-width column that
// has no statistics: nothing can be said about them.
const IndexEstimatesSQL = `WITH idx AS (
	SELECT s.schemaname, s.relname, s.indexrelname, s.indexrelid, s.relid, ic.reltuples,
		(SELECT r.relname FROM pg_class r WHERE r.oid = pg_partition_root(s.relid)) AS root,
		coalesce((SELECT substring(o FROM 'fillfactor=([0-9]+)')::int FROM unnest(ic.reloptions) o WHERE o LIKE 'fillfactor=%'), 90) AS fillfactor
	FROM pg_stat_user_indexes s
	JOIN pg_class ic ON ic.oid = s.indexrelid
	JOIN pg_index i ON i.indexrelid = s.indexrelid
	JOIN pg_am am ON am.oid = ic.relam
	WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready AND ic.reltuples >= 0
)
SELECT idx.schemaname, idx.indexrelname, idx.relname, coalesce(idx.root, idx.relname), pg_relation_size(idx.indexrelid),
	idx.reltuples::float8, idx.fillfactor, current_setting('block_size')::int,
	array_agg(CASE WHEN ia.attlen > 0 THEN ia.attlen ELSE coalesce(st.avg_width, se.avg_width, -1) END ORDER BY ia.attnum),
	array_agg(CASE ia.attalign WHEN 'd' THEN 8 WHEN 'i' THEN 4 WHEN 's' THEN 2 ELSE 1 END ORDER BY ia.attnum)
FROM idx
JOIN pg_index i ON i.indexrelid = idx.indexrelid
JOIN pg_attribute ia ON ia.attrelid = idx.indexrelid AND ia.attnum > 0
LEFT JOIN pg_attribute ta ON ta.attrelid = i.indrelid AND ta.attnum = i.indkey[ia.attnum - 1] AND ta.attnum > 0
LEFT JOIN pg_stats st ON st.schemaname = idx.schemaname AND st.tablename = idx.relname AND st.attname = ta.attname AND NOT st.inherited
LEFT JOIN pg_stats se ON se.schemaname = idx.schemaname AND se.tablename = idx.indexrelname AND se.attname = ia.attname
GROUP BY idx.schemaname, idx.indexrelname, idx.relname, idx.root, idx.indexrelid, idx.reltuples, idx.fillfactor
ORDER BY idx.schemaname, idx.indexrelname`

// IndexEstimates returns every index's estimate (see IndexEstimatesSQL).
func (db *DB) IndexEstimates(ctx context.Context) ([]IndexEstimate, error) {
	rows, err := db.query(ctx, IndexEstimatesSQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []IndexEstimate
	for rows.Next() {
		var e IndexEstimate
		var tuples float64
		var fillfactor, block int
		var widths, aligns []int32
		if err := rows.Scan(&e.Schema, &e.Index, &e.Table, &e.Root, &e.Bytes, &tuples, &fillfactor, &block, &widths, &aligns); err != nil {
			return nil, err
		}
		expected, ok := expectedIndexBytes(tuples, fillfactor, block, widths, aligns)
		if !ok {
			continue
		}
		e.BloatBytes = max(e.Bytes-expected, 0)
		out = append(out, e)
	}
	return out, rows.Err()
}

// expectedIndexBytes is the size of a freshly built B-tree of tuples
// entries: a meta page, then leaf pages filled to fillfactor with tuples
// of an 8-byte header and the key columns, each at its alignment, the
// whole MAXALIGNed, plus a 4-byte line pointer; pages lose their header
// (24 bytes) and the B-tree special space (16). Inner pages (well under
// 1 % of a B-tree) are left out. A width of -1 is unknown: no estimate.
func expectedIndexBytes(tuples float64, fillfactor, block int, widths, aligns []int32) (int64, bool) {
	if len(widths) == 0 || len(widths) != len(aligns) || block <= 40 || fillfactor <= 0 {
		return 0, false
	}
	off := int32(8)
	for i, w := range widths {
		if w < 0 {
			return 0, false
		}
		a := max(aligns[i], 1)
		off = (off+a-1)/a*a + w
	}
	tuple := (off+7)/8*8 + 4
	perPage := float64(block-40) * float64(fillfactor) / 100 / float64(tuple)
	if perPage < 1 {
		perPage = 1
	}
	pages := 1 + math.Ceil(tuples/perPage)
	return int64(pages) * int64(block), true
}

// ReindexPolicy says which indexes a ReindexStep may rebuild, and who runs it.
type ReindexPolicy struct {
	// MinRatio and MinBytes: an index is rebuilt when its estimated bloat
	// is at least both (a share of the index, and bytes).
	MinRatio float64
	MinBytes int64
	// Holder names this worker in the lease (unique per process).
	Holder string
	// Lease is how long the lease lasts unless renewed; it is renewed
	// every third of it while a rebuild runs, so it bounds how long a
	// dead worker keeps the others from rebuilding. Default 10 minutes.
	Lease time.Duration
}

// ReindexResult is what a ReindexStep did.
type ReindexResult struct {
	// Busy: another worker holds the lease; nothing was done.
	Busy bool
	// Estimates measured in this step (before any rebuild).
	Estimates []IndexEstimate
	// Dropped is the leftovers of interrupted rebuilds that were dropped.
	Dropped []string
	// Rebuilt is the index rebuilt, if any, with its estimate before.
	Rebuilt *IndexEstimate
	// Took is how long the rebuild ran.
	Took time.Duration
}

const (
	ClaimLeaseSQL = `UPDATE maintenance_leases SET holder = $2, until = now() + $3::interval
		WHERE name = $1 AND (until < now() OR holder = $2) RETURNING true`
	renewLeaseSQL   = `UPDATE maintenance_leases SET until = now() + $3::interval WHERE name = $1 AND holder = $2`
	releaseLeaseSQL = `UPDATE maintenance_leases SET holder = NULL, until = '-infinity' WHERE name = $1 AND holder = $2`
	// LeftoverIndexesSQL finds what an interrupted REINDEX CONCURRENTLY
	// leaves behind: the new copy (_ccnew) or the old one (_ccold), both
	// invalid, and both still maintained by every write to the table.
	LeftoverIndexesSQL = `SELECT n.nspname, c.relname FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE NOT i.indisvalid AND c.relname ~ '_cc(new|old)[0-9]*$' AND n.nspname = current_schema()`
)

// ReindexStep rebuilds at most one index: the one with the most estimated
// bloat past the policy's thresholds. Only one worker at a time runs a
// step (a lease row, taken and given back by single statements, so that
// it works through PgBouncer in transaction mode, where neither a
// transaction nor a session can span the rebuild). Leftovers of an
// interrupted rebuild are dropped first.
//
// REINDEX CONCURRENTLY refuses to run in a transaction block, and a
// pipeline or a multi-statement query is one: it is sent alone, with the
// simple protocol, on a connection of its own (a rebuild can take
// minutes, which a pool's connection must not). Through PgBouncer in
// transaction mode a lone statement is its own transaction, so it passes.
// Cancelling ctx cancels the rebuild; an interrupted one leaves an invalid
// copy, which the next step drops.
func (db *DB) ReindexStep(ctx context.Context, p ReindexPolicy) (ReindexResult, error) {
	var res ReindexResult
	if p.Lease <= 0 {
		p.Lease = 10 * time.Minute
	}
	lease := fmt.Sprintf("%d milliseconds", p.Lease.Milliseconds())
	var claimed bool
	if err := db.queryRow(ctx, ClaimLeaseSQL, "reindex", p.Holder, lease).Scan(&claimed); errors.Is(err, pgx.ErrNoRows) {
		res.Busy = true
		return res, nil
	} else if err != nil {
		return res, fmt.Errorf("claim the maintenance lease: %w", err)
	}
	defer func() {
		// Cut short (the worker stops), a rebuild may go on in its
		// server process, which notices a vanished client only when it
		// answers: the lease is then left to run out rather than handed
		// to another worker that would rebuild beside it.
		if ctx.Err() == nil {
			_, _ = db.exec(ctx, releaseLeaseSQL, "reindex", p.Holder)
		}
	}()

	conn, err := pgx.ConnectConfig(ctx, db.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return res, fmt.Errorf("connect for maintenance: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	leftovers, err := db.query(ctx, LeftoverIndexesSQL)
	if err != nil {
		return res, err
	}
	names, err := pgx.CollectRows(leftovers, func(r pgx.CollectableRow) (pgx.Identifier, error) {
		var schema, name string
		err := r.Scan(&schema, &name)
		return pgx.Identifier{schema, name}, err
	})
	if err != nil {
		return res, err
	}
	for _, n := range names {
		if _, err := conn.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+n.Sanitize(), pgx.QueryExecModeSimpleProtocol); err != nil {
			return res, fmt.Errorf("drop the leftover %s: %w", n.Sanitize(), err)
		}
		res.Dropped = append(res.Dropped, n.Sanitize())
	}

	if res.Estimates, err = db.IndexEstimates(ctx); err != nil {
		return res, err
	}
	var worst *IndexEstimate
	for i, e := range res.Estimates {
		if e.BloatBytes >= p.MinBytes && e.Ratio() >= p.MinRatio && e.BloatBytes > 0 &&
			(worst == nil || e.BloatBytes > worst.BloatBytes) {
			worst = &res.Estimates[i]
		}
	}
	if worst == nil {
		return res, nil
	}

	// Keep the lease while the rebuild runs.
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(p.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_, _ = db.exec(ctx, renewLeaseSQL, "reindex", p.Holder, lease)
			}
		}
	}()
	start := time.Now()
	_, err = conn.Exec(ctx, `REINDEX INDEX CONCURRENTLY `+pgx.Identifier{worst.Schema, worst.Index}.Sanitize(), pgx.QueryExecModeSimpleProtocol)
	close(stop)
	<-renewed
	if err != nil {
		return res, fmt.Errorf("reindex %s: %w", worst.Index, err)
	}
	res.Rebuilt, res.Took = worst, time.Since(start)
	return res, nil
}
