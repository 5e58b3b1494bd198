package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/ledgerd/ledgerd"
)

// auditSpec is what the audit log records of a state-changing route:
// its action, the status it answers on success, and whether it creates a
// resource (the entry's target is then the new resource's path).
type auditSpec struct {
	action  string
	status  int
	created bool
	// parent: the target is the resource the path's last segment acts on
	// (…/transactions/{id}/void changes …/transactions/{id}).
	parent bool
}

var auditSpecs = map[string]auditSpec{
	"POST /v1/ledgers":                                                    {action: "ledger.create", status: 201, created: true},
	"PATCH /v1/ledgers/{ledger}":                                          {action: "ledger.patch", status: 200},
	"POST /v1/api-keys":                                                   {action: "api_key.create", status: 201, created: true},
	"DELETE /v1/api-keys/{id}":                                            {action: "api_key.revoke", status: 204},
	"PATCH /v1/api-keys/{id}":                                             {action: "api_key.patch", status: 200},
	"POST /v1/ledgers/{ledger}/accounts":                                  {action: "account.create", status: 201, created: true},
	"POST /v1/ledgers/{ledger}/accounts/batch":                            {action: "account.batch", status: 200},
	"PATCH /v1/ledgers/{ledger}/accounts/{account}":                       {action: "account.patch", status: 200},
	"POST /v1/ledgers/{ledger}/transactions":                              {action: "transaction.create", status: 201, created: true},
	"POST /v1/ledgers/{ledger}/transactions/batch":                        {action: "transaction.batch", status: 200},
	"POST /v1/ledgers/{ledger}/transactions/{id}/post":                    {action: "transaction.post", status: 200, parent: true},
	"POST /v1/ledgers/{ledger}/transactions/{id}/void":                    {action: "transaction.void", status: 200, parent: true},
	"POST /v1/ledgers/{ledger}/transactions/{id}/reverse":                 {action: "transaction.reverse", status: 200, parent: true},
	"POST /v1/ledgers/{ledger}/webhooks":                                  {action: "webhook.create", status: 201, created: true},
	"PATCH /v1/ledgers/{ledger}/webhooks/{id}":                            {action: "webhook.patch", status: 200},
	"DELETE /v1/ledgers/{ledger}/webhooks/{id}":                           {action: "webhook.delete", status: 204},
	"POST /v1/ledgers/{ledger}/webhooks/{id}/rotate-secret":               {action: "webhook.rotate_secret", status: 200, parent: true},
	"POST /v1/ledgers/{ledger}/webhooks/{id}/deliveries/{event_id}/retry": {action: "webhook.retry", status: 202, parent: true},
	"PUT /v1/ledgers/{ledger}/fraud-rules":                                {action: "fraud_rules.update", status: 200},
}

// actor is who the audit log names for a request.
func actor(p *principal) string {
	if p == nil || p.Role == RoleBootstrap {
		return "bootstrap"
	}
	return p.KeyID
}

// withAudit gives a state-changing request its audit context, which the
// storage writes with the change (see ledgerd.Audit).
func withAudit(r *http.Request, w http.ResponseWriter, pattern string, p *principal) *http.Request {
	spec, ok := auditSpecs[pattern]
	if !ok {
		return r
	}
	target := r.URL.EscapedPath()
	if spec.parent {
		target = target[:strings.LastIndexByte(target, '/')]
	}
	a := &ledgerd.Audit{Actor: actor(p), RequestID: w.Header().Get("Request-Id"), Action: spec.action,
		Target: target, Created: spec.created, Status: spec.status}
	return r.WithContext(ledgerd.WithAudit(r.Context(), a))
}

// forbidden answers 403 and records it in the audit log of the ledger in
// the path, or else of the caller's key (the bootstrap key has none, and
// is never refused).
func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, rc *reqCtx, detail string) {
	writeProblem(w, ledgerd.Errorf(ledgerd.CodeForbidden, "%s", detail))
	ledgerID := int64(0)
	switch {
	case rc.ledger != nil:
		ledgerID = rc.ledger.ID
	case rc.p != nil:
		ledgerID = rc.p.LedgerID
	}
	if ledgerID == 0 {
		return
	}
	action := "forbidden"
	if a := ledgerd.AuditFrom(r.Context()); a != nil {
		action = a.Action
	}
	e := &ledgerd.AuditEntry{Actor: actor(rc.p), RequestID: w.Header().Get("Request-Id"), Action: action,
		Target: r.URL.EscapedPath(), Status: http.StatusForbidden}
	// Off the request's own context: a client that hangs up after its
	// 403 does not get to keep the refusal out of the log.
	if err := s.db.InsertAudit(context.WithoutCancel(r.Context()), ledgerID, e); err != nil {
		s.log.Error("audit: recording a 403 failed", "request_id", e.RequestID, "err", err)
	}
}
