package httpapi

import (
	"net/http"
	"strconv"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

// StatusOf is the HTTP status of an error code, for the storage adapter,
// which stores it beside a rejection kept for replay.
func StatusOf(c ledgerd.Code) int { return status(c) }

// status maps an error code to its HTTP status: the one place where that
// mapping lives (docs/api.md §Errors).
func status(c ledgerd.Code) int {
	switch c {
	case ledgerd.CodeMalformedJSON:
		return http.StatusBadRequest
	case ledgerd.CodeUnauthorized:
		return http.StatusUnauthorized
	case ledgerd.CodeForbidden:
		return http.StatusForbidden
	case ledgerd.CodeNotFound:
		return http.StatusNotFound
	case ledgerd.CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case ledgerd.CodeDuplicateLedger, ledgerd.CodeDuplicateAccount, ledgerd.CodeDuplicateReference,
		ledgerd.CodeIdempotencyInProgress, ledgerd.CodeInvalidState:
		return http.StatusConflict
	case ledgerd.CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case ledgerd.CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case ledgerd.CodeValidationFailed, ledgerd.CodeAccountNotFound, ledgerd.CodeAssetMismatch,
		ledgerd.CodeInsufficientFunds, ledgerd.CodeIdempotencyKeyReused, ledgerd.CodeAccountFrozen:
		return http.StatusUnprocessableEntity
	case ledgerd.CodeRateLimited:
		return http.StatusTooManyRequests
	case ledgerd.CodeOverloaded:
		return http.StatusServiceUnavailable
	case ledgerd.CodeArchived:
		return http.StatusGone
	}
	return http.StatusInternalServerError
}

func title(c ledgerd.Code) string {
	switch c {
	case ledgerd.CodeMalformedJSON:
		return "Malformed JSON"
	case ledgerd.CodeUnauthorized:
		return "Unauthorized"
	case ledgerd.CodeForbidden:
		return "Forbidden"
	case ledgerd.CodeNotFound:
		return "Not found"
	case ledgerd.CodeMethodNotAllowed:
		return "Method not allowed"
	case ledgerd.CodeDuplicateLedger:
		return "Ledger already exists"
	case ledgerd.CodeDuplicateAccount:
		return "Account already exists"
	case ledgerd.CodeDuplicateReference:
		return "Reference already used"
	case ledgerd.CodeIdempotencyInProgress:
		return "Request with this key in progress"
	case ledgerd.CodeInvalidState:
		return "Invalid state"
	case ledgerd.CodePayloadTooLarge:
		return "Payload too large"
	case ledgerd.CodeUnsupportedMediaType:
		return "Unsupported media type"
	case ledgerd.CodeValidationFailed:
		return "Validation failed"
	case ledgerd.CodeAccountNotFound:
		return "Account not found"
	case ledgerd.CodeAssetMismatch:
		return "Asset mismatch"
	case ledgerd.CodeInsufficientFunds:
		return "Insufficient funds"
	case ledgerd.CodeIdempotencyKeyReused:
		return "Idempotency key reused"
	case ledgerd.CodeAccountFrozen:
		return "Account frozen"
	case ledgerd.CodeRateLimited:
		return "Rate limited"
	case ledgerd.CodeArchived:
		return "Archived"
	case ledgerd.CodeOverloaded:
		return "Overloaded"
	}
	return "Internal error"
}

// encodeProblem writes an RFC 9457 problem object. index >= 0 adds the
// failing item's index (atomic batches).
func encodeProblem(e *jx.Encoder, err *ledgerd.Error, index int) {
	e.ObjStart()
	e.FieldStart("type")
	e.Str("https://ledgerd.dev/problems/" + string(err.Code))
	e.FieldStart("title")
	e.Str(title(err.Code))
	e.FieldStart("status")
	e.Int(status(err.Code))
	e.FieldStart("detail")
	e.Str(err.Detail)
	e.FieldStart("code")
	e.Str(string(err.Code))
	if len(err.Fields) > 0 {
		e.FieldStart("errors")
		e.ArrStart()
		for _, f := range err.Fields {
			e.ObjStart()
			e.FieldStart("field")
			e.Str(f.Field)
			e.FieldStart("message")
			e.Str(f.Message)
			e.ObjEnd()
		}
		e.ArrEnd()
	}
	if err.TransactionID != "" {
		e.FieldStart("transaction_id")
		e.Str(err.TransactionID)
	}
	if index >= 0 {
		e.FieldStart("index")
		e.Int(index)
	}
	e.ObjEnd()
}

// writeProblem answers with a problem document.
func writeProblem(w http.ResponseWriter, err *ledgerd.Error) {
	writeProblemIndex(w, err, -1)
}

func writeProblemIndex(w http.ResponseWriter, err *ledgerd.Error, index int) {
	e := jx.GetEncoder()
	defer jx.PutEncoder(e)
	encodeProblem(e, err, index)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	st := status(err.Code)
	if st == http.StatusTooManyRequests || st == http.StatusServiceUnavailable {
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", "1")
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(e.Bytes())))
	w.WriteHeader(st)
	_, _ = w.Write(e.Bytes())
}

// notInLedger is the 404 of a path whose {id} names no what of the
// request's ledger (another ledger's is not found either).
func notInLedger(r *http.Request, what string) *ledgerd.Error {
	return ledgerd.Errorf(ledgerd.CodeNotFound, "no %s %q in this ledger", what, r.PathValue("id"))
}
