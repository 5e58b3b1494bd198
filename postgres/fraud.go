package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/wire"
)

// FraudConsumer is the event_cursors consumer of fraud scoring.
const FraudConsumer = "fraud"

const fraudRuleCols = `velocity_max_debits, velocity_window_seconds, large_multiple_of_median, large_min_history,
	new_account_max_age_seconds, new_account_amount_over, freeze_score`

// FraudRulesSQL reads a ledger's rules.
const FraudRulesSQL = `SELECT ` + fraudRuleCols + ` FROM fraud_rules WHERE ledger_id = $1`

func scanFraudRules(row pgx.Row) (*ledgerd.FraudRules, error) {
	var c [6]*int64
	var freeze *int16
	if err := row.Scan(&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &freeze); err != nil {
		return nil, err
	}
	r := &ledgerd.FraudRules{}
	if c[0] != nil && c[1] != nil {
		r.Velocity = &ledgerd.VelocityRule{MaxDebits: *c[0], WindowSeconds: *c[1]}
	}
	if c[2] != nil && c[3] != nil {
		r.LargeAmount = &ledgerd.LargeAmountRule{MultipleOfMedian: *c[2], MinHistory: *c[3]}
	}
	if c[4] != nil && c[5] != nil {
		r.NewAccount = &ledgerd.NewAccountRule{MaxAgeSeconds: *c[4], AmountOver: *c[5]}
	}
	if freeze != nil {
		f := int64(*freeze)
		r.FreezeScore = &f
	}
	return r, nil
}

// FraudRules returns a ledger's rules; every rule off when none were set.
func (db *DB) FraudRules(ctx context.Context, ledgerID int64) (*ledgerd.FraudRules, error) {
	r, err := scanFraudRules(db.queryRow(ctx, FraudRulesSQL, ledgerID))
	if errors.Is(err, pgx.ErrNoRows) {
		return &ledgerd.FraudRules{}, nil
	}
	return r, err
}

// PutFraudRules replaces a ledger's rules, with the request's audit entry.
// The first rules of a ledger start its scoring cursor at the ledger's
// last sequence, read under its ordering lock: transactions committed
// before are never scored, every later one is.
func (db *DB) PutFraudRules(ctx context.Context, ledgerID int64, r *ledgerd.FraudRules) error {
	var c [6]*int64
	if v := r.Velocity; v != nil {
		c[0], c[1] = &v.MaxDebits, &v.WindowSeconds
	}
	if l := r.LargeAmount; l != nil {
		c[2], c[3] = &l.MultipleOfMedian, &l.MinHistory
	}
	if n := r.NewAccount; n != nil {
		c[4], c[5] = &n.MaxAgeSeconds, &n.AmountOver
	}
	return db.beginFunc(ctx, func(tx pgx.Tx) error {
		var start int64
		if err := tx.QueryRow(ctx, lockLedgerForEventsSQL, ledgerID).Scan(&start); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO fraud_rules (ledger_id, `+fraudRuleCols+`, start_seq)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (ledger_id) DO UPDATE SET velocity_max_debits = $2, velocity_window_seconds = $3,
				large_multiple_of_median = $4, large_min_history = $5, new_account_max_age_seconds = $6,
				new_account_amount_over = $7, freeze_score = $8, updated_at = clock_timestamp()`,
			ledgerID, c[0], c[1], c[2], c[3], c[4], c[5], r.FreezeScore, start); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO event_cursors (consumer, ledger_id, seq, ord) VALUES ($1, $2, $3, 0)
			ON CONFLICT (consumer, ledger_id) DO NOTHING`, FraudConsumer, ledgerID, start); err != nil {
			return err
		}
		return writeAudit(ctx, tx, ledgerID, "")
	})
}

// FraudStepResult is what one scoring step did.
type FraudStepResult struct {
	Ledger  string // the ledger scored ("" when none was behind)
	Read    int    // transactions read (at least 1 when the cursor moved)
	Scores  []int  // the scores given, one per posted transaction
	Flagged int
	Frozen  int
}

// FraudNextLedgerSQL takes the scoring cursor that is behind its ledger
// and moved longest ago, skipping those other workers hold, with the
// sequence range of the step ($2 transactions at most).
const FraudNextLedgerSQL = `SELECT c.ledger_id, l.name, c.seq, least(l.last_sequence, c.seq + $2) FROM event_cursors c
	JOIN ledgers l ON l.id = c.ledger_id
	WHERE c.consumer = $1 AND l.last_sequence > c.seq
	ORDER BY c.updated_at LIMIT 1 FOR UPDATE OF c SKIP LOCKED`

