package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

func TestIsLoss(t *testing.T) {
	won := []string{"closed_won", "won"}
	for _, tc := range []struct {
		ev   model.DealEvent
		want bool
	}{
		{model.DealEvent{Deal: model.Deal{PreviousStage: "Closed_Won", Stage: "closed_lost"}}, true},
		{model.DealEvent{Deal: model.Deal{PreviousStage: "negotiation", Stage: "closed_lost"}}, false}, // never won
		{model.DealEvent{Deal: model.Deal{PreviousStage: "won", Stage: "closed_won"}}, false},          // still won
		{model.DealEvent{Deal: model.Deal{Stage: "closed_lost"}}, false},                               // previous stage unknown
		{model.DealEvent{Thin: true, Deal: model.Deal{PreviousStage: "won", Stage: "lost"}}, false},    // read from the CRM instead
	} {
		if got := IsLoss(won, tc.ev); got != tc.want {
			t.Errorf("IsLoss(%+v) = %v, want %v", tc.ev.Deal, got, tc.want)
		}
	}
}

// A loss recorded by its own run: after the settle time it ends DealNotWon
// with the loss's time and the events it saw (an older win among them),
// or the newer loss an earlier run of the deal recorded (a loss delivered
// late); a newer win during the settle time, or one as new (events without
// times: the later delivered is the newer), continues as an InvoiceDeal
// run of that win.
func TestRecordDealLoss(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 5, 0, 0, time.UTC)
	lossAt := func(at time.Time) model.DealEvent {
		return model.DealEvent{EventID: "l", OccurredAt: at, Deal: model.Deal{ID: "D-1", PreviousStage: "closed_won", Stage: "closed_lost"}}
	}
	// The signal comes 2 s into the settle time of 5 s, or, with
	// duringRead, while the previous run is read (3 s from the settle
	// time's end).
	// readErr, if set, is the read's failure.
	var readErr error
	runAt := func(t *testing.T, loss, signal model.DealEvent, prev activities.PreviousRun, duringRead bool) error {
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: &fakeTarget{keys: map[string]bool{}}})
		env.RegisterWorkflowWithOptions(RecordDealLoss, workflow.RegisterOptions{Name: RecordDealLossName})
		var a *activities.Activities
		// The read names its deal, for its log lines.
		read := env.OnActivity(a.PreviousRun, mock.Anything, mock.MatchedBy(func(in activities.PreviousRunInput) bool { return in.DealID == "D-1" })).Return(prev, readErr)
		in := input(loss)
		in.WonStages, in.SettleTime = []string{"closed_won"}, 5*time.Second
		at := 2 * time.Second
		if duringRead {
			read.After(3 * time.Second)
			at = 6 * time.Second
		}
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(DealEventSignal, signal) }, at)
		env.ExecuteWorkflow(RecordDealLossName, in)
		return env.GetWorkflowError()
	}
	run := func(t *testing.T, loss, signal model.DealEvent, prev activities.PreviousRun) error {
		return runAt(t, loss, signal, prev, false)
	}
	notWon := func(t *testing.T, err error) activities.NotWonDetails {
		t.Helper()
		var appErr *temporal.ApplicationError
		var details activities.NotWonDetails
		if !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon || appErr.Details(&details) != nil {
			t.Fatalf("want DealNotWon with its details, got %v", err)
		}
		return details
	}
	continued := func(t *testing.T, err error) InvoiceDealInput {
		t.Helper()
		var can *workflow.ContinueAsNewError
		if !errors.As(err, &can) || can.WorkflowType.Name != InvoiceDealName {
			t.Fatalf("want a continue-as-new to InvoiceDeal, got %v", err)
		}
		var in InvoiceDealInput
		if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &in); err != nil {
			t.Fatal(err)
		}
		return in
	}
	older := model.DealEvent{EventID: "w", OccurredAt: at.Add(-5 * time.Minute), Deal: model.Deal{ID: "D-1", Stage: "closed_won"}}

	t.Run("an older win meanwhile", func(t *testing.T) {
		details := notWon(t, run(t, lossAt(at), older, activities.PreviousRun{}))
		if !details.LatestAt.Equal(at) || details.Stage != "closed_lost" || strings.Join(details.EventIDs, ",") != "l,w" {
			t.Errorf("details %+v, want the loss's time and stage, both events", details)
		}
	})
	t.Run("an earlier run recorded a newer loss", func(t *testing.T) {
		prev := activities.PreviousRun{RunID: "r0", ErrorType: ErrTypeDealNotWon,
			NotWon: &activities.NotWonDetails{EventIDs: []string{"l5"}, LatestAt: at.Add(time.Hour), Stage: "closed_lost_again"}}
		details := notWon(t, run(t, lossAt(at), older, prev))
		if !details.LatestAt.Equal(at.Add(time.Hour)) || details.Stage != "closed_lost_again" || strings.Join(details.EventIDs, ",") != "l5,l,w" {
			t.Errorf("details %+v, want the newer loss's time and stage, every event", details)
		}
	})
	t.Run("won again meanwhile", func(t *testing.T) {
		in := continued(t, run(t, lossAt(at), model.DealEvent{EventID: "w2", OccurredAt: at.Add(5 * time.Minute), Deal: model.Deal{ID: "D-1", Stage: "closed_won"}}, activities.PreviousRun{}))
		if in.Event.EventID != "w2" || in.ChainStart.IsZero() {
			t.Errorf("continued with %+v, want the win w2 and the chain's start", in)
		}
	})
	// The win is delivered after the settle time, while the deal's
	// previous run is read: its webhook was acknowledged as reaching this
	// run, so it is invoiced too.
	t.Run("won again while the previous run is read", func(t *testing.T) {
		in := continued(t, runAt(t, lossAt(at), model.DealEvent{EventID: "w2", OccurredAt: at.Add(5 * time.Minute), Deal: model.Deal{ID: "D-1", Stage: "closed_won"}}, activities.PreviousRun{}, true))
		if in.Event.EventID != "w2" {
			t.Errorf("continued with %+v, want the win w2", in.Event)
		}
	})
	t.Run("an older win while the previous run is read", func(t *testing.T) {
		details := notWon(t, runAt(t, lossAt(at), older, activities.PreviousRun{}, true))
		if !details.LatestAt.Equal(at) || strings.Join(details.EventIDs, ",") != "l,w" {
			t.Errorf("details %+v, want the loss's time, both events", details)
		}
	})
	// The read of the previous run fails for good (the run list refuses
	// the query): the loss this run saw is recorded all the same, saying
	// so, and a win delivered during the read is invoiced.
	t.Run("the previous run unreadable", func(t *testing.T) {
		readErr = temporal.NewNonRetryableApplicationError("visibility refused the query", "RunsUnreadable", nil)
		defer func() { readErr = nil }()
		err := runAt(t, lossAt(at), older, activities.PreviousRun{}, true)
		details := notWon(t, err)
		if !details.LatestAt.Equal(at) || strings.Join(details.EventIDs, ",") != "l,w" || !strings.Contains(err.Error(), "earlier runs could not be read") {
			t.Errorf("%v: details %+v, want the loss recorded with both events, saying the earlier runs could not be read", err, details)
		}
		in := continued(t, runAt(t, lossAt(at), model.DealEvent{EventID: "w2", OccurredAt: at.Add(5 * time.Minute), Deal: model.Deal{ID: "D-1", Stage: "closed_won"}}, activities.PreviousRun{}, true))
		if in.Event.EventID != "w2" {
			t.Errorf("continued with %+v, want the win w2", in.Event)
		}
	})
	t.Run("won again, events without times", func(t *testing.T) {
		in := continued(t, run(t, lossAt(time.Time{}), model.DealEvent{EventID: "w2", Deal: model.Deal{ID: "D-1", Stage: "closed_won"}}, activities.PreviousRun{}))
		if in.Event.EventID != "w2" {
			t.Errorf("continued with %+v, want the win w2", in.Event)
		}
	})
}

