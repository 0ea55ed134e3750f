package activities

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
)

var t0 = time.Date(2036, 5, 1, 9, 0, 0, 0, time.UTC)

// A step's first attemptBurst failures are each logged; past them one
// line of each failure type every attemptEvery, counting the attempts
// not logged since the line before; a new failure type is logged at once,
// one that comes back within the minute is not.
func TestAttemptLogThrottlesRepeatsOfAStep(t *testing.T) {
	var l attemptLog
	type want struct {
		log       bool
		notLogged int
		throttle  bool
	}
	steps := []struct {
		at      time.Duration
		errType string
		want    want
	}{
		{0, "ERPUnavailable", want{true, 0, false}},
		{1 * time.Second, "ERPUnavailable", want{true, 0, false}},
		{2 * time.Second, "ERPUnavailable", want{true, 0, false}},
		{3 * time.Second, "ERPUnavailable", want{true, 0, false}},
		{4 * time.Second, "ERPUnavailable", want{true, 0, true}}, // the burst's last
		{5 * time.Second, "ERPUnavailable", want{false, 0, false}},
		{63 * time.Second, "ERPUnavailable", want{false, 0, false}}, // 59 s after the last line
		{64 * time.Second, "ERPUnavailable", want{true, 2, false}},  // a minute after it
		{65 * time.Second, "ERPUnavailable", want{false, 0, false}},
		{66 * time.Second, "ERPRateLimited", want{true, 1, false}}, // another failure
		{67 * time.Second, "ERPRateLimited", want{false, 0, false}},
		// Back and forth between two types: each at most once a minute.
		{68 * time.Second, "ERPUnavailable", want{false, 0, false}},
		{69 * time.Second, "ERPRateLimited", want{false, 0, false}},
		{123 * time.Second, "ERPUnavailable", want{false, 0, false}},
		{124 * time.Second, "ERPUnavailable", want{true, 4, false}}, // a minute after its line
		{125 * time.Second, "ERPRateLimited", want{false, 0, false}},
		{126 * time.Second, "ERPRateLimited", want{true, 1, false}}, // a minute after its line
		{127 * time.Second, "ERPUnavailable", want{false, 0, false}},
	}
	for i, s := range steps {
		log, n, throttle := l.failed("run\x00invoice", s.errType, t0.Add(s.at))
		if got := (want{log, n, throttle}); got != s.want {
			t.Errorf("attempt %d at %s (%s): %+v, want %+v", i+1, s.at, s.errType, got, s.want)
		}
	}
	// Another run's step, and another step of the run, are their own.
	if log, _, _ := l.failed("other\x00invoice", "ERPUnavailable", t0.Add(128*time.Second)); !log {
		t.Error("another run's first failure not logged")
	}
	if log, _, _ := l.failed("run\x00customer", "ERPUnavailable", t0.Add(128*time.Second)); !log {
		t.Error("another step's first failure not logged")
	}
	// A step that ended is forgotten, with its attempts not logged.
	l.failed("run\x00invoice", "ERPUnavailable", t0.Add(129*time.Second))
	if n := l.ended("run\x00invoice"); n != 2 {
		t.Errorf("ended: %d attempts not logged, want 2", n)
	}
	if log, n, _ := l.failed("run\x00invoice", "ERPUnavailable", t0.Add(130*time.Second)); !log || n != 0 {
		t.Errorf("the first failure after the step ended: log %v, %d not logged; want logged as a first", log, n)
	}
	if got := l.size(); got != 3 {
		t.Errorf("%d steps remembered, want 3", got)
	}
}

// attemptLog holds at most maxAttemptRecords steps: when full, the steps
// quiet for attemptEvery go first, and if none is, all do.
func TestAttemptLogIsBounded(t *testing.T) {
	var l attemptLog
	for i := range maxAttemptRecords {
		l.failed(fmt.Sprint("old", i), "ERPUnavailable", t0)
	}
	l.failed("busy", "ERPUnavailable", t0.Add(30*time.Second)) // full: none quiet, all forgotten
	if got := l.size(); got != 1 {
		t.Fatalf("%d steps remembered once full with none quiet, want 1", got)
	}
	for i := range maxAttemptRecords - 1 {
		l.failed(fmt.Sprint("new", i), "ERPUnavailable", t0.Add(89*time.Second))
	}
	l.failed("last", "ERPUnavailable", t0.Add(90*time.Second)) // "busy" quiet for a minute: it alone goes
	if got := l.size(); got != maxAttemptRecords {
		t.Errorf("%d steps remembered, want %d", got, maxAttemptRecords)
	}
	l.mu.Lock()
	_, busy := l.m["busy"]
	_, kept := l.m["new0"]
	l.mu.Unlock()
	if busy || !kept {
		t.Errorf("the quiet step kept: %v, a recent one kept: %v; want false, true", busy, kept)
	}
}

