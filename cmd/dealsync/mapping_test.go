package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/connectors/hubspot/hubspotfake"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/mapping/dealfile"
	"github.com/dealsync/dealsync/model"
)

// mappingTestReport is the part of `mapping test --json` these tests read.
type mappingTestReport struct {
	Mapping      string `json:"mapping"`
	Connection   string `json:"connection"`
	NoConnection bool   `json:"no_connection"`
	Triggered    bool   `json:"triggered"`
	ThinTrigger  bool   `json:"thin_trigger"`
	TriggerError string `json:"trigger_error"`
	Invoice      *struct {
		Reference string `json:"reference"`
		Total     string `json:"total"`
		Customer  struct {
			ExternalID string `json:"external_id"`
			Name       string `json:"name"`
		} `json:"customer"`
		Lines []struct {
			ItemCode string `json:"item_code"`
		} `json:"lines"`
	} `json:"invoice"`
	Target  string `json:"target"`
	Request *struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	} `json:"request"`
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// mappingTest runs `mapping test --json` with args. A usage or config
// error (exit 2) is reported in the JSON alone: its message is made the
// error's, for the tests to read as they would without --json.
func mappingTest(t *testing.T, args ...string) (mappingTestReport, error) {
	t.Helper()
	out, err := runOut(context.Background(), append([]string{"mapping", "test", "--json"}, args...)...)
	var r mappingTestReport
	if out != "" {
		if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
			t.Fatalf("--json printed %v:\n%s", jerr, out)
		}
	}
	if exitCode(err) == 2 {
		if r.Error == nil || r.Error.Type != "usage" && r.Error.Type != "config" || err.Error() != "exit status 2" {
			t.Fatalf("exit 2 (%v) with %q; want a usage or config error in the JSON alone", err, out)
		}
		err = &exitError{code: 2, err: errors.New(r.Error.Message)}
	}
	return r, err
}

// The README's dry run: the example deal through the example mapping.
func TestMappingTestOnASampleDeal(t *testing.T) {
	r, err := mappingTest(t, "--config", "../../examples/dealsync.yaml", "--mapping", "generic-standard", "--deal", "../../examples/closed-won.json")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Triggered || r.Invoice == nil || r.Invoice.Reference != "DS-D-1001" || r.Invoice.Total != "12000" ||
		len(r.Invoice.Lines) != 1 || r.Invoice.Lines[0].ItemCode != "PRO-ANNUAL" {
		t.Errorf("report %+v", r)
	}
	if r.Request == nil || r.Request.Method != http.MethodPost || !strings.HasSuffix(r.Request.URL, "/invoices") {
		t.Errorf("planned request %+v", r.Request)
	}
	if _, err := runOut(context.Background(), "mapping", "test", "--mapping", "generic-standard", "--deal", "x.json", "--dir", "d"); exitCode(err) != 2 {
		t.Errorf("--deal with --dir: exit %d", exitCode(err))
	}
}

// A trigger that fails on the deal is shown as such, and the test exits 1:
// the intake would refuse that delivery.
func TestMappingTestShowsAFailingTrigger(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(file, []byte("name: m\ntrigger: is_won(deal.stage) && deal.line_items[5].sku != \"TRIAL\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := mappingTest(t, "--config", "../../examples/dealsync.yaml", "--file", file, "--deal", "../../examples/closed-won.json")
	if exitCode(err) != 1 || r.Triggered || !strings.Contains(r.TriggerError, "trigger") || !strings.Contains(r.TriggerError, "D-1001") {
		t.Fatalf("exit %d, report %+v", exitCode(err), r)
	}
	// The text says the trigger failed, not that no run would start.
	out, err := runOut(context.Background(), "mapping", "test", "--config", "../../examples/dealsync.yaml", "--file", file, "--deal", "../../examples/closed-won.json")
	if exitCode(err) != 1 || !strings.Contains(out, "trigger:    FAILED on this deal") || strings.Contains(out, "no run would start") {
		t.Errorf("exit %d:\n%s\nwant the failed trigger, and no 'no run would start' heading", exitCode(err), out)
	}
}

// Golden cases (--dir) judge the trigger as --deal does: a trigger that
// fails on a case's deal fails the case (exit 1), --update included; and
// an expected invoice with a key an invoice does not have is refused
// (exit 2), naming the key and the file.
func TestMappingTestDirJudgesTheTriggerAndRefusesUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	deal, err := os.ReadFile("../../examples/closed-won.json")
	if err != nil {
		t.Fatal(err)
	}
	i, j := strings.Index(string(deal), `,
    "line_items"`), strings.LastIndex(string(deal), "]")
	if i < 0 || j < i {
		t.Fatal("the example deal changed")
	}
	cases := filepath.Join(dir, "cases")
	os.Mkdir(cases, 0o755)
	writeFile(t, filepath.Join(cases, "c.deal.json"), string(deal[:i])+string(deal[j+1:]))
	plain := writeFile(t, filepath.Join(dir, "plain.yaml"), "name: m\n")
	failing := writeFile(t, filepath.Join(dir, "failing.yaml"), "name: m\ntrigger: is_won(deal.stage) && deal.line_items[0].quantity > 0\n")
	run := func(args ...string) (string, error) {
		return runOut(context.Background(), append([]string{"mapping", "test", "--config", "../../examples/dealsync.yaml", "--dir", cases}, args...)...)
	}
	if out, err := run("--file", plain, "--update"); err != nil || !strings.Contains(out, "updated c") {
		t.Fatalf("update: %v\n%s", err, out)
	}
	if out, err := run("--file", plain); err != nil || !strings.Contains(out, "ok      c") || !strings.Contains(out, "\n1 case, 0 failed") {
		t.Fatalf("the plain mapping: %v\n%s", err, out)
	}
	for _, update := range []bool{false, true} {
		args := []string{"--file", failing}
		if update {
			args = append(args, "--update")
		}
		out, err := run(args...)
		if exitCode(err) != 1 || !strings.Contains(out, "FAIL    c") || !strings.Contains(out, "trigger: FAILED on this deal") ||
			!strings.Contains(out, "500") || !strings.Contains(out, "D-1001") {
			t.Errorf("a trigger that fails on the case's deal (update %v): exit %d\n%s", update, exitCode(err), out)
		}
	}
	out, err := run("--file", failing, "--json")
	var rep struct {
		Cases []struct {
			OK           bool   `json:"ok"`
			TriggerError string `json:"trigger_error"`
		} `json:"cases"`
		Failed int `json:"failed"`
	}
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil || exitCode(err) != 1 || rep.Failed != 1 || len(rep.Cases) != 1 ||
		rep.Cases[0].OK || !strings.Contains(rep.Cases[0].TriggerError, "D-1001") {
		t.Errorf("--json: exit %d, %v\n%s", exitCode(err), jerr, out)
	}

	invPath := filepath.Join(cases, "c.invoice.json")
	inv, err := os.ReadFile(invPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, invPath, strings.Replace(string(inv), `"total":`, `"totl": "9999", "total":`, 1))
	if _, err := run("--file", plain); exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), `unknown key "totl"`) ||
		!strings.Contains(fmt.Sprint(err), invPath) {
		t.Errorf("an unknown key: exit %d, %v", exitCode(err), err)
	}
}

