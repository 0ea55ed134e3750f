package connectors_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
)

// A write is marked carried out (TrackWrites) when its own answer says it
// may be: a 2xx, a 303, or a 302 (a Post/Redirect/Get, to the record, to
// the list, to the path with a '/' added), followed as a GET or not. A
// 301, or a 302 from http:// to https:// of the same path (TestWriteMoved),
// says the API moved: the write, which Go follows as a GET there, made
// nothing. A 302 to the path with a '/' added was taken for moved, and a
// write that may have been made was reported as nothing created.
func TestWriteAnsweredByARedirect(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, `{"invoices":[]}`)
			return
		}
		switch r.URL.Path {
		case "/301":
			http.Redirect(w, r, "/301/", http.StatusMovedPermanently)
		case "/301-elsewhere":
			http.Redirect(w, r, "/v2/invoices/42", http.StatusMovedPermanently)
		case "/302-slash":
			http.Redirect(w, r, "/302-slash/", http.StatusFound)
		case "/302-record":
			http.Redirect(w, r, "/302-record/42", http.StatusFound)
		case "/302-itself":
			http.Redirect(w, r, "/302-itself?created=42", http.StatusFound)
		case "/303":
			http.Redirect(w, r, "/303", http.StatusSeeOther)
		case "/307-then-301":
			http.Redirect(w, r, "/301", http.StatusTemporaryRedirect)
		case "/307-then-made", "/made":
			if r.URL.Path == "/307-then-made" {
				http.Redirect(w, r, "/made", http.StatusTemporaryRedirect)
				return
			}
			w.WriteHeader(http.StatusCreated)
		default:
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	t.Cleanup(srv.Close)
	for path, want := range map[string]bool{
		"/301": false, "/301-elsewhere": false, "/307-then-301": false, "/refused": false,
		"/302-slash": true, "/302-record": true, "/302-itself": true, "/303": true, "/307-then-made": true, "/made": true,
	} {
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		ctx, wrote := connectors.TrackWrites(context.Background())
		resp, err := srv.Client().Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		connectors.WriteAnswered(ctx, http.MethodPost, resp)
		if wrote() != want {
			t.Errorf("POST %s, answered %d to a %s: marked made %v, want %v", path, resp.StatusCode, resp.Request.Method, wrote(), want)
		}
	}
}

// A 302 answering a write is WriteMoved only when it leads from http://
// to https:// of the same host and path: the "use TLS" redirect, sent
// before the request is read. Any other 302 (the path with a '/' added or
// taken off, another port or host, https:// to http:// as an app behind a
// TLS proxy answers) may follow a write that was made. Those were
// WriteMoved, and their write reported as nothing created.
func TestWriteMoved(t *testing.T) {
	for _, c := range []struct {
		status   int
		from, to string
		want     bool
	}{
		{301, "https://erp.example/invoices", "/anything/else", true},
		{302, "http://erp.example/invoices", "https://erp.example/invoices", true},
		{302, "http://erp.example/invoices", "HTTPS://ERP.example/invoices?x=1", true},
		{302, "http://erp.example:8080/api/invoices", "https://erp.example:8443/api/invoices", true},
		{302, "http://erp.example/invoices", "https://erp.example/invoices/", false},
		{302, "http://erp.example/invoices", "https://www.erp.example/invoices", false},
		{302, "https://erp.example/invoices", "http://erp.example/invoices", false},
		{302, "https://erp.example/invoices", "https://erp.example:8443/invoices", false},
		{302, "https://erp.example/invoices", "https://other.example/invoices", false},
		{302, "https://erp.example/invoices", "/invoices/", false},
		{302, "https://erp.example/invoices/", "/invoices", false},
		{302, "https://erp.example/invoices", "/invoices", false},
		{302, "https://erp.example/invoices", "/invoices/42", false},
		{302, "https://erp.example/invoices", "/login", false},
		{302, "https://erp.example/invoices", "", false},
		{303, "http://erp.example/invoices", "https://erp.example/invoices", false},
		{307, "http://erp.example/invoices", "https://erp.example/invoices", false},
	} {
		req := httptest.NewRequest(http.MethodPost, c.from, nil)
		resp := &http.Response{StatusCode: c.status, Header: http.Header{}, Request: req}
		if c.to != "" {
			resp.Header.Set("Location", c.to)
		}
		if got := connectors.WriteMoved(resp); got != c.want {
			t.Errorf("%d from %s to %q: WriteMoved %v, want %v", c.status, c.from, c.to, got, c.want)
		}
	}
}

// The wait of a write whose outcome is unknown is said as the config
// writes durations (2m, 1m30s, 24h), not in Go's form (2m0s), with what
// it is: the request timeout, or the vendor's Retry-After.
func TestOutcomeUnknownSaysItsWaitAsTheConfigWritesIt(t *testing.T) {
	const timeout = ", the request timeout, by which the vendor has carried it out or dropped it)"
	for wait, want := range map[time.Duration]string{
		2 * time.Minute:  "waits 2m" + timeout,
		90 * time.Second: "waits 1m30s" + timeout,
		48 * time.Hour:   "waits 24h" + timeout, // at most MaxRetryAfter
	} {
		err := &connectors.OutcomeUnknownError{Err: errors.New("create invoice: no answer"), Wait: wait}
		if !strings.HasSuffix(err.Error(), want) {
			t.Errorf("Wait %s: %q, want %q", wait, err.Error(), want)
		}
	}
	err := &connectors.OutcomeUnknownError{Err: errors.New("create invoice: 409"), Wait: 30 * time.Second, RetryAfter: true}
	if want := "waits 30s, the vendor's Retry-After)"; !strings.HasSuffix(err.Error(), want) {
		t.Errorf("a Retry-After's wait: %q, want %q", err.Error(), want)
	}
}