// InsertRisksSQL stores a step's scores.
const InsertRisksSQL = `INSERT INTO transaction_risk (ledger_id, sequence, transaction_id, score, flagged, risk)
	SELECT $1, u.seq, u.id, u.score, u.flagged, u.risk::json
	FROM unnest($2::bigint[], $3::uuid[], $4::smallint[], $5::bool[], $6::text[]) AS u(seq, id, score, flagged, risk)
	ON CONFLICT (ledger_id, sequence) DO NOTHING`

// FraudCursorSQL moves the scoring cursor to the step's end, with the
// commit time of the transaction there (for the lag in seconds).
const FraudCursorSQL = `UPDATE event_cursors SET seq = $3, updated_at = clock_timestamp(),
	last_event_at = (SELECT created_at FROM transactions WHERE ledger_id = $2 AND sequence = $3)
	WHERE consumer = $1 AND ledger_id = $2`

// FraudHistorySQL reads the latest posted debits of each account at or
// before sequence $3, per transaction, newest first: at most $4 debits,
// found among the account's latest $5 entries (so that an account with
// many credits costs a bounded scan; docs/fraud.md).
const FraudHistorySQL = `SELECT a.id, d.sequence, d.amount, d.at FROM unnest($2::text[]) AS a(id)
CROSS JOIN LATERAL (
	SELECT x.sequence, -sum(x.amount)::bigint AS amount, min(x.created_at) AS at FROM (
		SELECT e.sequence, e.amount, e.pending, e.created_at FROM entries e
		WHERE e.ledger_id = $1 AND e.account_id = a.id AND e.sequence <= $3
		ORDER BY e.sequence DESC, e.posting_index DESC LIMIT $5) x
	WHERE x.amount < 0 AND NOT x.pending
	GROUP BY x.sequence ORDER BY x.sequence DESC LIMIT $4) d`

