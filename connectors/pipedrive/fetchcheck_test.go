package pipedrive

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/pipedrive/pipedrivefake"
)

const (
	emailKey = "aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11" // apiSource's fetch.organization_email_field
	taxKey   = "bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22" // and fetch.organization_tax_id_field
)

// checkFetch runs CheckFetchFields with company 6083095 only.
func checkFetch(t *testing.T, f *pipedrivefake.Server, fetch FetchConfig) connectors.WriteBackCheck {
	t.Helper()
	s := apiSource(t, f.URL, func(c *Config) {
		c.Accounts = map[string]Account{"6083095": c.Accounts["6083095"]}
		c.Fetch = fetch
	})
	checks := s.CheckFetchFields(context.Background())
	if len(checks) != 1 || checks[0].Account != "6083095" || checks[0].Where != "Pipedrive company 6083095" {
		t.Fatalf("checks: %+v", checks)
	}
	return checks[0]
}

// The check lists the company's organization fields, every page, and
// reads nothing else: custom Text and number fields pass; with no
// organization field set, nothing is asked.
func TestCheckFetchFieldsPresent(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	f.DealFieldsPageSize = 2 // 4 of Pipedrive's own and 2 custom fields: 3 pages
	f.PutOrganizationField("6083095", pipedrivefake.DealField{Key: emailKey, Name: "Billing e-mail", Type: "varchar"})
	f.PutOrganizationField("6083095", pipedrivefake.DealField{Key: taxKey, Name: "VAT ID", Type: "double"})
	f.ResetRequests()
	c := checkFetch(t, f, FetchConfig{OrganizationEmailField: emailKey, OrganizationTaxIDField: taxKey})
	if c.Err != nil || len(c.Problems) != 0 || !slices.Equal(c.Fields, []string{emailKey, taxKey}) {
		t.Fatalf("check: %+v", c)
	}
	reqs := f.Requests()
	if len(reqs) != 3 {
		t.Errorf("%d requests, want the 3 pages: %+v", len(reqs), reqs)
	}
	for _, r := range reqs {
		if r.Method != http.MethodGet || r.Path != "/api/v2/organizationFields" || !strings.Contains(r.Query, "limit=500") {
			t.Errorf("the check sent %s %s?%s: it only lists organization fields", r.Method, r.Path, r.Query)
		}
	}
	f.ResetRequests()
	c = checkFetch(t, f, FetchConfig{})
	if c.Err != nil || len(c.Problems) != 0 || len(c.Fields) != 0 || len(f.Requests()) != 0 {
		t.Errorf("no fields: %+v, %d requests", c, len(f.Requests()))
	}
}

// A setting that is not the key of an organization custom field is named
// with what to do, and with the field it may have meant: the one whose
// name it is (a field's name set where its key belongs), or whose key or
// name it is a typo of; so are one of Pipedrive's own fields (by its key,
// or by its name) and a field whose value is not text. The fetch reads each of them empty.
func TestCheckFetchFieldsNamesWhatTheFetchReadsEmpty(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	f.PutOrganizationField("6083095", pipedrivefake.DealField{Key: emailKey, Name: "Billing e-mail", Type: "varchar"})
	f.PutOrganizationField("6083095", pipedrivefake.DealField{Key: taxKey, Name: "VAT ID", Type: "varchar"})
	f.PutOrganizationField("6083095", pipedrivefake.DealField{Key: "cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33", Name: "Tax status", Type: "enum", Options: []string{"exempt", "liable"}})
	for _, c := range []struct {
		fetch                 FetchConfig
		setting, problem, fix string
	}{
		{FetchConfig{OrganizationTaxIDField: "vat id"}, "fetch.organization_tax_id_field",
			`is not the key of an organization field of the company, but the name of the field "VAT ID"`, `set fetch.organization_tax_id_field to "` + taxKey + `", its key`},
		{FetchConfig{OrganizationTaxIDField: "bb22bb22bb22bb22bb22bb22bb22bb22bb22bb2"}, "fetch.organization_tax_id_field",
			`is not the key of an organization field of the company; did you mean "` + taxKey + `" (the field "VAT ID")?`,
			`set fetch.organization_tax_id_field to "` + taxKey + `", if that is the field that holds the customer's tax id`},
		{FetchConfig{OrganizationEmailField: "Billing email"}, "fetch.organization_email_field",
			`did you mean "` + emailKey + `" (the field "Billing e-mail")?`, `set fetch.organization_email_field to "` + emailKey + `"`},
		{FetchConfig{OrganizationEmailField: "dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44"}, "fetch.organization_email_field",
			"is not the key of an organization field of the company (deleted, mistyped, or another company's: each company's fields have their own keys)",
			"copy the field's key (Company settings → Data fields → Organization → the field → API key) and set fetch.organization_email_field to it"},
		{FetchConfig{OrganizationEmailField: "name"}, "fetch.organization_email_field",
			`is Pipedrive's own organization field "Name", not a custom field: the fetch reads the customer's e-mail from the organization's custom fields`,
			"use a custom organization field of type Text (Company settings → Data fields → Organization) and set fetch.organization_email_field to its API key"},
		// A built-in field's display name (or its key in another case) is
		// Pipedrive's own field, not a deleted or mistyped one.
		{FetchConfig{OrganizationEmailField: "Name"}, "fetch.organization_email_field",
			`is not the key of an organization field of the company, but names Pipedrive's own organization field "Name" (key name), not a custom field: the fetch reads the customer's e-mail from the organization's custom fields`,
			"use a custom organization field of type Text (Company settings → Data fields → Organization) and set fetch.organization_email_field to its API key"},
		{FetchConfig{OrganizationTaxIDField: "LABEL_IDS"}, "fetch.organization_tax_id_field",
			`but names Pipedrive's own organization field "Labels" (key label_ids), not a custom field`, "use a custom organization field of type Text"},
		{FetchConfig{OrganizationTaxIDField: "cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33"}, "fetch.organization_tax_id_field",
			`is the field "Tax status" of type enum (Single option), whose value is not the customer's tax id as text: it holds the id of one of its options`,
			"use a custom organization field of type Text"},
	} {
		got := checkFetch(t, f, c.fetch)
		if got.Err != nil || len(got.Problems) != 1 {
			t.Errorf("%+v: %+v; want one problem", c.fetch, got)
			continue
		}
		p := got.Problems[0]
		if p.Account != "Pipedrive company 6083095" || p.Setting != c.setting || !strings.Contains(p.Problem, c.problem) || !strings.Contains(p.Fix, c.fix) {
			t.Errorf("%+v: %+v\nwant %s %q, fix %q", c.fetch, p, c.setting, c.problem, c.fix)
		}
	}

	// The fetch reads them empty, as the check said; by the key, it reads
	// the field.
	f.PutOrganization("6083095", pipedrivefake.ParseRecord(`{"id":5063,"name":"Acme GmbH","custom_fields":{"`+taxKey+`":"DE123456789"}}`))
	for key, want := range map[string]string{"VAT ID": "", taxKey: "DE123456789"} {
		s := apiSource(t, f.URL, func(c *Config) { c.Fetch = FetchConfig{OrganizationTaxIDField: key} })
		d, err := s.FetchDeal(context.Background(), "6083095", "213973")
		if err != nil || d.Company.Name != "Acme GmbH" || d.Company.TaxID != want {
			t.Errorf("fetch.organization_tax_id_field %q: company %+v, %v; want tax id %q", key, d.Company, err, want)
		}
	}
}

