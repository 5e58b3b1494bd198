package pgcluster

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// openLog sets up where initdb's and the server's output goes.
func (c *Cluster) openLog(w io.Writer) error {
	c.tail = &tailBuffer{max: 16 << 10}
	if w != nil {
		c.userLog = w
		return nil
	}
	if c.tempRoot != "" {
		c.LogPath = filepath.Join(c.tempRoot, "postgres.log")
	} else {
		c.LogPath = filepath.Join(filepath.Dir(c.DataDir), filepath.Base(c.DataDir)+".log")
	}
	f, err := os.OpenFile(c.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pgcluster: log file: %w", err)
	}
	c.logFile = f
	if c.cred != nil {
		if err := f.Chown(int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("pgcluster: log file: %w", err)
		}
	}
	return nil
}

// outputWriter is what child processes write to. With an owned log file the
// file itself is handed to the child (no pipe, so a dying parent does not
// break the server's logging); otherwise output is copied to Options.Log and
// the tail buffer.
func (c *Cluster) outputWriter() io.Writer {
	if c.logFile != nil {
		return c.logFile
	}
	return io.MultiWriter(c.userLog, c.tail)
}

// recentOutput returns the server output since the current start, for error
// messages.
func (c *Cluster) recentOutput() string {
	if c.logFile == nil {
		return c.tail.String()
	}
	f, err := os.Open(c.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	from := c.logStart
	if fi.Size()-from > 16<<10 {
		from = fi.Size() - 16<<10
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, from, fi.Size()-from))
	return string(b)
}

func (c *Cluster) markLogStart() {
	c.tail.Reset()
	if c.logFile != nil {
		if fi, err := c.logFile.Stat(); err == nil {
			c.logStart = fi.Size()
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) Reset() {
	t.mu.Lock()
	t.buf = t.buf[:0]
	t.mu.Unlock()
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
