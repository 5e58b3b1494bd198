package postgres

import (
	"context"
	"errors"
	"sync"

	"github.com/ledgerd/ledgerd"
)

// BatchStore is the database as the group-commit writer (package batch)
// uses it. It keeps one AccountCache per ledger, so that the writer deals
// only in ledger ids, units and domain errors: a ledger's cache is used by
// that ledger's writer goroutine alone (WriteBatch, PrepareFast and
// FastLanded of one ledger are never called concurrently).
type BatchStore struct {
	db     *DB
	caches sync.Map // ledger id → *AccountCache
}

// BatchStore returns the writer's view of db.
func (db *DB) BatchStore() *BatchStore { return &BatchStore{db: db} }

func (s *BatchStore) cache(ledgerID int64) *AccountCache {
	if c, ok := s.caches.Load(ledgerID); ok {
		return c.(*AccountCache)
	}
	c, _ := s.caches.LoadOrStore(ledgerID, NewAccountCache())
	return c.(*AccountCache)
}

// WriteBatch writes units as one batch of the ledger (DB.WriteBatch).
func (s *BatchStore) WriteBatch(ctx context.Context, ledgerID int64, units []*ledgerd.WriteUnit) error {
	return s.db.WriteBatch(ctx, ledgerID, units, s.cache(ledgerID))
}

// PrepareFast decides units on the ledger's cached state and returns the
// function that writes them (FastBatch.Commit), or nil when the batch
// must be written with WriteBatch (DB.PrepareFast). Once the returned
// commit has returned, FastLanded must be told its error, in the order
// the batches were prepared.
func (s *BatchStore) PrepareFast(ledgerID int64, units []*ledgerd.WriteUnit) func(ctx context.Context, after <-chan struct{}, locked func()) error {
	fast := s.db.PrepareFast(ledgerID, units, s.cache(ledgerID))
	if fast == nil {
		return nil
	}
	return fast.Commit
}

// FastLanded records the outcome of a fast batch's commit: a success
// keeps the cache and the fast path on; any failure drops the cache.
func (s *BatchStore) FastLanded(ledgerID int64, err error) {
	if err == nil {
		s.cache(ledgerID).FastCommitted()
		return
	}
	s.cache(ledgerID).Invalidate()
}

// BatchCommitted reports, for an error that is ledgerd.ErrCommitUnknown,
// whether the batch is in the database; ok is false when that cannot be
// told.
func (s *BatchStore) BatchCommitted(ctx context.Context, err error) (committed, ok bool) {
	var cu *CommitUnknownError
	if !errors.As(err, &cu) {
		return false, false
	}
	return s.db.BatchCommitted(ctx, cu)
}

// InsertDeadLetter keeps an item that failed on its own (DB.InsertDeadLetter).
func (s *BatchStore) InsertDeadLetter(ctx context.Context, ledgerID int64, key string, request []byte, reason string) error {
	return s.db.InsertDeadLetter(ctx, ledgerID, key, request, reason)
}
