package job

import (
	"context"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/postgres"
)

// ReadFunc reads a page of a ledger's events.
type ReadFunc = postgres.ReadFunc

// Store is the tail's storage; *postgres.DB is one.
type Store interface {
	RelayStep(ctx context.Context, consumer string, limit int, read ReadFunc, first postgres.FirstFunc,
		lease time.Duration) (int, []ledgerd.DeliveryTask, error)
	ClaimDeliveries(ctx context.Context, n, perEndpoint int, room map[string]int, lease time.Duration) ([]ledgerd.DeliveryTask, error)
	CompleteDeliveries(ctx context.Context, rs []ledgerd.DeliveryResult) error
	DisableGoneEndpoint(ctx context.Context, endpointID string, delivery int64, attempts int) error
	DeleteDeliveredBefore(ctx context.Context, before time.Time, limit int) (int64, error)
	TailStats(ctx context.Context, consumer string) (postgres.TailStats, error)
}

// EventReader reads a ledger's events in order after a position, bounded
// by what is committed in the snapshot it reads (so that nothing can
// appear behind a reader later); *postgres.DB is one.
type EventReader interface {
	ReadEvents(ctx context.Context, ledgerID int64, ledgerName string, q ledgerd.EventQuery) (ledgerd.EventPage, error)
}
