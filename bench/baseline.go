package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// BaselineTaskQueue is the task queue of the baseline workflows: apart
// from dealsync's, so the two never share pollers or slots.
const BaselineTaskQueue = "dealsync-bench-baseline"

// Baseline variants: InvoiceDeal's steps as no-ops, in the forms Temporal
// offers. InvoiceDeal records four steps: map and validate, which are pure
// (recorded as local activities so that a replay reads their result), and
// the two external calls to the ERP, customer and invoice. Only calls and
// acts have InvoiceDeal's external calls and nothing else; local and full
// have its four recorded steps, two of which are not external calls.
const (
	// BaselineFull is InvoiceDeal's shape: 2 local activities (map,
	// validate) then 2 activities (customer, invoice).
	BaselineFull = "full"
	// BaselineActivities is the 2 ERP calls as activities only.
	BaselineActivities = "acts"
	// BaselineLocal is all 4 steps as local activities (still retried and
	// recorded; the fastest form Temporal has).
	BaselineLocal = "local"
	// BaselineCalls is the 2 ERP calls alone as local activities: the
	// external calls of InvoiceDeal without its two pure steps (map and
	// validate, which InvoiceDeal records as local activities too).
	BaselineCalls = "calls"
)

var baselineSteps = map[string]struct{ local, remote int }{
	BaselineFull:       {2, 2},
	BaselineActivities: {0, 2},
	BaselineLocal:      {4, 0},
	BaselineCalls:      {2, 0},
}

// checkBaselines refuses an unknown variant before anything runs.
func checkBaselines(variants []string) error {
	for _, v := range variants {
		if _, ok := baselineSteps[v]; !ok {
			return fmt.Errorf("unknown baseline variant %q (want %s, %s, %s or %s)", v, BaselineLocal, BaselineCalls, BaselineFull, BaselineActivities)
		}
	}
	return nil
}

// baselineInput is what a baseline run gets: how many steps of each kind.
type baselineInput struct {
	Local, Remote int
}

// BaselineWorkflow is the bare workflow: Local no-op local activities,
// then Remote no-op activities, with retry policies (InvoiceDeal's map
// step's for the local ones): a no-op never fails, so which policy it has
// does not enter the figures.
func BaselineWorkflow(ctx workflow.Context, in baselineInput) error {
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
	last := in.Local + in.Remote - 1
	for i := range in.Local {
		if err := workflow.ExecuteLocalActivity(lctx, noopName, i == last).Get(ctx, nil); err != nil {
			return err
		}
	}
	for i := range in.Remote {
		if err := workflow.ExecuteActivity(actx, noopName, in.Local+i == last).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

const (
	baselineWorkflowName = "DealsyncBenchBaseline"
	noopName             = "DealsyncBenchNoop"
)

// noop stands for one step of InvoiceDeal (an external call, or in local
// and full also a pure step); the last step of a run records that the
// run's work is done (the analogue of "the invoice is in the ERP").
//
// It counts runs, not executions of the last step: a local activity runs
// again when the workflow task that ran it timed out before its marker was
// recorded, and the last step of a run of the previous variant can still
// execute after the next variant started. So a run counts once, by its
// workflow ID, and only under the prefix of the variant being measured.
type noop struct {
	mu     sync.Mutex
	prefix string          // workflow IDs of the variant being measured
	done   map[string]bool // its runs whose last step executed
	last   time.Time       // when the latest of them first did
}

func (n *noop) Noop(ctx context.Context, last bool) error {
	if !last {
		return nil
	}
	id := activity.GetInfo(ctx).WorkflowExecution.ID
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil || !strings.HasPrefix(id, n.prefix) || n.done[id] {
		return nil
	}
	n.done[id] = true
	n.last = time.Now()
	return nil
}

// reset starts counting the runs whose workflow IDs start with prefix.
func (n *noop) reset(prefix string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.prefix, n.done, n.last = prefix, map[string]bool{}, time.Time{}
}

// doneRuns returns how many runs of the variant are done, and when the
// latest of them was.
func (n *noop) doneRuns() (int, time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.done), n.last
}

// waitDone waits until want runs are done, no run was done for settle, or
// ctx ends; stalled says it was settle.
func (n *noop) waitDone(ctx context.Context, want int, settle time.Duration) (stalled bool) {
	last, lastChange := -1, time.Now()
	for ctx.Err() == nil {
		done, _ := n.doneRuns()
		if done >= want {
			return false
		}
		if done != last {
			last, lastChange = done, time.Now()
		} else if time.Since(lastChange) > settle {
			return true
		}
		sleep(ctx, 20*time.Millisecond)
	}
	return false
}

// baseline runs the baseline variants on c's server.
type baseline struct {
	c    client.Client
	w    sdkworker.Worker
	noop *noop
}

func startBaseline(c client.Client, opts sdkworker.Options) (*baseline, error) {
	b := &baseline{c: c, noop: &noop{}}
	b.w = sdkworker.New(c, BaselineTaskQueue, opts)
	b.w.RegisterWorkflowWithOptions(BaselineWorkflow, workflow.RegisterOptions{Name: baselineWorkflowName})
	b.w.RegisterActivityWithOptions(b.noop.Noop, activity.RegisterOptions{Name: noopName})
	if err := b.w.Start(); err != nil {
		return nil, fmt.Errorf("baseline worker: %w", err)
	}
	return b, nil
}

func (b *baseline) stop() { b.w.Stop() }

// baselineRun is what one variant measured.
type baselineRun struct {
	first, lastStart, lastDone time.Time
	done                       int
	startLatencies             []time.Duration
	startErrors                int
	// stalled: the wait for the runs ended after settle without a run
	// done, before every run started was.
	stalled bool
}

// run starts n runs of the variant at the given concurrency with eager
// start, and waits until the last step of every run started has executed,
// or no run was done for settle.
func (b *baseline) run(ctx context.Context, runID, variant string, n, concurrency int, settle time.Duration) (*baselineRun, error) {
	if err := checkBaselines([]string{variant}); err != nil {
		return nil, err
	}
	steps := baselineSteps[variant]
	b.noop.reset(baselineWorkflowIDPrefix(runID, variant))
	in := baselineInput{Local: steps.local, Remote: steps.remote}
	ids := make(chan int)
	res := &baselineRun{first: time.Now()}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				t0 := time.Now()
				_, err := b.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
					ID:               baselineWorkflowID(runID, variant, i),
					TaskQueue:        BaselineTaskQueue,
					EnableEagerStart: true,
				}, baselineWorkflowName, in)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					res.startErrors++
				} else {
					res.startLatencies = append(res.startLatencies, d)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range n {
		select {
		case <-ctx.Done():
			break feed
		case ids <- i:
		}
	}
	close(ids)
	wg.Wait()
	res.lastStart = time.Now()
	// The runs started: not n when the deadline cut the feed short.
	res.stalled = b.noop.waitDone(ctx, len(res.startLatencies), settle)
	res.done, res.lastDone = b.noop.doneRuns()
	return res, nil
}

// baselineWorkflowID is the ID of the i-th run of a variant in a round.
func baselineWorkflowID(runID, variant string, i int) string {
	return fmt.Sprintf("%s%06d", baselineWorkflowIDPrefix(runID, variant), i)
}

// baselineWorkflowIDPrefix starts the IDs of a variant's runs in a round.
func baselineWorkflowIDPrefix(runID, variant string) string {
	return "bench/" + runID + "/" + variant + "/"
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
