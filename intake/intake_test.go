package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/testlog"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/metrics"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// listSource accepts any delivery with the header X-Ok and parses a JSON
// array of deal events; it records the URL it was shown.
type listSource struct{ seenURL string }

func (s *listSource) Verify(w *connectors.Webhook) error {
	s.seenURL = w.URL
	if w.Header.Get("X-Ok") == "" {
		return fmt.Errorf("no X-Ok: %w", connectors.ErrUnauthorized)
	}
	if w.Header.Get("X-Ok") == "wrong" { // refused with what to check
		return connectors.Advised(fmt.Errorf("wrong X-Ok: %w", connectors.ErrUnauthorized), "check that X-Ok is connections.crm.source.ok")
	}
	if w.Header.Get("X-Ok") == "unreadable" { // authenticated, but whose is it?
		return fmt.Errorf("no account in the body: %w", connectors.ErrMalformed)
	}
	w.PreviousSecret = w.Header.Get("X-Ok") == "previous" // a secret being rotated out
	return nil
}

func (s *listSource) Parse(w *connectors.Webhook) ([]model.DealEvent, error) {
	var evs []model.DealEvent
	if err := json.Unmarshal(w.Body, &evs); err != nil {
		return nil, fmt.Errorf("%v: %w", err, connectors.ErrMalformed)
	}
	kept := evs[:0]
	for _, ev := range evs {
		switch ev.Account {
		case "stranger":
			return nil, fmt.Errorf("account %q: %w", ev.Account, connectors.ErrUnknownAccount)
		case "unlisted": // dropped from a batch, as HubSpot's source does
			w.Dropped = append(w.Dropped, connectors.IgnoredEvent{EventID: ev.EventID, DealID: ev.Deal.ID, Reason: "dropped: account unlisted is not listed"})
			continue
		case "echo": // read and left out, as a write-back coming back is
			w.Ignored = append(w.Ignored, connectors.IgnoredEvent{EventID: ev.EventID, DealID: ev.Deal.ID, Reason: "dealsync's own write-back"})
			continue
		}
		kept = append(kept, ev)
	}
	return kept, nil
}

type fakeStarter struct {
	mu       sync.Mutex
	started  []string
	notified []string
	failDeal string
	failWith error
	running  map[string]bool
	// losses: deals whose event Notify hands a run that records a loss,
	// a new one (true) or the running one (false), as TemporalStarter does.
	losses map[string]bool
	// holdDeal is a deal whose event Notify holds for its win
	// (ErrWinPending), as TemporalStarter does with a recent change of a
	// won deal that has no run.
	holdDeal string
	// readies, frontends and namespaces count the calls of Ready,
	// CheckFrontend and CheckNamespace.
	readies, frontends, namespaces int
	// nsFailWith is the namespace's problem (CheckNamespace, and Ready
	// when failWith is nil).
	nsFailWith error
}

func (f *fakeStarter) Start(_ context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ev.Deal.ID == f.failDeal {
		return connectors.EventResult{}, f.failWith
	}
	f.started = append(f.started, ev.Deal.ID)
	return connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID, WorkflowID: "wf/" + ev.Deal.ID, RunID: "r"}, nil
}

func (f *fakeStarter) Notify(_ context.Context, _ *connections.Connection, ev model.DealEvent) (connectors.EventResult, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ev.Deal.ID == f.holdDeal {
		return connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID}, false,
			&winPendingError{conn: "crm", eventID: ev.EventID, dealID: ev.Deal.ID, settle: 8 * time.Second, retryAt: time.Now().Add(2 * time.Second)}
	}
	if fresh, ok := f.losses[ev.Deal.ID]; ok {
		return connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID, WorkflowID: "wf/" + ev.Deal.ID, RunID: "rl", Duplicate: !fresh}, true, nil
	}
	if !f.running[ev.Deal.ID] {
		return connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID}, false, nil
	}
	f.notified = append(f.notified, ev.Deal.ID)
	return connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID, WorkflowID: "wf/" + ev.Deal.ID}, true, nil
}

func (f *fakeStarter) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readies++
	if f.failWith != nil {
		return f.failWith
	}
	return f.nsFailWith
}

func (f *fakeStarter) CheckNamespace(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.namespaces++
	return f.nsFailWith
}

// setNSFailWith sets nsFailWith while another goroutine may read it.
func (f *fakeStarter) setNSFailWith(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nsFailWith = err
}

func (f *fakeStarter) CheckFrontend(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frontends++
	return f.failWith
}

// setFailWith sets failWith while another goroutine may read it (Watch).
func (f *fakeStarter) setFailWith(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failWith = err
}

type conns map[string]*connections.Connection

func (c conns) Get(name string) (*connections.Connection, bool) { v, ok := c[name]; return v, ok }

func setup(t *testing.T, public string) (*httptest.Server, *fakeStarter, *listSource) {
	src := &listSource{}
	st := &fakeStarter{running: map[string]bool{}}
	h := New(Options{
		Connections: conns{"crm": {Name: "crm", Source: src, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}, WonStages: []string{"won"}}},
		Starter:     st, PublicBaseURL: public, MaxBodyBytes: 4096,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, st, src
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, b := postBody(t, url, strings.NewReader(body))
	return resp.StatusCode, b
}

// postBody posts body (of unknown length when it is not a strings or
// bytes reader: sent chunked) as a signed JSON delivery.
func postBody(t *testing.T, url string, body io.Reader) (*http.Response, string) {
	t.Helper()
	resp, b, err := tryPost(url, body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// tryPost is postBody for a goroutine other than the test's, where
// t.Fatal must not be called: it returns the error.
func tryPost(url string, body io.Reader) (*http.Response, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Ok", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// delivery is how a delivery posted from another goroutine was answered
// (tryPost).
type delivery struct {
	status int
	body   string
	err    error
}

// postAsync posts body from a goroutine, and sends how it was answered on
// the channel it returns.
func postAsync(url string, body io.Reader) <-chan delivery {
	done := make(chan delivery, 1)
	go func() {
		resp, b, err := tryPost(url, body)
		d := delivery{body: b, err: err}
		if resp != nil {
			d.status = resp.StatusCode
		}
		done <- d
	}()
	return done
}

const batch = `[{"event_id":"e1","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"A","stage":"won"}},
 {"event_id":"e2","occurred_at":"2026-11-20T10:01:00Z","deal":{"id":"B","stage":"open"}},
 {"event_id":"e3","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"C","stage":"won"}}]`

func TestBatchStartsTriggeringEventsOnly(t *testing.T) {
	srv, st, _ := setup(t, "")
	status, body := post(t, srv.URL+"/webhooks/crm", batch)
	if status != http.StatusAccepted {
		t.Fatalf("%d %s", status, body)
	}
	var reply connectors.Reply
	if err := json.Unmarshal([]byte(body), &reply); err != nil {
		t.Fatal(err)
	}
	if len(reply.Results) != 3 || reply.Results[1].Skipped == "" || reply.Results[0].WorkflowID != "wf/A" || reply.Results[2].WorkflowID != "wf/C" {
		t.Fatalf("results %+v", reply.Results)
	}
	if len(st.started) != 2 {
		t.Fatalf("started %v", st.started)
	}
}

// A deal too large for a run's input fails the delivery with 413 but
// stops no other start: a sender may not send a 4xx delivery again.
// Deterministically: A fails at once while G1…G7 hold the other slots;
// C, the ninth deal, starts only after A's slot is freed, and releases
// the G deals, which a cancelled delivery would have ended.
func TestATooLargeDealStopsNoOtherStart(t *testing.T) {
	st := &tooLargeStarter{fakeStarter: fakeStarter{running: map[string]bool{}}, release: make(chan struct{})}
	srv := intakeWithTimeout(t, st, 10*time.Second)
	evs := []string{`{"event_id":"a","deal":{"id":"A","stage":"won"}}`}
	for i := 1; i <= 7; i++ {
		evs = append(evs, fmt.Sprintf(`{"event_id":"g%d","deal":{"id":"G%d","stage":"won"}}`, i, i))
	}
	evs = append(evs, `{"event_id":"c","deal":{"id":"C","stage":"won"}}`)
	started := func() float64 {
		return metrics.Read("dealsync_webhook_events_total", "connection", "crm", "outcome", metrics.EventStarted)
	}
	before := started()
	if status, body := post(t, srv.URL+"/webhooks/crm", "["+strings.Join(evs, ",")+"]"); status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "too large") {
		t.Fatalf("%d %s, want 413", status, body)
	}
	if len(st.started) != 8 || !slices.Contains(st.started, "C") {
		t.Fatalf("started %v, want every deal but A", st.started)
	}
	// The refusal is final: the runs it started are counted now (no retry
	// will count them), and A is not.
	if got := started() - before; got != 8 {
		t.Errorf("events counted started: %v, want the 8 deals started", got)
	}
}

// tooLargeStarter refuses deal A as too large; G deals wait for C's start
// (or their context), C releases them.
type tooLargeStarter struct {
	fakeStarter
	release chan struct{}
}

func (s *tooLargeStarter) Start(ctx context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, error) {
	switch {
	case ev.Deal.ID == "A":
		return connectors.EventResult{}, fmt.Errorf("%w: blob", ErrTooLarge)
	case ev.Deal.ID == "C":
		close(s.release)
	case strings.HasPrefix(ev.Deal.ID, "G"):
		select {
		case <-s.release:
		case <-ctx.Done():
			return connectors.EventResult{}, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		}
	}
	return s.fakeStarter.Start(ctx, conn, ev)
}

func TestAnyFailedStartFailsTheDelivery(t *testing.T) {
	srv2, st2, _ := setup(t, "")
	st2.failDeal, st2.failWith = "C", fmt.Errorf("%w: frontend down", ErrUnavailable)
	// The 503 says when to send again (HTTP's Retry-After), as every 503
	// of the intake does.
	if resp, body := postBody(t, srv2.URL+"/webhooks/crm", strings.NewReader(batch)); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
		t.Fatalf("one start failing: %d, Retry-After %q, %s; want 503 with Retry-After 5", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	st2.failWith = errors.New("search attribute not registered")
	if resp, _ := postBody(t, srv2.URL+"/webhooks/crm", strings.NewReader(batch)); resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Retry-After") != "" {
		t.Fatalf("other start failure: %d, Retry-After %q; want 500 (still not 2xx) without Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	resp, err := http.Get(srv2.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz: %d", resp.StatusCode)
	}
	// An unreachable frontend's own error (its address) is logged, not
	// answered on the webhook port; dealsync's findings are answered.
	st2.failWith = fmt.Errorf("%w: dial tcp 10.0.0.5:7233: connect: connection refused", ErrUnavailable)
	resp, err = http.Get(srv2.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(body), "10.0.0.5") || !strings.Contains(string(body), "does not answer") {
		t.Errorf("readyz with the frontend unreachable: %d %s; want 503 without the frontend's address", resp.StatusCode, body)
	}
}

func TestThinNonTriggeringEventsGoToRunningRuns(t *testing.T) {
	srv, st, _ := setup(t, "")
	st.running["A"] = true
	status, body := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e1","thin":true,"deal":{"id":"A","stage":""}},{"event_id":"e2","thin":true,"deal":{"id":"B","stage":""}}]`)
	// A's event was durably delivered to its run: accepted.
	if status != http.StatusAccepted {
		t.Fatalf("%d %s", status, body)
	}
	if len(st.notified) != 1 || st.notified[0] != "A" || len(st.started) != 0 {
		t.Fatalf("notified %v started %v", st.notified, st.started)
	}
	if !strings.Contains(body, "no run in progress") {
		t.Fatalf("B should be reported skipped: %s", body)
	}
}

// Whole-deal events that do not trigger are dropped, unless the
// connection's runs listen for later events (settle time or linger): then
// they go to the deal's running run too.
func TestWholeDealNonTriggeringEventsGoToRunsThatListen(t *testing.T) {
	srv, st, _ := setup(t, "")
	st.running["A"] = true
	const events = `[{"event_id":"e1","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"A","stage":"won","previous_stage":"won"}},{"event_id":"e2","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"B","stage":"open"}}]`
	if status, body := post(t, srv.URL+"/webhooks/crm", events); status != http.StatusOK || len(st.notified) != 0 {
		t.Fatalf("a connection whose runs do not listen: %d %s, notified %v", status, body, st.notified)
	}

	src := &listSource{}
	listening := New(Options{
		Connections: conns{"crm": {Name: "crm", Source: src, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}, SettleTime: time.Second}},
		Starter:     st, MaxBodyBytes: 4096, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv2 := httptest.NewServer(listening)
	defer srv2.Close()
	status, body := post(t, srv2.URL+"/webhooks/crm", events)
	if status != http.StatusAccepted || len(st.notified) != 1 || st.notified[0] != "A" || len(st.started) != 0 {
		t.Fatalf("%d %s, notified %v, started %v", status, body, st.notified, st.started)
	}
	if !strings.Contains(body, "no run in progress") {
		t.Fatalf("B should be reported skipped: %s", body)
	}
}

func TestRejections(t *testing.T) {
	srv, _, src := setup(t, "https://hooks.example.com/")
	if status, _ := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e","account":"stranger","deal":{"id":"X","stage":"won"}}]`); status != http.StatusForbidden {
		t.Fatalf("unknown account: %d, want 403", status)
	}
	if src.seenURL != "https://hooks.example.com/webhooks/crm" {
		t.Fatalf("signature URL %q does not use the public base URL", src.seenURL)
	}
	if status, _ := post(t, srv.URL+"/webhooks/crm", `[`+strings.Repeat(" ", 5000)+`]`); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("too large: %d", status)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/crm", strings.NewReader("[]"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d", resp.StatusCode)
	}
	// Authenticated by a credential bound to an account, with a body that
	// does not say whose it is: malformed, 400.
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/webhooks/crm", strings.NewReader("{"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Ok", "unreadable")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("authenticated, unreadable: %d, want 400", resp.StatusCode)
	}
}

