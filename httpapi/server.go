// Package httpapi serves the v1 HTTP API of docs/api.md: routing, the checks
// every request passes in the order of docs/api.md §Precedence of precedence, strict JSON
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
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/batch"
	"go.opentelemetry.io/otel/trace"
)

// Body limits (docs/api.md): larger bodies are 413, whatever they hold.
const (
	MaxSingleBody = 1 << 20
	MaxBatchBody  = 16 << 20
)

// Config holds what the API needs besides its dependencies.
type Config struct {
	// AdminKey is the bootstrap key (LEDGERD_ADMIN_KEY); empty disables it.
	AdminKey string
	// RateLimit is requests per second per key without a limit of its own
	// (docs/api.md §API keys); 0 turns the default limit off.
	RateLimit float64
	RateBurst int
	// BatchMaxItems caps a transaction batch (default 1,000, at most 10,000).
	BatchMaxItems int
	Logger        *slog.Logger
	// Metrics, when set, receives request and transaction metrics.
	Metrics *Metrics
	// Tracer, when set, records a server span per request (sampled as its
	// provider decides; see telemetry).
	Tracer trace.Tracer
	// BodyBudget and KeyBodyBudget bound the bytes of request bodies held
	// at once by the node and by one key (0: DefaultBodyBudget,
	// DefaultKeyBodyBudget). Beyond them: 503 overloaded / 429 rate_limited.
	BodyBudget    int64
	KeyBodyBudget int64
	// AuthFailRate and AuthFailBurst bound the lookups of key ids this node
	// has not seen, per client address (0: the defaults).
	AuthFailRate  float64
	AuthFailBurst int
	// MetricAssets are the assets the volume metric names; empty: the first
	// assets seen, up to a bound. Others are counted as "other".
	MetricAssets []string
	// CommitPosition, when set, gives the position every 2xx answer to a
	// write carries as its Consistency-Token: read when the answer is
	// written, after the write committed.
	CommitPosition func() ledgerd.Position
	// Admission is the adaptive concurrency limit (zero: off).
	Admission AdmissionConfig
	// RateLimiter, when set, replaces the in-process per-key limit (for
	// one shared by every node); RateLimit and RateBurst are then its
	// business.
	RateLimiter RateLimiter
	// Events reads events for GET …/events; nil means the database.
	Events EventStore
	// Webhooks serves the webhook endpoints API (nil: 404).
	Webhooks WebhookStore
	// Monitors serves the balance monitors API (nil: 404).
	Monitors MonitorStore
	// Fraud serves the fraud rules API (nil: 404).
	Fraud FraudStore
	// WebhookAllowPrivate accepts endpoint URLs on non-public addresses
	// (LEDGERD_WEBHOOK_ALLOW_PRIVATE).
	WebhookAllowPrivate bool
}

// Server is the API's http.Handler.
type Server struct {
	db     Store
	writer *batch.Writer
	cfg    Config
	log    *slog.Logger
	auth   *authenticator
	limit  RateLimiter
	admit  *admission
	// draining is set when the node is asked to stop: /readyz answers
	// 503 so that the load balancer sends no more.
	draining atomic.Bool
	mux      *http.ServeMux
	ledgers  sync.Map // name → *ledgerd.Ledger; ledgers are never deleted
	// noLedgers remembers names found missing, briefly, so that asking
	// about a ledger costs the same whether it exists or not.
	noLedgers *negCache
	bodies    *bodyBudget
	txCache   *txCache
	// patterns lists the registered routes and queries the query
	// parameters each takes, for the OpenAPI consistency test.
	patterns []string
	queries  map[string][]string
}

// Routes returns every "METHOD /path" the API serves.
func (s *Server) Routes() []string { return append([]string(nil), s.patterns...) }

// QueryParameters returns the query parameters a route takes ("metadata[]"
// stands for every metadata[key]); any other is 422.
func (s *Server) QueryParameters(pattern string) []string {
	return append([]string(nil), s.queries[pattern]...)
}

