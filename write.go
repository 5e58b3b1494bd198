package ledgerd

// WriteItem is one transaction travelling through the group-commit writer:
// the request going in, its outcome coming out.
type WriteItem struct {
	Request *TransactionRequest
	// IdempotencyKey is empty when the client sent none (never de-duplicated).
	IdempotencyKey string
	// RequestHash binds the key to the method, path and canonical body.
	RequestHash []byte
	// Action, when set, resolves a hold or reverses a transaction; Request
	// then only carries the new transaction's metadata and reference.
	Action *Action

	// Outcome, set by the writer: exactly one of Result and Err.
	Result   *Transaction
	Replayed bool
	Err      *Error
}

// WriteUnit is what one caller submits: a single transaction, or the items
// of one batch request. With Atomic, either every item commits or none does.
type WriteUnit struct {
	Items  []*WriteItem
	Atomic bool
	// Audit, when set, is the request's audit context: the unit's entry is
	// written with its changes when any of its items changed state.
	Audit *Audit
	// FailedIndex is the index of the item that failed an atomic unit.
	FailedIndex int
	// TraceParent is the W3C traceparent of the request when it is
	// sampled (empty otherwise): stored with the unit's transactions so
	// that the work they cause later (webhook deliveries) joins its trace.
	TraceParent string
}
