package postgres

import (
	"encoding/binary"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// copyBuf renders rows in PostgreSQL's binary COPY format by hand. pgx's
// CopyFrom encodes every value through its generic type map; the profile of
// the batch scenario had that encoding at ~22 % of ledgerd's CPU, all of it
// inside the ledger's ordering lock. The columns written here are few and
// fixed, so a direct encoder is short and an order of magnitude cheaper.
type copyBuf struct{ b []byte }

var copySignature = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

func newCopyBuf(size int) *copyBuf {
	c := &copyBuf{b: make([]byte, 0, size)}
	c.b = append(c.b, copySignature...)
	return c
}

func (c *copyBuf) row(fields int) { c.b = binary.BigEndian.AppendUint16(c.b, uint16(fields)) }

func (c *copyBuf) null() { c.b = binary.BigEndian.AppendUint32(c.b, 0xffffffff) }

func (c *copyBuf) int8(v int64) {
	c.b = binary.BigEndian.AppendUint32(c.b, 8)
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(v))
}

// int8OrNull writes 0 as NULL (columns where NULL means zero, to keep
// rows narrow).
func (c *copyBuf) int8OrNull(v int64) {
	if v == 0 {
		c.null()
		return
	}
	c.int8(v)
}

func (c *copyBuf) int2(v int16) {
	c.b = binary.BigEndian.AppendUint32(c.b, 2)
	c.b = binary.BigEndian.AppendUint16(c.b, uint16(v))
}

func (c *copyBuf) boolean(v bool) {
	c.b = binary.BigEndian.AppendUint32(c.b, 1)
	if v {
		c.b = append(c.b, 1)
	} else {
		c.b = append(c.b, 0)
	}
}

// text writes text, varchar and json (json's binary form is its text).
func (c *copyBuf) text(s string) {
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(s)))
	c.b = append(c.b, s...)
}

func (c *copyBuf) textPtr(s *string) {
	if s == nil {
		c.null()
		return
	}
	c.text(*s)
}

func (c *copyBuf) uuid(u pgtype.UUID) {
	if !u.Valid {
		c.null()
		return
	}
	c.b = binary.BigEndian.AppendUint32(c.b, 16)
	c.b = append(c.b, u.Bytes[:]...)
}

// pgEpoch is timestamptz's zero: microseconds are counted from 2000-01-01 UTC.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *copyBuf) timestamptz(t time.Time) {
	c.b = binary.BigEndian.AppendUint32(c.b, 8)
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(t.Sub(pgEpoch).Microseconds()))
}

func (c *copyBuf) timestamptzPtr(t *time.Time) {
	if t == nil {
		c.null()
		return
	}
	c.timestamptz(*t)
}

// bytes ends the stream and returns it.
func (c *copyBuf) bytes() []byte {
	return binary.BigEndian.AppendUint16(c.b, 0xffff)
}
