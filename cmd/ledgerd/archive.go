package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/archive"
	"github.com/ledgerd/ledgerd/job"
	"github.com/ledgerd/ledgerd/postgres"
)

// archiveConfig is where archives go (docs/data-lifecycle.md).
type archiveConfig struct {
	DatabaseURL    string
	BlobURL        string
	DataDir        string
	IdempotencyTTL time.Duration
}

// bind registers the archive's flags for `ledgerd archive` and `ledgerd
// restore`.
func (a *archiveConfig) bind(b *binder) {
	b.secret(&a.DatabaseURL, "database-url", "DATABASE_URL", "PostgreSQL `URL` of the primary", maskURL)
	b.secret(&a.BlobURL, "blob-url", "LEDGERD_BLOB_URL", "bucket `URL` of the archive: s3://bucket?region=…&endpoint=…, file:///dir (empty: <data-dir>/archive)", maskBlobURL)
	b.str(&a.DataDir, "data-dir", "LEDGERD_DATA_DIR", ".ledgerd", "the archive goes to <data-dir>/archive when LEDGERD_BLOB_URL is empty")
	b.dur(&a.IdempotencyTTL, "idempotency-ttl", "LEDGERD_IDEMPOTENCY_TTL", postgres.DefaultIdempotencyTTL, "the API's idempotency retention: a month leaves only once its records have expired")
}

// maskBlobURL hides what may be a credential in a bucket URL's query
// (S3 URLs normally carry none: the AWS environment does).
func maskBlobURL(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i] + "?…"
	}
	return s
}

// open connects to the primary, whose schema must be this binary's or
// newer, and opens the archive's bucket; close releases both.
func (a *archiveConfig) open(ctx context.Context, stderr io.Writer) (arc *archive.Archiver, close func(), err error) {
	if a.DatabaseURL == "" {
		return nil, nil, errors.New("DATABASE_URL (or --database-url) is required")
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: a.DatabaseURL, MaxConns: 3})
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	if _, err := db.CheckSchema(ctx); err != nil {
		return nil, nil, err
	}
	bucket, err := archive.OpenBucket(ctx, a.BlobURL, filepath.Join(a.DataDir, "archive"))
	if err != nil {
		return nil, nil, err
	}
	arc = &archive.Archiver{DB: db, Bucket: bucket, Log: newLogger(stderr), IdempotencyTTL: a.IdempotencyTTL}
	return arc, func() { bucket.Close(); db.Close() }, nil
}

// runArchive archives every month the retention policies allow, or the
// months named.
func runArchive(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	fs := newFlagSet("archive", "Archive the months of transactions and entries older than every ledger's hot_months to Parquet files\n"+
		"in object storage, verify them, then drop them from the database; finish any archival a crash interrupted.", stderr)
	var months monthList
	var a archiveConfig
	b := &binder{fs: fs, lookupEnv: lookupEnv}
	a.bind(b)
	fs.Var(&months, "month", "archive this `YYYY-MM` whatever the policy says, a restored month included (may repeat)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(b.errs) > 0 {
		return errors.Join(b.errs...)
	}
	arc, closeArc, err := a.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeArc()
	rep, err := arc.Run(ctx, months...)
	if rep != nil {
		for _, m := range rep.Archived {
			fmt.Fprintln(stdout, "archived", m)
		}
		for _, s := range rep.Skipped {
			fmt.Fprintln(stdout, "kept", s)
		}
	}
	return err
}

// runRestore re-attaches a ledger's archived month from its files.
func runRestore(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", "Re-attach a ledger's archived month from its files (verified like archival), for an audit.", stderr)
	var ledger, month string
	var a archiveConfig
	b := &binder{fs: fs, lookupEnv: lookupEnv}
	a.bind(b)
	fs.StringVar(&ledger, "ledger", "", "the ledger's `name` (required)")
	fs.StringVar(&month, "month", "", "the month, `YYYY-MM` (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(b.errs) > 0 {
		return errors.Join(b.errs...)
	}
	if ledger == "" || month == "" {
		return errors.New("--ledger and --month are required")
	}
	m, err := time.Parse("2006-01", month)
	if err != nil {
		return fmt.Errorf("--month %q: want YYYY-MM", month)
	}
	arc, closeArc, err := a.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeArc()
	man, err := arc.Restore(ctx, ledger, m)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored ledger %s %s: %d transactions, %d entries, sequences %d..%d\n", ledger, month,
		man.Files[archive.TransactionsFile].Rows, man.Files[archive.EntriesFile].Rows, man.FirstSequence, man.LastSequence)
	return nil
}

// monthList is a repeatable YYYY-MM flag.
type monthList []time.Time

func (l *monthList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, m := range *l {
		s[i] = m.Format("2006-01")
	}
	return strings.Join(s, ",")
}

func (l *monthList) Set(v string) error {
	m, err := time.Parse("2006-01", v)
	if err != nil {
		return fmt.Errorf("want YYYY-MM")
	}
	*l = append(*l, m)
	return nil
}

// archiveJob is the tail's periodic archival, off without a bucket URL: a
// worker's local disk is no place for the archive of a cluster.
func (t *tailConfig) archiveJob(ctx context.Context, db *postgres.DB, log *slog.Logger) (job.ArchiveConfig, error) {
	if t.BlobURL == "" || t.ArchiveEvery <= 0 {
		return job.ArchiveConfig{}, nil
	}
	bucket, err := archive.OpenBucket(ctx, t.BlobURL, "")
	if err != nil {
		return job.ArchiveConfig{}, err
	}
	ttl := t.IdempotencyTTL
	if ttl == 0 {
		ttl = postgres.DefaultIdempotencyTTL
	}
	arc := &archive.Archiver{DB: db, Bucket: bucket, Log: log.With("job", "archive"), IdempotencyTTL: ttl}
	go func() { <-ctx.Done(); bucket.Close() }()
	return job.ArchiveConfig{Every: t.ArchiveEvery, Run: func(ctx context.Context) error {
		rep, err := arc.Run(ctx)
		if errors.Is(err, archive.ErrBusy) {
			return nil // another worker's turn
		}
		if rep != nil && len(rep.Archived) > 0 {
			arc.Log.Info("archive run", "archived", rep.Archived, "checkpointed_rows", rep.Rows)
		}
		return err
	}}, nil
}

// archiveReader is how an API node answers balance history and statements
// of archived months: from the bucket of LEDGERD_BLOB_URL. Without one
// (the archive in a local directory, written by `ledgerd archive`), those
// reads answer 503 until it is set, to file:///…/archive for instance.
func archiveReader(ctx context.Context, blobURL string) (postgres.ArchiveReader, error) {
	if blobURL == "" {
		return nil, nil
	}
	bucket, err := archive.OpenBucket(ctx, blobURL, "")
	if err != nil {
		return nil, err
	}
	return archive.NewReader(bucket), nil
}