// --fetch reads a real deal from the connection's CRM (here HubSpot's
// fake: GETs only) and tests the mapping on it; --save keeps it as a
// golden case.
func TestMappingTestOnAFetchedDeal(t *testing.T) {
	f := hubspotfake.New()
	defer f.Close()
	f.AddPortal("62515", "pat-na1-62515")
	f.AddPipeline("62515", hubspotfake.Pipeline{ID: "renewals", Label: "Renewals", Stages: []hubspotfake.Stage{
		{ID: "71000002", Label: "Renewed", IsClosed: "true", Probability: "1.0"},
	}})
	f.PutDeal("62515", hubspotfake.Deal{ID: "4711",
		Properties: hubspotfake.Props("dealname", "Renewal 2027", "dealstage", "71000002", "amount", "480.00",
			"closedate", "2026-11-20T10:00:00.000Z", "deal_currency_code", "EUR"),
		Companies: []hubspotfake.Association{{ID: "5471", Type: "deal_to_company"}},
		LineItems: []hubspotfake.Association{{ID: "9471", Type: "deal_to_line_item"}},
	})
	// A German customer: the mapping adds 19 % VAT (480 + 91.20).
	f.PutCompany("62515", hubspotfake.Object{ID: "5471", Properties: hubspotfake.Props("name", "Renew GmbH", "country", "DE")})
	f.PutLineItem("62515", hubspotfake.Object{ID: "9471", Properties: hubspotfake.Props("name", "Pro plan, 1 year", "hs_sku", "PRO-1Y", "quantity", "1", "price", "480.00")})

	dir := t.TempDir()
	t.Setenv("HS_SECRET", "hubspot-client-secret")
	t.Setenv("HS_TOKEN", "pat-na1-62515")
	// A trigger that reads the amount, which HubSpot's webhooks do not
	// carry: the intake never starts a run with it.
	amountFile := amountTriggerMapping(t, dir)
	cfg := writeConfig(t, fmt.Sprintf(`
mappings: {files: [%q, %q]}
connections:
  hs:
    target: sandbox
    mapping: generic-standard
    trigger: {won_stages: [closedwon]}
    source:
      type: hubspot
      client_secret: env:HS_SECRET
      base_url: %s
      accounts:
        "62515": {access_token: env:HS_TOKEN}
`, mustAbs(t, "../../examples/mappings/generic-standard.yaml"), amountFile, f.URL))
	saved := filepath.Join(dir, "renewal.deal.json")

	r, err := mappingTest(t, "--config", cfg, "--connection", "hs", "--fetch", "4711", "--save", saved)
	if err != nil {
		t.Fatalf("mapping test --fetch: %v (%+v)", err, r)
	}
	if !r.Triggered || !r.ThinTrigger || r.Invoice == nil || r.Invoice.Total != "571.2" || r.Invoice.Customer.ExternalID != "5471" ||
		r.Invoice.Customer.Name != "Renew GmbH" || r.Invoice.Reference != "DS-4711" {
		t.Errorf("report %+v, invoice %+v", r, r.Invoice)
	}
	for _, req := range f.Requests() {
		if req.Method != http.MethodGet && !strings.HasSuffix(req.Path, "/batch/read") {
			t.Errorf("--fetch sent %s %s to the CRM", req.Method, req.Path)
		}
	}
	ev, err := dealfile.Read(saved)
	if err != nil || ev.Account != "62515" || ev.Deal.ID != "4711" || ev.Deal.Stage != "closedwon" || len(ev.Deal.LineItems) != 1 {
		t.Fatalf("saved event %+v: %v", ev, err)
	}
	// The saved deal is a deal event like any other: --deal reads it back.
	again, err := mappingTest(t, "--config", cfg, "--connection", "hs", "--deal", saved)
	if err != nil || again.Invoice == nil || again.Invoice.Total != "571.2" {
		t.Errorf("--deal of the saved event: %v, %+v", err, again)
	}

	if !again.Triggered || !again.ThinTrigger {
		t.Errorf("--deal of the saved event: %+v; want a run, judged as on a thin webhook", again)
	}

	// The trigger is judged as on the webhook, which has no amount: no run,
	// whether the deal is fetched or read from the file --save wrote.
	if r, err := mappingTest(t, "--config", cfg, "--connection", "hs", "--mapping", "amount-trigger", "--fetch", "4711"); err != nil || r.Triggered || !r.ThinTrigger {
		t.Errorf("a trigger on the amount of a fetched HubSpot deal: %+v, %v; want no run, judged as on a thin webhook", r, err)
	}
	if r, err := mappingTest(t, "--config", cfg, "--connection", "hs", "--mapping", "amount-trigger", "--deal", saved); err != nil || r.Triggered || !r.ThinTrigger {
		t.Errorf("a trigger on the amount of a saved HubSpot deal: %+v, %v; want no run, judged as on a thin webhook", r, err)
	}

	// A golden case of that deal is judged as --deal judges it: on the
	// webhook (before, on the whole deal: the case said a run would start).
	golden := t.TempDir()
	if b, err := os.ReadFile(saved); err != nil {
		t.Fatal(err)
	} else {
		writeFile(t, filepath.Join(golden, "renewal.deal.json"), string(b))
	}
	out, err := runOut(context.Background(), "mapping", "test", "--json", "--config", cfg, "--connection", "hs", "--mapping", "amount-trigger", "--dir", golden, "--update")
	var g struct {
		Thin  bool `json:"thin_trigger"`
		Cases []struct {
			Name    string `json:"name"`
			Skipped string `json:"skipped"`
			Updated bool   `json:"updated"`
		} `json:"cases"`
	}
	if jerr := json.Unmarshal([]byte(out), &g); err != nil || jerr != nil || !g.Thin || len(g.Cases) != 1 || !g.Cases[0].Updated || g.Cases[0].Skipped == "" {
		t.Errorf("--dir --update of the saved deal with a trigger on the amount: %v, %v\n%s\nwant the case written as starting no run, judged as on a thin webhook", err, jerr, out)
	}
	if _, err := os.Stat(filepath.Join(golden, "renewal.error.txt")); err != nil {
		t.Errorf("the case's outcome file: %v; want renewal.error.txt (no run would start)", err)
	}
	if text, err := runOut(context.Background(), "mapping", "test", "--config", cfg, "--connection", "hs", "--mapping", "generic-standard", "--dir", golden, "--update"); err != nil ||
		!strings.Contains(text, "each trigger judged as on a webhook of the deal") || !strings.Contains(text, "updated renewal (was an error, now an invoice)\n") {
		t.Errorf("--dir with the stage trigger: %v\n%s\nwant the case written with its invoice, and the summary to say how triggers were judged", err, text)
	}

	if r, err := mappingTest(t, "--config", cfg, "--connection", "hs", "--fetch", "999"); exitCode(err) != 1 || r.Error == nil || !strings.Contains(r.Error.Message, "999") {
		t.Errorf("a deal the CRM does not have: exit %d, %v, report %+v", exitCode(err), err, r)
	}
	if _, err := mappingTest(t, "--config", cfg, "--mapping", "generic-standard", "--fetch", "4711"); exitCode(err) != 2 {
		t.Errorf("--fetch without --connection: exit %d, %v", exitCode(err), err)
	}
	if _, err := mappingTest(t, "--config", cfg, "--connection", "demo", "--fetch", "4711"); exitCode(err) != 2 || !strings.Contains(err.Error(), "--deal") {
		t.Errorf("--fetch on a source without a CRM API: exit %d, %v", exitCode(err), err)
	}
}