// attemptLog is safe for concurrent use: each failed attempt of many
// goroutines' steps is logged, or counted as not logged by the step's
// next line or its end, exactly once (go test -race checks more).
func TestAttemptLogIsGoroutineSafe(t *testing.T) {
	var l attemptLog
	var wg sync.WaitGroup
	var mu sync.Mutex
	var accounted int
	const goroutines, each = 8, 200
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := range each {
				key := fmt.Sprint("run", i%10)
				if log, notLogged, _ := l.failed(key, "ERPUnavailable", t0.Add(time.Duration(g)*time.Second)); log {
					n += 1 + notLogged
				}
				if i%7 == 0 {
					n += l.ended(key)
				}
			}
			mu.Lock()
			accounted += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i := range 10 {
		accounted += l.ended(fmt.Sprint("run", i))
	}
	if accounted != goroutines*each {
		t.Errorf("%d failed attempts logged or counted as not logged, want %d", accounted, goroutines*each)
	}
	if got := l.size(); got != 0 {
		t.Errorf("%d steps remembered after all ended, want 0", got)
	}
}

// scriptedERP answers the invoice step's calls with errs in turn, and
// moves the clock on 10 s at each.
type scriptedERP struct {
	rateLimitedERP
	mu    sync.Mutex
	calls int
	errs  []error
}

func (e *scriptedERP) CreateInvoice(context.Context, model.Invoice, connectors.CustomerRef, string) (connectors.InvoiceResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls++
	if e.calls <= len(e.errs) {
		return connectors.InvoiceResult{}, e.errs[e.calls-1]
	}
	return connectors.InvoiceResult{InvoiceID: "INV-1"}, nil
}

func (e *scriptedERP) now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return t0.Add(time.Duration(e.calls) * 10 * time.Second)
}

// A worker retrying a step with short back-offs logs its first failed
// attempts, then one a minute with how many were not logged; a new
// failure type at once; the failure that ends the run always. What it
// remembered of the run's step is forgotten when the run ends.
func TestRepeatedStepFailuresAreThrottledInTheLog(t *testing.T) {
	limited := &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429}
	down := &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 502}
	refused := &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 400, Message: "bad date"}
	var errs []error
	for range 18 {
		errs = append(errs, limited)
	}
	errs = append(errs, down, down, refused) // attempts 19 to 21
	erp := &scriptedERP{errs: errs}
	a := &Activities{Connections: oneConnection{"m": {Target: erp}}, Now: erp.now}

	var out bytes.Buffer
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: time.Minute,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Millisecond, BackoffCoefficient: 1, MaximumAttempts: 30},
		})
		return workflow.ExecuteLocalActivity(ctx, a.CreateInvoice, CreateInvoiceInput{Connection: "m",
			Invoice: model.Invoice{Reference: "DS-D-7", SourceDealID: "D-7"}}).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "invoice"})
	env.ExecuteWorkflow("invoice")
	if erp.calls != 21 {
		t.Fatalf("%d calls, want 21:\n%s", erp.calls, out.String())
	}

	var got []string
	for _, l := range strings.Split(out.String(), "\n") {
		if !strings.Contains(l, "step=invoice") {
			continue
		}
		_, n, _ := strings.Cut(l, " attempt=")
		n, _, _ = strings.Cut(n, " ")
		if _, skipped, ok := strings.Cut(l, " attempts_not_logged="); ok {
			skipped, _, _ = strings.Cut(skipped, " ")
			n += "(+" + skipped + ")"
		}
		if strings.Contains(l, " throttled=") {
			n += "(then throttled)"
		}
		if strings.Contains(l, "the run ends") {
			n += "(ends)"
		}
		got = append(got, n)
	}
	// Clock: 10 s a call. Attempts 1-5 (the burst), 11 and 17 (a minute
	// after the line before), 19 (502: another type), 21 (ends the run).
	want := "1 2 3 4 5(then throttled) 11(+5) 17(+5) 19(+1) 21(+1)(ends)"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("attempts logged: %s\nwant:              %s\nin:\n%s", g, want, out.String())
	}
	if n := a.attempts.size(); n != 0 {
		t.Errorf("%d steps remembered after the run ended, want 0", n)
	}
}

// A step that succeeds is forgotten: a later failure of it is logged as
// a first.
func TestASucceededStepIsForgotten(t *testing.T) {
	erp := &scriptedERP{errs: []error{&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 502}}}
	a := &Activities{Connections: oneConnection{"m": {Target: erp}}, Now: erp.now}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(a)
	in := CreateInvoiceInput{Connection: "m", Invoice: model.Invoice{Reference: "DS-D-8", SourceDealID: "D-8"}}
	if _, err := env.ExecuteLocalActivity(a.CreateInvoice, in); err == nil {
		t.Fatal("the first call succeeded; want it failed")
	}
	if n := a.attempts.size(); n != 1 {
		t.Fatalf("%d steps remembered after a failure, want 1", n)
	}
	if _, err := env.ExecuteLocalActivity(a.CreateInvoice, in); err != nil {
		t.Fatal(err)
	}
	if n := a.attempts.size(); n != 0 {
		t.Errorf("%d steps remembered after the step succeeded, want 0", n)
	}
}
