package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd/postgres"
)

// values are the representative parameters the queries run with.
type values struct {
	ledgerID     int64
	midTx        pgtype.UUID
	midSeq       int64
	lastSeq      int64
	from, to     time.Time
	fromSeq      int64 // first sequence at or after from
	toSeq        int64 // first sequence at or after to
	apiKeyID     string
	liveKey      string
	holds        []pgtype.UUID // pending holds (targets of a capture)
	batch        batchArrays
	firstBatchID pgtype.UUID
	auditHead    int64 // ledger 1's audit chain head
	tail         tailValues
}

// batchArrays are the columns of a 1,000-item write batch, as WriteBatch
// builds them.
type batchArrays struct {
	accounts                               []string
	keys, refs                             []string
	txID                                   []pgtype.UUID
	txSeq                                  []int64
	txStatus, txPostings, txMetadata       []string
	txRef                                  []*string
	txExpires                              []*time.Time
	txNoID                                 []pgtype.UUID // pending_id, reverses: none
	enTx                                   []pgtype.UUID
	enAccount                              []string
	enSeq, enAmount, enAfter, enVersion    []int64
	enIndex                                []int16
	enPending                              []bool
	uaID                                   []string
	uaPosted, uaPD, uaPC, uaVersion        []int64
	ikKey                                  []string
	ikHash                                 [][]byte
	ikStatus                               []int16
	ikTx                                   []pgtype.UUID
	ikProblem                              []*string
	refTx                                  []pgtype.UUID
	now                                    time.Time
	naIDs, naAssets, naMetadata            []string
	naMins                                 []*int64
	deadRequest, deadReason, idempotencyID string
}

