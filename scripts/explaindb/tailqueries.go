package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/postgres"
)

// The statements of the asynchronous tail (the workers): fraud scoring,
// the webhook relay, retention and index maintenance. They run once per
// step or pass rather than per request, but over tables that grow with
// the log, so a plan that reads a whole table gets slower every day.

// tailStep is the sequence range one step of the fraud scorer and of the
// relay covers: the workers' batch (job.Config.RelayBatch's default).
const tailStep = 500

// tailValues are the example arguments of the tail's statements: one step
// from where load.sql leaves the cursors (tailStep behind the log).
type tailValues struct {
	cur, hi  int64    // the step's sequence range (cur, hi]
	debited  []string // accounts the step's transactions debit
	txIDs    []string // the step's transaction ids, in order
	evTypes  []string // the step's page of events (one per transaction)
	evSeqs   []int64
	evOrds   []int64
	delivery deliveryArrays
}

// deliveryArrays are insertDeliveries' columns for the step's page: one
// row per event and endpoint of ledger 1 that takes it, first attempts
// made (delivered) for the healthy endpoints, queued for the slow one.
type deliveryArrays struct {
	eps, ids, types, status, data, errs []string
	seqs, ords                          []int64
	created, next                       []time.Time
	attempts, codes                     []int32
	opens                               []bool
}

func pickTailValues(ctx context.Context, conn *pgx.Conn, v *values) error {
	t := &v.tail
	t.hi = v.lastSeq
	t.cur = t.hi - tailStep
	rows, err := conn.Query(ctx, postgres.FraudPostedSQL, v.ledgerID, t.cur, t.hi)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var created []time.Time
	for rows.Next() {
		var id [16]byte
		var seq int64
		var at time.Time
		var raw []byte
		if err := rows.Scan(&id, &seq, &at, &raw); err != nil {
			return err
		}
		ps, err := ledgerd.ParsePostingsJSON(raw)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if !seen[p.Source] {
				seen[p.Source] = true
				t.debited = append(t.debited, p.Source)
			}
		}
		t.txIDs = append(t.txIDs, fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16]))
		t.evTypes, t.evSeqs, t.evOrds = append(t.evTypes, string(ledgerd.EventTransactionPosted)), append(t.evSeqs, seq), append(t.evOrds, 0)
		created = append(created, at)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(t.txIDs) == 0 {
		return fmt.Errorf("no posted transactions in (%d, %d]", t.cur, t.hi)
	}
	slices.Sort(t.debited)

	er, err := conn.Query(ctx, `SELECT id FROM webhook_endpoints WHERE ledger_id = $1 AND event_types IS NULL
		AND status = 'enabled' AND gone_at IS NULL ORDER BY id`, v.ledgerID)
	if err != nil {
		return err
	}
	eps, err := pgx.CollectRows(er, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if err := conn.QueryRow(ctx, `SELECT position FROM audit_chains WHERE ledger_id = $1`, v.ledgerID).Scan(&v.auditHead); err != nil {
		return fmt.Errorf("audit chain head: %w", err)
	}
	d := &t.delivery
	now := time.Now()
	for i := range t.txIDs {
		for _, ep := range eps {
			st, code, data := ledgerd.DeliveryDelivered, int32(200), ""
			if ep == slowEndpoint {
				st, code, data = ledgerd.DeliveryPending, 0, `{"id":"`+t.txIDs[i]+`"}`
			}
			d.eps, d.ids, d.types = append(d.eps, ep), append(d.ids, "evt_"+t.txIDs[i]), append(d.types, t.evTypes[i])
			d.seqs, d.ords, d.created = append(d.seqs, t.evSeqs[i]), append(d.ords, 0), append(d.created, created[i])
			d.status, d.data, d.errs = append(d.status, st), append(d.data, data), append(d.errs, "")
			d.attempts, d.codes, d.next, d.opens = append(d.attempts, 1), append(d.codes, code), append(d.next, now), append(d.opens, false)
		}
	}
	return nil
}

// slowEndpoint is the endpoint load.sql leaves with deliveries pending.
const slowEndpoint = "we_1_01"

