package ledgerd

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Limits on transactions (docs/api.md).
const (
	MaxPostings          = 64
	MaxReferenceLen      = 255
	MaxIdempotencyKeyLen = 255
	MaxPendingTimeout    = 2_592_000 // 30 days, in seconds
	DefaultBatchMaxItems = 1_000
	MaxBatchMaxItems     = 10_000
	MaxAccountBatchItems = 1_000
)

// Status is a transaction's state. Only a pending hold ever changes state,
// and only once.
type Status string

// Transaction states.
const (
	StatusPosted  Status = "posted"
	StatusPending Status = "pending"
	// StatusCaptured is a hold that a capture resolved. The capture itself
	// is posted: posted always means "these postings moved posted
	// balances", so summing the postings of posted transactions never
	// counts a capture twice.
	StatusCaptured Status = "captured"
	StatusVoided   Status = "voided"
	StatusExpired  Status = "expired"
)

// Posting moves Amount of Asset from Source to Destination.
type Posting struct {
	Source      string
	Destination string
	Amount      int64
	Asset       string
}

// TransactionRequest is what a client asks to post.
type TransactionRequest struct {
	Postings  []Posting
	Metadata  map[string]string
	Reference string
	Pending   bool
	// PendingTimeout in seconds; 0 means the hold never expires.
	PendingTimeout int64

	// EncodedPostings and EncodedMetadata, when set, are Postings and
	// Metadata already rendered by AppendPostingsJSON/AppendMetadataJSON.
	// Handlers render them before queueing, outside the ledger's ordering
	// lock, so the batch writer does not do it while holding it.
	EncodedPostings []byte
	EncodedMetadata []byte
}

// Encode fills EncodedPostings and EncodedMetadata.
func (r *TransactionRequest) Encode() {
	r.EncodedPostings = AppendPostingsJSON(make([]byte, 0, 96*len(r.Postings)), r.Postings)
	r.EncodedMetadata = AppendMetadataJSON(nil, r.Metadata)
}

// Transaction is a committed transaction. Postings never change after
// commit; only a hold's Status and its ResolvedBy / ReversedBy links do.
type Transaction struct {
	ID         string
	Sequence   int64
	Status     Status
	Postings   []Posting
	Metadata   map[string]string
	Reference  string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	PendingID  string
	ResolvedBy string
	Reverses   string
	ReversedBy string

	// RawPostings and RawMetadata hold the stored JSON of Postings and
	// Metadata when the transaction was read back, so reads serve the bytes
	// written at commit without decoding and re-encoding them.
	RawPostings []byte
	RawMetadata []byte

	// RawRisk is the transaction's risk as stored by fraud scoring (the
	// JSON of its "risk" member), nil until scored or when reads do not
	// load it. RiskSettled reports that no later read can show a
	// different risk: it is scored, or will never be (docs/fraud.md).
	RawRisk     []byte
	RiskSettled bool
}

// Validate checks the request's shape and ranges (everything that does not
// need the ledger's state), with field paths under prefix.
func (r *TransactionRequest) Validate(v *Validation, prefix string) {
	switch {
	case len(r.Postings) == 0:
		v.Add(prefix+"postings", "at least one posting is required")
	case len(r.Postings) > MaxPostings:
		v.Add(prefix+"postings", "at most %d postings", MaxPostings)
	}
	for i := range r.Postings {
		p := &r.Postings[i]
		f := prefix + "postings[" + strconv.Itoa(i) + "]."
		if p.Source == "" {
			v.Add(f+"source", "is required")
		} else if !ValidAccountID(p.Source) {
			v.Add(f+"source", "is not a valid account id")
		}
		if p.Destination == "" {
			v.Add(f+"destination", "is required")
		} else if !ValidAccountID(p.Destination) {
			v.Add(f+"destination", "is not a valid account id")
		}
		if p.Source != "" && p.Source == p.Destination {
			v.Add(f+"destination", "must differ from source")
		}
		if p.Amount <= 0 {
			v.Add(f+"amount", "must be greater than 0")
		}
		if p.Asset == "" {
			v.Add(f+"asset", "is required")
		} else if !ValidAsset(p.Asset) {
			v.Add(f+"asset", "must match ^[A-Z][A-Z0-9_]{0,15}$")
		}
	}
	ValidateMetadata(v, prefix+"metadata", r.Metadata, false)
	if utf8.RuneCountInString(r.Reference) > MaxReferenceLen { // characters, not bytes (docs/api.md)
		v.Add(prefix+"reference", "at most %d characters", MaxReferenceLen)
	} else if !storable(r.Reference) {
		v.Add(prefix+"reference", "must not contain U+0000")
	}
	if r.PendingTimeout != 0 {
		if !r.Pending {
			v.Add(prefix+"pending_timeout_seconds", "only allowed with \"pending\": true")
		} else if r.PendingTimeout < 1 || r.PendingTimeout > MaxPendingTimeout {
			v.Add(prefix+"pending_timeout_seconds", "must be between 1 and %d", MaxPendingTimeout)
		}
	}
}

// ValidIdempotencyKey reports whether k is an acceptable Idempotency-Key.
func ValidIdempotencyKey(k string) bool {
	if len(k) == 0 || utf8.RuneCountInString(k) > MaxIdempotencyKeyLen { // characters, not bytes (docs/api.md)
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] == 0x7f {
			return false
		}
	}
	return utf8.ValidString(k) // a header may carry any byte; the key is stored as text
}
