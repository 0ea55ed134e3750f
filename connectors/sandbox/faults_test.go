package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/internal/testlog"
)

func TestScriptThenSuccess(t *testing.T) {
	h := start(t, Options{Faults: Faults{Script: []int{503, 429}, RetryAfter: 1500 * time.Millisecond}})
	cus := h.customer("c1") // POST /customers does not consume the script
	a := h.call("POST", "/invoices", "k", invoice(cus))
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") != "2" { // a refusal (nothing was carried out), after retry_after rounded up
		t.Errorf("1st: %d Retry-After=%q", a.status, a.header.Get("Retry-After"))
	}
	a = h.call("POST", "/invoices", "k", invoice(cus))
	if a.status != http.StatusTooManyRequests {
		t.Errorf("2nd: %d", a.status)
	}
	if got := a.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2 (1.5s rounded up)", got)
	}
	if a.errorDetail(t).Message == "" {
		t.Errorf("fault without message: %s", a.body)
	}
	if n := len(h.s.Invoices()); n != 0 {
		t.Errorf("faults created %d invoices", n)
	}
	a = h.call("POST", "/invoices", "k", invoice(cus))
	if a.status != http.StatusCreated || a.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("3rd: %d replayed=%q %s", a.status, a.header.Get("Idempotent-Replayed"), a.body)
	}
	st := h.s.Stats()
	if st.Faults[503] != 1 || st.Faults[429] != 1 || st.InvoicesCreated != 1 {
		t.Errorf("stats = %+v", st)
	}
	// SetFaults restarts the script.
	h.s.SetFaults(Faults{Script: []int{0, 503}})
	if a := h.call("POST", "/invoices", "k", invoice(cus)); a.status != http.StatusCreated {
		t.Errorf("script entry 0 must pass: %d", a.status)
	}
	if a := h.call("POST", "/invoices", "k", invoice(cus)); a.status != http.StatusServiceUnavailable {
		t.Errorf("after SetFaults: %d", a.status)
	}
}

func TestRetryAfterMinimumOneSecond(t *testing.T) {
	h := start(t, Options{Faults: Faults{RateLimitRate: 1}})
	a := h.call("POST", "/customers", "k", map[string]string{"name": "x"})
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "1" {
		t.Errorf("%d Retry-After=%q", a.status, a.header.Get("Retry-After"))
	}
	if n := len(h.s.Customers()); n != 0 {
		t.Errorf("fault created %d customers", n)
	}
}

func TestLostResponseThenReplay(t *testing.T) {
	h := start(t, Options{})
	cus := h.customer("c1")
	h.s.SetFaults(Faults{LostResponseRate: 1})
	a := h.call("POST", "/invoices", "k", invoice(cus))
	if a.status != http.StatusBadGateway {
		t.Fatalf("lost: %d %s", a.status, a.body)
	}
	created := h.s.Invoices()
	if len(created) != 1 {
		t.Fatalf("the lost request must still create the invoice: %d invoices", len(created))
	}
	// The replay's answer and a refusal get through, faults or not.
	a = h.call("POST", "/invoices", "k", invoice(cus))
	if a.status != http.StatusCreated || a.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d replayed=%q %s", a.status, a.header.Get("Idempotent-Replayed"), a.body)
	}
	var inv Invoice
	a.decode(t, &inv)
	if inv.ID != created[0].ID {
		t.Errorf("replay answered %s, created %s", inv.ID, created[0].ID)
	}
	if n := len(h.s.Invoices()); n != 1 {
		t.Errorf("%d invoices after the retry, want 1", n)
	}
	if a := h.call("POST", "/customers", "other", map[string]string{"external_id": "c1", "name": "Acme again"}); a.status != http.StatusConflict {
		t.Errorf("a refusal under LostResponseRate 1: %d %s", a.status, a.body)
	}
	if st := h.s.Stats(); st.Faults[502] != 1 || st.IdempotentReplays != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestWhichCallsAreFaulted(t *testing.T) {
	h := start(t, Options{Faults: Faults{ErrorRate: 1}})
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/invoices", 200},
		{"GET", "/invoices/INV-0001", 404},
		{"GET", "/healthz", 200},
		{"GET", "/customers?external_id=x", 503},
		{"GET", "/customers/CUS-0001", 503},
		{"POST", "/customers", 503},
		{"POST", "/invoices", 503},
	} {
		var body any
		if c.method == "POST" {
			body = map[string]string{}
		}
		if a := h.call(c.method, c.path, "k", body); a.status != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, a.status, c.want)
		}
	}
}

