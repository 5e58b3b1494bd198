package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/ledgerd/ledgerd/postgres"
	"github.com/parquet-go/parquet-go"
	"gocloud.dev/blob"
)

// FormatVersion is the version of the file set layout in manifest.json.
const FormatVersion = 1

// The files of one ledger's month, under Prefix(ledger, month).
const (
	TransactionsFile = "transactions.parquet"
	PostingsFile     = "postings.parquet"
	EntriesFile      = "entries.parquet"
	ManifestFile     = "manifest.json"
)

// Prefix is the key prefix of a ledger's month: ledgers/<name>/<YYYY-MM>/.
func Prefix(ledger string, month time.Time) string {
	return fmt.Sprintf("ledgers/%s/%s/", ledger, month.Format("2006-01"))
}

// Manifest describes a file set; it is written last, so a set without one
// is incomplete, and it is kept in the archives table too.
type Manifest struct {
	Format        int                     `json:"format"`
	Ledger        string                  `json:"ledger"`
	LedgerID      int64                   `json:"ledger_id"`
	Month         string                  `json:"month"`
	WrittenAt     time.Time               `json:"written_at"`
	FirstSequence int64                   `json:"first_sequence"`
	LastSequence  int64                   `json:"last_sequence"`
	Files         map[string]FileInfo     `json:"files"`
	Assets        map[string]postgres.Sum `json:"assets"`
}

// FileInfo is one file of a set.
type FileInfo struct {
	Key    string `json:"key"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// countingHash sees every byte written to a blob: its checksum and size.
type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) { c.n += int64(len(p)); return c.h.Write(p) }

// writeParquet writes one Parquet file of rows produced by fill (which
// calls its argument with each chunk) and returns its FileInfo.
func writeParquet[T any](ctx context.Context, b *blob.Bucket, key string, fill func(func([]T) error) error) (FileInfo, error) {
	fi := FileInfo{Key: key}
	bw, err := b.NewWriter(ctx, key, &blob.WriterOptions{ContentType: "application/vnd.apache.parquet"})
	if err != nil {
		return fi, err
	}
	ch := &countingHash{h: sha256.New()}
	pw := parquet.NewGenericWriter[T](io.MultiWriter(bw, ch), parquet.Compression(&parquet.Zstd))
	err = fill(func(rows []T) error {
		n, err := pw.Write(rows)
		fi.Rows += int64(n)
		return err
	})
	if err == nil {
		err = pw.Close()
	}
	if err != nil {
		_ = bw.Close()
		_ = b.Delete(ctx, key)
		return fi, fmt.Errorf("write %s: %w", key, err)
	}
	if err := bw.Close(); err != nil {
		return fi, fmt.Errorf("write %s: %w", key, err)
	}
	fi.Bytes, fi.SHA256 = ch.n, hex.EncodeToString(ch.h.Sum(nil))
	return fi, nil
}

// ErrTampered marks a file whose checksum or size is not its manifest's.
var ErrTampered = errors.New("archive file does not match its manifest")

// fetch copies a file of a set into a temporary file, checking it against
// its manifest entry on the way: a file altered since it was written is
// refused before anything parses it.
func fetch(ctx context.Context, b *blob.Bucket, fi FileInfo) (*os.File, error) {
	r, err := b.NewReader(ctx, fi.Key, nil)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", fi.Key, err)
	}
	defer r.Close()
	f, err := os.CreateTemp("", "ledgerd-archive-*.parquet")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name()) // gone with the last handle
	ch := &countingHash{h: sha256.New()}
	if _, err := io.Copy(io.MultiWriter(f, ch), r); err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", fi.Key, err)
	}
	if sum := hex.EncodeToString(ch.h.Sum(nil)); sum != fi.SHA256 || ch.n != fi.Bytes {
		f.Close()
		return nil, fmt.Errorf("%w: %s is %d bytes with sha256 %s, the manifest says %d bytes with sha256 %s",
			ErrTampered, fi.Key, ch.n, sum, fi.Bytes, fi.SHA256)
	}
	return f, nil
}

// readParquet reads a checked file of a set chunk by chunk.
func readParquet[T any](ctx context.Context, b *blob.Bucket, fi FileInfo, fn func([]T) error) error {
	f, err := fetch(ctx, b, fi)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", fi.Key, err)
	}
	r := parquet.NewGenericReader[T](pf)
	defer r.Close()
	buf := make([]T, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if ferr := fn(buf[:n]); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", fi.Key, err)
		}
	}
}

// ReadManifest reads a set's manifest.json.
func ReadManifest(ctx context.Context, b *blob.Bucket, ledger string, month time.Time) (*Manifest, error) {
	data, err := b.ReadAll(ctx, Prefix(ledger, month)+ManifestFile)
	if err != nil {
		return nil, err
	}
	return parseManifest(data)
}

func parseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("manifest format %d, this ledgerd reads %d", m.Format, FormatVersion)
	}
	for _, f := range []string{TransactionsFile, PostingsFile, EntriesFile} {
		if _, ok := m.Files[f]; !ok {
			return nil, fmt.Errorf("manifest lists no %s", f)
		}
	}
	return &m, nil
}