// A refusal with advice (what to check, by the settings' names) says it
// in the log's line; the sender, not authenticated, is answered the
// refusal alone.
func TestRefusalAdviceIsLoggedNotAnswered(t *testing.T) {
	var logged bytes.Buffer
	srv := httptest.NewServer(New(Options{
		Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}, WonStages: []string{"won"}}},
		Starter:     &fakeStarter{running: map[string]bool{}}, MaxBodyBytes: 4096,
		Logger: slog.New(slog.NewTextHandler(&logged, nil)),
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/crm", strings.NewReader("[]"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Ok", "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"message":"wrong X-Ok: unauthorized"`) || strings.Contains(string(body), "check that") {
		t.Errorf("answered %d %s, want 401 and the refusal alone", resp.StatusCode, body)
	}
	if want := `reason="wrong X-Ok: unauthorized: check that X-Ok is connections.crm.source.ok"`; !strings.Contains(logged.String(), want) {
		t.Errorf("logged %s\nwant it to contain %s", logged.String(), want)
	}
}

func TestWebhooksAndEventsAreCounted(t *testing.T) {
	srv, st, _ := setup(t, "")
	st.running["D"] = true
	st.losses = map[string]bool{"L": true, "M": false}
	read := func(name string, labels ...string) float64 { return metrics.Read(name, labels...) }
	before := map[string]float64{
		"202":       read("dealsync_webhooks_total", "connection", "crm", "code", "202"),
		"503":       read("dealsync_webhooks_total", "connection", "crm", "code", "503"),
		"404":       read("dealsync_webhooks_total", "connection", "", "code", "404"),
		"405":       read("dealsync_webhooks_total", "connection", "", "code", "405"),
		"started":   read("dealsync_webhook_events_total", "connection", "crm", "outcome", metrics.EventStarted),
		"ignored":   read("dealsync_webhook_events_total", "connection", "crm", "outcome", metrics.EventIgnored),
		"notified":  read("dealsync_webhook_events_total", "connection", "crm", "outcome", metrics.EventNotified),
		"latencies": read("dealsync_webhook_duration_seconds", "connection", "crm"),
	}
	if status, body := post(t, srv.URL+"/webhooks/crm", batch); status != http.StatusAccepted {
		t.Fatalf("%d %s", status, body)
	}
	if status, body := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e4","thin":true,"deal":{"id":"D","stage":""}}]`); status != http.StatusAccepted {
		t.Fatalf("%d %s", status, body)
	}
	// A loss that starts a run of its own is a start; one handed to the
	// deal's running run, a notification.
	if status, body := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e5","thin":true,"deal":{"id":"L","stage":"lost"}},{"event_id":"e6","thin":true,"deal":{"id":"M","stage":"lost"}}]`); status != http.StatusAccepted {
		t.Fatalf("%d %s", status, body)
	}
	st.failDeal, st.failWith = "A", fmt.Errorf("%w: frontend down", ErrUnavailable)
	if status, _ := post(t, srv.URL+"/webhooks/crm", batch); status != http.StatusServiceUnavailable {
		t.Fatalf("want 503, got %d", status)
	}
	if status, _ := post(t, srv.URL+"/webhooks/made-up-name", batch); status != http.StatusNotFound {
		t.Fatalf("want 404, got %d", status)
	}
	// The router's refusals of webhook URLs count too, under no
	// connection: a trailing slash, a path too deep, a GET.
	for _, path := range []string{"/webhooks/crm/", "/webhooks/crm/x"} {
		if status, _ := post(t, srv.URL+path, batch); status != http.StatusNotFound {
			t.Fatalf("%s: want 404, got %d", path, status)
		}
	}
	if status, _ := get(t, srv.URL+"/webhooks/crm"); status != http.StatusMethodNotAllowed {
		t.Fatalf("GET: want 405, got %d", status)
	}
	for key, want := range map[string]float64{"202": 3, "503": 1, "404": 3, "405": 1, "started": 3, "ignored": 1, "notified": 2, "latencies": 4} {
		var got float64
		switch key {
		case "202", "503":
			got = read("dealsync_webhooks_total", "connection", "crm", "code", key)
		case "404", "405":
			got = read("dealsync_webhooks_total", "connection", "", "code", key)
		case "latencies":
			got = read("dealsync_webhook_duration_seconds", "connection", "crm")
		default:
			got = read("dealsync_webhook_events_total", "connection", "crm", "outcome", key)
		}
		if got-before[key] != want {
			t.Errorf("%s: counted %v, want %v (events of a refused delivery are not counted)", key, got-before[key], want)
		}
	}
	if got := read("dealsync_webhooks_total", "connection", "made-up-name", "code", "404"); got != 0 {
		t.Errorf("an unknown connection got its own series")
	}
}

// Deliveries admitted by a secret being rotated out are counted per
// connection, so operators see when the CRM has switched to the new one.
func TestPreviousSecretIsCounted(t *testing.T) {
	srv, _, _ := setup(t, "")
	before := metrics.Read("dealsync_webhooks_previous_secret_total", "connection", "crm")
	for _, ok := range []string{"previous", "1", "previous"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/crm", strings.NewReader(batch))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Ok", ok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("X-Ok %s: %d", ok, resp.StatusCode)
		}
	}
	if got := metrics.Read("dealsync_webhooks_previous_secret_total", "connection", "crm") - before; got != 2 {
		t.Errorf("counted %v deliveries by the previous secret, want 2", got)
	}
}

// resolvingSource judges stage "custom-7" won through a look-up that can
// fail, like HubSpot's pipelines API.
type resolvingSource struct {
	listSource
	failWith error
}

func (s *resolvingSource) Resolve(_ context.Context, evs []model.DealEvent) error {
	if s.failWith != nil {
		return s.failWith
	}
	for i := range evs {
		if evs[i].Deal.Stage == "custom-7" {
			evs[i].Deal.Stage = "won"
		}
	}
	return nil
}

// loggingSource logs what it reads of a delivery through the delivery's
// logger, as HubSpot's source does: Parse through the Webhook's, Resolve
// through the context's.
type loggingSource struct{ resolvingSource }

func (s *loggingSource) Parse(w *connectors.Webhook) ([]model.DealEvent, error) {
	w.LogOf(slog.New(slog.DiscardHandler)).Warn("parsed by the source")
	return s.resolvingSource.Parse(w)
}

func (s *loggingSource) Resolve(ctx context.Context, evs []model.DealEvent) error {
	connectors.LoggerFrom(ctx, slog.New(slog.DiscardHandler)).Warn("resolved by the source")
	return s.resolvingSource.Resolve(ctx, evs)
}

// The intake gives a source the delivery's logger, so that what the source
// logs of it names the connection (and the intake's component) as the
// intake's own lines do.
func TestSourcesLogThroughTheDeliverysLogger(t *testing.T) {
	srv, _, logged := loggedHandlerOf(t, &loggingSource{})
	if status, body := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e1","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"A","stage":"won"}}]`); status != http.StatusAccepted {
		t.Fatalf("%d %s", status, body)
	}
	for _, want := range []string{`level=WARN msg="parsed by the source" connection=crm`, `level=WARN msg="resolved by the source" connection=crm`} {
		if !strings.Contains(logged(), want) {
			t.Errorf("the log lacks %s:\n%s", want, logged())
		}
	}
}

// A source's look-up runs between parsing and the trigger; when the CRM
// cannot be asked, nothing starts and the answer makes the CRM retry.
func TestEventResolverRunsBeforeTheTrigger(t *testing.T) {
	src := &resolvingSource{}
	st := &fakeStarter{running: map[string]bool{}}
	now := time.Date(2026, 11, 20, 10, 5, 0, 0, time.UTC)
	logs := &testlog.Buffer{}
	h := New(Options{
		Connections: conns{"crm": {Name: "crm", Source: src, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}}},
		Starter:     st, MaxBodyBytes: 4096,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Now:    func() time.Time { return now },
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	body := `[{"event_id":"e1","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"A","stage":"custom-7"}},{"event_id":"e2","occurred_at":"2026-11-20T10:01:00Z","deal":{"id":"B","stage":"custom-8"}}]`

	// The sender is told the CRM's API did not answer, not its URL or the
	// network's error (a proxy's address): those are logged.
	src.failWith = fmt.Errorf(`pipelines: Get "http://10.0.0.9:3128/crm/v3/pipelines/deals": dial tcp 10.0.0.9:3128: connection refused: %w`, connectors.ErrCRMUnavailable)
	if resp, reply := postBody(t, srv.URL+"/webhooks/crm", strings.NewReader(body)); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(reply, "could not ask the CRM's API") ||
		strings.Contains(reply, "10.0.0.9") || resp.Header.Get("Retry-After") != "5" {
		t.Errorf("CRM API down: %d, Retry-After %q, %s; want 503 with Retry-After 5, without the API's address", resp.StatusCode, resp.Header.Get("Retry-After"), reply)
	}
	// A refusal that knows when the CRM is asked again says so, in whole
	// seconds rounded up; one whose time has passed says 1.
	src.failWith = fmt.Errorf("pipelines: %w", retryAtError{fmt.Errorf("%w: 502", connectors.ErrCRMUnavailable), now.Add(21200 * time.Millisecond)})
	if resp, _ := postBody(t, srv.URL+"/webhooks/crm", strings.NewReader(body)); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "22" {
		t.Errorf("CRM API down until a known time: %d, Retry-After %q; want 503 with Retry-After 22", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	src.failWith = retryAtError{fmt.Errorf("%w: 502", connectors.ErrCRMUnavailable), now.Add(-time.Second)}
	if resp, _ := postBody(t, srv.URL+"/webhooks/crm", strings.NewReader(body)); resp.Header.Get("Retry-After") != "1" {
		t.Errorf("CRM API down until a time past: Retry-After %q, want 1", resp.Header.Get("Retry-After"))
	}
	src.failWith = fmt.Errorf("portal 9: %w", connectors.ErrUnknownAccount)
	if status, _ := post(t, srv.URL+"/webhooks/crm", body); status != http.StatusForbidden {
		t.Errorf("unknown account found by the look-up: %d", status)
	}
	// The CRM's outage is the intake's failure to judge the delivery,
	// with the error; an account the connection does not take is a
	// refusal, with its reason, not something to retry.
	for _, want := range []string{
		`level=WARN msg="webhook not judged; sender must retry" connection=crm status=503 error="pipelines: Get`,
		`level=INFO msg="webhook refused" connection=crm status=403 reason="portal 9: `,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, logs.String())
		}
	}
	if len(st.started) != 0 {
		t.Fatalf("started %v while the look-up failed", st.started)
	}
	src.failWith = nil
	if status, reply := post(t, srv.URL+"/webhooks/crm", body); status != http.StatusAccepted || len(st.started) != 1 || st.started[0] != "A" {
		t.Errorf("after the look-up: %d %s, started %v", status, reply, st.started)
	}
}

// slowStarter's starts take a while; a signal finds a run only once its
// start has returned, as with Temporal.
type slowStarter struct {
	mu      sync.Mutex
	running map[string]bool
	fail    string
	calls   []string
}

func (s *slowStarter) Start(_ context.Context, _ *connections.Connection, ev model.DealEvent) (connectors.EventResult, error) {
	time.Sleep(30 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "start "+ev.EventID)
	if ev.Deal.ID == s.fail {
		return connectors.EventResult{}, fmt.Errorf("starting the run: %w", ErrUnavailable)
	}
	s.running[ev.Deal.ID] = true
	return connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID, WorkflowID: "wf/" + ev.Deal.ID, RunID: "r"}, nil
}

func (s *slowStarter) Notify(_ context.Context, _ *connections.Connection, ev model.DealEvent) (connectors.EventResult, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "notify "+ev.EventID)
	return connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID, WorkflowID: "wf/" + ev.Deal.ID}, s.running[ev.Deal.ID], nil
}

func (s *slowStarter) Ready(context.Context) error { return nil }

