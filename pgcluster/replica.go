package pgcluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ReplicaOptions configures StartReplica.
type ReplicaOptions struct {
	// ApplyDelay, when positive, is the replica's recovery_min_apply_delay:
	// it shows each commit that long after the primary made it (a lagging
	// replica on demand).
	ApplyDelay time.Duration
	// Settings are extra postgresql.conf settings, as in Options.
	Settings map[string]string
}

// StartReplica makes a streaming replica of c: a base backup taken with
// pg_basebackup (-R writes primary_conninfo and standby.signal) into a new
// temporary directory, started on a free loopback port as a hot standby.
// Stop it like any cluster; the primary must allow replication connections
// from 127.0.0.1 (initdb's trust setup does).
func (c *Cluster) StartReplica(ctx context.Context, o ReplicaOptions) (r *Cluster, err error) {
	r = &Cluster{BinDir: c.BinDir, settings: map[string]string{}, password: c.password, cred: c.cred}
	defer func() {
		if err != nil {
			r.cleanup()
			r = nil
		}
	}()
	for k, v := range c.settings {
		r.settings[k] = v
	}
	for k, v := range o.Settings {
		r.settings[k] = v
	}
	r.settings["hot_standby"] = "on"
	// Replies to the primary often, so that its view of the replica is fresh.
	r.settings["wal_receiver_status_interval"] = "1s"
	if o.ApplyDelay > 0 {
		r.settings["recovery_min_apply_delay"] = strconv.FormatInt(o.ApplyDelay.Milliseconds(), 10) + "ms"
	}
	if err = r.prepareDirs(Options{}); err != nil {
		return r, err
	}
	if err = r.openLog(nil); err != nil {
		return r, err
	}
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres application_name=replica%d", c.Port, time.Now().UnixNano()%1e6)
	if c.password != "" {
		conninfo += " password=" + c.password
	}
	var out bytes.Buffer
	cmd := r.command(ctx, "pg_basebackup", "-D", r.DataDir, "-d", conninfo, "-R", "-X", "stream", "-c", "fast")
	cmd.Stdout, cmd.Stderr = io.MultiWriter(r.outputWriter(), &out), io.MultiWriter(r.outputWriter(), &out)
	if err = cmd.Run(); err != nil {
		return r, fmt.Errorf("pgcluster: pg_basebackup: %w\n%s", err, strings.TrimSpace(out.String()))
	}
	for attempt := 1; ; attempt++ {
		if r.Port, err = freePort(); err != nil {
			return r, err
		}
		err = r.startServer(ctx)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "could not bind") {
			return r, err
		}
	}
}
