package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/webhook"
)

// WebhookStore is what the webhook endpoints API needs from storage;
// *postgres.DB is one. Lookups are by ledger and id, so another ledger's
// endpoint is simply not found.
type WebhookStore interface {
	CreateWebhookEndpoint(ctx context.Context, e *ledgerd.WebhookEndpoint) error
	WebhookEndpoint(ctx context.Context, ledgerID int64, id string) (*ledgerd.WebhookEndpoint, error)
	ListWebhookEndpoints(ctx context.Context, ledgerID int64, after string, limit int) ([]*ledgerd.WebhookEndpoint, error)
	UpdateWebhookEndpoint(ctx context.Context, ledgerID int64, id string, p *ledgerd.WebhookEndpointPatch) (*ledgerd.WebhookEndpoint, error)
	DeleteWebhookEndpoint(ctx context.Context, ledgerID int64, id string) (bool, error)
	RotateWebhookSecret(ctx context.Context, ledgerID int64, id, secret string) (bool, error)
	// ListWebhookDeliveries answers a validation error for an afterEvent
	// that is not in the endpoint's log.
	ListWebhookDeliveries(ctx context.Context, endpointID, status, afterEvent string, limit int) ([]*ledgerd.WebhookDelivery, error)
	RetryWebhookDelivery(ctx context.Context, endpointID, eventID string) (status string, found bool, err error)
}

func (s *Server) webhookRoutes() {
	// Handlers use s.cfg.Webhooks: without it, none runs.
	h := func(f handlerFunc) handlerFunc { return servedIf(s.cfg.Webhooks != nil, "webhooks", f) }
	admin := route{auth: true, role: RoleAdmin, ledger: true}
	withBody := admin
	withBody.maxBody = MaxSingleBody
	s.handle("POST /v1/ledgers/{ledger}/webhooks", withBody, h(s.createWebhook))
	list, log := admin, admin
	list.query = []string{"limit", "cursor"}
	log.query = []string{"status", "after", "limit"}
	s.handle("GET /v1/ledgers/{ledger}/webhooks", list, h(s.listWebhooks))
	s.handle("GET /v1/ledgers/{ledger}/webhooks/{id}", admin, h(s.getWebhook))
	s.handle("PATCH /v1/ledgers/{ledger}/webhooks/{id}", withBody, h(s.patchWebhook))
	s.handle("DELETE /v1/ledgers/{ledger}/webhooks/{id}", admin, h(s.deleteWebhook))
	s.handle("POST /v1/ledgers/{ledger}/webhooks/{id}/rotate-secret", admin, h(s.rotateWebhookSecret))
	s.handle("GET /v1/ledgers/{ledger}/webhooks/{id}/deliveries", log, h(s.listDeliveries))
	s.handle("POST /v1/ledgers/{ledger}/webhooks/{id}/deliveries/{event_id}/retry", admin, h(s.retryDelivery))
}

// webhookBody is a decoded POST or PATCH body.
type webhookBody struct {
	url, description, status string
	types                    []ledgerd.EventType
	hasURL, urlOK, hasTypes  bool
	hasDesc, hasStatus       bool
}

func decodeWebhook(d *jx.Decoder, v *ledgerd.Validation, b *webhookBody, patch bool) {
	object(d, v, "", func(k string) int {
		switch k {
		case "url":
			return 0
		case "event_types":
			return 1
		case "description":
			return 2
		case "status":
			if patch {
				return 3
			}
		}
		return -1
	}, func(d *jx.Decoder, i int, field string) error {
		switch i {
		case 0:
			b.hasURL = true
			b.url, b.urlOK = str(d, v, field)
		case 1:
			b.hasTypes = true
			if isNull(d) {
				b.types = nil
				return nil
			}
			b.types = decodeEventTypes(d, v, field)
		case 2:
			b.hasDesc = true
			if isNull(d) {
				b.description = ""
				return nil
			}
			b.description, _ = str(d, v, field)
			if len(b.description) > ledgerd.MaxWebhookDescription {
				v.Add(field, "must be at most %d bytes", ledgerd.MaxWebhookDescription)
			}
		case 3:
			b.hasStatus = true
			b.status, _ = str(d, v, field)
			if b.status != ledgerd.WebhookEnabled && b.status != ledgerd.WebhookDisabled {
				v.Add(field, `must be "enabled" or "disabled"`)
			}
		}
		return nil
	})
}

