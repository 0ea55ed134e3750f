package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/dealsync/dealsync/connectors/generic"
)

// event is one webhook delivery the generator sends.
type event struct {
	msgID   string
	dealID  string
	trigger bool
	body    []byte
}

// makeEvents builds n closed-won deliveries and round(n*share) that do not
// trigger a run (a stage change short of won), shuffled with a fixed seed.
// Deal IDs carry the run ID so that several runs against one ERP never meet.
func makeEvents(runID string, n int, share float64, day time.Time) []event {
	extra := int(float64(n)*share + 0.5)
	evs := make([]event, 0, n+extra)
	date := day.UTC().Format("2006-01-02")
	occurred := day.UTC().Format(time.RFC3339)
	for i := range n + extra {
		trigger := i < n
		stage, prev := "closed_won", "negotiation"
		if !trigger {
			stage, prev = "negotiation", "qualification"
		}
		deal := fmt.Sprintf("B-%s-%06d", runID, i)
		body := fmt.Appendf(nil, `{"event_id":"evt-%[1]s","occurred_at":%[2]q,"deal":{"id":%[1]q,"name":"Bench deal %[3]d","stage":%[4]q,"previous_stage":%[5]q,"amount":"1200.00","currency":"EUR","close_date":%[6]q,"owner":"bench","company":{"id":"BC-%[1]s","name":"Bench Customer %[3]d","email":"ap-%[3]d@bench.example","address":{"line1":"1 Bench Street","city":"Berlin","postal_code":"10115","country":"DE"}},"line_items":[{"sku":"PRO-1Y","description":"Pro plan, 1 year","quantity":"1","unit_price":"1000.00"},{"sku":"SUP-1Y","description":"Support, 1 year","quantity":"2","unit_price":"100.00"}]}}`,
			deal, occurred, i, stage, prev, date)
		evs = append(evs, event{msgID: "msg_" + deal, dealID: deal, trigger: trigger, body: body})
	}
	r := rand.New(rand.NewPCG(42, 7))
	r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	return evs
}

// sendResult is what the generator saw.
type sendResult struct {
	first, last time.Time       // first send, last answer
	latencies   []time.Duration // one per delivery answered 2xx, from its first attempt (or slot)
	statuses    map[int]int     // every answer by status; 0 = transport error
	attempts    int
	accepted    int // deliveries finally answered 2xx
	acceptedTrg int // ... of which triggering
	failed      int // deliveries never answered 2xx
	// refusedTrg counts the closed-won deliveries that ended without a 2xx
	// by themselves: refused for good (4xx other than 429) or out of
	// retries. The others without a 2xx were cut off by the deadline or
	// Ctrl-C (in flight or never sent), which says nothing about dealsync.
	refusedTrg int
	late       int // paced sends that left after their slot (generator saturated)
	ackedDeals map[string]bool
}

// sender posts signed deliveries to url.
type sender struct {
	url         string
	secret      string
	client      *http.Client
	concurrency int
	rate        float64 // webhooks/s; 0 = as fast as the concurrency allows
	retries     int
}

// run sends every event once (plus retries of deliveries answered 5xx or
// not at all, as a CRM would), bounded by ctx.
func (s *sender) run(ctx context.Context, evs []event) *sendResult {
	type job struct {
		ev  event
		due time.Time // paced: when it should have been sent
	}
	jobs := make(chan job)
	res := &sendResult{statuses: map[int]int{}, ackedDeals: map[string]bool{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	res.first = start
	for range s.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				s.deliver(ctx, j.ev, j.due, res, &mu)
			}
		}()
	}
feed:
	for i, ev := range evs {
		var due time.Time
		if s.rate > 0 {
			due = start.Add(time.Duration(float64(i) / s.rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
					break feed
				case <-time.After(d):
				}
			}
		}
		select {
		case <-ctx.Done():
			break feed
		case jobs <- job{ev: ev, due: due}:
		}
		if s.rate > 0 && time.Since(due) > 5*time.Millisecond {
			mu.Lock()
			res.late++
			mu.Unlock()
		}
	}
	close(jobs)
	wg.Wait()
	return res
}

func (s *sender) deliver(ctx context.Context, ev event, due time.Time, res *sendResult, mu *sync.Mutex) {
	backoff := 100 * time.Millisecond
	// The latency of a delivery runs from its first attempt to its 2xx,
	// over the retries of 5xx and 429 answers: a target that refuses and
	// then takes a delivery has kept it waiting that long. Paced, it counts
	// from the slot, so a saturated generator shows up in the figures
	// instead of hiding.
	t0 := time.Now()
	if !due.IsZero() {
		t0 = due
	}
	refusedForGood := false
	for attempt := 0; attempt <= s.retries; attempt++ {
		if ctx.Err() != nil {
			break
		}
		status := s.post(ctx, ev)
		t1 := time.Now()
		mu.Lock()
		res.attempts++
		res.statuses[status]++
		if t1.After(res.last) {
			res.last = t1
		}
		ok := status >= 200 && status < 300
		if ok {
			res.latencies = append(res.latencies, t1.Sub(t0))
			res.accepted++
			if ev.trigger {
				res.acceptedTrg++
				res.ackedDeals[ev.dealID] = true
			}
		}
		mu.Unlock()
		if ok {
			return
		}
		if status != 0 && status < 500 && status != http.StatusTooManyRequests {
			refusedForGood = true // retrying cannot help
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	mu.Lock()
	res.failed++
	if ev.trigger && (refusedForGood || ctx.Err() == nil) {
		res.refusedTrg++
	}
	mu.Unlock()
}

// post sends one attempt and returns the status (0 on a transport error).
func (s *sender) post(ctx context.Context, ev event) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(ev.body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	if err := generic.SignRequest(req, s.secret, ev.msgID, time.Now(), ev.body); err != nil {
		return 0
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func newHTTPClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conns * 2
	t.MaxIdleConnsPerHost = conns * 2
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}
