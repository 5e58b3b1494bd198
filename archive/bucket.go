package archive

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// (the default: a directory under the data dir)
	_ "gocloud.dev/blob/s3blob"   // s3:// (AWS or any S3-compatible server: ?endpoint=…&use_path_style=true)
)

// DirURL is the bucket URL of a local directory, created when missing.
// Metadata sidecar files are not written: a file set is self-describing
// (manifest.json).
func DirURL(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return "", err
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: "metadata=skip&no_tmp_dir=1"}
	return u.String(), nil
}

// OpenBucket opens the archive's bucket: rawURL (LEDGERD_BLOB_URL) when
// set, otherwise the directory dir.
func OpenBucket(ctx context.Context, rawURL, dir string) (*blob.Bucket, error) {
	if rawURL == "" {
		var err error
		if rawURL, err = DirURL(dir); err != nil {
			return nil, fmt.Errorf("archive directory: %w", err)
		}
	}
	b, err := blob.OpenBucket(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("open archive bucket: %w", err)
	}
	return b, nil
}