// A batch with a deal's won event and then a later change of the same deal
// (a connection whose runs listen): the change reaches the run that the
// won event starts, never before its start, where it would find no run
// and be dropped. Another deal goes alongside. When a deal's start fails,
// its later events are not sent (the delivery is refused and retried).
func TestBatchEventsOfOneDealFollowItsStart(t *testing.T) {
	st := &slowStarter{running: map[string]bool{}}
	h := New(Options{
		Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}, SettleTime: time.Minute}},
		Starter:     st, MaxBodyBytes: 4096,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	status, body := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e1","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"A","stage":"won"}},
 {"event_id":"e2","occurred_at":"2026-11-20T10:01:00Z","deal":{"id":"A","stage":"lost"}},
 {"event_id":"e3","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"B","stage":"won"}}]`)
	var reply connectors.Reply
	if err := json.Unmarshal([]byte(body), &reply); err != nil || status != http.StatusAccepted || len(reply.Results) != 3 {
		t.Fatalf("%d %s", status, body)
	}
	if r := reply.Results[1]; r.Skipped != "" || r.WorkflowID != "wf/A" {
		t.Errorf("the lost event of deal A: %+v, want it delivered to A's run", r)
	}
	if i, j := slices.Index(st.calls, "start e1"), slices.Index(st.calls, "notify e2"); i < 0 || j < i {
		t.Errorf("calls %v: want e1's start before e2's signal", st.calls)
	}

	st.fail, st.calls = "C", nil
	status, body = post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e4","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"C","stage":"won"}},
 {"event_id":"e5","occurred_at":"2026-11-20T10:01:00Z","deal":{"id":"C","stage":"lost"}}]`)
	if status != http.StatusServiceUnavailable || slices.Contains(st.calls, "notify e5") {
		t.Errorf("failed start: %d %s, calls %v; want 503 and e5 not sent", status, body, st.calls)
	}
}

// timeoutBody gives a few bytes, then fails as a read deadline does.
type timeoutBody struct{ sent bool }

func (b *timeoutBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, `[{"event_id":`), nil
	}
	// As a connection's read deadline fails it: naming its addresses.
	addr := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 8080}
	return 0, &net.OpError{Op: "read", Net: "tcp", Source: addr, Addr: addr, Err: os.ErrDeadlineExceeded}
}

func (b *timeoutBody) Close() error { return nil }

// A body that stops coming (the server's read timeout) is answered 408,
// which senders retry, not 400 as if it were malformed.
func TestBodyReadTimeoutIs408(t *testing.T) {
	srv, st, _ := setup(t, "")
	h := srv.Config.Handler
	for _, length := range []int64{-1, 100} { // chunked, declared
		req := httptest.NewRequest(http.MethodPost, "/webhooks/crm", nil)
		req.Body = &timeoutBody{}
		req.ContentLength = length
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Ok", "1")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestTimeout || len(st.started) != 0 {
			t.Fatalf("length %d: %d %s, %d started; want 408", length, rec.Code, rec.Body, len(st.started))
		}
		// The connection's addresses are logged, not answered.
		if body := rec.Body.String(); strings.Contains(body, "10.0.0.9") || !strings.Contains(body, "did not arrive within the intake's read timeout") {
			t.Errorf("length %d: body %s; want the timeout said without the connection's addresses", length, body)
		}
	}
}

// The bodies one replica holds at once are bounded (MaxInFlightBytes,
// here one MaxBodyBytes): while a chunked delivery, read into a buffer of
// its first 4 KiB (here all it may hold), waits for its start, another
// is answered 503 with Retry-After, without being read; once the first
// is answered, the second goes through. A chunked body past MaxBodyBytes
// is 413, as a declared one is.
func TestBodiesInFlightAreBounded(t *testing.T) {
	st := &gatedStarter{fakeStarter: fakeStarter{running: map[string]bool{}}, entered: make(chan string, 16), gate: make(chan struct{})}
	logs := &testlog.Buffer{}
	h := New(Options{
		Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}}},
		Starter:     st, MaxBodyBytes: 4096, MaxInFlightBytes: 4096, StartTimeout: time.Minute,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	send := func(body io.Reader) (*http.Response, string) {
		t.Helper()
		return postBody(t, srv.URL+"/webhooks/crm", body)
	}
	chunked := func(s string) io.Reader { return io.MultiReader(strings.NewReader(s)) }

	if resp, body := send(chunked("[" + strings.Repeat(" ", 5000) + "]")); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked, too large: %d %s, want 413", resp.StatusCode, body)
	}
	// A chunked body past the bound whose sender then stalls (no last
	// chunk) gets its 413 while it stalls, not at the read timeout (here
	// none: it would never come). The bound below only ends a failing test.
	stalled, stall := io.Pipe()
	defer stall.Close()
	go func() { _, _ = stall.Write([]byte("[" + strings.Repeat(" ", 5000))) }()
	select {
	case d := <-postAsync(srv.URL+"/webhooks/crm", stalled):
		if d.err != nil || d.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked, too large, then stalled: %d %s %v, want 413", d.status, d.body, d.err)
		}
	case <-time.After(time.Minute):
		t.Fatal("no answer to a chunked body past the bound while its sender stalls")
	}
	first := postAsync(srv.URL+"/webhooks/crm", chunked(`[{"event_id":"e1","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"A","stage":"won"}}]`))
	select {
	case got := <-st.entered:
		if got != "A" {
			t.Fatalf("start of %s, want A", got)
		}
	case d := <-first:
		t.Fatalf("first delivery answered before its start: %d %s %v", d.status, d.body, d.err)
	}
	second := `[{"event_id":"e2","occurred_at":"2026-11-20T10:01:00Z","deal":{"id":"B","stage":"won"}}]`
	resp, body := send(strings.NewReader(second))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, "in flight") || !resp.Close {
		t.Fatalf("second delivery while the first is held: %d, Retry-After %q, closed %v, %s; want 503 with Retry-After 1, the connection closed (the body unread)", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close, body)
	}
	if want := `level=WARN msg="webhook refused" connection=crm status=503 reason="this replica holds as many webhook bodies as intake.max_inflight_bytes allows; the sender must retry" bytes=`; !strings.Contains(logs.String(), want) {
		t.Errorf("the log lacks %q:\n%s", want, logs.String())
	}
	close(st.gate)
	if d := <-first; d.err != nil || d.status != http.StatusAccepted {
		t.Fatalf("first delivery: %d %s %v, want 202", d.status, d.body, d.err)
	}
	go func() { <-st.entered }()
	if resp, body := send(strings.NewReader(second)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("second delivery once the first is answered: %d %s, want 202", resp.StatusCode, body)
	}
	if got := st.started; len(got) != 2 || got[0] != "A" || got[1] != "B" {
		t.Fatalf("started %v, want [A B]", got)
	}
}

// A sender that declares a large body and stalls holds the bytes it
// sent, not those it declared: eight such connections, each declaring
// the largest body, held the whole bound, and a signed delivery of any
// connection got 503 until they timed out.
func TestStalledBodiesHoldWhatTheySent(t *testing.T) {
	st := &fakeStarter{running: map[string]bool{}}
	h := New(Options{
		Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}}},
		Starter:     st, MaxBodyBytes: 64 << 10, MaxInFlightBytes: 8 * 64 << 10, StartTimeout: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for range 8 {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "POST /webhooks/crm HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n[", 64<<10)
	}
	// Wait until the eight stalled bodies hold their first reads, and
	// nothing more: exactly eight first reads are held (the bound below
	// only ends a failing test).
	held := func() int64 {
		total := int64(8 * 64 << 10)
		for n := total; n > 0; n -= firstRead {
			if h.inFlight.TryAcquire(n) {
				h.inFlight.Release(n)
				return total - n
			}
		}
		return total
	}
	for deadline := time.Now().Add(10 * time.Second); held() != 8*firstRead; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled bodies hold %d bytes, want eight first reads (%d)", held(), 8*firstRead)
		}
	}
	resp, body := postBody(t, srv.URL+"/webhooks/crm", strings.NewReader(`[{"event_id":"e1","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"A","stage":"won"}}]`))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a delivery beside stalled ones: %d %s, want 202", resp.StatusCode, body)
	}
}

// What a body holds is given back whatever its answer: a 503 when its
// buffer would grow past the bound, a 400 for a body shorter than
// declared, a 413 for a chunked one past max_body_bytes.
func TestBodiesGiveBackWhatTheyHeld(t *testing.T) {
	st := &fakeStarter{running: map[string]bool{}}
	const bound = 16 << 10
	h := New(Options{
		Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}}},
		Starter:     st, MaxBodyBytes: bound, MaxInFlightBytes: bound, StartTimeout: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	whole := func(what string) {
		t.Helper()
		if !h.inFlight.TryAcquire(bound) {
			t.Fatalf("after %s: the bound is not whole again", what)
		}
		h.inFlight.Release(bound)
	}
	// A stalled body holds its first read, so another's growth past the
	// rest is refused.
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /webhooks/crm HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n[", bound)
	for deadline := time.Now().Add(10 * time.Second); h.inFlight.TryAcquire(bound - firstRead + 1); {
		h.inFlight.Release(bound - firstRead + 1)
		if time.Now().After(deadline) {
			t.Fatal("the stalled body is not being read")
		}
		time.Sleep(10 * time.Millisecond)
	}
	big := "[" + strings.Repeat(" ", bound-2) + "]"
	if resp, body := postBody(t, srv.URL+"/webhooks/crm", io.MultiReader(strings.NewReader(big))); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a body growing past the bound: %d %s, want 503", resp.StatusCode, body)
	}
	c.Close()
	for deadline := time.Now().Add(10 * time.Second); !h.inFlight.TryAcquire(bound); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("after a 503 and a stalled body's end: the bound is not whole again")
		}
	}
	h.inFlight.Release(bound)

	short, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(short, "POST /webhooks/crm HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{")
	short.(*net.TCPConn).CloseWrite()
	answer, _ := io.ReadAll(short)
	short.Close()
	if !strings.HasPrefix(string(answer), "HTTP/1.1 400") {
		t.Fatalf("a body shorter than declared: %q, want 400", answer)
	}
	whole("a 400")
	if resp, body := postBody(t, srv.URL+"/webhooks/crm", io.MultiReader(strings.NewReader(big+"  "))); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked, too large: %d %s, want 413", resp.StatusCode, body)
	}
	whole("a 413")
}

// The access log's bytes_in is what was read of the body, not what it
// declared: a sender that sent 2 bytes of 3,000 and closed its side is
// logged bytes_in=2 beside content_length=3000, a chunked body with its
// length, a body refused unread with 0. A body cut off (the connection
// closed or reset before it was whole) is answered 400 but counted as
// client_gone, not as a 400 of a payload the source cannot read, and
// logged as such.
func TestBytesInAreTheBytesRead(t *testing.T) {
	srv, h, logged := loggedHandler(t, slog.LevelInfo, &fakeStarter{running: map[string]bool{}})
	count := func(code string) float64 {
		return metrics.Read("dealsync_webhooks_total", "connection", "crm", "code", code)
	}
	gone0, bad0 := count(metrics.CodeClientGone), count("400")

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /webhooks/crm HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3000\r\n\r\n[{")
	c.(*net.TCPConn).CloseWrite()
	answer, _ := io.ReadAll(c)
	c.Close()
	if !strings.HasPrefix(string(answer), "HTTP/1.1 400") {
		t.Fatalf("a body cut off: %q, want 400", answer)
	}
	for _, want := range []string{
		`msg="webhook refused" connection=crm status=400 reason="the sender closed the connection before its body was whole (2 of its 3000 bytes read, counted as client_gone): unexpected EOF"`,
		`msg="http request" method=POST path=/webhooks/crm status=400 bytes_in=2 content_length=3000 client_gone=true duration=`,
	} {
		if !strings.Contains(logged(), want) {
			t.Errorf("the log lacks %s:\n%s", want, logged())
		}
	}
	if gone, bad := count(metrics.CodeClientGone)-gone0, count("400")-bad0; gone != 1 || bad != 0 {
		t.Errorf("counted client_gone %v, 400 %v; want the body cut off as client_gone only", gone, bad)
	}

	// Chunked, whole: its length, and nothing declared.
	delivery := `[{"event_id":"e1","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"A","stage":"won"}}]`
	if resp, body := postBody(t, srv.URL+"/webhooks/crm", io.MultiReader(strings.NewReader(delivery))); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("chunked: %d %s", resp.StatusCode, body)
	}
	if want := fmt.Sprintf(`status=202 bytes_in=%d duration=`, len(delivery)); !strings.Contains(logged(), want) {
		t.Errorf("the log lacks %s:\n%s", want, logged())
	}
	// Refused before its body is read: 0 read of what it declared.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/crm", strings.NewReader(delivery))
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := fmt.Sprintf(`status=415 bytes_in=0 content_length=%d duration=`, len(delivery)); resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(logged(), want) {
		t.Errorf("%d; the log lacks %s:\n%s", resp.StatusCode, want, logged())
	}

	// Reset mid-body (chunked): client_gone too.
	c, err = net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /webhooks/crm HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[{\"\r\n")
	// Once the handler reads the body (it holds its first read), reset.
	for deadline := time.Now().Add(10 * time.Second); h.inFlight.TryAcquire(h.opts.MaxInFlightBytes); time.Sleep(10 * time.Millisecond) {
		h.inFlight.Release(h.opts.MaxInFlightBytes)
		if time.Now().After(deadline) {
			t.Fatal("the chunked body is not being read")
		}
	}
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	for deadline := time.Now().Add(10 * time.Second); count(metrics.CodeClientGone)-gone0 != 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a body reset mid-way is not counted as client_gone:\n%s", logged())
		}
	}
	if bad := count("400") - bad0; bad != 0 {
		t.Errorf("counted 400 %v; want none", bad)
	}
}

// A body whose read fails because this process closed the connection
// itself (net.ErrClosed, as in the server's own shutdown) is not counted
// as the sender's leaving (client_gone), nor logged as the sender having
// closed it.
func TestABodyTheServerClosedIsNotClientGone(t *testing.T) {
	_, h, logged := loggedHandler(t, slog.LevelInfo, &fakeStarter{running: map[string]bool{}})
	count := func(code string) float64 {
		return metrics.Read("dealsync_webhooks_total", "connection", "crm", "code", code)
	}
	gone0, bad0 := count(metrics.CodeClientGone), count("400")
	closed := &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}
	req := httptest.NewRequest(http.MethodPost, "/webhooks/crm", io.MultiReader(strings.NewReader("[{"), iotest.ErrReader(closed)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("%d %s, want 400", rec.Code, rec.Body)
	}
	if gone, bad := count(metrics.CodeClientGone)-gone0, count("400")-bad0; gone != 0 || bad != 1 {
		t.Errorf("counted client_gone %v, 400 %v; want a 400 only", gone, bad)
	}
	if strings.Contains(logged(), "the sender closed the connection") || !strings.Contains(logged(), "reading the body failed") {
		t.Errorf("the log blames the sender, or lacks the failed read:\n%s", logged())
	}
}