// Both faults say retry_after in their Retry-After (whole seconds,
// rounded up): the pace at which runs retry in a fault.
func TestFaultsSayRetryAfter(t *testing.T) {
	for status, f := range map[int]Faults{503: {ErrorRate: 1, RetryAfter: 2500 * time.Millisecond}, 429: {RateLimitRate: 1, RetryAfter: 2500 * time.Millisecond}} {
		h := start(t, Options{Faults: f})
		a := h.call("POST", "/invoices", "k", map[string]string{})
		if a.status != status || a.header.Get("Retry-After") != "3" {
			t.Errorf("faults %+v: %d with Retry-After %q, want %d with 3", f, a.status, a.header.Get("Retry-After"), status)
		}
	}
}

func TestRatesAreSeeded(t *testing.T) {
	run := func() []int {
		h := start(t, Options{Seed: 42, Faults: Faults{ErrorRate: 0.3, RateLimitRate: 0.3}})
		var got []int
		for range 40 {
			got = append(got, h.call("GET", "/customers", "", nil).status)
		}
		return got
	}
	a, b := run(), run()
	counts := map[int]int{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
		}
		counts[a[i]]++
	}
	if counts[200] == 0 || counts[503] == 0 || counts[429] == 0 {
		t.Errorf("statuses %v: want a mix of 200, 503 and 429", counts)
	}
}

// Latency applies to API calls but never to the inspection endpoints. An
// hour of latency against a generous deadline: which call is delayed is
// the behaviour under test, not how long anything takes.
func TestLatency(t *testing.T) {
	h := start(t, Options{Faults: Faults{Latency: time.Hour}})
	get := func(path string, deadline time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get("/customers", time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GET /customers: %v, want it delayed past the deadline", err)
	}
	if err := get("/invoices", time.Minute); err != nil {
		t.Errorf("GET /invoices: %v: it must not be delayed", err)
	}
}

// Latency holds the answer, not the request: the invoice is made at once,
// and a client that gives up before the answer is due (its timeout
// shorter than the latency) leaves it made, as when a slow ERP's answer
// never arrives; its retry with the same key gets the replay, not a
// second invoice. The hold is observed through a hook, not timed.
func TestLatencyHoldsTheAnswerNotTheWork(t *testing.T) {
	s := New(Options{})
	holding := make(chan struct{}, 1)
	s.onHold = func() { holding <- struct{}{} }
	h := serve(t, s)
	cus := h.customer("c1")
	s.SetFaults(Faults{Latency: time.Hour})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body, _ := json.Marshal(invoice(cus))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+"/invoices", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "k")
	errc := make(chan error, 1)
	go func() {
		resp, err := h.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-holding // the answer is being held
	created := s.Invoices()
	if len(created) != 1 {
		t.Fatalf("%d invoices while the answer is held, want 1: latency must delay the answer, not the work", len(created))
	}
	cancel() // the client gives up
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want it to have given up without an answer", err)
	}

	// The retry, under the same latency: its replay is not held (a held
	// one would wait the hour: the retry gives up well before).
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	retry, _ := http.NewRequestWithContext(rctx, http.MethodPost, h.srv.URL+"/invoices", bytes.NewReader(body))
	retry.Header.Set("Content-Type", "application/json")
	retry.Header.Set("Idempotency-Key", "k")
	resp, err := h.srv.Client().Do(retry)
	if err != nil {
		t.Fatalf("retry: %v; want the replay at once, not held by the latency", err)
	}
	defer resp.Body.Close()
	var inv Invoice
	if err := json.NewDecoder(resp.Body).Decode(&inv); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || resp.Header.Get(replayedHeader) != "true" || inv.ID != created[0].ID {
		t.Errorf("retry: %d replayed=%q %+v, want the replay of %s", resp.StatusCode, resp.Header.Get(replayedHeader), inv, created[0].ID)
	}
	if n := len(s.Invoices()); n != 1 {
		t.Errorf("%d invoices after the retry, want 1", n)
	}
}