// NewServer wires the API.
func NewServer(db Store, writer *batch.Writer, cfg Config) *Server {
	if cfg.BatchMaxItems <= 0 {
		cfg.BatchMaxItems = ledgerd.DefaultBatchMaxItems
	}
	if cfg.BatchMaxItems > ledgerd.MaxBatchMaxItems {
		cfg.BatchMaxItems = ledgerd.MaxBatchMaxItems
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{db: db, writer: writer, cfg: cfg, log: cfg.Logger.With("component", "httpapi"),
		auth:  newAuthenticator(db, cfg.AdminKey, newAddrLimiter(cfg.AuthFailRate, cfg.AuthFailBurst)),
		limit: cfg.RateLimiter, admit: newAdmission(cfg.Admission, cfg.Metrics), mux: http.NewServeMux(), txCache: newTxCache(),
		noLedgers: newNegCache(ledgerMissTTL, maxMissingLedgers), bodies: newBodyBudget(cfg.BodyBudget, cfg.KeyBodyBudget)}
	if s.limit == nil {
		s.limit = newLimiter(cfg.RateLimit, cfg.RateBurst)
	}
	cfg.Metrics.limitAssets(cfg.MetricAssets)
	s.bodies.metrics = cfg.Metrics
	s.routes()
	return s
}

// reqCtx is what the common checks established about a request.
type reqCtx struct {
	p      *principal
	ledger *ledgerd.Ledger
	body   []byte
	// unknownQuery names the query parameters the route does not take;
	// decodeBody reports them, after the 400 syntax check they rank below.
	unknownQuery []string
}

// route describes an endpoint: who may call it and how big its body may be.
type route struct {
	auth    bool  // needs a key
	role    Role  // least role
	ledger  bool  // has {ledger} in its path
	maxBody int64 // 0: no body read
	// query lists the query parameters the route takes (see unknownQuery);
	// any other is 422.
	query []string
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, rc *reqCtx)

// servedIf is h when on, and otherwise a handler answering 404 that this
// node does not serve what (an API whose store a server was built
// without, in tests). Either way the checks of handle come first.
func servedIf(on bool, what string, h handlerFunc) handlerFunc {
	if on {
		return h
	}
	return func(w http.ResponseWriter, _ *http.Request, _ *reqCtx) {
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "%s are not served by this node", what))
	}
}

