package connectors

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	api := func(status int, retryAfter time.Duration) error {
		return fmt.Errorf("wrapped: %w", &APIError{Service: "erp", Op: "create invoice", StatusCode: status, RetryAfter: retryAfter})
	}
	cases := []struct {
		name  string
		err   error
		class Class
		delay time.Duration
	}{
		{"400", api(400, 0), Permanent, 0},
		{"422", api(422, 0), Permanent, 0},
		{"404", api(404, 0), Permanent, 0},
		{"401", api(401, 0), Unauthorized, 0},
		{"403", api(403, 0), Unauthorized, 0},
		{"429 with Retry-After", api(429, 7*time.Second), RetryAfter, 7 * time.Second},
		{"429 without Retry-After", api(429, 0), Retry, 0},
		{"503 with Retry-After", api(503, 2*time.Second), RetryAfter, 2 * time.Second},
		// A valid Retry-After asking for no wait ("0", a date past): the usual backoff.
		{"503 with Retry-After 0", &APIError{StatusCode: 503, RetryAfterGiven: true}, Retry, 0},
		{"429 with Retry-After 0", &APIError{StatusCode: 429, RetryAfterGiven: true}, Retry, 0},
		{"500", api(500, 0), Retry, 0},
		{"408", api(408, 0), Retry, 0},
		{"423 locked (HubSpot: wait and retry)", api(423, 0), Retry, 0},
		{"425 too early", api(425, 0), Retry, 0},
		{"477 migration in progress (HubSpot) with Retry-After", api(477, 3*time.Hour), RetryAfter, 3 * time.Hour},
		{"429 asking for a month", api(429, 30*24*time.Hour), RetryAfter, MaxRetryAfter},
		{"409", api(409, 0), Permanent, 0},
		{"OAuth 400 invalid_grant", &APIError{Service: "crm", Op: "oauth token", StatusCode: 400, Credentials: true}, Unauthorized, 0},
		{"timeout", context.DeadlineExceeded, Retry, 0},
		{"connection refused", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), Retry, 0},
		{"permanent sentinel", fmt.Errorf("bad request body: %w", ErrPermanent), Permanent, 0},
	}
	for _, c := range cases {
		class, delay := Classify(c.err)
		if class != c.class || delay != c.delay {
			t.Errorf("%s: got %v %v, want %v %v", c.name, class, delay, c.class, c.delay)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	h := http.Header{}
	if got := ParseRetryAfter(h, now); got != 0 {
		t.Errorf("absent: %v", got)
	}
	h.Set("Retry-After", "30")
	if got := ParseRetryAfter(h, now); got != 30*time.Second {
		t.Errorf("seconds: %v", got)
	}
	h.Set("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat))
	if got := ParseRetryAfter(h, now); got != 90*time.Second {
		t.Errorf("HTTP date: %v", got)
	}
	h.Set("Retry-After", "soon")
	if got := ParseRetryAfter(h, now); got != 0 {
		t.Errorf("garbage: %v", got)
	}
}

// LookupRetryAfter tells a valid Retry-After that asks for no wait ("0",
// a date past) from none: ParseRetryAfter says 0 for both.
func TestLookupRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name, value string // "" sends no header
		want        time.Duration
		given       bool
	}{
		{"absent", "", 0, false},
		{"zero", "0", 0, true},
		{"zero with spaces", " 0 ", 0, true},
		{"seconds", "30", 30 * time.Second, true},
		{"date ahead", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"date now", now.Format(http.TimeFormat), 0, true},
		{"date past", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"garbage", "soon", 0, false},
		{"negative", "-1", 0, false},
		{"a fraction", "1.5", 1500 * time.Millisecond, true},
		{"infinity", "Inf", 0, false},
		{"an exponent", "1e400", 0, false},
		{"hexadecimal", "0x10", 0, false},
		{"more than a day", "99999999999", MaxRetryAfter, true},
	} {
		h := http.Header{}
		if c.value != "" {
			h.Set("Retry-After", c.value)
		}
		got, given := LookupRetryAfter(h, now)
		if got != c.want || given != c.given {
			t.Errorf("%s (%q): %v, given %v; want %v, given %v", c.name, c.value, got, given, c.want, c.given)
		}
		if p := ParseRetryAfter(h, now); p != c.want {
			t.Errorf("%s (%q): ParseRetryAfter %v, want %v", c.name, c.value, p, c.want)
		}
	}
}

