// Package webhook holds the parts of webhook delivery that need no
// database: endpoint secrets, Standard Webhooks signing and verification,
// the request body, the retry schedule, the SSRF guard (at registration and
// at every connection) and one delivery attempt with its classification.
//
// The worker that decides what to deliver when, and records outcomes,
// lives elsewhere; it calls Deliver once per attempt and Schedule.Next to
// learn when to try again. docs/webhooks.md is the contract as receivers
// see it.
package webhook
