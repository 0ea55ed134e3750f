package erpkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/dealsync/dealsync/connectors"
)

// Mask replaces credentials in planned requests.
const Mask = "********"

const (
	maxResponse     = 8 << 20
	maxErrorMessage = 1024
)

// Tokens gives access tokens. *RefreshingSource and oauth2's sources fit.
type Tokens interface {
	Token(ctx context.Context) (*oauth2.Token, error)
}

// invalidator is implemented by token sources that can be told a token was
// rejected (RefreshingSource, CachedSource).
type invalidator interface{ Invalidate(accessToken string) }

// Client sends one vendor's API calls. Every call carries a bearer token;
// a 401 is answered by one refresh and one retry, and a second 401 is an
// *connectors.APIError (Unauthorized, not retried) naming the connection.
// Every other non-2xx answer is an *connectors.APIError with the vendor's
// own message and element (ErrorDetail) and the advertised Retry-After.
// A call that could not get a token is a *TokenError (IsTokenFailure).
type Client struct {
	Service    string // "xero", ...
	Connection string // says which account, for people: `tenant "…"`
	HTTP       *http.Client
	Tokens     Tokens
	Timeout    time.Duration
	// Header is added to every call (xero-tenant-id, Accept, ...).
	Header http.Header
	// ErrorDetail reads the vendor's message and element from an error
	// answer; nil keeps the body's first bytes as the message.
	ErrorDetail func(status int, h http.Header, body []byte) (msg, field string)
	// RetryAfter reads the delay from a 429/503 answer; nil means the
	// Retry-After header only. Whether the answer has a valid Retry-After
	// header (APIError.RetryAfterGiven) is read from the header either way.
	RetryAfter func(h http.Header) time.Duration
	// AccessAdvice says what to check when the API answers 401 or 403
	// (status, with its body: a vendor's error code may tell which
	// refusal it is), instead of the advice for an app a person authorized
	// (authorize the target's app again, check its scopes); "" or nil
	// keeps that. The advice names the target's settings, not the
	// connection's: the step's failure names the connection the run
	// belongs to, whose CRM is not the one that refused.
	AccessAdvice func(status int, body []byte) string
	// Keys name the target's settings in that advice
	// (targets.<name>.client_id); zero: as the target's.
	Keys connectors.Keys
}

// keys are c.Keys, or the target's without a block.
func (c *Client) keys() connectors.Keys {
	if c.Keys.IsZero() {
		return connectors.TargetKeys("")
	}
	return c.Keys
}

// Call is one request.
type Call struct {
	Op string // "create invoice", for errors
	// Read marks a request that changes nothing although its method is
	// not GET (a query sent as POST): no write of unknown outcome.
	Read   bool
	Method string
	URL    string
	Header http.Header
	Body   []byte // JSON, sent with Content-Type application/json
}

// Response is a 2xx answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode unmarshals the answer's JSON body into v.
func (r *Response) Decode(service, op string, v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("%s %s: decoding answer: %w", service, op, err)
	}
	return nil
}

func (c *Client) request(ctx context.Context, call Call) (*http.Request, error) {
	var body io.Reader
	if call.Body != nil {
		body = bytes.NewReader(call.Body)
	}
	req, err := http.NewRequestWithContext(ctx, call.Method, call.URL, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range c.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	for k, vs := range call.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if call.Body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "dealsync")
	return req, nil
}

// Plan is the request Do would send, with the bearer token masked.
func (c *Client) Plan(call Call) (connectors.Request, error) {
	req, err := c.request(context.Background(), call)
	if err != nil {
		return connectors.Request{}, err
	}
	req.Header.Set("Authorization", "Bearer "+Mask)
	return connectors.Request{Method: req.Method, URL: req.URL.String(), Header: req.Header, Body: call.Body}, nil
}

// Do sends the call.
//
// A failure to get or refresh the access token (the token endpoint's
// refusal or outage, the token store's failure) is a *TokenError wrapping
// the token source's error: the call was not sent, so what the error says
// (a 400, a 404) is not an answer to it (IsTokenFailure). Its message and
// class (connectors.Classify) are the wrapped error's.
//
// A write that gets no answer (a timeout, a lost connection) or a gateway's
// 502/504 without Retry-After may still be carried out by the vendor: it is
// a *connectors.OutcomeUnknownError, or an APIError whose RetryAfter is the
// client's Timeout, so that the step's retry looks for it after the vendor
// has had that long (connectors.UnsureWrite). A call ends
// connectors.StepMargin before the step's deadline, so that it is this
// error, not the step's timeout, that the step reports.
func (c *Client) Do(ctx context.Context, call Call) (*Response, error) {
	if call.write() && !connectors.TimeForACall(ctx, 0) {
		return nil, fmt.Errorf("%s %s: %w", c.Service, call.Op, connectors.ErrNoTimeLeft)
	}
	if timeout := connectors.CallTimeout(ctx, c.Timeout); timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.Tokens.Token(ctx)
		if err != nil {
			return nil, &TokenError{Err: err}
		}
		req, err := c.request(ctx, call)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", c.Service, call.Op, err)
		}
		tok.SetAuthHeader(req)
		hc := c.HTTP
		if hc == nil {
			hc = http.DefaultClient
		}
		resp, err := hc.Do(req)
		if err != nil {
			// Network: retried; a write only after the vendor has had its time.
			return nil, connectors.UnsureWrite(call.write(), fmt.Errorf("%s %s: %w", c.Service, call.Op, err), c.unsureWait())
		}
		if call.write() {
			// A query sent as POST (Read) made nothing, whatever its
			// answer: marked, a later failure of the step would say that
			// it may have written.
			connectors.WriteAnswered(ctx, call.Method, resp)
		}
		body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			if inv, ok := c.Tokens.(invalidator); ok {
				inv.Invalidate(tok.AccessToken)
				continue
			}
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return nil, connectors.UnsureAnswer(call.write(), c.apiError(call.Op, resp, body, attempt > 0), c.unsureWait())
		}
		if readErr != nil {
			return nil, fmt.Errorf("%s %s: reading answer: %w", c.Service, call.Op, readErr)
		}
		if len(body) > maxResponse {
			// Asking again gets the same answer (the stored one, for a
			// write's key): permanent, not retried for as long as the run
			// lasts.
			msg := fmt.Sprintf("%s %s: answer larger than %d bytes, which dealsync does not read", c.Service, call.Op, maxResponse)
			if call.write() {
				msg += fmt.Sprintf("; the %s answered the write with success, so it may have been carried out: look for it there", c.Service)
			}
			return nil, &tooLargeError{msg: msg}
		}
		return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
	}
}

