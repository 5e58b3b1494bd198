package ledgerd

import (
	"fmt"
)

// Code is a stable, machine-readable error code (docs/api.md). Clients switch on
// it, so a code never changes meaning once shipped.
type Code string

// The error codes of the v1 API.
const (
	CodeMalformedJSON         Code = "malformed_json"
	CodeUnauthorized          Code = "unauthorized"
	CodeForbidden             Code = "forbidden"
	CodeNotFound              Code = "not_found"
	CodeMethodNotAllowed      Code = "method_not_allowed"
	CodeDuplicateLedger       Code = "duplicate_ledger"
	CodeDuplicateAccount      Code = "duplicate_account"
	CodeDuplicateReference    Code = "duplicate_reference"
	CodeIdempotencyInProgress Code = "idempotency_in_progress"
	CodeInvalidState          Code = "invalid_state"
	CodePayloadTooLarge       Code = "payload_too_large"
	CodeUnsupportedMediaType  Code = "unsupported_media_type"
	CodeValidationFailed      Code = "validation_failed"
	CodeAccountNotFound       Code = "account_not_found"
	CodeAssetMismatch         Code = "asset_mismatch"
	CodeInsufficientFunds     Code = "insufficient_funds"
	CodeAccountFrozen         Code = "account_frozen"
	CodeIdempotencyKeyReused  Code = "idempotency_key_reused"
	CodeRateLimited           Code = "rate_limited"
	CodeOverloaded            Code = "overloaded"
	CodeInternal              Code = "internal"
	// CodeArchived: the resource is in an archived month (410), named in
	// the detail (docs/data-lifecycle.md).
	CodeArchived Code = "archived"
)

// Stored reports whether a rejection with this code is a business outcome
// that idempotency stores and replays (docs/api.md §Idempotency). Everything
// else may be retried with the same key.
func (c Code) Stored() bool {
	switch c {
	case CodeInsufficientFunds, CodeAccountNotFound, CodeAssetMismatch,
		CodeDuplicateReference, CodeInvalidState, CodeAccountFrozen:
		return true
	}
	return false
}

// FieldError names one offending field of a request, with a path relative
// to the request body (or to the batch item).
type FieldError struct {
	Field   string
	Message string
}

// Error is the one error type that crosses from the domain to the API. The
// HTTP layer maps Code to a status; Detail is safe to show to the caller.
type Error struct {
	Code   Code
	Detail string
	Fields []FieldError
	// TransactionID is set on duplicate_reference: the transaction that
	// already holds the reference.
	TransactionID string
}

func (e *Error) Error() string {
	if len(e.Fields) > 0 {
		return fmt.Sprintf("%s: %s (%s: %s)", e.Code, e.Detail, e.Fields[0].Field, e.Fields[0].Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Detail)
}

// Errorf builds an *Error with a formatted detail.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Invalid builds a validation_failed error for one field.
func Invalid(field, message string) *Error {
	return &Error{Code: CodeValidationFailed, Detail: "the request is invalid",
		Fields: []FieldError{{Field: field, Message: message}}}
}

// Validation collects field errors so that a caller sees every problem of a
// request at once rather than one per round trip.
type Validation struct {
	fields []FieldError
}

// MaxFieldErrors caps the field errors of one answer, so that a body of a
// hundred thousand bad members cannot turn into a multi-megabyte answer.
const MaxFieldErrors = 100

// Add records a field error.
func (v *Validation) Add(field, format string, args ...any) {
	switch {
	case len(v.fields) < MaxFieldErrors:
		v.fields = append(v.fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	case len(v.fields) == MaxFieldErrors:
		v.fields = append(v.fields, FieldError{Field: "", Message: "more errors omitted"})
	}
}

// Failed reports whether any field error was recorded.
func (v *Validation) Failed() bool { return len(v.fields) > 0 }

// Err returns the collected errors as one validation_failed *Error, or nil.
func (v *Validation) Err() *Error {
	if len(v.fields) == 0 {
		return nil
	}
	return &Error{Code: CodeValidationFailed, Detail: "the request is invalid", Fields: v.fields}
}
