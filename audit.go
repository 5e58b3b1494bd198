package ledgerd

import (
	"context"
	"time"
)

// Audit is what the audit log records of one state-changing request
// (docs/audit.md). The HTTP layer fills it in; the storage adapter writes
// the entry in the same database transaction as the change, and only when
// the request changed something: a rejection, a replay or a no-op leaves
// no entry (a 403 gets one, written by the HTTP layer on its own).
type Audit struct {
	Actor     string // API key id, or "bootstrap"
	RequestID string // the Request-Id response header
	Action    string // e.g. transaction.create
	// Target is the path of the resource changed. With Created, it is the
	// collection's path and the new resource's id is appended.
	Target  string
	Created bool
	// Status is the HTTP status answered when the request succeeds.
	Status int
}

// TargetOf is the entry's target for a request that created id.
func (a *Audit) TargetOf(id string) string {
	if a.Created {
		return a.Target + "/" + id
	}
	return a.Target
}

type auditKey struct{}

// WithAudit returns ctx carrying the audit context of its request, for
// writes that do not go through the batch writer.
func WithAudit(ctx context.Context, a *Audit) context.Context {
	return context.WithValue(ctx, auditKey{}, a)
}

// AuditFrom returns the request's audit context, or nil.
func AuditFrom(ctx context.Context) *Audit {
	a, _ := ctx.Value(auditKey{}).(*Audit)
	return a
}

// AuditEntry is one entry of a ledger's audit log as stored and listed.
type AuditEntry struct {
	Position  int64
	At        time.Time
	Actor     string
	RequestID string
	Action    string
	Target    string
	Status    int
	// Hash and PrevHash are hex; empty until the entry is chained.
	Hash, PrevHash string
}
