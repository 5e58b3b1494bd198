package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd"
)

// Trace contexts of transactions (transaction_traces, migration 00012):
// the traceparent of each sampled request, keyed by the transactions it
// created, so that a worker delivering their events continues the trace.
// Unsampled requests (the default 99 %) write nothing: the batch pays one
// loop over its units.

// traceRows is the batch's trace contexts to store.
type traceRows struct {
	tx     []pgtype.UUID
	parent []string
}

func (r *traceRows) fill(units []*ledgerd.WriteUnit) {
	r.tx, r.parent = r.tx[:0], r.parent[:0]
	for _, u := range units {
		if u.TraceParent == "" {
			continue
		}
		for _, it := range u.Items {
			if it.Result != nil && !it.Replayed {
				r.tx, r.parent = append(r.tx, parseID(it.Result.ID)), append(r.parent, u.TraceParent)
			}
		}
	}
}

// InsertTracesSQL stores the trace contexts of a batch, in its commit.
const InsertTracesSQL = `INSERT INTO transaction_traces (transaction_id, traceparent)
	SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING`

// queueTraceInsert stores the batch's trace contexts, if it has any.
func (batch *batchState) queueTraceInsert(w *pgx.Batch) {
	if len(batch.traces.tx) > 0 {
		w.Queue(InsertTracesSQL, batch.traces.tx, batch.traces.parent)
	}
}

// TraceParent returns the traceparent stored for transaction txID, if its
// request was sampled.
func (db *DB) TraceParent(ctx context.Context, txID string) (string, bool, error) {
	id := parseID(txID)
	if !id.Valid {
		return "", false, nil
	}
	var tp string
	err := db.queryRow(ctx, `SELECT traceparent FROM transaction_traces WHERE transaction_id = $1`, id).Scan(&tp)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return tp, err == nil, err
}

// DeleteTracesBefore deletes up to limit trace contexts stored before t.
func (db *DB) DeleteTracesBefore(ctx context.Context, t time.Time, limit int) (int64, error) {
	tag, err := db.exec(ctx, `DELETE FROM transaction_traces WHERE transaction_id IN (
		SELECT transaction_id FROM transaction_traces WHERE created_at < $1 LIMIT $2)`, t, limit)
	return tag.RowsAffected(), err
}
