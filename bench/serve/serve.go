// Package serve runs the small HTTP servers of bench/ (hello, receiver)
// the way the bench scripts expect: bound to -addr (port 0 picks a free
// one), printing "listening on ADDR" once bound — the line the scripts
// wait for and read the address from — and shut down on SIGINT or SIGTERM.
package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Main parses the command line (-addr), serves srv until a signal and
// exits 1 on an error, which it prints after name.
func Main(name string, srv *http.Server) {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback; port 0 picks a free one)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, *addr, srv); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Run serves srv on addr until ctx ends, then shuts it down, giving the
// requests in flight 5 s.
func Run(ctx context.Context, addr string, srv *http.Server) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
