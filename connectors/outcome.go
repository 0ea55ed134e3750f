package connectors

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dealsync/dealsync/internal/wording"
)

// A write (POST, PUT, PATCH) that got no answer may still be carried out by
// the vendor: the request reached it, and the client gave up waiting (its
// timeout, the step's deadline) or lost the connection. Retried at once,
// the step's look-up of the invoice cannot see one still being made, and
// its write meets the first one in flight, where vendors' idempotency keys
// are least dependable. So such a write is retried only after the vendor
// has had its time: OutcomeUnknownError carries that wait.

// TrackWrites returns a context whose calls say when a write of theirs
// was carried out (WriteDone), and a function that reports whether one
// was: a step whose failure came after (a read-back of what it wrote
// answered 429, a token to save) has made what it wrote, whatever that
// failure says. A write without an answer, or answered with a 5xx, says so
// in its own failure (OutcomeUnknownError, UnsureAnswer).
func TrackWrites(ctx context.Context) (context.Context, func() bool) {
	w := &writesDone{}
	return context.WithValue(ctx, writesDoneKey{}, w), w.done.Load
}

// WriteDone marks, in a context of TrackWrites, that a write (POST, PUT,
// PATCH, DELETE) was carried out. The HTTP clients of the targets mark
// their answers with WriteAnswered.
func WriteDone(ctx context.Context) {
	if w, ok := ctx.Value(writesDoneKey{}).(*writesDone); ok {
		w.done.Store(true)
	}
}

// WriteAnswered marks, in a context of TrackWrites, the answer resp to a
// request of method: a write answered with success, or with a redirect
// that may follow what it made (a 303; a 302 that is not WriteMoved: the
// Post/Redirect/Get of many frameworks, or a redirect of its own, which
// cannot be told apart; followed as a GET or not), may have been carried
// out, whatever that GET answers. A write answered with a 301, a 302 that
// is WriteMoved, a 307 or a 308 was not: those say the resource is
// elsewhere (RFC 9110, 15.4), and a GET there, should the client follow
// it, makes nothing.
func WriteAnswered(ctx context.Context, method string, resp *http.Response) {
	if !IsWrite(method) {
		return
	}
	// The write's own answer: resp, or the redirect that made it a GET.
	for resp.Request != nil && resp.Request.Method != method {
		if resp.Request.Response == nil {
			WriteDone(ctx) // a write turned into something else, by unknown means: it may be made
			return
		}
		resp = resp.Request.Response
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299, code == http.StatusSeeOther,
		code == http.StatusFound && !WriteMoved(resp):
		WriteDone(ctx)
	}
}

// WriteMoved reports whether resp, a redirect answering a write, says only
// that the resource is elsewhere, so that the write was not carried out:
// a 301 (Moved Permanently: no framework answers a create with it), or a
// 302 from http:// to https:// of the same host and path (the "use TLS"
// redirect, which servers send before they read the request). Any other
// 302 may be the Post/Redirect/Get after the write was made (to the
// record, to the list, to the same path with a '/' added or on another
// host or scheme, as an app behind a TLS proxy answers) and is not
// WriteMoved; nor is a 303, which says the write was handled (RFC 9110,
// 15.4.4).
func WriteMoved(resp *http.Response) bool {
	switch {
	case resp.StatusCode == http.StatusMovedPermanently:
		return true
	case resp.StatusCode != http.StatusFound || resp.Request == nil || resp.Request.URL == nil:
		return false
	}
	from := resp.Request.URL
	to, err := from.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return false
	}
	return strings.EqualFold(from.Scheme, "http") && strings.EqualFold(to.Scheme, "https") &&
		strings.EqualFold(from.Hostname(), to.Hostname()) && from.Path == to.Path
}

// SameOrigin reports whether a and b have one scheme, host and port (the
// scheme's when none is given).
func SameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && effectivePort(a) == effectivePort(b)
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

type writesDone struct{ done atomic.Bool }

type writesDoneKey struct{}

// OutcomeUnknownError is a write whose outcome is unknown. Classify retries
// it after Wait: the request's timeout (by then the vendor has carried the
// request out or dropped it), or the vendor's Retry-After when
// RetryAfter is set.
type OutcomeUnknownError struct {
	Err        error
	Wait       time.Duration
	RetryAfter bool
}

func (e *OutcomeUnknownError) Error() string {
	why := "the request timeout, by which the vendor has carried it out or dropped it"
	if e.RetryAfter {
		why = "the vendor's Retry-After"
	}
	return fmt.Sprintf("%v (the request may still be carried out: a retry, if one comes, waits %s, %s)", e.Err, wording.Duration(min(e.Wait, MaxRetryAfter)), why)
}

func (e *OutcomeUnknownError) Unwrap() error { return e.Err }

// StepMargin is how long before the step's deadline a call gives up: its
// failure then reaches the step as the connector's, with its wait, rather
// than as the step's timeout, which is retried at once.
const StepMargin = 2 * time.Second

// minCall is the least time a call is sent with.
const minCall = time.Second

