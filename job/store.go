package job

import (
	"context"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/postgres"
)

// ReadFunc reads up to limit events of a ledger after a position.
type ReadFunc = func(ctx context.Context, ledgerID int64, ledgerName string, after ledgerd.EventPosition, limit int) ([]ledgerd.Event, error)

// Store is the tail's storage; *postgres.DB is one.
type Store interface {
	RelayStep(ctx context.Context, consumer string, limit int, read ReadFunc) (int, error)
	ClaimDeliveries(ctx context.Context, n, perEndpoint int, room map[string]int, lease time.Duration) ([]ledgerd.DeliveryTask, error)
	CompleteDeliveries(ctx context.Context, rs []ledgerd.DeliveryResult) error
	DisableGoneEndpoint(ctx context.Context, endpointID string, delivery int64, attempts int) error
	DeleteDeliveredBefore(ctx context.Context, before time.Time, limit int) (int64, error)
	TailStats(ctx context.Context, consumer string) (postgres.TailStats, error)
}

// EventReader reads a ledger's events in order after a position, bounded
// by what is committed in the snapshot it reads (so that nothing can
// appear behind a reader later), optionally of some types only.
type EventReader interface {
	ReadEvents(ctx context.Context, ledgerID int64, ledgerName string, after ledgerd.EventPosition, types []ledgerd.EventType, limit int) ([]ledgerd.Event, error)
}

// TransactionSource is what TxEventReader reads: *postgres.DB.
type TransactionSource interface {
	TransactionsAfter(ctx context.Context, ledgerID, after int64, limit int) ([]*ledgerd.Transaction, error)
}

// TxEventReader is an EventReader of transaction events only, read
// straight from the log: the relay's reader until the events read model
// (which adds the other kinds) is wired in. Render renders a transaction
// as the API does.
type TxEventReader struct {
	Src    TransactionSource
	Render func(*ledgerd.Transaction) []byte
}

// ReadEvents implements EventReader. Transaction events are at
// (sequence, 0), so a position's ordinal adds nothing here.
func (r TxEventReader) ReadEvents(ctx context.Context, ledgerID int64, ledgerName string, after ledgerd.EventPosition,
	types []ledgerd.EventType, limit int) ([]ledgerd.Event, error) {
	txs, err := r.Src.TransactionsAfter(ctx, ledgerID, after.Sequence, limit)
	if err != nil {
		return nil, err
	}
	out := make([]ledgerd.Event, 0, len(txs))
	for _, t := range txs {
		ev, ok := ledgerd.TransactionEvent(ledgerName, t, r.Render(t))
		if !ok || (len(types) > 0 && !hasType(types, ev.Type)) {
			continue
		}
		out = append(out, ev)
	}
	return out, nil
}

func hasType(ts []ledgerd.EventType, t ledgerd.EventType) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}
