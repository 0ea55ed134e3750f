package bench

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// historyClient answers GetWorkflowHistory from histories: a run's events,
// then, if failAfter[id] is set, an error after that many of them. A run
// with block set never answers until its ctx ends. Each call's run id and
// ctx deadline (zero: none) are kept in calls.
type historyClient struct {
	client.Client
	histories map[string][]*historypb.HistoryEvent
	failAfter map[string]int
	block     bool

	mu    sync.Mutex
	calls []historyCall
}

type historyCall struct {
	id       string
	deadline time.Time
}

func (c *historyClient) GetWorkflowHistory(ctx context.Context, id, _ string, _ bool, _ enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	d, _ := ctx.Deadline()
	c.mu.Lock()
	c.calls = append(c.calls, historyCall{id, d})
	c.mu.Unlock()
	if c.block {
		return &blockingIterator{ctx: ctx}
	}
	it := &fakeIterator{events: c.histories[id], failAt: -1}
	if n, ok := c.failAfter[id]; ok {
		it.failAt = n
	}
	return it
}

type fakeIterator struct {
	events []*historypb.HistoryEvent
	next   int
	failAt int // -1: never
}

func (it *fakeIterator) HasNext() bool { return it.next < len(it.events) || it.next == it.failAt }

func (it *fakeIterator) Next() (*historypb.HistoryEvent, error) {
	if it.next == it.failAt {
		return nil, errors.New("history read failed")
	}
	ev := it.events[it.next]
	it.next++
	return ev, nil
}

type blockingIterator struct{ ctx context.Context }

func (it *blockingIterator) HasNext() bool { return true }

func (it *blockingIterator) Next() (*historypb.HistoryEvent, error) {
	<-it.ctx.Done()
	return nil, it.ctx.Err()
}

// fakeHistory is a run's history of n events, each with a payload of
// payload bytes.
func fakeHistory(n, payload int) []*historypb.HistoryEvent {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var evs []*historypb.HistoryEvent
	for i := range n {
		evs = append(evs, &historypb.HistoryEvent{
			EventId:   int64(i + 1),
			EventTime: timestamppb.New(t0.Add(time.Duration(i) * time.Millisecond)),
			EventType: enumspb.EVENT_TYPE_MARKER_RECORDED,
			Attributes: &historypb.HistoryEvent_MarkerRecordedEventAttributes{MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{
				MarkerName: string(make([]byte, payload)),
			}},
		})
	}
	return evs
}

func historySize(evs []*historypb.HistoryEvent) int {
	n := 0
	for _, ev := range evs {
		n += proto.Size(ev)
	}
	return n
}

// Second review, item 4: a run's bytes were added to the total before its
// history was read to the end, so a run whose read failed partway was left
// out of Sampled but its bytes stayed in the mean.
func TestSampleHistoriesCountsOnlyTheRunsRead(t *testing.T) {
	a, b, c := fakeHistory(4, 100), fakeHistory(6, 5000), fakeHistory(4, 300)
	cl := &historyClient{
		histories: map[string][]*historypb.HistoryEvent{"a": a, "b": b, "c": c},
		failAfter: map[string]int{"b": 5}, // 5 big events read, then the read fails
	}
	hs := sampleHistories(context.Background(), cl, []string{"a", "b", "c"})
	if hs.Sampled != 2 || hs.Errors != 1 {
		t.Fatalf("sampled %d, errors %d; want 2 and 1", hs.Sampled, hs.Errors)
	}
	if want := float64(historySize(a)+historySize(c)) / 2; hs.MeanBytes != want {
		t.Fatalf("mean bytes %v, want %v (the runs read: a failed read's bytes count for nothing)", hs.MeanBytes, want)
	}
	if hs.MeanEvents != 4 || hs.Min != 4 || hs.Max != 4 || hs.MeanMarkers != 4 {
		t.Fatalf("events %+v", hs)
	}
}

// Second review, item 5: each phase's history sample had 60 s of its own,
// without the run's deadline, so a run could end 60 s × (1 + baselines)
// after --timeout. Now one budget covers every phase, within the deadline.
// Checked without a clock: a first phase that uses the whole budget leaves
// the later phases unsampled, and every read's deadline is the parent's
// or earlier.
func TestHistorySamplesShareOneBudgetWithinTheDeadline(t *testing.T) {
	defer func(b time.Duration) { historySampleBudget = b }(historySampleBudget)
	groups := [][]string{{"ds-1", "ds-2"}, {"local-1"}, {"calls-1"}, {"full-1"}}

	// The first phase's runs never answer: they use the budget up, and the
	// budget is the one for all phases, so no later phase is read.
	historySampleBudget = 200 * time.Millisecond
	cl := &historyClient{block: true}
	stats, cut := sampleAllHistories(context.Background(), cl, groups)
	if !cut || len(stats) != 4 || stats[0] == nil || stats[0].Errors != 2 || stats[0].Sampled != 0 {
		t.Fatalf("cut %v, stats %+v; want cut, first phase 2 errors", cut, stats)
	}
	if stats[1] != nil || stats[2] != nil || stats[3] != nil {
		t.Fatalf("phases after the budget ran out were sampled: %+v %+v %+v", stats[1], stats[2], stats[3])
	}
	if len(cl.calls) != 2 || cl.calls[0].id != "ds-1" || cl.calls[1].id != "ds-2" {
		t.Fatalf("history reads %+v; want ds-1 and ds-2 only", cl.calls)
	}

	// The run's deadline comes before the budget's end: every read has
	// the run's deadline (or an earlier one), and the sample is cut. The
	// budget is a few seconds, not a minute, so that a sample that ignored
	// the deadline would fail this test soon, not hang it.
	historySampleBudget = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	parent, _ := ctx.Deadline()
	cl = &historyClient{block: true}
	stats, cut = sampleAllHistories(ctx, cl, groups)
	if !cut {
		t.Fatal("not cut by the deadline")
	}
	if len(cl.calls) == 0 {
		t.Fatal("no history read")
	}
	for _, c := range cl.calls {
		if c.deadline.IsZero() || c.deadline.After(parent) {
			t.Fatalf("history of %s read with deadline %v (zero: none), past the run's deadline %v", c.id, c.deadline, parent)
		}
	}
	if stats[1] != nil || stats[2] != nil || stats[3] != nil {
		t.Fatalf("phases after the deadline were sampled: %+v %+v %+v", stats[1], stats[2], stats[3])
	}

	// Nothing in the way: every phase is sampled, not cut.
	ok := &historyClient{histories: map[string][]*historypb.HistoryEvent{"ds-1": fakeHistory(3, 10), "ds-2": fakeHistory(3, 10), "local-1": fakeHistory(2, 10), "calls-1": fakeHistory(2, 10), "full-1": fakeHistory(2, 10)}}
	stats, cut = sampleAllHistories(context.Background(), ok, groups)
	if cut || len(stats) != 4 || stats[0].Sampled != 2 || stats[3] == nil || stats[3].Sampled != 1 {
		t.Fatalf("cut %v, stats %+v", cut, stats)
	}
}
