package loadtest

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// overdraftAmount is the amount of a deliberately rejected transfer: larger
// than any balance the setup creates (so the source's min_balance of 0
// rejects it with insufficient_funds) yet far enough from the int64 limit
// that crediting it could not overflow a balance, which would be
// validation_failed instead.
const overdraftAmount = 1 << 62

// holdTimeoutSeconds bounds how long a hold of the two-phase workload stays
// pending if its capture never arrives.
const holdTimeoutSeconds = 60

// zipfV is the v parameter of the Zipf distribution (rank k has weight
// (v+k)^-s), so that account 0 is the hottest.
const zipfV = 1

// chooser picks account indexes in [0, n): uniformly, or Zipf-skewed so that a
// few hot accounts take most of the traffic — the case that serialises
// naive ledgers on row locks.
type chooser struct {
	n int
	r *rand.Rand
	z *rand.Zipf
}

// newChooser returns a uniform chooser for s == 0 and a Zipf chooser for s > 1.
func newChooser(r *rand.Rand, n int, s float64) *chooser {
	c := &chooser{n: n, r: r}
	if s > 1 {
		c.z = rand.NewZipf(r, s, zipfV, uint64(n-1))
	}
	return c
}

func (c *chooser) next() int {
	if c.z != nil {
		return int(c.z.Uint64())
	}
	return c.r.IntN(c.n)
}

// pair returns two distinct accounts. Under an extreme skew both draws keep
// landing on the hottest account, so after a few tries the destination is
// taken uniformly among the others.
func (c *chooser) pair() (src, dst int) {
	src = c.next()
	for range 16 {
		if dst = c.next(); dst != src {
			return src, dst
		}
	}
	return src, (src + 1 + c.r.IntN(c.n-1)) % c.n
}

// accountID names account i as the setup created it.
func accountID(i int) string { return string(appendAccountID(nil, i)) }

// appendAccountID appends "acct:%06d" without fmt on the hot path.
func appendAccountID(b []byte, i int) []byte {
	b = append(b, "acct:"...)
	for d := 100000; d > 1 && i < d; d /= 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(i), 10)
}

// load is the state the workers of one run share.
type load struct {
	cfg     config
	c       *client
	st      *stats
	follow  *followUps
	runID   string // random per run: keys and references never collide with another run's
	txPath  string // /v1/ledgers/{l}/transactions
	accPath string // /v1/ledgers/{l}/accounts

	created atomic.Int64 // transactions the load learned it created (201s, captures), warmup included
	maxSeq  atomic.Int64 // highest sequence seen, for tail reads in the mixed workload
}

func newLoad(cfg config, c *client, st *stats, runID string) *load {
	lp := ledgerPath(cfg.Ledger)
	return &load{
		cfg: cfg, c: c, st: st, follow: newFollowUps(), runID: runID,
		txPath: lp + "/transactions", accPath: lp + "/accounts",
	}
}

func ledgerPath(name string) string { return "/v1/ledgers/" + url.PathEscape(name) }

// worker generates operations; it is used by one goroutine only.
type worker struct {
	l   *load
	r   *rand.Rand
	ch  *chooser
	id  int
	seq uint64
	buf []byte
	// overdraft flags the items of the current batch that overdraw; reused.
	overdraft []bool
}

func (l *load) newWorker(id int, seed uint64) *worker {
	r := rand.New(rand.NewPCG(seed, uint64(id)))
	return &worker{l: l, r: r, ch: newChooser(r, l.cfg.Accounts, l.cfg.Zipf), id: id}
}

// uniqueKey returns a key unique to this run: run id, worker, counter.
func (w *worker) uniqueKey(prefix string) string {
	return string(w.appendUniqueKey(make([]byte, 0, 48), prefix, w.nextSeq()))
}

// nextSeq numbers this worker's keys.
func (w *worker) nextSeq() uint64 {
	w.seq++
	return w.seq
}

// appendUniqueKey appends the key numbered seq; keys that only go into a
// body are appended without a string of their own.
func (w *worker) appendUniqueKey(b []byte, prefix string, seq uint64) []byte {
	b = append(b, prefix...)
	b = append(b, w.l.runID...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(w.id), 36)
	b = append(b, '-')
	return strconv.AppendUint(b, seq, 36)
}

