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
		api := UnsureAnswer(c.write, &APIError{StatusCode: c.status, RetryAfter: c.retryAfter}, wait)
		if api.RetryAfter != c.want {
			t.Errorf("write %v, %d with Retry-After %v: waits %v, want %v", c.write, c.status, c.retryAfter, api.RetryAfter, c.want)
		}
		if unsure := c.write && c.status == 503 && c.retryAfter == 0; api.Unsure != unsure {
			t.Errorf("write %v, %d with Retry-After %v: Unsure %v, want %v", c.write, c.status, c.retryAfter, api.Unsure, unsure)
		}
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