func pickValues(ctx context.Context, conn *pgx.Conn, nTx, nAcc int) (*values, error) {
	v := &values{ledgerID: 1, midSeq: int64(nTx / 2 / 2 * 2)}
	if err := conn.QueryRow(ctx, `SELECT last_sequence FROM ledgers WHERE id = 1`).Scan(&v.lastSeq); err != nil {
		return nil, err
	}
	if err := conn.QueryRow(ctx, `SELECT id FROM transactions WHERE ledger_id = 1 AND sequence = $1`, v.midSeq).Scan(&v.midTx); err != nil {
		return nil, err
	}
	if err := conn.QueryRow(ctx, `SELECT min(id) FROM api_keys WHERE ledger_id = 1`).Scan(&v.apiKeyID); err != nil {
		return nil, err
	}
	if err := conn.QueryRow(ctx, `SELECT key FROM idempotency_keys WHERE ledger_id = 1 AND expires_at > now() ORDER BY key LIMIT 1`).Scan(&v.liveKey); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	v.from = now.AddDate(0, 0, -30).Truncate(time.Hour)
	v.to = v.from.Add(24 * time.Hour)
	for _, b := range []struct {
		t   time.Time
		seq *int64
	}{{v.from, &v.fromSeq}, {v.to, &v.toSeq}} {
		err := conn.QueryRow(ctx, postgres.FirstSequenceFromSQL, int64(1), b.t).Scan(b.seq)
		if err != nil {
			return nil, fmt.Errorf("sequence at %s: %w", b.t, err)
		}
	}

	// A batch of 1,000 single-posting transfers between random accounts,
	// every one with a new idempotency key and every second with a
	// reference; ten of the keys exist already (retries).
	r := rand.New(rand.NewPCG(1, 2))
	ba := &v.batch
	ba.now = now
	acct := func(i int) string { return fmt.Sprintf("acct:%06d", i) }
	touched := map[string]bool{}
	var live []string
	rows, err := conn.Query(ctx, `SELECT key FROM idempotency_keys WHERE ledger_id = 1 AND expires_at > now() ORDER BY key LIMIT 10`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		live = append(live, k)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	seq := v.lastSeq
	for i := 0; i < 1000; i++ {
		src := r.IntN(nAcc)
		dst := (src + 1 + r.IntN(nAcc-1)) % nAcc
		s, d := acct(src), acct(dst)
		touched[s], touched[d] = true, true
		key := fmt.Sprintf("new-key-%d", i)
		if i < len(live) {
			key = live[i]
		}
		ba.keys = append(ba.keys, key)
		seq++
		id := uuidAt(now, r)
		if i == 0 {
			v.firstBatchID = id
		}
		amount := int64(1 + r.IntN(1000))
		ba.txID, ba.txSeq, ba.txStatus = append(ba.txID, id), append(ba.txSeq, seq), append(ba.txStatus, "posted")
		ba.txPostings = append(ba.txPostings, fmt.Sprintf(`[{"source":"%s","destination":"%s","amount":%d,"asset":"USD"}]`, s, d, amount))
		ba.txMetadata, ba.txExpires = append(ba.txMetadata, "{}"), append(ba.txExpires, nil)
		if i%2 == 0 {
			ref := fmt.Sprintf("new-ref-%d", i)
			ba.refs, ba.txRef, ba.refTx = append(ba.refs, ref), append(ba.txRef, &ref), append(ba.refTx, id)
		} else {
			ba.txRef = append(ba.txRef, nil)
		}
		for _, leg := range []struct {
			a   string
			amt int64
		}{{s, -amount}, {d, amount}} {
			ba.enTx, ba.enAccount, ba.enSeq = append(ba.enTx, id), append(ba.enAccount, leg.a), append(ba.enSeq, seq)
			ba.enIndex, ba.enAmount, ba.enPending = append(ba.enIndex, 0), append(ba.enAmount, leg.amt), append(ba.enPending, false)
			ba.enAfter, ba.enVersion = append(ba.enAfter, 0), append(ba.enVersion, 1)
		}
		ba.ikKey, ba.ikHash, ba.ikStatus = append(ba.ikKey, fmt.Sprintf("new-key-%d", i)), append(ba.ikHash, []byte{byte(i), byte(i >> 8)}), append(ba.ikStatus, 201)
		ba.ikTx, ba.ikProblem = append(ba.ikTx, id), append(ba.ikProblem, nil)
	}
	for a := range touched {
		ba.accounts = append(ba.accounts, a)
		ba.uaID, ba.uaPosted, ba.uaPD, ba.uaPC, ba.uaVersion = append(ba.uaID, a), append(ba.uaPosted, 0), append(ba.uaPD, 0), append(ba.uaPC, 0), append(ba.uaVersion, 1<<40)
	}
	slices.Sort(ba.accounts)
	// An account batch of 1,000, a tenth of them existing already.
	for i := 0; i < 1000; i++ {
		id := fmt.Sprintf("new:%04d", i)
		if i%10 == 0 {
			id = acct(i)
		}
		ba.naIDs, ba.naAssets, ba.naMetadata = append(ba.naIDs, id), append(ba.naAssets, "USD"), append(ba.naMetadata, `{"owner":"batch"}`)
		zero := int64(0)
		ba.naMins = append(ba.naMins, &zero)
	}
	ba.txNoID = make([]pgtype.UUID, len(ba.txID))
	hr, err := conn.Query(ctx, `SELECT id FROM transactions WHERE ledger_id = 1 AND status = 'pending' ORDER BY sequence DESC LIMIT 10`)
	if err != nil {
		return nil, err
	}
	for hr.Next() {
		var id pgtype.UUID
		if err := hr.Scan(&id); err != nil {
			return nil, err
		}
		v.holds = append(v.holds, id)
	}
	if err := hr.Err(); err != nil {
		return nil, err
	}
	if len(v.holds) == 0 {
		return nil, errors.New("the data set has no pending holds")
	}
	ba.deadRequest = ba.txPostings[0]
	ba.deadReason = "write batch: ERROR: example (SQLSTATE XX000)"
	ba.idempotencyID = "acct-create-1"
	return v, nil
}

// uuidAt is the ledger's transaction id for time t.
func uuidAt(t time.Time, r *rand.Rand) pgtype.UUID { return postgres.TransactionIDAt(t, r.Uint64) }