// The run list is down from the loss's settle time until the run's
// timeout: the read of the deal's previous run gives up before the run
// times out, and the loss is recorded, saying the earlier runs could not
// be read. Before, the read's retries lasted as long as the run (a local
// call's budget was the whole execution timeout, an activity's retries
// unbounded), the run timed out and its loss was never recorded.
func TestRecordDealLossRecordsTheLossBeforeItsTimeout(t *testing.T) {
	for _, local := range []bool{true, false} {
		t.Run(map[bool]string{true: "local calls", false: "activities"}[local], func(t *testing.T) {
			env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: &fakeTarget{keys: map[string]bool{}}})
			env.RegisterWorkflowWithOptions(RecordDealLoss, workflow.RegisterOptions{Name: RecordDealLossName})
			env.SetStartWorkflowOptions(client.StartWorkflowOptions{WorkflowExecutionTimeout: 30 * time.Minute})
			var a *activities.Activities
			reads, start := 0, env.Now()
			var last time.Time
			env.OnActivity(a.PreviousRun, mock.Anything, mock.Anything).Return(func(context.Context, activities.PreviousRunInput) (activities.PreviousRun, error) {
				reads, last = reads+1, env.Now()
				return activities.PreviousRun{}, temporal.NewApplicationError("the run list is unavailable", activities.ErrTypeTemporalUnavailable)
			})
			in := input(model.DealEvent{EventID: "l", OccurredAt: time.Date(2026, 11, 20, 10, 5, 0, 0, time.UTC),
				Deal: model.Deal{ID: "D-1", PreviousStage: "closed_won", Stage: "closed_lost"}})
			in.WonStages, in.SettleTime, in.LocalCalls = []string{"closed_won"}, 5*time.Second, local
			// Attempts enough to outlast the run (the test environment
			// gives activities 10 where the server gives unlimited).
			in.Retry.MaximumAttempts = 1000
			env.ExecuteWorkflow(RecordDealLossName, in)
			err := env.GetWorkflowError()
			var appErr *temporal.ApplicationError
			var details activities.NotWonDetails
			if !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon || appErr.Details(&details) != nil {
				t.Fatalf("want the loss recorded (DealNotWon), got %v", err)
			}
			if !strings.Contains(err.Error(), "earlier runs could not be read") || !strings.Contains(err.Error(), "the run list is unavailable") {
				t.Errorf("%v: want it to say the earlier runs could not be read, and why", err)
			}
			// The test environment does not end a run at its timeout: the
			// reads must stop, and the loss be recorded, before it.
			if reads < 2 || last.Sub(start) > 30*time.Minute-lingerMargin {
				t.Errorf("the previous run was read %d times, the last %v into the run; want it retried until %v before the run's timeout of 30m, no later",
					reads, last.Sub(start), lingerMargin)
			}
		})
	}
}