// appendTransfer appends one single-posting transfer between two random
// accounts. idemSeq, when not 0, numbers the key embedded as a batch
// item's idempotency key. It reports whether the transfer is a deliberate
// overdraft.
func (w *worker) appendTransfer(b []byte, pending bool, idemSeq uint64) ([]byte, bool) {
	cfg := &w.l.cfg
	src, dst := w.ch.pair()
	amount := int64(1 + w.r.IntN(100))
	overdraft := w.r.Float64() < cfg.RejectRatio
	if overdraft {
		amount = overdraftAmount
	}
	b = append(b, `{"postings":[{"source":"`...)
	b = appendAccountID(b, src)
	b = append(b, `","destination":"`...)
	b = appendAccountID(b, dst)
	b = append(b, `","amount":`...)
	b = strconv.AppendInt(b, amount, 10)
	b = append(b, `,"asset":"`...)
	b = append(b, cfg.Asset...) // validated against the asset pattern: no escaping needed
	b = append(b, `"}]`...)
	if w.r.Float64() < cfg.ReferenceRatio {
		b = append(b, `,"reference":"`...)
		b = w.appendUniqueKey(b, "ref-", w.nextSeq())
		b = append(b, '"')
	}
	if pending {
		b = append(b, `,"pending":true,"pending_timeout_seconds":`...)
		b = strconv.AppendInt(b, holdTimeoutSeconds, 10)
	}
	if idemSeq != 0 {
		b = append(b, `,"idempotency_key":"`...)
		b = w.appendUniqueKey(b, "lt-", idemSeq)
		b = append(b, '"')
	}
	return append(b, '}'), overdraft
}

// op runs one operation of the configured workload. due is when it was
// meant to start (the actual start in a closed loop, the scheduled one in an
// open loop), so its latency includes any time spent waiting for a free
// client.
func (w *worker) op(ctx context.Context, due time.Time, measured bool) {
	var t tally
	switch w.l.cfg.Workload {
	case workloadTransfer:
		w.transfer(ctx, due, &t)
	case workloadBatch:
		w.batch(ctx, due, &t)
	case workloadMixed:
		if w.r.Float64() < w.l.cfg.ReadRatio {
			w.read(ctx, due, &t)
		} else {
			w.transfer(ctx, due, &t)
		}
	case workloadTwoPhase:
		w.twoPhase(ctx, due, &t)
	case workloadGet:
		w.get(ctx, due, &t)
	}
	w.l.st.add(measured, &t)
}

// transfer posts one transaction.
func (w *worker) transfer(ctx context.Context, due time.Time, t *tally) {
	body, overdraft := w.appendTransfer(w.buf[:0], false, 0)
	w.buf = body
	key := w.uniqueKey("lt-")
	var decode func([]byte) error
	var tx struct {
		Sequence int64 `json:"sequence"`
	}
	if w.l.cfg.Workload == workloadMixed {
		decode = decodeJSON(&tx) // only the mixed workload needs the sequence, for its tail reads
	}
	r := w.l.c.do(ctx, http.MethodPost, w.l.txPath, body, key, decode)
	t.latency(time.Since(due))
	if overdraft {
		t.overdrafts++
	}
	switch {
	case r.ok() && !r.replayed:
		w.l.created.Add(1)
		t.acked++
		if overdraft {
			t.overdraftsAccepted++
		}
		if tx.Sequence > 0 {
			storeMax(&w.l.maxSeq, tx.Sequence)
		}
	case isInsufficientFunds(r.status, r.code):
		t.reject(r.key(), 1)
	default:
		t.fail(r.key(), 1)
		if r.inDoubt() {
			w.l.follow.add(followUp{kind: followTransfer, path: w.l.txPath, body: body, key: key})
		}
	}
}

// batch posts --batch-size transactions in one non-atomic request; each
// item is counted as a transfer.
func (w *worker) batch(ctx context.Context, due time.Time, t *tally) {
	n := w.l.cfg.BatchSize
	b := append(w.buf[:0], `{"atomic":false,"transactions":[`...)
	w.overdraft = w.overdraft[:0]
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		var od bool
		b, od = w.appendTransfer(b, false, w.nextSeq())
		w.overdraft = append(w.overdraft, od)
		if od {
			t.overdrafts++
		}
	}
	b = append(b, "]}"...)
	w.buf = b
	var ans batchAnswer
	r := w.l.c.do(ctx, http.MethodPost, w.l.txPath+"/batch", b, "", decodeBatch(&ans))
	t.latency(time.Since(due))
	if !r.ok() || len(ans.Results) != n {
		if r.ok() {
			r.err, r.code = errBadBatch, ""
		}
		t.fail(r.key(), int64(n))
		if r.inDoubt() {
			w.l.follow.add(followUp{kind: followBatch, path: w.l.txPath + "/batch", body: b, items: int64(n)})
		}
		return
	}
	var created, uncertain int64
	for i, it := range ans.Results {
		switch {
		case it.Status == http.StatusCreated:
			created++
			if w.overdraft[i] {
				t.overdraftsAccepted++
			}
		case isInsufficientFunds(it.Status, codeOf(it)):
			t.reject(it.key(), 1)
		default:
			if it.Status == http.StatusOK {
				t.fail("200/unexpected_replay", 1)
				continue
			}
			t.fail(it.key(), 1)
			if it.Status >= 500 {
				uncertain++
			}
		}
	}
	w.l.created.Add(created)
	t.acked += created
	if uncertain > 0 {
		w.l.follow.add(followUp{kind: followBatch, path: w.l.txPath + "/batch", body: b, items: int64(n), prior: created})
	}
}