// A fault's answer is held too, and a fault creates nothing.
func TestLatencyHoldsAFault(t *testing.T) {
	s := New(Options{})
	holding := make(chan struct{}, 1)
	s.onHold = func() { holding <- struct{}{} }
	h := serve(t, s)
	cus := h.customer("c1")
	s.SetFaults(Faults{Latency: time.Nanosecond, Script: []int{503}})
	a := h.call("POST", "/invoices", "k", invoice(cus))
	select {
	case <-holding:
	default:
		t.Errorf("the fault's answer was not held")
	}
	if a.status != http.StatusServiceUnavailable || len(s.Invoices()) != 0 {
		t.Errorf("scripted 503 under latency: %d %s, %d invoices", a.status, a.body, len(s.Invoices()))
	}
}

func TestHTTPEdges(t *testing.T) {
	h := start(t, Options{})
	cases := []struct {
		name   string
		method string
		path   string
		key    string
		body   any
		hdr    []string
		want   int
	}{
		{"unknown path", "GET", "/nope", "", nil, nil, 404},
		{"trailing slash", "GET", "/invoices/", "", nil, nil, 404},
		{"wrong method", "DELETE", "/invoices", "", nil, nil, 405},
		{"wrong method on member", "POST", "/customers/CUS-0001", "", nil, nil, 405},
		{"missing key", "POST", "/invoices", "", map[string]string{}, nil, 400},
		{"missing key customers", "POST", "/customers", "", map[string]string{"name": "x"}, nil, 400},
		{"not json", "POST", "/customers", "k", "name=x", []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"malformed", "POST", "/customers", "k", `{"name":`, nil, 400},
		{"unknown field", "POST", "/customers", "k", `{"name":"x","nmae":"y"}`, nil, 400},
		{"trailing data", "POST", "/customers", "k", `{"name":"x"} {}`, nil, 400},
		{"too large", "POST", "/customers", "k", `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, nil, 413},
		{"json with charset", "POST", "/customers", "k2", `{"name":"x"}`, []string{"Content-Type", "application/json; charset=utf-8"}, 201},
		{"healthz", "GET", "/healthz", "", nil, nil, 200},
	}
	for _, c := range cases {
		a := h.call(c.method, c.path, c.key, c.body, c.hdr...)
		if a.status != c.want {
			t.Errorf("%s: %d, want %d (%s)", c.name, a.status, c.want, a.body)
			continue
		}
		if ct := a.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", c.name, ct)
		}
		if c.want >= 400 && a.errorDetail(t).Message == "" {
			t.Errorf("%s: no error message in %s", c.name, a.body)
		}
		if c.want == 405 && a.header.Get("Allow") == "" {
			t.Errorf("%s: no Allow header", c.name)
		}
	}
}

func TestCustomerLookup(t *testing.T) {
	h := start(t, Options{})
	id := h.customer("hub-1")
	h.customer("hub-2")
	var list struct{ Customers []Customer }
	h.call("GET", "/customers?external_id=hub-1", "", nil).decode(t, &list)
	if len(list.Customers) != 1 || list.Customers[0].ID != id || list.Customers[0].Name != "Acme hub-1" {
		t.Errorf("lookup hub-1 = %+v", list.Customers)
	}
	h.call("GET", "/customers?external_id=hub", "", nil).decode(t, &list)
	if len(list.Customers) != 0 {
		t.Errorf("lookup must be exact: %+v", list.Customers)
	}
	var c Customer
	h.call("GET", "/customers/"+id, "", nil).decode(t, &c)
	if c.ID != id || c.ExternalID != "hub-1" {
		t.Errorf("GET /customers/%s = %+v", id, c)
	}
	if a := h.call("GET", "/customers/CUS-9999", "", nil); a.status != 404 {
		t.Errorf("unknown customer: %d", a.status)
	}
	if got := h.s.Customers(); len(got) != 2 || got[0].ID != id {
		t.Errorf("Customers() = %+v", got)
	}
}

func TestAuthToken(t *testing.T) {
	h := start(t, Options{AuthToken: "tok"})
	if a := h.call("GET", "/healthz", "", nil); a.status != 200 {
		t.Errorf("healthz needs no token: %d", a.status)
	}
	if a := h.call("GET", "/invoices", "", nil); a.status != 401 || a.header.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d", a.status)
	}
	if a := h.call("GET", "/invoices", "", nil, "Authorization", "Bearer nope"); a.status != 401 {
		t.Errorf("wrong token: %d", a.status)
	}
	if a := h.call("GET", "/invoices", "", nil, "Authorization", "Bearer tok"); a.status != 200 {
		t.Errorf("right token: %d", a.status)
	}
}

// Faults reads the faults set, a copy.
func TestFaultsReadsWhatWasSet(t *testing.T) {
	s := New(Options{})
	s.SetFaults(Faults{Latency: time.Second, LostResponseRate: 0.25, Script: []int{503}})
	f := s.Faults()
	if f.Latency != time.Second || f.LostResponseRate != 0.25 || len(f.Script) != 1 {
		t.Fatalf("faults %+v", f)
	}
	f.Script[0] = 429
	if s.Faults().Script[0] != 503 {
		t.Error("Faults shares its script with the server")
	}
}

// When the client gives up on a held answer, the log says whether the
// request did anything: a 2xx made its record (the retry gets the replay),
// a fault or a refusal made nothing. It said "the request was processed"
// of every one.
func TestAHeldAnswerGivenUpSaysWhetherAnythingWasMade(t *testing.T) {
	var log testlog.Buffer
	s := New(Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	holding := make(chan struct{}, 1)
	s.onHold = func() { holding <- struct{}{} }
	h := serve(t, s)
	cus := h.customer("c1")
	body, _ := json.Marshal(invoice(cus))
	for _, c := range []struct {
		script []int
		says   string
	}{
		{[]int{503}, "status=503"},
		{nil, "status=201"},
	} {
		s.SetFaults(Faults{Latency: time.Hour, Script: c.script})
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+"/invoices", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("k%d", len(c.script)))
		done := make(chan struct{})
		go func() {
			defer close(done)
			if resp, err := h.srv.Client().Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		<-holding
		cancel()
		<-done
		// The handler logs once it sees the client gone: wait for it.
		var line string
		for deadline := time.Now().Add(time.Minute); line == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			for _, l := range strings.Split(log.String(), "\n") {
				if strings.Contains(l, "client gone") && strings.Contains(l, c.says) {
					line = l
				}
			}
		}
		made := strings.Contains(line, "the request was processed, and its retry under the same key gets the stored answer")
		nothing := strings.Contains(line, "nothing was created")
		if line == "" || made != (c.script == nil) || nothing != (c.script != nil) {
			t.Errorf("%s: log line %q", c.says, line)
		}
	}
	if n := len(s.Invoices()); n != 1 {
		t.Errorf("%d invoices, want 1 (the fault made none)", n)
	}
}
