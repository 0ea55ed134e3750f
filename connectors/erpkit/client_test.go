package erpkit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/wording"
)

type staticTokens struct{}

func (staticTokens) Token(context.Context) (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: "t", TokenType: "Bearer"}, nil
}

// A write the vendor does not answer before the step's deadline may still
// be carried out: the call gives up before the step does, and says to
// retry after the vendor has had the time a call may take. A read that
// times out is retried as usual.
func TestUnansweredWriteIsRetriedAfterTheVendorsTime(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // the vendor is still working when the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	c := &Client{Service: "erp", HTTP: srv.Client(), Tokens: staticTokens{}, Timeout: time.Minute}

	// The step has 3.5 s left: the call ends StepMargin before that.
	step, cancel := context.WithTimeout(context.Background(), connectors.StepMargin+1500*time.Millisecond)
	defer cancel()
	_, err := c.Do(step, Call{Op: "create invoice", Method: http.MethodPut, URL: srv.URL + "/Invoices", Body: []byte(`{}`)})
	if step.Err() != nil {
		t.Fatalf("the call outlived the step (%v): the step would report its own timeout, retried at once", err)
	}
	var unknown *connectors.OutcomeUnknownError
	if !errors.As(err, &unknown) {
		t.Fatalf("unanswered write: %v, want an OutcomeUnknownError", err)
	}
	if class, wait := connectors.Classify(err); class != connectors.RetryAfter || wait != time.Minute {
		t.Errorf("unanswered write classified %v after %v, want RetryAfter the client's timeout (1m)", class, wait)
	}

	read, cancelRead := context.WithTimeout(context.Background(), connectors.StepMargin+1500*time.Millisecond)
	defer cancelRead()
	_, err = c.Do(read, Call{Op: "find invoice", Method: http.MethodGet, URL: srv.URL + "/Invoices"})
	if class, wait := connectors.Classify(err); err == nil || errors.As(err, &unknown) || class != connectors.Retry || wait != 0 {
		t.Errorf("unanswered read: %v classified %v after %v, want a plain retry", err, class, wait)
	}
}

// A write that never left (no connection) is retried as usual: nothing can
// be carried out.
func TestWriteThatNeverLeftIsRetriedAtOnce(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c := &Client{Service: "erp", HTTP: &http.Client{}, Tokens: staticTokens{}, Timeout: time.Minute}
	_, err := c.Do(context.Background(), Call{Op: "create invoice", Method: http.MethodPut, URL: url + "/Invoices", Body: []byte(`{}`)})
	var unknown *connectors.OutcomeUnknownError
	if class, _ := connectors.Classify(err); err == nil || errors.As(err, &unknown) || class != connectors.Retry {
		t.Errorf("refused connection: %v classified %v, want a plain retry", err, class)
	}
}

// A gateway's 502 or 504 to a write: the vendor may have carried it out.
func TestGatewayTimeoutOfAWriteWaits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusGatewayTimeout)
	}))
	t.Cleanup(srv.Close)
	c := &Client{Service: "erp", HTTP: srv.Client(), Tokens: staticTokens{}, Timeout: 20 * time.Second}
	_, err := c.Do(context.Background(), Call{Op: "create invoice", Method: http.MethodPost, URL: srv.URL, Body: []byte(`{}`)})
	if class, wait := connectors.Classify(err); class != connectors.RetryAfter || wait != 20*time.Second {
		t.Errorf("504 to a write: %v classified %v after %v, want RetryAfter 20s", err, class, wait)
	}
	_, err = c.Do(context.Background(), Call{Op: "find invoice", Method: http.MethodGet, URL: srv.URL})
	if class, wait := connectors.Classify(err); class != connectors.Retry || wait != 0 {
		t.Errorf("502 to a read: %v classified %v after %v, want a plain retry", err, class, wait)
	}
	// A query sent as POST (NetSuite's SuiteQL) changes nothing.
	_, err = c.Do(context.Background(), Call{Op: "find customer", Read: true, Method: http.MethodPost, URL: srv.URL, Body: []byte(`{}`)})
	if class, wait := connectors.Classify(err); class != connectors.Retry || wait != 0 {
		t.Errorf("504 to a query sent as POST: %v classified %v after %v, want a plain retry", err, class, wait)
	}
}

