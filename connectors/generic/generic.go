// Package generic is the `generic` source: dealsync's own JSON deal event
// signed with the Standard Webhooks scheme.
//
// A delivery is one event object or a JSON array of at most MaxBatch of them:
//
//	{"event_id":"evt_1","occurred_at":"2026-11-20T10:00:00Z",
//	 "deal":{"id":"D-1001","name":"Acme annual","stage":"closed_won",
//	   "previous_stage":"negotiation","amount":"12000.00","currency":"EUR",
//	   "close_date":"2026-11-20","owner":"jane",
//	   "company":{"id":"C-1","name":"Acme GmbH","email":"ap@acme.example","tax_id":"DE123",
//	     "address":{"line1":"...","line2":"...","city":"...","region":"...","postal_code":"...","country":"DE"}},
//	   "line_items":[{"sku":"PRO-1Y","description":"Pro plan, 1 year","quantity":"1",
//	     "unit_price":"12000.00","discount":"0","discount_percent":"0"}]}}
//
// deal.id and deal.stage are required. Amounts and quantities are JSON
// strings or numbers and are read as exact decimals, never as floats. Ids
// (event_id, deal.id, company.id, sku), stage, previous_stage and owner may
// also be JSON numbers, kept digit for digit. When event_id is absent, the
// webhook-id header stands in ("<id>#<index>" for array elements after the
// first). Unknown fields are ignored; every top-level deal field is kept in
// Deal.Raw.
//
// The signature is checked by Verify (see Sign, Verify and SignRequest for the
// scheme). The source has no Acknowledger: the intake's JSON reply is used.
//
// With write_back.url set, the source writes each deal's invoice back to
// the CRM by a POST signed the same way (WritingSource, writeback.go);
// without it, it is no WriteBacker and its runs have no write-back step.
package generic