// A run that continues a chain (RecordDealLoss won again) counts the
// execution timeout from the chain's start: its linger is cut the more.
func TestLingerCountsTheExecutionTimeoutFromTheChainsStart(t *testing.T) {
	lingerOf := func(t *testing.T, chainBefore time.Duration) time.Duration {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{WorkflowExecutionTimeout: 2 * time.Hour})
		env.RegisterWorkflowWithOptions(func(ctx workflow.Context) (time.Duration, error) {
			var chain time.Time
			if chainBefore > 0 {
				chain = workflow.GetInfo(ctx).WorkflowStartTime.Add(-chainBefore)
			}
			return lingerWithin(ctx, 24*time.Hour, chain), nil
		}, workflow.RegisterOptions{Name: "linger"})
		env.ExecuteWorkflow("linger")
		var d time.Duration
		if err := env.GetWorkflowResult(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	own, chained := lingerOf(t, 0), lingerOf(t, 30*time.Minute)
	if own != 2*time.Hour-lingerMargin || chained != 90*time.Minute-lingerMargin {
		t.Errorf("linger %v alone and %v in a chain started 30 min earlier; want %v and %v",
			own, chained, 2*time.Hour-lingerMargin, 90*time.Minute-lingerMargin)
	}
}

// A run's memo says whether it listens; a run without the key (started by
// an older intake) is taken to listen, so that a win meeting it is not
// left undelivered.
func TestListens(t *testing.T) {
	payload := func(v any) *commonpb.Payload {
		p, err := converter.GetDefaultDataConverter().ToPayload(v)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		memo *commonpb.Memo
		want bool
	}{
		{nil, true},
		{&commonpb.Memo{Fields: map[string]*commonpb.Payload{MemoMapping: payload("default")}}, true},
		{&commonpb.Memo{Fields: map[string]*commonpb.Payload{MemoListens: payload(true)}}, true},
		{&commonpb.Memo{Fields: map[string]*commonpb.Payload{MemoListens: payload(false)}}, false},
		{&commonpb.Memo{Fields: map[string]*commonpb.Payload{MemoListens: payload("no")}}, true},
	} {
		if got := Listens(c.memo); got != c.want {
			t.Errorf("Listens(%v) = %v, want %v", c.memo, got, c.want)
		}
	}
}

// A run continued from a RecordDealLoss run settles within the chain's
// execution timeout: with 50 of its 60 minutes spent by the loss's run, a
// settle time of 40 minutes is cut to end a minute before the chain's end,
// so the deal is invoiced before the chain times out.
func TestSettleCountsTheExecutionTimeoutFromTheChainsStart(t *testing.T) {
	settledAfter := func(t *testing.T, chainBefore time.Duration) time.Duration {
		erp := &fakeTarget{keys: map[string]bool{}}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{WorkflowExecutionTimeout: time.Hour})
		var a *activities.Activities
		env.OnActivity(a.PreviousRun, mock.Anything, mock.Anything).Return(activities.PreviousRun{}, nil)
		start := env.Now()
		var mapped time.Duration
		env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []interface{}) {
			if info.ActivityType.Name == "MapDeal" && mapped == 0 {
				mapped = env.Now().Sub(start)
			}
		})
		in := input(model.DealEvent{EventID: "w", Deal: wonDeal("D-12", "100.00")})
		in.WonStages, in.SettleTime = []string{"closedwon"}, 40*time.Minute
		if chainBefore > 0 {
			in.ChainStart = start.Add(-chainBefore)
		}
		env.ExecuteWorkflow(InvoiceDeal, in)
		if err := env.GetWorkflowError(); err != nil || erp.invoices != 1 {
			t.Fatalf("%v, %d invoices", err, erp.invoices)
		}
		return mapped
	}
	if own, chained := settledAfter(t, 0), settledAfter(t, 50*time.Minute); own != 40*time.Minute || chained != 9*time.Minute {
		t.Errorf("mapped %v after the start alone and %v in a chain started 50 min earlier; want 40 min and 9 (60 − 50 − the minute's margin)", own, chained)
	}
}
