package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/postgres"
	"gocloud.dev/blob"
)

// writeSet writes a ledger's rows of a month's tables as a file set, the
// manifest last, and returns the manifest.
func writeSet(ctx context.Context, b *blob.Bucket, db *postgres.DB, txTable, enTable string, l postgres.MonthLedger, month time.Time) (*Manifest, error) {
	prefix := Prefix(l.Name, month)
	m := &Manifest{Format: FormatVersion, Ledger: l.Name, LedgerID: l.ID, Month: month.Format("2006-01"),
		WrittenAt: time.Now().UTC(), Files: map[string]FileInfo{}, Assets: map[string]postgres.Sum{}}
	fi, err := writeParquet(ctx, b, prefix+TransactionsFile, func(put func([]postgres.ArchivedTx) error) error {
		return db.ExportTransactions(ctx, txTable, l.ID, func(txs []postgres.ArchivedTx) error {
			if m.FirstSequence == 0 {
				m.FirstSequence = txs[0].Sequence
			}
			m.LastSequence = txs[len(txs)-1].Sequence
			return put(txs)
		})
	})
	if err != nil {
		return nil, err
	}
	m.Files[TransactionsFile] = fi
	if fi, err = writeParquet(ctx, b, prefix+PostingsFile, func(put func([]postgres.ArchivedPosting) error) error {
		return db.ExportTransactions(ctx, txTable, l.ID, func(txs []postgres.ArchivedTx) error {
			ps, err := postingsOf(txs)
			if err != nil {
				return err
			}
			for _, p := range ps {
				s := m.Assets[p.Asset]
				s.Count++
				s.Amount += p.Amount
				m.Assets[p.Asset] = s
			}
			return put(ps)
		})
	}); err != nil {
		return nil, err
	}
	m.Files[PostingsFile] = fi
	if fi, err = writeParquet(ctx, b, prefix+EntriesFile, func(put func([]postgres.ArchivedEntry) error) error {
		return db.ExportEntries(ctx, enTable, l.ID, put)
	}); err != nil {
		return nil, err
	}
	m.Files[EntriesFile] = fi
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := b.WriteAll(ctx, prefix+ManifestFile, data, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	return m, nil
}

func postingsOf(txs []postgres.ArchivedTx) ([]postgres.ArchivedPosting, error) {
	var out []postgres.ArchivedPosting
	for _, t := range txs {
		ps, err := ledgerd.ParsePostingsJSON([]byte(t.Postings))
		if err != nil {
			return nil, fmt.Errorf("transaction %s: %w", t.ID, err)
		}
		for i, p := range ps {
			out = append(out, postgres.ArchivedPosting{TransactionID: t.ID, Sequence: t.Sequence, Index: int32(i),
				Source: p.Source, Destination: p.Destination, Amount: p.Amount, Asset: p.Asset})
		}
	}
	return out, nil
}

// ErrMismatch marks a file set that does not hold what its table holds.
var ErrMismatch = errors.New("archive does not match the database")

// fileSums reads a set back (each file checked against its manifest
// checksum first) and computes what Sums computes over tables. It also
// checks what only the files can show: transactions in sequence order
// with no gap and no repeat, every entry and posting within the range.
func fileSums(ctx context.Context, b *blob.Bucket, m *Manifest) (*postgres.MonthSums, error) {
	s := &postgres.MonthSums{Accounts: map[string]postgres.Sum{}, Assets: map[string]postgres.Sum{}}
	var prev int64
	err := readParquet(ctx, b, m.Files[TransactionsFile], func(txs []postgres.ArchivedTx) error {
		for _, t := range txs {
			if prev != 0 && t.Sequence != prev+1 {
				return fmt.Errorf("%w: %s: sequence %d follows %d", ErrMismatch, TransactionsFile, t.Sequence, prev)
			}
			if s.Transactions == 0 {
				s.FirstSeq = t.Sequence
			}
			prev, s.LastSeq = t.Sequence, t.Sequence
			s.Transactions++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.DistinctSeq = s.Transactions
	inRange := func(file string, seq int64) error {
		if seq < s.FirstSeq || seq > s.LastSeq {
			return fmt.Errorf("%w: %s: sequence %d outside %d..%d", ErrMismatch, file, seq, s.FirstSeq, s.LastSeq)
		}
		return nil
	}
	err = readParquet(ctx, b, m.Files[PostingsFile], func(ps []postgres.ArchivedPosting) error {
		for _, p := range ps {
			if err := inRange(PostingsFile, p.Sequence); err != nil {
				return err
			}
			a := s.Assets[p.Asset]
			a.Count++
			a.Amount += p.Amount
			s.Assets[p.Asset] = a
			s.Postings++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = readParquet(ctx, b, m.Files[EntriesFile], func(es []postgres.ArchivedEntry) error {
		for _, e := range es {
			if err := inRange(EntriesFile, e.Sequence); err != nil {
				return err
			}
			a := s.Accounts[e.AccountID]
			a.Count++
			a.Amount += e.Amount
			s.Accounts[e.AccountID] = a
			s.Entries++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// compareSums explains the first difference between a set (files, with
// its manifest m) and its tables (db), or returns nil.
func compareSums(m *Manifest, files, db *postgres.MonthSums) error {
	bad := func(what string, f, d any) error {
		return fmt.Errorf("%w: ledger %s %s: %s is %v in the archive, %v in the database", ErrMismatch, m.Ledger, m.Month, what, f, d)
	}
	switch {
	case files.Transactions != m.Files[TransactionsFile].Rows:
		return bad("transactions (file vs manifest)", files.Transactions, m.Files[TransactionsFile].Rows)
	case files.Postings != m.Files[PostingsFile].Rows:
		return bad("postings (file vs manifest)", files.Postings, m.Files[PostingsFile].Rows)
	case files.Entries != m.Files[EntriesFile].Rows:
		return bad("entries (file vs manifest)", files.Entries, m.Files[EntriesFile].Rows)
	case files.FirstSeq != m.FirstSequence || files.LastSeq != m.LastSequence:
		return bad("sequence range (file vs manifest)", [2]int64{files.FirstSeq, files.LastSeq}, [2]int64{m.FirstSequence, m.LastSequence})
	case files.Transactions != db.Transactions:
		return bad("transaction count", files.Transactions, db.Transactions)
	case files.Entries != db.Entries:
		return bad("entry count", files.Entries, db.Entries)
	case files.Postings != db.Postings:
		return bad("posting count", files.Postings, db.Postings)
	case files.FirstSeq != db.FirstSeq || files.LastSeq != db.LastSeq:
		return bad("sequence range", [2]int64{files.FirstSeq, files.LastSeq}, [2]int64{db.FirstSeq, db.LastSeq})
	case db.Transactions > 0 && db.DistinctSeq != db.LastSeq-db.FirstSeq+1:
		return bad("distinct sequences (gap in the database)", files.DistinctSeq, db.DistinctSeq)
	case !maps.Equal(files.Assets, db.Assets):
		return bad("sums per asset", files.Assets, db.Assets)
	case !maps.Equal(files.Assets, m.Assets):
		return bad("sums per asset (file vs manifest)", files.Assets, m.Assets)
	case !maps.Equal(files.Accounts, db.Accounts):
		for id, f := range files.Accounts {
			if db.Accounts[id] != f {
				return bad("sum of account "+id, f, db.Accounts[id])
			}
		}
		return bad("accounts", len(files.Accounts), len(db.Accounts))
	}
	return nil
}

// verifySet checks a set against a ledger's rows of a month's tables.
func verifySet(ctx context.Context, b *blob.Bucket, db *postgres.DB, txTable, enTable string, m *Manifest) error {
	files, err := fileSums(ctx, b, m)
	if err != nil {
		return err
	}
	sums, err := db.Sums(ctx, txTable, enTable, m.LedgerID)
	if err != nil {
		return err
	}
	return compareSums(m, files, sums)
}
