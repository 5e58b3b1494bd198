// Package httpapi serves the v1 HTTP API of SPEC §2: routing, the checks
// every request passes in the SPEC's order of precedence, strict JSON
// decoding, and problem+json errors. It holds no business rules: those are
// in the domain package and the batch writer.
package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/batch"
	"github.com/ledgerd/ledgerd/postgres"
)

// Body limits (SPEC §2): larger bodies are 413, whatever they hold.
const (
	MaxSingleBody = 1 << 20
	MaxBatchBody  = 16 << 20
)

// Config holds what the API needs besides its dependencies.
type Config struct {
	// AdminKey is the bootstrap key (LEDGERD_ADMIN_KEY); empty disables it.
	AdminKey string
	// RateLimit is requests per second per key; 0 turns limiting off.
	RateLimit float64
	RateBurst int
	// BatchMaxItems caps a transaction batch (default 1,000, at most 10,000).
	BatchMaxItems int
	Logger        *slog.Logger
	// Metrics, when set, receives request and transaction metrics.
	Metrics *Metrics
	// Events reads events for GET …/events; nil means the database.
	Events EventStore
}

// Server is the API's http.Handler.
type Server struct {
	db      *postgres.DB
	writer  *batch.Writer
	cfg     Config
	log     *slog.Logger
	auth    *authenticator
	limit   *limiter
	mux     *http.ServeMux
	ledgers sync.Map // name → *postgres.Ledger; ledgers are never deleted
	txCache *txCache
	// patterns lists the registered routes, for the OpenAPI consistency test.
	patterns []string
}

// Routes returns every "METHOD /path" the API serves.
func (s *Server) Routes() []string { return append([]string(nil), s.patterns...) }

// NewServer wires the API.
func NewServer(db *postgres.DB, writer *batch.Writer, cfg Config) *Server {
	if cfg.BatchMaxItems <= 0 {
		cfg.BatchMaxItems = ledgerd.DefaultBatchMaxItems
	}
	if cfg.BatchMaxItems > ledgerd.MaxBatchMaxItems {
		cfg.BatchMaxItems = ledgerd.MaxBatchMaxItems
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{db: db, writer: writer, cfg: cfg, log: cfg.Logger,
		auth: newAuthenticator(db, cfg.AdminKey), limit: newLimiter(cfg.RateLimit, cfg.RateBurst),
		mux: http.NewServeMux(), txCache: newTxCache()}
	s.routes()
	return s
}

// reqCtx is what the common checks established about a request.
type reqCtx struct {
	p      *principal
	ledger *postgres.Ledger
	body   []byte
}

// route describes an endpoint: who may call it and how big its body may be.
type route struct {
	auth    bool  // needs a key
	role    Role  // least role
	ledger  bool  // has {ledger} in its path
	maxBody int64 // 0: no body read
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, rc *reqCtx)

// handle registers pattern with the checks of SPEC §2 in their order:
// 401 → unknown or out-of-scope ledger 404 → role 403 → 429 → 413; the
// handler then does 400 → 422 → resource 404 → idempotency → business.
func (s *Server) handle(pattern string, rt route, h handlerFunc) {
	s.patterns = append(s.patterns, pattern)
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := &reqCtx{}
		if rt.auth {
			p, err := s.auth.authenticate(r.Context(), bearer(r))
			if err != nil {
				s.fail(w, r, err)
				return
			}
			if p == nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ledgerd"`)
				writeProblem(w, ledgerd.Errorf(ledgerd.CodeUnauthorized, "a valid API key is required (Authorization: Bearer <key>)"))
				return
			}
			rc.p = p
			setKeyID(r, p.KeyID)
		}
		if rt.ledger {
			l, err := s.ledger(r.Context(), r.PathValue("ledger"))
			if err != nil {
				s.fail(w, r, err)
				return
			}
			if l == nil || !rc.p.canSee(l.ID) {
				writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "no ledger %q", r.PathValue("ledger")))
				return
			}
			rc.ledger = l
		}
		if rt.auth && rc.p.Role < rt.role {
			writeProblem(w, ledgerd.Errorf(ledgerd.CodeForbidden, "this key's role may not do this"))
			return
		}
		if rt.auth {
			if ok, wait := s.limit.allow(rc.p.KeyID); !ok {
				w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
				writeProblem(w, ledgerd.Errorf(ledgerd.CodeRateLimited, "rate limit exceeded for this key"))
				return
			}
		}
		if rt.maxBody > 0 {
			body, err := readBody(r, rt.maxBody)
			if err != nil {
				if errors.Is(err, errTooLarge) {
					writeProblem(w, ledgerd.Errorf(ledgerd.CodePayloadTooLarge, "the body is larger than %d bytes", rt.maxBody))
				} else {
					writeProblem(w, errMalformed("the body could not be read"))
				}
				return
			}
			rc.body = body
		}
		h(w, r, rc)
	}))
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && (h[:7] == "Bearer " || h[:7] == "bearer ") {
		return h[7:]
	}
	return ""
}

