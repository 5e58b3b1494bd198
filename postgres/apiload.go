package postgres

import (
	"context"
)

// PublishLoad records what the node's write path holds in flight, for the
// tail to read (APILoad). It also drops the rows of nodes gone for an
// hour, so the table holds about one row per running node.
func (db *DB) PublishLoad(ctx context.Context, node string, inflight float64) error {
	_, err := db.exec(ctx, `INSERT INTO api_load (node, at, inflight) VALUES ($1, clock_timestamp(), $2)
		ON CONFLICT (node) DO UPDATE SET at = EXCLUDED.at, inflight = EXCLUDED.inflight`, node, inflight)
	return err
}

// ForgetLoads drops the rows of nodes that have not published for an hour.
func (db *DB) ForgetLoads(ctx context.Context) error {
	_, err := db.exec(ctx, `DELETE FROM api_load WHERE at < clock_timestamp() - interval '1 hour'`)
	return err
}

// APILoad is what the API nodes' write paths hold in flight, summed over
// the nodes that published within the last second (a node that stopped,
// or went idle and stopped publishing, counts nothing).
func (db *DB) APILoad(ctx context.Context) (float64, error) {
	var v float64
	err := db.queryRow(ctx, `SELECT coalesce(sum(inflight), 0)::float8 FROM api_load
		WHERE at > clock_timestamp() - interval '1 second'`).Scan(&v)
	return v, err
}
