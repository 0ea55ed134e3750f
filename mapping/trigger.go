package mapping

import (
	"fmt"
	"strings"

	"github.com/dealsync/dealsync/model"
)

// Trigger decides whether a deal event starts a run. The intake calls it
// for every event of a delivery.
type Trigger interface {
	// Evaluate reports whether ev should start a run, and if not, why. An
	// error says the trigger could not be evaluated on ev (an expression
	// that fails on this deal): neither a yes nor a no, so the intake
	// refuses the delivery instead of dropping a deal that may be won.
	Evaluate(ev model.DealEvent) (triggered bool, reason string, err error)
}

// StageTrigger starts a run when a deal's stage becomes one of the won
// stages (compared ignoring case): the new stage is won and the previous
// one is not. When the source does not know the previous stage, a won
// stage triggers; the deterministic workflow ID then keeps a deal from
// being invoiced twice. It is the trigger of the built-in mapping and of
// mapping files without a `trigger` expression (DefaultTrigger).
type StageTrigger struct {
	WonStages []string
}

// Evaluate implements Trigger.
func (t StageTrigger) Evaluate(ev model.DealEvent) (bool, string, error) {
	d := ev.Deal
	if strings.TrimSpace(d.Stage) == "" {
		// A thin CRM's event of something else than a stage change (a
		// deal made, deleted or merged, another property changed): it
		// reaches a deal's running run, and starts none.
		return false, "the event names no stage (not a change of the deal's stage: a deal made, deleted or merged, another property changed): no run starts from it", nil
	}
	if !isWon(t.WonStages, d.Stage) {
		return false, fmt.Sprintf("stage %q is not a won stage", d.Stage), nil
	}
	if isWon(t.WonStages, d.PreviousStage) {
		return false, fmt.Sprintf("deal was already won (previous stage %q)", d.PreviousStage), nil
	}
	return true, "", nil
}
