package activities

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/wording"
)

// ErrTypeTargetMismatch is an ERP step that a worker refused because its
// config sends the run's connection to another ERP target than the one
// the run was started for (workers whose configs disagree, or a target
// changed while the run was under way): retried, nothing sent, so that a
// rolling config change can finish or a worker that agrees can take the
// step; when its retries run out the run fails with it.
const ErrTypeTargetMismatch = "ERPTargetMismatch"

// targetMismatch is the message of an ERP step refused by checkTarget:
// here is the target this worker would call, pinned the run's. grace is
// how long the step is retried so (Activities.TargetMismatchGrace), 0
// for as long as the run's retries; spent, when it is past: how long the
// step has been under way, and the run fails.
func targetMismatch(connection, account string, here, pinned connectors.TargetIdentity, grace, spent time.Duration) string {
	whose := fmt.Sprintf("the ERP calls of connection %q", connection)
	if account != "" {
		whose += " for account " + strconv.Quote(account)
	}
	msg := fmt.Sprintf("this worker sends %s to %s, but the run was started for %s: nothing was sent. "+
		"This worker's target, account_targets or DEALSYNC_TARGETS_ variables differ from the run starter's "+
		"(an intake, or a `deals sync` or retry), or the target changed since: "+
		"run `dealsync config check` on every host and give every worker and intake the same config file and DEALSYNC_ variables; ",
		whose, here.Description, pinned.Description)
	switch {
	case grace <= 0:
		return msg + "the step is retried until the run's run_timeout meanwhile. A run started for the wrong target stays stuck: " +
			"terminate it (Web UI, or `temporal workflow terminate`) and `dealsync runs retry --terminated --query …` " +
			"(a run that failed: without --terminated; timed out: --timed-out) starts it again for the target configured then"
	case spent <= 0:
		return msg + fmt.Sprintf("the step is retried meanwhile, for up to workflow.target_mismatch_grace (%s) from its first attempt, "+
			"then the run fails: `dealsync runs retry --query … --failure "+ErrTypeTargetMismatch+"` (a run that timed out: --timed-out, without --failure; terminated: --terminated, without it) "+
			"starts it again for the target configured then", wording.Duration(grace))
	default:
		return msg + fmt.Sprintf("the step was retried for %s since its first attempt, past workflow.target_mismatch_grace (%s), "+
			"and is not retried again: the run fails. Once the config is the one meant, `dealsync runs retry --query … --failure "+ErrTypeTargetMismatch+"` "+
			"starts it again for the target configured then", wording.Duration(spent.Round(time.Second)), wording.Duration(grace))
	}
}

// TargetMismatch is what the message of an ErrTypeTargetMismatch
// failure (targetMismatch's) names: the connection, the CRM account when
// the deal's account was named, and the descriptions of the target this
// worker would call (Here) and of the one the run was started for
// (Pinned), as connectors.TargetIdentity.Description gives them.
type TargetMismatch struct {
	Connection, Account string
	Here, Pinned        string
}

// ParseTargetMismatch reads a TargetMismatch back from the message of an
// ErrTypeTargetMismatch failure, for a list to say it in short (the
// message names both targets whole, then what to do); false for another
// message. The account is quoted, as are the targets' names within their
// descriptions, so that a name holding the message's own words reads
// right; the messages of the release before, whose account was not
// quoted, read as well.
func ParseTargetMismatch(msg string) (TargetMismatch, bool) {
	var m TargetMismatch
	rest, ok := strings.CutPrefix(msg, "this worker sends the ERP calls of connection ")
	if !ok {
		return m, false
	}
	if m.Connection, rest, ok = quoted(rest); !ok {
		return m, false
	}
	if r, ok := strings.CutPrefix(rest, " for account "); ok {
		if account, after, ok := quoted(r); ok && strings.HasPrefix(after, " to target ") {
			m.Account, rest = account, after
		} else if i := strings.Index(r, " to target "); i >= 0 {
			m.Account, rest = r[:i], r[i:] // the release before's, unquoted
		} else {
			return m, false
		}
	}
	if rest, ok = strings.CutPrefix(rest, " to "); !ok {
		return m, false
	}
	if m.Here, rest, ok = description(rest, ", but the run was started for "); !ok {
		return m, false
	}
	if m.Pinned, _, ok = description(rest, ": nothing was sent"); !ok {
		return m, false
	}
	return m, true
}

// quoted is the Go-quoted string s starts with, unquoted, and what
// follows it.
func quoted(s string) (string, string, bool) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", false
	}
	v, _ := strconv.Unquote(q)
	return v, s[len(q):], true
}

// description is the target description s starts with, up to sep, which
// is looked for after the target's quoted name, and what follows sep.
func description(s, sep string) (string, string, bool) {
	r, ok := strings.CutPrefix(s, "target ")
	if !ok {
		return "", "", false
	}
	_, after, ok := quoted(r)
	if !ok {
		return "", "", false
	}
	i := strings.Index(after, sep)
	if i < 0 {
		return "", "", false
	}
	end := len(s) - len(after) + i
	return s[:end], s[end+len(sep):], true
}

// checkTarget refuses an ERP step whose run was started for another
// target (pinned, from the run's input) than the one this worker's
// config gives the connection for the deal's account: an
// ErrTypeTargetMismatch whose attempt sent nothing (sent, unless
// earlierMay: an earlier attempt of the step may have written),
// retryable until the worker's TargetMismatchGrace has passed since the
// step's first attempt (stepStart; zero in a call scheduled by an earlier
// release's worker: retryable), then not. A run started before targets
// were pinned (pinned nil), or a pin this worker cannot compare
// (connectors.TargetIdentity.Comparable), is not refused; nor is the pin
// the release before this one made of the same target
// (connectors.TargetIdentity.Matches).
func (a *Activities) checkTarget(ctx context.Context, connection, account string, conn Connection, pinned *connectors.TargetIdentity, stepStart time.Time, note string, earlierMay bool) error {
	if pinned == nil {
		return nil
	}
	here := conn.TargetIdentityFor(account)
	if !here.Comparable(*pinned) || here.Matches(*pinned) {
		return nil
	}
	grace := a.TargetMismatchGrace
	if stepStart.IsZero() {
		grace = 0
	}
	var spent time.Duration
	if grace > 0 {
		now := time.Now
		if a.Now != nil {
			now = a.Now
		}
		if d := now().Sub(stepStart); d >= grace {
			spent = d
		}
	}
	msg := targetMismatch(connection, account, here, *pinned, grace, spent) + note
	at := Attempt{NotSent: !earlierMay, Number: attemptOf(ctx)}
	if spent > 0 {
		return temporal.NewNonRetryableApplicationError(msg, ErrTypeTargetMismatch, nil, at)
	}
	return temporal.NewApplicationError(msg, ErrTypeTargetMismatch, at)
}