// A write is not sent when its step has less time left than a call and
// the margin: it would run into the step's deadline.
func TestWriteWithoutTimeLeftIsNotSent(t *testing.T) {
	sent := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent++ }))
	t.Cleanup(srv.Close)
	c := &Client{Service: "erp", HTTP: srv.Client(), Tokens: staticTokens{}, Timeout: time.Minute}
	step, cancel := context.WithTimeout(context.Background(), connectors.StepMargin+500*time.Millisecond)
	defer cancel()
	_, err := c.Do(step, Call{Op: "create invoice", Method: http.MethodPut, URL: srv.URL, Body: []byte(`{}`)})
	if class, _ := connectors.Classify(err); !errors.Is(err, connectors.ErrNoTimeLeft) || class != connectors.Retry || sent != 0 {
		t.Errorf("a write with too little time left: %v (class %v), %d sent; want none sent, retried", err, class, sent)
	}
	if _, err := c.Do(step, Call{Op: "find invoice", Method: http.MethodGet, URL: srv.URL}); err != nil || sent != 1 {
		t.Errorf("a read goes out all the same: %v, %d sent", err, sent)
	}
}

// A write answered with success says it was made (connectors.TrackWrites);
// a read does not, nor a write refused with 429: a step that fails after
// a write was made has made what it wrote.
func TestWritesAreTracked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/limited", "/made/1":
			w.WriteHeader(http.StatusTooManyRequests)
			return
		case "/redirected":
			http.Redirect(w, r, "/made/1", http.StatusSeeOther)
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	c := &Client{Service: "erp", HTTP: srv.Client(), Tokens: staticTokens{}, Timeout: time.Minute}
	ctx, wrote := connectors.TrackWrites(context.Background())
	if _, err := c.Do(ctx, Call{Op: "find invoice", Method: http.MethodGet, URL: srv.URL + "/Invoices"}); err != nil || wrote() {
		t.Fatalf("a read: %v, wrote %v; want no write", err, wrote())
	}
	if _, err := c.Do(ctx, Call{Op: "create invoice", Method: http.MethodPut, URL: srv.URL + "/limited", Body: []byte(`{}`)}); err == nil || wrote() {
		t.Fatalf("a write refused with 429: %v, wrote %v; want no write", err, wrote())
	}
	if _, err := c.Do(ctx, Call{Op: "create invoice", Method: http.MethodPut, URL: srv.URL + "/Invoices", Body: []byte(`{}`)}); err != nil || !wrote() {
		t.Fatalf("a write: %v, wrote %v; want it marked", err, wrote())
	}
	// A query sent as POST (Read: NetSuite's SuiteQL) answered 2xx made
	// nothing: a later 429 of the step's write is not one that may have
	// written.
	query, queried := connectors.TrackWrites(context.Background())
	if _, err := c.Do(query, Call{Op: "find customer", Read: true, Method: http.MethodPost, URL: srv.URL + "/query", Body: []byte(`{}`)}); err != nil || queried() {
		t.Fatalf("a query sent as POST: %v, wrote %v; want no write", err, queried())
	}
	if _, err := c.Do(query, Call{Op: "create invoice", Method: http.MethodPut, URL: srv.URL + "/limited", Body: []byte(`{}`)}); err == nil || queried() {
		t.Fatalf("a query, then a write refused with 429: %v, wrote %v; want no write", err, queried())
	}
	// Answered with a redirect to what it made (303, followed as a GET):
	// made, whatever the GET answers.
	redirected, made := connectors.TrackWrites(context.Background())
	if _, err := c.Do(redirected, Call{Op: "create invoice", Method: http.MethodPost, URL: srv.URL + "/redirected", Body: []byte(`{}`)}); err == nil || !made() {
		t.Fatalf("a write redirected to what it made, then 429: %v, wrote %v; want an error and the write marked", err, made())
	}
}

// tokenSource hands out "t"; once told the token was rejected, it fails
// with err, if any.
type tokenSource struct {
	err     error
	invalid bool
}

func (s *tokenSource) Token(context.Context) (*oauth2.Token, error) {
	if s.invalid && s.err != nil {
		return nil, s.err
	}
	return &oauth2.Token{AccessToken: "t", TokenType: "Bearer"}, nil
}

func (s *tokenSource) Invalidate(string) { s.invalid = true }