// `mapping test --fetch --json` whose deal cannot be read from the CRM (a
// deal it does not have, a token it refuses) printed nothing on stdout,
// only the error on stderr: it reports the failure in its JSON, as a
// mapping that does not load is reported, error.type fetch (save for a
// --save that cannot write), exit 1. Without --json the failure is the
// error, as before.
func TestMappingTestReportsADealThatCannotBeFetchedInJSON(t *testing.T) {
	f := hubspotfake.New()
	defer f.Close()
	f.AddPortal("62515", "pat-na1-62515")
	f.AddPipeline("62515", hubspotfake.Pipeline{ID: "default", Label: "Sales", Stages: []hubspotfake.Stage{
		{ID: "closedwon", Label: "Closed won", IsClosed: "true", Probability: "1.0"},
	}})
	f.PutDeal("62515", hubspotfake.Deal{ID: "4711",
		Properties: hubspotfake.Props("dealname", "Pro", "dealstage", "closedwon", "amount", "480.00", "deal_currency_code", "EUR"),
	})
	t.Setenv("HS_SECRET", "hubspot-client-secret")
	t.Setenv("HS_TOKEN", "pat-na1-62515")
	t.Setenv("HS_WRONG_TOKEN", "pat-na1-wrong")
	config := func(tokenVar string) string {
		return writeConfig(t, fmt.Sprintf(`
mappings: {files: [%q]}
connections:
  hs:
    target: sandbox
    mapping: generic-standard
    trigger: {won_stages: [closedwon]}
    source:
      type: hubspot
      client_secret: env:HS_SECRET
      base_url: %s
      accounts:
        "62515": {access_token: env:%s}
`, mustAbs(t, "../../examples/mappings/generic-standard.yaml"), f.URL, tokenVar))
	}
	cfg := config("HS_TOKEN")
	type report struct {
		Mapping    string          `json:"mapping"`
		Hash       string          `json:"hash"`
		Connection string          `json:"connection"`
		DealID     string          `json:"deal_id"`
		Triggered  json.RawMessage `json:"triggered"`
		Invoice    json.RawMessage `json:"invoice"`
		Error      *struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	for _, c := range []struct {
		name     string
		args     []string
		deal     string
		typ      string
		contains []string
	}{
		{"a deal the CRM does not have", []string{"--config", cfg, "--connection", "hs", "--fetch", "999"},
			"999", fetchErrorType, []string{"reading deal 999 from the CRM of connection hs", "404"}},
		{"a token the CRM refuses", []string{"--config", config("HS_WRONG_TOKEN"), "--connection", "hs", "--fetch", "4711"},
			"4711", fetchErrorType, []string{"reading deal 4711 from the CRM of connection hs", "401"}},
		{"a --save that cannot write", []string{"--config", cfg, "--connection", "hs", "--fetch", "4711", "--save", filepath.Join(t.TempDir(), "missing", "x.deal.json")},
			"4711", saveErrorType, []string{"--save", "x.deal.json"}},
	} {
		out, err := runOut(context.Background(), append([]string{"mapping", "test", "--json"}, c.args...)...)
		var r report
		if jerr := json.Unmarshal([]byte(out), &r); jerr != nil || exitCode(err) != 1 {
			t.Errorf("%s: exit %d (%v), output %q (%v); want exit 1 and a JSON report", c.name, exitCode(err), err, out, jerr)
			continue
		}
		if r.Mapping != "generic-standard" || r.Hash == "" || r.Connection != "hs" || r.DealID != c.deal ||
			r.Error == nil || r.Error.Type != c.typ || r.Triggered != nil || r.Invoice != nil {
			t.Errorf("%s: report:\n%s", c.name, out)
		}
		for _, want := range c.contains {
			if r.Error != nil && !strings.Contains(r.Error.Message, want) {
				t.Errorf("%s: error message %q lacks %q", c.name, r.Error.Message, want)
			}
		}
		// As the other errors of --json: the report, nothing on stderr.
		if err != nil && err.Error() != "exit status 1" {
			t.Errorf("%s: error %q besides the JSON", c.name, err)
		}
		out, err = runOut(context.Background(), append([]string{"mapping", "test"}, c.args...)...)
		if exitCode(err) != 1 || out != "" || err == nil || !strings.Contains(err.Error(), c.contains[0]) {
			t.Errorf("%s without --json: exit %d, error %v, output %q; want exit 1 and the failure as the error", c.name, exitCode(err), err, out)
		}
	}
	// A usage error of --fetch (exit 2) is no fetch's: error.type usage,
	// exit 2.
	out, err := runOut(context.Background(), "mapping", "test", "--json", "--config", cfg, "--connection", "demo", "--fetch", "4711")
	var r report
	if jerr := json.Unmarshal([]byte(out), &r); jerr != nil || exitCode(err) != 2 || r.Error == nil || r.Error.Type != "usage" ||
		!strings.Contains(r.Error.Message, "has no CRM API to read from") || r.DealID != "" {
		t.Errorf("--fetch on a source without a CRM API: exit %d, output %q (%v); want exit 2 and a usage error in the JSON", exitCode(err), out, jerr)
	}
}

// The request shown is for the target a run would invoice into: the one
// the connection's account_targets give the deal's account, unless
// --target names another.
func TestMappingTestShowsTheAccountsTarget(t *testing.T) {
	f := hubspotfake.New()
	defer f.Close()
	for _, portal := range []string{"62515", "77001"} {
		f.AddPortal(portal, "pat-na1-"+portal)
		f.AddPipeline(portal, hubspotfake.Pipeline{ID: "default", Label: "Sales", Stages: []hubspotfake.Stage{
			{ID: "closedwon", Label: "Closed won", IsClosed: "true", Probability: "1.0"},
		}})
		f.PutDeal(portal, hubspotfake.Deal{ID: "4711",
			Properties: hubspotfake.Props("dealname", "Pro", "dealstage", "closedwon", "amount", "480.00",
				"closedate", "2026-11-20T10:00:00.000Z", "deal_currency_code", "EUR"),
			Companies: []hubspotfake.Association{{ID: "5471", Type: "deal_to_company"}},
		})
		f.PutCompany(portal, hubspotfake.Object{ID: "5471", Properties: hubspotfake.Props("name", "Acme SE", "country", "FR")})
	}
	t.Setenv("HS_SECRET", "hubspot-client-secret")
	t.Setenv("HS_TOKEN_A", "pat-na1-62515")
	t.Setenv("HS_TOKEN_B", "pat-na1-77001")
	cfg := writeConfig(t, fmt.Sprintf(`
targets:
  acme-erp: {type: http, base_url: "http://acme.example/api"}
  globex-erp: {type: http, base_url: "http://globex.example/api"}
connections:
  hs:
    target: acme-erp
    account_targets: {" 77001 ": globex-erp} # as typed: keyed as the source keys its events
    source:
      type: hubspot
      client_secret: env:HS_SECRET
      base_url: %s
      accounts:
        "62515": {access_token: env:HS_TOKEN_A}
        "77001": {access_token: env:HS_TOKEN_B}
`, f.URL))
	saved := filepath.Join(t.TempDir(), "globex.deal.json")
	for _, c := range []struct {
		args        []string
		target, url string
	}{
		{[]string{"--fetch", "4711", "--account", "77001", "--save", saved}, "globex-erp", "http://globex.example/api/invoices"},
		{[]string{"--deal", saved}, "globex-erp", "http://globex.example/api/invoices"}, // the saved event has the account
		{[]string{"--fetch", "4711", "--account", "62515"}, "acme-erp", "http://acme.example/api/invoices"},
		{[]string{"--fetch", "4711", "--account", "77001", "--target", "acme-erp"}, "acme-erp", "http://acme.example/api/invoices"},
		// As typed by hand: read as the configured account, as a run keys it.
		{[]string{"--fetch", "4711", "--account", " 77001 "}, "globex-erp", "http://globex.example/api/invoices"},
	} {
		r, err := mappingTest(t, append([]string{"--config", cfg, "--connection", "hs"}, c.args...)...)
		if err != nil {
			t.Fatalf("%v: %v (%+v)", c.args, err, r)
		}
		if r.Request == nil {
			t.Fatalf("%v: no request (target %q, error %+v)", c.args, r.Target, r.Error)
		}
		if r.Target != c.target || r.Request.URL != c.url {
			t.Errorf("%v: request to %s of target %q, want %s of target %q", c.args, r.Request.URL, r.Target, c.url, c.target)
		}
	}
	// A deal file written by hand, its account with spaces around it: read
	// as the configured account too, as a run keys it.
	b, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	typed := filepath.Join(t.TempDir(), "typed.deal.json")
	if err := os.WriteFile(typed, bytes.Replace(b, []byte(`"account": "77001"`), []byte(`"account": " 77001 "`), 1), 0o644); err != nil || !bytes.Contains(b, []byte(`"account": "77001"`)) {
		t.Fatalf("writing the typed deal file: %v (saved file %s)", err, b)
	}
	if r, err := mappingTest(t, "--config", cfg, "--connection", "hs", "--deal", typed); err != nil || r.Target != "globex-erp" {
		t.Errorf("a deal file with the account as typed: %v, target %q; want globex-erp", err, r.Target)
	}
	if _, err := mappingTest(t, "--config", cfg, "--connection", "hs", "--fetch", "4711", "--account", "99999"); err == nil ||
		!strings.Contains(err.Error(), `serves no account "99999" (its accounts: 62515, 77001)`) {
		t.Errorf("an account the connection does not serve: %v", err)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// `mapping lint` of a config whose connection uses a broken mapping file
// is a mapping error (exit 1, JSON with the problems), not a config one:
// the connection's "mapping not defined" only follows from the file.
func TestMappingLintOfABrokenFileAConnectionUses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte("name: m\ninvoice:\n  memo: deal.compnay.name\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "dealsync.yaml")
	if err := os.WriteFile(cfg, []byte("mappings:\n  files: [m.yaml]\nconnections:\n  demo:\n    mapping: m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runOut(context.Background(), "mapping", "lint", "--config", cfg, "--json")
	var r struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if exitCode(err) != 1 || json.Unmarshal([]byte(out), &r) != nil || r.OK || !strings.Contains(r.Error, "compnay") {
		t.Fatalf("exit %d, output %q; want exit 1 and JSON naming the problem", exitCode(err), out)
	}
}

// `mapping lint` exits 0 when clean, 1 on the mappings' own problems
// (lint findings) and 2 on a usage or config error: a file or
// mappings.dir that cannot be read, or a config problem beside the
// mapping files' (they were exit 1, as findings).
func TestMappingLintExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, filepath.Join(dir, "good.yaml"), "name: good\ninvoice:\n  memo: deal.name\n")
	bad := writeFile(t, filepath.Join(dir, "bad.yaml"), "name: bad\ninvoice:\n  memo: deal.nmae\n")
	missing := filepath.Join(dir, "missing.yaml")
	cfg := func(yaml string) string { return writeFile(t, filepath.Join(t.TempDir(), "dealsync.yaml"), yaml) }
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"a clean file", []string{good}, 0},
		{"a file that does not compile", []string{good, bad}, 1},
		{"a file that is not there", []string{good, missing}, 2},
		{"a directory for a file", []string{dir}, 2},
		{"one not there beside one that does not compile", []string{bad, missing}, 2},
		{"a config whose mapping file does not compile", []string{"--config", cfg(fmt.Sprintf("mappings: {files: [%q]}\n", bad))}, 1},
		{"a config whose mapping file is not there", []string{"--config", cfg(fmt.Sprintf("mappings: {files: [%q, %q]}\n", good, missing))}, 2},
		{"a config whose mappings.dir is not there", []string{"--config", cfg(fmt.Sprintf("mappings: {dir: %q}\n", filepath.Join(dir, "nodir")))}, 2},
		{"a config whose mappings.reload_interval is wrong", []string{"--config", cfg(fmt.Sprintf("mappings: {files: [%q], reload_interval: -1s}\n", bad))}, 2},
		{"a config with another problem", []string{"--config", cfg(fmt.Sprintf("mappings: {files: [%q]}\nlog: {level: loud}\n", bad))}, 2},
		{"a config that is not there", []string{"--config", filepath.Join(dir, "none.yaml")}, 2},
		{"a config without mapping files", []string{"--config", cfg("log: {level: info}\n")}, 2},
		{"nothing given", nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, asJSON := range []bool{false, true} {
				args := append([]string{"mapping", "lint"}, tc.args...)
				if asJSON {
					args = append(args, "--json")
				}
				out, err := runOut(context.Background(), args...)
				if got := exitCode(err); got != tc.want {
					t.Errorf("%v: exit %d, %v\n%s; want %d", args, got, err, out, tc.want)
				}
				if !asJSON {
					continue
				}
				// With --json, every outcome is a JSON document, the
				// error's message in it and not on stderr; the problems
				// of a config (config_key) or of files given (file).
				var doc struct {
					OK       *bool    `json:"ok"`
					Error    string   `json:"error"`
					Mappings []string `json:"mappings"`
					Problems []struct {
						ConfigKey string `json:"config_key"`
						File      string `json:"file"`
						Message   string `json:"message"`
					} `json:"problems"`
				}
				if jerr := json.Unmarshal([]byte(out), &doc); jerr != nil || doc.OK == nil || *doc.OK != (tc.want == 0) {
					t.Errorf("%v: output %q (%v); want a JSON document, ok %v", args, out, jerr, tc.want == 0)
					return
				}
				if tc.want == 0 {
					if len(doc.Mappings) == 0 || doc.Error != "" {
						t.Errorf("%v: %s; want the mappings and no error", args, out)
					}
					return
				}
				if doc.Error == "" || err.Error() != fmt.Sprintf("exit status %d", tc.want) {
					t.Errorf("%v: %s, error %q; want the error in the JSON alone", args, out, err)
				}
				fromConfig := slices.Contains(tc.args, "--config")
				for _, p := range doc.Problems {
					if fromConfig && p.ConfigKey == "" || !fromConfig && p.File == "" || p.Message == "" {
						t.Errorf("%v: problem %+v; want it at its config key (with --config) or file", args, p)
					}
				}
				if len(doc.Problems) == 0 && (len(tc.args) > 0 && !fromConfig || strings.HasPrefix(doc.Error, "invalid configuration")) {
					t.Errorf("%v: %s; want the problems listed", args, out)
				}
			}
		})
	}
}

