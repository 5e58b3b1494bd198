package archive

import (
	"context"
	"sync"

	"github.com/ledgerd/ledgerd/postgres"
	"gocloud.dev/blob"
)

// readerCacheSize bounds the per-account results a Reader keeps: a
// statement page reads the same account's month up to three times
// (opening, closing, lines), and pages follow each other.
const readerCacheSize = 256

// readerCacheMaxRows is the largest result kept (an account with more
// entries in a month is read again each time).
const readerCacheMaxRows = 10000

// Reader answers reads of archived months from their files
// (postgres.ArchiveReader). A read fetches the month's entries file,
// checks it against the manifest kept in the database and scans it: tens
// of milliseconds for a month of a small ledger, seconds for a large one
// (docs/data-lifecycle.md). The last results per account are kept in
// memory: archived files never change.
type Reader struct {
	Bucket *blob.Bucket

	mu    sync.Mutex
	cache map[readerKey][]postgres.ArchivedEntry
	order []readerKey
}

// NewReader returns a Reader over the archive's bucket.
func NewReader(b *blob.Bucket) *Reader { return &Reader{Bucket: b} }

type readerKey struct{ file, account string }

// AccountEntries returns an account's entries of an archived month in
// (sequence, posting_index) order, the order they were written in.
func (r *Reader) AccountEntries(ctx context.Context, a postgres.Archive, account string) ([]postgres.ArchivedEntry, error) {
	m, err := parseManifest(a.Manifest)
	if err != nil {
		return nil, err
	}
	fi := m.Files[EntriesFile]
	key := readerKey{fi.SHA256, account}
	r.mu.Lock()
	out, ok := r.cache[key]
	r.mu.Unlock()
	if ok {
		return out, nil
	}
	out = []postgres.ArchivedEntry{}
	err = readParquet(ctx, r.Bucket, fi, func(es []postgres.ArchivedEntry) error {
		for _, e := range es {
			if e.AccountID == account {
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) <= readerCacheMaxRows {
		r.remember(key, out)
	}
	return out, nil
}

func (r *Reader) remember(key readerKey, es []postgres.ArchivedEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache == nil {
		r.cache = map[readerKey][]postgres.ArchivedEntry{}
	}
	if _, ok := r.cache[key]; ok {
		return
	}
	if len(r.order) == readerCacheSize {
		delete(r.cache, r.order[0])
		r.order = r.order[1:]
	}
	r.cache[key], r.order = es, append(r.order, key)
}
