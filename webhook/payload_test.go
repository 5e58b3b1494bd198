package webhook

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd"
)

func TestPayload(t *testing.T) {
	t.Parallel()
	// created_at in another zone, with nanoseconds: rendered in UTC, to the microsecond.
	at := time.Date(2026, 11, 22, 11, 0, 0, 123456789, time.FixedZone("CET", 3600))
	data := []byte(`{"id":"a\"b","sequence":9007199254740993,"metadata":{"k":"é\u2028"}}`)
	b, err := Payload(ledgerd.EventAccountCreated, at, data)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if len(got) != 3 || string(got["type"]) != `"account.created"` || string(got["timestamp"]) != `"2026-11-22T10:00:00.123456Z"` {
		t.Fatalf("payload %s", b)
	}
	// data goes through byte for byte: a large sequence keeps its digits.
	if string(got["data"]) != string(data) {
		t.Fatalf("data %s, want %s", got["data"], data)
	}
	for _, bad := range []string{"", "{", `{"a":1}x`, "\xff"} {
		if _, err := Payload(ledgerd.EventTransactionPosted, at, []byte(bad)); !errors.Is(err, ErrInvalidData) {
			t.Errorf("Payload(%q) = %v", bad, err)
		}
	}
}
