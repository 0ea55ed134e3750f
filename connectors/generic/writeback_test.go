package generic

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/secret"
)

// receiver is a CRM's endpoint for the write-back: it checks each POST's
// signature with the package's own Verify and answers as told.
type receiver struct {
	*httptest.Server
	secret string

	mu       sync.Mutex
	answers  []int // status of each attempt in turn; then 204
	got      []received
	badSigns []error
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, secret string, answers ...int) *receiver {
	t.Helper()
	r := &receiver{secret: secret, answers: answers}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := Verify(r.secret, req.Header, body, time.Now(), 0); err != nil || req.Method != http.MethodPost ||
			req.Header.Get("Content-Type") != "application/json" {
			r.badSigns = append(r.badSigns, err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		r.got = append(r.got, received{req.Header.Clone(), body})
		status := http.StatusNoContent
		if len(r.answers) > 0 {
			status, r.answers = r.answers[0], r.answers[1:]
		}
		switch status {
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "7")
		case http.StatusFound:
			w.Header().Set("Location", "https://elsewhere.example/in?token=secret")
		}
		w.WriteHeader(status)
		if status >= 400 {
			_, _ = io.WriteString(w, `{"error":"deal D-1001 is unknown here"}`+strings.Repeat(" pad", 200))
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// build builds the registered source from cfg.
func build(t *testing.T, cfg Config) connectors.Source {
	t.Helper()
	spec, _ := connectors.LookupSource("generic")
	src, err := spec.Build(&cfg, connectors.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

var testResult = connectors.InvoiceResult{InvoiceID: "INV-1", Number: "2026-0042", URL: "https://erp.example/invoices/INV-1", Replayed: true}

// Without write_back.url the source is no WriteBacker: its runs have no
// write-back step, and their histories are what they were.
func TestNoWriteBackerWithoutTheURL(t *testing.T) {
	src := build(t, Config{Secret: secret.New(vecSecret), Tolerance: DefaultTolerance})
	if _, ok := src.(connectors.WriteBacker); ok {
		t.Fatalf("%T is a WriteBacker without write_back.url", src)
	}
	if _, ok := src.(*Source); !ok {
		t.Fatalf("Build returned %T, want *Source", src)
	}
	src = build(t, Config{Secret: secret.New(vecSecret), WriteBack: WriteBackConfig{URL: "https://crm.example/in"}})
	if _, ok := src.(connectors.WriteBacker); !ok {
		t.Fatalf("%T is no WriteBacker with write_back.url", src)
	}
}

// The POST is signed with the source's secret (the receiver verifies it
// with the package's Verify), names the deal and its invoice, and a 2xx
// answer is the end of it.
func TestWriteBackPostsASignedInvoice(t *testing.T) {
	r := newReceiver(t, vecSecret)
	w := build(t, Config{Secret: secret.New(vecSecret), WriteBack: WriteBackConfig{URL: r.URL + "/dealsync/invoices"}}).(*WritingSource)
	if err := w.WriteBack(context.Background(), "", "D-1001", testResult); err != nil {
		t.Fatal(err)
	}
	got := r.received()
	if len(got) != 1 {
		t.Fatalf("%d POSTs received (bad signatures %v), want 1", len(got), r.badSigns)
	}
	var body map[string]any
	if err := json.Unmarshal(got[0].body, &body); err != nil {
		t.Fatal(err)
	}
	const want = `{"type":"invoice.synced","deal_id":"D-1001","invoice":{"id":"INV-1","number":"2026-0042","url":"https://erp.example/invoices/INV-1"}}`
	if string(got[0].body) != want {
		t.Errorf("body %s\nwant %s", got[0].body, want)
	}
	if id := got[0].header.Get(HeaderID); id != WriteBackID("", "D-1001", "INV-1") || !strings.HasPrefix(id, "wb_") || len(id) != 35 {
		t.Errorf("webhook-id %q", id)
	}
	if ua := got[0].header.Get("User-Agent"); ua != "dealsync" {
		t.Errorf("User-Agent %q", ua)
	}
	if d := w.DescribeWriteBack(); !strings.Contains(d, r.URL+"/dealsync/invoices") || !strings.Contains(d, "the source's secret") {
		t.Errorf("DescribeWriteBack %q", d)
	}
}

// A receiver answering 429 or 5xx, or not answering, is retried (its
// Retry-After kept); every attempt carries the same webhook-id and body,
// each with its own timestamp; the retry after a 500 is taken.
func TestWriteBackRetriesCarryTheSameID(t *testing.T) {
	r := newReceiver(t, vecSecret, http.StatusInternalServerError, http.StatusTooManyRequests, http.StatusBadGateway)
	w := build(t, Config{Secret: secret.New(vecSecret), WriteBack: WriteBackConfig{URL: r.URL}}).(*WritingSource)
	clock := time.Now().Add(-time.Minute)
	w.Now = func() time.Time { clock = clock.Add(time.Second); return clock }
	for i, want := range []struct {
		class connectors.Class
		wait  time.Duration
	}{{connectors.Retry, 0}, {connectors.RetryAfter, 7 * time.Second}, {connectors.Retry, 0}} {
		err := w.WriteBack(context.Background(), "", "D-1001", testResult)
		if class, wait := connectors.Classify(err); class != want.class || wait != want.wait {
			t.Fatalf("attempt %d: %v classified %v after %s, want %v after %s", i+1, err, class, wait, want.class, want.wait)
		}
	}
	if err := w.WriteBack(context.Background(), "", "D-1001", testResult); err != nil {
		t.Fatalf("4th attempt: %v", err)
	}
	got := r.received()
	if len(got) != 4 {
		t.Fatalf("%d attempts received, want 4", len(got))
	}
	for i, g := range got {
		if g.header.Get(HeaderID) != got[0].header.Get(HeaderID) || string(g.body) != string(got[0].body) {
			t.Errorf("attempt %d: id %q body %s; want those of the first", i+1, g.header.Get(HeaderID), g.body)
		}
		if i > 0 && g.header.Get(HeaderTimestamp) == got[i-1].header.Get(HeaderTimestamp) {
			t.Errorf("attempt %d kept the timestamp of the one before", i+1)
		}
	}
	// Another invoice of the deal, or the invoice of another deal, is
	// another message.
	for _, other := range []string{WriteBackID("", "D-1001", "INV-2"), WriteBackID("", "D-1002", "INV-1"), WriteBackID("acc", "D-1001", "INV-1")} {
		if other == got[0].header.Get(HeaderID) {
			t.Errorf("webhook-id %s is the same for another write-back", other)
		}
	}

	// No answer: retried, its error naming the URL without its query.
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { time.Sleep(time.Second) }))
	defer srv.Close()
	w = build(t, Config{Secret: secret.New(vecSecret), WriteBack: WriteBackConfig{URL: srv.URL + "/in?token=hush", Timeout: 50 * time.Millisecond}}).(*WritingSource)
	err := w.WriteBack(context.Background(), "", "D-1001", testResult)
	if class, _ := connectors.Classify(err); err == nil || class != connectors.Retry || strings.Contains(err.Error(), "hush") || !strings.Contains(err.Error(), srv.URL+"/in") {
		t.Fatalf("a receiver that does not answer: %v (%v)", err, class)
	}
}

// Any other answer fails for good, quoting the receiver (cut short): a
// 4xx, a redirect (not followed), a 401 that says which secret signed.
func TestWriteBackPermanentAnswers(t *testing.T) {
	r := newReceiver(t, vecSecret, http.StatusBadRequest, http.StatusFound)
	w := build(t, Config{Secret: secret.New(vecSecret), WriteBack: WriteBackConfig{URL: r.URL}}).(*WritingSource)
	err := w.WriteBack(context.Background(), "", "D-1001", testResult)
	var api *connectors.APIError
	if class, _ := connectors.Classify(err); class != connectors.Permanent || !errors.As(err, &api) || api.StatusCode != 400 ||
		!strings.Contains(err.Error(), `generic write back to `+r.URL+`: HTTP 400: {"error":"deal D-1001 is unknown here"}`) || len(api.Message) > 303 {
		t.Fatalf("a 400: %v (%v)", err, class)
	}
	err = w.WriteBack(context.Background(), "", "D-1001", testResult)
	if class, _ := connectors.Classify(err); class != connectors.Permanent || !strings.Contains(err.Error(), "redirect (to https://elsewhere.example/in)") ||
		strings.Contains(err.Error(), "token=secret") {
		t.Fatalf("a redirect: %v (%v)", err, class)
	}
	if n := len(r.received()); n != 2 {
		t.Fatalf("%d POSTs, want 2 (the redirect not followed)", n)
	}

	// A receiver checking another secret refuses the signature: 401.
	const other = "whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM="
	r = newReceiver(t, other)
	w = build(t, Config{Secret: secret.New(vecSecret), WriteBack: WriteBackConfig{URL: r.URL}}).(*WritingSource)
	err = w.WriteBack(context.Background(), "", "D-1001", testResult)
	if class, _ := connectors.Classify(err); class != connectors.Unauthorized || !strings.Contains(err.Error(), "with the secret dealsync signs with, the source's secret, as its write_back.secret is not set?") {
		t.Fatalf("a 401: %v (%v)", err, class)
	}
	// Built from a config, the settings are named by their config keys,
	// where an engineer edits them, with the variables that can set them,
	// in parentheses not within others.
	spec, _ := connectors.LookupSource("generic")
	built, err := spec.Build(&Config{Secret: secret.New(vecSecret), WriteBack: WriteBackConfig{URL: r.URL}}, connectors.Env{ConfigKey: "connections.inhouse.source", KeyVar: func(key string) string {
		return "DEALSYNC_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
	}})
	if err != nil {
		t.Fatal(err)
	}
	err = built.(*WritingSource).WriteBack(context.Background(), "", "D-1001", testResult)
	if err == nil || !strings.Contains(err.Error(), "; the receiver refused the request: does it check the signature with the secret dealsync signs with, "+
		"connections.inhouse.source.secret (or DEALSYNC_CONNECTIONS_INHOUSE_SOURCE_SECRET), as connections.inhouse.source.write_back.secret "+
		"(or DEALSYNC_CONNECTIONS_INHOUSE_SOURCE_WRITE_BACK_SECRET) is not set?") || wording.ParenDepth(err.Error()) > 1 {
		t.Fatalf("a 401, built from a config: %v", err)
	}
	// Signed with write_back.secret, it is taken.
	w = build(t, Config{Secret: secret.New(vecSecret), WriteBack: WriteBackConfig{URL: r.URL, Secret: secret.New(other)}}).(*WritingSource)
	if err := w.WriteBack(context.Background(), "", "D-1001", testResult); err != nil || len(r.received()) != 1 {
		t.Fatalf("signed with write_back.secret: %v", err)
	}
}

// While the source's secret is rotated, the POST carries a signature of
// each: a receiver on either takes it.
func TestWriteBackSignsWithBothSecretsWhileRotating(t *testing.T) {
	const previous = "whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM="
	for _, key := range []string{vecSecret, previous} {
		r := newReceiver(t, key)
		w := build(t, Config{Secret: secret.New(vecSecret), PreviousSecret: secret.New(previous), WriteBack: WriteBackConfig{URL: r.URL}}).(*WritingSource)
		if err := w.WriteBack(context.Background(), "", "D-1001", testResult); err != nil {
			t.Fatalf("a receiver on %s: %v", key, err)
		}
		if sig := r.received()[0].header.Get(HeaderSignature); len(strings.Fields(sig)) != 2 {
			t.Errorf("webhook-signature %q, want two", sig)
		}
	}
}

func TestWriteBackConfigErrors(t *testing.T) {
	t.Setenv("DEALSYNC_GENERIC_WB_SECRET", "whsec_not base64!")
	spec, _ := connectors.LookupSource("generic")
	for _, c := range []struct {
		wb   WriteBackConfig
		want string
	}{
		{WriteBackConfig{URL: "http://crm.example.com/in"}, "is http:// to another machine"},
		{WriteBackConfig{URL: "ftp://crm.example.com/in"}, "not an http(s) URL"},
		{WriteBackConfig{URL: "https://user:pw@crm.example.com/in%zz"}, "its value is not shown"},
		{WriteBackConfig{URL: "/in"}, "not an http(s) URL"},
		{WriteBackConfig{Secret: secret.New(vecSecret)}, "write_back.url is not"},
		{WriteBackConfig{URL: "https://crm.example.com/in", Secret: secret.New("env:DEALSYNC_GENERIC_WB_SECRET")}, "write_back.secret (env:DEALSYNC_GENERIC_WB_SECRET)"},
		{WriteBackConfig{URL: "https://crm.example.com/in", Secret: secret.New("env:DEALSYNC_GENERIC_WB_UNSET")}, "DEALSYNC_GENERIC_WB_UNSET is not set"},
		{WriteBackConfig{URL: "https://crm.example.com/in", Timeout: -time.Second}, "negative"},
	} {
		cfg := Config{Secret: secret.New(vecSecret), WriteBack: c.wb}
		src, err := spec.Build(&cfg, connectors.Env{})
		if err == nil || src != nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, %v; want an error with %q", c.wb, src, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "not base64")) {
			t.Errorf("%+v: the error shows a credential: %v", c.wb, err)
		}
	}
	for _, ok := range []string{"http://127.0.0.1:8080/in", "http://localhost/in", "http://[::1]:9/in", "https://crm.example.com/in"} {
		cfg := Config{Secret: secret.New(vecSecret), WriteBack: WriteBackConfig{URL: ok}}
		if _, err := spec.Build(&cfg, connectors.Env{}); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	// A short write_back.secret is warned about, as the source's is.
	cfg := Config{Secret: secret.New(vecSecret), WriteBack: WriteBackConfig{URL: "https://crm.example.com/in", Secret: secret.New("whsec_AA==")}}
	src, err := spec.Build(&cfg, connectors.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if w := src.(connectors.ConfigWarner).ConfigWarnings(); len(w) != 1 || !strings.HasPrefix(w[0], "the source's write_back.secret is 1 bytes") {
		t.Errorf("warnings %q", w)
	}
	// Built from a config, named by its config key.
	cfg.Secret = secret.New("whsec_AA==")
	src, err = spec.Build(&cfg, connectors.Env{ConfigKey: "connections.inhouse.source"})
	if err != nil {
		t.Fatal(err)
	}
	if w := src.(connectors.ConfigWarner).ConfigWarnings(); len(w) != 2 || !strings.HasPrefix(w[0], "connections.inhouse.source.secret is 1 bytes") ||
		!strings.HasPrefix(w[1], "connections.inhouse.source.write_back.secret is 1 bytes") {
		t.Errorf("warnings of a source built from a config %q", w)
	}
}
