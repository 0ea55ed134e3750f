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
	"github.com/dealsync/dealsync/internal/wording"
)

// searchPageSize is the deals one search page asks for (HubSpot allows 200;
// a variable for tests).
var searchPageSize = 100

// maxSearchPages bounds the pages one listing reads: 5 million deals at
// 100 a page, the bound of Salesforce's listing (a variable for tests).
// Without it a search whose every page names a next one, with new ids (a
// mock), was read for ever.
var maxSearchPages = 50_000

// searchPause paces the pages of a search: HubSpot allows 5 search
// requests per second and account.
var searchPause = 250 * time.Millisecond

// searchRequest is POST /crm/objects/2026-03/0-3/search (dealSearchPath).
type searchRequest struct {
	FilterGroups []filterGroup `json:"filterGroups"`
	Properties   []string      `json:"properties"`
	// Sorts orders the deals by id, for the id cursor of the pages. A sort
	// is an object (propertyName, direction), as HubSpot's search guide
	// and API take it; its OpenAPI spec (and the clients generated from
	// it) types a sort as a string.
	Sorts []searchSort `json:"sorts"`
	Limit int          `json:"limit"`
	// After stays "0" (the spec requires it): the pages are taken with an
	// hs_object_id filter, not with HubSpot's offset cursor.
	After string `json:"after"`
}

type searchSort struct {
	PropertyName string `json:"propertyName"`
	Direction    string `json:"direction"`
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
	Results []object `json:"results"`
	Paging  *struct {
		Next *struct {
			After string `json:"after"`
		} `json:"next"`
	} `json:"paging"`
}

