package archive

import (
	"context"

	"github.com/ledgerd/ledgerd/postgres"
	"gocloud.dev/blob"
)

// Reader answers reads of archived months from their files
// (postgres.ArchiveReader). Each read fetches the month's entries file,
// checks it against the manifest kept in the database and scans it: tens
// of milliseconds for a month of a small ledger, seconds for a large one
// (docs/data-lifecycle.md).
type Reader struct {
	Bucket *blob.Bucket
}

// AccountEntries returns an account's entries of an archived month in
// (sequence, posting_index) order, the order they were written in.
func (r Reader) AccountEntries(ctx context.Context, a postgres.Archive, account string) ([]postgres.ArchivedEntry, error) {
	m, err := parseManifest(a.Manifest)
	if err != nil {
		return nil, err
	}
	var out []postgres.ArchivedEntry
	err = readParquet(ctx, r.Bucket, m.Files[EntriesFile], func(es []postgres.ArchivedEntry) error {
		for _, e := range es {
			if e.AccountID == account {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}