// handle registers pattern with the checks of docs/api.md in their order:
// 401 → unknown or out-of-scope ledger 404 → role 403 → 429 → 413 → 415;
// the handler then does 400 → 422 → resource 404 → idempotency →
// business. Unknown query parameters are 422: answered here for a route
// without a body, by decodeBody (after 400) for a route with one.
func (s *Server) handle(pattern string, rt route, h handlerFunc) {
	s.patterns = append(s.patterns, pattern)
	if s.queries == nil {
		s.queries = map[string][]string{}
	}
	s.queries[pattern] = rt.query
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := &reqCtx{}
		if rt.auth {
			p, err := s.auth.authenticate(r.Context(), bearer(r), clientAddr(r.RemoteAddr))
			if err != nil {
				var th authThrottledError
				if errors.As(err, &th) {
					w.Header().Set("Retry-After", strconv.Itoa(int(th.wait/time.Second)+1))
					writeProblem(w, ledgerd.Errorf(ledgerd.CodeRateLimited, "too many failed authentications from this address"))
					return
				}
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
			name := r.PathValue("ledger")
			if rc.p != nil && rc.p.LedgerName != "" && name != rc.p.LedgerName {
				// A scoped key sees one ledger: whether another exists is
				// none of its business, and looking it up would tell by
				// the time it takes.
				writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "no ledger %q", name))
				return
			}
			l, err := s.ledger(r.Context(), name)
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
		r = withAudit(r, w, pattern, rc.p)
		if rt.auth && rc.p.Role < rt.role {
			s.forbidden(w, r, rc, "this key's role may not do this")
			return
		}
		if rt.auth {
			if ok, wait := s.limit.Allow(r.Context(), rc.p.KeyID, rc.p.Limit); !ok {
				w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
				writeProblem(w, ledgerd.Errorf(ledgerd.CodeRateLimited, "rate limit exceeded for this key"))
				return
			}
		}
		if rt.maxBody > 0 {
			share := &bodyShare{b: s.bodies, key: "bootstrap"}
			if rc.p != nil {
				share.key = rc.p.KeyID
			}
			defer share.release()
			body, err := readBody(r, rt.maxBody, share)
			if err != nil {
				s.bodyFailed(w, r, err, rt.maxBody)
				return
			}
			// An empty body is no body: the actions read it as {}, the
			// others answer 400, whatever type it claims.
			if len(body) > 0 && !jsonContentType(r) {
				ct := r.Header.Get("Content-Type")
				if len(ct) > 100 {
					ct = ct[:100] + "…"
				}
				writeProblem(w, ledgerd.Errorf(ledgerd.CodeUnsupportedMediaType,
					"the body must be sent as application/json, not %q", ct))
				return
			}
			rc.body = body
		}
		if tok := r.Header.Get(consistencyHeader); tok != "" && isRead(r.Method) {
			pos, err := ledgerd.ParseToken(tok)
			if err != nil {
				var v ledgerd.Validation
				v.Add(consistencyHeader, "is not a token this service issued: send back the Consistency-Token header of a write's answer verbatim")
				writeProblem(w, v.Err())
				return
			}
			r = r.WithContext(ledgerd.WithReadAfter(r.Context(), pos))
		}
		if unknown := unknownQuery(r.URL.RawQuery, rt.query); len(unknown) > 0 {
			if rt.maxBody == 0 {
				var v ledgerd.Validation
				addUnknownQuery(&v, unknown)
				writeProblem(w, v.Err())
				return
			}
			rc.unknownQuery = unknown
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

// bodyFailed answers a body that was not read: too large, over a budget,
// cut short by the client, or unreadable.
func (s *Server) bodyFailed(w http.ResponseWriter, r *http.Request, err error, limit int64) {
	switch {
	case errors.Is(err, errTooLarge):
		writeProblem(w, ledgerd.Errorf(ledgerd.CodePayloadTooLarge, "the body is larger than %d bytes", limit))
	case errors.Is(err, errKeyBudget):
		w.Header().Set("Retry-After", "1")
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeRateLimited, "this key has too many request bytes in flight; retry later"))
	case errors.Is(err, errNodeBudget):
		w.Header().Set("Retry-After", "1")
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeOverloaded, "the service holds too many request bytes; retry later"))
	case r.Context().Err() != nil, errors.Is(err, io.ErrUnexpectedEOF):
		// A body cut short: the connection ended before it did.
		clientGone(r)
	default:
		writeProblem(w, errMalformed("the body could not be read"))
	}
}

// Missing ledger names are remembered for ledgerMissTTL: a ledger created
// on another node is visible here within it (one created here at once).
const (
	ledgerMissTTL     = 2 * time.Second
	maxMissingLedgers = 10_000
)

// ledger resolves a ledger name, caching hits forever (ledgers are never
// deleted or renamed) and misses briefly, so that neither answer costs a
// query on every request and their timings match.
func (s *Server) ledger(ctx context.Context, name string) (*ledgerd.Ledger, error) {
	if v, ok := s.ledgers.Load(name); ok {
		return v.(*ledgerd.Ledger), nil
	}
	if !ledgerd.ValidLedgerName(name) || s.noLedgers.has(name) {
		return nil, nil
	}
	l, err := s.db.LedgerByName(ctx, name)
	if err != nil {
		return nil, err
	}
	if l == nil {
		s.noLedgers.add(name)
		return nil, nil
	}
	s.ledgers.Store(name, l)
	return l, nil
}