// ListWonDeals implements connectors.WonDealLister with HubSpot's CRM
// search (POST /crm/objects/2026-03/0-3/search): the deals last modified in
// [since, until) (hs_lastmodifieddate) that are closed won by HubSpot's
// own rule (hs_is_closed_won, with the pipelines look-up) or in a stage
// listed in won_stages, with a close date from the day before since on:
// a close date is what a user set (HubSpot keeps one set by hand when the
// deal is won), so a deal won in the period may have its close date after
// it (in the future). A deal is modified when it is won, so every deal
// won in the period is listed, unless it was modified again after until
// or its close date was set before the period (back-dated); one won long
// ago and only edited in the period is not, as its close date is older.
//
// The deals come in the order of their ids, a page of 100 at a time, each
// page asking for the ids after the last one listed (hs_object_id GT),
// at most 4 pages a second; a page answered 429 is asked again after the
// wait HubSpot gives. The id cursor is not shifted by a deal that leaves
// the result set while the pages are read (its run's write-back modifies
// it), as HubSpot's offset cursor is, and it is not bound by the 10,000
// results that cursor pages through. A deal modified again while the
// pages are read, before its own page, leaves the period [since, until)
// all the same: ListWonDealsSince, for a period without an end, lists it.
// A zero until lists from since on (ListWonDealsSince).
func (s *Source) ListWonDeals(ctx context.Context, accountID string, since, until time.Time, fn func(connectors.WonDeal) error) error {
	acc, err := s.account(accountID)
	if err != nil {
		return err
	}
	pacer := &searchPacer{}
	var last uint64 // the id of the last deal listed; HubSpot's ids start at 1
	listed := 0
	for page := 0; ; page++ {
		if page == maxSearchPages {
			period := "since " + since.UTC().Format(time.RFC3339)
			if !until.IsZero() {
				period = "in [" + since.UTC().Format(time.RFC3339) + ", " + until.UTC().Format(time.RFC3339) + ")"
			}
			return fmt.Errorf("%w: hubspot: the search of won deals of portal %s names a next page after %s pages (%s deals listed), the most one listing reads: "+
				"list a shorter period (a later --since, or an --until) if the portal has more than %s won deals modified %s; "+
				"if it has not, does base_url point at a mock that answers every page with new ids?",
				connectors.ErrPermanent, accountID, wording.Count(maxSearchPages), wording.Count(listed), wording.Count(maxSearchPages*searchPageSize), period)
		}
		if err := pacer.wait(ctx); err != nil {
			return err
		}
		req := searchRequest{
			FilterGroups: s.wonFilterGroups(acc, since, until, last),
			Properties:   []string{"dealstage", "closedate"},
			Sorts:        []searchSort{{PropertyName: "hs_object_id", Direction: "ASCENDING"}},
			Limit:        searchPageSize,
			After:        "0",
		}
		var answer searchAnswer
		err := crmkit.Paced(ctx, s.log, searchAttempts, func() error {
			return s.call(ctx, acc, "search won deals", http.MethodPost, dealSearchPath, req, &answer)
		})
		if err != nil {
			return err
		}
		for _, o := range answer.Results {
			// The next page starts after this id: one out of order would
			// skip deals, or ask for the same page for ever.
			id, err := strconv.ParseUint(o.ID, 10, 64)
			if err != nil || id <= last {
				return fmt.Errorf("hubspot: the search of won deals of portal %s answered deal %q after deal %d; it was asked for ids after the last "+
					"one listed, in ascending order: a page already read, or one out of order, so the paging would loop or skip deals "+
					"(does base_url point at a mock that ignores the search's filters or sorts?)",
					accountID, o.ID, last)
			}
			last = id
			listed++
			// Listed because won: as a webhook of it says (Parse and
			// Resolve), and with the stage id it keeps in Raw.
			stage := o.prop("dealstage")
			d := connectors.WonDeal{ID: o.ID, Stage: stage, EventStage: StageWon,
				Raw: map[string]json.RawMessage{"dealstage": crmkit.JSONString(stage)}}
			if cd := o.prop("closedate"); cd != "" {
				d.CloseDate, _, _ = parseHubSpotDate(cd) // shown in the results only; a zero date shows less
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		if answer.Paging == nil || answer.Paging.Next == nil || len(answer.Results) == 0 {
			return nil
		}
	}
}

// searchPacer keeps the search pages of one listing searchPause apart.
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

// searchAttempts bounds the tries of one search page that HubSpot
// answers 429 (its search has a limit of its own, and the portal's other
// API traffic counts towards the same token's limits).
const searchAttempts = 5

// wonFilterGroups are the search's filter groups (ORed): HubSpot's
// hs_is_closed_won with the pipelines look-up, and the stages listed in
// won_stages; each with the deals last modified in [since, until) (from
// since on when until is zero), in Unix milliseconds, and with ids after
// the last one listed.
func (s *Source) wonFilterGroups(acc *account, since, until time.Time, after uint64) []filterGroup {
	changed := []searchFilter{
		{PropertyName: "hs_lastmodifieddate", Operator: "GTE", Value: strconv.FormatInt(since.UnixMilli(), 10)},
	}
	if !until.IsZero() {
		changed = append(changed, searchFilter{PropertyName: "hs_lastmodifieddate", Operator: "LT", Value: strconv.FormatInt(until.UnixMilli(), 10)})
	}
	changed = append(changed,
		searchFilter{PropertyName: "hs_object_id", Operator: "GT", Value: strconv.FormatUint(after, 10)},
		// Closed in the period or after it, a day's margin for the zone
		// a close date was picked in: a deal won long ago and only edited
		// in the period is not a deal of the period (it may have been
		// invoiced by hand before the connection went live).
		searchFilter{PropertyName: "closedate", Operator: "GTE", Value: strconv.FormatInt(since.Add(-24*time.Hour).UnixMilli(), 10)},
	)
	var groups []filterGroup
	if s.stageLookup == StageLookupPipelines {
		groups = append(groups, filterGroup{Filters: append([]searchFilter{{PropertyName: "hs_is_closed_won", Operator: "EQ", Value: "true"}}, changed...)})
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
		groups = append(groups, filterGroup{Filters: append([]searchFilter{{PropertyName: "dealstage", Operator: "IN", Values: stages}}, changed...)})
	}
	return groups
}

var _ connectors.WonDealLister = (*Source)(nil)

// ListWonDealsSince is ListWonDeals for a period without an end (`deals
// sync` without --until; backfill.OpenEndedLister): the deals last
// modified from since on, with no upper bound on hs_lastmodifieddate (the
// id cursor ends the listing), so that a won deal modified while the
// listing runs (a user's edit, another run's write-back), before its page
// is read, is still listed. A bound fixed when the listing began would
// leave it out, and no later listing of that period would list it either.
func (s *Source) ListWonDealsSince(ctx context.Context, accountID string, since time.Time, fn func(connectors.WonDeal) error) error {
	return s.ListWonDeals(ctx, accountID, since, time.Time{}, fn)
}
