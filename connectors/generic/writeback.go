package generic

// The write-back of the generic source: an outgoing webhook. A CRM that
// sends dealsync its deals the Standard Webhooks way is told each deal's
// invoice the same way, by a signed POST to the URL it gives
// (source.write_back.url):
//
//	POST https://crm.internal/dealsync/invoices
//	Content-Type: application/json
//	webhook-id:        wb_<32 hex digits>            (the same on every attempt)
//	webhook-timestamp: 1792483200                    (the attempt's time)
//	webhook-signature: v1,<base64> [v1,<base64>]     (one per signing secret)
//
//	{"type":"invoice.synced","deal_id":"D-1001",
//	 "invoice":{"id":"INV-1","number":"2026-0042","url":"https://erp.example/invoices/INV-1"}}
//
// A connection without write_back.url has no write-back at all: Build
// returns a plain *Source, which is no connectors.WriteBacker, so that its
// runs have no write-back step.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/secret"
)

// WriteBackConfig is the source's `write_back:` block: where and how each
// deal's invoice is POSTed back to the CRM.
type WriteBackConfig struct {
	// URL receives a signed POST for every run that made or found the
	// deal's invoice: https, or http to this machine's loopback. "" (the
	// default): nothing is written back.
	URL string `mapstructure:"url" validate:"omitempty,url,https_or_loopback"`
	// Secret signs the POST, "whsec_<base64>" as the source's secret, by
	// reference (env:NAME, file:PATH). Unset: the source's own secret
	// (and, while previous_secret is set, that one too: one signature
	// each), which the CRM already holds.
	Secret secret.Secret `mapstructure:"secret"`
	// Timeout bounds one POST. 0 means DefaultWriteBackTimeout.
	Timeout time.Duration `mapstructure:"timeout" validate:"gte=0"`
}

// DefaultWriteBackTimeout bounds a write-back POST when write_back.timeout
// is not set: a receiver should answer at once and do its work after
// (Standard Webhooks asks for an answer within 15 seconds).
const DefaultWriteBackTimeout = 15 * time.Second

// WriteBackType is the "type" of the write-back's body.
const WriteBackType = "invoice.synced"

// WritingSource is a generic source with a write-back (write_back.url): a
// connectors.WriteBacker. Build returns it only when the URL is set.
type WritingSource struct {
	*Source
	url     string // as configured
	shown   string // without user info and query, for messages
	keys    [][]byte
	ownKey  bool // write_back.secret, not the source's
	timeout time.Duration
	api     *crmkit.Client

	// Now is the clock of webhook-timestamp; nil means time.Now. Tests set it.
	Now func() time.Time
}

var (
	_ connectors.WriteBacker        = (*WritingSource)(nil)
	_ connectors.ConfigWarner       = (*WritingSource)(nil)
	_ connectors.WriteBackDescriber = (*WritingSource)(nil)
)

// Build is the registered constructor: the Source New makes, as a
// *WritingSource when write_back.url is set. Errors never contain a
// secret, nor the URL's user info or query.
func Build(cfg Config, env connectors.Env) (connectors.Source, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	s.keys = env.SourceKeys()
	wb := cfg.WriteBack
	if strings.TrimSpace(wb.URL) == "" {
		if !wb.Secret.IsZero() {
			return nil, errors.New("generic source: write_back.secret is set but write_back.url is not: set the URL the invoices are POSTed to, or remove the secret")
		}
		return s, nil
	}
	w, err := newWritingSource(s, wb, env)
	if err != nil {
		return nil, err
	}
	return w, nil
}

