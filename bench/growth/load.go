package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// loadTx is one generated transaction: one posting of amount from src to
// dst at ts.
type loadTx struct {
	id       [16]byte
	seq      int64
	src, dst int32
	amount   int64
	ts       time.Time
	srcAfter int64 // the accounts' posted balance and version after it
	dstAfter int64
	srcVer   int64
	dstVer   int64
}

// commitSize is how many transactions share one commit (created_at and
// ledger_commits row), as the batch writer groups them.
const commitSize = 10

// load generates -postings transactions of one posting each (two entries
// each) spread evenly over the last -months months, between -accounts
// accounts: sources uniform, a tenth of the destinations one hot account
// (acct:000000), the rest uniform. It writes them with COPY into each
// month's partitions directly, then the accounts with their final
// balances as checkpoints (what a checkpoint leaves), the commit rows and
// the ledger's sequence. Seeded: the same flags give the same data.
func load(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	url := fs.String("url", "", "database URL (migrated, without a ledger named bench)")
	n := fs.Int64("postings", 1_000_000, "transactions of one posting each")
	accounts := fs.Int("accounts", 100_000, "accounts")
	months := fs.Int("months", 12, "months of history, ending now")
	_ = fs.Parse(args)
	conn, err := pgx.Connect(ctx, *url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SET synchronous_commit = off`); err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	start := now.AddDate(0, -*months, 0)
	var ledgerID int64
	if err := conn.QueryRow(ctx, `INSERT INTO ledgers (name, created_at) VALUES ('bench', $1) RETURNING id`,
		start.Add(-time.Hour)).Scan(&ledgerID); err != nil {
		return err
	}
	for m := monthOf(start); !m.After(now); m = m.AddDate(0, 1, 0) {
		for _, t := range []string{"transactions", "entries"} {
			if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%x') TO ('%x')`,
				partition(t, m), t, bound(m), bound(m.AddDate(0, 1, 0)))); err != nil {
				return err
			}
		}
	}

	rng := rand.New(rand.NewPCG(42, uint64(*n)))
	posted := make([]int64, *accounts)
	version := make([]int64, *accounts)
	span := now.Sub(start)
	tsOf := func(seq int64) time.Time {
		g := (seq - 1) / commitSize
		return start.Add(time.Duration(float64(span) * float64(g*commitSize+1) / float64(*n+1))).Truncate(time.Microsecond)
	}
	began := time.Now()
	var last time.Time
	for seq := int64(1); seq <= *n; {
		month := monthOf(tsOf(seq))
		var txs []loadTx
		for ; seq <= *n && monthOf(tsOf(seq)).Equal(month); seq++ {
			t := loadTx{seq: seq, ts: tsOf(seq), src: int32(rng.IntN(*accounts)), amount: 1 + rng.Int64N(10_000)}
			t.dst = int32((int(t.src) + 1 + rng.IntN(*accounts-1)) % *accounts)
			if seq%10 == 0 && t.src != 0 {
				t.dst = 0
			}
			t.id = txID(t.ts, seq)
			posted[t.src] -= t.amount
			posted[t.dst] += t.amount
			version[t.src]++
			version[t.dst]++
			t.srcAfter, t.dstAfter, t.srcVer, t.dstVer = posted[t.src], posted[t.dst], version[t.src], version[t.dst]
			txs = append(txs, t)
			last = t.ts
		}
		if err := copyMonth(ctx, conn, ledgerID, month, txs); err != nil {
			return err
		}
		fmt.Printf("%s: %d transactions, %d done in %s\n", month.Format("2006-01"), len(txs), seq-1, time.Since(began).Round(time.Second))
	}

	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"ledger_commits"}, []string{"ledger_id", "first_sequence", "last_sequence", "created_at"},
		pgx.CopyFromSlice(int((*n+commitSize-1)/commitSize), func(i int) ([]any, error) {
			first := int64(i)*commitSize + 1
			return []any{ledgerID, first, min(first+commitSize-1, *n), tsOf(first)}, nil
		})); err != nil {
		return fmt.Errorf("copy ledger_commits: %w", err)
	}
	from := bound(monthOf(last))
	tiers := []string{"bronze", "silver", "gold"}
	regions := []string{"eu", "us", "apac"}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"accounts"},
		[]string{"ledger_id", "id", "asset", "metadata", "posted", "version", "created_at", "entries_from"},
		pgx.CopyFromSlice(*accounts, func(i int) ([]any, error) {
			meta := fmt.Sprintf(`{"owner":"user%d","tier":"%s","region":"%s"}`, i, tiers[i%3], regions[i%3])
			return []any{ledgerID, accountID(int32(i)), "USD", meta, posted[i], version[i], start.Add(-time.Hour), from}, nil
		})); err != nil {
		return fmt.Errorf("copy accounts: %w", err)
	}
	_, err = conn.Exec(ctx, `UPDATE ledgers SET last_sequence = $2, last_created_at = $3 WHERE id = $1`, ledgerID, *n, last)
	fmt.Printf("loaded %d transactions (%d entries), %d accounts in %s\n", *n, 2**n, *accounts, time.Since(began).Round(time.Second))
	return err
}

