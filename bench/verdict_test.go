package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDealsync is an intake and a sandbox ERP in one test server, with no
// Temporal behind it: the bench in external mode, without
// --temporal-address, sees only what these two answer.
type fakeDealsync struct {
	// status answers a delivery (0: 202).
	status func(deal string, closedWon bool) int
	// invoice says whether an acknowledged closed-won delivery gets its
	// invoice at once (nil: yes).
	invoice func(deal string) bool
	// onPost and onList run with every delivery and every listing.
	onPost func(f *fakeDealsync, deal string)
	onList func(f *fakeDealsync, prefix string) int // a status other than 0 or 200 fails the listing

	mu       sync.Mutex
	invoices []invoiceInfo
	posts    int
	lists    int
}

func (f *fakeDealsync) addInvoice(ref string) {
	f.invoices = append(f.invoices, invoiceInfo{Reference: ref, CreatedAt: time.Now()})
}

func (f *fakeDealsync) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/webhooks/"):
		f.posts++
		var body struct {
			Deal struct{ ID, Stage string } `json:"deal"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		deal, won := body.Deal.ID, body.Deal.Stage == "closed_won"
		if f.onPost != nil {
			f.onPost(f, deal)
		}
		status := http.StatusAccepted
		if f.status != nil {
			if s := f.status(deal, won); s != 0 {
				status = s
			}
		}
		if status/100 == 2 && won && (f.invoice == nil || f.invoice(deal)) {
			f.addInvoice(deal)
		}
		w.WriteHeader(status)
	case r.Method == http.MethodGet && r.URL.Path == "/invoices":
		f.lists++
		prefix := r.URL.Query().Get("reference_prefix")
		if f.onList != nil {
			if s := f.onList(f, prefix); s != 0 && s != http.StatusOK {
				w.WriteHeader(s)
				return
			}
		}
		out := []invoiceInfo{}
		for _, inv := range f.invoices {
			if strings.HasPrefix(inv.Reference, prefix) {
				out = append(out, inv)
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"invoices": out})
	default:
		http.NotFound(w, r)
	}
}

// newFakeServer serves f and returns its URL.
func newFakeServer(t *testing.T, f *fakeDealsync) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL
}

// runFake runs the bench against f, without Temporal, with small bounds
// that only end waits that have stalled (no assertion is on speed).
func runFake(t *testing.T, ctx context.Context, f *fakeDealsync, o Options) (*Report, error) {
	t.Helper()
	o.IntakeURL = newFakeServer(t, f)
	o.SandboxURL = o.IntakeURL
	if o.N == 0 {
		o.N = 6
	}
	if o.Concurrency == 0 {
		o.Concurrency = 2
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if o.Settle == 0 {
		o.Settle = time.Minute
	}
	return Run(ctx, o)
}

// Review item 1: a run where nothing was acknowledged (a wrong --secret or
// --connection: every delivery 401) used to report 0 lost, 0 duplicated,
// and exit 0.
func TestRunWithNoDeliveryAcknowledgedIsUndelivered(t *testing.T) {
	f := &fakeDealsync{status: func(string, bool) int { return http.StatusUnauthorized }}
	rep, err := runFake(t, context.Background(), f, Options{N: 6, Rounds: 2})
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Dealsync
	if d.Accepted != 0 || d.Unacknowledged != 6 || d.Refused != 6 {
		t.Fatalf("accepted %d, unacknowledged %d, refused %d; want 0 6 6", d.Accepted, d.Unacknowledged, d.Refused)
	}
	if rep.Verdict != VerdictUndelivered || !strings.Contains(rep.VerdictReason, "no closed-won delivery was acknowledged") {
		t.Fatalf("verdict %q: %s", rep.Verdict, rep.VerdictReason)
	}
}

// Some closed-won deliveries answered 503 beyond the retries: the invoices
// of the others are all there, but the run did not deliver its load.
func TestRunWithClosedWonDeliveriesRefusedIsUndelivered(t *testing.T) {
	f := &fakeDealsync{status: func(deal string, won bool) int {
		if won && strings.HasSuffix(deal, "1") {
			return http.StatusServiceUnavailable
		}
		return 0
	}}
	rep, err := runFake(t, context.Background(), f, Options{N: 20, Rounds: 1, Retries: 0})
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Dealsync
	if d.Refused == 0 || d.Refused != d.Unacknowledged || d.Lost+d.Duplicated+d.Unexpected+d.Pending != 0 {
		t.Fatalf("refused %d, unacknowledged %d, lost %d, duplicated %d, unexpected %d, pending %d", d.Refused, d.Unacknowledged, d.Lost, d.Duplicated, d.Unexpected, d.Pending)
	}
	if rep.Verdict != VerdictUndelivered {
		t.Fatalf("verdict %q: %s", rep.Verdict, rep.VerdictReason)
	}
}

// A clean run passes; without Temporal it says that open runs were not
// checked.
func TestRunAgainstAFakeDealsyncPasses(t *testing.T) {
	rep, err := runFake(t, context.Background(), &fakeDealsync{}, Options{N: 9, NonTriggerShare: 0.5, Rounds: 3})
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Dealsync
	if rep.Verdict != VerdictPass || d.Invoices != 9 || d.OpenRuns != -1 {
		t.Fatalf("verdict %q (%s), invoices %d, open runs %d; notes %v", rep.Verdict, rep.VerdictReason, d.Invoices, d.OpenRuns, rep.Notes)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "no Temporal client") {
		t.Errorf("notes do not say open runs were not checked: %v", rep.Notes)
	}
}

// Review item 2: each round reconciled only its own prefix, so a duplicate
// of a round-1 deal made after round 1's check was never counted.
func TestFinalCheckCountsADuplicateMadeAfterItsRound(t *testing.T) {
	var firstDeal, firstRound string
	f := &fakeDealsync{onPost: func(f *fakeDealsync, deal string) {
		round := deal[:strings.LastIndexByte(deal, '-')+1]
		switch {
		case firstDeal == "":
			firstDeal, firstRound = deal, round
		case round != firstRound && firstRound != "":
			// Round 2 has begun: round 1 was checked. Round 1's first
			// deal (closed-won or not) gets an invoice again.
			f.addInvoice(firstDeal)
			firstRound = ""
		}
	}}
	rep, err := runFake(t, context.Background(), f, Options{N: 8, NonTriggerShare: 0, Rounds: 2})
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Dealsync
	if d.Duplicated != 1 || d.LateDuplicated != 1 {
		t.Fatalf("duplicated %d, late %d; want 1 1 (notes %v)", d.Duplicated, d.LateDuplicated, rep.Notes)
	}
	if rep.Verdict != VerdictViolated {
		t.Fatalf("verdict %q: %s", rep.Verdict, rep.VerdictReason)
	}
}

// Review item 3: a stop during the wait counted the invoices still to come
// as lost and said EXACTLY-ONCE VIOLATED, blaming --timeout after a
// Ctrl-C.
func TestStopDuringTheWaitIsInconclusiveNotLost(t *testing.T) {
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	f := &fakeDealsync{
		invoice: func(string) bool { return false }, // acknowledged, invoices still to come
		onList: func(f *fakeDealsync, _ string) int {
			if f.lists == 2 { // the first poll of the wait (the first listing checks the sandbox)
				interrupt()
			}
			return 0
		},
	}
	rep, err := runFake(t, ctx, f, Options{N: 5, Rounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Dealsync
	if d.Lost != 0 || d.Pending != 5 {
		t.Fatalf("lost %d, pending %d; want 0 5", d.Lost, d.Pending)
	}
	if rep.Verdict != VerdictInconclusive || !strings.Contains(rep.VerdictReason, "interrupt") {
		t.Fatalf("verdict %q: %s", rep.Verdict, rep.VerdictReason)
	}
	notes := strings.Join(rep.Notes, "\n")
	if strings.Contains(notes, "VIOLATED") || strings.Contains(notes, "--timeout") {
		t.Fatalf("notes:\n%s", notes)
	}
}

func TestStopReasonTellsTheTimeoutFromAnInterrupt(t *testing.T) {
	running := context.Background()
	if got := stopReason(running, time.Minute); got != "" {
		t.Errorf("running: %q", got)
	}
	timedOut, cancel := context.WithTimeoutCause(running, 0, errRunTimeout)
	defer cancel()
	<-timedOut.Done()
	if got := stopReason(timedOut, time.Minute); !strings.Contains(got, "--timeout of 1m0s") {
		t.Errorf("timed out: %q", got)
	}
	parent, interrupt := context.WithCancel(running)
	interrupted, cancel2 := context.WithTimeoutCause(parent, time.Hour, errRunTimeout)
	defer cancel2()
	interrupt()
	if got := stopReason(interrupted, time.Hour); strings.Contains(got, "timeout") || !strings.Contains(got, "interrupt") {
		t.Errorf("interrupted: %q", got)
	}
}

// Review item 8: an unreachable sandbox was found only after every
// delivery was sent.
func TestRunRefusesAnUnreachableSandboxBeforeSending(t *testing.T) {
	f := &fakeDealsync{onList: func(*fakeDealsync, string) int { return http.StatusBadGateway }}
	_, err := runFake(t, context.Background(), f, Options{})
	if err == nil || !strings.Contains(err.Error(), "does not list its invoices") {
		t.Fatalf("err = %v", err)
	}
	if f.posts != 0 {
		t.Fatalf("%d deliveries sent to a bench whose sandbox does not answer", f.posts)
	}
}

// Review item 8: an error in a later round threw away the rounds before it.
func TestRunKeepsTheRoundsBeforeAnError(t *testing.T) {
	var round1 string
	f := &fakeDealsync{onList: func(f *fakeDealsync, prefix string) int {
		if strings.HasSuffix(prefix, "-") && round1 == "" {
			round1 = prefix
		}
		if strings.HasSuffix(prefix, "-") && prefix != round1 {
			return http.StatusInternalServerError // every listing of round 2
		}
		return 0
	}}
	rep, err := runFake(t, context.Background(), f, Options{N: 6, Rounds: 2, Settle: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "round 2/2") {
		t.Fatalf("err = %v", err)
	}
	if rep == nil || rep.Dealsync == nil || len(rep.Rounds) != 1 || rep.Rounds[0].Invoices != 3 {
		t.Fatalf("the completed round is not reported: %+v", rep)
	}
	// The final check lists every round's invoices: those of the round cut
	// short are its own deals', not unexpected ones.
	if d := rep.Dealsync; d.Unexpected != 0 || rep.Verdict == VerdictViolated {
		t.Fatalf("unexpected %d, verdict %q: %s", d.Unexpected, rep.Verdict, rep.VerdictReason)
	}
}

// The verdict is the worst that applies: a violation, then deliveries not
// acknowledged, then anything that leaves the outcome open.
func TestVerdictOrder(t *testing.T) {
	for _, c := range []struct {
		name    string
		d       DealsyncResult
		stopped string
		want    string
	}{
		{"clean", DealsyncResult{Deals: 3}, "", VerdictPass},
		{"clean without Temporal", DealsyncResult{Deals: 3, OpenRuns: -1}, "", VerdictPass},
		{"lost", DealsyncResult{Deals: 3, Lost: 1}, "", VerdictViolated},
		{"duplicated while stopped", DealsyncResult{Deals: 3, Duplicated: 1, Pending: 2}, "the --timeout of 1m0s", VerdictViolated},
		{"none acknowledged", DealsyncResult{Deals: 3, Unacknowledged: 3, Refused: 3}, "", VerdictUndelivered},
		{"some refused", DealsyncResult{Deals: 3, Unacknowledged: 1, Refused: 1}, "", VerdictUndelivered},
		{"cut off by the stop", DealsyncResult{Deals: 3, Unacknowledged: 2}, "an interrupt (Ctrl-C or SIGTERM)", VerdictInconclusive},
		{"pending", DealsyncResult{Deals: 3, Pending: 1}, "", VerdictInconclusive},
		{"invoiced under another reference", DealsyncResult{Deals: 3, Unmatched: 1}, "", VerdictInconclusive},
		{"lost beside unmatched", DealsyncResult{Deals: 3, Unmatched: 1, Lost: 1}, "", VerdictViolated},
		{"runs open", DealsyncResult{Deals: 3, OpenRuns: 2}, "", VerdictInconclusive},
	} {
		if got, why := verdict(&c.d, c.stopped); got != c.want {
			t.Errorf("%s: %q (%s), want %q", c.name, got, why, c.want)
		}
	}
}
