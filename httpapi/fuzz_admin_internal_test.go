package httpapi

import (
	"reflect"
	"testing"

	"github.com/go-faster/jx"
	"github.com/ledgerd/ledgerd"
)

// The admin bodies: fraud rules, monitors, webhook endpoints (create and
// patch) and an API key's rate limit. Each decoder of a request body
// answers every input with either a value that its domain validation
// accepts or 422 field errors, the same way twice, and never panics.

var adminSeeds = []string{
	`{}`, `null`, `[]`, `1`, `"x"`,
	`{"velocity": {"max_debits": 20, "window_seconds": 60}, "large_amount": {"multiple_of_median": 10, "min_history": 5},
	  "new_account": {"max_age_seconds": 86400, "amount_over": 100000}, "freeze_score": 80}`,
	`{"velocity": null, "freeze_score": null}`, `{"velocity": {"max_debits": -1}}`, `{"freeze_score": 101}`,
	`{"account": "users:alice", "condition": {"field": "available", "operator": "<", "value": 1000}, "email": ["ops@example.com"]}`,
	`{"account": "", "condition": {"field": "x", "operator": "!", "value": 1.5}, "email": ["a"]}`,
	`{"url": "https://example.com/hook", "event_types": ["transaction.posted"], "description": "d"}`,
	`{"url": "http://127.0.0.1/", "status": "disabled", "event_types": null}`,
	`{"per_second": 0.5, "burst": 10}`, `{"per_second": 1e400, "burst": 1}`, `{"per_second": 1, "burst": 1, "x": 2}`,
}

type adminDecoded struct {
	fraud   ledgerd.FraudRules
	monitor ledgerd.Monitor
	hook    webhookBody
	limit   *ledgerd.RateLimit
	err     *ledgerd.Error
}

// decodeAdmin decodes body with decoder kind (0 fraud rules, 1 monitor,
// 2 webhook create, 3 webhook patch, 4 rate limit).
func decodeAdmin(kind uint8, body []byte) adminDecoded {
	var out adminDecoded
	var v ledgerd.Validation
	d := jx.DecodeBytes(body)
	switch kind % 5 {
	case 0:
		decodeFraudRules(d, &v, &out.fraud)
	case 1:
		decodeMonitor(d, &v, &out.monitor)
	case 2:
		decodeWebhook(d, &v, &out.hook, false)
	case 3:
		decodeWebhook(d, &v, &out.hook, true)
	case 4:
		out.limit = decodeRateLimit(d, &v, "rate_limit")
	}
	out.err = v.Err()
	return out
}

func FuzzDecodeAdminBodies(f *testing.F) {
	for k := range uint8(5) {
		addSeeds(f, adminSeeds, k)
	}
	f.Fuzz(func(t *testing.T, body []byte, kind uint8) {
		if !checkWellFormed(t, body) {
			return
		}
		a, b := decodeAdmin(kind, body), decodeAdmin(kind, body)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("two decodes differ:\n%+v\n%+v", a, b)
		}
		if a.err != nil {
			checkFieldErrors(t, a.err)
			return
		}
		if hasLoneSurrogate(body) {
			t.Fatalf("a lone surrogate accepted: %q", body)
		}
		var v ledgerd.Validation
		switch kind % 5 {
		case 0:
			a.fraud.Validate(&v)
		case 1:
			if !ledgerd.ValidAccountID(a.monitor.Account) {
				t.Fatalf("monitor of account %q accepted", a.monitor.Account)
			}
		case 4:
			if a.limit != nil {
				a.limit.Validate(&v, "rate_limit")
			} else if _, ok := stdDecode(t, body).(map[string]any); ok {
				t.Fatalf("an object decoded as no limit: %q", body)
			}
		}
		if err := v.Err(); err != nil {
			t.Fatalf("accepted %q, which its validation refuses: %+v", body, err)
		}
		if kind%5 != 4 {
			if _, ok := stdDecode(t, body).(map[string]any); !ok {
				t.Fatalf("accepted a body that is not an object: %q", body)
			}
		}
	})
}