// A refused token, or a Pipedrive that does not answer, is the check's
// error, told apart as for the write-back's check.
func TestCheckFetchFieldsRefusedOrCRMDown(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	f.FailOrganizationFields(pipedrivefake.Fault{Status: http.StatusServiceUnavailable})
	c := checkFetch(t, f, FetchConfig{OrganizationEmailField: emailKey})
	if c.Err == nil || !c.Unanswered() || len(c.Problems) != 0 || !strings.Contains(c.Err.Error(), "list organization fields") {
		t.Errorf("503: %+v", c)
	}
	f.RevokeToken("token-6083095")
	c = checkFetch(t, f, FetchConfig{OrganizationEmailField: emailKey})
	if c.Err == nil || c.Unanswered() || !strings.Contains(c.Err.Error(), "refused the API token of company 6083095") {
		t.Errorf("refused token: %+v", c)
	}
}

// A key written with spaces around it (quoted YAML, an environment
// variable) is checked and fetched as the same key: the check passes it
// and the fetch reads the field; one of spaces only is unset for both
// (nothing asked, nothing read, and the mapping lint names it unset).
func TestFetchFieldsTrimmedAsTheCheckReadsThem(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	f.PutOrganizationField("6083095", pipedrivefake.DealField{Key: taxKey, Name: "VAT ID", Type: "varchar"})
	f.PutOrganization("6083095", pipedrivefake.ParseRecord(`{"id":5063,"name":"Acme GmbH","custom_fields":{"`+taxKey+`":"DE123456789"}}`))
	for _, c := range []struct{ key, want string }{{taxKey + " ", "DE123456789"}, {"\t" + taxKey + "\n", "DE123456789"}, {"   ", ""}} {
		fetch := FetchConfig{OrganizationTaxIDField: c.key}
		f.ResetRequests()
		check := checkFetch(t, f, fetch)
		if c.want == "" {
			if check.Err != nil || len(check.Problems) != 0 || len(check.Fields) != 0 || len(f.Requests()) != 0 {
				t.Errorf("%q: %+v, %d requests; want it unset", c.key, check, len(f.Requests()))
			}
		} else if check.Err != nil || len(check.Problems) != 0 || !slices.Equal(check.Fields, []string{taxKey}) {
			t.Errorf("%q: %+v; want %s checked and passed", c.key, check, taxKey)
		}
		s := apiSource(t, f.URL, func(cfg *Config) { cfg.Fetch = fetch })
		d, err := s.FetchDeal(context.Background(), "6083095", "213973")
		if err != nil || d.Company.TaxID != c.want {
			t.Errorf("%q: fetched company %+v, %v; want tax id %q", c.key, d.Company, err, c.want)
		}
		if _, unset := s.UnsetCompanyFields()["tax_id"]; unset != (c.want == "") {
			t.Errorf("%q: UnsetCompanyFields %v", c.key, s.UnsetCompanyFields())
		}
	}
}