// ledgerCreated makes a ledger created on this node visible here at once.
func (s *Server) ledgerCreated(l *ledgerd.Ledger) {
	s.ledgers.Store(l.Name, l)
	s.noLedgers.remove(l.Name)
}

// fail answers an infrastructure error: 503 when the database or the writer
// could not take the request (safe to retry), 500 otherwise; nothing when
// the client has gone (its cancelled query is what failed).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var le *ledgerd.Error
	switch {
	case errors.As(err, &le):
		writeProblem(w, le)
	case r.Context().Err() != nil:
		clientGone(r)
	case errors.Is(err, batch.ErrOverloaded), errors.Is(err, batch.ErrClosed), errors.Is(err, ledgerd.ErrUnavailable):
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeOverloaded, "the service is overloaded or its database unavailable; retry later (with the same Idempotency-Key)"))
	default:
		trace.SpanFromContext(r.Context()).RecordError(err)
		s.log.ErrorContext(r.Context(), "internal error", "request_id", w.Header().Get("Request-Id"), "err", err)
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeInternal, "internal error"))
	}
}

// ServeHTTP adds the request id, the access log line and panic recovery
// around the router.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := newRequestID()
	h := w.Header()
	h.Set("Request-Id", id)
	// Answers hold balances and, once, key secrets: no cache may keep
	// them, and no browser may guess a type other than the declared one.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	lw := &logWriter{ResponseWriter: w, status: 200}
	if !isRead(r.Method) {
		lw.position = s.cfg.CommitPosition
	}
	info := &reqInfo{}
	ctx := context.WithValue(r.Context(), reqInfoKey{}, info)
	var span trace.Span
	if s.cfg.Tracer != nil {
		ctx, span = s.startSpan(ctx, r, id)
	}
	r = r.WithContext(ctx)
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
		if info.gone && !lw.wrote {
			lw.status = StatusClientClosed
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
		var sc trace.SpanContext
		if span != nil {
			sc = span.SpanContext()
		}
		s.cfg.Metrics.observeRequest(pattern, lw.status, d, sc)
		if span != nil {
			endSpan(span, r.Method, pattern, lw.status)
		}
		if lw.status == StatusClientClosed {
			// Close the connection without an answer: net/http would
			// otherwise write a 200 to it.
			panic(http.ErrAbortHandler)
		}
	}()
	if !exempt(r.URL.Path) {
		if !s.admit.acquire() {
			s.cfg.Metrics.observeShed()
			w.Header().Set("Retry-After", "1")
			writeProblem(lw, ledgerd.Errorf(ledgerd.CodeOverloaded, "the service is overloaded; retry later (with the same Idempotency-Key)"))
			return
		}
		defer func() { s.admit.release(time.Since(start), lw.status) }()
	}
	s.mux.ServeHTTP(lw, r)
}

type reqInfoKey struct{}

// reqInfo carries what the access log wants to know from inside a handler.
type reqInfo struct {
	keyID string
	gone  bool // the client closed the request before its answer
}

// StatusClientClosed is what the access log and metrics record for a
// request whose client went away before the answer (nginx's 499): the
// server did not fail it, and nothing is written.
const StatusClientClosed = 499

// clientGone marks a request as abandoned by its client; the handler must
// then write nothing.
func clientGone(r *http.Request) {
	if info, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		info.gone = true
	}
}

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
	// position, set on writes, gives the Consistency-Token of a 2xx.
	position func() ledgerd.Position
}

// consistencyHeader carries read-your-writes tokens both ways.
const consistencyHeader = "Consistency-Token"

func isRead(method string) bool { return method == http.MethodGet || method == http.MethodHead }

func (l *logWriter) WriteHeader(code int) {
	if !l.wrote {
		l.status, l.wrote = code, true
		if l.position != nil && code >= 200 && code < 300 {
			l.ResponseWriter.Header().Set(consistencyHeader, l.position().Token())
		}
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *logWriter) Write(b []byte) (int, error) {
	if !l.wrote {
		l.WriteHeader(http.StatusOK)
	}
	return l.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (l *logWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }
