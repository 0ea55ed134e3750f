package connectors

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// APIError is a failed call to a CRM or ERP API, carrying what is needed to
// decide on a retry. Connectors return it (wrapped or not) for every non-2xx
// answer; the activities turn it into a Temporal error in one place.
type APIError struct {
	Service    string // "sandbox", "xero", ...
	Op         string // "create invoice", ...
	StatusCode int
	// Message is the vendor's own error text; Field the element it names, if any.
	Message string
	Field   string
	// RetryAfter is the delay the vendor asked for (429/503), 0 if none.
	RetryAfter time.Duration
	// RetryAfterGiven says the answer carried a valid Retry-After header
	// (LookupRetryAfter), even one that asks for no wait ("0", a date
	// past): RetryAfter alone cannot tell that from no header.
	RetryAfterGiven bool
	// Credentials says the answer refused the credentials whatever its
	// status (an OAuth token endpoint's 400 invalid_grant or
	// invalid_client, RFC 6749 5.2): classified Unauthorized.
	Credentials bool
	// Unsure says the answer, to a write, does not tell whether the write
	// was carried out: a gateway's 502, 504, 520 or 524, or a 503 without
	// Retry-After (some gateways answer so after forwarding the request,
	// while the vendor goes on with it).
	// Set by UnsureAnswer; a 503 with a valid Retry-After, "0" or a date
	// past included (RetryAfterGiven), is a refusal.
	Unsure bool
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: HTTP %d", e.Service, e.Op, e.StatusCode)
	if e.Field != "" {
		fmt.Fprintf(&b, " on %s", e.Field)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// LocalFileError is a failure of a file dealsync keeps for a connector (a
// token or link store): not the ERP's or the CRM's doing, but the worker
// host's (a permission, a full disk, a damaged file). It is retried like an
// outage, since it mends once the file is fixed, and typed apart so that
// operators look at the host.
type LocalFileError struct {
	What string // "token store", "link store"
	Path string
	Err  error
}

func (e *LocalFileError) Error() string { return e.What + " " + e.Path + ": " + e.Err.Error() }

func (e *LocalFileError) Unwrap() error { return e.Err }

// ErrPermanent marks a failure that retrying cannot fix (a request that
// cannot be built from the invoice, an answer that breaks the contract).
// Connectors wrap it; Classify reports such errors as Permanent.
var ErrPermanent = errors.New("permanent failure")

// Class is how a failure should be handled.
type Class int

const (
	// Retry with the usual backoff: 5xx, timeouts, connection errors.
	Retry Class = iota
	// RetryAfter: the vendor rate-limited us and said when to come back.
	RetryAfter
	// Permanent: retrying cannot help (400, 404, 409, 422, ...).
	Permanent
	// Unauthorized: credentials rejected (401/403) even after a refresh.
	Unauthorized
)

// Classify decides how err should be retried. Errors that are not APIErrors
// (network, timeouts, decode failures of a truncated answer) are retried.
func Classify(err error) (Class, time.Duration) {
	if errors.Is(err, ErrPermanent) {
		return Permanent, 0
	}
	var unknown *OutcomeUnknownError
	if errors.As(err, &unknown) && unknown.Wait > 0 {
		return RetryAfter, min(unknown.Wait, MaxRetryAfter)
	}
	var api *APIError
	if !errors.As(err, &api) {
		return Retry, 0
	}
	switch {
	case api.StatusCode == http.StatusTooManyRequests, api.StatusCode >= 500, retryable4xx[api.StatusCode]:
		if api.RetryAfter > 0 {
			return RetryAfter, min(api.RetryAfter, MaxRetryAfter)
		}
		return Retry, 0
	case api.Credentials, api.StatusCode == http.StatusUnauthorized, api.StatusCode == http.StatusForbidden:
		return Unauthorized, 0
	default:
		return Permanent, 0
	}
}

// retryable4xx are the 4xx answers that say "not now" rather than "not
// this": 408 Request Timeout, 423 Locked (HubSpot: a record locked by
// concurrent changes, "wait at least 2 seconds"), 425 Too Early, and
// HubSpot's 477 Migration in Progress (with a Retry-After of up to a day).
var retryable4xx = map[int]bool{http.StatusRequestTimeout: true, http.StatusLocked: true, http.StatusTooEarly: true, 477: true}

// MaxRetryAfter bounds a vendor's Retry-After: a later retry (a date far
// ahead, a month in seconds) is made after this, and is answered again. A
// day honours the daily limits (Xero's day limit answers with the time
// until the next day) and keeps a run from waiting past any run timeout
// on the vendor's word alone.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads a Retry-After header: delta seconds or an HTTP date.
// It is 0 both for no (or no valid) header and for one that asks for no
// wait ("0", a date past): LookupRetryAfter tells them apart.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	d, _ := LookupRetryAfter(h, now)
	return d
}

// LookupRetryAfter reads a Retry-After header as ParseRetryAfter does, and
// reports whether h has a valid one: delta seconds (not negative) or an
// HTTP date, "0" and a date before now included (which wait 0). A header
// that is neither ("soon", "-1") is as none.
func LookupRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	// Delta seconds are digits (RFC 9110), a fraction tolerated; not
	// "Inf", "1e400" or "0x10", which ParseFloat takes.
	if whole, frac, _ := strings.Cut(v, "."); isDigits(whole) && (frac == "" || isDigits(frac)) {
		if secs, err := strconv.ParseFloat(v, 64); err == nil && secs <= MaxRetryAfter.Seconds() {
			return time.Duration(secs * float64(time.Second)), true
		}
		return MaxRetryAfter, true // more than a day: Classify waits a day at most
	}
	if t, err := http.ParseTime(v); err == nil {
		if t.After(now) {
			return t.Sub(now), true
		}
		return 0, true
	}
	return 0, false
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Advised is err with advice for the operator: what to check, by the
// names of settings and headers ("check that the sender signs with the
// secret in connections.shop.source.secret"). Its text is err's, then
// ": " and the advice: the intake's log line says both. The answer to
// the sender, whom a refused signature or credential leaves
// unauthenticated, says Terse's: err's alone, as Stripe's or GitHub's
// receivers answer, naming none of this installation's settings (nor
// whether a previous secret is being rotated out).
func Advised(err error, advice string) error { return &advisedError{err: err, advice: advice} }

type advisedError struct {
	err    error
	advice string
}

func (e *advisedError) Error() string { return e.err.Error() + ": " + e.advice }
func (e *advisedError) Unwrap() error { return e.err }

// Terse is err's text without the advice Advised gave it (wherever err
// wraps it): for the answer to a sender not authenticated.
func Terse(err error) string {
	text := err.Error()
	var a *advisedError
	if errors.As(err, &a) {
		text = strings.Replace(text, a.Error(), a.err.Error(), 1)
	}
	return text
}
