package ledgerd

import "time"

// The filters of the API's lists and the pages they read. The storage
// adapter implements them; the API builds them from query parameters.

// AccountFilter selects accounts for a list.
type AccountFilter struct {
	Prefix   string
	Metadata map[string]string
	After    string // keyset cursor: ids strictly greater
	Limit    int
}

// TxFilter selects transactions for a list, always in sequence order.
type TxFilter struct {
	Account   string
	Reference string
	After     int64 // sequence > After (also the keyset cursor)
	From, To  *time.Time
	Limit     int
}

// StatementFilter selects statement lines.
type StatementFilter struct {
	From, To *time.Time
	// After is the keyset cursor: lines after (sequence, posting index).
	AfterSeq   int64
	AfterIndex int
	Limit      int
}

// Statement is a page of lines with the balances around the whole range.
type Statement struct {
	Lines          []StatementLine
	Opening        int64
	Closing        int64
	RangeStart     int64 // first sequence of the range
	RangeEndBefore int64 // sequences below this are in the range
}

// StatementLine is one statement line: a posting that moved the account's posted
// balance.
type StatementLine struct {
	TransactionID string
	Sequence      int64
	PostingIndex  int
	Amount        int64
	BalanceAfter  int64
	CreatedAt     time.Time
}