// gatedStarter holds every start until the test lets it through.
type gatedStarter struct {
	fakeStarter
	entered chan string
	gate    chan struct{}

	mu    sync.Mutex
	times []startTimes // of each start, in the order they came
	// inFlight counts the starts under way, maxInFlight the most at once.
	inFlight, maxInFlight int
}

// startTimes is when a start came and the deadline its context had.
type startTimes struct {
	entered, deadline time.Time
}

func (g *gatedStarter) Start(ctx context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, error) {
	dl, _ := ctx.Deadline()
	g.mu.Lock()
	g.times = append(g.times, startTimes{entered: time.Now(), deadline: dl})
	g.inFlight++
	g.maxInFlight = max(g.maxInFlight, g.inFlight)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
	}()
	g.entered <- ev.Deal.ID
	select {
	case <-g.gate:
	case <-ctx.Done():
		return connectors.EventResult{}, fmt.Errorf("start of %s: %w", ev.Deal.ID, ErrUnavailable)
	}
	return g.fakeStarter.Start(ctx, conn, ev)
}

// gatedIntake is an intake whose starts wait for the test's gate.
func gatedIntake(t *testing.T, timeout time.Duration) (*httptest.Server, *gatedStarter) {
	st := &gatedStarter{fakeStarter: fakeStarter{running: map[string]bool{}}, entered: make(chan string, 16), gate: make(chan struct{})}
	return intakeWithTimeout(t, st, timeout), st
}

// intakeWithTimeout is an intake of connection crm (won stage "won")
// starting with st, each start within timeout.
func intakeWithTimeout(t *testing.T, st Starter, timeout time.Duration) *httptest.Server {
	h := New(Options{
		Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}}},
		Starter:     st, MaxBodyBytes: 1 << 16, StartTimeout: timeout,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// Each start of a batch has StartTimeout, not the batch as a whole: a
// batch of 16 deals whose starts go 8 at a time is acknowledged, each
// start's deadline is its own StartTimeout away (not the batch's), and the
// second wave's starts, which begin once the first is answered, get later
// deadlines than the first's (held to one start's time, a second wave
// would run out of it, and every retry of the batch would too).
func TestEachStartOfABatchHasItsOwnTimeout(t *testing.T) {
	const timeout, wave = 10 * time.Second, 8
	srv, st := gatedIntake(t, timeout)
	var evs []string
	for i := range 2 * wave {
		evs = append(evs, fmt.Sprintf(`{"event_id":"e%d","deal":{"id":"D%d","stage":"won"}}`, i, i))
	}
	done := postAsync(srv.URL+"/webhooks/crm", strings.NewReader("["+strings.Join(evs, ",")+"]"))
	// Two waves: wait until one is in, answer it. The delivery ending
	// first (its starts ran out of time, or the POST failed) fails.
	var a delivery
	answered := false
waves:
	for range 2 {
		for range wave {
			select {
			case <-st.entered:
			case a = <-done:
				answered = true
				break waves
			}
		}
		for range wave {
			select {
			case st.gate <- struct{}{}:
			case a = <-done:
				answered = true
				break waves
			}
		}
	}
	if !answered {
		a = <-done
	}
	if a.err != nil || a.status != http.StatusAccepted || len(st.started) != 2*wave {
		t.Fatalf("%d %s %v, %d started; want all %d acknowledged", a.status, a.body, a.err, len(st.started), 2*wave)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.maxInFlight != wave {
		t.Errorf("%d starts at once, want the intake's limit of %d", st.maxInFlight, wave)
	}
	var firstLatest time.Time
	for i, s := range st.times {
		if s.deadline.IsZero() || s.deadline.Sub(s.entered) > timeout {
			t.Errorf("start %d: deadline %v after it came, want at most its own StartTimeout %v", i, s.deadline.Sub(s.entered), timeout)
		}
		if i < wave && s.deadline.After(firstLatest) {
			firstLatest = s.deadline
		}
		if i >= wave && !s.deadline.After(firstLatest) {
			t.Errorf("start %d of the second wave has deadline %v, not after the first wave's %v: the starts share one clock", i, s.deadline, firstLatest)
		}
	}
}

// A delivery's starts have BatchTimeouts StartTimeouts in all: six events
// of one deal, each start answered after most of its own time, run past
// it, and the delivery is answered 503 (the sender retries) rather than
// keep it waiting.
func TestADeliveryHasADeadlineOfItsOwn(t *testing.T) {
	const timeout = time.Second
	srv, st := gatedIntake(t, timeout)
	var evs []string
	for i := range 6 {
		evs = append(evs, fmt.Sprintf(`{"event_id":"e%d","deal":{"id":"D","stage":"won"}}`, i))
	}
	done := postAsync(srv.URL+"/webhooks/crm", strings.NewReader("["+strings.Join(evs, ",")+"]"))
	var d delivery
	for answered := false; !answered; {
		select {
		case <-st.entered:
			time.Sleep(timeout * 7 / 10)
			select {
			case st.gate <- struct{}{}:
			case d = <-done:
				answered = true
			}
		case d = <-done:
			answered = true
		}
	}
	if d.err != nil || d.status != http.StatusServiceUnavailable || len(st.started) >= 6 {
		t.Fatalf("%d %v after %d starts; want 503 before the sixth", d.status, d.err, len(st.started))
	}
}

// Events a source dropped from a delivery (of CRM accounts the connection
// does not list) are counted, so operators see them, and answered with
// their reason, as every event of a delivery is.
func TestDroppedEventsAreCounted(t *testing.T) {
	srv, st, _ := setup(t, "")
	before := metrics.Read("dealsync_webhook_events_total", "connection", "crm", "outcome", metrics.EventDropped)
	status, body := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e1","account":"unlisted","deal":{"id":"X","stage":"won"}},{"event_id":"e2","occurred_at":"2026-11-20T10:01:00Z","deal":{"id":"A","stage":"won"}}]`)
	if status != http.StatusAccepted || len(st.started) != 1 {
		t.Fatalf("%d %s, started %v", status, body, st.started)
	}
	var reply struct{ Results []connectors.EventResult }
	if err := json.Unmarshal([]byte(body), &reply); err != nil {
		t.Fatal(err)
	}
	want := connectors.EventResult{EventID: "e1", DealID: "X", Skipped: "dropped: account unlisted is not listed"}
	if len(reply.Results) != 2 || reply.Results[0].EventID != "e2" || reply.Results[1] != want {
		t.Errorf("results %+v; want e2's, then the dropped e1 with its reason", reply.Results)
	}
	if got := metrics.Read("dealsync_webhook_events_total", "connection", "crm", "outcome", metrics.EventDropped) - before; got != 1 {
		t.Errorf("dropped events counted: %v, want 1", got)
	}

	// A delivery refused (here: Temporal down) comes again; its dropped
	// events count once, with the delivery that goes through.
	st.failDeal, st.failWith = "A", fmt.Errorf("%w: frontend down", ErrUnavailable)
	before = metrics.Read("dealsync_webhook_events_total", "connection", "crm", "outcome", metrics.EventDropped)
	if status, body := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e1","account":"unlisted","deal":{"id":"X","stage":"won"}},{"event_id":"e2","occurred_at":"2026-11-20T10:01:00Z","deal":{"id":"A","stage":"won"}}]`); status != http.StatusServiceUnavailable {
		t.Fatalf("%d %s, want 503", status, body)
	}
	if got := metrics.Read("dealsync_webhook_events_total", "connection", "crm", "outcome", metrics.EventDropped) - before; got != 0 {
		t.Errorf("a refused delivery counted %v dropped events; it comes again", got)
	}
}

// Events a source read and left out (another object's, a deletion,
// dealsync's own write-back) are each answered with their reason and
// counted as ignored, once, with the delivery that goes through: every
// event of a delivery is accounted for.
func TestEventsTheSourceLeftOutAreAnsweredAndCounted(t *testing.T) {
	srv, st, _ := setup(t, "")
	ignored := func() float64 {
		return metrics.Read("dealsync_webhook_events_total", "connection", "crm", "outcome", metrics.EventIgnored)
	}
	const delivery = `[{"event_id":"e1","account":"echo","deal":{"id":"X","stage":"won"}},{"event_id":"e2","occurred_at":"2026-11-20T10:01:00Z","deal":{"id":"A","stage":"won"}}]`
	before := ignored()
	status, body := post(t, srv.URL+"/webhooks/crm", delivery)
	var reply struct{ Results []connectors.EventResult }
	if err := json.Unmarshal([]byte(body), &reply); err != nil {
		t.Fatal(err)
	}
	want := connectors.EventResult{EventID: "e1", DealID: "X", Skipped: "dealsync's own write-back"}
	if status != http.StatusAccepted || len(st.started) != 1 || len(reply.Results) != 2 || reply.Results[1] != want {
		t.Fatalf("%d %s, started %v; want 202 with e2 started and e1 answered %+v", status, body, st.started, want)
	}
	if got := ignored() - before; got != 1 {
		t.Errorf("ignored events counted: %v, want 1", got)
	}

	// Only left-out events: 200, each answered.
	before = ignored()
	status, body = post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e3","account":"echo","deal":{"id":"Y","stage":"won"}}]`)
	if status != http.StatusOK || !strings.Contains(body, `"event_id":"e3"`) || !strings.Contains(body, `"skipped":"dealsync's own write-back"`) {
		t.Errorf("a delivery of a left-out event only: %d %s; want 200 answering e3 with its reason", status, body)
	}
	if got := ignored() - before; got != 1 {
		t.Errorf("ignored events counted: %v, want 1", got)
	}

	// A refused delivery comes again: its left-out events count then.
	st.failDeal, st.failWith = "A", fmt.Errorf("%w: frontend down", ErrUnavailable)
	before = ignored()
	if status, body := post(t, srv.URL+"/webhooks/crm", strings.Replace(delivery, `"e2"`, `"e4"`, 1)); status != http.StatusServiceUnavailable {
		t.Fatalf("%d %s, want 503", status, body)
	}
	if got := ignored() - before; got != 0 {
		t.Errorf("a refused delivery counted %v ignored events; it comes again", got)
	}
}