// TimeForACall says whether ctx leaves a call sent after wait minCall
// before StepMargin: a write sent with less would run into the step's
// deadline, whose retry comes at once and meets the write in flight. The
// step then fails with a plain retryable error instead, before sending.
func TimeForACall(ctx context.Context, wait time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl)-wait-StepMargin >= minCall
}

// ErrNoTimeLeft is the failure of a write not sent for want of time in its
// step (TimeForACall): retried as usual while the step has time. It is
// most often the last attempt of a step whose retries used up the run's
// time (an outage): the activities add the failure of the attempt before.
var ErrNoTimeLeft = errors.New("not sent: too little of the step's time was left for another call (the attempt's activity_timeout, or the run's time for the step's retries, was nearly spent)")

// CallTimeout is how long one call may take within ctx: timeout (none when
// 0), cut to end StepMargin before ctx's deadline when that comes first.
// It is never cut below a second: a step with less left than that is
// ended by its own deadline.
func CallTimeout(ctx context.Context, timeout time.Duration) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return timeout
	}
	left := time.Until(dl) - StepMargin
	if left < minCall || (timeout > 0 && timeout <= left) {
		return timeout
	}
	return left
}

// IsWrite says whether a request of method may change something at the
// vendor (a read sent as POST, such as a query, is not: its caller says so).
func IsWrite(method string) bool {
	return method != http.MethodGet && method != http.MethodHead
}

// UnsureWrite is err, the failure of sending a request, as an
// *OutcomeUnknownError with wait when the request is a write that may have
// reached the vendor: anything but a failure to resolve or to connect.
// Other failures are returned as they are.
func UnsureWrite(write bool, err error, wait time.Duration) error {
	if err == nil || !write || notSent(err) {
		return err
	}
	return &OutcomeUnknownError{Err: err, Wait: wait}
}

// UnsureAnswer gives api, the answer to a write, a retry after at least
// wait when it says a gateway stopped waiting for the vendor (502, 504, and
// Cloudflare's 520 and 524), or is a 503 without Retry-After (some
// gateways answer so after forwarding the request: Heroku's request
// timeout, Envoy's upstream reset), which it marks Unsure: the write may
// have been carried out behind it, and a retry, or its look-up, sooner
// than the write takes could miss it. A 503 with a valid Retry-After
// (RetryAfterGiven), even "0" or a date past, is the vendor's own "not
// now", a refusal that sent nothing: it is left as it is, and retried
// after its Retry-After, or with the usual backoff when that is 0
// (Classify). A gateway's Retry-After (a 504 with "1") is the gateway's,
// not the vendor's: a longer one is kept, a shorter one raised to wait.
func UnsureAnswer(write bool, api *APIError, wait time.Duration) *APIError {
	if !write {
		return api
	}
	if api.StatusCode == http.StatusServiceUnavailable && api.RetryAfter == 0 && !api.RetryAfterGiven || gatewayGaveUp[api.StatusCode] {
		api.Unsure = true
	}
	if (gatewayGaveUp[api.StatusCode] || api.Unsure) && api.RetryAfter < wait {
		api.RetryAfter = wait
	}
	return api
}

// MayHaveActed says whether err leaves open that a write was carried out
// by the vendor: a write got no answer (an *OutcomeUnknownError, which
// UnsureWrite gives writes only), or an answer UnsureAnswer marked Unsure
// (a gateway's 502, 504, 520 or 524, a 503 without Retry-After, to a
// write). A read's 502 (a look-up before the write) is not one.
func MayHaveActed(err error) bool {
	var ou *OutcomeUnknownError
	if errors.As(err, &ou) {
		return true
	}
	var api *APIError
	return errors.As(err, &api) && api.Unsure
}

// gatewayGaveUp are the answers of a gateway that stopped waiting for the
// vendor, or lost its answer, while the vendor may still carry the request
// out: 502 Bad Gateway, 504 Gateway Timeout, Cloudflare's 520 (an empty or
// unknown answer from the origin) and 524 (the origin took too long).
var gatewayGaveUp = map[int]bool{http.StatusBadGateway: true, http.StatusGatewayTimeout: true, 520: true, 524: true}

// notSent reports whether err says the request never left: the host's name
// did not resolve, no connection was made, or the TLS handshake failed (a
// certificate not trusted or not of the host: the request is sent only
// after it).
func notSent(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	// Certificate errors come from the handshake only (a malformed record
	// may come later, with the request sent).
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verify) || errors.As(err, &unknownCA) || errors.As(err, &host) || errors.As(err, &invalid)
}

// earlierAnswer marks a write answered with what an earlier request of
// the same idempotency key made (EarlierAnswer).
type earlierAnswer struct{ error }

func (e earlierAnswer) Unwrap() error { return e.error }

// EarlierAnswer marks err, a target's refusal of a write's answer that is
// what an earlier request with the write's idempotency key made (a Xero
// Idempotency-Key, a QuickBooks requestid, answered with an invoice billed
// to another customer): the write made nothing now, though it was answered
// with success. Its text is err's.
func EarlierAnswer(err error) error { return earlierAnswer{err} }

// IsEarlierAnswer reports whether err was marked by EarlierAnswer.
func IsEarlierAnswer(err error) bool {
	var e earlierAnswer
	return errors.As(err, &e)
}