func newWritingSource(s *Source, wb WriteBackConfig, env connectors.Env) (*WritingSource, error) {
	const example = "https://crm.example.com/dealsync/invoices"
	u, err := erpkit.ParseConfiguredURL("generic source: write_back.url", strings.TrimSpace(wb.URL), example)
	if err != nil {
		return nil, err
	}
	shown := erpkit.ShownURL(u)
	switch {
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return nil, fmt.Errorf("generic source: write_back.url %q is not an http(s) URL: write it as %s", shown, example)
	case u.Scheme == "http" && !loopback(u.Hostname()):
		return nil, fmt.Errorf("generic source: write_back.url %q is http:// to another machine: the invoice and its signature would cross the network in clear; use https:// (http:// is taken only for this machine's loopback: localhost, 127.0.0.1, ::1)", shown)
	case wb.Timeout < 0:
		return nil, fmt.Errorf("generic source: write_back.timeout %s is negative", wording.Duration(wb.Timeout))
	}
	w := &WritingSource{Source: s, url: u.String(), shown: shown, timeout: wb.Timeout}
	if w.timeout == 0 {
		w.timeout = DefaultWriteBackTimeout
	}
	if wb.Secret.IsZero() {
		w.keys = [][]byte{s.key}
		if s.previousKey != nil {
			w.keys = append(w.keys, s.previousKey)
		}
	} else {
		value, err := wb.Secret.Reveal()
		var key []byte
		if err == nil {
			key, err = decodeSecret(value)
		}
		if err != nil {
			return nil, fmt.Errorf("generic source: write_back.secret (%s): %w", wb.Secret.Describe(), err)
		}
		w.keys, w.ownKey = [][]byte{key}, true
	}
	w.api = &crmkit.Client{
		Service: "generic",
		// A redirect comes back as the answer (a permanent failure that
		// says where it points): the signed invoice goes to no other
		// address than the one configured.
		HTTP:      erpkit.NoRedirects(env.Client()),
		Permanent: permanent,
		APIError:  w.apiError,
	}
	return w, nil
}

// loopback reports whether host is this machine's loopback: localhost,
// 127.0.0.0/8 or ::1 (as config.IsLoopback, which a connector does not
// import).
func loopback(host string) bool {
	ip := net.ParseIP(host)
	return strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback())
}

func permanent(format string, args ...any) error {
	return fmt.Errorf("%w: generic: "+format, append([]any{connectors.ErrPermanent}, args...)...)
}

// WriteBackURL is write_back.url as messages show it (no user info, no
// query).
func (w *WritingSource) WriteBackURL() string { return w.shown }

// DescribeWriteBack implements connectors.WriteBackDescriber.
func (w *WritingSource) DescribeWriteBack() string {
	with := "the source's secret"
	switch {
	case w.ownKey:
		with = "write_back.secret"
	case len(w.keys) > 1:
		with = "the source's secret and previous_secret"
	}
	return "a POST to " + w.shown + " signed the Standard Webhooks way with " + with
}

// ConfigWarnings adds a short write_back.secret to the source's warnings.
func (w *WritingSource) ConfigWarnings() []string {
	out := w.Source.ConfigWarnings()
	if w.ownKey && len(w.keys[0]) < minKeyBytes {
		out = append(out, fmt.Sprintf("%s is %d bytes: Standard Webhooks asks for %d to 64 random bytes, written whsec_ and their base64 (a short or typed secret can be guessed)", w.Source.keys.Key("write_back.secret"), len(w.keys[0]), minKeyBytes))
	}
	return out
}

// WriteBackBody is the JSON body of the write-back of result to deal
// dealID of account ("" for a generic source, whose events name none:
// then left out). It holds nothing of the run, so that every attempt and
// every run of the same invoice sends the same bytes under the same
// webhook-id (WriteBackID).
func WriteBackBody(account, dealID string, result connectors.InvoiceResult) ([]byte, error) {
	type invoice struct {
		ID     string `json:"id"`
		Number string `json:"number,omitempty"`
		URL    string `json:"url,omitempty"`
	}
	return json.Marshal(struct {
		Type    string  `json:"type"`
		Account string  `json:"account,omitempty"`
		DealID  string  `json:"deal_id"`
		Invoice invoice `json:"invoice"`
	}{WriteBackType, account, dealID, invoice{result.InvoiceID, result.Number, result.URL}})
}

