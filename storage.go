package ledgerd

import "errors"

// Storage failures, as the storage adapter classifies them: it returns
// errors that wrap one of these (test with errors.Is), so that the
// batcher and the API decide what to answer without knowing the database.
var (
	// ErrUnavailable means the database could not be used (unreachable,
	// shutting down, no free connection in time): nothing happened, and
	// the operation may be retried (503 overloaded).
	ErrUnavailable = errors.New("database unavailable")
	// ErrCommitUnknown means the connection failed while COMMIT was in
	// flight: the batch may or may not have committed until someone looks.
	ErrCommitUnknown = errors.New("commit outcome unknown")
	// ErrKeyTaken means a batch rolled back because one of its idempotency
	// keys was taken outside the ledger's ordering lock (by an account
	// creation), so that its item is answered idempotency_in_progress.
	ErrKeyTaken = errors.New("an idempotency key was taken outside the ordering lock")
	// ErrFastPathRetry means a batch written on the writer's cached state
	// rolled back for a reason that writing it again the ordinary way
	// settles (another writer moved the ledger, a key or reference
	// existed).
	ErrFastPathRetry = errors.New("fast path rolled back")
)