// Deals whose starts were never tried (the delivery's time ran out
// between two of them, here before any) fail the delivery: it must not be
// acknowledged with runs missing.
func TestDealsNotStartedFailTheDelivery(t *testing.T) {
	st := &fakeStarter{running: map[string]bool{}}
	h := New(Options{Starter: st, StartTimeout: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	conn := &connections.Connection{Name: "crm", Trigger: mapping.StageTrigger{WonStages: []string{"won"}}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	events := []model.DealEvent{{EventID: "e1", Deal: model.Deal{ID: "A", Stage: "won"}}, {EventID: "e2", Deal: model.Deal{ID: "B", Stage: "won"}}}
	if _, _, err := h.startAll(ctx, conn, events); !errors.Is(err, ErrUnavailable) || len(st.started) != 0 {
		t.Fatalf("err %v, started %v; want ErrUnavailable and nothing acknowledged", err, st.started)
	}
}

// failingTrigger fails on deal "bad"'s whole-deal events, calls its thin
// ones not won, and triggers on the others.
type failingTrigger struct{}

func (failingTrigger) Evaluate(ev model.DealEvent) (bool, string, error) {
	switch {
	case ev.Deal.ID == "bad" && ev.Thin:
		return false, "not won", nil
	case ev.Deal.ID == "bad":
		return false, "", errors.New(`mapping "m": field trigger: index out of range`)
	}
	return true, "", nil
}

// A trigger that fails on a deal of the delivery refuses the delivery with
// 500: the deal may be won, and the CRM sends it again once the mapping is
// fixed (acknowledging it as "not won" would lose it). None of that deal's
// events is handed on, not even one its trigger judged; the other deals'
// runs start as usual (and meet themselves as duplicates when the delivery
// comes again).
func TestFailingTriggerRefusesTheDelivery(t *testing.T) {
	var logs *testlog.Buffer
	setup := func() (*httptest.Server, *fakeStarter) {
		st := &fakeStarter{running: map[string]bool{"bad": true}} // a signal to it would be recorded
		logs = &testlog.Buffer{}
		h := New(Options{
			Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: failingTrigger{}}},
			Starter:     st, MaxBodyBytes: 4096, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		})
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv, st
	}
	const bad = `{"event_id":"e2","occurred_at":"2026-11-20T10:01:00Z","deal":{"id":"bad","stage":"won"}},{"event_id":"e3","thin":true,"deal":{"id":"bad","stage":"won"}}`
	srv, st := setup()
	status, body := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e1","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"A","stage":"won"}},`+bad+`,{"event_id":"e4","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"C","stage":"won"}}]`)
	// The sender is told which deal and event, not the mapping's file,
	// expression or error (the CRM's delivery logs are not dealsync's):
	// those are logged.
	if status != http.StatusInternalServerError || !strings.Contains(body, "fix the mapping") || !strings.Contains(body, "(deal bad, event e2;") ||
		strings.Contains(body, "index out of range") || strings.Contains(body, `mapping \"m\"`) {
		t.Fatalf("%d %s, want 500 naming the deal and event whose trigger failed, not the expression's error", status, body)
	}
	slices.Sort(st.started)
	if !slices.Equal(st.started, []string{"A", "C"}) || len(st.notified) != 0 {
		t.Fatalf("started %v, notified %v: want A and C started and nothing of the deal whose trigger failed", st.started, st.notified)
	}
	// Logged for an integration engineer, as docs/mappings.md says: at
	// error level, "webhook not acknowledged", with the trigger's error,
	// and how many of the delivery's events reached their runs (A's and
	// C's: sent again, they meet them as duplicates).
	logged := logs.String()
	if !strings.Contains(logged, `level=ERROR msg="webhook not acknowledged; sender must retry" connection=crm status=500 taken=2 events=4 error=`) || !strings.Contains(logged, "index out of range") {
		t.Errorf("the log does not say the trigger failed at error level:\n%s", logged)
	}

	// Nothing but the failing deal: refused, nothing handed on.
	srv, st = setup()
	if status, body := post(t, srv.URL+"/webhooks/crm", `[`+bad+`]`); status != http.StatusInternalServerError || len(st.started)+len(st.notified) != 0 {
		t.Fatalf("%d %s, started %v, notified %v", status, body, st.started, st.notified)
	}

	// A start that fails as well: 503 (the engine), and both errors said,
	// the engine's by a fixed sentence (its own text, "dial tcp
	// 10.0.0.5:7233: …", is for the log, not the sender).
	srv, st = setup()
	st.failDeal, st.failWith = "A", fmt.Errorf("%w: starting wf/A: dial tcp 10.0.0.5:7233: frontend down", ErrUnavailable)
	status, body = post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e1","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"A","stage":"won"}},`+bad+`]`)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "workflow engine did not confirm") || !strings.Contains(body, "trigger could not be evaluated") ||
		strings.Contains(body, "10.0.0.5") || strings.Contains(body, "index out of range") {
		t.Fatalf("%d %s, want 503 naming the engine's failure without its address, and the trigger's failure without its error", status, body)
	}
}

// At debug level, an acknowledged delivery logs where each of its events
// went: the event, its deal, the outcome and the run, for an operator
// following one delivery to its run.
func TestDebugLogFollowsEachEventToItsRun(t *testing.T) {
	srv, _, logged := loggedHandler(t, slog.LevelDebug, &fakeStarter{running: map[string]bool{}})
	if status, body := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e1","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"D1","stage":"won"}},{"event_id":"e2","occurred_at":"2026-11-20T10:01:00Z","deal":{"id":"D2","stage":"open"}}]`); status != http.StatusAccepted {
		t.Fatalf("%d %s", status, body)
	}
	out := logged()
	for _, want := range []string{`msg="webhook event" connection=crm event_id=e1 deal_id=D1 outcome=started workflow_id=`,
		`msg="webhook event" connection=crm event_id=e2 deal_id=D2 outcome=ignored`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

// A connection whose runs listen orders a deal's events by their time: an
// event without occurred_at is refused (400, naming it), as one that would
// count as older than any, so that a loss sent without a time could never
// stop the invoice of the win before it.
func TestListeningConnectionsNeedEventTimes(t *testing.T) {
	st := &fakeStarter{running: map[string]bool{}}
	srv := httptest.NewServer(New(Options{
		Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}, Linger: time.Hour}},
		Starter:     st, MaxBodyBytes: 4096, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	t.Cleanup(srv.Close)
	status, body := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e1","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"A","stage":"won"}},{"event_id":"e2","deal":{"id":"B","stage":"won"}}]`)
	if status != http.StatusBadRequest || !strings.Contains(body, `event \"e2\"`) || !strings.Contains(body, "occurred_at") || len(st.started) != 0 {
		t.Fatalf("%d %s, started %v; want 400 naming e2 and occurred_at, nothing started", status, body, st.started)
	}
	if status, body := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e2","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"B","stage":"won"}}]`); status != http.StatusAccepted {
		t.Fatalf("with its time: %d %s", status, body)
	}
}

// Without a run that listens, a win is judged on its own: a newer event of
// the same deal in the same delivery that has it out of the won stages
// (lost again since, whatever the order of the batch) keeps the win from
// starting a run; a newer one still won (an amount change) does not.
func TestANewerLossInTheSameDeliveryStopsTheWin(t *testing.T) {
	srv, st, _ := setup(t, "")
	status, body := post(t, srv.URL+"/webhooks/crm", `[
 {"event_id":"lost","occurred_at":"2026-11-20T10:05:00Z","deal":{"id":"A","stage":"lost","previous_stage":"won"}},
 {"event_id":"won","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"A","stage":"won","previous_stage":"open"}}]`)
	if status != http.StatusOK || len(st.started) != 0 || !strings.Contains(body, `a newer event of this deal in the same delivery (lost) has it in stage \"lost\"`) {
		t.Fatalf("%d %s, started %v; want 200, the win skipped for the newer loss", status, body, st.started)
	}
	status, body = post(t, srv.URL+"/webhooks/crm", `[
 {"event_id":"won","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"B","stage":"won","previous_stage":"open"}},
 {"event_id":"more","occurred_at":"2026-11-20T10:05:00Z","deal":{"id":"B","stage":"won","previous_stage":"won"}},
 {"event_id":"older-loss","occurred_at":"2026-11-20T09:00:00Z","deal":{"id":"B","stage":"lost","previous_stage":"open"}}]`)
	if status != http.StatusAccepted || len(st.started) != 1 || st.started[0] != "B" {
		t.Fatalf("%d %s, started %v; want B started (its newer event still won, its loss older)", status, body, st.started)
	}
	// A newer event in the stage the win is in (a trigger on a stage the
	// connection does not list as won) is no loss.
	srv2 := httptest.NewServer(New(Options{
		Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: []string{"signed"}}, WonStages: []string{"won"}}},
		Starter:     st, MaxBodyBytes: 4096, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	t.Cleanup(srv2.Close)
	status, body = post(t, srv2.URL+"/webhooks/crm", `[
 {"event_id":"signed","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"C","stage":"signed","previous_stage":"open"}},
 {"event_id":"amount","occurred_at":"2026-11-20T10:05:00Z","deal":{"id":"C","stage":"Signed","previous_stage":"signed"}}]`)
	if status != http.StatusAccepted || len(st.started) != 2 || st.started[1] != "C" {
		t.Fatalf("%d %s, started %v; want C started (its newer event in the win's stage)", status, body, st.started)
	}
}

// Of two wins of a deal in one delivery (without a run that listens), the
// newer starts the run, whatever the batch's order: it carries the deal
// as it is now (the older one's amount is stale). Before, the first in
// the batch did, and the run invoiced the older amount.
func TestTheNewerOfTwoWinsInADeliveryStartsTheRun(t *testing.T) {
	srv, st, _ := setup(t, "")
	status, body := post(t, srv.URL+"/webhooks/crm", `[
 {"event_id":"old","occurred_at":"2026-11-20T09:00:00Z","deal":{"id":"A","stage":"won","previous_stage":"open","amount":"5.00"}},
 {"event_id":"new","occurred_at":"2026-11-20T09:10:00Z","deal":{"id":"A","stage":"won","previous_stage":"open","amount":"7.00"}}]`)
	if status != http.StatusAccepted || len(st.started) != 1 || !strings.Contains(body, `a newer won event of this deal in the same delivery (new) starts its run instead`) {
		t.Fatalf("%d %s, started %v; want one run, the older win skipped for the newer", status, body, st.started)
	}
	var res struct {
		Results []connectors.EventResult `json:"results"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || len(res.Results) != 2 {
		t.Fatalf("results %+v: %v", res.Results, err)
	}
	for _, r := range res.Results {
		if (r.EventID == "new") != (r.WorkflowID != "") {
			t.Errorf("result %+v; want the run started by event new only", r)
		}
	}
	// Two wins of the same time: neither is newer; the first starts it.
	status, body = post(t, srv.URL+"/webhooks/crm", `[
 {"event_id":"b1","occurred_at":"2026-11-20T09:00:00Z","deal":{"id":"B","stage":"won","previous_stage":"open"}},
 {"event_id":"b2","occurred_at":"2026-11-20T09:00:00Z","deal":{"id":"B","stage":"won","previous_stage":"open"}}]`)
	if status != http.StatusAccepted || strings.Contains(body, "starts its run instead") {
		t.Fatalf("%d %s; want both handed on, none skipped as older", status, body)
	}
}

// A compressed body is refused with 415 and Accept-Encoding: identity,
// before anything is read (the signature is over the bytes the CRM made,
// and a gzip body was verified and parsed as is: 400 or 401); a
// Content-Type whose parameter is malformed is judged by its media type
// (it was refused with 415, which senders do not retry).
func TestContentEncodingAndMalformedMediaParameters(t *testing.T) {
	srv, st, _ := setup(t, "")
	send := func(contentType, encoding string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/crm", strings.NewReader(batch))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("X-Ok", "1")
		if encoding != "" {
			req.Header.Set("Content-Encoding", encoding)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, enc := range []string{"gzip", "br", "deflate"} {
		if resp := send("application/json", enc); resp.StatusCode != http.StatusUnsupportedMediaType || resp.Header.Get("Accept-Encoding") != "identity" || !resp.Close {
			t.Errorf("Content-Encoding %s: %d, Accept-Encoding %q, closed %v; want 415 asking for identity, the connection closed (the body unread)", enc, resp.StatusCode, resp.Header.Get("Accept-Encoding"), resp.Close)
		}
	}
	if len(st.started) != 0 {
		t.Fatalf("a compressed delivery started %v", st.started)
	}
	for _, c := range []struct{ contentType, encoding string }{
		{"application/json; charset", ""},
		{"application/json; charset=", "identity"},
	} {
		if resp := send(c.contentType, c.encoding); resp.StatusCode != http.StatusAccepted {
			t.Errorf("Content-Type %q, Content-Encoding %q: %d, want 202", c.contentType, c.encoding, resp.StatusCode)
		}
	}
	if resp := send("text/plain; charset", ""); resp.StatusCode != http.StatusUnsupportedMediaType || !resp.Close {
		t.Errorf("text/plain with a malformed parameter: %d, closed %v; want 415, the connection closed", resp.StatusCode, resp.Close)
	}
	if resp := send("application/json; charset=utf-8; charset=latin1", ""); resp.StatusCode != http.StatusAccepted {
		t.Errorf("a parameter given twice: %d, want 202", resp.StatusCode)
	}
	// Every Content-Encoding line, and every coding of a list, counts.
	for _, lines := range [][]string{{"identity", "gzip"}, {"identity, gzip"}} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/crm", strings.NewReader(batch))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Ok", "1")
		for _, l := range lines {
			req.Header.Add("Content-Encoding", l)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Encoding %q: %d, want 415", lines, resp.StatusCode)
		}
	}
}

// budgetStarter lets a delivery make budget start calls, duplicates
// included (a call to an engine slow to answer costs the delivery's time
// whether it starts a run or meets one), and fails the rest as the
// delivery's deadline would.
type budgetStarter struct {
	fakeStarter
	budget, calls int
	started       map[string]bool
}

func (b *budgetStarter) Start(ctx context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.calls++; b.calls > b.budget {
		return connectors.EventResult{}, fmt.Errorf("%w: the delivery ran out of time", ErrUnavailable)
	}
	dup := b.started[ev.Deal.ID]
	b.started[ev.Deal.ID] = true
	return connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID, WorkflowID: "wf/" + ev.Deal.ID, RunID: "r", Duplicate: dup}, nil
}

// A delivery of many deals that runs out of time before its last ones is
// refused (503) and sent again, and each try starts deals the tries
// before did not reach: its deals go in an order of their own each time,
// so every deal gets its run while the CRM still retries. In the
// delivery's order, every try spent its time on the same first deals
// (duplicates by then) and the others never got a run before the CRM gave
// up.
func TestARetriedBatchReachesEveryDeal(t *testing.T) {
	st := &budgetStarter{budget: 8, started: map[string]bool{}}
	h := New(Options{
		Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}, WonStages: []string{"won"}}},
		Starter:     st, MaxBodyBytes: 1 << 20,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var evs []string
	for i := range 20 {
		evs = append(evs, fmt.Sprintf(`{"event_id":"e%d","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"D%02d","stage":"won"}}`, i, i))
	}
	body := "[" + strings.Join(evs, ",") + "]"
	for try := 1; ; try++ {
		st.mu.Lock()
		st.calls = 0
		st.mu.Unlock()
		// Never acknowledged: each try has time for 8 of the 20 starts.
		if status, reply := post(t, srv.URL+"/webhooks/crm", body); status != http.StatusServiceUnavailable {
			t.Fatalf("try %d: %d %s, want 503", try, status, reply)
		}
		st.mu.Lock()
		n := len(st.started)
		st.mu.Unlock()
		if n == 20 {
			break
		}
		if try == 60 {
			t.Fatalf("after %d tries %d of 20 deals have a run: each try spends its time on the same deals", try, n)
		}
	}
}

// partialStarter starts every deal but Z, which fails as the engine being
// unavailable once the others have started: a batch part of whose runs
// started before the engine failed.
type partialStarter struct {
	fakeStarter
	others int           // deals started before Z fails
	done   chan struct{} // one per start of another deal
}

func (s *partialStarter) Start(ctx context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, error) {
	if ev.Deal.ID != "Z" {
		res, err := s.fakeStarter.Start(ctx, conn, ev)
		s.done <- struct{}{}
		return res, err
	}
	for range s.others {
		select {
		case <-s.done:
		case <-ctx.Done():
			return connectors.EventResult{}, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		}
	}
	return connectors.EventResult{}, fmt.Errorf("%w: starting wf/Z: context deadline exceeded", ErrUnavailable)
}

// A batch refused because the engine failed part-way says what is true of
// it: how many of its events reached their runs before (the answer and
// the log), that others may have, and that sending it again is safe (a
// start meets its run as a duplicate). One none of whose events reached a
// run says that a run may still have started.
func TestEngineFailurePartWaySaysWhatStarted(t *testing.T) {
	st := &partialStarter{fakeStarter: fakeStarter{running: map[string]bool{}}, others: 3, done: make(chan struct{}, 8)}
	logs := &testlog.Buffer{}
	h := New(Options{
		Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}}},
		Starter:     st, MaxBodyBytes: 4096, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var events []string
	for i, deal := range []string{"A", "B", "C", "Z"} {
		events = append(events, fmt.Sprintf(`{"event_id":"e%d","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":%q,"stage":"won"}}`, i, deal))
	}
	// An event that reaches no run (not won) is not counted as taken.
	events = append(events, `{"event_id":"e9","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"N","stage":"open"}}`)
	status, body := post(t, srv.URL+"/webhooks/crm", "["+strings.Join(events, ",")+"]")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "the workflow engine did not confirm all of this delivery's runs (unavailable or too slow to answer): "+
		"3 of the 5 events it hands to runs reached them before it failed, and others may have; nothing was acknowledged. "+
		"Send it again: a run that started is answered as a duplicate, and no deal is invoiced twice") {
		t.Fatalf("%d %s; want 503 saying 3 of 5 events reached their runs and that sending it again is safe", status, body)
	}
	if want := `level=WARN msg="webhook not acknowledged; sender must retry" connection=crm status=503 taken=3 events=5 error=`; !strings.Contains(logs.String(), want) {
		t.Errorf("the log lacks %q:\n%s", want, logs.String())
	}
	// Nothing taken: no count, but a run may have started all the same (a
	// start the engine recorded and did not confirm in time).
	st.others = 0
	status, body = post(t, srv.URL+"/webhooks/crm", "["+events[3]+"]")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "the workflow engine did not confirm this delivery's runs (unavailable or too slow to answer): "+
		"nothing was acknowledged, though a run may have started. Send it again: a run that started is answered as a duplicate") {
		t.Fatalf("%d %s; want 503 saying a run may have started", status, body)
	}
	if n := strings.Count(logs.String(), "taken="); n != 1 {
		t.Errorf("%d lines count events taken, want only the first delivery's:\n%s", n, logs.String())
	}
}

