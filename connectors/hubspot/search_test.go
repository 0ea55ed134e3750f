package hubspot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/hubspot/hubspotfake"
)

// ListWonDeals finds, over several pages, the deals modified in the
// period that are won: in HubSpot's default pipeline, in a custom
// pipeline's won stage (hs_is_closed_won) and in a stage listed in
// won_stages, with a close date from the day before the period on (one
// in the future: a close date is what a user set); not lost or open
// deals, not those last modified outside the period, not those closed
// before it (won long ago and only edited in the period, or back-dated).
func TestListWonDeals(t *testing.T) {
	f := hubspotfake.New()
	t.Cleanup(f.Close)
	f.AddPortal("62515", "pat-na1-62515")
	f.AddPipeline("62515", hubspotfake.Pipeline{ID: "renewals", Label: "Renewals", Stages: []hubspotfake.Stage{
		{ID: "renewal_won", Label: "Renewed", IsClosed: "true", Probability: "1.0"},
		{ID: "renewal_lost", Label: "Churned", IsClosed: "true", Probability: "0.0"},
	}})
	for _, d := range []struct{ id, stage, closed, modified string }{
		{"1", "closedwon", "2026-11-03T10:00:00.000Z", "2026-11-03T10:00:05.000Z"},
		{"2", "closedlost", "2026-11-04T10:00:00.000Z", "2026-11-04T10:00:05.000Z"},
		{"3", "renewal_won", "2026-11-02T10:00:00.000Z", "2026-11-02T10:00:05.000Z"},
		{"4", "renewal_lost", "2026-11-05T10:00:00.000Z", "2026-11-05T10:00:05.000Z"},
		{"5", "closedwon", "2026-10-30T10:00:00.000Z", "2026-10-30T10:00:05.000Z"}, // modified before the period
		{"6", "closedwon", "2026-11-20T10:00:00.000Z", "2026-12-01T00:00:00.000Z"}, // modified at its end (excluded)
		{"7", "signed", "2026-11-06T10:00:00.000Z", "2026-11-06T10:00:05.000Z"},    // listed in won_stages
		{"8", "contractsent", "2026-11-07T10:00:00.000Z", "2026-11-07T10:00:05.000Z"},
		// Won in the period with the forecast close date kept, in the
		// future; one closed on the day before the period (a zone's
		// midnight); one closed long ago, edited in the period.
		{"9", "closedwon", "2027-01-15T00:00:00.000Z", "2026-11-18T16:20:00.000Z"},
		{"10", "closedwon", "2026-10-31T23:00:00.000Z", "2026-11-30T23:59:59.999Z"},
		{"11", "closedwon", "2025-06-30T00:00:00.000Z", "2026-11-12T08:00:00.000Z"},
	} {
		f.PutDeal("62515", hubspotfake.Deal{ID: d.id, Properties: hubspotfake.Props("dealstage", d.stage, "closedate", d.closed, "hs_lastmodifieddate", d.modified)})
	}
	s := testSource(t, func(c *Config) { c.BaseURL = f.URL; c.WonStages = []string{"signed"} })
	defer func(n int, p time.Duration) { searchPageSize, searchPause = n, p }(searchPageSize, searchPause)
	searchPageSize, searchPause = 2, 0

	since, until := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var got []string
	err := s.ListWonDeals(context.Background(), "62515", since, until, func(d connectors.WonDeal) error {
		got = append(got, d.ID+"@"+d.CloseDate.String())
		// As a webhook of the deal says: won, the stage id in Raw.
		if d.EventStage != StageWon || string(d.Raw["dealstage"]) != `"`+d.Stage+`"` {
			t.Errorf("deal %s: event stage %q, raw %s; want %q and its dealstage %q", d.ID, d.EventStage, d.Raw, StageWon, d.Stage)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// In the order of their ids (numbers, 9 before 10).
	if want := "1@2026-11-03,3@2026-11-02,7@2026-11-06,9@2027-01-15,10@2026-10-31"; strings.Join(got, ",") != want {
		t.Fatalf("won deals %v, want %s", got, want)
	}
	// Each page asks for the ids after the last one listed, sorted by
	// id, never for HubSpot's offset cursor; closed from the day before
	// the period on.
	var cursors []string
	for _, r := range f.Requests() {
		if r.Path != "/crm/objects/2026-03/0-3/search" {
			continue
		}
		body := string(r.Body)
		for _, want := range []string{`"propertyName":"hs_is_closed_won","operator":"EQ","value":"true"`, `"operator":"IN","values":["closedwon","signed"]`,
			`"propertyName":"hs_lastmodifieddate","operator":"GTE","value":"1793491200000"`, `"propertyName":"hs_lastmodifieddate","operator":"LT","value":"1796083200000"`,
			`"propertyName":"closedate","operator":"GTE","value":"1793404800000"`,
			`"sorts":[{"propertyName":"hs_object_id","direction":"ASCENDING"}]`, `"after":"0"`} {
			if !strings.Contains(body, want) {
				t.Errorf("search body lacks %s:\n%s", want, body)
			}
		}
		var req searchRequest
		if err := json.Unmarshal(r.Body, &req); err != nil {
			t.Fatal(err)
		}
		var gt []string
		for _, g := range req.FilterGroups {
			for _, fl := range g.Filters {
				if fl.PropertyName == "hs_object_id" && fl.Operator == "GT" {
					gt = append(gt, fl.Value)
				}
			}
		}
		if len(gt) != len(req.FilterGroups) || len(slices.Compact(gt)) != 1 {
			t.Fatalf("filter groups with hs_object_id GT %v, want one in each of the %d groups:\n%s", gt, len(req.FilterGroups), body)
		}
		cursors = append(cursors, gt[0])
	}
	if strings.Join(cursors, ",") != "0,3,9" {
		t.Errorf("search pages after ids %v, want 0,3,9 (5 deals 2 at a time)", cursors)
	}

	// A page answered 429 is asked again after HubSpot's Retry-After.
	f.FailSearches(hubspotfake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"})
	got = nil
	if err := s.ListWonDeals(context.Background(), "62515", since, until, func(d connectors.WonDeal) error { got = append(got, d.ID); return nil }); err != nil || strings.Join(got, ",") != "1,3,7,9,10" {
		t.Errorf("after a 429: %v, %v", got, err)
	}

	// Without the pipelines look-up only won_stages count.
	none := testSource(t, func(c *Config) { c.BaseURL = f.URL; c.WonStages = []string{"signed"}; c.StageLookup = StageLookupNone })
	got = nil
	if err := none.ListWonDeals(context.Background(), "62515", since, until, func(d connectors.WonDeal) error { got = append(got, d.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "1,7,9,10" {
		t.Errorf("stage_lookup none: %v, want 1,7,9,10", got)
	}

	// fn's error stops the listing.
	stop := errors.New("stop")
	n := 0
	if err := s.ListWonDeals(context.Background(), "62515", since, until, func(connectors.WonDeal) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("after fn's error: %v, %d calls", err, n)
	}
	if err := s.ListWonDeals(context.Background(), "99", since, until, func(connectors.WonDeal) error { return nil }); err == nil {
		t.Error("a portal the connection does not serve was searched")
	}
}

// The pages are taken by id (hs_object_id GT the last id listed), not with
// HubSpot's offset cursor: deals that leave the result set while it is read
// (their runs' write-backs modify them past the period, one is reopened)
// shift no page, and every deal still won is listed once, however many
// more than the 10,000 results the offset cursor pages through. The pages
// keep HubSpot's search pace: a pause before every page but the first.
func TestListWonDealsPagesByID(t *testing.T) {
	f := hubspotfake.New()
	t.Cleanup(f.Close)
	f.AddPortal("62515", "pat-na1-62515")
	f.SetSearchLimit(3) // HubSpot's 10,000, smaller
	for i := 1; i <= 9; i++ {
		f.PutDeal("62515", hubspotfake.Deal{ID: fmt.Sprint(i), Properties: hubspotfake.Props("dealstage", "closedwon",
			"closedate", "2026-11-03T10:00:00.000Z", "hs_lastmodifieddate", fmt.Sprintf("2026-11-0%dT10:00:00.000Z", i))})
	}
	s := testSource(t, func(c *Config) { c.BaseURL = f.URL })
	defer func(n int, p time.Duration) { searchPageSize, searchPause = n, p }(searchPageSize, searchPause)
	searchPageSize, searchPause = 2, 5*time.Millisecond

	// The pacer's clock: a sleep moves it on, nothing else does, so every
	// page after the first must ask for a whole pause.
	clock := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var waits []time.Duration
	defer func(n func() time.Time, z func(context.Context, time.Duration) error) { pacerNow, pacerSleep = n, z }(pacerNow, pacerSleep)
	pacerNow = func() time.Time { return clock }
	pacerSleep = func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		clock = clock.Add(d)
		return nil
	}
	since, until := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var got []string
	err := s.ListWonDeals(context.Background(), "62515", since, until, func(d connectors.WonDeal) error {
		got = append(got, d.ID)
		// Its run writes the invoice back: HubSpot modifies the deal now,
		// after the period. And deal 4 is reopened meanwhile.
		f.SetDealProperty("62515", d.ID, "hs_lastmodifieddate", "2026-12-05T22:00:00.000Z")
		if d.ID == "1" {
			f.SetDealProperty("62515", "4", "dealstage", "appointmentscheduled")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "1,2,3,5,6,7,8,9" {
		t.Errorf("won deals %v, want 1-9 but the reopened 4, each once", got)
	}
	searches := 0
	for _, r := range f.Requests() {
		if r.Path == "/crm/objects/2026-03/0-3/search" {
			searches++
			if !strings.Contains(string(r.Body), `"after":"0"`) {
				t.Errorf("a search page asked for HubSpot's offset cursor: %s", r.Body)
			}
		}
	}
	if searches != 4 || len(waits) != searches-1 {
		t.Errorf("%d search pages, %d pauses; want 4 pages (8 deals 2 at a time) and a pause before each but the first", searches, len(waits))
	}
	for i, d := range waits {
		if d != searchPause {
			t.Errorf("pause %d: %v, want %v", i, d, searchPause)
		}
	}
}

// A period without an end (`deals sync` without --until) has no upper
// bound on hs_lastmodifieddate: a won deal a user edits after the listing
// began, while an earlier page is handled, before its own page is read,
// is still listed (a bound fixed at the listing's start, "now", left it
// out of that listing and of every later one of the period). The other
// conditions stay: modified from since on, closed from the day before it,
// won; and the id cursor ends the listing.
func TestListWonDealsSinceListsDealsModifiedWhileItReads(t *testing.T) {
	f := hubspotfake.New()
	t.Cleanup(f.Close)
	f.AddPortal("62515", "pat-na1-62515")
	for _, d := range []struct{ id, stage, closed, modified string }{
		{"1", "closedwon", "2026-11-03T10:00:00.000Z", "2026-11-03T10:00:05.000Z"},
		{"2", "closedwon", "2026-11-04T10:00:00.000Z", "2026-11-04T10:00:05.000Z"},
		{"3", "closedlost", "2026-11-05T10:00:00.000Z", "2026-11-05T10:00:05.000Z"},
		{"4", "closedwon", "2026-10-20T10:00:00.000Z", "2026-10-25T10:00:05.000Z"}, // modified before the period
		{"5", "closedwon", "2025-06-30T00:00:00.000Z", "2026-11-12T08:00:00.000Z"}, // closed long before it
		{"6", "closedwon", "2026-11-20T10:00:00.000Z", "2026-11-20T10:00:05.000Z"},
		{"7", "closedwon", "2026-11-22T10:00:00.000Z", "2026-11-22T10:00:05.000Z"},
	} {
		f.PutDeal("62515", hubspotfake.Deal{ID: d.id, Properties: hubspotfake.Props("dealstage", d.stage, "closedate", d.closed, "hs_lastmodifieddate", d.modified)})
	}
	s := testSource(t, func(c *Config) { c.BaseURL = f.URL; c.WonStages = []string{"signed"} })
	defer func(n int, p time.Duration) { searchPageSize, searchPause = n, p }(searchPageSize, searchPause)
	searchPageSize, searchPause = 2, 0

	since := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	began := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) // when the listing began: "now"
	// While deal 1 is handled, a user edits deal 6 (on a later page) and
	// reopens deal 7; deal 1's own run writes it back.
	edit := func(d connectors.WonDeal) error {
		if d.ID == "1" {
			f.SetDealProperty("62515", "1", "hs_lastmodifieddate", "2026-12-01T09:00:01.000Z")
			f.SetDealProperty("62515", "6", "hs_lastmodifieddate", "2026-12-01T09:03:00.000Z")
			f.SetDealProperty("62515", "7", "dealstage", "appointmentscheduled")
			f.SetDealProperty("62515", "7", "hs_lastmodifieddate", "2026-12-01T09:03:00.000Z")
		}
		return nil
	}
	var got []string
	err := s.ListWonDealsSince(context.Background(), "62515", since, func(d connectors.WonDeal) error {
		got = append(got, d.ID)
		return edit(d)
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "1,2,6" {
		t.Errorf("won deals %v, want 1,2,6: deal 6 modified while the listing ran, not the lost 3, 4 modified before the period, "+
			"5 closed before it, 7 reopened", got)
	}
	searches := 0
	for _, r := range f.Requests() {
		if r.Path != "/crm/objects/2026-03/0-3/search" {
			continue
		}
		searches++
		body := string(r.Body)
		if strings.Contains(body, `"propertyName":"hs_lastmodifieddate","operator":"LT"`) {
			t.Errorf("an open period's search bounds hs_lastmodifieddate:\n%s", body)
		}
		var req searchRequest
		if err := json.Unmarshal(r.Body, &req); err != nil {
			t.Fatal(err)
		}
		if len(req.FilterGroups) != 2 {
			t.Fatalf("%d filter groups, want hs_is_closed_won and won_stages:\n%s", len(req.FilterGroups), body)
		}
		for _, g := range req.FilterGroups {
			for _, want := range []string{`{"propertyName":"hs_lastmodifieddate","operator":"GTE","value":"1793491200000"}`,
				`{"propertyName":"closedate","operator":"GTE","value":"1793404800000"}`, `"propertyName":"hs_object_id","operator":"GT"`} {
				if b, _ := json.Marshal(g); !strings.Contains(string(b), want) {
					t.Errorf("filter group lacks %s: %s", want, b)
				}
			}
		}
	}
	if searches != 2 {
		t.Errorf("%d search pages, want 2 (1 and 2, then 6 with no next page: the id cursor ends the listing)", searches)
	}

	// With the listing's start as until, deal 6 fell out of the period:
	// the skip an open period avoids.
	for _, id := range []string{"1", "6"} {
		f.SetDealProperty("62515", id, "hs_lastmodifieddate", "2026-11-0"+id+"T10:00:05.000Z")
	}
	f.SetDealProperty("62515", "7", "dealstage", "closedwon")
	got = nil
	if err := s.ListWonDeals(context.Background(), "62515", since, began, func(d connectors.WonDeal) error {
		got = append(got, d.ID)
		return edit(d)
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "1,2" {
		t.Errorf("bounded at the listing's start: %v, want 1,2 (6 modified after it)", got)
	}
}

// A search answer whose ids do not follow the last one listed (not sorted
// as asked) is an error, not a listing that skips deals or asks for the
// same page for ever.
func TestListWonDealsRefusesIDsOutOfOrder(t *testing.T) {
	var pages atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		// The same page whatever is asked: deals 7 and 8, and a next page
		// (none after the fifth, so that a client that follows ends).
		next := `,"paging":{"next":{"after":"2"}}`
		if pages.Add(1) >= 5 {
			next = ""
		}
		_, _ = io.WriteString(w, `{"total":4,"results":[{"id":"7","properties":{"dealstage":"closedwon"}},{"id":"8","properties":{"dealstage":"closedwon"}}]`+next+`}`)
	}))
	t.Cleanup(srv.Close)
	s := testSource(t, func(c *Config) { c.BaseURL = srv.URL })
	defer func(p time.Duration) { searchPause = p }(searchPause)
	searchPause = 0
	var got []string
	err := s.ListWonDeals(context.Background(), "62515", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		func(d connectors.WonDeal) error { got = append(got, d.ID); return nil })
	if err == nil || !strings.Contains(err.Error(), `answered deal "7" after deal 8`) || !strings.Contains(err.Error(), "a page already read") || strings.Join(got, ",") != "7,8" || pages.Load() != 2 {
		t.Errorf("a page out of order: %v, listed %v in %d pages", err, got, pages.Load())
	}
}

// A search whose every page names a next one, each with new ids (a mock
// that numbers its answers), ends at the bound on the pages with an error
// saying so; it was read for ever, 4 pages a second.
func TestListWonDealsStopsAtThePageBound(t *testing.T) {
	var pages atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		// A next page up to the tenth, so that a client without a bound ends.
		n := pages.Add(1)
		next := `,"paging":{"next":{"after":"2"}}`
		if n >= 10 {
			next = ""
		}
		_, _ = fmt.Fprintf(w, `{"total":9999,"results":[{"id":"%d","properties":{"dealstage":"closedwon"}},{"id":"%d","properties":{"dealstage":"closedwon"}}]%s}`, 2*n-1, 2*n, next)
	}))
	t.Cleanup(srv.Close)
	s := testSource(t, func(c *Config) { c.BaseURL = srv.URL })
	defer func(p time.Duration, n, size int) { searchPause, maxSearchPages, searchPageSize = p, n, size }(searchPause, maxSearchPages, searchPageSize)
	// Pages of 2,500 asked for (the mock answers 2 deals each): the bound
	// in deals is written with its thousands apart, as 5,000,000 is.
	searchPause, maxSearchPages, searchPageSize = 0, 3, 2500
	since := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, until := range []time.Time{{}, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)} {
		pages.Store(0)
		var got []string
		err := s.ListWonDeals(context.Background(), "62515", since, until,
			func(d connectors.WonDeal) error { got = append(got, d.ID); return nil })
		period := "since 2026-11-01T00:00:00Z"
		if !until.IsZero() {
			period = "in [2026-11-01T00:00:00Z, 2026-12-01T00:00:00Z)"
		}
		if err == nil || !errors.Is(err, connectors.ErrPermanent) ||
			!strings.Contains(err.Error(), "hubspot: the search of won deals of portal 62515 names a next page after 3 pages (6 deals listed), the most one listing reads: "+
				"list a shorter period (a later --since, or an --until) if the portal has more than 7,500 won deals modified "+period) ||
			strings.Join(got, ",") != "1,2,3,4,5,6" || pages.Load() != 3 {
			t.Errorf("until %v: %v, listed %v in %d pages; want a permanent error at the bound of 3 pages", until, err, got, pages.Load())
		}
	}
}
