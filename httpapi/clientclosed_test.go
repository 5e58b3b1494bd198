package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/httpapi"
	"github.com/ledgerd/ledgerd/ledgertest"
	"github.com/prometheus/client_golang/prometheus"
)

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestClientClosedRequest: a client that goes away while its request waits
// on the database, or before its body is complete, is logged and counted
// as 499, not as a 503 (or 400) the service never gave, and nothing is
// written back on its connection.
func TestClientClosedRequest(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	c := setup(t, ledgertest.Options{API: func(cfg *httpapi.Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		cfg.Metrics = httpapi.NewMetrics(reg)
	}})

	// Hold the ledgers table, so that looking up a ledger waits.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ledgertest.DirectURL(t, c.e.DatabaseURL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE ledgers IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	// abandon sends a request and half-closes: the server sees the client
	// leave, and whatever it wrote would still reach us.
	abandon := func(request string) {
		t.Helper()
		nc, err := net.Dial("tcp", strings.TrimPrefix(c.e.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		fmt.Fprint(nc, request)
		time.Sleep(100 * time.Millisecond) // the request is now waiting
		if err := nc.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(bufio.NewReader(nc))
		if len(got) != 0 {
			t.Fatalf("the server wrote %q to a client that had gone", got)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the server kept the abandoned connection open")
		}
	}
	const waiting = 5
	for i := range waiting {
		abandon(fmt.Sprintf("GET /v1/ledgers/gone-%d/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", i, admin))
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// A body that stops short of its Content-Length.
	l := c.ledger("cut")
	abandon(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{\"id\":", accountsPath(l), admin))
	const abandoned = waiting + 1

	// Give the last access log line time to land.
	deadline := time.Now().Add(5 * time.Second)
	statuses := map[float64]int{}
	for {
		clear(statuses)
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" && strings.Contains(fmt.Sprint(m["route"]), "accounts") {
				statuses[m["status"].(float64)]++
			}
		}
		if statuses[httpapi.StatusClientClosed] == abandoned || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if statuses[httpapi.StatusClientClosed] != abandoned || len(statuses) != 1 {
		t.Fatalf("access log statuses %v, want %d × 499", statuses, abandoned)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "ledgerd_http_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "code" {
					codes[lp.GetValue()] += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	if codes["499"] != abandoned || codes["503"] != 0 {
		t.Fatalf("request metric by code %v, want %d × 499 and no 503", codes, abandoned)
	}
}
