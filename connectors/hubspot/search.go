package hubspot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
)

// searchPageSize is the deals one search page asks for (HubSpot allows 200;
// a variable for tests).
var searchPageSize = 100

// searchPause paces the pages of a search: HubSpot allows 5 search
// requests per second and account.
var searchPause = 250 * time.Millisecond

// searchRequest is POST /crm/v3/objects/deals/search.
type searchRequest struct {
	FilterGroups []filterGroup `json:"filterGroups"`
	Properties   []string      `json:"properties"`
	// Sorts stays empty: HubSpot's spec types it as strings, its guide as
	// objects; the order does not matter here.
	Sorts []string `json:"sorts"`
	Limit int      `json:"limit"`
	// After is the page cursor: "0" for the first page, as HubSpot's own
	// clients send it (the spec requires it).
	After string `json:"after"`
}

type filterGroup struct {
	Filters []searchFilter `json:"filters"`
}

type searchFilter struct {
	PropertyName string   `json:"propertyName"`
	Operator     string   `json:"operator"`
	Value        string   `json:"value,omitempty"`
	Values       []string `json:"values,omitempty"`
}

// searchAnswer is a page of the search's answer.
type searchAnswer struct {
	Total   int      `json:"total"`
	Results []object `json:"results"`
	Paging  *struct {
		Next *struct {
			After string `json:"after"`
		} `json:"next"`
	} `json:"paging"`
}

// ListWonDeals implements connectors.WonDealLister with HubSpot's CRM
// search (POST /crm/v3/objects/deals/search): the deals whose close date
// is in [since, until) and that are closed won by HubSpot's own rule
// (hs_is_closed_won, with the pipelines look-up) or in a stage listed in
// won_stages, in HubSpot's order, a page of 100 at a time, at most 4 pages
// a second; a page answered 429 is asked again after the wait HubSpot
// gives. HubSpot's search pages through at most 10,000 results: a period
// with more won deals is split in halves until each has at most that many.
func (s *Source) ListWonDeals(ctx context.Context, accountID string, since, until time.Time, fn func(connectors.WonDeal) error) error {
	acc, err := s.account(accountID)
	if err != nil {
		return err
	}
	return s.listWonDeals(ctx, acc, accountID, since, until, &searchPacer{}, fn)
}

// searchPacer keeps the search pages of one listing, split periods
// included, searchPause apart.
type searchPacer struct{ last time.Time }

// pacerNow and pacerSleep are the pacer's clock (tests replace them).
var (
	pacerNow   = time.Now
	pacerSleep = func(ctx context.Context, d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
)

func (p *searchPacer) wait(ctx context.Context) error {
	if !p.last.IsZero() {
		if d := p.last.Add(searchPause).Sub(pacerNow()); d > 0 {
			if err := pacerSleep(ctx, d); err != nil {
				return err
			}
		}
	}
	p.last = pacerNow()
	return nil
}

func (s *Source) listWonDeals(ctx context.Context, acc *account, accountID string, since, until time.Time, pacer *searchPacer, fn func(connectors.WonDeal) error) error {
	req := searchRequest{
		FilterGroups: s.wonFilterGroups(acc, since, until),
		Properties:   []string{"dealstage", "closedate"},
		Sorts:        []string{},
		Limit:        searchPageSize,
		After:        "0",
	}
	for {
		if err := pacer.wait(ctx); err != nil {
			return err
		}
		var page searchAnswer
		err := crmkit.Paced(ctx, s.log, searchAttempts, func() error {
			return s.call(ctx, acc, "search won deals", http.MethodPost, "/crm/v3/objects/deals/search", req, &page)
		})
		if err != nil {
			return err
		}
		if page.Total > maxSearchResults && req.After == "0" {
			// HubSpot filters close dates in milliseconds: split the
			// period while it is longer than one.
			if mid := since.Add(until.Sub(since) / 2).Truncate(time.Millisecond); mid.After(since) && mid.Before(until) {
				s.log.Info("hubspot: more won deals than one search returns; splitting the period",
					"portal", accountID, "deals", page.Total, "since", since, "until", until)
				if err := s.listWonDeals(ctx, acc, accountID, since, mid, pacer, fn); err != nil {
					return err
				}
				return s.listWonDeals(ctx, acc, accountID, mid, until, pacer, fn)
			}
		}
		if page.Total > maxSearchResults {
			// Within one millisecond, or grown past the limit while it
			// was read: run the sync again.
			return fmt.Errorf("hubspot: portal %s has %d won deals closed between %s and %s; the search API returns at most %d",
				accountID, page.Total, since.Format(time.RFC3339Nano), until.Format(time.RFC3339Nano), maxSearchResults)
		}
		for _, o := range page.Results {
			// Listed because won: as a webhook of it says (Parse and
			// Resolve), and with the stage id it keeps in Raw.
			stage := o.prop("dealstage")
			d := connectors.WonDeal{ID: o.ID, Stage: stage, EventStage: StageWon,
				Raw: map[string]json.RawMessage{"dealstage": crmkit.JSONString(stage)}}
			if cd := o.prop("closedate"); cd != "" {
				d.CloseDate, _, _ = parseHubSpotDate(cd) // the range filter had it; a zero date only shows less
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		if page.Paging == nil || page.Paging.Next == nil || page.Paging.Next.After == "" || len(page.Results) == 0 {
			return nil
		}
		req.After = page.Paging.Next.After
	}
}

// searchAttempts bounds the tries of one search page that HubSpot
// answers 429 (its search has a limit of its own, and the portal's other
// API traffic counts towards the same token's limits).
const searchAttempts = 5

// maxSearchResults is how many results HubSpot's search pages through (a
// variable for tests).
var maxSearchResults = 10000

// wonFilterGroups are the search's filter groups (ORed): HubSpot's
// hs_is_closed_won with the pipelines look-up, and the stages listed in
// won_stages; each within the close-date range, in Unix milliseconds.
func (s *Source) wonFilterGroups(acc *account, since, until time.Time) []filterGroup {
	closed := []searchFilter{
		{PropertyName: "closedate", Operator: "GTE", Value: strconv.FormatInt(since.UnixMilli(), 10)},
		{PropertyName: "closedate", Operator: "LT", Value: strconv.FormatInt(until.UnixMilli(), 10)},
	}
	var groups []filterGroup
	if s.stageLookup == StageLookupPipelines {
		groups = append(groups, filterGroup{Filters: append([]searchFilter{{PropertyName: "hs_is_closed_won", Operator: "EQ", Value: "true"}}, closed...)})
	}
	var stages []string
	for st := range s.wonStages {
		stages = append(stages, st)
	}
	for st := range acc.wonStages {
		stages = append(stages, st)
	}
	slices.Sort(stages)
	stages = slices.Compact(stages)
	if len(stages) > 0 {
		groups = append(groups, filterGroup{Filters: append([]searchFilter{{PropertyName: "dealstage", Operator: "IN", Values: stages}}, closed...)})
	}
	return groups
}

var _ connectors.WonDealLister = (*Source)(nil)
