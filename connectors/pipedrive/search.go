package pipedrive

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
	"github.com/dealsync/dealsync/model"
)

// wonPageSize is the deals a page of the list asks for (Pipedrive allows
// 500; a variable for tests).
var wonPageSize = 500

// maxWonPages bounds the pages one listing reads: 100,000 won deals
// updated since the period began (a variable for tests).
var maxWonPages = 200

// ListWonDeals implements connectors.WonDealLister with the deals lists of
// API v2 (GET /api/v2/deals?status=won, 500 a page, cursor paging, then
// the same of GET /api/v2/deals/archived: the first lists "all not
// archived deals"): the company's won deals updated since the period began
// (a deal is updated when it is won), kept when their won_time is in
// [since, until), each once. A page answered 429 is asked again after
// Pipedrive's wait. A page whose next_cursor names a page already read
// (a mock, or a proxy answering every page alike) ends the listing with
// an error saying so, at once, rather than reading it again until the
// bound on the pages.
func (s *Source) ListWonDeals(ctx context.Context, accountID string, since, until time.Time, fn func(connectors.WonDeal) error) error {
	acc, err := s.account(accountID)
	if err != nil {
		return err
	}
	seen := map[Ident]bool{} // a deal archived between the two lists is in both
	for _, path := range []string{"/api/v2/deals", archivedDealsPath} {
		if err := s.listWon(ctx, acc, accountID, path, since, until, func(d pdDeal, won time.Time) error {
			if seen[d.ID] {
				return nil
			}
			seen[d.ID] = true
			raw := stageRaw(d.StageID, d.PipelineID)
			archived := d.IsArchived || path == archivedDealsPath
			archiveRaw(raw, &archived, d.ArchiveTime)
			return fn(connectors.WonDeal{ID: string(d.ID), Stage: d.Status, CloseDate: model.DateOf(won), Raw: raw})
		}); err != nil {
			return err
		}
	}
	return nil
}

// archivedDealsPath lists the archived deals, which the deals list leaves
// out (since 15 July 2025).
const archivedDealsPath = "/api/v2/deals/archived"

// listWon hands fn the won deals of one list (path) won in [since, until).
func (s *Source) listWon(ctx context.Context, acc *account, accountID, path string, since, until time.Time, fn func(pdDeal, time.Time) error) error {
	cursor := ""
	read := map[string]bool{} // the cursors of the pages read ("" the first)
	for page := 0; ; page++ {
		if page == maxWonPages {
			return permanent("company %s has more than %d won deals updated since %s: start the period later", accountID, maxWonPages*wonPageSize, since.Format(time.RFC3339))
		}
		q := url.Values{"status": {"won"}, "updated_since": {since.UTC().Format(time.RFC3339)}, "sort_by": {"update_time"}, "sort_direction": {"asc"}, "limit": {strconv.Itoa(wonPageSize)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var deals []pdDeal
		var env *envelope
		err := crmkit.Paced(ctx, s.log, 5, func() (err error) {
			env, err = s.call(ctx, acc, "list won deals", http.MethodGet, path+"?"+q.Encode(), nil, &deals)
			return err
		})
		if err != nil {
			return err
		}
		for _, d := range deals {
			won, ok := pipedriveTime(d.WonTime)
			if !ok || won.Before(since) || !won.Before(until) {
				continue
			}
			if err := fn(d, won); err != nil {
				return err
			}
		}
		if env.AdditionalData.NextCursor == nil || *env.AdditionalData.NextCursor == "" {
			return nil
		}
		read[cursor] = true
		next := *env.AdditionalData.NextCursor
		if read[next] {
			return permanent("list won deals of company %s: page %d of %s names by its next_cursor as the next page %s, a page already read: "+
				"the API's paging loops (does base_url point at a mock, or at a proxy that answers every page alike?)",
				accountID, page+1, path, connectors.QuoteShort(next))
		}
		cursor = next
	}
}

// pipedriveTime reads a timestamp of the API: RFC 3339 (v2) or
// "2006-01-02 15:04:05" UTC (v1).
func pipedriveTime(v *string) (time.Time, bool) {
	if v == nil || *v == "" {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339, time.DateTime} {
		if t, err := time.Parse(layout, *v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

var _ connectors.WonDealLister = (*Source)(nil)
