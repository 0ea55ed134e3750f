package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.temporal.io/sdk/activity"

	"github.com/dealsync/dealsync/connectors"
)

// lastFailures remembers, in this worker, the last failure of each run's
// step whose attempts go on, so that an attempt not sent for want of time
// (connectors.ErrNoTimeLeft: most often the last one of a step whose
// retries used up the run's time in an outage) says what the attempts
// before it met, in the failure that ends the run: the ERP's 503, say,
// rather than only that time ran out. A step whose attempts ran on other
// workers (regular activities) may find nothing here; then the failure
// says only its own.
type lastFailures struct {
	mu sync.Mutex
	m  map[string]stepRecord // by run and step
}

// stepRecord is what this worker saw of a step's failed attempts.
type stepRecord struct {
	msg string // the last failure's message
	// call and attempt are the last attempt noted (noteAttempt): the
	// call's attempts before it (CreateInvoiceInput.AttemptsBefore) and
	// its number in the call. refused says that it and every attempt of
	// the call before it failed in this worker as a refusal before the
	// vendor acted, writing nothing (Attempt.NotSent); an attempt under
	// way is noted not refused.
	call, attempt int32
	refused       bool
}

// maxRemembered bounds lastFailures: past it, what it holds is forgotten
// (a failure message is only lost from a later message, never acted on).
const maxRemembered = 10000

// withEarlier records err as the last failure of the step running in ctx
// (a success forgets it) and returns err; an ErrNoTimeLeft comes back
// with the failure of the attempt before it, when this worker saw one.
func (l *lastFailures) withEarlier(ctx context.Context, err error) error {
	if !activity.IsActivity(ctx) {
		return err
	}
	key := stepKey(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		delete(l.m, key)
	case errors.Is(err, connectors.ErrNoTimeLeft):
		if last, ok := l.m[key]; ok && last.msg != "" {
			return fmt.Errorf("%w; the attempt before it failed: %s", err, last.msg)
		}
	default:
		l.room()
		rec := l.m[key]
		rec.msg = err.Error()
		l.m[key] = rec
	}
	return err
}

// stepKey names the run's step running in ctx, an activity.
func stepKey(ctx context.Context) string {
	info := activity.GetInfo(ctx)
	return info.WorkflowExecution.ID + "\x00" + info.WorkflowExecution.RunID + "\x00" + info.ActivityType.Name
}

// room makes the map, or forgets what it holds when it is full.
func (l *lastFailures) room() {
	if l.m == nil || len(l.m) >= maxRemembered {
		l.m = map[string]stepRecord{}
	}
}

// earlierRefused says whether every attempt before this one of the
// step's call running in ctx (call: the step's attempts made before the
// call) failed in this worker as a refusal before the vendor acted (a
// 429, a 503 with Retry-After: noteAttempt), so that none of them wrote
// anything; true for a first attempt. An attempt this worker did not see
// (it ran on another worker, or was forgotten), or did not see end (it
// ran out of time before it returned), may have written: false.
func (l *lastFailures) earlierRefused(ctx context.Context, call int32) bool {
	n := attemptOf(ctx)
	if n <= 1 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	rec, ok := l.m[stepKey(ctx)]
	return ok && rec.call == call && rec.attempt == n-1 && rec.refused
}

// noteAttempt records the attempt of the step's call running in ctx
// (call: the step's attempts made before the call): started, or failed
// having written nothing (refused) or not. (An attempt after one that
// was not refused, or that this worker did not see, is noted not refused
// by its step, which cannot tell what the earlier one did.)
func (l *lastFailures) noteAttempt(ctx context.Context, call int32, refused bool) {
	if !activity.IsActivity(ctx) {
		return
	}
	n := attemptOf(ctx)
	key := stepKey(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.room()
	rec := l.m[key]
	rec.call, rec.attempt, rec.refused = call, n, refused
	l.m[key] = rec
}
