package mapping

import (
	"fmt"
	"slices"

	"github.com/dealsync/dealsync/model"
)

// StageTrigger starts a run when a deal's stage becomes one of the won
// stages: the new stage is won and the previous one is not. When the source
// does not know the previous stage, a won stage triggers; the deterministic
// workflow ID then keeps a deal from being invoiced twice.
type StageTrigger struct {
	WonStages []string
}

// Evaluate reports whether ev should start a run, and if not, why.
func (t StageTrigger) Evaluate(ev model.DealEvent) (bool, string) {
	d := ev.Deal
	if !slices.Contains(t.WonStages, d.Stage) {
		return false, fmt.Sprintf("stage %q is not a won stage", d.Stage)
	}
	if d.PreviousStage != "" && slices.Contains(t.WonStages, d.PreviousStage) {
		return false, fmt.Sprintf("deal was already won (previous stage %q)", d.PreviousStage)
	}
	return true, ""
}
