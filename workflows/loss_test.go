package workflows

import (
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
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
// with the loss's time and the events it saw (an older win among them);
// a newer win during the settle time continues as an InvoiceDeal run of
// that win.
func TestRecordDealLoss(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 5, 0, 0, time.UTC)
	loss := model.DealEvent{EventID: "l", OccurredAt: at, Deal: model.Deal{ID: "D-1", PreviousStage: "closed_won", Stage: "closed_lost"}}
	run := func(t *testing.T, signal model.DealEvent) error {
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: &fakeTarget{keys: map[string]bool{}}})
		env.RegisterWorkflowWithOptions(RecordDealLoss, workflow.RegisterOptions{Name: RecordDealLossName})
		in := input(loss)
		in.WonStages, in.SettleTime = []string{"closed_won"}, 5*time.Second
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(DealEventSignal, signal) }, 2*time.Second)
		env.ExecuteWorkflow(RecordDealLossName, in)
		return env.GetWorkflowError()
	}
	t.Run("an older win meanwhile", func(t *testing.T) {
		err := run(t, model.DealEvent{EventID: "w", OccurredAt: at.Add(-5 * time.Minute), Deal: model.Deal{ID: "D-1", Stage: "closed_won"}})
		var appErr *temporal.ApplicationError
		var details activities.NotWonDetails
		if !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon || appErr.Details(&details) != nil {
			t.Fatalf("want DealNotWon with its details, got %v", err)
		}
		if !details.LatestAt.Equal(at) || details.Stage != "closed_lost" || len(details.EventIDs) != 2 {
			t.Errorf("details %+v, want the loss's time and stage, both events", details)
		}
	})
	t.Run("won again meanwhile", func(t *testing.T) {
		err := run(t, model.DealEvent{EventID: "w2", OccurredAt: at.Add(5 * time.Minute), Deal: model.Deal{ID: "D-1", Stage: "closed_won"}})
		var can *workflow.ContinueAsNewError
		if !errors.As(err, &can) || can.WorkflowType.Name != InvoiceDealName {
			t.Fatalf("want a continue-as-new to InvoiceDeal, got %v", err)
		}
	})
}
