package postgres

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
)

// auditHashesSQL reads the hash blocks that cover positions $2 to $3 of a
// ledger: those ending at or after the first and starting at or before
// the last (a range of the primary key).
const auditHashesSQL = `SELECT prev, positions, hashes FROM audit_hashes
	WHERE ledger_id = $1 AND last_position >= $2 AND first_position <= $3 ORDER BY last_position`

// attachHashes fills in the prev_hash and hash of entries (a ledger's, in
// position order) from the chainer's blocks; an entry no block holds is
// unchained and keeps empty ones.
func attachHashes(ctx context.Context, query func(context.Context, string, ...any) (pgx.Rows, error),
	ledgerID int64, entries []*ledgerd.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	rows, err := query(ctx, auditHashesSQL, ledgerID, entries[0].Position, entries[len(entries)-1].Position)
	if err != nil {
		return err
	}
	defer rows.Close()
	type link struct{ prev, hash []byte }
	links := make(map[int64]link, len(entries))
	for rows.Next() {
		var prev, hashes []byte
		var positions []int64
		if err := rows.Scan(&prev, &positions, &hashes); err != nil {
			return err
		}
		if len(hashes) != 32*len(positions) {
			return fmt.Errorf("audit hash block of %d entries holds %d bytes", len(positions), len(hashes))
		}
		for i, p := range positions {
			h := hashes[32*i : 32*i+32]
			links[p] = link{prev, h}
			prev = h
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, e := range entries {
		if l, ok := links[e.Position]; ok {
			e.PrevHash, e.Hash = hex.EncodeToString(l.prev), hex.EncodeToString(l.hash)
		}
	}
	return nil
}

// insertHashBlock records the hashes of a chaining step: entries at
// positions (in order), the first following prev; prev and hashes hex.
func insertHashBlock(ctx context.Context, tx pgx.Tx, ledgerID int64, prev string, positions []int64, hashes []string) error {
	p, err := hex.DecodeString(prev)
	if err != nil {
		return fmt.Errorf("chain head hash: %w", err)
	}
	raw := make([]byte, 0, 32*len(hashes))
	for _, h := range hashes {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			return fmt.Errorf("audit hash %q", h)
		}
		raw = append(raw, b...)
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_hashes (ledger_id, last_position, first_position, prev, positions, hashes)
		VALUES ($1, $2, $3, $4, $5, $6)`, ledgerID, positions[len(positions)-1], positions[0], p, positions, raw)
	return err
}
