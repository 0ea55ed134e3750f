package hubspot

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/hubspot/hubspotfake"
)

// ListWonDeals finds, over several pages, the deals
// closed in the period that are won: in HubSpot's default pipeline, in a
// custom pipeline's won stage (hs_is_closed_won) and in a stage listed in
// won_stages; not lost or open deals, not those closed outside the period.
func TestListWonDeals(t *testing.T) {
	f := hubspotfake.New()
	t.Cleanup(f.Close)
	f.AddPortal("62515", "pat-na1-62515")
	f.AddPipeline("62515", hubspotfake.Pipeline{ID: "renewals", Label: "Renewals", Stages: []hubspotfake.Stage{
		{ID: "renewal_won", Label: "Renewed", IsClosed: "true", Probability: "1.0"},
		{ID: "renewal_lost", Label: "Churned", IsClosed: "true", Probability: "0.0"},
	}})
	for _, d := range []struct{ id, stage, closed string }{
		{"1", "closedwon", "2026-11-03T10:00:00.000Z"},
		{"2", "closedlost", "2026-11-04T10:00:00.000Z"},
		{"3", "renewal_won", "2026-11-02T10:00:00.000Z"},
		{"4", "renewal_lost", "2026-11-05T10:00:00.000Z"},
		{"5", "closedwon", "2026-10-30T10:00:00.000Z"}, // before the period
		{"6", "closedwon", "2026-12-01T00:00:00.000Z"}, // at its end (excluded)
		{"7", "signed", "2026-11-06T10:00:00.000Z"},    // listed in won_stages
		{"8", "contractsent", "2026-11-07T10:00:00.000Z"},
	} {
		f.PutDeal("62515", hubspotfake.Deal{ID: d.id, Properties: hubspotfake.Props("dealstage", d.stage, "closedate", d.closed)})
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
	if want := "1@2026-11-03,3@2026-11-02,7@2026-11-06"; strings.Join(got, ",") != want {
		t.Fatalf("won deals %v, want %s", got, want)
	}
	var searches int
	for _, r := range f.Requests() {
		if r.Path != "/crm/v3/objects/deals/search" {
			continue
		}
		searches++
		body := string(r.Body)
		for _, want := range []string{`"propertyName":"hs_is_closed_won","operator":"EQ","value":"true"`, `"operator":"IN","values":["closedwon","signed"]`,
			`"propertyName":"closedate","operator":"GTE","value":"1793491200000"`, `"propertyName":"closedate","operator":"LT","value":"1796083200000"`} {
			if !strings.Contains(body, want) {
				t.Errorf("search body lacks %s:\n%s", want, body)
			}
		}
	}
	if searches != 2 {
		t.Errorf("%d search pages for 3 deals 2 at a time, want 2", searches)
	}

	// A page answered 429 is asked again after HubSpot's Retry-After.
	f.FailSearches(hubspotfake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"})
	got = nil
	if err := s.ListWonDeals(context.Background(), "62515", since, until, func(d connectors.WonDeal) error { got = append(got, d.ID); return nil }); err != nil || strings.Join(got, ",") != "1,3,7" {
		t.Errorf("after a 429: %v, %v", got, err)
	}

	// Without the pipelines look-up only won_stages count.
	none := testSource(t, func(c *Config) { c.BaseURL = f.URL; c.WonStages = []string{"signed"}; c.StageLookup = StageLookupNone })
	got = nil
	if err := none.ListWonDeals(context.Background(), "62515", since, until, func(d connectors.WonDeal) error { got = append(got, d.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "1,7" {
		t.Errorf("stage_lookup none: %v, want 1,7", got)
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

// A period with more won deals than HubSpot's search pages through is split
// in halves until each part fits, and every deal is listed once; a part of
// one millisecond that still holds too many is an error.
func TestListWonDealsSplitsAPeriodOverTheSearchLimit(t *testing.T) {
	f := hubspotfake.New()
	t.Cleanup(f.Close)
	f.AddPortal("62515", "pat-na1-62515")
	for _, d := range []struct{ id, closed string }{
		{"1", "2026-11-03T10:00:00.000Z"},
		{"2", "2026-11-02T10:00:00.000Z"},
		{"3", "2026-11-06T10:00:00.000Z"},
		{"4", "2026-11-20T10:00:00.000Z"},
		{"5", "2026-11-20T10:00:00.000Z"},
	} {
		f.PutDeal("62515", hubspotfake.Deal{ID: d.id, Properties: hubspotfake.Props("dealstage", "closedwon", "closedate", d.closed)})
	}
	s := testSource(t, func(c *Config) { c.BaseURL = f.URL })
	defer func(n, m int, p time.Duration) { searchPageSize, maxSearchResults, searchPause = n, m, p }(searchPageSize, maxSearchResults, searchPause)
	searchPageSize, maxSearchResults, searchPause = 1, 2, 5*time.Millisecond

	since, until := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
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
	var got []string
	if err := s.ListWonDeals(context.Background(), "62515", since, until, func(d connectors.WonDeal) error {
		got = append(got, d.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if strings.Join(got, ",") != "1,2,3,4,5" {
		t.Errorf("won deals %v, want each of 1-5 once", got)
	}
	// The pages of the split periods keep HubSpot's search pace too: one
	// pacer for the whole listing, a pause before every page but the first.
	searches := 0
	for _, r := range f.Requests() {
		if r.Path == "/crm/v3/objects/deals/search" {
			searches++
		}
	}
	if searches < 6 || len(waits) != searches-1 {
		t.Errorf("%d search pages, %d pauses; want more than 5 pages and a pause before each but the first", searches, len(waits))
	}
	for i, d := range waits {
		if d != searchPause {
			t.Errorf("pause %d: %v, want %v", i, d, searchPause)
		}
	}

	// Three deals closed in the same millisecond cannot be split apart.
	f.PutDeal("62515", hubspotfake.Deal{ID: "6", Properties: hubspotfake.Props("dealstage", "closedwon", "closedate", "2026-11-20T10:00:00.000Z")})
	err := s.ListWonDeals(context.Background(), "62515", since, until, func(connectors.WonDeal) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "3 won deals closed between 2026-11-20T10:00:00Z and 2026-11-20T10:00:00.001Z") {
		t.Errorf("three deals in one millisecond: %v", err)
	}
}
