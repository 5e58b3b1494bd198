package job_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/ledgertest"
)

// BenchmarkRelay measures one worker delivering b.N transactions already
// in the log to one endpoint on loopback that answers 200 at once, from
// the relay's first read to the last arrival, and what it costs the worker
// and PostgreSQL per 1,000 deliveries:
//
//   - first: the endpoint is healthy, so the relay attempts each delivery
//     itself and records it once with its outcome;
//
//   - queued: the endpoint has a delivery pending (due in a day), so every
//     new delivery is queued, claimed and completed (the path of a failing
//     endpoint, and the only path before first attempts).
//
//     go test -run '^$' -bench Relay -benchtime 20000x ./job/
func BenchmarkRelay(b *testing.B) {
	for _, mode := range []string{"first", "queued"} {
		b.Run(mode, func(b *testing.B) { benchRelay(b, mode == "queued") })
	}
}

func benchRelay(b *testing.B, queued bool) {
	e := ledgertest.Start(b, ledgertest.Options{WebhookAllowPrivate: true})
	l := newLedger(b, e, "relay")
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	b.Cleanup(srv.Close)
	epID, _ := endpoint(b, e, l, srv.URL+"/hook")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ledgertest.DirectURL(b, e.DatabaseURL))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if queued {
		if _, err := conn.Exec(ctx, `INSERT INTO webhook_deliveries (endpoint_id, event_id, ledger_id, seq, ord, event_type,
				event_created_at, data, next_attempt_at)
			SELECT $1, 'evt_blocker', ledger_id, 0, 0, 'transaction.posted', clock_timestamp(), '{}', clock_timestamp() + interval '1 day'
			FROM webhook_endpoints WHERE id = $1`, epID); err != nil {
			b.Fatal(err)
		}
	}
	for left := b.N; left > 0; {
		k := min(left, 1000)
		items := make([]map[string]any, k)
		for i := range items {
			items[i] = map[string]any{"postings": []map[string]any{{"source": "world", "destination": "a", "amount": 1, "asset": "USD"}}}
		}
		e.Do("POST", "/v1/ledgers/"+l+"/transactions/batch", admin, map[string]any{"transactions": items}).Expect(b, 200)
		left -= k
	}
	measureDelivery(b, e, conn, &got)
}
