package webhook

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/ledgerd/ledgerd"
)

// timeLayout is the API's time format: RFC 3339, UTC, microseconds.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// ErrInvalidData is returned for event data that is not one JSON value.
var ErrInvalidData = errors.New("webhook: event data is not valid JSON")

// Payload renders the request body of an event: {"type", "timestamp",
// "data"}, timestamp being the event's created_at, so that every attempt
// sends the same bytes. data is copied in as is; it is checked only for
// being valid JSON, since a receiver would reject the whole body otherwise
// and the delivery could never succeed.
func Payload(typ ledgerd.EventType, createdAt time.Time, data []byte) ([]byte, error) {
	if !json.Valid(data) {
		return nil, ErrInvalidData
	}
	b := make([]byte, 0, len(data)+len(typ)+64)
	b = append(b, `{"type":`...)
	b = ledgerd.AppendJSONString(b, string(typ))
	b = append(b, `,"timestamp":"`...)
	b = createdAt.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","data":`...)
	b = append(b, data...)
	return append(b, '}'), nil
}
