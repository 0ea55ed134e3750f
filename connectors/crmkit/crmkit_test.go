package crmkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dealsync/dealsync/connectors"
)

func testClient(hc *http.Client) *Client {
	return &Client{
		Service: "vendor",
		HTTP:    hc,
		Permanent: func(format string, args ...any) error {
			return fmt.Errorf("%w: vendor: "+format, append([]any{connectors.ErrPermanent}, args...)...)
		},
		APIError: func(op string, resp *http.Response, body []byte) *connectors.APIError {
			return &connectors.APIError{Service: "vendor", Op: op, StatusCode: resp.StatusCode, Message: Short(string(body))}
		},
	}
}

func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Accept") != "application/json" ||
			r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Extra") != "1" || string(b) != `{"a":"b"}` {
			http.Error(w, "bad request "+r.Header.Get("Authorization"), http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/fail" {
			http.Error(w, "  nope  ", http.StatusConflict)
			return
		}
		_, _ = w.Write([]byte(`{"n":1.10}`))
	}))
	defer srv.Close()
	c := testClient(srv.Client())
	body, err := c.Encode("op", map[string]string{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	call := Call{Op: "op", Method: http.MethodPost, URL: srv.URL + "/ok", Body: body,
		Token: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok"}), Header: http.Header{"X-Extra": {"1"}}}
	resp, err := c.Do(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := c.Decode("op", resp.Body, &out); err != nil || out["n"].(interface{ String() string }).String() != "1.10" {
		t.Fatalf("decode: %v %v", out, err)
	}
	call.URL = srv.URL + "/fail"
	_, err = c.Do(context.Background(), call)
	var api *connectors.APIError
	if !errors.As(err, &api) || api.StatusCode != http.StatusConflict || api.Message != "nope" || api.Op != "op" {
		t.Fatalf("non-2xx: %v", err)
	}
	call.URL = "://bad"
	if _, err := c.Do(context.Background(), call); !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("bad URL: %v", err)
	}
}

// A 2xx answer larger than MaxResponse fails for good, saying so, rather
// than be cut short and fail to decode at every retry; one of exactly
// MaxResponse bytes is read whole.
func TestDoRefusesAnAnswerLargerThanMaxResponse(t *testing.T) {
	jsonString := func(n int) []byte { // a JSON string of n bytes
		b := []byte(strings.Repeat("a", n))
		b[0], b[n-1] = '"', '"'
		return b
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := MaxResponse
		if r.URL.Path == "/large" {
			n++
		}
		_, _ = w.Write(jsonString(n))
	}))
	defer srv.Close()
	c := testClient(srv.Client())
	resp, err := c.Do(context.Background(), Call{Op: "read", Method: http.MethodGet, URL: srv.URL + "/fits"})
	var s string
	if err != nil || c.Decode("read", resp.Body, &s) != nil || len(s) != MaxResponse-2 {
		t.Fatalf("an answer of MaxResponse bytes: %v (%d bytes read)", err, len(s))
	}
	want := fmt.Sprintf("answer larger than %d bytes", MaxResponse)
	_, err = c.Do(context.Background(), Call{Op: "read", Method: http.MethodGet, URL: srv.URL + "/large"})
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), "vendor: read: "+want) ||
		strings.Contains(err.Error(), "write") {
		t.Errorf("a read: %v (%v)", err, cl)
	}
	_, err = c.Do(context.Background(), Call{Op: "write back", Method: http.MethodPatch, URL: srv.URL + "/large", Body: []byte(`{}`)})
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), "may have been carried out") {
		t.Errorf("a write: %v (%v)", err, cl)
	}
}

func TestTokenError(t *testing.T) {
	c := testClient(nil)
	re := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400, Header: http.Header{}}, ErrorCode: "invalid_grant", ErrorDescription: "expired"}
	var api *connectors.APIError
	if err := c.TokenError(re); !errors.As(err, &api) || api.Message != "expired" || api.Op != "oauth token" || api.StatusCode != 400 {
		t.Errorf("default message: %v", err)
	}
	c.TokenMessage = func(re *oauth2.RetrieveError) string { return re.ErrorCode + ": " + re.ErrorDescription }
	if err := c.TokenError(re); !errors.As(err, &api) || api.Message != "invalid_grant: expired" {
		t.Errorf("own message: %v", err)
	}
	if err := c.TokenError(io.ErrUnexpectedEOF); errors.As(err, &api) || err.Error() != "vendor oauth token: unexpected EOF" {
		t.Errorf("network: %v", err)
	}
	// x/oauth2/jwt leaves the RFC 6749 error in the body alone (Salesforce's
	// JWT bearer flow): read there, a refused grant is still a credentials
	// problem, not a request to fix.
	c.TokenMessage = nil
	jwt := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400, Header: http.Header{}},
		Body: []byte(`{"error":"invalid_grant","error_description":"user hasn't approved this consumer"}`)}
	if err := c.TokenError(jwt); !errors.As(err, &api) || !api.Credentials || api.Message != "user hasn't approved this consumer" {
		t.Errorf("a JWT bearer refusal: %#v, want a credentials error with its description", err)
	}
	if cl, _ := connectors.Classify(c.TokenError(jwt)); cl != connectors.Unauthorized {
		t.Errorf("a JWT bearer refusal classified %v, want Unauthorized", cl)
	}
}

func TestHelpers(t *testing.T) {
	if m := StageSet([]string{" Won ", ""}, []string{"closedwon"}); len(m) != 2 || !m["Won"] || !m["closedwon"] {
		t.Errorf("StageSet %v", m)
	}
	if m := StageSetFold([]string{" Closed Won "}); len(m) != 1 || !m["closed won"] {
		t.Errorf("StageSetFold %v", m)
	}
	if err := Unauthorized("vendor", "missing %s header", "X"); !errors.Is(err, connectors.ErrUnauthorized) ||
		!strings.HasSuffix(err.Error(), ": vendor: missing X header") {
		t.Errorf("Unauthorized %v", err)
	}
	if s := Short(strings.Repeat("x", 400)); len(s) != 303 {
		t.Errorf("Short len %d", len(s))
	}
	if string(JSONString(`a"b`)) != `"a\"b"` {
		t.Error("JSONString")
	}
}

// blockedTokens is a token source whose refresh hangs until released.
type blockedTokens struct{ release chan struct{} }

func (b blockedTokens) Token() (*oauth2.Token, error) {
	<-b.release
	return &oauth2.Token{AccessToken: "late"}, nil
}

// A call whose context ends while its token is being refreshed returns
// then, with the context's error, instead of waiting for the token
// endpoint as long as the HTTP client allows.
func TestDoKeepsToItsContextDuringATokenRefresh(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "{}") }))
	defer srv.Close()
	ts := blockedTokens{release: make(chan struct{})}
	defer close(ts.release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := testClient(srv.Client()).Do(ctx, Call{Op: "read", Method: http.MethodGet, URL: srv.URL, Token: ts})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the context's deadline", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the call waited for the token past its context's deadline")
	}
}

// countingSource hands out t1, t2, … and counts its calls.
type countingSource struct{ n *int }

func (s countingSource) Token() (*oauth2.Token, error) {
	*s.n++
	return &oauth2.Token{AccessToken: fmt.Sprintf("t%d", *s.n), Expiry: time.Now().Add(time.Hour)}, nil
}

// Calls refused together with one token get one new token: a call refused
// with an older token does not throw the new one away, and a token that
// was not refused stays.
func TestResettableDropsOnlyTheRefusedToken(t *testing.T) {
	n := 0
	r := NewResettable(func() oauth2.TokenSource { return countingSource{&n} })
	first, _ := r.Token()
	r.Invalidate(first.AccessToken) // the first 401
	second, _ := r.Token()
	r.Invalidate(first.AccessToken) // a second call refused with the first token
	again, _ := r.Token()
	r.Invalidate("another")
	still, _ := r.Token()
	if first.AccessToken != "t1" || second.AccessToken != "t2" || again.AccessToken != "t2" || still.AccessToken != "t2" || n != 2 {
		t.Fatalf("tokens %s %s %s %s after %d fetches; want t1 t2 t2 t2 after 2", first.AccessToken, second.AccessToken, again.AccessToken, still.AccessToken, n)
	}
}