type failingTokens struct{ err error }

func (s failingTokens) Token(context.Context) (*oauth2.Token, error) { return nil, s.err }

// A call that cannot get an access token is not sent, and its error says
// so (a *TokenError, IsTokenFailure), so that a target does not read the
// token endpoint's 400 or 404 as the API's answer to the call. Otherwise
// it is the token source's error: the same message, the same class, the
// same APIError to errors.As.
func TestTokenFailureIsTypedAndOtherwiseUnchanged(t *testing.T) {
	sent := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent++
		switch r.URL.Path {
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		case "/refused":
			w.WriteHeader(http.StatusBadRequest)
		case "/expired":
			w.WriteHeader(http.StatusUnauthorized)
		default:
			_, _ = w.Write([]byte(`{}`))
		}
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	for _, cause := range []error{
		&connectors.APIError{Service: "erp", Op: "refresh token", StatusCode: http.StatusBadRequest, Message: "org 1: the token endpoint answered invalid_request"},
		&connectors.APIError{Service: "erp", Op: "refresh token", StatusCode: http.StatusNotFound, Message: "org 1: the token endpoint answered not found"},
		&connectors.APIError{Service: "erp", Op: "refresh token", StatusCode: http.StatusUnauthorized, Message: "org 1: the token endpoint rejected the refresh token"},
		&connectors.APIError{Service: "erp", Op: "get token", StatusCode: http.StatusBadRequest, Credentials: true, Message: "refused"},
		&connectors.APIError{Service: "erp", Op: "refresh token", StatusCode: http.StatusTooManyRequests, RetryAfter: 7 * time.Second},
		&connectors.APIError{Service: "erp", Op: "refresh token", StatusCode: http.StatusServiceUnavailable},
		&connectors.LocalFileError{What: "token store", Path: "/x", Err: errors.New("disk full")},
		errors.New("erp refresh token: connection refused"),
		errors.Join(errors.New("signing"), connectors.ErrPermanent),
		context.DeadlineExceeded,
	} {
		sent = 0
		c := &Client{Service: "erp", HTTP: srv.Client(), Tokens: failingTokens{cause}, Timeout: time.Minute}
		_, err := c.Do(ctx, Call{Op: "create invoice", Method: http.MethodPut, URL: srv.URL + "/refused", Body: []byte(`{}`)})
		var te *TokenError
		if !IsTokenFailure(err) || !errors.As(err, &te) || te.Err != cause || sent != 0 {
			t.Errorf("%v: Do gave %#v, %d sent; want a *TokenError wrapping it, nothing sent", cause, err, sent)
			continue
		}
		if err.Error() != cause.Error() {
			t.Errorf("message %q, want the token source's %q", err, cause)
		}
		gotClass, gotWait := connectors.Classify(err)
		wantClass, wantWait := connectors.Classify(cause)
		if gotClass != wantClass || gotWait != wantWait {
			t.Errorf("%v: classified %v after %v, want the token source's %v after %v", cause, gotClass, gotWait, wantClass, wantWait)
		}
		if api := (*connectors.APIError)(nil); errors.As(cause, &api) {
			var got *connectors.APIError
			if !errors.As(err, &got) || got != api {
				t.Errorf("%v: errors.As finds %v, want the token endpoint's APIError", cause, got)
			}
		}
		if errors.Is(cause, connectors.ErrPermanent) != errors.Is(err, connectors.ErrPermanent) ||
			errors.Is(cause, context.DeadlineExceeded) != errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%v: errors.Is sees %v otherwise", cause, err)
		}
	}

	// The API's own answers are not token failures.
	c := &Client{Service: "erp", HTTP: srv.Client(), Tokens: staticTokens{}, Timeout: time.Minute}
	for _, path := range []string{"/missing", "/refused"} {
		_, err := c.Do(ctx, Call{Op: "find invoice", Method: http.MethodGet, URL: srv.URL + path})
		var api *connectors.APIError
		if !errors.As(err, &api) || IsTokenFailure(err) {
			t.Errorf("%s: %v (token failure %v); want the API's answer, not a token failure", path, err, IsTokenFailure(err))
		}
	}
	// Nor is a 401 the API repeats after a new token.
	sent = 0
	_, err := (&Client{Service: "erp", HTTP: srv.Client(), Tokens: &tokenSource{}, Timeout: time.Minute}).
		Do(ctx, Call{Op: "find invoice", Method: http.MethodGet, URL: srv.URL + "/expired"})
	if cl, _ := connectors.Classify(err); cl != connectors.Unauthorized || IsTokenFailure(err) || sent != 2 {
		t.Errorf("401 twice: %v (class %v, token failure %v, %d sent); want the API's 401, sent twice", err, cl, IsTokenFailure(err), sent)
	}
	// A 401 whose refresh fails: the refresh's failure, a token failure.
	refusal := &connectors.APIError{Service: "erp", Op: "refresh token", StatusCode: http.StatusBadRequest, Message: "invalid_request"}
	sent = 0
	_, err = (&Client{Service: "erp", HTTP: srv.Client(), Tokens: &tokenSource{err: refusal}, Timeout: time.Minute}).
		Do(ctx, Call{Op: "find invoice", Method: http.MethodGet, URL: srv.URL + "/expired"})
	var api *connectors.APIError
	if !IsTokenFailure(err) || !errors.As(err, &api) || api != refusal || sent != 1 {
		t.Errorf("401, then the refresh refused: %v, %d sent; want the refresh's refusal as a token failure", err, sent)
	}
}