// `mapping test --json` of a mapping that does not load (a --file that
// does not compile, a config whose mapping file does not) printed nothing
// on stdout, only the problems on stderr: it reports them as a mapping
// error in its JSON, exit 1, as `mapping lint --json` does. Without
// --json the problems are the error, as before.
func TestMappingTestReportsAMappingThatDoesNotLoadInJSON(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "m.yaml"), "name: m\ninvoice:\n  memo: deal.compnay.name\n")
	cfg := writeFile(t, filepath.Join(dir, "dealsync.yaml"), "mappings:\n  files: [m.yaml]\nconnections:\n  demo:\n    mapping: m\n")
	type report struct {
		Mapping string `json:"mapping"`
		File    string `json:"file"`
		Error   *struct {
			Type     string `json:"type"`
			Message  string `json:"message"`
			Problems []struct {
				File      string `json:"file"`
				Line      int    `json:"line"`
				Key       string `json:"key"`
				ConfigKey string `json:"config_key"`
				Message   string `json:"message"`
			} `json:"problems"`
		} `json:"error"`
	}
	for _, c := range []struct {
		name     string
		args     []string
		problems func(r report) bool
	}{
		{"a --file that is a deal, not a mapping", []string{"--file", "../../examples/closed-won.json", "--deal", "../../examples/closed-won.json"},
			func(r report) bool {
				p := r.Error.Problems
				return r.File == "../../examples/closed-won.json" && len(p) == 4 && p[0].File == "../../examples/closed-won.json" &&
					p[0].Line == 1 && p[0].Key == "name" && p[0].Message == "is required"
			}},
		{"a config whose mapping file does not compile", []string{"--config", cfg, "--mapping", "m", "--deal", "../../examples/closed-won.json"},
			func(r report) bool {
				p := r.Error.Problems
				return r.Mapping == "m" && len(p) == 2 && p[0].ConfigKey == "connections.demo.mapping" &&
					p[1].ConfigKey == "mappings.files[0]" && strings.Contains(p[1].Message, "m.yaml:3:14: invoice.memo: type deal has no field compnay")
			}},
		{"the same with --dir", []string{"--config", cfg, "--mapping", "m", "--dir", "../../examples/mappings/generic-standard"},
			func(r report) bool { return r.Mapping == "m" && len(r.Error.Problems) == 2 }},
	} {
		out, err := runOut(context.Background(), append([]string{"mapping", "test", "--json"}, c.args...)...)
		var r report
		if jerr := json.Unmarshal([]byte(out), &r); jerr != nil || exitCode(err) != 1 {
			t.Errorf("%s: exit %d (%v), output %q (%v); want exit 1 and a JSON report", c.name, exitCode(err), err, out, jerr)
			continue
		}
		if r.Error == nil || r.Error.Type != "mapping" || !strings.HasPrefix(r.Error.Message, "mapping: ") && !strings.HasPrefix(r.Error.Message, "invalid configuration") || !c.problems(r) {
			t.Errorf("%s: report:\n%s", c.name, out)
		}
		// As the other errors of --json: the report, nothing on stderr.
		if err != nil && err.Error() != "exit status 1" {
			t.Errorf("%s: error %q besides the JSON", c.name, err)
		}
		out, err = runOut(context.Background(), append([]string{"mapping", "test"}, c.args...)...)
		if exitCode(err) != 1 || out != "" || err == nil || !strings.Contains(err.Error(), "mapping") {
			t.Errorf("%s without --json: exit %d, error %v, output %q; want exit 1 and the problems as the error", c.name, exitCode(err), err, out)
		}
	}
	// A config error (exit 2) is reported so too, error.type config,
	// and a usage error, error.type usage; without --json they are the
	// error, as before.
	missingFile := writeFile(t, filepath.Join(dir, "missing-file.yaml"), "mappings:\n  files: [gone.yaml]\n")
	for _, c := range []struct {
		name, typ string
		args      []string
		problems  func(r report) bool
	}{
		{"a config that is not there", "config", []string{"--config", filepath.Join(dir, "none.yaml"), "--mapping", "m", "--deal", "../../examples/closed-won.json"},
			func(r report) bool { return strings.Contains(r.Error.Message, "none.yaml") }},
		{"a config whose mapping file is not there", "config", []string{"--config", missingFile, "--mapping", "m", "--deal", "../../examples/closed-won.json"},
			func(r report) bool {
				p := r.Error.Problems
				return r.Mapping == "m" && len(p) == 1 && p[0].ConfigKey == "mappings.files[0]" && strings.Contains(p[0].Message, "gone.yaml: cannot read")
			}},
		{"a deal file that is not there", "usage", []string{"--mapping", "default", "--deal", filepath.Join(dir, "none.json")},
			func(r report) bool {
				return r.Mapping == "default" && len(r.Error.Problems) == 0 && strings.Contains(r.Error.Message, "none.json")
			}},
		{"flags that do not go together", "usage", []string{"--mapping", "default", "--deal", "../../examples/closed-won.json", "--update"},
			func(r report) bool { return r.Error.Message == "--update works with --dir" }},
	} {
		out, err := runOut(context.Background(), append([]string{"mapping", "test", "--json"}, c.args...)...)
		var r report
		if jerr := json.Unmarshal([]byte(out), &r); jerr != nil || exitCode(err) != 2 || err.Error() != "exit status 2" {
			t.Errorf("%s: exit %d (%v), output %q (%v); want exit 2 and a JSON report alone", c.name, exitCode(err), err, out, jerr)
			continue
		}
		if r.Error == nil || r.Error.Type != c.typ || !c.problems(r) {
			t.Errorf("%s: report:\n%s\nwant error.type %s", c.name, out, c.typ)
		}
		out, err = runOut(context.Background(), append([]string{"mapping", "test"}, c.args...)...)
		if exitCode(err) != 2 || out != "" || err == nil || err.Error() == "exit status 2" {
			t.Errorf("%s without --json: exit %d, error %v, output %q; want exit 2 and the error", c.name, exitCode(err), err, out)
		}
	}
}