// maxEventTypes bounds the list: there are fewer types than this, so a
// longer list has repeats.
const maxEventTypes = 32

func decodeEventTypes(d *jx.Decoder, v *ledgerd.Validation, field string) []ledgerd.EventType {
	if d.Next() != jx.Array {
		v.Add(field, "must be an array of event types (or null: every type)")
		_ = d.Skip()
		return nil
	}
	out := []ledgerd.EventType{}
	i := 0
	_ = d.Arr(func(d *jx.Decoder) error {
		f := field + "[" + strconv.Itoa(i) + "]"
		i++
		t, ok := str(d, v, f)
		switch {
		case !ok:
		case !ledgerd.ValidEventType(t):
			v.Add(f, "is not an event type")
		case len(out) >= maxEventTypes:
		default:
			for _, x := range out {
				if string(x) == t {
					return nil // a repeat changes nothing
				}
			}
			out = append(out, ledgerd.EventType(t))
		}
		return nil
	})
	if i == 0 {
		v.Add(field, "must name at least one event type (null or absent: every type)")
	}
	return out
}

func (s *Server) checkWebhookURL(v *ledgerd.Validation, raw string) {
	if raw == "" {
		v.Add("url", "is required")
		return
	}
	if err := webhook.ValidateURL(raw, s.cfg.WebhookAllowPrivate); err != nil {
		var ue *webhook.URLError
		if errors.As(err, &ue) {
			v.Add("url", "%s", ue.Reason)
		} else {
			v.Add("url", "is not acceptable")
		}
	}
}

func encodeWebhook(e *jx.Encoder, ep *ledgerd.WebhookEndpoint, secret bool) {
	e.ObjStart()
	e.FieldStart("id")
	e.Str(ep.ID)
	e.FieldStart("url")
	e.Str(ep.URL)
	e.FieldStart("event_types")
	if ep.EventTypes == nil {
		e.Null()
	} else {
		e.ArrStart()
		for _, t := range ep.EventTypes {
			e.Str(string(t))
		}
		e.ArrEnd()
	}
	e.FieldStart("description")
	e.Str(ep.Description)
	e.FieldStart("status")
	e.Str(ep.Status)
	if secret {
		e.FieldStart("secret")
		e.Str(ep.Secret)
	}
	e.FieldStart("created_at")
	encodeTime(e, ep.CreatedAt)
	e.FieldStart("updated_at")
	encodeTime(e, ep.UpdatedAt)
	e.ObjEnd()
}

func webhookPath(ledger, id string) string { return "/v1/ledgers/" + ledger + "/webhooks/" + id }

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := s.cfg.Webhooks
	var b webhookBody
	if !decodeBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) {
		decodeWebhook(d, v, &b, false)
		if !b.hasURL || b.urlOK {
			s.checkWebhookURL(v, b.url)
		}
	}) {
		return
	}
	ep := &ledgerd.WebhookEndpoint{LedgerID: rc.ledger.ID, URL: b.url, EventTypes: b.types, Description: b.description,
		Secret: webhook.NewSecret()}
	if err := st.CreateWebhookEndpoint(r.Context(), ep); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", webhookPath(rc.ledger.Name, ep.ID))
	writeJSON(w, http.StatusCreated, func(e *jx.Encoder) { encodeWebhook(e, ep, true) })
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := s.cfg.Webhooks
	limit, after, ok := cursorQuery(w, r.URL.Query())
	if !ok {
		return
	}
	eps, err := st.ListWebhookEndpoints(r.Context(), rc.ledger.ID, after, limit+1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	eps, next := page(eps, limit, func(ep *ledgerd.WebhookEndpoint) string { return ep.ID })
	writeList(w, eps, func(e *jx.Encoder, ep *ledgerd.WebhookEndpoint) { encodeWebhook(e, ep, false) }, next, nil)
}

// endpoint loads the endpoint of the path, answering 404 when the
// ledger has none by that id.
func (s *Server) endpoint(w http.ResponseWriter, r *http.Request, rc *reqCtx, st WebhookStore) *ledgerd.WebhookEndpoint {
	ep, err := st.WebhookEndpoint(r.Context(), rc.ledger.ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return nil
	}
	if ep == nil {
		writeProblem(w, notInLedger(r, "webhook endpoint"))
	}
	return ep
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := s.cfg.Webhooks
	if ep := s.endpoint(w, r, rc, st); ep != nil {
		writeJSON(w, http.StatusOK, func(e *jx.Encoder) { encodeWebhook(e, ep, false) })
	}
}