func TestAPIErrorMessageCarriesVendorText(t *testing.T) {
	err := &APIError{Service: "xero", Op: "create invoice", StatusCode: 400, Message: "Account code '999' is not a valid code", Field: "LineItems[0].AccountCode"}
	want := "xero create invoice: HTTP 400 on LineItems[0].AccountCode: Account code '999' is not a valid code"
	if err.Error() != want {
		t.Fatalf("got %q", err.Error())
	}
}

func TestIsDigits(t *testing.T) {
	if !IsDigits("0123") || IsDigits("") || IsDigits("12a") || IsDigits("1 2") || IsDigits("١٢") {
		t.Error("IsDigits")
	}
}

// A write whose TLS handshake failed (a certificate the client does not
// trust) was never sent: it is not an unsure write, whose retry waits.
func TestUnsureWriteOfAFailedTLSHandshake(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	_, err := http.Post(srv.URL, "application/json", nil) // the default client does not trust the test CA
	if err == nil {
		t.Fatal("the untrusted certificate was accepted")
	}
	var unsure *OutcomeUnknownError
	if got := UnsureWrite(true, err, time.Minute); errors.As(got, &unsure) {
		t.Errorf("%v: an unsure write, want a request never sent", got)
	}
	if got := UnsureWrite(true, errors.New("read: connection reset by peer"), time.Minute); !errors.As(got, &unsure) {
		t.Errorf("a reset after sending: %v, want an unsure write", got)
	}
}

// A gateway that gave up on the vendor (502, 504, Cloudflare's 520 and
// 524) answers a write whose outcome is unknown: it is retried after at
// least the write's time, whatever shorter Retry-After the gateway gave
// (it retried a 504 with "Retry-After: 1" after a second, and a 524 at
// once, while the vendor could still be making the invoice). A longer one
// is kept; reads, and other statuses, are left as they are.
func TestUnsureAnswerWaitsForTheWrite(t *testing.T) {
	const wait = 20 * time.Second
	for _, c := range []struct {
		write      bool
		status     int
		retryAfter time.Duration
		want       time.Duration
	}{
		{true, 504, 0, wait},
		{true, 504, time.Second, wait},
		{true, 502, time.Minute, time.Minute},
		{true, 520, 0, wait},
		{true, 524, 0, wait},
		{true, 503, 0, wait},                  // a gateway's, the write gone on behind it?
		{true, 503, time.Second, time.Second}, // the vendor's refusal
		{false, 503, 0, 0},
		{true, 500, 0, 0},
		{false, 504, 0, 0},
		{false, 524, time.Second, time.Second},
	} {
		api := UnsureAnswer(c.write, &APIError{StatusCode: c.status, RetryAfter: c.retryAfter, RetryAfterGiven: c.retryAfter > 0}, wait)
		if api.RetryAfter != c.want {
			t.Errorf("write %v, %d with Retry-After %v: waits %v, want %v", c.write, c.status, c.retryAfter, api.RetryAfter, c.want)
		}
		// Unsure: a write's answer that leaves its outcome open, a
		// gateway's (502, 504, 520, 524), or a 503 without Retry-After.
		if unsure := c.write && (c.status == 503 && c.retryAfter == 0 || c.status == 502 || c.status == 504 || c.status == 520 || c.status == 524); api.Unsure != unsure {
			t.Errorf("write %v, %d with Retry-After %v: Unsure %v, want %v", c.write, c.status, c.retryAfter, api.Unsure, unsure)
		}
	}
}

