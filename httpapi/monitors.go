package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/wire"
)

// MonitorStore is what the balance monitors API needs from storage;
// *postgres.DB is one. Lookups are by ledger and id, so another ledger's
// monitor is simply not found.
type MonitorStore interface {
	// CreateMonitor answers account_not_found for an account that does
	// not exist.
	CreateMonitor(ctx context.Context, m *ledgerd.Monitor) error
	Monitor(ctx context.Context, ledgerID int64, id string) (*ledgerd.Monitor, error)
	ListMonitors(ctx context.Context, ledgerID int64, after string, limit int) ([]*ledgerd.Monitor, error)
	DeleteMonitor(ctx context.Context, ledgerID int64, id string) (bool, error)
}

func (s *Server) monitorRoutes() {
	// Handlers use s.cfg.Monitors: without it, none runs.
	h := func(f handlerFunc) handlerFunc { return servedIf(s.cfg.Monitors != nil, "monitors", f) }
	read := route{auth: true, role: RoleRead, ledger: true}
	write := route{auth: true, role: RoleWrite, ledger: true}
	create := write
	create.maxBody = MaxSingleBody
	list := read
	list.query = []string{"limit", "cursor"}
	s.handle("POST /v1/ledgers/{ledger}/monitors", create, h(s.createMonitor))
	s.handle("GET /v1/ledgers/{ledger}/monitors", list, h(s.listMonitors))
	s.handle("GET /v1/ledgers/{ledger}/monitors/{id}", read, h(s.getMonitor))
	s.handle("DELETE /v1/ledgers/{ledger}/monitors/{id}", write, h(s.deleteMonitor))
}

func decodeMonitor(d *jx.Decoder, v *ledgerd.Validation, m *ledgerd.Monitor) {
	var hasAccount, hasCondition bool
	object(d, v, "", func(k string) int {
		switch k {
		case "account":
			return 0
		case "condition":
			return 1
		case "email":
			return 2
		case "description":
			return 3
		}
		return -1
	}, func(d *jx.Decoder, i int, field string) error {
		switch i {
		case 0:
			hasAccount = true
			if a, ok := str(d, v, field); ok {
				m.Account = a
				if !ledgerd.ValidAccountID(a) {
					v.Add(field, "must be an account id")
				}
			}
		case 1:
			hasCondition = true
			decodeCondition(d, v, field, &m.Condition)
		case 2:
			if isNull(d) {
				return nil
			}
			m.Email = decodeRecipients(d, v, field)
		case 3:
			if isNull(d) {
				return nil
			}
			m.Description, _ = str(d, v, field)
			if len(m.Description) > ledgerd.MaxMonitorDescription {
				v.Add(field, "must be at most %d bytes", ledgerd.MaxMonitorDescription)
			}
		}
		return nil
	})
	if !hasAccount {
		v.Add("account", "is required")
	}
	if !hasCondition {
		v.Add("condition", "is required")
	}
}

func decodeCondition(d *jx.Decoder, v *ledgerd.Validation, path string, c *ledgerd.MonitorCondition) {
	var has [3]bool
	object(d, v, path, func(k string) int {
		switch k {
		case "field":
			return 0
		case "operator":
			return 1
		case "value":
			return 2
		}
		return -1
	}, func(d *jx.Decoder, i int, field string) error {
		has[i] = true
		switch i {
		case 0:
			if f, ok := str(d, v, field); ok {
				c.Field = f
				if f != ledgerd.MonitorAvailable && f != ledgerd.MonitorPosted {
					v.Add(field, `must be "available" or "posted"`)
				}
			}
		case 1:
			if op, ok := str(d, v, field); ok {
				c.Operator = op
				if !(ledgerd.MonitorCondition{Field: ledgerd.MonitorPosted, Operator: op}).Valid() {
					v.Add(field, `must be one of "<", "<=", ">", ">="`)
				}
			}
		case 2:
			c.Value, _ = integer(d, v, field)
		}
		return nil
	})
	for i, name := range []string{"field", "operator", "value"} {
		if !has[i] {
			v.Add(path+"."+name, "is required")
		}
	}
}

func decodeRecipients(d *jx.Decoder, v *ledgerd.Validation, field string) []string {
	if d.Next() != jx.Array {
		v.Add(field, "must be an array of e-mail addresses")
		_ = d.Skip()
		return nil
	}
	out := []string{}
	i := 0
	_ = d.Arr(func(d *jx.Decoder) error {
		f := field + "[" + strconv.Itoa(i) + "]"
		i++
		if i > ledgerd.MaxMonitorRecipients {
			return d.Skip()
		}
		a, ok := str(d, v, f)
		if !ok {
			return nil
		}
		addr, ok := ledgerd.ParseRecipient(a)
		if !ok {
			v.Add(f, "must be an e-mail address (name@domain, at most %d characters)", ledgerd.MaxMonitorAddressLen)
			return nil
		}
		for _, x := range out {
			if x == addr {
				return nil // a repeat changes nothing
			}
		}
		out = append(out, addr)
		return nil
	})
	if i > ledgerd.MaxMonitorRecipients {
		v.Add(field, "must list at most %d recipients", ledgerd.MaxMonitorRecipients)
	}
	return out
}

func monitorPath(ledger, id string) string { return "/v1/ledgers/" + ledger + "/monitors/" + id }

func (s *Server) createMonitor(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := s.cfg.Monitors
	m := &ledgerd.Monitor{LedgerID: rc.ledger.ID}
	if !decodeBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) { decodeMonitor(d, v, m) }) {
		return
	}
	if err := st.CreateMonitor(r.Context(), m); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", monitorPath(rc.ledger.Name, m.ID))
	writeJSON(w, http.StatusCreated, func(e *jx.Encoder) { wire.EncodeMonitor(e, m) })
}

func (s *Server) listMonitors(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := s.cfg.Monitors
	limit, after, ok := cursorQuery(w, r.URL.Query())
	if !ok {
		return
	}
	ms, err := st.ListMonitors(r.Context(), rc.ledger.ID, after, limit+1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ms, next := page(ms, limit, func(m *ledgerd.Monitor) string { return m.ID })
	writeList(w, ms, wire.EncodeMonitor, next, nil)
}

func (s *Server) getMonitor(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := s.cfg.Monitors
	m, err := st.Monitor(r.Context(), rc.ledger.ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if m == nil {
		writeProblem(w, notInLedger(r, "monitor"))
		return
	}
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) { wire.EncodeMonitor(e, m) })
}

func (s *Server) deleteMonitor(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := s.cfg.Monitors
	ok, err := st.DeleteMonitor(r.Context(), rc.ledger.ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		writeProblem(w, notInLedger(r, "monitor"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
