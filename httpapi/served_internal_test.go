package httpapi

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd"
)

// TestAPIsNotServed: a server built without the webhooks or monitors
// store answers 404 not_found on each of their routes, after the checks
// every route makes (a request without a key is still 401).
func TestAPIsNotServed(t *testing.T) {
	s := NewServer(nil, nil, Config{AdminKey: fuzzAdminKey})
	s.ledgers.Store("l", &ledgerd.Ledger{ID: 1, Name: "l"})
	for _, tc := range []struct{ method, path, body, what string }{
		{"GET", "/v1/ledgers/l/webhooks", "", "webhooks"},
		{"POST", "/v1/ledgers/l/webhooks", `{"url":"https://example.com/h"}`, "webhooks"},
		{"GET", "/v1/ledgers/l/webhooks/wh_1/deliveries", "", "webhooks"},
		{"DELETE", "/v1/ledgers/l/webhooks/wh_1", "", "webhooks"},
		{"GET", "/v1/ledgers/l/monitors", "", "monitors"},
		{"GET", "/v1/ledgers/l/monitors/mon_1", "", "monitors"},
		{"DELETE", "/v1/ledgers/l/monitors/mon_1", "", "monitors"},
	} {
		for _, key := range []string{fuzzAdminKey, ""} {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			var p struct{ Code, Detail string }
			_ = json.Unmarshal(rec.Body.Bytes(), &p)
			want, code := 404, "not_found"
			if key == "" {
				want, code = 401, "unauthorized"
			}
			if rec.Code != want || p.Code != code || (key != "" && p.Detail != tc.what+" are not served by this node") {
				t.Errorf("%s %s (key %t): %d %s", tc.method, tc.path, key != "", rec.Code, rec.Body.Bytes())
			}
		}
	}
}
