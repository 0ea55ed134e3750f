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
	m  map[string]string // run and step → the last failure's message
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
	info := activity.GetInfo(ctx)
	key := info.WorkflowExecution.ID + "\x00" + info.WorkflowExecution.RunID + "\x00" + info.ActivityType.Name
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		delete(l.m, key)
	case errors.Is(err, connectors.ErrNoTimeLeft):
		if last, ok := l.m[key]; ok {
			return fmt.Errorf("%w; the attempt before it failed: %s", err, last)
		}
	default:
		if l.m == nil || len(l.m) >= maxRemembered {
			l.m = map[string]string{}
		}
		l.m[key] = err.Error()
	}
	return err
}