// copyMonth writes one month's transactions and entries into its partitions.
func copyMonth(ctx context.Context, conn *pgx.Conn, ledgerID int64, month time.Time, txs []loadTx) error {
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{partition("transactions", month)},
		[]string{"id", "ledger_id", "sequence", "status", "postings", "metadata", "created_at"},
		pgx.CopyFromSlice(len(txs), func(i int) ([]any, error) {
			t := &txs[i]
			postings := fmt.Sprintf(`[{"source":"%s","destination":"%s","amount":%d,"asset":"USD"}]`,
				accountID(t.src), accountID(t.dst), t.amount)
			meta := "{}"
			if t.seq%4 == 0 {
				meta = fmt.Sprintf(`{"order":"A-%d"}`, t.seq)
			}
			return []any{t.id, ledgerID, t.seq, "posted", postings, meta, t.ts}, nil
		})); err != nil {
		return fmt.Errorf("copy %s: %w", partition("transactions", month), err)
	}
	_, err := conn.CopyFrom(ctx, pgx.Identifier{partition("entries", month)},
		[]string{"transaction_id", "ledger_id", "account_id", "sequence", "posting_index", "amount", "pending",
			"posted_after", "version", "created_at", "pending_debits_after", "pending_credits_after"},
		pgx.CopyFromSlice(2*len(txs), func(i int) ([]any, error) {
			t := &txs[i/2]
			if i%2 == 0 {
				return []any{t.id, ledgerID, accountID(t.src), t.seq, int16(0), -t.amount, false, t.srcAfter, t.srcVer, t.ts, int64(0), int64(0)}, nil
			}
			return []any{t.id, ledgerID, accountID(t.dst), t.seq, int16(0), t.amount, false, t.dstAfter, t.dstVer, t.ts, int64(0), int64(0)}, nil
		}))
	if err != nil {
		return fmt.Errorf("copy %s: %w", partition("entries", month), err)
	}
	return nil
}

func accountID(i int32) string { return fmt.Sprintf("acct:%06d", i) }

func monthOf(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC) }

// partition names a month's partition as postgres.EnsurePartitions does.
func partition(table string, m time.Time) string {
	return fmt.Sprintf("%s_%04d_%02d", table, m.Year(), m.Month())
}

// bound is a month's partition bound: its first 48 bits the month's start
// in Unix milliseconds, the rest zero.
func bound(t time.Time) [16]byte {
	var u [16]byte
	ms := uint64(t.UnixMilli())
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	return u
}

// txID is a UUIDv7 of ts whose remaining bits are the sequence: unique,
// and in sequence order like the ids the write path draws.
func txID(ts time.Time, seq int64) [16]byte {
	u := bound(ts)
	ms := uint64(ts.UnixMilli())
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	u[6] = 0x70
	binary.BigEndian.PutUint64(u[8:], uint64(seq))
	u[8] = 0x80 | u[8]&0x3f
	return u
}
