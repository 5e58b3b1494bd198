package httpapi_test

import (
	"testing"

	"github.com/ledgerd/ledgerd/ledgertest"
)

func TestMain(m *testing.M) { ledgertest.Main(m) }

func TestSmoke(t *testing.T) {
	t.Parallel()
	e := ledgertest.Start(t, ledgertest.Options{})
	l := e.Ledger("smoke")
	e.Account(l, "world", "USD", nil)
	e.Account(l, "a", "USD", ledgertest.Int64(0))
	e.Transfer(l, "world", "a", 10, "USD").Expect(t, 201)
	e.Transfer(l, "a", "world", 11, "USD").Expect(t, 422, "insufficient_funds")
}
