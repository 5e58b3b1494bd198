package httpapi_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ledgerd/ledgerd/ledgertest"
)

// TestWebhookListsPage pages both webhook lists one short page at a time:
// endpoints with the opaque cursor (the last id, base64url), deliveries
// with the last event id as it is, to pass back as after; next_cursor is
// null on the last page, also when it is exactly full.
func TestWebhookListsPage(t *testing.T) {
	t.Parallel()
	c := setup(t, ledgertest.Options{WebhookAllowPrivate: true})
	l := c.ledger("hooks-page")
	var created []string
	for i := range 3 {
		r := c.expect(201, "", "POST", hooks(l), admin, map[string]any{"url": fmt.Sprintf("http://127.0.0.1:9/h%d", i)})
		created = append(created, str(r.JSON(), "id"))
	}

	first := c.expect(200, "", "GET", hooks(l)+"?limit=2", admin, nil)
	page := first.JSON()
	data := page["data"].([]any)
	cursor := base64.RawURLEncoding.EncodeToString([]byte(str(data[1].(map[string]any), "id")))
	if len(data) != 2 || page["next_cursor"] != cursor {
		t.Fatalf("first page of endpoints: %s", first.Body)
	}
	if b := strings.TrimSpace(string(first.Body)); !strings.HasPrefix(b, `{"data":[{`) || !strings.HasSuffix(b, `}],"next_cursor":"`+cursor+`"}`) {
		t.Fatalf("endpoints envelope: %s", b)
	}
	walked := ids(c.walk(hooks(l)+"?limit=1", admin))
	if strings.Join(walked, ",") != strings.Join(ids(c.walk(hooks(l)+"?limit=3", admin)), ",") || len(walked) != 3 {
		t.Fatalf("endpoints walked one by one: %v; created %v", walked, created)
	}
	full := c.expect(200, "", "GET", hooks(l)+"?limit=3", admin, nil)
	if m := full.JSON(); len(m["data"].([]any)) != 3 || m["next_cursor"] != nil || !strings.Contains(string(full.Body), `"next_cursor":null}`) {
		t.Fatalf("a full last page of endpoints: %s", full.Body)
	}

	// Deliveries come from the relay; rows written directly stand for
	// three events of the ledger's log.
	ep := created[0]
	conn, err := pgx.Connect(t.Context(), ledgertest.DirectURL(t, c.e.DatabaseURL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	events := []string{"evt_page_1", "evt_page_2", "evt_page_3"}
	for i, id := range events {
		_, err := conn.Exec(t.Context(), `INSERT INTO webhook_deliveries
			(endpoint_id, event_id, ledger_id, seq, ord, event_type, event_created_at, data)
			SELECT $1, $2, id, $3, 0, 'account.created', now(), '{}' FROM ledgers WHERE name = $4`, ep, id, i+1, l)
		if err != nil {
			t.Fatal(err)
		}
	}
	log := hooks(l) + "/" + ep + "/deliveries"
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > len(events) {
			t.Fatalf("deliveries: too many pages (%v)", got)
		}
		q := log + "?limit=2"
		if after != "" {
			q += "&after=" + after
		}
		m := c.expect(200, "", "GET", q, admin, nil).JSON()
		data := m["data"].([]any)
		for _, d := range data {
			got = append(got, str(d.(map[string]any), "event_id"))
		}
		if m["next_cursor"] == nil {
			break
		}
		after = m["next_cursor"].(string)
		if after != got[len(got)-1] {
			t.Fatalf("deliveries next_cursor %q, want the page's last event id %q", after, got[len(got)-1])
		}
	}
	if strings.Join(got, ",") != strings.Join(events, ",") {
		t.Fatalf("deliveries paged: %v, want %v", got, events)
	}
	if m := c.expect(200, "", "GET", log+"?limit=3", admin, nil).JSON(); len(m["data"].([]any)) != 3 || m["next_cursor"] != nil {
		t.Fatalf("a full last page of deliveries: %v", m)
	}
}