// twoPhase places a hold and captures it; both count as transfers. In an
// open loop the hold's latency is measured from its due time, the
// capture's from its own start.
func (w *worker) twoPhase(ctx context.Context, due time.Time, t *tally) {
	body, overdraft := w.appendTransfer(w.buf[:0], true, 0)
	w.buf = body
	key := w.uniqueKey("lt-")
	var hold struct {
		ID string `json:"id"`
	}
	r := w.l.c.do(ctx, http.MethodPost, w.l.txPath, body, key, decodeJSON(&hold))
	t.latency(time.Since(due))
	if overdraft {
		t.overdrafts++
	}
	switch {
	case r.ok() && !r.replayed && hold.ID != "":
		w.l.created.Add(1)
		t.acked++
		if overdraft {
			t.overdraftsAccepted++
		}
	case isInsufficientFunds(r.status, r.code):
		t.reject(r.key(), 1)
		return
	default:
		if r.ok() && hold.ID == "" {
			r.err = errNoID
		}
		t.fail(r.key(), 1)
		if r.inDoubt() {
			w.l.follow.add(followUp{kind: followHold, path: w.l.txPath, body: body, key: key})
		}
		return
	}

	capPath := w.l.txPath + "/" + url.PathEscape(hold.ID) + "/post"
	capKey := w.uniqueKey("lt-")
	start := time.Now()
	r = w.l.c.do(ctx, http.MethodPost, capPath, emptyObject, capKey, nil)
	t.latency(time.Since(start))
	switch {
	case r.ok() && !r.replayed:
		w.l.created.Add(1)
		t.acked++
	case r.inDoubt():
		t.fail(r.key(), 1)
		w.l.follow.add(followUp{kind: followCapture, path: capPath, body: emptyObject, key: capKey, holdID: hold.ID})
	default:
		// The hold is still pending: release it after the run so that no
		// expiry lands in the ledger while the check counts transactions.
		t.fail(r.key(), 1)
		w.l.follow.add(followUp{kind: followVoid, holdID: hold.ID})
	}
}

// read is the read side of the mixed workload: an account's balances, or
// the tail of the transaction log.
func (w *worker) read(ctx context.Context, due time.Time, t *tally) {
	var path string
	if w.r.IntN(2) == 0 {
		path = w.l.accPath + "/" + url.PathEscape(accountID(w.ch.next()))
	} else {
		after := max(w.l.maxSeq.Load()-20, 0)
		path = w.l.txPath + "?after=" + strconv.FormatInt(after, 10) + "&limit=20"
	}
	r := w.l.c.do(ctx, http.MethodGet, path, nil, "", nil)
	t.latency(time.Since(due))
	if r.ok() {
		t.reads++
		return
	}
	t.fail(r.key(), 1)
}

// get is the whole of --workload get: one GET of --path, counted as a read
// when it answers 2xx.
func (w *worker) get(ctx context.Context, due time.Time, t *tally) {
	r := w.l.c.do(ctx, http.MethodGet, w.l.cfg.Path, nil, "", nil)
	t.latency(time.Since(due))
	if r.ok() {
		t.reads++
		return
	}
	t.fail(r.key(), 1)
}

var emptyObject = []byte("{}")

func isInsufficientFunds(status int, code string) bool {
	return status == http.StatusUnprocessableEntity && code == "insufficient_funds"
}

func codeOf(it itemResult) string {
	if it.Error == nil {
		return ""
	}
	return it.Error.Code
}

// storeMax raises v to at least n.
func storeMax(v *atomic.Int64, n int64) {
	for {
		cur := v.Load()
		if n <= cur || v.CompareAndSwap(cur, n) {
			return
		}
	}
}