// The config's own connection and target are the defaults, not the
// `demo` connection and `sandbox` target that the dev defaults add.
func TestMappingTestPicksTheConfigsOwnConnectionAndTarget(t *testing.T) {
	cfg := writeConfig(t, fmt.Sprintf(`
mappings: {files: [%q]}
targets:
  erp: {type: http, base_url: "https://erp.example.com/api"}
connections:
  shop:
    source: {type: generic, secret: whsec_c2hvcC1zZWNyZXQ=}
    target: erp
    trigger: {won_stages: [signed]}
`, mustAbs(t, "../../examples/mappings/generic-standard.yaml")))
	r, err := mappingTest(t, "--config", cfg, "--mapping", "default", "--deal", "../../examples/closed-won.json")
	if err != nil {
		t.Fatalf("mapping test: %v (%+v)", err, r)
	}
	if r.Connection != "shop" || r.NoConnection || r.Triggered || r.Target != "erp" || r.Request == nil || !strings.HasPrefix(r.Request.URL, "https://erp.example.com/api/") {
		t.Errorf("default mapping: connection %q, triggered %v, target %q, request %+v; want shop's won stages (closed_won is not one) and its target erp",
			r.Connection, r.Triggered, r.Target, r.Request)
	}
	// A mapping no connection uses: the config's only target.
	r, err = mappingTest(t, "--config", cfg, "--mapping", "generic-standard", "--deal", "../../examples/closed-won.json")
	if err != nil {
		t.Fatalf("mapping test: %v (%+v)", err, r)
	}
	if r.Target != "erp" || !r.NoConnection || r.Connection != "test" {
		t.Errorf("a mapping no connection uses: target %q, connection %q (no_connection %v), want the config's only target erp and a connection named test said to be none of the config's",
			r.Target, r.Connection, r.NoConnection)
	}
	// --connection demo still reaches the built-in one.
	r, err = mappingTest(t, "--config", cfg, "--mapping", "default", "--connection", "demo", "--deal", "../../examples/closed-won.json")
	if err != nil || r.Connection != "demo" || !r.Triggered || r.Target != "sandbox" {
		t.Errorf("--connection demo: %v, connection %q, triggered %v, target %q", err, r.Connection, r.Triggered, r.Target)
	}
}

