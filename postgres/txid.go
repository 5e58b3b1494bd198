package postgres

import (
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// newTxID returns a UUIDv7 for a transaction created at t. Its first 48 bits
// are t in milliseconds, which is what the monthly partitions range on.
func newTxID(t time.Time) [16]byte { return TransactionIDAt(t, rand.Uint64).Bytes }

// TransactionIDAt is the transaction id layout (UUIDv7, time in the first
// 48 bits) with the random bits drawn from random; exported for tools that
// generate data, such as scripts/explaindb.
func TransactionIDAt(t time.Time, random func() uint64) pgtype.UUID {
	var u [16]byte
	ms := uint64(t.UnixMilli())
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	r1, r2 := random(), random()
	u[6] = 0x70 | byte(r1&0x0f)
	u[7] = byte(r1 >> 8)
	u[8] = 0x80 | byte((r1>>16)&0x3f)
	for i := 9; i < 16; i++ {
		u[i] = byte(r2 >> (8 * (i - 9)))
	}
	return pgtype.UUID{Bytes: u, Valid: true}
}

func parseID(s string) pgtype.UUID {
	if s == "" {
		return pgtype.UUID{}
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return pgtype.UUID{}
	}
	return pgtype.UUID{Bytes: u, Valid: true}
}
