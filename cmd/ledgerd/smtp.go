package main

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"

	"github.com/ledgerd/ledgerd/job"
)

// checkSMTP refuses an SMTP setting that could never send, at start
// rather than at the first trigger.
func checkSMTP(rawURL, from string) error {
	if rawURL == "" {
		return nil
	}
	if _, _, err := job.ParseSMTPURL(rawURL); err != nil {
		return fmt.Errorf("LEDGERD_SMTP_URL: %w", err)
	}
	if from == "" {
		return errors.New("LEDGERD_SMTP_FROM is required with LEDGERD_SMTP_URL")
	}
	if _, err := mail.ParseAddress(from); err != nil {
		return fmt.Errorf("LEDGERD_SMTP_FROM: not an e-mail address: %w", err)
	}
	return nil
}

// maskSMTPURL shows an SMTP URL with its password replaced; what it cannot
// parse is shown as "(set)".
func maskSMTPURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(set)"
	}
	return u.Redacted()
}