// WriteBackID is the webhook-id of the write-back of invoice invoiceID to
// deal dealID of account: "wb_" and 32 hex digits of a digest of the
// three, the same on every attempt and every run that writes that invoice
// back, so that a receiver that keeps the ids it took (as Standard
// Webhooks asks) takes it once.
func WriteBackID(account, dealID, invoiceID string) string {
	h := sha256.New()
	for _, f := range []string{"dealsync write-back v1", account, dealID, invoiceID} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return "wb_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// WriteBack implements connectors.WriteBacker: it POSTs the invoice to
// write_back.url, signed, and takes any 2xx answer. Every other answer is
// a *connectors.APIError, classified by connectors.Classify: a 429, a 5xx
// (and 408, 423, 425) retried, after its Retry-After when it gives one;
// a 401 or 403 Unauthorized, any other answer (a 4xx, a redirect, which
// is not followed) permanent, quoting the receiver's answer cut to 300
// bytes. A POST that got no answer (refused, timed out after
// write_back.timeout) is retried: its webhook-id is the same, so a
// receiver that took it already does not take it twice.
func (w *WritingSource) WriteBack(ctx context.Context, account, dealID string, result connectors.InvoiceResult) error {
	if result.InvoiceID == "" {
		return permanent("write back of deal %s: the run has no invoice id to send", dealID)
	}
	body, err := WriteBackBody(account, dealID, result)
	if err != nil {
		return permanent("write back of deal %s: encoding the body: %v", dealID, err)
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	h := http.Header{}
	if err := signHeader(h, w.keys, WriteBackID(account, dealID, result.InvoiceID), now(), body); err != nil {
		return permanent("write back of deal %s: %v", dealID, err)
	}
	h.Set("User-Agent", "dealsync")
	ctx, cancel := context.WithTimeout(ctx, connectors.CallTimeout(ctx, w.timeout))
	defer cancel()
	_, err = w.api.Do(ctx, crmkit.Call{Op: w.op(), Method: http.MethodPost, URL: w.url, Body: body, Header: h})
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		// Go's error quotes the URL with its query, which may hold a
		// credential, and it would be kept in the run's history: shown
		// without it (as crmkit.Client.Do words a failure to send).
		ue.URL = w.shown
		return fmt.Errorf("%s %s: %w", w.api.Service, w.op(), ue)
	}
	return err
}

func (w *WritingSource) op() string { return "write back to " + w.shown }

// apiError is the receiver's non-2xx answer, quoted (cut to 300 bytes).
func (w *WritingSource) apiError(op string, resp *http.Response, data []byte) *connectors.APIError {
	e := &connectors.APIError{Service: "generic", Op: op, StatusCode: resp.StatusCode, Message: crmkit.Short(string(data))}
	e.RetryAfter, e.RetryAfterGiven = connectors.LookupRetryAfter(resp.Header, time.Now())
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	switch code := resp.StatusCode; {
	case code >= 300 && code <= 399:
		to := "no Location"
		if loc, err := resp.Location(); err == nil {
			to = erpkit.ShownURL(loc)
		}
		e.Message = "the receiver answered with a redirect (to " + to + "), which dealsync does not follow, so that the signed invoice goes to no other address: set " +
			w.Source.keys.Key("write_back.url") + " to the address that takes the POST"
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		keys := w.Source.keys
		unset := keys.Key("write_back.secret")
		if keys.Block == "" {
			unset = "its write_back.secret" // not "the source's secret (the source's write_back.secret …)"
		}
		with := keys.Key("secret") + ", as " + unset + " is not set"
		if w.ownKey {
			with = keys.Key("write_back.secret")
		}
		// Not in parentheses: Keys.Key may name a variable in its own.
		e.Message += "; the receiver refused the request: does it check the signature with the secret dealsync signs with, " + with + "?"
	}
	return e
}
