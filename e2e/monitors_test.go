package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/ledgerd/ledgerd/ledgertest"
)

// mailbox is a plain SMTP server on loopback TCP (no TLS, no AUTH) that
// keeps the transaction id each message names.
type mailbox struct {
	mu    sync.Mutex
	txs   []string
	rcpts [][]string
}

func (b *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{box: b}, nil }

type mailSession struct {
	box *mailbox
	to  []string
}

func (s *mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *mailSession) Reset()        { s.to = nil }
func (s *mailSession) Logout() error { return nil }

func (s *mailSession) Data(r io.Reader) error {
	m, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(m.Body)
	tx := ""
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "Transaction: "); ok {
			tx, _, _ = strings.Cut(rest, " ")
		}
	}
	s.box.mu.Lock()
	s.box.txs = append(s.box.txs, tx)
	s.box.rcpts = append(s.box.rcpts, append([]string(nil), s.to...))
	s.box.mu.Unlock()
	return nil
}

func (b *mailbox) got() (txs []string, rcpts [][]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.txs...), append([][]string(nil), b.rcpts...)
}

func startMailbox(t *testing.T) (*mailbox, string) {
	t.Helper()
	b := &mailbox{}
	srv := smtp.NewServer(b)
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return b, "smtp://" + ln.Addr().String()
}

// committedTx is a transfer as its response showed it.
type committedTx struct {
	id    string
	seq   int64
	delta int64 // on account a
}

// TestMonitorsTwoNodesConcurrentDebits: clients of two serve nodes debit
// and credit one account concurrently, its posted balance crossing below
// zero again and again; a `ledgerd worker`, restarted cleanly mid-stream,
// sends exactly one e-mail per crossing, as counted from the committed
// transactions in sequence order, each about the transaction that crossed.
func TestMonitorsTwoNodesConcurrentDebits(t *testing.T) {
	dbURL := ledgertest.NewDatabase(t)
	bin := buildLedgerd(t)
	api1 := startNode(t, bin, "api1", dbURL)
	api2 := startNode(t, bin, "api2", dbURL)
	box, smtpURL := startMailbox(t)
	f := &tailFixture{t: t, api: api1.URL(), ledger: "montwo", hc: newHTTPClient(t)}
	f.do("POST", "/v1/ledgers", map[string]any{"name": f.ledger}, 201)
	for _, a := range []string{"world", "a"} {
		f.do("POST", "/v1/ledgers/"+f.ledger+"/accounts", map[string]any{"id": a, "asset": "USD", "min_balance": nil}, 201)
	}
	f.do("POST", "/v1/ledgers/"+f.ledger+"/monitors", map[string]any{"account": "a",
		"condition": map[string]any{"field": "posted", "operator": "<", "value": 0},
		"email":     []string{"ops@example.com", "risk@example.org"}}, 201)
	worker := startWorkerProc(t, bin, "worker", dbURL, "LEDGERD_WORKER_POLL=50ms", "LEDGERD_SMTP_URL="+smtpURL,
		"LEDGERD_SMTP_FROM=ledgerd@example.net")

	var mu sync.Mutex
	var txs []committedTx
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for c := range 8 {
		api := []string{api1.URL(), api2.URL()}[c%2]
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				src, dst, delta := "a", "world", int64(-1)
				if (i+c)%2 == 1 {
					src, dst, delta = "world", "a", 1
				}
				b, _ := json.Marshal(map[string]any{"postings": []map[string]any{{"source": src, "destination": dst, "amount": 1, "asset": "USD"}}})
				req, _ := http.NewRequest("POST", api+"/v1/ledgers/"+f.ledger+"/transactions", bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+ledgertest.AdminKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := f.hc.Do(req)
				if err != nil {
					continue
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					continue
				}
				var m struct {
					ID       string `json:"id"`
					Sequence int64  `json:"sequence"`
				}
				_ = json.Unmarshal(out, &m)
				mu.Lock()
				txs = append(txs, committedTx{m.ID, m.Sequence, delta})
				mu.Unlock()
			}
		})
	}
	// Mid-stream the worker stops cleanly (SIGTERM: sends in flight finish
	// and are recorded) and starts again while the load goes on.
	time.Sleep(1500 * time.Millisecond)
	worker.signal(syscall.SIGTERM)
	if !worker.wait(30 * time.Second) {
		t.Fatal("worker did not stop on SIGTERM")
	}
	mid, _ := box.got()
	time.Sleep(500 * time.Millisecond)
	worker.startWorker()
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(mid) == 0 {
		t.Log("no e-mail before the restart: the restart was not mid-stream for e-mail")
	}

	slices.SortFunc(txs, func(x, y committedTx) int { return int(x.seq - y.seq) })
	var crossings []string
	bal := int64(0)
	for i, tx := range txs {
		if tx.seq != int64(i)+1 {
			t.Fatalf("transaction %d has sequence %d: a response was lost, the count would be wrong", i+1, tx.seq)
		}
		if bal >= 0 && bal+tx.delta < 0 {
			crossings = append(crossings, tx.id)
		}
		bal += tx.delta
	}
	if len(crossings) < 5 {
		t.Fatalf("only %d crossings in %d transactions: the load did not exercise the monitor", len(crossings), len(txs))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, _ := box.got()
		if len(got) >= len(crossings) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // a few polls: nothing more may come
	got, rcpts := box.got()
	slices.Sort(got)
	want := slices.Clone(crossings)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%d e-mails for %d crossings (of %d transactions); e-mails name %v, crossings are %v",
			len(got), len(want), len(txs), got, want)
	}
	for _, r := range rcpts {
		slices.Sort(r)
		if !slices.Equal(r, []string{"ops@example.com", "risk@example.org"}) {
			t.Fatalf("an e-mail went to %v", r)
		}
	}
	t.Logf("%d transactions, %d crossings, %d e-mails", len(txs), len(crossings), len(got))
}
