package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/wire"
)

// EventStore reads a ledger's events (postgres.DB implements it; see
// docs/api.md §Events for the order it keeps).
type EventStore interface {
	ReadEvents(ctx context.Context, ledgerID int64, ledgerName string, q ledgerd.EventQuery) (ledgerd.EventPage, error)
	// EventPosition resolves an event id of the ledger; ok is false when
	// the ledger has no such event.
	EventPosition(ctx context.Context, ledgerID int64, eventID string) (pos ledgerd.EventPosition, ok bool, err error)
}

// eventStore is Config.Events, or the database when it reads events
// itself.
func eventStore(cfg Config, db any) EventStore {
	if cfg.Events != nil {
		return cfg.Events
	}
	es, _ := db.(EventStore)
	return es
}

var errNoEventStore = errors.New("no event store configured")

// listEvents is GET …/events?after=&type=&limit=: the ledger's events
// oldest first. next_cursor is an event id to pass back as after; it is
// null when the read reached the end of what is committed (a tailing
// consumer then asks again after the last event it saw).
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	var v ledgerd.Validation
	eq := ledgerd.EventQuery{Limit: limitParam(q, &v)}
	for _, t := range q["type"] {
		if !ledgerd.ValidEventType(t) {
			v.Add("type", "%q is not an event type", t)
			continue
		}
		eq.Types = append(eq.Types, ledgerd.EventType(t))
	}
	es := eventStore(s.cfg, s.db)
	if es == nil {
		s.fail(w, r, errNoEventStore)
		return
	}
	if after := q.Get("after"); after != "" {
		pos, ok, err := es.EventPosition(r.Context(), rc.ledger.ID, after)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !ok {
			v.Add("after", "is not the id of an event of this ledger")
		}
		eq.After = pos
	}
	if err := v.Err(); err != nil {
		writeProblem(w, err)
		return
	}
	p, err := es.ReadEvents(r.Context(), rc.ledger.ID, rc.ledger.Name, eq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	next := ""
	if p.More {
		next = p.NextID
	}
	writeList(w, p.Events, func(e *jx.Encoder, ev ledgerd.Event) { wire.EncodeEvent(e, &ev) }, next, nil)
}
