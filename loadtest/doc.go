// Package loadtest is `ledgerd loadtest`: a load generator and benchmark that
// users run against their own deployment, over the public HTTP API only, so
// that what it measures is what their clients get.
//
// A run has four parts:
//
//   - setup (setup.go): a fresh ledger with a funding account "world" and
//     --accounts accounts acct:000000…, each funded from world; skipped with
//     --reuse;
//   - load (workload.go, pacer.go): the standard workload of bench/RESULTS.md#targets —
//     single-posting transfers between random accounts (uniform or Zipf),
//     each with an Idempotency-Key, some with a reference, a few deliberate
//     overdrafts — one per request, in batches, mixed with reads, or as
//     hold + capture — or, as a reference, plain GETs of one path (--workload
//     get: no setup, no check), in a closed loop (clients send back to back) or an open
//     loop (a constant arrival rate, latency measured from the scheduled
//     start, so a slow server cannot hide behind a slow generator);
//   - settlement (indoubt.go): every request whose outcome the run did not
//     learn is repeated once with the same Idempotency-Key, and holds left
//     pending are voided, so that the number of transactions the run created
//     is known exactly;
//   - check (check.go): the ledger's invariants through the API — double
//     entry, min_balance, and exactly as many transactions as acknowledged.
//
// Statistics (stats.go, report.go) live in HDR histograms and counters, so
// memory does not grow with the length of a run.
//
// Requests go over the package's own keep-alive HTTP/1.1 client
// (httpconn.go), and batch answers are decoded with go-faster/jx, reading
// only each result's status and error code (batchjson.go): the generator
// usually shares a machine with the server it measures, where net/http's
// Transport and encoding/json cost two thirds or more of the generator's
// CPU. --cpuprofile shows where the rest goes.
package loadtest