func (s *Server) patchWebhook(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := s.cfg.Webhooks
	var b webhookBody
	if !decodeBody(w, rc, func(d *jx.Decoder, v *ledgerd.Validation) {
		decodeWebhook(d, v, &b, true)
		if b.urlOK {
			s.checkWebhookURL(v, b.url)
		}
	}) {
		return
	}
	var p ledgerd.WebhookEndpointPatch
	if b.hasURL {
		p.URL = &b.url
	}
	if b.hasTypes {
		p.EventTypes = &b.types
	}
	if b.hasDesc {
		p.Description = &b.description
	}
	if b.hasStatus {
		p.Status = &b.status
	}
	ep, err := st.UpdateWebhookEndpoint(r.Context(), rc.ledger.ID, r.PathValue("id"), &p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ep == nil {
		writeProblem(w, notInLedger(r, "webhook endpoint"))
		return
	}
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) { encodeWebhook(e, ep, false) })
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := s.cfg.Webhooks
	ok, err := st.DeleteWebhookEndpoint(r.Context(), rc.ledger.ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		writeProblem(w, notInLedger(r, "webhook endpoint"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := s.cfg.Webhooks
	secret := webhook.NewSecret()
	ok, err := st.RotateWebhookSecret(r.Context(), rc.ledger.ID, r.PathValue("id"), secret)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		writeProblem(w, notInLedger(r, "webhook endpoint"))
		return
	}
	writeJSON(w, http.StatusOK, func(e *jx.Encoder) {
		e.Obj(func(e *jx.Encoder) { e.Field("secret", func(e *jx.Encoder) { e.Str(secret) }) })
	})
}

func encodeDelivery(e *jx.Encoder, d *ledgerd.WebhookDelivery) {
	e.ObjStart()
	e.FieldStart("event_id")
	e.Str(d.EventID)
	e.FieldStart("event_type")
	e.Str(string(d.EventType))
	e.FieldStart("status")
	e.Str(d.Status)
	e.FieldStart("attempts")
	e.Int(d.Attempts)
	e.FieldStart("last_status_code")
	if d.LastStatusCode == 0 {
		e.Null()
	} else {
		e.Int(d.LastStatusCode)
	}
	e.FieldStart("last_error")
	if d.LastError == "" {
		e.Null()
	} else {
		e.Str(d.LastError)
	}
	e.FieldStart("next_attempt_at")
	if d.NextAttemptAt == nil {
		e.Null()
	} else {
		encodeTime(e, *d.NextAttemptAt)
	}
	e.FieldStart("delivered_at")
	if d.DeliveredAt == nil {
		e.Null()
	} else {
		encodeTime(e, *d.DeliveredAt)
	}
	e.FieldStart("created_at")
	encodeTime(e, d.CreatedAt)
	e.ObjEnd()
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := s.cfg.Webhooks
	q := r.URL.Query()
	var v ledgerd.Validation
	limit := limitParam(q, &v)
	status := q.Get("status")
	switch status {
	case "", ledgerd.DeliveryPending, ledgerd.DeliveryDelivered, ledgerd.DeliveryFailed:
	default:
		v.Add("status", `must be "pending", "delivered" or "failed"`)
	}
	if err := v.Err(); err != nil {
		writeProblem(w, err)
		return
	}
	ep := s.endpoint(w, r, rc, st)
	if ep == nil {
		return
	}
	ds, err := st.ListWebhookDeliveries(r.Context(), ep.ID, status, q.Get("after"), limit+1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ds, next := pageAfter(ds, limit, func(d *ledgerd.WebhookDelivery) string { return d.EventID })
	writeList(w, ds, encodeDelivery, next, nil)
}

func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	st := s.cfg.Webhooks
	ep := s.endpoint(w, r, rc, st)
	if ep == nil {
		return
	}
	eventID := r.PathValue("event_id")
	status, found, err := st.RetryWebhookDelivery(r.Context(), ep.ID, eventID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch {
	case !found:
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeNotFound, "no delivery of event %q to this endpoint", eventID))
	case status == ledgerd.DeliveryDelivered:
		writeProblem(w, ledgerd.Errorf(ledgerd.CodeInvalidState, "event %q was delivered already", eventID))
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}
