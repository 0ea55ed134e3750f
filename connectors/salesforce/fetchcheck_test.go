package salesforce

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/salesforce/salesforcefake"
)

// A fetch.extra_fields name the Opportunity's describe does not list
// fails the check, naming the field it may be a typo of, where it passed
// before and every run then failed on Salesforce's INVALID_FIELD (which
// the fake answers as Salesforce does); the fields the org has pass, in
// any letter case, as does a related record's field (not judged) and a
// currency_field of a multi-currency org.
func TestCheckFetchFieldsNamesAFieldTheOrgLacks(t *testing.T) {
	f := newFakeOrg(t)
	f.AddFields("PO_Number__c")
	s := apiSource(t, f, func(c *Config) {
		c.Fetch.ExtraFields = []string{"po_number__c", "PO_Numbr__c", "Description", "Owner.Email"}
	})
	checks := s.CheckFetchFields(context.Background())
	if len(checks) != 1 || checks[0].Err != nil || len(checks[0].Problems) != 1 {
		t.Fatalf("checks: %+v; want one problem", checks)
	}
	p := checks[0].Problems[0]
	if p.Setting != "fetch.extra_fields[1]" || p.Field != "PO_Numbr__c" || !strings.Contains(p.Problem, `INVALID_FIELD`) || !strings.Contains(p.Problem, `did you mean "PO_Number__c"?`) {
		t.Errorf("problem: %s", p)
	}
	// What a run would get.
	_, err := s.FetchDeal(context.Background(), orgA, "0065w000023STAmAAO")
	var apiErr *connectors.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(err.Error(), "INVALID_FIELD") || !strings.Contains(err.Error(), "No such column 'PO_Numbr__c'") {
		t.Errorf("fetch: %v; want Salesforce's INVALID_FIELD", err)
	}

	ok := apiSource(t, f, func(c *Config) { c.Fetch.ExtraFields = []string{"po_number__c"} }).CheckFetchFields(context.Background())
	if len(ok) != 1 || ok[0].Err != nil || len(ok[0].Problems) != 0 || strings.Join(ok[0].Fields, ",") != "CurrencyIsoCode,po_number__c" {
		t.Errorf("checks: %+v; want the fields passed", ok)
	}
	single := salesforcefake.New(orgA, "cid-a", "cs-a")
	t.Cleanup(single.Close)
	got := apiSource(t, single, nil).CheckFetchFields(context.Background())
	if len(got) != 1 || len(got[0].Problems) != 1 || got[0].Problems[0].Setting != "fetch.currency_field" || !strings.Contains(got[0].Problems[0].Fix, "not a multi-currency one") {
		t.Errorf("a single-currency org: %+v; want currency_field named", got)
	}
}
