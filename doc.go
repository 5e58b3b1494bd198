// Package ledgerd is the domain core of the ledgerd double-entry ledger:
// accounts, transactions, their validation and the rules that apply a
// transaction to balances. It knows nothing of HTTP or SQL; the adapters
// (httpapi, postgres, batch) import it, never the other way round.
//
// Amounts are integers in an asset's minor unit. Every arithmetic step on a
// balance is checked: a result outside the signed 64-bit range is a
// validation failure, never a wrap-around.
package ledgerd
