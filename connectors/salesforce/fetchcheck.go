package salesforce

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
	"github.com/dealsync/dealsync/internal/wording"
)

var _ connectors.FetchFieldChecker = (*Source)(nil)

// fetchField is a fetch setting that names an Opportunity field the
// fetch selects.
type fetchField struct{ setting, name string }

// fetchFields are the Opportunity fields the fetch selects by a setting:
// fetch.currency_field and fetch.extra_fields, in the config's order.
func (s *Source) fetchFields() []fetchField {
	var out []fetchField
	if s.fetch.CurrencyField != "" {
		out = append(out, fetchField{"fetch.currency_field", s.fetch.CurrencyField})
	}
	for i, f := range s.fetch.ExtraFields {
		out = append(out, fetchField{fmt.Sprintf("fetch.extra_fields[%d]", i), f})
	}
	return out
}

// CheckFetchFields implements connectors.FetchFieldChecker: for each org
// it describes the Opportunity (as CheckWriteBack does) and reports a
// field of fetch.currency_field or fetch.extra_fields the describe does
// not list (names in any letter case; a related record's field,
// Owner.Email, is not judged), saying which it may have meant
// (wording.TypoOf). Salesforce refuses a query of such a field
// (INVALID_FIELD): every fetch, and so every run, of the org would fail.
func (s *Source) CheckFetchFields(ctx context.Context) []connectors.WriteBackCheck {
	fields := s.fetchFields()
	return crmkit.CheckAccounts(ctx, s.Accounts(), func(ctx context.Context, id string) connectors.WriteBackCheck {
		check := connectors.WriteBackCheck{Account: id, Where: "Salesforce org " + id}
		for _, f := range fields {
			check.Fields = append(check.Fields, f.name)
		}
		if len(fields) == 0 {
			return check
		}
		acc, err := s.account(id)
		if err != nil {
			check.Err = err
			return check
		}
		var d describeResult
		callCtx, cancel := context.WithTimeout(ctx, connectors.WriteBackCheckCallTimeout)
		err = s.call(callCtx, acc, "describe opportunity", http.MethodGet, "/services/data/"+s.apiVersion+"/sobjects/Opportunity/describe", nil, &d)
		cancel()
		if err != nil {
			check.Err = err
			return check
		}
		names := make([]string, 0, len(d.Fields))
		for _, df := range d.Fields {
			names = append(names, df.Name)
		}
		for _, f := range fields {
			if strings.Contains(f.name, ".") || // a related record's (Owner.Email): not in the describe
				slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, f.name) }) {
				continue
			}
			p := connectors.WriteBackProblem{Account: check.Where, Setting: f.setting, Field: f.name,
				Problem: "is not a field of the Opportunity that the integration user can see: Salesforce refuses the fetch's query of it (INVALID_FIELD), and every run of the org fails",
				Fix:     "set it to the field's API name (Setup → Object Manager → Opportunity → Fields & Relationships), or give the integration user access to the field (Set Field-Level Security)"}
			if f.setting == "fetch.currency_field" && strings.EqualFold(f.name, "CurrencyIsoCode") {
				p.Fix = "the org is not a multi-currency one: remove fetch.currency_field and set fetch.default_currency"
			} else if meant, ok := wording.TypoOf(f.name, names); ok {
				p.Problem += fmt.Sprintf("; did you mean %q?", meant)
			}
			check.Problems = append(check.Problems, p)
		}
		return check
	})
}
