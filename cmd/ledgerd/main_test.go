package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledgertest"
)

func TestMain(m *testing.M) { ledgertest.Main(m) }

// syncBuffer is an io.Writer that run's goroutines and the test share.
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

// env is a lookupEnv over a map.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// started is a run(...) going in the background.
type started struct {
	cancel context.CancelFunc
	done   chan error
	stdout *syncBuffer
	stderr *syncBuffer
}

// start runs the program with args until the test ends (or stop).
func start(t *testing.T, args []string, vars map[string]string) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{cancel: cancel, done: make(chan error, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	go func() { s.done <- run(ctx, args, env(vars), s.stdout, s.stderr) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop ends the run and returns its error (once; later calls return nil).
func (s *started) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok {
			close(s.done)
		}
		return err
	case <-time.After(90 * time.Second):
		t.Fatal("run did not return after cancel")
		return nil
	}
}

// waitFor polls w until it contains want, failing when run ends first.
func (s *started) waitFor(t *testing.T, w *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(w.String(), want) {
		select {
		case err := <-s.done:
			s.done <- err // for stop
			t.Fatalf("run returned %v before printing %q\nstdout:\n%s\nstderr:\n%s", err, want, s.stdout, s.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q after 2 min\nstdout:\n%s\nstderr:\n%s", want, s.stdout, s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logLine returns the first JSON log line of w whose msg is msg.
func logLine(t *testing.T, w *syncBuffer, msg string) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(w.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			return m
		}
	}
	t.Fatalf("no log line %q in:\n%s", msg, w)
	return nil
}