var errTooLarge = errors.New("body too large")

func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errTooLarge
	}
	size := r.ContentLength
	if size < 0 || size > 64<<10 {
		size = 512
	}
	buf := make([]byte, 0, size+1)
	for {
		if int64(len(buf)) > limit {
			return nil, errTooLarge
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(buf)) > limit {
		return nil, errTooLarge
	}
	return buf, nil
}

// ledger resolves a ledger name, caching hits forever (ledgers are never
// deleted or renamed) and never caching misses (another node may create it).
func (s *Server) ledger(ctx context.Context, name string) (*postgres.Ledger, error) {
	if v, ok := s.ledgers.Load(name); ok {
		return v.(*postgres.Ledger), nil
	}
	if !ledgerd.ValidLedgerName(name) {
		return nil, nil
	}
	l, err := s.db.LedgerByName(ctx, name)
	if err != nil || l == nil {
		return nil, err
	}
	s.ledgers.Store(name, l)
	return l, nil
}

// fail answers an infrastructure error: 503 when the database or the writer
// could not take the request (safe to retry), 500 otherwise.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var le *ledgerd.Error
	switch {
	case errors.As(err, &le):
		writeProblem(w, le)
	case errors.Is(err, batch.ErrOverloaded), errors.Is(err, batch.ErrClosed), postgres.IsUnavailable(err):
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeOverloaded, "the service is overloaded or its database unavailable; retry later (with the same Idempotency-Key)"))
	case r.Context().Err() != nil:
		// The client went away; nobody reads this answer.
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeOverloaded, "the request was cancelled"))
	default:
		s.log.Error("internal error", "request_id", w.Header().Get("Request-Id"), "err", err)
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeInternal, "internal error"))
	}
}

// ServeHTTP adds the request id, the access log line and panic recovery
// around the router.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := newRequestID()
	w.Header().Set("Request-Id", id)
	lw := &logWriter{ResponseWriter: w, status: 200}
	info := &reqInfo{}
	r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, info))
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic", "request_id", id, "panic", v)
			if !lw.wrote {
				writeProblem(lw, ledgerd.Errorf(ledgerd.CodeInternal, "internal error"))
			}
		}
		d := time.Since(start)
		pattern := r.Pattern
		if pattern == "" {
			pattern = "unmatched"
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("route", pattern), slog.Int("status", lw.status),
			slog.Float64("duration_ms", float64(d.Microseconds())/1000), slog.String("request_id", id),
			slog.String("key_id", info.keyID))
		s.cfg.Metrics.observeRequest(pattern, lw.status, d)
	}()
	s.mux.ServeHTTP(lw, r)
}

type reqInfoKey struct{}

// reqInfo carries what the access log wants to know from inside a handler.
type reqInfo struct{ keyID string }

func setKeyID(r *http.Request, id string) {
	if info, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		info.keyID = id
	}
}

func newRequestID() string {
	var b [16]byte
	const hexd = "0123456789abcdef"
	x, y := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		b[i] = hexd[(x>>(4*i))&0xf]
		b[8+i] = hexd[(y>>(4*i))&0xf]
	}
	return string(b[:])
}

type logWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (l *logWriter) WriteHeader(code int) {
	if !l.wrote {
		l.status, l.wrote = code, true
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *logWriter) Write(b []byte) (int, error) {
	l.wrote = true
	return l.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (l *logWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }
