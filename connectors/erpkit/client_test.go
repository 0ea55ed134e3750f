package erpkit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dealsync/dealsync/connectors"
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
	// Answered with a redirect to what it made (303, followed as a GET):
	// made, whatever the GET answers.
	redirected, made := connectors.TrackWrites(context.Background())
	if _, err := c.Do(redirected, Call{Op: "create invoice", Method: http.MethodPost, URL: srv.URL + "/redirected", Body: []byte(`{}`)}); err == nil || !made() {
		t.Fatalf("a write redirected to what it made, then 429: %v, wrote %v; want an error and the write marked", err, made())
	}
}