// A 503 to a write with "Retry-After: 0", or a date past, is the vendor's
// own "not now": a refusal, not Unsure, retried with the usual backoff
// rather than after the client's Timeout. It was taken for a gateway's
// 503 without Retry-After (RetryAfter 0 both). Without the header the 503
// stays Unsure. A RetryAfter function of the target (Xero's, QBO's) does
// not hide the header.
func TestA503WithRetryAfterZeroIsARefusal(t *testing.T) {
	var retryAfter atomic.Value // string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := retryAfter.Load().(string); v != "" {
			w.Header().Set("Retry-After", v)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	for _, custom := range []bool{false, true} {
		c := &Client{Service: "erp", HTTP: srv.Client(), Tokens: staticTokens{}, Timeout: 20 * time.Second}
		if custom {
			c.RetryAfter = func(h http.Header) time.Duration { return connectors.ParseRetryAfter(h, time.Now()) }
		}
		for _, c2 := range []struct {
			header string
			unsure bool
			class  connectors.Class
			wait   time.Duration
		}{
			{"0", false, connectors.Retry, 0},
			{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), false, connectors.Retry, 0},
			{"", true, connectors.RetryAfter, 20 * time.Second},
		} {
			retryAfter.Store(c2.header)
			_, err := c.Do(context.Background(), Call{Op: "create invoice", Method: http.MethodPost, URL: srv.URL, Body: []byte(`{}`)})
			var api *connectors.APIError
			if !errors.As(err, &api) {
				t.Fatalf("503: %v, want an APIError", err)
			}
			class, wait := connectors.Classify(err)
			if api.Unsure != c2.unsure || api.RetryAfterGiven != (c2.header != "") || class != c2.class || wait != c2.wait {
				t.Errorf("503 with Retry-After %q (own RetryAfter %v): Unsure %v, given %v, classified %v after %v; want Unsure %v, %v after %v",
					c2.header, custom, api.Unsure, api.RetryAfterGiven, class, wait, c2.unsure, c2.class, c2.wait)
			}
		}
	}
}

// A 2xx answer larger than the client reads fails for good, not retried
// for as long as the run lasts (asking again gets the same answer); it is
// not the ERP's refusal (Refused), and to a write it says the write may
// have been carried out. One of exactly maxResponse bytes is read whole.
func TestAnswerLargerThanReadIsPermanent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := maxResponse
		if r.URL.Path == "/large" {
			n++
		}
		_, _ = w.Write([]byte(strings.Repeat(" ", n-2) + "{}"))
	}))
	t.Cleanup(srv.Close)
	c := &Client{Service: "erp", HTTP: srv.Client(), Tokens: staticTokens{}, Timeout: 20 * time.Second}
	resp, err := c.Do(context.Background(), Call{Op: "find invoice", Method: http.MethodGet, URL: srv.URL + "/fits"})
	if err != nil || len(resp.Body) != maxResponse {
		t.Fatalf("an answer of maxResponse bytes: %v", err)
	}
	want := fmt.Sprintf("erp find invoice: answer larger than %d bytes", maxResponse)
	_, err = c.Do(context.Background(), Call{Op: "find invoice", Method: http.MethodGet, URL: srv.URL + "/large"})
	if class, _ := connectors.Classify(err); class != connectors.Permanent || Refused(err) || !strings.Contains(err.Error(), want) ||
		strings.Contains(err.Error(), "carried out") {
		t.Errorf("a read: %v classified %v (refused %v), want permanent, not refused", err, class, Refused(err))
	}
	_, err = c.Do(context.Background(), Call{Op: "create invoice", Method: http.MethodPost, URL: srv.URL + "/large", Body: []byte(`{}`)})
	if class, _ := connectors.Classify(err); class != connectors.Permanent || Refused(err) ||
		!strings.Contains(err.Error(), "answer larger than") || !strings.Contains(err.Error(), "may have been carried out") {
		t.Errorf("a write: %v classified %v (refused %v), want permanent, not refused", err, class, Refused(err))
	}
}

