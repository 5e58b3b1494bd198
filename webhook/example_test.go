package webhook_test

import (
	"io"
	"log"
	"net/http"

	"github.com/ledgerd/ledgerd/webhook"
)

// A receiver written in Go that imports this package verifies a delivery
// with Verify. During a rotation on its own side, it may pass both the new
// and the old secret.
func ExampleVerify() {
	secrets := []string{"whsec_plJ3nmyCDGBKInavdOK15jsl0Ki2VJb3eRF5XWrH8yQ="}
	http.HandleFunc("POST /ledgerd", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			err = webhook.Verify(secrets, r.Header, body, webhook.DefaultTolerance)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		log.Printf("event %s", r.Header.Get("webhook-id")) // de-duplicate by this id
		w.WriteHeader(http.StatusNoContent)
	})
}
