package wire

import (
	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

// EncodeMonitor writes a monitor object (docs/api.md §Monitors).
func EncodeMonitor(e *jx.Encoder, m *ledgerd.Monitor) {
	e.ObjStart()
	e.FieldStart("id")
	e.Str(m.ID)
	e.FieldStart("account")
	e.Str(m.Account)
	e.FieldStart("condition")
	e.ObjStart()
	e.FieldStart("field")
	e.Str(m.Condition.Field)
	e.FieldStart("operator")
	e.Str(m.Condition.Operator)
	e.FieldStart("value")
	e.Int64(m.Condition.Value)
	e.ObjEnd()
	e.FieldStart("email")
	e.ArrStart()
	for _, a := range m.Email {
		e.Str(a)
	}
	e.ArrEnd()
	e.FieldStart("description")
	e.Str(m.Description)
	e.FieldStart("triggers")
	e.Int64(m.Triggers)
	e.FieldStart("last_triggered_at")
	if m.LastTriggeredAt == nil {
		e.Null()
	} else {
		EncodeTime(e, *m.LastTriggeredAt)
	}
	e.FieldStart("created_at")
	EncodeTime(e, m.CreatedAt)
	e.ObjEnd()
}

// AppendMonitorTriggered appends the data of a monitor.triggered event:
// the monitor as it was before this trigger, the account's balance after
// the transaction that crossed the condition, and that transaction.
func AppendMonitorTriggered(b []byte, t *ledgerd.MonitorTrigger) []byte {
	return appendWith(b, func(e *jx.Encoder) {
		e.ObjStart()
		e.FieldStart("monitor")
		EncodeMonitor(e, t.Monitor)
		e.FieldStart("account")
		e.Str(t.Monitor.Account)
		e.FieldStart("balance")
		e.ObjStart()
		e.FieldStart("posted")
		e.Int64(t.Balance.Posted)
		e.FieldStart("pending_debits")
		e.Int64(t.Balance.PendingDebits)
		e.FieldStart("pending_credits")
		e.Int64(t.Balance.PendingCredits)
		e.FieldStart("available")
		if v, ok := t.Balance.Available(); ok {
			e.Int64(v)
		} else {
			e.Null()
		}
		e.ObjEnd()
		e.FieldStart("transaction_id")
		e.Str(t.TransactionID)
		e.FieldStart("sequence")
		e.Int64(t.Sequence)
		e.ObjEnd()
	})
}
