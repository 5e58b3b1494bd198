package loadtest

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
)

// Bounds of the follow-up list: it only grows with failures, but a server
// that answers every request with 503 must not make the generator grow
// without limit. What does not fit is counted as unresolved.
const (
	maxFollowUps     = 100_000
	maxFollowUpBytes = 64 << 20
)

// settleConcurrency is how many follow-ups are settled at once after the run.
const settleConcurrency = 16

type followKind int

const (
	followTransfer followKind = iota // a single transfer in doubt: repeat it
	followBatch                      // a batch with items in doubt: repeat it
	followHold                       // a hold in doubt: repeat it, then void it
	followCapture                    // a capture in doubt: repeat it
	followVoid                       // a hold left pending: void it
)

// followUp is a request whose effect on the ledger the run did not learn —
// it timed out, failed in transit or got a 5xx — or a hold whose capture
// failed. The correctness check compares the ledger's last sequence with
// the number of transactions the run created, so every one of these is
// settled after the run: repeated once with the same Idempotency-Key and
// body (the server then replays the outcome or applies it now), and holds
// are voided rather than left to expire during the check.
type followUp struct {
	kind   followKind
	path   string
	body   []byte
	key    string // Idempotency-Key header; batch items carry their own
	holdID string // capture, void: the hold to release
	items  int64  // batch: number of items
	prior  int64  // batch: items already counted as created during the run
}

// possible is how many transactions this follow-up may add to the log.
func (f followUp) possible() int64 {
	switch f.kind {
	case followBatch:
		return f.items - f.prior
	case followHold:
		return 2 // the hold and its release
	}
	return 1
}

// followUps collects follow-ups from all workers, within fixed bounds.
type followUps struct {
	mu       sync.Mutex
	list     []followUp
	bytes    int
	overflow int64 // transactions possibly created by follow-ups that did not fit
}

func newFollowUps() *followUps { return &followUps{} }

// add records a follow-up; its body is copied because workers reuse theirs.
func (fs *followUps) add(f followUp) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.list) >= maxFollowUps || fs.bytes+len(f.body) > maxFollowUpBytes {
		fs.overflow += f.possible()
		return
	}
	f.body = bytes.Clone(f.body)
	fs.bytes += len(f.body)
	fs.list = append(fs.list, f)
}

// settlement is the outcome of settling the follow-ups.
type settlement struct {
	FollowUps  int64 `json:"follow_ups"` // requests in doubt and holds left pending
	Created    int64 `json:"created"`    // transactions they turned out to have created, or created now
	Unresolved int64 `json:"unresolved"` // transactions that may or may not exist
}

// settle works through the follow-ups with a few parallel requests.
func (l *load) settle(ctx context.Context) settlement {
	l.follow.mu.Lock()
	list := l.follow.list
	s := settlement{FollowUps: int64(len(list)), Unresolved: l.follow.overflow}
	l.follow.mu.Unlock()

	var created, unresolved atomic.Int64
	var voids atomic.Uint64
	next := make(chan followUp)
	var wg sync.WaitGroup
	for range min(settleConcurrency, len(list)) {
		wg.Go(func() {
			for f := range next {
				c, u := l.settleOne(ctx, f, &voids)
				created.Add(c)
				unresolved.Add(u)
			}
		})
	}
	for _, f := range list {
		next <- f
	}
	close(next)
	wg.Wait()
	s.Created = created.Load()
	s.Unresolved += unresolved.Load()
	return s
}

// settleOne returns how many transactions f created and how many remain unknown.
func (l *load) settleOne(ctx context.Context, f followUp, voids *atomic.Uint64) (created, unresolved int64) {
	switch f.kind {
	case followTransfer:
		r := l.c.do(ctx, http.MethodPost, f.path, f.body, f.key, nil)
		switch {
		case is2xx(r.status):
			return 1, 0
		case r.inDoubt():
			return 0, 1
		}
		return 0, 0

	case followBatch:
		var ans batchAnswer
		r := l.c.do(ctx, http.MethodPost, f.path, f.body, "", decodeBatch(&ans))
		if !r.ok() || int64(len(ans.Results)) != f.items {
			return 0, f.possible()
		}
		// Items that succeeded during the run replay as 200, so what is new
		// is the difference.
		var ok, uncertain int64
		for _, it := range ans.Results {
			switch {
			case is2xx(it.Status):
				ok++
			case it.Status >= 500:
				uncertain++
			}
		}
		return max(ok-f.prior, 0), uncertain

	case followHold:
		var hold struct {
			ID string `json:"id"`
		}
		r := l.c.do(ctx, http.MethodPost, f.path, f.body, f.key, decodeJSON(&hold))
		switch {
		case r.ok() && hold.ID != "":
			c, u := l.void(ctx, hold.ID, voids)
			return 1 + c, u
		case r.inDoubt() || is2xx(r.status):
			return 0, 2
		}
		return 0, 0

	case followCapture:
		r := l.c.do(ctx, http.MethodPost, f.path, f.body, f.key, nil)
		switch {
		case is2xx(r.status):
			return 1, 0
		case r.status == http.StatusConflict && r.code == "invalid_state":
			return 1, 0 // resolved otherwise meanwhile: by its expiry, which appended a transaction
		case r.inDoubt():
			return 0, 1
		}
		return l.void(ctx, f.holdID, voids)

	case followVoid:
		return l.void(ctx, f.holdID, voids)
	}
	return 0, 0
}

// void releases a hold. Either the void or, if the hold already expired,
// the expiry appended one transaction.
func (l *load) void(ctx context.Context, holdID string, voids *atomic.Uint64) (created, unresolved int64) {
	key := "lt-" + l.runID + "-void-" + strconv.FormatUint(voids.Add(1), 36)
	r := l.c.do(ctx, http.MethodPost, l.txPath+"/"+url.PathEscape(holdID)+"/void", emptyObject, key, nil)
	switch {
	case is2xx(r.status):
		return 1, 0
	case r.status == http.StatusConflict && r.code == "invalid_state":
		return 1, 0
	}
	return 0, 1
}

func is2xx(status int) bool { return status >= 200 && status < 300 }
