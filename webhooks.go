package ledgerd

import "time"

// Webhook endpoint statuses.
const (
	WebhookEnabled  = "enabled"
	WebhookDisabled = "disabled"
)

// Delivery statuses: pending (waiting for its next attempt, or in flight),
// delivered (a 2xx), failed (dead-lettered: out of attempts, or the
// endpoint answered 410).
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// MaxWebhookDescription bounds an endpoint's description, in bytes: a
// label for people, not a document.
const MaxWebhookDescription = 1024

// WebhookEndpoint is a URL registered to receive a ledger's events.
type WebhookEndpoint struct {
	ID       string
	LedgerID int64
	URL      string
	// EventTypes filters what is sent; nil means every type.
	EventTypes  []EventType
	Description string
	Status      string
	// Secret signs deliveries. PreviousSecret, while PreviousUntil is in
	// the future, signs them too (a rotation's grace period).
	Secret         string
	PreviousSecret string
	PreviousUntil  time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Secrets are the secrets a delivery made at now is signed with, the
// current one first.
func (e *WebhookEndpoint) Secrets(now time.Time) []string {
	if e.PreviousSecret != "" && now.Before(e.PreviousUntil) {
		return []string{e.Secret, e.PreviousSecret}
	}
	return []string{e.Secret}
}

// WebhookEndpointPatch is a PATCH: nil fields are left as they are.
type WebhookEndpointPatch struct {
	URL         *string
	EventTypes  *[]EventType // pointer to nil: every type
	Description *string
	Status      *string
}

// WebhookDelivery is one event's delivery to one endpoint, as the delivery
// log shows it.
type WebhookDelivery struct {
	EventID        string
	EventType      EventType
	Position       EventPosition
	Status         string
	Attempts       int
	LastStatusCode int
	LastError      string
	NextAttemptAt  *time.Time
	DeliveredAt    *time.Time
	CreatedAt      time.Time
}

// DeliveryTask is a delivery a worker has claimed (leased) for one
// attempt.
type DeliveryTask struct {
	ID       int64
	Endpoint WebhookEndpoint
	Event    Event
	// Attempts counts this attempt; it also fences the outcome, so that a
	// worker whose lease ran out cannot overwrite a newer attempt's.
	Attempts int
}

// DeliveryResult is what becomes of a claimed delivery after its attempt.
type DeliveryResult struct {
	ID       int64
	Attempts int
	Status   string // pending (retry), delivered or failed
	// NextAttemptAt is when a pending delivery is due again.
	NextAttemptAt time.Time
	StatusCode    int
	Err           string
	// Release gives the delivery back untried (a worker shutting down
	// mid-attempt): the attempt does not count.
	Release bool
}

// FirstAttempt is what became of a delivery's first attempt when the relay
// made it while reading the event, before the delivery's row existed: a
// delivery to a healthy endpoint then costs one row, written once with its
// outcome, rather than a queued row, a claim and a completion.
type FirstAttempt struct {
	// Made is false when no attempt was made (no free slot within the
	// relay step's bound, or the worker is stopping): the delivery is
	// queued due now, as one to an endpoint that is not healthy.
	Made bool
	// Open is an attempt still running when the step ended (or one that
	// met a 410, which takes more than a row to settle): the delivery is
	// queued with the attempt counted and leased to this worker, which
	// writes the outcome when it has it, as for a claimed delivery.
	Open bool
	// Result is the outcome of a made attempt that is not open: delivered,
	// pending with its next attempt due, or failed.
	Result DeliveryResult
}
