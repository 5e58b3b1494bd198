// Package job is ledgerd's asynchronous tail: what happens after a change
// is committed, off the request path. A relay tails each ledger's events
// with a cursor per consumer and turns them into webhook deliveries, in
// bulk; deliverers claim due deliveries with a lease and make the HTTP
// attempts, a bounded number at a time. Everything it holds is rows in
// PostgreSQL: any number of workers share the work, and a worker killed at
// any point loses nothing (see docs/webhooks.md).
package job