// --deal reads a body of the generic source as the intake reads it: a
// field the canonical deal has not is kept in deal.raw (not "unknown
// field"), and a close_date with a time is the moment the mapping's
// time_zone dates. The dry run gives the invoice of a run.
func TestMappingTestOnAGenericSourceBody(t *testing.T) {
	dir := t.TempDir()
	body := `{"event_id":"evt_9","occurred_at":"2026-11-30T23:40:00-05:00",
 "deal":{"id":"D-7","name":"Acme renewal","stage":"closed_won","amount":"480.00","currency":"EUR",
         "close_date":"2026-11-30T23:30:00-05:00","po_number":"PO-4711",
         "company":{"id":"C-1","name":"Acme GmbH","address":{"country":"DE"}},
         "line_items":[{"sku":"PRO-1Y","description":"Pro plan","quantity":"1","unit_price":"480.00"}]}}
`
	src := "name: po\ntime_zone: Asia/Tokyo\ninvoice:\n  memo: 'deal.raw[\"po_number\"]'\n"
	dealFile := writeFile(t, filepath.Join(dir, "body.json"), body)
	mappingFile := writeFile(t, filepath.Join(dir, "po.yaml"), src)

	m, err := mapping.Parse(mappingFile, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	events, err := generic.ParseEvents([]byte(body), "msg_1")
	if err != nil {
		t.Fatal(err)
	}
	want, err := mapping.Apply(m, events[0])
	if err != nil || want.Memo != "PO-4711" || want.IssueDate != model.NewDate(2026, 12, 1) {
		t.Fatalf("a run's invoice: memo %q, issue date %v, %v; the test needs the raw field and the zoned close time", want.Memo, want.IssueDate, err)
	}

	out, err := runOut(context.Background(), "mapping", "test", "--json", "--config", "../../examples/dealsync.yaml", "--file", mappingFile, "--deal", dealFile)
	if err != nil {
		t.Fatalf("mapping test: %v\n%s", err, out)
	}
	var r struct {
		Invoice *model.Invoice `json:"invoice"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Invoice == nil {
		t.Fatalf("--json printed %v:\n%s", err, out)
	}
	got, _ := json.MarshalIndent(r.Invoice, "", "  ")
	wantJSON, _ := json.MarshalIndent(want, "", "  ")
	if string(got) != string(wantJSON) {
		t.Errorf("dry run and run differ:\n%s", mapping.LineDiff(string(wantJSON), string(got)))
	}
}

// A target that refuses to plan the invoice (Xero: a line with neither
// item nor account code) is an error of the invoice, reported in the
// result as a target error, exit 1, not a usage error (exit 2).
func TestMappingTestReportsATargetThatRefusesTheInvoice(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XERO_SECRET", "xero-client-secret")
	cfg := writeConfig(t, fmt.Sprintf(`
targets:
  books:
    type: xero
    tenant_id: 0a5d2d8c-1f1e-4c4b-9d6e-3f2a1b0c9d8e
    client_id: abc
    client_secret: env:XERO_SECRET
    token_file: %s
`, filepath.Join(dir, "xero-token.json")))
	noCodes := writeFile(t, filepath.Join(dir, "nocodes.yaml"), "name: nocodes\ninvoice:\n  lines:\n    item_code: \"\"\n")

	r, err := mappingTest(t, "--config", cfg, "--file", noCodes, "--deal", "../../examples/closed-won.json")
	if exitCode(err) != 1 || r.Error == nil || r.Error.Type != "target" || !strings.HasPrefix(r.Error.Message, "target books: ") ||
		r.Target != "books" || r.Invoice == nil || r.Request != nil {
		t.Fatalf("exit %d (%v), report %+v, error %+v; want exit 1 and a target error in the JSON", exitCode(err), err, r, r.Error)
	}
	out, err := runOut(context.Background(), "mapping", "test", "--config", cfg, "--file", noCodes, "--deal", "../../examples/closed-won.json")
	if exitCode(err) != 1 || !strings.Contains(out, "invoice:") || !strings.Contains(out, "target error") || !strings.Contains(out, "target books: ") {
		t.Fatalf("exit %d (%v), output:\n%s", exitCode(err), err, out)
	}
}

// `mapping lint` with nothing to check is a usage error, not "ok": in CI
// it would pass whatever the mapping files say.
func TestMappingLintWithNothingToCheck(t *testing.T) {
	ctx := context.Background()
	if out, err := runOut(ctx, "mapping", "lint"); exitCode(err) != 2 || !strings.Contains(err.Error(), "nothing to check") {
		t.Errorf("no --config, no files: exit %d, %v, output %q", exitCode(err), err, out)
	}
	noMappings := writeConfig(t, "targets:\n  erp: {type: http, base_url: \"https://erp.example.com/api\"}\n")
	// With --json, said in the JSON.
	if out, err := runOut(ctx, "mapping", "lint", "--config", noMappings, "--json"); exitCode(err) != 2 || !strings.Contains(out, `"error": "nothing to check`) {
		t.Errorf("a config without mapping files: exit %d, %v, output %q", exitCode(err), err, out)
	}
	if out, err := runOut(ctx, "mapping", "lint", "--config", "../../examples/dealsync.yaml"); err != nil || !strings.Contains(out, "ok: 1 mapping(s): generic-standard") {
		t.Errorf("the example config: %v, output %q", err, out)
	}
	if out, err := runOut(ctx, "mapping", "lint", "../../examples/mappings/generic-standard.yaml"); err != nil || !strings.Contains(out, "ok: 1 mapping(s)") {
		t.Errorf("a file: %v, output %q", err, out)
	}
}

// What the CLI prints is for people: & < > as they are, not the
// \u0026 \u003c \u003e json.Marshal writes for HTML, in --json and in the
// text output, in the request body a connector encoded too.
func TestMappingTestPrintsJSONWithoutHTMLEscapes(t *testing.T) {
	args := []string{"mapping", "test", "--config", "../../examples/dealsync.yaml", "--mapping", "generic-standard", "--deal", "../../examples/closed-won.json"}
	for _, extra := range [][]string{nil, {"--json"}} {
		out, err := runOut(context.Background(), append(args, extra...)...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, `"customer_id": "<customer-id>"`) || strings.Contains(out, `\u00`) {
			t.Errorf("%v printed:\n%s", extra, out)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(file, []byte("name: m\ntrigger: is_won(deal.stage) && deal.amount > 1000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := runOut(context.Background(), "mapping", "test", "--json", "--config", "../../examples/dealsync.yaml", "--file", file, "--deal", "../../examples/closed-won.json")
	if !strings.Contains(out, `is_won(deal.stage) && deal.amount > 1000000`) {
		t.Errorf("the skip reason printed:\n%s", out)
	}
}

func TestMappingOutputUnescapesOnlyHTMLEscapes(t *testing.T) {
	for in, want := range map[string]string{
		`{"a": "\u003cx\u003e \u0026 \u003C"}`:  `{"a": "<x> & <"}`,
		`{"a": "\\u003c \u00e9 \n \"\u0026\""}`: `{"a": "\\u003c \u00e9 \n \"&\""}`,
		`"\u002"`:                               `"\u002"`,
	} {
		if got := string(unescapeHTML([]byte(in))); got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
	var buf bytes.Buffer
	writeJSON(&buf, map[string]string{"reason": "a && b -> <c>"})
	if got, want := buf.String(), "{\n  \"reason\": \"a && b -> <c>\"\n}\n"; got != want {
		t.Errorf("writeJSON: %q, want %q", got, want)
	}
}

// `mapping test --dir` judges the trigger with the won stages of the
// connection it picks: a case whose deal is in a connection's own won
// stage ("signed") is one a run starts for, not "no run".
func TestMappingTestDirUsesTheConnectionsWonStages(t *testing.T) {
	dir := t.TempDir()
	deal, err := os.ReadFile("../../examples/closed-won.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := filepath.Join(dir, "cases")
	os.Mkdir(cases, 0o755)
	writeFile(t, filepath.Join(cases, "c.deal.json"), strings.Replace(string(deal), `"closed_won"`, `"signed"`, 1))
	m := writeFile(t, filepath.Join(dir, "m.yaml"), "name: m\n")
	cfg := writeFile(t, filepath.Join(dir, "dealsync.yaml"), "mappings:\n  files: [\""+m+"\"]\nconnections:\n  shop:\n    source: {type: generic, secret: \"whsec_c2hvcC1zZWNyZXQtZm9yLWEtdGVzdC0zMmJ5dGVz\"}\n    target: sandbox\n    mapping: m\n    trigger: {won_stages: [signed]}\n")
	if out, err := runOut(context.Background(), "mapping", "test", "--config", cfg, "--mapping", "m", "--connection", "shop", "--dir", cases, "--update"); err != nil || !strings.Contains(out, "updated c") {
		t.Fatalf("a deal in the connection's won stage: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(cases, "c.invoice.json")); err != nil {
		t.Errorf("no invoice written for the case (a run would start for it): %v", err)
	}
	if _, err := os.Stat(filepath.Join(cases, "c.error.txt")); err == nil {
		t.Error("the case was written as one that starts no run")
	}
}

// When several connections use the mapping and --connection is not given,
// `mapping test` says which it picked and how to pick another, in --deal
// and --dir output alike; a golden case --update writes as one that starts
// no run says so, with the reason, and the summary names the won stages
// the cases were judged by: a deal judged by the wrong connection is not
// kept silently.
func TestMappingTestSaysWhichConnectionItPicked(t *testing.T) {
	dir := t.TempDir()
	deal, err := os.ReadFile("../../examples/closed-won.json")
	if err != nil {
		t.Fatal(err)
	}
	dealFile := writeFile(t, filepath.Join(dir, "deal.json"), string(deal))
	cases := filepath.Join(dir, "cases")
	os.Mkdir(cases, 0o755)
	writeFile(t, filepath.Join(cases, "c.deal.json"), string(deal))
	m := writeFile(t, filepath.Join(dir, "m.yaml"), "name: m\n")
	src := "    source: {type: generic, secret: \"whsec_c2hvcC1zZWNyZXQtZm9yLWEtdGVzdC0zMmJ5dGVz\"}\n    target: sandbox\n    mapping: m\n"
	cfg := writeFile(t, filepath.Join(dir, "dealsync.yaml"), "mappings:\n  files: [\""+m+"\"]\nconnections:\n"+
		"  beta:\n"+src+"    trigger: {won_stages: [closed_won]}\n"+
		"  alpha:\n"+src+"    trigger: {won_stages: [signed]}\n")
	const note = "connection: alpha (the first of the 2 connections using mapping m (alpha, beta): --connection NAME picks another)"
	out, err := runOut(context.Background(), "mapping", "test", "--config", cfg, "--mapping", "m", "--deal", dealFile)
	if err != nil || !strings.Contains(out, note) || !strings.Contains(out, "no run would start") {
		t.Errorf("--deal without --connection: %v\n%s\nwant %q", err, out, note)
	}
	// The invoice and request of a deal no run would start for say so.
	for _, want := range []string{"invoice (as mapped; no run would start for this deal, see trigger above):",
		"request to target sandbox (NOT sent, and no run would send it for this deal; "} {
		if !strings.Contains(out, want) {
			t.Errorf("--deal of a deal no run would start for: %s\nwant %q", out, want)
		}
	}
	out, err = runOut(context.Background(), "mapping", "test", "--config", cfg, "--mapping", "m", "--deal", dealFile, "--connection", "beta")
	if err != nil || !strings.Contains(out, "trigger:    a run would start") || !strings.Contains(out, "\ninvoice:\n") || !strings.Contains(out, "request to target sandbox (NOT sent; customer id") {
		t.Errorf("--deal of a deal a run would start for: %v\n%s", err, out)
	}
	out, err = runOut(context.Background(), "mapping", "test", "--config", cfg, "--mapping", "m", "--dir", cases, "--update")
	if err != nil || !strings.Contains(out, `updated c: no run would start: stage "closed_won" is not a won stage`) ||
		!strings.Contains(out, "won stages of connection alpha: signed)") ||
		!strings.Contains(out, "connection alpha: the first of the 2 connections using mapping m (alpha, beta)") {
		t.Errorf("--dir --update without --connection: %v\n%s", err, out)
	}
	// Named, the connection is taken without a note.
	out, err = runOut(context.Background(), "mapping", "test", "--config", cfg, "--mapping", "m", "--connection", "beta", "--deal", dealFile)
	if err != nil || !strings.Contains(out, "connection: beta\n") || !strings.Contains(out, "a run would start") {
		t.Errorf("--connection beta: %v\n%s", err, out)
	}
	// dev's built-in demo connection (default mapping) is not a choice
	// beside the file's own one.
	one := writeFile(t, filepath.Join(dir, "one.yaml"), "connections:\n  shop:\n"+strings.Replace(src, "    mapping: m\n", "", 1))
	out, err = runOut(context.Background(), "mapping", "test", "--config", one, "--mapping", "default", "--deal", dealFile)
	if err != nil || !strings.Contains(out, "connection: shop\n") {
		t.Errorf("one connection of the file's on the default mapping: %v\n%s\nwant it taken without a note", err, out)
	}
}

// A validation error of the mapped invoice (its lines fall short of the
// deal's amount) shows the invoice as mapped, in text and --json, so that
// the lines that add up to the wrong total can be seen; no request, as a
// run stops before the target.
func TestMappingTestShowsTheInvoiceAValidationRefused(t *testing.T) {
	dir := t.TempDir()
	deal, err := os.ReadFile("../../examples/closed-won.json")
	if err != nil {
		t.Fatal(err)
	}
	short := strings.Replace(string(deal), `"amount": "12000.00"`, `"amount": "13000.00"`, 1)
	if short == string(deal) {
		t.Fatal("the example deal's amount changed: fix the test")
	}
	dealFile := writeFile(t, filepath.Join(dir, "deal.json"), short)
	m := writeFile(t, filepath.Join(dir, "m.yaml"), "name: m\n")
	out, err := runOut(context.Background(), "mapping", "test", "--file", m, "--deal", dealFile)
	if exitCode(err) != 1 || !strings.Contains(out, "validation error") || !strings.Contains(out, "invoice as mapped (refused above; a run stops here):") ||
		!strings.Contains(out, `"item_code": "PRO-1Y"`) || strings.Contains(out, "request to target") {
		t.Errorf("exit %d:\n%s\nwant the validation error, then the invoice as mapped, and no request", exitCode(err), out)
	}
	out, _ = runOut(context.Background(), "mapping", "test", "--file", m, "--deal", dealFile, "--json")
	var r struct {
		Invoice *struct{ Lines []any } `json:"invoice"`
		Error   *struct{ Type string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Error == nil || r.Error.Type != "validation" || r.Invoice == nil || len(r.Invoice.Lines) != 1 {
		t.Errorf("--json: %v\n%s\nwant error.type validation and the invoice", err, out)
	}
}

// mapping lint and mapping test on a deal file send nothing: they run
// where the config's secrets are not at hand (a CI job), saying what they
// could not do without them; --fetch, which reads the CRM, still needs
// them.
func TestMappingCommandsRunWithoutTheSecrets(t *testing.T) {
	for _, name := range []string{"DEALSYNC_TEST_UNSET_ERP_TOKEN", "DEALSYNC_TEST_UNSET_SHOP_SECRET", "DEALSYNC_TEST_UNSET_HS_TOKEN"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	t.Setenv("HS_SECRET", "hubspot-client-secret")
	cfg := writeConfig(t, fmt.Sprintf(`
mappings: {files: [%q]}
targets:
  erp: {type: http, base_url: "https://erp.example.com/api", auth_value: env:DEALSYNC_TEST_UNSET_ERP_TOKEN}
connections:
  shop:
    source: {type: generic, secret: env:DEALSYNC_TEST_UNSET_SHOP_SECRET}
    target: erp
    mapping: generic-standard
  hs:
    target: sandbox
    mapping: generic-standard
    source:
      type: hubspot
      client_secret: env:HS_SECRET
      accounts:
        "62515": {access_token: env:DEALSYNC_TEST_UNSET_HS_TOKEN}
`, mustAbs(t, "../../examples/mappings/generic-standard.yaml")))

	if out, err := runOut(context.Background(), "mapping", "lint", "--config", cfg); err != nil || !strings.Contains(out, "generic-standard") {
		t.Errorf("mapping lint --config without the secrets: %v\n%s", err, out)
	}

	out, err := runOut(context.Background(), "mapping", "test", "--json", "--config", cfg, "--connection", "shop", "--deal", "../../examples/closed-won.json")
	if err != nil {
		t.Fatalf("mapping test --deal without the secrets: %v\n%s", err, out)
	}
	var r struct {
		mappingTestReport
		NotBuilt          string `json:"connection_not_built"`
		RequestNotPlanned string `json:"request_not_planned"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Triggered || r.Invoice == nil || r.Invoice.Reference != "DS-D-1001" || r.Target != "erp" || r.Request != nil {
		t.Errorf("report %+v; want the invoice of D-1001 for target erp, without a request", r)
	}
	if !strings.Contains(r.RequestNotPlanned, "target erp") || !strings.Contains(r.RequestNotPlanned, "DEALSYNC_TEST_UNSET_ERP_TOKEN") {
		t.Errorf("request_not_planned %q; want it to name the target and its secret", r.RequestNotPlanned)
	}
	if !strings.Contains(r.NotBuilt, "connection shop") || !strings.Contains(r.NotBuilt, "DEALSYNC_TEST_UNSET_SHOP_SECRET") {
		t.Errorf("connection_not_built %q; want it to name the connection and the secret", r.NotBuilt)
	}
	// The connections' errors in the order of their names, whatever the
	// map's (a CI job diffs the --json).
	if hs, shop := strings.Index(r.NotBuilt, "connections.hs."), strings.Index(r.NotBuilt, "connections.shop."); hs < 0 || shop < hs {
		t.Errorf("connection_not_built %q; want connections.hs's error before connections.shop's", r.NotBuilt)
	}
	// The text output says both.
	text, err := runOut(context.Background(), "mapping", "test", "--config", cfg, "--connection", "shop", "--deal", "../../examples/closed-won.json")
	if err != nil || !strings.Contains(text, "note:       connection shop was not built here") || !strings.Contains(text, "(no request to show: target erp cannot be built here") {
		t.Errorf("text output: %v\n%s", err, text)
	}

	// A HubSpot connection whose token is not at hand: its trigger is still
	// judged on the webhook of the deal (its source type says how one
	// looks), for a --deal and for golden cases alike: a trigger on the
	// amount, which HubSpot's webhooks do not carry, starts no run.
	dir := t.TempDir()
	amountFile := amountTriggerMapping(t, dir)
	thinCfg := writeConfig(t, fmt.Sprintf(`
mappings: {files: [%q]}
connections:
  hs:
    target: sandbox
    mapping: amount-trigger
    trigger: {won_stages: [closedwon]}
    source:
      type: hubspot
      client_secret: env:HS_SECRET
      accounts:
        "62515": {access_token: env:DEALSYNC_TEST_UNSET_HS_TOKEN}
`, amountFile))
	deal := writeFile(t, filepath.Join(dir, "won.deal.json"), `{"event_id":"e1","account":"62515","deal":{"id":"4711","stage":"closedwon","amount":"480.00","currency":"EUR","close_date":"2026-11-20","company":{"id":"5471","name":"Renew GmbH"}}}`)
	out, err = runOut(context.Background(), "mapping", "test", "--json", "--config", thinCfg, "--connection", "hs", "--deal", deal)
	var thin mappingTestReport
	if jerr := json.Unmarshal([]byte(out), &thin); err != nil || jerr != nil || !thin.ThinTrigger || thin.Triggered {
		t.Errorf("--deal of a HubSpot connection without its token: %v, %v, %+v; want it judged as on a thin webhook: no run", err, jerr, thin)
	}
	golden := t.TempDir()
	writeFile(t, filepath.Join(golden, "won.deal.json"), `{"event_id":"e1","account":"62515","deal":{"id":"4711","stage":"closedwon","amount":"480.00","currency":"EUR","close_date":"2026-11-20","company":{"id":"5471","name":"Renew GmbH"}}}`)
	if text, err := runOut(context.Background(), "mapping", "test", "--config", thinCfg, "--connection", "hs", "--dir", golden, "--update"); err != nil ||
		!strings.Contains(text, "updated won: no run would start") || !strings.Contains(text, "each trigger judged as on a webhook of the deal") {
		t.Errorf("--dir --update of a HubSpot connection without its token: %v\n%s\nwant the case written as starting no run, judged as on a webhook", err, text)
	}

	// --fetch reads the CRM: a secret missing is a config error naming it.
	_, err = runOut(context.Background(), "mapping", "test", "--config", cfg, "--connection", "hs", "--fetch", "4711")
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "DEALSYNC_TEST_UNSET_HS_TOKEN") {
		t.Errorf("--fetch without the CRM's token: exit %d, %v; want 2 naming the variable", exitCode(err), err)
	}
}

// amountTriggerMapping writes into dir the example mapping with a trigger
// that reads the deal's amount (amount-trigger), which a thin CRM's
// webhooks do not carry, and returns its path.
func amountTriggerMapping(t *testing.T, dir string) string {
	t.Helper()
	src, err := os.ReadFile("../../examples/mappings/generic-standard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	amountTrigger := strings.Replace(strings.Replace(string(src), "name: generic-standard", "name: amount-trigger", 1),
		"trigger: is_won(deal.stage) && !is_won(deal.previous_stage)", "trigger: is_won(deal.stage) && deal.amount > 0", 1)
	if !strings.Contains(amountTrigger, "deal.amount > 0") {
		t.Fatal("the example's trigger line changed")
	}
	return writeFile(t, filepath.Join(dir, "amount-trigger.yaml"), amountTrigger)
}

// Line items lines.skip leaves out are listed, by index and with the
// skip rule, in the text and in --json, for a deal and for each golden
// case (whose files are unchanged by it): the invoice does not show them,
// and an amount check that its lines fall short does not say why.
func TestMappingTestListsTheSkippedLines(t *testing.T) {
	dir := t.TempDir()
	deal, err := os.ReadFile("../../examples/closed-won.json")
	if err != nil {
		t.Fatal(err)
	}
	free := `{"sku": "PRO-1Y", "description": "Pro plan, 1 year", "quantity": "1", "unit_price": "12000.00"},
      {"sku": "TRIAL", "description": "Trial month", "quantity": "0", "unit_price": "50.00"}`
	two := strings.Replace(string(deal), `{"sku": "PRO-1Y", "description": "Pro plan, 1 year", "quantity": "1", "unit_price": "12000.00"}`, free, 1)
	if two == string(deal) {
		t.Fatal("the example deal's line changed: fix the test")
	}
	dealFile := writeFile(t, filepath.Join(dir, "deal.json"), two)
	m := writeFile(t, filepath.Join(dir, "m.yaml"), "name: m\ninvoice:\n  lines:\n    skip: item.quantity == 0\n")
	const said = "lines[1] (sku TRIAL): lines.skip is true (item.quantity == 0)"
	out, err := runOut(context.Background(), "mapping", "test", "--file", m, "--deal", dealFile)
	if err != nil || !strings.Contains(out, "skipped:    "+said+"\n") {
		t.Errorf("%v:\n%s\nwant the skipped line listed", err, out)
	}
	out, _ = runOut(context.Background(), "mapping", "test", "--file", m, "--deal", dealFile, "--json")
	var r struct {
		SkippedLines []mapping.SkippedLine `json:"skipped_lines"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.SkippedLines) != 1 || r.SkippedLines[0].Index != 1 || r.SkippedLines[0].SKU != "TRIAL" ||
		r.SkippedLines[0].Reason != "lines.skip is true (item.quantity == 0)" {
		t.Errorf("--json: %v\n%s\nwant skipped_lines with lines[1]", err, out)
	}

	cases := filepath.Join(dir, "cases")
	if err := os.MkdirAll(cases, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cases, "trial.deal.json"), two)
	writeFile(t, filepath.Join(cases, "plain.deal.json"), string(deal))
	if out, err := runOut(context.Background(), "mapping", "test", "--file", m, "--dir", cases, "--update"); err != nil {
		t.Fatalf("--update: %v\n%s", err, out)
	}
	golden, err := os.ReadFile(filepath.Join(cases, "trial.invoice.json"))
	if err != nil || strings.Contains(string(golden), "TRIAL") || strings.Contains(string(golden), "skip") {
		t.Fatalf("the golden invoice: %v\n%s\nwant the invoice alone, without the trial line", err, golden)
	}
	out, err = runOut(context.Background(), "mapping", "test", "--file", m, "--dir", cases)
	if err != nil || !strings.Contains(out, "ok      plain\nok      trial\n    skipped "+said+"\n") {
		t.Errorf("%v:\n%s\nwant the trial case's skipped line under it, and none under plain", err, out)
	}
	out, _ = runOut(context.Background(), "mapping", "test", "--file", m, "--dir", cases, "--json")
	var g struct {
		Cases []mapping.GoldenResult `json:"cases"`
	}
	if err := json.Unmarshal([]byte(out), &g); err != nil || len(g.Cases) != 2 || len(g.Cases[0].SkippedLines) != 0 ||
		len(g.Cases[1].SkippedLines) != 1 || g.Cases[1].SkippedLines[0].String() != said {
		t.Errorf("--dir --json: %v\n%s\nwant skipped_lines on the trial case", err, out)
	}
}

// --update says which file it deleted beside one it kept as it was: it
// said "unchanged" while it deleted a stale invoice of a case that fails.
func TestMappingTestUpdateSaysWhatItDeleted(t *testing.T) {
	dir := t.TempDir()
	m := filepath.Join(dir, "m.yaml")
	writeFile(t, m, "name: m\ninvoice:\n  reference: 'string(dec(deal.id))'\n")
	cases := filepath.Join(dir, "cases")
	if err := os.MkdirAll(cases, 0o755); err != nil {
		t.Fatal(err)
	}
	deal, err := os.ReadFile("../../examples/closed-won.json")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cases, "c.deal.json"), string(deal))
	if out, err := runOut(context.Background(), "mapping", "test", "--file", m, "--dir", cases, "--update"); err != nil || !strings.Contains(out, "updated c\n") {
		t.Fatalf("--update: %v\n%s", err, out)
	}
	writeFile(t, filepath.Join(cases, "c.invoice.json"), "{}\n")
	out, err := runOut(context.Background(), "mapping", "test", "--file", m, "--dir", cases, "--update")
	if err != nil || !strings.Contains(out, "updated c (c.error.txt unchanged; deleted c.invoice.json, which the case no longer gives)\n") {
		t.Errorf("--update beside a stale invoice: %v\n%s", err, out)
	}
}

// Without --config the connections are dev's built-in ones: a mapping
// file none of them uses is said to be so, not "none of the config's"
// (the user gave none); with --config, the config's. --json is the same
// either way.
func TestMappingTestOfAFileWithoutConfigSaysNoConfigWasGiven(t *testing.T) {
	dir := t.TempDir()
	m := writeFile(t, filepath.Join(dir, "m.yaml"), "name: m\n")
	const deal = "../../examples/closed-won.json"
	const builtIn = `connection: none of dev's built-in connections uses this mapping (no --config given): evaluated as one named "test" with the default won stages`
	out, err := runOut(context.Background(), "mapping", "test", "--file", m, "--deal", deal)
	if err != nil || !strings.Contains(out, builtIn) || strings.Contains(out, "the config's") {
		t.Errorf("--file without --config: %v\n%s\nwant %q", err, out, builtIn)
	}
	cfg := writeFile(t, filepath.Join(dir, "dealsync.yaml"), "connections:\n  shop:\n    source: {type: generic, secret: \"whsec_c2hvcC1zZWNyZXQtZm9yLWEtdGVzdC0zMmJ5dGVz\"}\n    target: sandbox\n")
	out, err = runOut(context.Background(), "mapping", "test", "--config", cfg, "--file", m, "--deal", deal)
	if want := "connection: none of the config's connections uses this mapping: evaluated as one named \"test\""; err != nil || !strings.Contains(out, want) {
		t.Errorf("--file with --config: %v\n%s\nwant %q", err, out, want)
	}
	if r, err := mappingTest(t, "--file", m, "--deal", deal); err != nil || !r.NoConnection || r.Connection != "test" {
		t.Errorf("--json without --config: %v, no_connection %v, connection %q", err, r.NoConnection, r.Connection)
	}
}