// TokenError is Client.Do's error when getting or refreshing the access
// token failed, so that the call itself was never sent. It wraps the
// token source's error (often a *connectors.APIError of the token
// endpoint) and says exactly what that error says: errors.As and
// errors.Is, and so connectors.Classify, see through it. A target that
// reads an error's status as the API's answer to its call ("no such
// record", "this write was refused") checks IsTokenFailure first: a token
// endpoint's 400 or 404 says nothing of the record.
type TokenError struct {
	Err error
}

func (e *TokenError) Error() string { return e.Err.Error() }

func (e *TokenError) Unwrap() error { return e.Err }

// IsTokenFailure reports whether err (or an error it wraps) is a
// *TokenError: the call failed to get an access token and was not sent.
func IsTokenFailure(err error) bool {
	var te *TokenError
	return errors.As(err, &te)
}

// tooLargeError is Do's error for a 2xx answer larger than maxResponse:
// permanent (connectors.ErrPermanent), but not the API's refusal
// (Refused), since it answered with success.
type tooLargeError struct{ msg string }

func (e *tooLargeError) Error() string { return e.msg }

func (e *tooLargeError) Is(target error) bool { return target == connectors.ErrPermanent }

// Refused reports whether err is the API's refusal of the call, for good
// (connectors.Classify: Permanent), not a failure to get a token for it
// nor a success answer too large to read: what a target may read as "the
// ERP said no" to what it sent.
func Refused(err error) bool {
	cl, _ := connectors.Classify(err)
	var large *tooLargeError
	return cl == connectors.Permanent && !IsTokenFailure(err) && !errors.As(err, &large)
}

func (call Call) write() bool { return !call.Read && connectors.IsWrite(call.Method) }

// unsureWait is how long a write of unknown outcome waits before its retry:
// the time a call may take.
func (c *Client) unsureWait() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultUnsureWait
}

// DefaultUnsureWait is unsureWait for a client without a Timeout.
const DefaultUnsureWait = 30 * time.Second

func (c *Client) apiError(op string, resp *http.Response, body []byte, refreshed bool) *connectors.APIError {
	var msg, field string
	if c.ErrorDetail != nil {
		msg, field = c.ErrorDetail(resp.StatusCode, resp.Header, body)
	}
	if msg == "" {
		msg = Truncate(string(body))
	}
	// given: the answer has a valid Retry-After header, even "0" or a date
	// past (a 503's refusal, not a gateway's: connectors.UnsureAnswer),
	// whatever delay c.RetryAfter reads.
	delay, given := connectors.LookupRetryAfter(resp.Header, time.Now())
	if c.RetryAfter != nil {
		delay = c.RetryAfter(resp.Header)
	}
	advice := func(status int, def string) string {
		if c.AccessAdvice != nil {
			if a := c.AccessAdvice(status, body); a != "" {
				return a
			}
		}
		return def
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		why := "the access token was rejected"
		if refreshed {
			why = "the access token was rejected even after a refresh"
		}
		keys := c.keys()
		msg = fmt.Sprintf("%s for %s: %s%s", why, c.Connection, advice(resp.StatusCode, "authorize the app for it again, by the authorization-code flow with "+keys.Key("client_id")+", "+
			`and write the new refresh token into `+keys.Key("token_file")+` as {"refresh_token":"<new token>"}`), parenthesized(msg))
	case http.StatusForbidden:
		msg = fmt.Sprintf("access denied for %s: %s%s", c.Connection, advice(resp.StatusCode, "check the scopes of the app of "+c.keys().Key("client_id")+" and that it is still connected to it"), parenthesized(msg))
	}
	return &connectors.APIError{Service: c.Service, Op: op, StatusCode: resp.StatusCode, Message: msg, Field: field,
		RetryAfter: delay, RetryAfterGiven: given}
}

// Truncate shortens a vendor message for errors and keeps it valid UTF-8.
func Truncate(s string) string {
	if len(s) > maxErrorMessage {
		s = s[:maxErrorMessage]
	}
	return strings.TrimSpace(strings.ToValidUTF8(s, ""))
}

// parenthesized is " (msg)", or "" for an answer that said nothing (a
// proxy's empty 401).
func parenthesized(msg string) string {
	if strings.TrimSpace(msg) == "" {
		return ""
	}
	return " (" + msg + ")"
}
