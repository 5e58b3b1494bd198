package postgres

import (
	"github.com/ledgerd/ledgerd"
	"github.com/ledgerd/ledgerd/atrest"
)

// openSecrets turns an endpoint's stored secrets (sealed, or plaintext
// from before keys were configured) back into secrets, bound to the
// endpoint's id. A secret that does not open — sealed under a key this
// process lacks, or altered — is left empty: its deliveries then fail as
// those of an endpoint without a secret ("endpoint has no secret", retried
// on schedule, nothing unsigned is sent) and go through once the key is
// configured, while other endpoints' deliveries are not held up.
func openSecrets(keys *atrest.Keys, ep *ledgerd.WebhookEndpoint) {
	open := func(stored string) string {
		s, err := keys.Open(stored, ep.ID)
		if err != nil {
			return ""
		}
		return s
	}
	ep.Secret = open(ep.Secret)
	if ep.PreviousSecret != "" {
		ep.PreviousSecret = open(ep.PreviousSecret)
	}
}