// A 401 or 403 that says nothing (a proxy's empty answer) is reported
// without an empty "()" where the vendor's message would be.
func TestAnEmptyRefusalHasNoEmptyParentheses(t *testing.T) {
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	c := &Client{Service: "erp", Connection: "org 1", HTTP: srv.Client(), Tokens: staticTokens{}, Timeout: 20 * time.Second}
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		status.Store(int32(code))
		_, err := c.Do(context.Background(), Call{Op: "find invoice", Method: http.MethodGet, URL: srv.URL})
		if err == nil || strings.Contains(err.Error(), "()") || !strings.Contains(err.Error(), "org 1") {
			t.Errorf("an empty %d: %v", code, err)
		}
	}
}

// A 401 after a refresh, or a 403, is the ERP's refusal of the target's
// credentials: its advice names the target's settings, not "the
// connection" (the step's failure names the run's CRM connection, which
// is not the one to authorize again). A target's AccessAdvice replaces it,
// given the answer's body (a vendor's error code).
func TestRefusedAccessNamesTheTargetsSettings(t *testing.T) {
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte("refused"))
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	c := &Client{Service: "erp", Connection: "QuickBooks company 9130", HTTP: srv.Client(), Tokens: &tokenSource{}, Timeout: 20 * time.Second}
	// Built from a config, the settings are named by their config keys,
	// where an engineer edits them, with the variables that can set them
	// (in parentheses not within others); without one, as the target's.
	envVar := func(key string) string {
		return "DEALSYNC_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
	}
	for block, key := range map[string]func(string) string{
		"targets.books": func(s string) string {
			return "targets.books." + s + " (or DEALSYNC_TARGETS_BOOKS_" + strings.ToUpper(s) + ")"
		},
		"": func(s string) string { return "the target's " + s },
	} {
		c.Keys = connectors.TargetKeys(block)
		c.Keys.KeyVar = envVar
		for code, want := range map[int]string{
			http.StatusUnauthorized: `the access token was rejected even after a refresh for QuickBooks company 9130: authorize the app for it again, ` +
				`by the authorization-code flow with ` + key("client_id") + `, and write the new refresh token into ` + key("token_file"),
			http.StatusForbidden: "access denied for QuickBooks company 9130: check the scopes of the app of " + key("client_id") + " and that it is still connected to it",
		} {
			status.Store(int32(code))
			_, err := c.Do(ctx, Call{Op: "create invoice", Method: http.MethodPost, URL: srv.URL, Body: []byte(`{}`)})
			if cl, _ := connectors.Classify(err); cl != connectors.Unauthorized || err == nil || !strings.Contains(err.Error(), want) ||
				!strings.HasSuffix(err.Error(), "(refused)") || strings.Contains(err.Error(), "connection") || wording.ParenDepth(err.Error()) > 1 {
				t.Errorf("%d: %v (class %v); want %q", code, err, cl, want)
			}
		}
	}
	c.AccessAdvice = func(_ int, body []byte) string { return "check tenant_id, as " + string(body) + " says" }
	status.Store(http.StatusForbidden)
	_, err := c.Do(ctx, Call{Op: "find invoice", Method: http.MethodGet, URL: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "access denied for QuickBooks company 9130: check tenant_id, as refused says (refused)") {
		t.Errorf("a target's advice: %v", err)
	}
}