// retentionAges are job.RetentionConfig's defaults (and the delivery
// log's, job.Config.Retention): the cutoffs an hourly pass uses.
var retentionAges = map[postgres.RetainedTable]time.Duration{
	postgres.RetainEvents:           90 * 24 * time.Hour,
	postgres.RetainDeadLetters:      30 * 24 * time.Hour,
	postgres.RetainFailedDeliveries: 30 * 24 * time.Hour,
	postgres.RetainRisk:             180 * 24 * time.Hour,
	postgres.RetainTraces:           7 * 24 * time.Hour,
	postgres.RetainEmails:           30 * 24 * time.Hour,
}

// retentionBatch is job.RetentionConfig.Batch's default.
const retentionBatch = 10_000

func tailQueries() []query {
	qs := []query{
		{
			name: "Fraud: take a ledger to score", where: "postgres/fraud.go (*DB).FraudStep",
			route: "every worker, each step of fraud scoring (every poll while a ledger is behind)",
			note: "`event_cursors` holds a row per consumer and ledger (a few rows); the ledger by primary key. " +
				"A sequential scan of a table this size is the right plan.",
			sql:  postgres.FraudNextLedgerSQL,
			args: func(v *values) []any { return []any{postgres.FraudConsumer, tailStep} },
		},
		{
			name: "Fraud: the ledger's rules", where: "postgres/fraud.go (*DB).FraudStep, (*DB).FraudRules",
			route: "each scoring step; `GET /v1/ledgers/{ledger}/fraud-rules`",
			note:  "One row per ledger that has rules.",
			sql:   postgres.FraudRulesSQL,
			args:  func(v *values) []any { return []any{v.ledgerID} },
		},
		{
			name: "Fraud: the transactions of a step", where: "postgres/fraud.go postedDebits",
			route: "each scoring step",
			note: "`transactions_sequence (ledger_id, sequence)` on every partition between the cursor and the step's end; " +
				"the status filter discards the step's holds only.",
			sql:  postgres.FraudPostedSQL,
			args: func(v *values) []any { return []any{v.ledgerID, v.tail.cur, v.tail.hi} },
		},
		{
			name: "Fraud: the debited accounts", where: "postgres/fraud.go fraudAccounts",
			route: "each scoring step",
			note:  "`accounts_pkey` probed once per account of the step (`= ANY`).",
			sql:   postgres.FraudAccountsSQL,
			args:  func(v *values) []any { return []any{v.ledgerID, v.tail.debited} },
		},
		{
			name: "Fraud: the debit history of the accounts", where: "postgres/fraud.go fraudAccounts",
			route: "each scoring step, for the accounts the worker's memo does not hold (here all of them: a cold start)",
			note: "Per account, a backward range of `entries_account` from the cursor, stopped at 4 × 100 entries " +
				"(the median rule's 100 debits): bounded whatever the account's history, one probe per monthly partition.",
			sql: postgres.FraudHistorySQL,
			args: func(v *values) []any {
				need := int64(ledgerd.FraudMedianDebits)
				return []any{v.ledgerID, v.tail.debited, v.tail.cur, need, 4 * need}
			},
		},
		{
			name: "Fraud: store the scores", where: "postgres/fraud.go (*DB).FraudStep",
			route: "each scoring step",
			note:  "A set-based insert of the step's scores; the conflict check probes `transaction_risk_pkey`.",
			sql:   postgres.InsertRisksSQL,
			args: func(v *values) []any {
				t := &v.tail
				n := len(t.txIDs)
				seqs, scores, flags, risks := make([]int64, n), make([]int16, n), make([]bool, n), make([]string, n)
				for i := range n {
					seqs[i], scores[i], risks[i] = t.evSeqs[i], int16(i%100), fmt.Sprintf(`{"score":%d,"rules":[]}`, i%100)
				}
				return []any{v.ledgerID, seqs, t.txIDs, scores, flags, risks}
			},
		},
		{
			name: "Fraud: move the cursor", where: "postgres/fraud.go (*DB).FraudStep",
			route: "each scoring step",
			note:  "The cursor by primary key; the commit time of the step's last transaction by `transactions_sequence`.",
			sql:   postgres.FraudCursorSQL,
			args:  func(v *values) []any { return []any{postgres.FraudConsumer, v.ledgerID, v.tail.hi} },
		},
		{
			name: "Fraud: the scoring lag", where: "postgres/fraud.go (*DB).FraudLag",
			route: "every worker's metrics, every few seconds",
			note:  "The cursors (a few rows), each ledger by primary key, the next transaction by `transactions_sequence`.",
			sql:   postgres.FraudLagSQL,
			args:  func(v *values) []any { return []any{postgres.FraudConsumer} },
		},
		{
			name: "Relay: take a ledger to relay", where: "postgres/relay.go (*DB).RelayStep",
			route: "every worker, each relay step (every poll)",
			note: "The cursors (a few rows), each ledger by primary key; for a ledger whose log is caught up, whether an " +
				"events row lies past the cursor is one probe of `events_position`.",
			sql:  postgres.RelayNextLedgerSQL,
			args: func(v *values) []any { return []any{postgres.WebhookConsumer} },
		},
		{
			name: "Relay: match a page of events to endpoints", where: "postgres/relay.go relayTargets",
			route: "each relay step with events (a page of 500)",
			note: "The ledger's endpoints by `webhook_endpoints_ledger`; whether each has a delivery pending, one probe of the " +
				"partial index `webhook_deliveries_due`; the enabled periods by `webhook_endpoint_periods_pkey`.",
			sql: postgres.RelayTargetsSQL,
			args: func(v *values) []any {
				return []any{v.ledgerID, v.tail.evTypes, v.tail.evSeqs, v.tail.evOrds}
			},
		},
		{
			name: "Relay: record the deliveries", where: "postgres/relay.go insertDeliveries",
			route: "each relay step with events (here 500 events × 17 endpoints)",
			note: "A set-based insert; each row's endpoint by primary key (FOR SHARE) and the conflict check by " +
				"`webhook_deliveries_endpoint_id_event_id_key`.",
			sql: postgres.InsertDeliveriesSQL,
			args: func(v *values) []any {
				d := &v.tail.delivery
				return []any{v.ledgerID, d.eps, d.ids, d.seqs, d.ords, d.types, d.created, d.data, d.status, d.attempts,
					d.next, d.opens, d.codes, d.errs, int64(30_000)}
			},
		},
		{
			name: "Relay: the tail's backlog", where: "postgres/relay.go (*DB).TailStats",
			route: "every worker's metrics, every few seconds",
			note: "Counts of pending and failed deliveries from the partial indexes `webhook_deliveries_due` and " +
				"`webhook_deliveries_failed` (their rows only, not the log); the events past each cursor by `events_position`.",
			sql:  postgres.TailStatsSQL,
			args: func(v *values) []any { return []any{postgres.WebhookConsumer} },
		},
		{
			name: "Retention: delivered deliveries", where: "postgres/deliveries.go (*DB).DeleteDeliveredBefore",
			route: "every worker, hourly pass, in statements of 10,000 rows (here a day's backlog)",
			note:  "The partial index `webhook_deliveries_done (delivered_at)` from its oldest end, stopped at the batch.",
			sql:   postgres.DeleteDeliveredSQL,
			args: func(v *values) []any {
				return []any{v.batch.now.Add(-7 * 24 * time.Hour), retentionBatch}
			},
		},
	}
	qs = append(qs, query{
		name: "Retention: delivered deliveries (steady state)", where: "postgres/deliveries.go (*DB).DeleteDeliveredBefore",
		route: "every worker, hourly pass, when the previous pass left nothing older than the cutoff",
		note: "The common case: an hour's deliveries (here none) past the cutoff, with statistics that know it. " +
			"(Setup: the backlog is deleted and the table analyzed, in the rolled-back transaction.)",
		sql: postgres.DeleteDeliveredSQL,
		setup: []string{"DELETE FROM webhook_deliveries WHERE status = 'delivered' AND delivered_at < now() - interval '7 days'",
			"ANALYZE webhook_deliveries"},
		args: func(v *values) []any {
			return []any{v.batch.now.Add(-7 * 24 * time.Hour), retentionBatch}
		},
	})
	for _, tb := range postgres.RetainedTables {
		qs = append(qs, query{
			name: "Retention: " + string(tb), where: "postgres/retention.go (*DB).DeleteOld",
			route: fmt.Sprintf("every worker, hourly pass, in statements of 10,000 rows (cutoff: %d days)", retentionAges[tb]/(24*time.Hour)),
			note:  retentionNotes[tb],
			sql:   postgres.RetentionSQL(tb),
			args: func(v *values) []any {
				return []any{v.batch.now.Add(-retentionAges[tb]), retentionBatch}
			},
		})
	}
	qs = append(qs, query{
		name: "Retention: transaction_traces (steady state)", where: "postgres/retention.go (*DB).DeleteOld",
		route: "every worker, hourly pass, when the previous pass left nothing older than the cutoff",
		note: "The BRIN index narrows the scan to the block ranges around the cutoff: the cost does not grow with the " +
			"days kept. (Setup: the backlog is deleted and the table analyzed, in the rolled-back transaction.)",
		sql: postgres.RetentionSQL(postgres.RetainTraces),
		setup: []string{"DELETE FROM transaction_traces WHERE created_at < now() - interval '7 days'",
			"ANALYZE transaction_traces"},
		args: func(v *values) []any {
			return []any{v.batch.now.Add(-retentionAges[postgres.RetainTraces]), retentionBatch}
		},
	})
	return append(qs,
		query{
			name: "Retention: audit, the ledgers to trim", where: "postgres/retention.go (*DB).TrimAudit",
			route: "every worker, hourly pass",
			note:  "`audit_chains` and `audit_checkpoints`: a row per ledger each.",
			sql:   postgres.AuditTrimLedgersSQL,
			args:  func(v *values) []any { return nil },
		},
		query{
			name: "Retention: audit, the prefix to delete", where: "postgres/retention.go (*DB).TrimAudit",
			route: "every worker, hourly pass, per ledger (cutoff: 400 days; here nothing is that old)",
			note:  "The ledger's oldest entries by `audit_log_pkey (ledger_id, position)`, stopped at the batch: read in key order, not filtered on time.",
			sql:   postgres.AuditTrimPrefixSQL,
			setup: []string{"SELECT position FROM audit_chains WHERE ledger_id = 1 FOR UPDATE"},
			args: func(v *values) []any {
				return []any{v.ledgerID, v.auditHead, v.batch.now.Add(-400 * 24 * time.Hour), retentionBatch}
			},
		},
		query{
			name: "Maintenance: claim the lease", where: "postgres/maintenance.go (*DB).ReindexStep",
			route: "every worker, each maintenance pass",
			note:  "`maintenance_leases` by primary key (one row).",
			sql:   postgres.ClaimLeaseSQL,
			args:  func(v *values) []any { return []any{"reindex", "explaindb", "600000 milliseconds"} },
		},
		query{
			name: "Maintenance: leftovers of interrupted rebuilds", where: "postgres/maintenance.go (*DB).ReindexStep",
			route: "every worker, each maintenance pass",
			note:  "Catalog tables (`pg_index`, `pg_class`): a few hundred rows, proportional to the number of indexes.",
			sql:   postgres.LeftoverIndexesSQL,
			args:  func(v *values) []any { return nil },
		},
		query{
			name: "Maintenance: index bloat estimates", where: "postgres/maintenance.go (*DB).IndexEstimates",
			route: "every worker, each maintenance pass; the bloat metrics",
			note: "Catalog and statistics views only (`pg_stat_user_indexes`, `pg_class`, `pg_attribute`, `pg_stats`): " +
				"proportional to the number of indexes (one per partition), not to the rows.",
			sql:  postgres.IndexEstimatesSQL,
			args: func(v *values) []any { return nil },
		},
	)
}

var retentionNotes = map[postgres.RetainedTable]string{
	postgres.RetainEvents: "The BRIN index `events_created` bounds the scan to the old block ranges; each candidate's " +
		"newer row of its ledger is one probe of `events_position`. Here every row is younger than the cutoff.",
	postgres.RetainDeadLetters:      "The BRIN index `dead_letters_created`, stopped at the batch.",
	postgres.RetainFailedDeliveries: "The partial index `webhook_deliveries_failed_created (created_at) WHERE status = 'failed'`.",
	postgres.RetainRisk: "The BRIN index `transaction_risk_scored`: with nothing older than the cutoff, a few block " +
		"ranges, not the table.",
	postgres.RetainTraces: "The BRIN index `transaction_traces_created`, stopped at the batch (here 83 days of backlog).",
	postgres.RetainEmails: "The partial index `emails_done_created (created_at) WHERE status <> 'pending'`.",
}
