package salesforce

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
)

// ListWonDeals implements connectors.WonDealLister with one SOQL query
// (its pages handed on one by one): the Opportunities that are won (IsWon,
// or a StageName of won_stages) and were last modified (SystemModstamp) in
// [since, until), with a CloseDate on the day before since's (UTC) or
// later. CloseDate is a date without a zone, picked in the rep's: an
// opportunity won on the evening of a period's first day in the Americas
// has the day before in UTC, hence the day of margin. It is the
// date a rep forecast, which Salesforce does not set when the opportunity
// is won, so an opportunity won in the period may have one after it (in
// the future). An opportunity is modified when it is won, so every one won
// in the period is listed, unless it was modified again after until or
// its close date is before the period (back-dated); one won long ago and
// only edited in the period is not, as its close date is older (it might
// have been invoiced by hand before the connection went live). SOQL dateTime literals are to the second: the period is
// widened to whole seconds, UTC. The pages follow the query's cursor
// (nextRecordsUrl), not an offset.
func (s *Source) ListWonDeals(ctx context.Context, accountID string, since, until time.Time, fn func(connectors.WonDeal) error) error {
	acc, err := s.account(accountID)
	if err != nil {
		return err
	}
	return s.eachPage(ctx, acc, "list won opportunities", "query", wonQuery(s.wonStageNames(acc), s.fetch.ExtraFields, since, until), maxListPages,
		func(records []map[string]any) error {
			for _, r := range records {
				// Listed because won: as a notification of it says, with
				// the fields it would carry that the query read.
				d := connectors.WonDeal{ID: text(r, "Id"), Stage: text(r, "StageName"), EventStage: StageWon, Raw: map[string]json.RawMessage{}}
				for _, f := range append([]string{"Id", "StageName", "CloseDate"}, s.fetch.ExtraFields...) {
					d.Raw[f], _ = json.Marshal(text(r, f))
				}
				d.CloseDate, _ = model.ParseDate(text(r, "CloseDate")) // the query had it; a zero date only shows less
				if err := fn(d); err != nil {
					return err
				}
			}
			return nil
		})
}

// wonQuery is the SOQL of ListWonDeals, selecting extra fields besides
// Id, StageName and CloseDate.
func wonQuery(stages, extra []string, since, until time.Time) string {
	from, to := since.UTC().Truncate(time.Second), until.UTC().Truncate(time.Second)
	if to.Before(until.UTC()) {
		to = to.Add(time.Second)
	}
	won := "IsWon = true"
	if len(stages) > 0 {
		quoted := make([]string, len(stages))
		for i, st := range stages {
			quoted[i] = soqlString(st)
		}
		won = "(IsWon = true OR StageName IN (" + strings.Join(quoted, ", ") + "))"
	}
	fields := selectFields([]string{"Id", "StageName", "CloseDate"}, extra...)
	return "SELECT " + strings.Join(fields, ", ") + " FROM Opportunity WHERE " + won +
		" AND SystemModstamp >= " + from.Format(soqlDateTime) + " AND SystemModstamp < " + to.Format(soqlDateTime) +
		" AND CloseDate >= " + since.UTC().Add(-24*time.Hour).Format(time.DateOnly) +
		" ORDER BY SystemModstamp, Id"
}

// soqlDateTime is the layout of a SOQL dateTime literal in UTC.
const soqlDateTime = "2006-01-02T15:04:05Z"

// wonStageNames are the StageName values of won_stages (the connection's
// and the org's), sorted.
func (s *Source) wonStageNames(acc *account) []string {
	var out []string
	for _, set := range []map[string]bool{s.wonStages, acc.wonStages} {
		for st := range set {
			out = append(out, st)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// soqlString quotes a SOQL string literal (backslash and quote escaped).
func soqlString(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

var _ connectors.WonDealLister = (*Source)(nil)
