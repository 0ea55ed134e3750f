package bench

import (
	"context"
	"errors"
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
// with block set never answers until its ctx ends.
type historyClient struct {
	client.Client
	histories map[string][]*historypb.HistoryEvent
	failAfter map[string]int
	block     bool
}

func (c *historyClient) GetWorkflowHistory(ctx context.Context, id, _ string, _ bool, _ enumspb.HistoryEventFilterType) client.HistoryEventIterator {
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
func TestHistorySamplesShareOneBudgetWithinTheDeadline(t *testing.T) {
	defer func(b time.Duration) { historySampleBudget = b }(historySampleBudget)
	historySampleBudget = 200 * time.Millisecond
	cl := &historyClient{block: true}
	groups := [][]string{{"ds-1", "ds-2"}, {"local-1"}, {"calls-1"}, {"full-1"}}

	t0 := time.Now()
	stats, cut := sampleAllHistories(context.Background(), cl, groups)
	if d := time.Since(t0); d > 2*historySampleBudget {
		t.Fatalf("4 phases sampled in %s: more than the one budget of %s", d, historySampleBudget)
	}
	if !cut || stats[0] == nil || stats[0].Errors != 2 || stats[0].Sampled != 0 {
		t.Fatalf("cut %v, first phase %+v", cut, stats[0])
	}

	// The run's deadline comes first.
	historySampleBudget = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	t0 = time.Now()
	if _, cut := sampleAllHistories(ctx, cl, groups); !cut {
		t.Fatal("not cut by the deadline")
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("sampled for %s past a deadline of 100ms", d)
	}

	// Nothing in the way: every phase is sampled, not cut.
	ok := &historyClient{histories: map[string][]*historypb.HistoryEvent{"ds-1": fakeHistory(3, 10), "ds-2": fakeHistory(3, 10), "local-1": fakeHistory(2, 10), "calls-1": fakeHistory(2, 10), "full-1": fakeHistory(2, 10)}}
	stats, cut = sampleAllHistories(context.Background(), ok, groups)
	if cut || len(stats) != 4 || stats[0].Sampled != 2 || stats[3] == nil || stats[3].Sampled != 1 {
		t.Fatalf("cut %v, stats %+v", cut, stats)
	}
}
