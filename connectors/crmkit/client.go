// Package crmkit holds what the CRM source connectors (hubspot, salesforce,
// pipedrive) share: a JSON API call with a bearer token whose non-2xx
// answers become the vendor's *connectors.APIError, the turning of a failed
// OAuth token request into an APIError, and small helpers for ids, stage
// lists and webhook errors. The vendors' own error bodies stay in their
// packages, passed in as functions. Like every connector package it knows
// nothing of Temporal. (The ERP connectors have their own client in erpkit:
// it refreshes on a 401 and words 401/403 answers for people.)
package crmkit

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
	"github.com/dealsync/dealsync/connectors/erpkit"
)

// MaxResponse bounds how much of an API answer is read: a 2xx answer
// larger than this fails for good (Do), rather than be cut and then fail
// to decode at every retry.
const MaxResponse = 8 << 20

// Client sends one CRM vendor's JSON API calls.
type Client struct {
	Service string // "hubspot", ...: errors read "hubspot <op>: ..."
	HTTP    *http.Client
	// Permanent builds an error wrapping connectors.ErrPermanent, with the
	// vendor's prefix, for requests that cannot be built.
	Permanent func(format string, args ...any) error
	// APIError reads a non-2xx answer (the vendor's message and field).
	APIError func(op string, resp *http.Response, body []byte) *connectors.APIError
	// TokenMessage picks the message of a token endpoint's error answer; nil
	// means its error_description, else its error code.
	TokenMessage func(re *oauth2.RetrieveError) string
}

// Call is one request.
type Call struct {
	Op     string // "fetch deal", for errors
	Method string
	URL    string
	Body   []byte // JSON (see Encode), sent with Content-Type application/json; nil: none
	// Token, when set, gives the bearer token; its failures are
	// TokenError's.
	Token oauth2.TokenSource
	// Header is added to the request (e.g. an API key header).
	Header http.Header
}

// Encode marshals a request body; nil gives nil (no body).
func (c *Client) Encode(op string, in any) ([]byte, error) {
	if in == nil {
		return nil, nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, c.Permanent("%s: encoding request: %v", op, err)
	}
	return b, nil
}

// Response is a 2xx answer; Body holds at most MaxResponse bytes.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// tokenWithin is ts's token, or ctx's error once ctx ends first. An
// oauth2.TokenSource takes no context: a refresh against a slow token
// endpoint would hold the caller (a webhook delivery with seconds to
// answer) for the HTTP client's whole timeout. The refresh goes on and
// its token is kept for the next call (the sources are ReuseTokenSources).
func tokenWithin(ctx context.Context, ts oauth2.TokenSource) (*oauth2.Token, error) {
	type result struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := ts.Token()
		done <- result{tok, err}
	}()
	select {
	case r := <-done:
		return r.tok, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// invalidator is a token source told which token a 401 refused
// (Resettable).
type invalidator interface{ Invalidate(accessToken string) }

// Do sends the call and returns the 2xx answer. Any other answer is
// c.APIError's; a 401 first tells a call.Token that can be told
// (Resettable) which token was refused.
func (c *Client) Do(ctx context.Context, call Call) (*Response, error) {
	var body io.Reader
	if call.Body != nil {
		body = bytes.NewReader(call.Body)
	}
	req, err := http.NewRequestWithContext(ctx, call.Method, call.URL, body)
	if err != nil {
		return nil, c.Permanent("%s: %v", call.Op, err)
	}
	if call.Token != nil {
		tok, err := tokenWithin(ctx, call.Token)
		if err != nil {
			return nil, c.TokenError(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	}
	for k, vs := range call.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("Accept", "application/json")
	if call.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.Service, call.Op, err)
	}
	defer resp.Body.Close()
	// One byte past the bound tells an answer cut short from one that
	// fits exactly.
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading answer: %w", c.Service, call.Op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if inv, ok := call.Token.(invalidator); ok && resp.StatusCode == http.StatusUnauthorized {
			// Refused before its expiry (revoked, a session timed out):
			// the caller's next call gets a new token.
			inv.Invalidate(strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "))
		}
		return nil, c.APIError(call.Op, resp, data)
	}
	if len(data) > MaxResponse {
		// Asking again gets the same answer: permanent, not retried for
		// as long as the run lasts.
		written := ""
		if connectors.IsWrite(call.Method) {
			written = "; the API answered the write with success, so it may have been carried out"
		}
		return nil, c.Permanent("%s: answer larger than %d bytes, which dealsync does not read%s", call.Op, MaxResponse, written)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// Decode unmarshals an answer into out (numbers as json.Number); a nil out
// ignores the answer.
func (c *Client) Decode(op string, data []byte, out any) error {
	if out == nil {
		return nil
	}
	if err := DecodeNumbers(data, out); err != nil {
		return fmt.Errorf("%s %s: decoding answer: %w", c.Service, op, err)
	}
	return nil
}

// DecodeNumbers unmarshals data into out with numbers as json.Number, so
// amounts stay exact.
func DecodeNumbers(data []byte, out any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return d.Decode(out)
}

// TokenError turns a failed OAuth token request into an APIError (op
// "oauth token") when the token endpoint answered; other failures are
// wrapped as they are (retried).
func (c *Client) TokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		if re.ErrorCode == "" {
			// x/oauth2/jwt (Salesforce's JWT bearer flow) does not read
			// the answer's RFC 6749 error: read it here.
			var body struct {
				Error            string `json:"error"`
				ErrorDescription string `json:"error_description"`
			}
			if json.Unmarshal(re.Body, &body) == nil {
				copied := *re
				copied.ErrorCode, copied.ErrorDescription = body.Error, body.ErrorDescription
				re = &copied
			}
		}
		var msg string
		if c.TokenMessage != nil {
			msg = c.TokenMessage(re)
		} else {
			msg = re.ErrorDescription
			if msg == "" {
				msg = re.ErrorCode
			}
		}
		if msg == "" {
			msg = Short(string(re.Body))
		}
		if refused, ok := erpkit.RedirectRefused(re.Response, "the credential", "check the token URL"); ok {
			msg = refused
		}
		// The token endpoint refusing the grant or the client (400
		// invalid_grant, invalid_client; RFC 6749 5.2) is a credentials
		// problem, as a 401 is: classified Unauthorized, so the operator
		// renews them rather than "fix the request". HubSpot names a spent
		// refresh token BAD_REFRESH_TOKEN.
		code := re.ErrorCode
		credentials := re.Response.StatusCode == http.StatusBadRequest &&
			(code == "invalid_grant" || code == "invalid_client" || strings.Contains(string(re.Body), "BAD_REFRESH_TOKEN") || strings.Contains(string(re.Body), "BAD_CLIENT_ID"))
		return &connectors.APIError{Service: c.Service, Op: "oauth token", StatusCode: re.Response.StatusCode, Message: msg,
			RetryAfter:  connectors.ParseRetryAfter(re.Response.Header, time.Now()),
			Credentials: credentials}
	}
	return fmt.Errorf("%s oauth token: %w", c.Service, err)
}

// Short trims a vendor's error body to at most 300 bytes (then "...").
func Short(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
