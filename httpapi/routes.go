package httpapi

import (
	"net/http"
	"strings"

	"github.com/ledgerd/ledgerd"
)

// routes is the whole API surface in one place.
func (s *Server) routes() {
	open := route{}
	read := route{auth: true, role: RoleRead, ledger: true}
	write := route{auth: true, role: RoleWrite, ledger: true, maxBody: MaxSingleBody}
	writeBatch := route{auth: true, role: RoleWrite, ledger: true, maxBody: MaxBatchBody}
	// with returns rt taking the query parameters q.
	with := func(rt route, q ...string) route { rt.query = q; return rt }

	s.handle("GET /healthz", open, s.healthz)
	s.handle("GET /readyz", open, s.readyz)
	s.handle("GET /v1/openapi.json", open, serveOpenAPI)

	s.handle("POST /v1/ledgers", route{auth: true, role: RoleBootstrap, maxBody: MaxSingleBody}, s.createLedger)
	s.handle("GET /v1/ledgers", route{auth: true, role: RoleRead, query: []string{"limit", "cursor"}}, s.listLedgers)
	s.handle("GET /v1/ledgers/{ledger}", read, s.getLedger)
	s.handle("PATCH /v1/ledgers/{ledger}", route{auth: true, role: RoleAdmin, ledger: true, maxBody: MaxSingleBody}, s.patchLedger)

	keys := route{auth: true, role: RoleAdmin}
	s.handle("GET /v1/api-keys", with(keys, "ledger", "limit", "cursor"), s.listAPIKeys)
	s.handle("DELETE /v1/api-keys/{id}", keys, s.revokeAPIKey)
	keys.maxBody = MaxSingleBody
	s.handle("POST /v1/api-keys", keys, s.createAPIKey)
	s.handle("PATCH /v1/api-keys/{id}", keys, s.patchAPIKey)

	s.handle("POST /v1/ledgers/{ledger}/accounts", write, s.createAccount)
	s.handle("POST /v1/ledgers/{ledger}/accounts/batch", writeBatch, s.createAccounts)
	s.handle("GET /v1/ledgers/{ledger}/accounts", with(read, "prefix", "metadata[]", "limit", "cursor"), s.listAccounts)
	s.handle("GET /v1/ledgers/{ledger}/accounts/{account}", read, s.getAccount)
	s.handle("PATCH /v1/ledgers/{ledger}/accounts/{account}", write, s.patchAccount)
	s.handle("GET /v1/ledgers/{ledger}/accounts/{account}/balance", with(read, "at"), s.balanceAt)
	s.handle("GET /v1/ledgers/{ledger}/accounts/{account}/entries", with(read, "from", "to", "limit", "cursor"), s.entries)

	s.handle("POST /v1/ledgers/{ledger}/transactions", write, s.postTransaction)
	s.handle("POST /v1/ledgers/{ledger}/transactions/batch", writeBatch, s.postBatch)
	s.handle("GET /v1/ledgers/{ledger}/transactions",
		with(read, "account", "reference", "after", "from", "to", "limit", "cursor"), s.listTransactions)
	s.handle("GET /v1/ledgers/{ledger}/transactions/{id}", read, s.getTransaction)
	s.handle("POST /v1/ledgers/{ledger}/transactions/{id}/post", write, s.postHold)
	s.handle("POST /v1/ledgers/{ledger}/transactions/{id}/void", write, s.voidHold)
	s.handle("POST /v1/ledgers/{ledger}/transactions/{id}/reverse", write, s.reverse)

	s.handle("GET /v1/ledgers/{ledger}/events", with(read, "after", "type", "limit"), s.listEvents)
	s.handle("GET /v1/ledgers/{ledger}/audit", route{auth: true, role: RoleAdmin, ledger: true, query: []string{"after", "limit"}}, s.listAudit)
	s.webhookRoutes()
	s.monitorRoutes()
	s.fraudRoutes()

	s.mux.Handle("/", http.HandlerFunc(s.unmatched))
}

var methods = []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodPut}

// unmatched answers what no route takes: 405 with Allow when the path
// exists for another method, 404 otherwise, both as problem+json.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range methods {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
		return
	}
	writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "no route %s", r.URL.Path))
}
