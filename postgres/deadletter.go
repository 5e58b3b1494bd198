package postgres

import "context"

// InsertDeadLetter keeps an item that failed on its own, for diagnosis.
func (db *DB) InsertDeadLetter(ctx context.Context, ledgerID int64, key string, request []byte, reason string) error {
	var k *string
	if key != "" {
		k = &key
	}
	_, err := db.exec(ctx, `INSERT INTO dead_letters (ledger_id, idempotency_key, request, reason) VALUES ($1, $2, $3::json, $4)`,
		ledgerID, k, string(request), reason)
	return err
}
