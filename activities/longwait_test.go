package activities

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
)

// limitingERP answers every customer with a 429 that asks for wait.
type limitingERP struct {
	rateLimitedERP
	wait time.Duration
}

func (e limitingERP) FindOrCreateCustomer(context.Context, model.Customer, string) (connectors.CustomerRef, error) {
	return connectors.CustomerRef{}, &connectors.APIError{Service: "erp", Op: "find customer", StatusCode: 429, RetryAfter: e.wait, RetryAfterGiven: true}
}

// A local call's failure that asks for a retry after longer than the
// input's ReturnWaitsOver ends the call (not retried, with its delay and
// numbered attempt: LongWait), and Retried makes it the SDK's retryable
// failure again. A shorter wait, an input without ReturnWaitsOver, or a
// regular activity (retried by Temporal, holding no worker) keep the
// failure as it was.
func TestLongRetryAfterEndsALocalCall(t *testing.T) {
	for _, tc := range []struct {
		name  string
		wait  time.Duration
		over  time.Duration
		local bool
		ends  bool
	}{
		{"local, long", time.Minute, 10 * time.Second, true, true},
		{"local, short", 10 * time.Second, 10 * time.Second, true, false},
		{"local, not asked", time.Minute, 0, true, false},
		{"activity", time.Minute, 10 * time.Second, false, false},
	} {
		a := &Activities{Connections: oneConnection{"m": {Target: limitingERP{wait: tc.wait}}}}
		var s testsuite.WorkflowTestSuite
		env := s.NewTestActivityEnvironment()
		env.RegisterActivity(a)
		in := CustomerInput{Connection: "m", ReturnWaitsOver: tc.over}
		var err error
		if tc.local {
			_, err = env.ExecuteLocalActivity(a.FindOrCreateCustomer, in)
		} else {
			_, err = env.ExecuteActivity(a.FindOrCreateCustomer, in)
		}
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != ErrTypeERPRateLimited || app.NextRetryDelay() != tc.wait {
			t.Fatalf("%s: %v; want an ERPRateLimited failure asking for %s", tc.name, err, tc.wait)
		}
		wait, ends := LongWait(err)
		if ends != tc.ends || app.NonRetryable() != tc.ends || (ends && wait != tc.wait) {
			t.Errorf("%s: LongWait %s, %v; not retried: %v; want %v", tc.name, wait, ends, app.NonRetryable(), tc.ends)
		}
		var at Attempt
		if !app.HasDetails() || app.Details(&at) != nil || at.Number != 1 || !at.NotSent {
			t.Errorf("%s: details %+v, want attempt 1, not sent", tc.name, at)
		}
		again := Retried(err)
		var retried *temporal.ApplicationError
		if !errors.As(again, &retried) || retried.NonRetryable() || retried.NextRetryDelay() != tc.wait || retried.Type() != ErrTypeERPRateLimited ||
			!retried.HasDetails() || retried.Details(&at) != nil || at.Number != 1 {
			t.Errorf("%s: Retried: %v", tc.name, again)
		}
		if _, still := LongWait(again); still {
			t.Errorf("%s: Retried is still a long wait", tc.name)
		}
	}
}

// The attempt that asks for a long wait is logged, and counted, as the
// attempt it is: a warning of a retried failure (the workflow retries
// it after its timer), not one its call ended not retried; and the
// step's log lines number its attempts in the step (AttemptsBefore, the
// attempts of the step's earlier calls), as the run's failure counts
// them, not from 1 again in each call.
func TestALongWaitIsLoggedAsTheRetriedAttemptItIs(t *testing.T) {
	var out bytes.Buffer
	a := &Activities{Connections: oneConnection{"m": {Target: limitingERP{wait: time.Minute}}}}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	_, err := env.ExecuteLocalActivity(a.FindOrCreateCustomer, CustomerInput{Connection: "m", DealID: "D-5", ReturnWaitsOver: 10 * time.Second, AttemptsBefore: 3})
	if _, long := LongWait(err); !long {
		t.Fatalf("%v; want the call ended on a long wait", err)
	}
	var line string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "step attempt failed") {
			line = l
		}
	}
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "attempt=4 ") || !strings.Contains(line, "retryable: true") {
		t.Errorf("the attempt's line %q; want a warning of attempt 4, retryable, in:\n%s", line, out.String())
	}
}
