package postgres

import (
	"context"
	"log/slog"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// replicaLagSQL is how far the replica's replay is behind: zero when it has
// replayed everything it received (an idle primary writes nothing, and the
// age of the last replayed commit would grow for ever), else the age of
// the last transaction it replayed. A server that is not in recovery (a
// primary given as the replica) lags by nothing.
const replicaLagSQL = `SELECT CASE
	WHEN NOT pg_is_in_recovery() THEN 0
	WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
	ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
	END::float8`

// WatchReplicaLag exports ledgerd_db_replica_lag_seconds on reg, sampling
// the replica at url every interval on a connection of its own until ctx
// ends. A sample that fails sets the gauge to +Inf: a replica that cannot
// be reached is as stale as it gets.
func WatchReplicaLag(ctx context.Context, url string, every time.Duration, reg prometheus.Registerer, log *slog.Logger) {
	lag := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ledgerd_db_replica_lag_seconds",
		Help: "How far the read replica's replay is behind the primary, sampled (+Inf: unreachable).",
	})
	reg.MustRegister(lag)
	go func() {
		var conn *pgx.Conn
		defer func() {
			if conn != nil {
				_ = conn.Close(context.Background())
			}
		}()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			var err error
			if conn == nil || conn.IsClosed() {
				conn, err = pgx.Connect(qctx, url)
			}
			var s float64
			if err == nil {
				err = conn.QueryRow(qctx, replicaLagSQL).Scan(&s)
			}
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("replica lag sample", "err", err)
				if conn != nil {
					_ = conn.Close(context.Background())
					conn = nil
				}
				s = math.Inf(1)
			}
			lag.Set(s)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}