// FraudStep scores the posted transactions of one ledger whose scoring
// cursor is behind (taken FOR UPDATE SKIP LOCKED, so workers share the
// ledgers), up to limit transactions after it. What the rules need of
// each debited account — its age, whether it is bounded, its latest
// debits — is read from the accounts and the log (entries) in a few
// set-based queries per step, so a worker that restarts, or another
// worker, judges exactly the same. The
// risks, the flags (transaction.flagged events), the freezes (with
// account.frozen events) and the cursor commit together: a step that
// fails or is cut short leaves none of it, and is done again.
//
// memo (nil: none) spares reading the history of accounts this worker
// scored in its previous step of the ledger (FraudMemo).
func (db *DB) FraudStep(ctx context.Context, limit int, memo *FraudMemo) (FraudStepResult, error) {
	var res FraudStepResult
	var keep func()
	err := db.beginFunc(ctx, func(tx pgx.Tx) error {
		res, keep = FraudStepResult{}, nil
		var ledgerID, cur, hi int64
		var name string
		err := tx.QueryRow(ctx, FraudNextLedgerSQL, FraudConsumer, limit).Scan(&ledgerID, &name, &cur, &hi)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		res.Ledger, res.Read = name, int(hi-cur)
		rules, err := scanFraudRules(tx.QueryRow(ctx, FraudRulesSQL, ledgerID))
		if err != nil {
			return fmt.Errorf("fraud rules: %w", err)
		}
		txs, err := postedDebits(ctx, tx, ledgerID, cur, hi)
		if err != nil {
			return err
		}
		need := historyNeed(rules)
		known := memo.take(ledgerID, cur, need)
		accounts, err := fraudAccounts(ctx, tx, ledgerID, cur, need, known, txs)
		if err != nil {
			return err
		}
		var flagged []flag
		seqs := make([]int64, len(txs))
		ids := make([]string, len(txs))
		scores := make([]int16, len(txs))
		flags := make([]bool, len(txs))
		risks := make([]string, len(txs))
		for i := range txs {
			t := &txs[i]
			k := ledgerd.Score(rules, t, accounts)
			for _, d := range t.Debits {
				if a := accounts[d.Account]; a != nil {
					a.Record(t, d.Amount)
				}
			}
			raw := wire.AppendRisk(nil, &k)
			seqs[i], ids[i], scores[i], flags[i], risks[i] = t.Sequence, t.ID, int16(k.Score), rules.Flags(&k), string(raw)
			res.Scores = append(res.Scores, k.Score)
			if flags[i] {
				flagged = append(flagged, flag{tx: t, risk: k, raw: raw})
			}
		}
		if len(txs) > 0 {
			if _, err := tx.Exec(ctx, InsertRisksSQL, ledgerID, seqs, ids, scores, flags, risks); err != nil {
				return fmt.Errorf("store risks: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, FraudCursorSQL, FraudConsumer, ledgerID, hi); err != nil {
			return err
		}
		// Last, so that the write path waits on the ordering lock only for
		// the flags, the freezes and the commit.
		if len(flagged) > 0 {
			res.Flagged = len(flagged)
			if res.Frozen, err = flagAndFreeze(ctx, tx, ledgerID, flagged, accounts); err != nil {
				return err
			}
		}
		keep = func() {
			if known == nil {
				known = make(map[string][]ledgerd.PastDebit, len(accounts))
			}
			for id, a := range accounts {
				known[id] = a.Recent
			}
			memo.put(ledgerID, hi, need, known)
		}
		return nil
	})
	if err == nil && keep != nil {
		keep()
	}
	return res, err
}

// historyNeed is how many of an account's latest debits the rules look
// at: the median's, and one more than a velocity window allows (more
// cannot change a verdict).
func historyNeed(rules *ledgerd.FraudRules) int64 {
	need := int64(0)
	if rules.LargeAmount != nil {
		need = ledgerd.FraudMedianDebits
	}
	if rules.Velocity != nil {
		need = max(need, rules.Velocity.MaxDebits+1)
	}
	return need
}

// flag is a transaction scored at or above freeze_score.
type flag struct {
	tx   *ledgerd.FraudTx
	risk ledgerd.Risk
	raw  []byte
}

// FraudPostedSQL reads the transactions of a scoring step, in log order.
const FraudPostedSQL = `SELECT t.id, t.sequence, t.created_at, t.postings FROM transactions t
	WHERE t.ledger_id = $1 AND t.sequence > $2 AND t.sequence <= $3 AND t.status = 'posted'
	ORDER BY t.sequence`

// postedDebits reads the transactions in (from, to] that posted (holds,
// voids and expiries move no posted balance and are not scored), with
// what each took from each account, in log order.
func postedDebits(ctx context.Context, tx pgx.Tx, ledgerID, from, to int64) ([]ledgerd.FraudTx, error) {
	rows, err := tx.Query(ctx, FraudPostedSQL, ledgerID, from, to)
	if err != nil {
		return nil, fmt.Errorf("read transactions to score: %w", err)
	}
	defer rows.Close()
	var out []ledgerd.FraudTx
	for rows.Next() {
		var id pgtype.UUID
		var t ledgerd.FraudTx
		var raw []byte
		if err := rows.Scan(&id, &t.Sequence, &t.At, &raw); err != nil {
			return nil, err
		}
		ps, err := ledgerd.ParsePostingsJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("transaction %d postings: %w", t.Sequence, err)
		}
		t.ID, t.At = uuidString(id), t.At.UTC()
		for _, p := range ps {
			j := slices.IndexFunc(t.Debits, func(d ledgerd.FraudDebit) bool { return d.Account == p.Source })
			if j < 0 {
				t.Debits = append(t.Debits, ledgerd.FraudDebit{Account: p.Source, Amount: p.Amount})
			} else {
				t.Debits[j].Amount = ledgerd.SaturatingAdd(t.Debits[j].Amount, p.Amount)
			}
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// FraudAccountsSQL reads what the rules need of a step's debited accounts.
const FraudAccountsSQL = `SELECT id, created_at, min_balance IS NULL FROM accounts WHERE ledger_id = $1 AND id = ANY ($2::text[])`

// fraudAccounts loads the debited accounts of txs as they were after
// sequence cur: their rows, and their latest need debits — from known
// when it has them, else from the log.
func fraudAccounts(ctx context.Context, tx pgx.Tx, ledgerID, cur, need int64, known map[string][]ledgerd.PastDebit,
	txs []ledgerd.FraudTx) (map[string]*ledgerd.FraudAccount, error) {
	accounts := map[string]*ledgerd.FraudAccount{}
	var ids []string
	for i := range txs {
		for _, d := range txs[i].Debits {
			if _, ok := accounts[d.Account]; !ok {
				accounts[d.Account] = nil
				ids = append(ids, d.Account)
			}
		}
	}
	if len(ids) == 0 {
		return accounts, nil
	}
	rows, err := tx.Query(ctx, FraudAccountsSQL, ledgerID, ids)
	if err != nil {
		return nil, fmt.Errorf("read accounts to score: %w", err)
	}
	for rows.Next() {
		a := &ledgerd.FraudAccount{}
		var id string
		if err := rows.Scan(&id, &a.CreatedAt, &a.Unbounded); err != nil {
			rows.Close()
			return nil, err
		}
		accounts[id] = a
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var unknown []string
	for id, a := range accounts {
		if a == nil { // cannot happen: a transaction's accounts exist
			return nil, fmt.Errorf("account %q of a transaction does not exist", id)
		}
		if r, ok := known[id]; ok {
			a.Recent = r
		} else {
			unknown = append(unknown, id)
		}
	}
	if need == 0 || len(unknown) == 0 {
		return accounts, nil
	}
	hrows, err := tx.Query(ctx, FraudHistorySQL, ledgerID, unknown, cur, need, fraudScanFactor*need)
	if err != nil {
		return nil, fmt.Errorf("read debit history: %w", err)
	}
	defer hrows.Close()
	for hrows.Next() {
		var id string
		var d ledgerd.PastDebit
		if err := hrows.Scan(&id, &d.Sequence, &d.Amount, &d.At); err != nil {
			return nil, err
		}
		d.At = d.At.UTC()
		a := accounts[id]
		a.Recent = append(a.Recent, d)
	}
	if err := hrows.Err(); err != nil {
		return nil, err
	}
	for _, id := range unknown {
		slices.Reverse(accounts[id].Recent) // oldest first
	}
	return accounts, nil
}

// fraudScanFactor bounds the entries read per account for its history:
// this many times the debits wanted.
const fraudScanFactor = 4

// flagAndFreeze records each flagged transaction's transaction.flagged
// event and freezes its debited accounts that are bounded and active,
// each with its account.frozen event, under the ledger's ordering lock
// taken as a PATCH of an account takes it (batch writers then drop their
// cached accounts). It returns how many accounts it froze.
func flagAndFreeze(ctx context.Context, tx pgx.Tx, ledgerID int64, flagged []flag, accounts map[string]*ledgerd.FraudAccount) (int, error) {
	if _, err := tx.Exec(ctx, PatchLockSQL, ledgerID); err != nil {
		return 0, err
	}
	frozen := 0
	for _, f := range flagged {
		var s txScan
		if err := tx.QueryRow(ctx, `SELECT `+txCols+` FROM transactions t WHERE t.ledger_id = $1 AND t.sequence = $2`,
			ledgerID, f.tx.Sequence).Scan(s.dest()...); err != nil {
			return 0, fmt.Errorf("read flagged transaction: %w", err)
		}
		t := s.tx()
		t.RawRisk = f.raw
		id := ledgerd.NewEventID(time.Now())[len(ledgerd.EventIDPrefix):]
		if _, err := tx.Exec(ctx, `INSERT INTO events (id, ledger_id, after_sequence, type, data, created_at)
			SELECT $2, $1, last_sequence, $3, $4::json, now() FROM ledgers WHERE id = $1`,
			ledgerID, id, string(ledgerd.EventTransactionFlagged), string(wire.AppendTransaction(nil, t))); err != nil {
			return 0, err
		}
		for _, d := range f.tx.Debits {
			if accounts[d.Account].Unbounded {
				continue
			}
			a, err := scanAccount(tx.QueryRow(ctx, `WITH a AS (UPDATE accounts SET status = 'frozen'
				WHERE ledger_id = $1 AND id = $2 AND status = 'active' AND min_balance IS NOT NULL RETURNING *)
				SELECT `+accountCols+` FROM `+accountHead("a"), ledgerID, d.Account))
			if errors.Is(err, pgx.ErrNoRows) {
				continue // frozen already, or unbounded since
			}
			if err != nil {
				return 0, err
			}
			reason := freezeReason(t.ID, &f.risk, d.Account)
			if err := insertStatusEvent(ctx, tx, ledgerID, a, &reason); err != nil {
				return 0, err
			}
			frozen++
		}
	}
	return frozen, nil
}

// freezeReason is the reason of an automatic freeze: the transaction, its
// score and the rules that fired (on this account, or else on the
// transaction).
func freezeReason(txID string, k *ledgerd.Risk, account string) string {
	rules := k.Rules(account)
	if len(rules) == 0 {
		rules = k.Rules("")
	}
	s := "fraud scoring: transaction " + txID + " scored " + strconv.Itoa(k.Score) + " ("
	for i, r := range rules {
		if i > 0 {
			s += ", "
		}
		s += r
	}
	return s + ")"
}

// FraudLagSQL sums the scoring cursors' distance to their ledgers, with
// the age of the oldest transaction not scored.
const FraudLagSQL = `SELECT coalesce(sum(l.last_sequence - c.seq), 0)::bigint,
	coalesce(max(extract(epoch FROM clock_timestamp() - t.created_at)), 0)::float8
	FROM event_cursors c JOIN ledgers l ON l.id = c.ledger_id AND l.last_sequence > c.seq
	LEFT JOIN transactions t ON t.ledger_id = c.ledger_id AND t.sequence = c.seq + 1
	WHERE c.consumer = $1`

// FraudLag is how far scoring is behind, over all ledgers: transactions
// committed past the cursors, and the age of the oldest of them in seconds.
func (db *DB) FraudLag(ctx context.Context) (transactions int64, seconds float64, err error) {
	err = db.queryRow(ctx, FraudLagSQL, FraudConsumer).Scan(&transactions, &seconds)
	return transactions, seconds, err
}