import (
	"errors"
	"fmt"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

// Config is a generic source's `source:` block.
type Config struct {
	// Secret is the Standard Webhooks secret, "whsec_<base64>" (the prefix is
	// optional), given literally or as env:NAME / file:PATH.
	Secret secret.Secret `mapstructure:"secret" validate:"required"`
	// PreviousSecret, while a secret is rotated, is the one being retired:
	// a delivery signed with it is taken too (and counted, so that an
	// operator sees when the senders have moved on). Standard Webhooks'
	// own way, a sender signing with both at once, needs none.
	PreviousSecret secret.Secret `mapstructure:"previous_secret"`
	// Tolerance is how far webhook-timestamp may be from the receiver's clock,
	// either way. 0 means DefaultTolerance (5m).
	Tolerance time.Duration `mapstructure:"tolerance" validate:"gte=0"`
	// WriteBack, when its URL is set, POSTs each deal's invoice back to
	// the CRM, signed the Standard Webhooks way (see WriteBackConfig).
	WriteBack WriteBackConfig `mapstructure:"write_back"`
}

func init() {
	connectors.RegisterSourceType("generic",
		"dealsync's own JSON deal event (one or a batch of up to 100), signed with Standard Webhooks (webhook-id/-timestamp/-signature, also svix-*)",
		func() Config { return Config{Tolerance: DefaultTolerance} },
		Build)
}

// Source verifies and parses generic deliveries. It is safe for concurrent
// use once built.
type Source struct {
	key, previousKey []byte
	tolerance        time.Duration
	// keys name the source's settings in advice
	// (connections.<name>.source.secret): Build sets them.
	keys connectors.Keys

	// Now is the clock Verify and Parse use when a Webhook has no Received time;
	// nil means time.Now. Tests set it.
	Now func() time.Time
}

var _ connectors.Source = (*Source)(nil)

// New resolves the configured secret once and returns a Source, the
// receiving side alone: Build, the registered constructor, adds the
// write-back when write_back.url is set. Errors name what is wrong with
// the secret but never contain it.
func New(cfg Config) (*Source, error) {
	if cfg.Secret.IsZero() {
		return nil, errors.New("generic source: secret is required")
	}
	if cfg.Tolerance < 0 {
		return nil, fmt.Errorf("generic source: tolerance %s is negative", wording.Duration(cfg.Tolerance))
	}
	value, err := cfg.Secret.Reveal()
	if err != nil {
		return nil, fmt.Errorf("generic source: secret (%s): %w", cfg.Secret.Describe(), err)
	}
	key, err := decodeSecret(value)
	if err != nil {
		return nil, fmt.Errorf("generic source: secret (%s): %w", cfg.Secret.Describe(), err)
	}
	var previousKey []byte
	if !cfg.PreviousSecret.IsZero() {
		value, err := cfg.PreviousSecret.Reveal()
		if err == nil {
			previousKey, err = decodeSecret(value)
		}
		if err != nil {
			return nil, fmt.Errorf("generic source: previous_secret (%s): %w", cfg.PreviousSecret.Describe(), err)
		}
	}
	tol := cfg.Tolerance
	if tol == 0 {
		tol = DefaultTolerance
	}
	return &Source{key: key, previousKey: previousKey, tolerance: tol, keys: connectors.SourceKeys("")}, nil
}

// minKeyBytes is the shortest secret Standard Webhooks asks for ("24 to
// 64 bytes", random).
const minKeyBytes = 24

// ConfigWarnings implements connectors.ConfigWarner: a secret (or
// previous_secret) shorter than Standard Webhooks asks for, which can be
// guessed, or a typed password read as base64.
func (s *Source) ConfigWarnings() []string {
	var out []string
	for _, k := range []struct {
		name string
		key  []byte
	}{{"secret", s.key}, {"previous_secret", s.previousKey}} {
		if k.key != nil && len(k.key) < minKeyBytes {
			out = append(out, fmt.Sprintf("%s is %d bytes: Standard Webhooks asks for %d to 64 random bytes, written whsec_ and their base64 (a short or typed secret can be guessed; a sender that signs with the text itself, not its base64 decoding, is refused with 401)", s.keys.Key(k.name), len(k.key), minKeyBytes))
		}
	}
	return out
}

var _ connectors.ConfigWarner = (*Source)(nil)

// Tolerance is the timestamp tolerance in effect.
func (s *Source) Tolerance() time.Duration { return s.tolerance }

// receivedAt is when w was received: w.Received, else the source's clock.
func (s *Source) receivedAt(w *connectors.Webhook) time.Time {
	switch {
	case !w.Received.IsZero():
		return w.Received
	case s.Now != nil:
		return s.Now()
	}
	return time.Now()
}

// Verify checks the delivery's Standard Webhooks signature against the raw
// body, using w.Received as the current time when it is set. Errors wrap
// connectors.ErrUnauthorized.
func (s *Source) Verify(w *connectors.Webhook) error {
	if w == nil {
		return fmt.Errorf("%w: no delivery", connectors.ErrUnauthorized)
	}
	now := s.receivedAt(w)
	err := verifyWithKey(s.key, w.Header, w.Body, now, s.tolerance)
	if err != nil && s.previousKey != nil && verifyWithKey(s.previousKey, w.Header, w.Body, now, s.tolerance) == nil {
		w.PreviousSecret = true
		return nil
	}
	if errors.Is(err, errNoMatch) {
		// What to check, for the operator (the log's line only: the
		// sender is answered without it, connectors.Terse): names of
		// settings and of headers only, never a secret or the signature
		// that was expected.
		names := headerNames(w.Header)
		secrets := "the secret in " + s.keys.Key("secret")
		if s.previousKey != nil {
			secrets = "the secret in " + s.keys.Key("secret") + " or " + s.keys.Key("previous_secret")
		}
		return connectors.Advised(err, fmt.Sprintf("check that the sender signs with %s, and signs the %s and %s it sends and the body byte for byte as sent", secrets, names.id, names.timestamp))
	}
	return err
}

// Parse turns a verified delivery into its deal events, in body order. Errors
// wrap connectors.ErrMalformed and name every offending field by its JSON
// path ("[2].deal.line_items[0].quantity" within a batch).
//
// An event whose occurred_at is later than now by more than the
// signature's tolerance is refused: the newest event of a deal by that
// time is its state, so a time in the future (a sender's clock ahead)
// would outrank every later event of the deal, a real loss included.
func (s *Source) Parse(w *connectors.Webhook) ([]model.DealEvent, error) {
	if w == nil {
		return nil, fmt.Errorf("%w: no delivery", connectors.ErrMalformed)
	}
	evs, err := ParseEvents(w.Body, messageID(w.Header))
	if err != nil {
		return nil, err
	}
	now := s.receivedAt(w)
	var p problems
	for _, ev := range evs {
		if ahead := ev.OccurredAt.Sub(now); ahead > s.tolerance {
			p.add(fmt.Sprintf("event %q: occurred_at", ev.EventID), fmt.Sprintf("%s is %s ahead of this server's clock, more than the %s the signature allows: "+
				"the sender's clock is ahead, or occurred_at is not when the deal changed (the newest event of a deal by occurred_at is its state, so a time to come would outrank every later event of the deal)",
				ev.OccurredAt.UTC().Format(time.RFC3339), wording.Duration(ahead.Round(time.Second)), wording.Duration(s.tolerance)))
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return evs, nil
}