// A 503 to a write that carries a valid Retry-After asking for no wait
// ("Retry-After: 0", or a date past: RetryAfter 0, RetryAfterGiven) is
// the application's own "not now", a refusal that sent nothing: not
// Unsure, and retried with the usual backoff, not after the target's
// timeout. Before, it was taken for a gateway's 503 without Retry-After.
// A gateway's 504 with "Retry-After: 0" still waits for the write.
func TestUnsureAnswerTakesA503WithRetryAfterZeroForARefusal(t *testing.T) {
	const wait = 20 * time.Second
	api := UnsureAnswer(true, &APIError{StatusCode: 503, RetryAfterGiven: true}, wait)
	if api.Unsure || api.RetryAfter != 0 {
		t.Errorf("503 with Retry-After 0 to a write: Unsure %v, waits %v; want a refusal (not Unsure), no wait of its own", api.Unsure, api.RetryAfter)
	}
	if class, d := Classify(api); class != Retry || d != 0 {
		t.Errorf("503 with Retry-After 0 to a write: classified %v after %v, want Retry with the usual backoff", class, d)
	}
	api = UnsureAnswer(true, &APIError{StatusCode: 504, RetryAfterGiven: true}, wait)
	if !api.Unsure || api.RetryAfter != wait {
		t.Errorf("504 with Retry-After 0 to a write: Unsure %v, waits %v; want a gateway's answer (Unsure) that waits %v", api.Unsure, api.RetryAfter, wait)
	}
	// Without the header, as before: a gateway's, perhaps after the write.
	api = UnsureAnswer(true, &APIError{StatusCode: 503}, wait)
	if !api.Unsure || api.RetryAfter != wait {
		t.Errorf("503 without Retry-After to a write: Unsure %v, waits %v; want Unsure, waiting %v", api.Unsure, api.RetryAfter, wait)
	}
}

// The wait after a write of unknown outcome (the target's timeout) is
// bounded like a vendor's Retry-After: a timeout of two days waited two
// days, past the 24 hours local calls are retried.
func TestUnknownOutcomeWaitIsBounded(t *testing.T) {
	if c, d := Classify(&OutcomeUnknownError{Err: errors.New("no answer"), Wait: 48 * time.Hour}); c != RetryAfter || d != MaxRetryAfter {
		t.Errorf("48h wait: %v after %v, want RetryAfter %v", c, d, MaxRetryAfter)
	}
	if c, d := Classify(&OutcomeUnknownError{Err: errors.New("no answer"), Wait: 30 * time.Second}); c != RetryAfter || d != 30*time.Second {
		t.Errorf("30s wait: %v after %v", c, d)
	}
}

// An advised refusal says its advice in its text (the log's) and not in
// Terse's (the sender's), wrapped or not; it still is what it wraps.
func TestAdvisedIsTerseForTheSender(t *testing.T) {
	refusal := fmt.Errorf("%w: wrong endpoint token", ErrUnauthorized)
	err := Advised(refusal, "check that the URL carries ?token= with the value of connections.sf.source.endpoint_token")
	wrapped := fmt.Errorf("salesforce: %w (delivery 7)", err)
	for _, c := range []struct {
		err        error
		log, terse string
	}{
		{err, "unauthorized: wrong endpoint token: check that the URL carries ?token= with the value of connections.sf.source.endpoint_token", "unauthorized: wrong endpoint token"},
		{wrapped, "salesforce: unauthorized: wrong endpoint token: check that the URL carries ?token= with the value of connections.sf.source.endpoint_token (delivery 7)", "salesforce: unauthorized: wrong endpoint token (delivery 7)"},
		{refusal, "unauthorized: wrong endpoint token", "unauthorized: wrong endpoint token"},
	} {
		if got := c.err.Error(); got != c.log {
			t.Errorf("Error() = %q, want %q", got, c.log)
		}
		if got := Terse(c.err); got != c.terse {
			t.Errorf("Terse = %q, want %q", got, c.terse)
		}
		if !errors.Is(c.err, ErrUnauthorized) {
			t.Errorf("%v: not ErrUnauthorized", c.err)
		}
	}
}
