package postgres

import (
	"context"
	"fmt"
	"net/url"
	"strings"
)

// poolerParam is the URL parameter that says a URL goes through PgBouncer
// in transaction mode. A URL parameter rather than a node setting: the
// pooler sits in front of one server (the primary, say) and not another
// (a replica read directly), and the setting travels with the URL into
// every tool that opens it. It is removed before the driver sees the URL,
// which would send it to the server as a startup parameter.
const poolerParam = "ledgerd_pooler"

// poolerOf strips ledgerd_pooler from a URL and reports whether it names
// PgBouncer. Detecting the pooler (SHOW VERSION answers differently) would
// need a connection before the pool is configured, and a pooler in front
// of another pooler hides itself: an explicit setting is not fragile.
func poolerOf(raw string) (string, bool, error) {
	if !strings.Contains(raw, poolerParam) {
		return raw, false, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", false, fmt.Errorf("%s is read from URLs of the form postgres://…?%s=pgbouncer", poolerParam, poolerParam)
	}
	q := u.Query()
	v := q.Get(poolerParam)
	q.Del(poolerParam)
	u.RawQuery = q.Encode()
	switch v {
	case "pgbouncer":
		return u.String(), true, nil
	case "", "none":
		return u.String(), false, nil
	}
	return "", false, fmt.Errorf("%s=%q: the known poolers are pgbouncer and none", poolerParam, v)
}

// PgBouncer reports whether the pool goes through PgBouncer.
func (db *DB) PgBouncer() bool { return db.pgBouncer }

// CheckDurability refuses a server that would acknowledge a commit it has
// not flushed: fsync off, or synchronous_commit off by default for our
// role and database. Directly connected, every connection asks for
// synchronous_commit=on at start; through PgBouncer it cannot, and batch
// transactions set it themselves, but the other writes (accounts, keys)
// take the server's default, so the default must be durable.
func (db *DB) CheckDurability(ctx context.Context) error {
	var fsync, syncCommit string
	if err := db.queryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).Scan(&fsync, &syncCommit); err != nil {
		return fmt.Errorf("read durability settings: %w", err)
	}
	if fsync != "on" {
		return fmt.Errorf("the database runs with fsync=%s: commits would not survive a crash; set fsync=on", fsync)
	}
	if syncCommit == "off" {
		return fmt.Errorf("the database's synchronous_commit is off for ledgerd's connections: acknowledged commits could be lost; " +
			"set it on for the role or database (ALTER ROLE … SET synchronous_commit = on) or in postgresql.conf")
	}
	return nil
}