// The sender is told a refusal's public text (the engine's failure by a
// fixed sentence: the engine's own text names its address), and another
// error (a deal too large) as it is.
func TestPublicTextHidesTheEnginesError(t *testing.T) {
	dial := errors.New("dial tcp 10.0.0.5:7233: connection refused")
	trigger := fmt.Errorf("%w: index out of range", ErrTrigger)
	refused := &refusedError{err: errors.Join(fmt.Errorf("%w: %v", ErrUnavailable, dial), trigger), public: engineRefusal + "\n" + trigger.Error()}
	if got := publicText(fmt.Errorf("wrapped: %w", refused)); got != refused.public {
		t.Errorf("%v: told %q", refused, got)
	}
	tooLarge := fmt.Errorf("%w: deal D-1", ErrTooLarge)
	if got := publicText(tooLarge); got != tooLarge.Error() {
		t.Errorf("a deal too large told %q", got)
	}
}

// Every refusal of the intake is its JSON error, the mux's own too: a
// path no route has (404), a method its route does not take (405, with
// Allow), and a path that is not clean (404 naming the clean one, where
// the mux redirected: a CRM does not follow a POST's redirect).
func TestWebhookRouteRefusalsAreJSON(t *testing.T) {
	srv, _, _ := setup(t, "")
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
		says         string
	}{
		{http.MethodPost, "/webhooks//crm", http.StatusNotFound, "", `"/webhooks//crm" is not a clean path (an empty or dot segment); give the CRM the URL with the path /webhooks/crm`},
		{http.MethodPost, "/webhooks/./crm", http.StatusNotFound, "", "give the CRM the URL with the path /webhooks/crm"},
		{http.MethodPost, "//webhooks/crm", http.StatusNotFound, "", "give the CRM the URL with the path /webhooks/crm"},
		{http.MethodPost, "/webhooks/crm/", http.StatusNotFound, "", "give the CRM the URL without the trailing slash: /webhooks/crm"},
		// A clean path the intake does not serve either is not named.
		{http.MethodPost, "/foo//bar", http.StatusNotFound, "", "not found: the intake serves POST /webhooks/{connection}, GET /healthz and GET /readyz"},
		{http.MethodPost, "/webhooks/crm/..", http.StatusNotFound, "", "not found: the intake serves POST /webhooks/{connection}, GET /healthz and GET /readyz"},
		{http.MethodGet, "/webhooks/crm", http.StatusMethodNotAllowed, "POST", ""},
		{http.MethodPut, "/webhooks/made-up-name", http.StatusMethodNotAllowed, "POST", ""},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "GET, HEAD", ""},
		{http.MethodPost, "/", http.StatusNotFound, "", ""},
		{http.MethodGet, "/webhooks", http.StatusNotFound, "", ""},
		{http.MethodPost, "/webhooks/made-up-name", http.StatusNotFound, "", ""}, // the handler's own
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(batch))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Ok", "1")
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var answer struct {
			Error struct {
				Status  int    `json:"status"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if resp.StatusCode != c.status || resp.Header.Get("Allow") != c.allow || resp.Header.Get("Location") != "" ||
			resp.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal(body, &answer) != nil || answer.Error.Status != c.status || answer.Error.Message == "" ||
			!strings.Contains(answer.Error.Message, c.says) {
			t.Errorf("%s %s: %d, Allow %q, Content-Type %q:\n%s", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("Content-Type"), body)
		}
	}
	if status, body := get(t, srv.URL+"/healthz"); status != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Errorf("GET /healthz: %d %s", status, body)
	}
	// A connection the config does not have is not named as the URL to
	// give.
	if status, body := post(t, srv.URL+"/webhooks/made-up/", batch); status != http.StatusNotFound || strings.Contains(body, "trailing slash") {
		t.Errorf("POST /webhooks/made-up/: %d %s", status, body)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The intake's answers are read by people: & < > as they are, not as
// json.Marshal's HTML escapes.
func TestWebhookAnswersAreNotHTMLEscaped(t *testing.T) {
	srv, _, _ := setup(t, "")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/crm", strings.NewReader(batch))
	req.Header.Set("Content-Type", "text/<x>&y")
	req.Header.Set("X-Ok", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(string(body), `text/<x>&y`) || strings.Contains(string(body), `\u00`) {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	rec := httptest.NewRecorder()
	writeJSON(rec, http.StatusAccepted, connectors.Reply{Results: []connectors.EventResult{{EventID: "e", Skipped: "is_won(deal.stage) && deal.amount > 0"}}})
	if !strings.Contains(rec.Body.String(), `"is_won(deal.stage) && deal.amount > 0"`) {
		t.Errorf("answered %s", rec.Body)
	}
}

// runStarter keeps each deal's run as Temporal would: Start makes the run
// exist (or meets it) and hands it the event; Notify signals the running
// run only (a plain signal finds no run otherwise), except a loss on a
// connection whose runs listen, which starts a run that records it, as
// TemporalStarter's Notify does.
type runStarter struct {
	mu    sync.Mutex
	runs  map[string][]model.DealEvent // deal → events its run received
	calls []string
}

func (s *runStarter) Start(_ context.Context, _ *connections.Connection, ev model.DealEvent) (connectors.EventResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "start "+ev.EventID)
	_, dup := s.runs[ev.Deal.ID]
	s.runs[ev.Deal.ID] = append(s.runs[ev.Deal.ID], ev)
	return connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID, WorkflowID: "wf/" + ev.Deal.ID, RunID: "r", Duplicate: dup}, nil
}

func (s *runStarter) Notify(_ context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "notify "+ev.EventID)
	res := connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID, WorkflowID: "wf/" + ev.Deal.ID}
	_, running := s.runs[ev.Deal.ID]
	if !running && !(conn.Listens() && workflows.IsLoss(conn.WonStages, ev)) {
		return res, false, nil
	}
	s.runs[ev.Deal.ID] = append(s.runs[ev.Deal.ID], ev)
	return res, true, nil
}

func (s *runStarter) Ready(context.Context) error { return nil }

// newest is the newest event the deal's run received (by occurred_at, as
// the run orders them), and whether the deal has a run.
func (s *runStarter) newest(deal string) (model.DealEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	evs, ok := s.runs[deal]
	if !ok {
		return model.DealEvent{}, false
	}
	latest := evs[0]
	for _, ev := range evs[1:] {
		if !ev.OccurredAt.Before(latest.OccurredAt) {
			latest = ev
		}
	}
	return latest, true
}

// A delivery that lists a deal's newer event before its older win, on a
// connection whose runs listen: the newer event still reaches the run the
// win starts (it used to be signalled first, find no run and be dropped,
// and the win was invoiced). A newer loss that does not name the won
// stage it left ends the deal lost; a newer amount of a won deal is the
// amount the run sees. The results keep the delivery's order. Without a
// run that listens, the newer loss keeps the win from starting at all.
func TestANewerEventListedBeforeItsWinReachesTheWinsRun(t *testing.T) {
	won := []string{"won"}
	serve := func(t *testing.T, settle time.Duration) (*httptest.Server, *runStarter) {
		st := &runStarter{runs: map[string][]model.DealEvent{}}
		srv := httptest.NewServer(New(Options{
			Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: won}, WonStages: won, SettleTime: settle}},
			Starter:     st, MaxBodyBytes: 4096, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}))
		t.Cleanup(srv.Close)
		return srv, st
	}
	reply := func(t *testing.T, body string) connectors.Reply {
		t.Helper()
		var r connectors.Reply
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return r
	}
	const lossFirst = `[{"event_id":"lost","occurred_at":"2026-11-20T11:00:00Z","deal":{"id":"D","stage":"lost"}},
 {"event_id":"win","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"D","stage":"won","previous_stage":"open"}}]`

	t.Run("loss listed before the win, runs listen", func(t *testing.T) {
		srv, st := serve(t, 5*time.Second)
		status, body := post(t, srv.URL+"/webhooks/crm", lossFirst)
		r := reply(t, body)
		if status != http.StatusAccepted || len(r.Results) != 2 || r.Results[0].EventID != "lost" || r.Results[1].EventID != "win" {
			t.Fatalf("%d %s; want 202 with the results in the delivery's order", status, body)
		}
		if res := r.Results[0]; res.Skipped != "" || res.WorkflowID != "wf/D" {
			t.Errorf("the newer loss: %+v, want it delivered to D's run", res)
		}
		if want := []string{"start win", "notify lost"}; !slices.Equal(st.calls, want) {
			t.Errorf("calls %v, want %v", st.calls, want)
		}
		if latest, ok := st.newest("D"); !ok || latest.EventID != "lost" {
			t.Errorf("D's run: newest event %q (run %v), want the loss: the win would be invoiced", latest.EventID, ok)
		}
	})

	t.Run("amount correction listed before the win, runs listen", func(t *testing.T) {
		srv, st := serve(t, 5*time.Second)
		status, body := post(t, srv.URL+"/webhooks/crm", `[
 {"event_id":"amount","occurred_at":"2026-11-20T11:00:00Z","deal":{"id":"D","stage":"won","previous_stage":"won","amount":"200"}},
 {"event_id":"other","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"E","stage":"won","previous_stage":"open","amount":"5"}},
 {"event_id":"win","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"D","stage":"won","previous_stage":"open","amount":"100"}}]`)
		r := reply(t, body)
		if status != http.StatusAccepted || len(r.Results) != 3 || r.Results[0].EventID != "amount" || r.Results[1].EventID != "other" || r.Results[2].EventID != "win" {
			t.Fatalf("%d %s; want 202 with the results in the delivery's order", status, body)
		}
		if res := r.Results[0]; res.Skipped != "" || res.WorkflowID != "wf/D" {
			t.Errorf("the amount correction: %+v, want it delivered to D's run", res)
		}
		if latest, ok := st.newest("D"); !ok || latest.EventID != "amount" || latest.Deal.Amount.Decimal.String() != "200" {
			t.Errorf("D's run: newest event %+v (run %v), want the correction to 200", latest, ok)
		}
		if i, j := slices.Index(st.calls, "start win"), slices.Index(st.calls, "notify amount"); i < 0 || j < i {
			t.Errorf("calls %v: want the win's start before the correction's signal", st.calls)
		}
	})

	t.Run("a loss that names the won stage keeps its place", func(t *testing.T) {
		// It reaches a run on its own (one that records the loss), which
		// the older win listed after it then meets.
		srv, st := serve(t, 5*time.Second)
		status, body := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"lost","occurred_at":"2026-11-20T11:00:00Z","deal":{"id":"D","stage":"lost","previous_stage":"won"}},
 {"event_id":"win","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"D","stage":"won","previous_stage":"open"}}]`)
		if status != http.StatusAccepted {
			t.Fatalf("%d %s", status, body)
		}
		if want := []string{"notify lost", "start win"}; !slices.Equal(st.calls, want) {
			t.Errorf("calls %v, want %v", st.calls, want)
		}
		if latest, ok := st.newest("D"); !ok || latest.EventID != "lost" {
			t.Errorf("D's run: newest event %q (run %v), want the loss", latest.EventID, ok)
		}
	})

	t.Run("loss listed before the win, runs do not listen", func(t *testing.T) {
		srv, st := serve(t, 0)
		status, body := post(t, srv.URL+"/webhooks/crm", lossFirst)
		r := reply(t, body)
		if status != http.StatusOK || len(r.Results) != 2 || r.Results[0].Skipped == "" || r.Results[1].Skipped == "" {
			t.Fatalf("%d %s; want 200, both skipped", status, body)
		}
		if _, ok := st.newest("D"); ok || len(st.calls) != 0 {
			t.Errorf("calls %v: want no run", st.calls)
		}
	})
}

// retryAtError is a refusal that knows when asking again may succeed
// (connectors.RetryAter).
type retryAtError struct {
	error
	at time.Time
}

func (e retryAtError) Unwrap() error      { return e.error }
func (e retryAtError) RetryAt() time.Time { return e.at }

// A delivery refused before its body is read (an unknown connection) is
// answered with the connection closed: net/http would otherwise read up
// to 256 KiB of the body before answering.
func TestAnUnknownConnectionIsRefusedUnread(t *testing.T) {
	srv, _, _ := setup(t, "")
	resp, _ := postBody(t, srv.URL+"/webhooks/made-up-name", strings.NewReader(batch))
	if resp.StatusCode != http.StatusNotFound || !resp.Close {
		t.Errorf("unknown connection: %d, closed %v; want 404 with the connection closed", resp.StatusCode, resp.Close)
	}
}

// basicSource authenticates as listSource does, with HTTP Basic's
// challenge (as Pipedrive's source).
type basicSource struct{ listSource }

func (*basicSource) Challenge() string { return `Basic realm="dealsync"` }

// A 401 carries the source's WWW-Authenticate challenge, when it has one
// (RFC 9110: a 401 must); a 400 does not, nor a 401 of a source that signs
// its bodies.
func TestUnauthorizedCarriesTheSourcesChallenge(t *testing.T) {
	for _, tc := range []struct {
		name      string
		src       connectors.Source
		okHeader  string
		status    int
		challenge string
	}{
		{"basic, refused", &basicSource{}, "", http.StatusUnauthorized, `Basic realm="dealsync"`},
		{"basic, malformed", &basicSource{}, "unreadable", http.StatusBadRequest, ""},
		{"signed, refused", &listSource{}, "", http.StatusUnauthorized, ""},
	} {
		h := New(Options{
			Connections: conns{"crm": {Name: "crm", Source: tc.src, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}, WonStages: []string{"won"}}},
			Starter:     &fakeStarter{running: map[string]bool{}}, MaxBodyBytes: 4096,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		srv := httptest.NewServer(h)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/crm", strings.NewReader("{"))
		req.Header.Set("Content-Type", "application/json")
		if tc.okHeader != "" {
			req.Header.Set("X-Ok", tc.okHeader)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("%s: %d, WWW-Authenticate %q; want %d, %q", tc.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.status, tc.challenge)
		}
	}
}

// A probe's request (GET /healthz, /readyz) is logged at debug, every few
// seconds per replica as it comes, failing or not; a webhook at info.
func TestProbesAreLoggedAtDebug(t *testing.T) {
	srv, h, logged := loggedHandler(t, slog.LevelInfo, &fakeStarter{running: map[string]bool{}})
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if status, body := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"e1","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"D1","stage":"won"}}]`); status != http.StatusAccepted {
		t.Fatalf("%d %s", status, body)
	}
	h.Drain() // /readyz fails from now on
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	out := logged()
	if strings.Contains(out, "path=/healthz") || strings.Contains(out, "path=/readyz") {
		t.Errorf("a probe was logged at info or warn:\n%s", out)
	}
	for _, want := range []string{`level=INFO msg="http request" method=POST path=/webhooks/crm status=202`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

// A frontend that does not answer is logged when the outage starts and
// then once a minute, however often a probe asks /readyz meanwhile, and
// its return is logged. A new outage within a minute of the last warning
// (a frontend that flaps) is counted, not logged (it was a warning and a
// recovery per alternation): the count goes with the next line.
func TestNotReadyIsLoggedOnceAMinute(t *testing.T) {
	st := &fakeStarter{running: map[string]bool{}, failWith: fmt.Errorf("%w: dial tcp 10.0.0.5:7233: connect: connection refused", ErrUnavailable)}
	srv, h, logged := loggedHandler(t, slog.LevelInfo, st)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.frontend.Now = func() time.Time { return now }
	probe := func() int {
		t.Helper()
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		now = now.Add(time.Second)
		return resp.StatusCode
	}
	for range 3 {
		if code := probe(); code != http.StatusServiceUnavailable {
			t.Fatalf("readyz: %d", code)
		}
	}
	count := func(line string) int { return strings.Count(logged(), line) }
	st.failWith = nil
	probe()
	st.failWith = fmt.Errorf("%w: connection refused", ErrUnavailable)
	probe()
	st.failWith = nil
	probe()
	if w, r := count("not ready: the Temporal frontend does not answer"), count("ready: the Temporal frontend answers again"); w != 1 || r != 1 {
		t.Errorf("three failed probes, one that passed, then a failed one and one that passed: %d warnings, %d recoveries logged, want 1 and 1:\n%s", w, r, logged())
	}
	now = now.Add(time.Minute)
	probe()
	if r := count("ready: the Temporal frontend answers again"); r != 2 || !strings.Contains(logged(), "brief_outages_not_logged=1") {
		t.Errorf("a minute on: %d recoveries logged, want 2, the last with brief_outages_not_logged=1:\n%s", r, logged())
	}
	st.failWith = fmt.Errorf("%w: connection refused", ErrUnavailable)
	probe()
	if w := count("not ready: the Temporal frontend does not answer"); w != 2 {
		t.Errorf("an outage a minute after the last warning: %d warnings, want 2:\n%s", w, logged())
	}
}

// Journey: with nothing probing /readyz, a Temporal outage of 20 s left
// no line in the intake's log; probed, the intake said that the frontend
// answered again only at the next probe. Watch checks on its own: the
// outage's start and its end are logged with no probe at all.
func TestOutageIsLoggedWithoutAProbe(t *testing.T) {
	st := &fakeStarter{running: map[string]bool{}}
	st.setFailWith(fmt.Errorf("%w: dial tcp 10.0.0.5:7233: connect: connection refused", ErrUnavailable))
	_, h, logged := loggedHandler(t, slog.LevelInfo, st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Watch(ctx, time.Millisecond) }()
	defer func() { cancel(); <-done }()
	waitLogged := func(want string) {
		t.Helper()
		for !strings.Contains(logged(), want) {
			if dl, ok := t.Deadline(); ok && time.Until(dl) < 5*time.Second {
				t.Fatalf("never logged %q:\n%s", want, logged())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitLogged("not ready: the Temporal frontend does not answer")
	st.setFailWith(nil)
	waitLogged("ready: the Temporal frontend answers again")
	if n := strings.Count(logged(), "not ready: the Temporal frontend does not answer"); n != 1 {
		t.Errorf("%d warnings for one outage checked every millisecond, want 1:\n%s", n, logged())
	}
}

// Watch's check, every 5 s on every replica, read the namespace's search
// attributes too (Ready) for a finding it could never log. It checks the
// frontend's health, then, when it answers, the namespace alone (one
// read of it: a namespace deleted, or credentials withdrawn, is logged);
// /readyz still checks everything.
func TestWatchChecksTheFrontendAndTheNamespace(t *testing.T) {
	st := &fakeStarter{running: map[string]bool{}}
	srv, h, _ := loggedHandler(t, slog.LevelInfo, st)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.Watch(ctx, time.Hour) // one check (none made yet), then ctx has ended
	st.mu.Lock()
	readies, frontends, namespaces := st.readies, st.frontends, st.namespaces
	st.mu.Unlock()
	if readies != 0 || frontends != 1 || namespaces != 1 {
		t.Errorf("Watch's one check: Ready called %d times, CheckFrontend %d, CheckNamespace %d; want 0, 1 and 1", readies, frontends, namespaces)
	}
	code, body := get(t, srv.URL+"/readyz")
	st.mu.Lock()
	readies = st.readies
	st.mu.Unlock()
	if code != http.StatusOK || readies != 1 {
		t.Errorf("/readyz: %d %s, Ready called %d times; want 200 and 1", code, body, readies)
	}
	// A frontend that does not answer: the namespace is not asked.
	st.setFailWith(fmt.Errorf("%w: connection refused", ErrUnavailable))
	_, h, _ = loggedHandler(t, slog.LevelInfo, st)
	h.Watch(ctx, time.Hour)
	st.mu.Lock()
	frontends, namespaces = st.frontends, st.namespaces
	st.mu.Unlock()
	if frontends != 2 || namespaces != 1 {
		t.Errorf("Watch's check of a frontend that does not answer: CheckFrontend called %d times in all, CheckNamespace %d; want 2 and 1", frontends, namespaces)
	}
}

// A namespace that cannot be used while the frontend answers (deleted,
// or the credentials refused for it) is logged as the frontend's outages
// are: when it starts, then once a minute however often /readyz asks,
// and when it ends; a problem that starts again within a minute of the
// last warning is counted, said with the next line. A frontend outage
// meanwhile says nothing of the namespace; a check that started before
// the last one recorded is ignored.
func TestNamespaceProblemIsLoggedOnceAMinute(t *testing.T) {
	gone := &NamespaceError{Err: errors.New(`namespace "prod" does not exist on the Temporal frontend (temporal.namespace): create it, or fix the name`)}
	st := &fakeStarter{running: map[string]bool{}, nsFailWith: gone}
	srv, h, logged := loggedHandler(t, slog.LevelInfo, st)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.frontend.Now = func() time.Time { return now }
	h.namespace.Now = h.frontend.Now
	probe := func() int {
		t.Helper()
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		now = now.Add(time.Second)
		return resp.StatusCode
	}
	count := func(line string) int { return strings.Count(logged(), line) }
	warned := `level=WARN msg="not ready: the Temporal namespace cannot be used (said when it starts, then once a minute while it lasts; a problem that starts within a minute of this line is counted, not said)" error="namespace \"prod\" does not exist`
	for range 3 {
		if code := probe(); code != http.StatusServiceUnavailable {
			t.Fatalf("readyz: %d", code)
		}
	}
	if w := count(warned); w != 1 || count("msg=\"not ready: the Temporal frontend")+count("frontend answers again") != 0 {
		t.Fatalf("three probes of a namespace that does not exist: %d warnings, want 1 and none of the frontend:\n%s", w, logged())
	}
	// The frontend goes away meanwhile: its outage is said, the
	// namespace's problem neither ends nor is said again.
	st.setFailWith(fmt.Errorf("%w: connection refused", ErrUnavailable))
	probe()
	st.setFailWith(nil)
	st.setNSFailWith(nil)
	probe()
	probe()
	if r := count("ready: the Temporal namespace can be used again"); r != 1 || count(warned) != 1 || count("not ready: the Temporal frontend does not answer") != 1 {
		t.Errorf("the frontend away, then both back: %d namespace recoveries, want 1:\n%s", r, logged())
	}
	st.setNSFailWith(gone)
	probe()
	st.setNSFailWith(nil)
	probe()
	if w, r := count(warned), count("ready: the Temporal namespace can be used again"); w != 1 || r != 1 {
		t.Errorf("a problem again within a minute of the warning: %d warnings, %d recoveries, want 1 and 1:\n%s", w, r, logged())
	}
	now = now.Add(time.Minute)
	probe()
	if r := count("ready: the Temporal namespace can be used again"); r != 2 || !strings.Contains(logged(), "brief_outages_not_logged=1") {
		t.Errorf("a minute on: %d recoveries, want 2, the last with brief_outages_not_logged=1:\n%s", r, logged())
	}
	// A check that started before the last one recorded (a slow probe's)
	// is ignored.
	older := now.Add(-time.Hour)
	_ = h.logReadiness(older, gone)
	if w := count(warned); w != 1 {
		t.Errorf("a stale check's problem: %d warnings, want still 1:\n%s", w, logged())
	}
	st.setNSFailWith(gone)
	probe()
	if w := count(warned); w != 2 {
		t.Errorf("a problem a minute after the last warning: %d warnings, want 2:\n%s", w, logged())
	}
}

// Temporal's database down while the frontend and the namespace answer
// (a cluster whose PostgreSQL stopped): /readyz fails naming it, and the
// intake says so once, and once when it answers again, not as the
// frontend's outage nor the namespace's.
func TestAStoreOutageFailsReadinessAndIsLoggedOnce(t *testing.T) {
	st := &fakeStarter{running: map[string]bool{}, nsFailWith: &StoreError{Err: errors.New("reading a run: context deadline exceeded")}}
	srv, _, logged := loggedHandler(t, slog.LevelInfo, st)
	probe := func() (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for range 3 {
		if code, body := probe(); code != http.StatusServiceUnavailable || !strings.Contains(body, "Temporal cannot read runs (its database or history service)") {
			t.Fatalf("readyz while the store is down: %d %s", code, body)
		}
	}
	count := func(s string) int { return strings.Count(logged(), s) }
	if n := count(`level=WARN msg="not ready: the Temporal frontend answers, but Temporal cannot read runs (its database, or its history service, is down`); n != 1 ||
		count("reading a run: context deadline exceeded") != 1 || count("not ready: the Temporal frontend does not answer")+count("namespace cannot be used") != 0 {
		t.Fatalf("three probes of a store that is down: %d warnings, want 1 with its error, and none of the frontend or the namespace:\n%s", n, logged())
	}
	st.setNSFailWith(nil)
	probe()
	probe()
	if code, _ := probe(); code != http.StatusOK || count("ready: Temporal reads runs again") != 1 {
		t.Errorf("the store back: readyz %d, want 200 and one recovery line:\n%s", code, logged())
	}
}

// With nothing probing /readyz, a namespace deleted under a running
// intake is logged by Watch, and its return too.
func TestNamespaceProblemIsLoggedWithoutAProbe(t *testing.T) {
	st := &fakeStarter{running: map[string]bool{}}
	st.setNSFailWith(&NamespaceError{Err: errors.New(`the Temporal frontend refuses this intake's credentials for namespace "prod" (temporal.tls, temporal.api_key): Request unauthorized.`)})
	_, h, logged := loggedHandler(t, slog.LevelInfo, st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Watch(ctx, time.Millisecond) }()
	defer func() { cancel(); <-done }()
	waitLogged := func(want string) {
		t.Helper()
		for !strings.Contains(logged(), want) {
			if dl, ok := t.Deadline(); ok && time.Until(dl) < 5*time.Second {
				t.Fatalf("never logged %q:\n%s", want, logged())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitLogged(`msg="not ready: the Temporal namespace cannot be used`)
	waitLogged(`refuses this intake's credentials for namespace`)
	st.setNSFailWith(nil)
	waitLogged("ready: the Temporal namespace can be used again")
	if n := strings.Count(logged(), "not ready: the Temporal namespace cannot be used"); n != 1 {
		t.Errorf("%d warnings for one problem checked every millisecond, want 1:\n%s", n, logged())
	}
}

// loggedHandlerOf is loggedHandler of connection "crm" with src, at info.
func loggedHandlerOf(t *testing.T, src connectors.Source) (srv *httptest.Server, h *Handler, logged func() string) {
	t.Helper()
	buf := &testlog.Buffer{}
	h = New(Options{
		Connections: conns{"crm": {Name: "crm", Source: src, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}}},
		Starter:     &fakeStarter{running: map[string]bool{}}, MaxBodyBytes: 4096,
		Logger: slog.New(slog.NewTextHandler(buf, nil)),
	})
	srv = httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, h, buf.String
}

// loggedHandler serves an intake of one connection, crm (won stage
// "won"), starting through st, whose log at level is logged().
func loggedHandler(t *testing.T, level slog.Level, st *fakeStarter) (srv *httptest.Server, h *Handler, logged func() string) {
	t.Helper()
	buf := &testlog.Buffer{}
	h = New(Options{
		Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}}},
		Starter:     st, MaxBodyBytes: 4096,
		Logger: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level})),
	})
	srv = httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, h, buf.String
}

// Refusals made before a body is read say why in the log, at info, as
// the later refusals (401, 400) do: a CRM given a wrong URL, or sending
// too large a body, left only its status in the access log.
func TestRefusalsBeforeTheBodyAreLogged(t *testing.T) {
	srv, _, logged := loggedHandler(t, slog.LevelInfo, &fakeStarter{running: map[string]bool{}})
	if resp, _ := postBody(t, srv.URL+"/webhooks/made-up-name", strings.NewReader(batch)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown connection: %d", resp.StatusCode)
	}
	if resp, _ := postBody(t, srv.URL+"/webhooks/crm", strings.NewReader("["+strings.Repeat(" ", 5000)+"]")); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared too large: %d", resp.StatusCode)
	}
	if resp, _ := postBody(t, srv.URL+"/webhooks/crm", io.MultiReader(strings.NewReader("["+strings.Repeat(" ", 6000)+"]"))); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked too large: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/crm", strings.NewReader("[]"))
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: %d", resp.StatusCode)
	}
	out := logged()
	for _, want := range []string{
		`level=INFO msg="webhook refused" connection=made-up-name status=404 reason="no connection of that name in this intake's config`,
		`level=INFO msg="webhook refused" connection=crm status=413 reason="body exceeds 4096 bytes (intake.max_body_bytes)" content_length=5002`,
		`level=INFO msg="webhook refused" connection=crm status=413 reason="body exceeds 4096 bytes (intake.max_body_bytes)"` + "\n",
		`level=INFO msg="webhook refused" connection=crm status=415 reason="content type \"text/plain\" not accepted`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

// A delivery refused only to hold a change for its deal's win is counted
// as 503_held; one that Temporal did not take as well is an outage's 503
// (counted as 503), and one a start failed otherwise is
// 500, as before: the hold does not hide them.
func TestAHoldIsCountedApartOnlyWhenItIsTheOnlyCause(t *testing.T) {
	srv, st, _ := setup(t, "")
	st.holdDeal = "H"
	read := func(code string) float64 {
		return metrics.Read("dealsync_webhooks_total", "connection", "crm", "code", code)
	}
	delivery := `[{"event_id":"e1","deal":{"id":"A","stage":"won"}},{"event_id":"e2","thin":true,"deal":{"id":"H","stage":""}}]`
	for _, c := range []struct {
		name   string
		fail   error
		status int
		code   string
		// handedOn: the body says the other deals' events were handed
		// on, true only when the delivery is refused for holds alone (a
		// failed start cancels the starts not yet made).
		handedOn bool
	}{
		{"held only", nil, http.StatusServiceUnavailable, metrics.CodeHeld, true},
		{"held, and Temporal unavailable", fmt.Errorf("%w: frontend down", ErrUnavailable), http.StatusServiceUnavailable, "503", false},
		{"held, and a start refused", errors.New("search attribute not registered"), http.StatusInternalServerError, "500", false},
	} {
		st.failDeal, st.failWith = "", nil
		if c.fail != nil {
			st.failDeal, st.failWith = "A", c.fail
		}
		before := map[string]float64{"503": read("503"), metrics.CodeHeld: read(metrics.CodeHeld), "500": read("500")}
		resp, body := postBody(t, srv.URL+"/webhooks/crm", strings.NewReader(delivery))
		if resp.StatusCode != c.status || (resp.Header.Get("Retry-After") != "") != (c.status == http.StatusServiceUnavailable) {
			t.Errorf("%s: %d (Retry-After %q) %s; want %d", c.name, resp.StatusCode, resp.Header.Get("Retry-After"), body, c.status)
		}
		if got := strings.Contains(body, "other deals' events were handed on"); got != c.handedOn {
			t.Errorf("%s: body says the other deals' events were handed on: %v, want %v:\n%s", c.name, got, c.handedOn, body)
		}
		for code, was := range before {
			want := 0.0
			if code == c.code {
				want = 1
			}
			if got := read(code) - was; got != want {
				t.Errorf("%s: counted %v as %s, want %v", c.name, got, code, want)
			}
		}
	}
}

// Every refusal of a webhook is one message, "webhook refused", with the
// status answered and the reason, whatever refused it: a 401 said
// "webhook rejected", and the 404's line had no reason. A line of a
// refusal names its text reason, not error.
func TestRefusalsAreOneMessageWithStatusAndReason(t *testing.T) {
	srv, _, logged := loggedHandler(t, slog.LevelInfo, &fakeStarter{running: map[string]bool{}})
	send := func(path, ok, body string, want int) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if ok != "" {
			req.Header.Set("X-Ok", ok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s (X-Ok %q): %d, want %d", path, ok, resp.StatusCode, want)
		}
	}
	send("/webhooks/made-up-name", "1", batch, http.StatusNotFound)
	send("/webhooks/crm", "", batch, http.StatusUnauthorized)
	send("/webhooks/crm", "unreadable", batch, http.StatusBadRequest)
	send("/webhooks/crm", "1", "{not json", http.StatusBadRequest)
	send("/webhooks/crm", "1", `[{"event_id":"e1","account":"stranger","deal":{"id":"D-1","stage":"won"}}]`, http.StatusForbidden)
	out := logged()
	for _, want := range []string{
		`msg="webhook refused" connection=made-up-name status=404 reason="no connection of that name`,
		`msg="webhook refused" connection=crm status=401 reason="no X-Ok: `,
		`msg="webhook refused" connection=crm status=400 reason="no account in the body: `,
		`msg="webhook refused" connection=crm status=400 reason="invalid character`,
		`msg="webhook refused" connection=crm status=403 reason="account \"stranger\": `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.Contains(line, `msg="http request"`) {
			continue
		}
		if !strings.Contains(line, `msg="webhook refused" `) || !strings.Contains(line, " status=") || !strings.Contains(line, " reason=") || strings.Contains(line, " error=") {
			t.Errorf("a refusal's line is not msg=\"webhook refused\" with status and reason alone: %s", line)
		}
	}
}

// A body that cannot be read is refused as any other refusal is logged:
// "webhook refused" with the status and the reason (the connection's
// error, which the sender is not told), not an error field; one that
// failed otherwise than on the network was not logged at all. A deal too
// large for a run's input is refused so too, at error.
func TestBodyAndStartRefusalsAreLoggedAsRefusals(t *testing.T) {
	_, h, logged := loggedHandler(t, slog.LevelInfo, &fakeStarter{running: map[string]bool{}})
	for _, body := range []io.ReadCloser{io.NopCloser(&timeoutBody{}), io.NopCloser(failingBody{})} {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/crm", nil)
		req.Body = body
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Ok", "1")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	out := logged()
	for _, want := range []string{
		`level=INFO msg="webhook refused" connection=crm status=408 reason="the body did not arrive in time: `,
		`level=INFO msg="webhook refused" connection=crm status=400 reason="reading the body failed: the disk is on fire"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, " error=") {
		t.Errorf("a refusal's text is logged as error:\n%s", out)
	}

	logs := &testlog.Buffer{}
	st := &tooLargeStarter{fakeStarter: fakeStarter{running: map[string]bool{}}, release: make(chan struct{})}
	srv := httptest.NewServer(New(Options{
		Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}}},
		Starter:     st, MaxBodyBytes: 4096, StartTimeout: 10 * time.Second, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}))
	t.Cleanup(srv.Close)
	if status, body := post(t, srv.URL+"/webhooks/crm", `[{"event_id":"a","deal":{"id":"A","stage":"won"}},{"event_id":"c","deal":{"id":"C","stage":"won"}}]`); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d %s, want 413", status, body)
	}
	if want := `level=ERROR msg="webhook refused" connection=crm status=413 reason="a deal is too large for a run's input (the delivery's other deals were started): `; !strings.Contains(logs.String(), want) {
		t.Errorf("the log lacks %q:\n%s", want, logs.String())
	}
}

// failingBody fails its first read, not as a connection does.
type failingBody struct{}

func (failingBody) Read([]byte) (int, error) { return 0, errors.New("the disk is on fire") }

// namedConns are conns that list their names, as a *connections.Set does.
type namedConns struct{ conns }

func (c namedConns) Names() []string { return slices.Sorted(maps.Keys(c.conns)) }

// A webhook to a connection the config does not have, whose name is a
// typo of one it has (a CRM given a misspelt URL), says which in the
// log, never in the answer, which names no connection to a sender.
func TestUnknownConnectionLogNamesTheOneMeant(t *testing.T) {
	buf := &testlog.Buffer{}
	h := New(Options{
		Connections: namedConns{conns{"demo": {Name: "demo", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}}}},
		Starter:     &fakeStarter{}, MaxBodyBytes: 4096,
		Logger: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	status, body := post(t, srv.URL+"/webhooks/dmeo", "[]")
	if status != http.StatusNotFound || strings.Contains(body, "demo") {
		t.Errorf("answer %d %s", status, body)
	}
	post(t, srv.URL+"/webhooks/invoices", "[]")
	if !strings.Contains(buf.String(), `connection=dmeo status=404 reason="no connection of that name in this intake's config (the CRM's URL, or a config not deployed to every replica?); did you mean demo?"`) ||
		strings.Count(buf.String(), "did you mean") != 1 {
		t.Errorf("log:\n%s", buf.String())
	}
}

// cutShortStarter is a fakeStarter whose Ready, once block is set, waits
// for its context to end and then says nothing is wrong, as a read of a
// run cut short by its context did (a canceled call is no outage).
type cutShortStarter struct {
	*fakeStarter
	block   bool
	entered chan struct{}
}

func (s *cutShortStarter) Ready(ctx context.Context) error {
	if !s.block {
		return s.fakeStarter.Ready(ctx)
	}
	close(s.entered)
	<-ctx.Done()
	return nil
}

// A probe whose asker gives up during an outage (a load balancer's probe
// timeout shorter than the check) says nothing of Temporal: not "ready:
// Temporal reads runs again" while it still cannot.
func TestAProbeGivenUpSaysNoRecovery(t *testing.T) {
	st := &cutShortStarter{fakeStarter: &fakeStarter{running: map[string]bool{}, nsFailWith: &StoreError{Err: errors.New("reading a run: context deadline exceeded")}},
		entered: make(chan struct{})}
	buf := &testlog.Buffer{}
	h := New(Options{
		Connections: conns{"crm": {Name: "crm", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: []string{"won"}}}},
		Starter:     st, MaxBodyBytes: 4096, Logger: slog.New(slog.NewTextHandler(buf, nil)),
	})
	probe := func(ctx context.Context) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil).WithContext(ctx))
		return rec.Code
	}
	if code := probe(context.Background()); code != http.StatusServiceUnavailable || !strings.Contains(buf.String(), "Temporal cannot read runs") {
		t.Fatalf("the store down: readyz %d, log:\n%s", code, buf.String())
	}
	st.block = true
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-st.entered; cancel() }()
	if code := probe(ctx); code == http.StatusOK {
		t.Errorf("a probe given up answered 200")
	}
	if out := buf.String(); strings.Contains(out, "reads runs again") || strings.Count(out, "cannot read runs") != 1 {
		t.Errorf("a probe given up during the outage: want no recovery line, one warning:\n%s", out)
	}
}
