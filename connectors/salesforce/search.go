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
// (its pages handed on one by one): the Opportunities that are won (IsWon, or a StageName
// of won_stages) with a CloseDate in [since, until). CloseDate is a date:
// the period is taken in whole days, UTC, an until within a day counting
// that day.
func (s *Source) ListWonDeals(ctx context.Context, accountID string, since, until time.Time, fn func(connectors.WonDeal) error) error {
	acc, err := s.account(accountID)
	if err != nil {
		return err
	}
	return s.eachPage(ctx, acc, "list won opportunities", wonQuery(s.wonStageNames(acc), s.fetch.ExtraFields, since, until), maxListPages,
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
	const day = 24 * time.Hour
	from, to := since.UTC().Truncate(day), until.UTC().Truncate(day)
	if to.Before(until.UTC()) {
		to = to.Add(day)
	}
	won := "IsWon = true"
	if len(stages) > 0 {
		quoted := make([]string, len(stages))
		for i, st := range stages {
			quoted[i] = soqlString(st)
		}
		won = "(IsWon = true OR StageName IN (" + strings.Join(quoted, ", ") + "))"
	}
	fields := []string{"Id", "StageName", "CloseDate"}
	for _, f := range extra {
		if !slices.Contains(fields, f) {
			fields = append(fields, f)
		}
	}
	return "SELECT " + strings.Join(fields, ", ") + " FROM Opportunity WHERE " + won +
		" AND CloseDate >= " + from.Format(time.DateOnly) + " AND CloseDate < " + to.Format(time.DateOnly) +
		" ORDER BY CloseDate, Id"
}

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
