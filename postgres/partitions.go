package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Partitioned tables, all ranged on a UUIDv7 transaction id by month.
var partitioned = []string{"transactions", "entries"}

// PartitionsAhead is how many months beyond the current one always exist,
// so that an insert never fails for want of a partition even if the
// maintenance loop stops for weeks.
const PartitionsAhead = 3

// monthBound is the smallest UUIDv7 of the month starting at t: its first 48
// bits are t in Unix milliseconds, everything else zero.
func monthBound(t time.Time) uuid.UUID {
	var u uuid.UUID
	ms := uint64(t.UnixMilli())
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	return u
}

// EnsurePartitions creates the partitions from last month to PartitionsAhead
// months ahead. It is idempotent and safe to run from several nodes.
func (db *DB) EnsurePartitions(ctx context.Context) error {
	now := time.Now().UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	for i := 0; i <= PartitionsAhead+1; i++ {
		from := start.AddDate(0, i, 0)
		to := from.AddDate(0, 1, 0)
		for _, table := range partitioned {
			name := fmt.Sprintf("%s_%04d_%02d", table, from.Year(), from.Month())
			sql := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')`,
				name, table, monthBound(from), monthBound(to))
			if _, err := db.exec(ctx, sql); err != nil {
				// Two nodes racing on CREATE ... IF NOT EXISTS can collide
				// on the catalog; the loser's partition exists anyway.
				if c := pgCode(err); c == "42P07" || c == "23505" {
					continue
				}
				return fmt.Errorf("create partition %s: %w", name, err)
			}
		}
	}
	return nil
}
