package pipedrive

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/pipedrive/pipedrivefake"
)

// checkCompany runs CheckWriteBack with company 6083095 only.
func checkCompany(t *testing.T, f *pipedrivefake.Server, mutate func(*Config)) connectors.WriteBackCheck {
	t.Helper()
	s := apiSource(t, f.URL, func(c *Config) {
		c.Accounts = map[string]Account{"6083095": c.Accounts["6083095"]}
		if mutate != nil {
			mutate(c)
		}
	})
	checks := s.CheckWriteBack(context.Background())
	if len(checks) != 1 || checks[0].Account != "6083095" || checks[0].Where != "Pipedrive company 6083095" {
		t.Fatalf("checks: %+v", checks)
	}
	return checks[0]
}

// The check lists the company's deal fields, every page, and reads
// nothing else; Text fields pass.
func TestCheckWriteBackFieldsPresent(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	f.DealFieldsPageSize = 3 // 7 of Pipedrive's own and 4 custom fields: 4 pages
	f.PutDealField("6083095", pipedrivefake.DealField{Key: writeBackFields[1], Name: "Invoice number", Type: "varchar_auto"})
	f.PutDealField("6083095", pipedrivefake.DealField{Key: writeBackFields[2], Name: "Invoice link", Type: "text"})
	f.ResetRequests()
	c := checkCompany(t, f, nil)
	if c.Err != nil || len(c.Problems) != 0 || !slices.Equal(c.Fields, writeBackFields) {
		t.Fatalf("check: %+v", c)
	}
	reqs := f.Requests()
	if len(reqs) != 4 {
		t.Errorf("%d requests, want the 4 pages: %+v", len(reqs), reqs)
	}
	for _, r := range reqs {
		if r.Method != http.MethodGet || r.Path != "/api/v2/dealFields" || !strings.Contains(r.Query, "limit=500") {
			t.Errorf("the check sent %s %s?%s: it only lists deal fields", r.Method, r.Path, r.Query)
		}
	}
	// Nothing configured: nothing asked.
	f.ResetRequests()
	c = checkCompany(t, f, func(c *Config) { c.WriteBack = WriteBackConfig{} })
	if c.Err != nil || len(c.Problems) != 0 || len(c.Fields) != 0 || len(f.Requests()) != 0 {
		t.Errorf("no fields: %+v, %d requests", c, len(f.Requests()))
	}
}

// A key the company has no deal field of, and fields whose type does not
// take text, are named with their setting and what to do; the
// write-back fails on them.
func TestCheckWriteBackFindsFieldsTheWriteBackFailsOn(t *testing.T) {
	f := pipedrivefake.New()
	t.Cleanup(f.Close)
	f.AddCompany("6083095", "token-6083095")
	f.AddDealFields("6083095", writeBackFields[0])
	f.PutDealField("6083095", pipedrivefake.DealField{Key: writeBackFields[1], Name: "Invoice no.", Type: "double"})
	f.PutDealField("6083095", pipedrivefake.DealField{Key: writeBackFields[3], Name: "ERP status", Type: "enum", Options: []string{"synced", "failed"}})
	c := checkCompany(t, f, nil)
	if c.Err != nil || len(c.Problems) != 3 {
		t.Fatalf("check: %+v", c)
	}
	want := []struct{ setting, field, problem, fix string }{
		{"write_back.invoice_number_field", writeBackFields[1], `is the field "Invoice no." of type double (Numerical), which cannot hold the invoice number`, "use a custom deal field of type Text (Company settings → Data fields → Deal) and set write_back.invoice_number_field to its API key"},
		{"write_back.invoice_url_field", writeBackFields[2], "is not the key of a deal field of the company", "Company settings → Data fields → Deal → the field → API key"},
		{"write_back.status_field", writeBackFields[3], `type enum (Single option), which cannot hold the sync status "synced" (write_back.status_value): the write-back writes text, and the field takes the id of one of its options`, "type Text"},
	}
	for i, w := range want {
		p := c.Problems[i]
		if p.Account != "Pipedrive company 6083095" || p.Setting != w.setting || p.Field != w.field || !strings.Contains(p.Problem, w.problem) || !strings.Contains(p.Fix, w.fix) {
			t.Errorf("problem %d: %+v\nwant %+v", i, p, w)
		}
	}
	// A built-in field's code (not a 40-character key: a config that
	// skips validation) is not a custom field.
	s := apiSource(t, f.URL, func(c *Config) {
		c.Accounts = map[string]Account{"6083095": c.Accounts["6083095"]}
		c.WriteBack = WriteBackConfig{InvoiceIDField: "title"}
	})
	if checks := s.CheckWriteBack(context.Background()); len(checks) != 1 || len(checks[0].Problems) != 1 || !strings.Contains(checks[0].Problems[0].Problem, `Pipedrive's own deal field "Title", not a custom field`) {
		t.Errorf("built-in field: %+v", checks)
	}

	// The write-back fails as the check said.
	f.PutDeal("6083095", pipedrivefake.ParseRecord(dealRecord))
	s = apiSource(t, f.URL, func(c *Config) { c.WriteBack = WriteBackConfig{StatusField: writeBackFields[3], StatusValue: "synced"} })
	var api *connectors.APIError
	if err := s.WriteBack(context.Background(), "6083095", "213973", connectors.InvoiceResult{InvoiceID: "1"}); !errors.As(err, &api) || api.StatusCode != 400 {
		t.Errorf("write-back of text into an enum field: %v", err)
	}
}

// A refused token is a refusal of the check; a Pipedrive that does not
// answer (5xx, 429, connection refused) is told apart from it.
func TestCheckWriteBackRefusedOrCRMDown(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	f.RevokeToken("token-6083095")
	c := checkCompany(t, f, nil)
	if c.Err == nil || c.Unanswered() || len(c.Problems) != 0 || !strings.Contains(c.Err.Error(), "refused the API token of company 6083095") ||
		strings.Contains(c.Err.Error(), "retry the run") {
		t.Errorf("revoked token: %+v", c)
	}
	f.AddCompany("6083095", "token-6083095")
	for _, fault := range []pipedrivefake.Fault{{Status: http.StatusServiceUnavailable}, {Status: http.StatusTooManyRequests, RetryAfter: "2"}} {
		f.FailDealFields(fault)
		c = checkCompany(t, f, nil)
		if c.Err == nil || !c.Unanswered() || len(c.Problems) != 0 || !strings.Contains(c.Err.Error(), "list deal fields") {
			t.Errorf("%d: %+v", fault.Status, c)
		}
	}
	url := f.URL
	f.Close()
	s := apiSource(t, url, func(c *Config) { c.Accounts = map[string]Account{"6083095": c.Accounts["6083095"]} })
	if checks := s.CheckWriteBack(context.Background()); len(checks) != 1 || checks[0].Err == nil || !checks[0].Unanswered() {
		t.Errorf("connection refused: %+v", checks)
	}
}
