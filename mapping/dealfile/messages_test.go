package dealfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/internal/sharedfiles"
	"github.com/dealsync/dealsync/mapping/dealfile"
)

func readBody(t *testing.T, body string) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.deal.json")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := dealfile.Read(path)
	if err == nil {
		t.Fatalf("%s was read", body)
	}
	return err
}

// A value that its own decoding refuses (a date, a decimal, a moment) is
// named in dealsync's event shape as the generic source's parser names
// it, and a date's message says both forms a date is accepted in.
func TestReadNamesTheFieldOfABadValue(t *testing.T) {
	const dateMsg = `"14/01/2026" is not a date (want YYYY-MM-DD, or an RFC 3339 timestamp such as 2026-01-14T09:30:00Z)`
	cases := []struct{ body, want string }{
		{`{"account":"a","deal":{"id":"D","stage":"won","close_date":"14/01/2026"}}`, ": deal.close_date: " + dateMsg},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","close_date":"14/01/2026"}}`, ": deal.close_date: " + dateMsg},
		{`{"account":"a","deal":{"id":"D","stage":"won","line_items":[{"sku":"A"},{"sku":"B","quantity":"two"}]}}`, ": deal.line_items[1].quantity: "},
		{`{"thin":true,"occurred_at":"yesterday","deal":{"id":"D","stage":"won"}}`, ": occurred_at: "},
	}
	for _, c := range cases {
		if err := readBody(t, c.body); !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\ngot  %v\nwant one containing %q", c.body, err, c.want)
		}
	}
	// encoding/json names a value of the wrong JSON type itself: not twice.
	err := readBody(t, "{\"account\":\"a\",\n\"deal\":{\"id\":7,\"stage\":\"won\"}}")
	if strings.Contains(err.Error(), "deal.id: json:") || !strings.Contains(err.Error(), "deal.id") || !strings.Contains(err.Error(), "line 2, column 14") {
		t.Errorf("a number for deal.id: %v", err)
	}
}

// A CRM's own webhook body is no deal event: Read says which it is and
// how to test the mapping on the deal it names.
func TestReadSaysWhatToDoWithAVendorWebhook(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"pipedrive v2", `{"data":{"id":178,"title":"KIPFFLOW","value":0},"previous":null,
			"meta":{"action":"create","company_id":"15747575","entity_id":"178","entity":"deal","id":"8818e477","version":"2.0"}}`,
			": a Pipedrive webhook body (meta.version 2.0), not a deal event; test the mapping on the deal as a run reads it from the CRM, and save it as a deal file: " +
				"dealsync mapping test --connection NAME --fetch 178 --save FILE (with --account 15747575 when the connection serves several companies)"},
		{"pipedrive v1", `{"v":1,"current":{"id":42},"previous":{"id":42},"meta":{"v":1,"action":"updated","object":"deal","id":42,"company_id":7}}`,
			"--fetch 42 --save FILE (with --account 7 when"},
		{"hubspot", `[{"objectId":697680835,"propertyName":"dealstage","portalId":5799819,"subscriptionType":"deal.propertyChange","eventId":1}]`,
			": a HubSpot webhook body (events with portalId and subscriptionType), not a deal event; test the mapping on the deal as a run reads it from the CRM, and save it as a deal file: " +
				"dealsync mapping test --connection NAME --fetch 697680835 --save FILE (with --account 5799819 when the connection serves several portals)"},
		{"hubspot, no deal", `[{"objectId":123,"portalId":62515,"subscriptionType":"contact.creation"}]`,
			"--fetch DEAL_ID --save FILE (with --account 62515 when"},
		{"salesforce", `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` +
			`<notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>00D5w000004qGTOEA2</OrganizationId>` +
			`<Notification><Id>04l5w</Id><sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><sf:Id>0065w000023STAmAAO</sf:Id></sObject></Notification>` +
			`</notifications></soapenv:Body></soapenv:Envelope>`,
			": a Salesforce outbound message (SOAP), not a deal event; test the mapping on the deal as a run reads it from the CRM, and save it as a deal file: " +
				"dealsync mapping test --connection NAME --fetch 0065w000023STAmAAO --save FILE (with --account 00D5w000004qGTOEA2 when the connection serves several orgs)"},
		{"salesforce, unreadable", `<soapenv:Envelope xmlns:soapenv="x"><notifications xmlns="http://soap.sforce.com/2005/09/outbound">`,
			"--fetch OPPORTUNITY_ID --save FILE"},
	}
	for _, c := range cases {
		err := readBody(t, c.body)
		if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "generic source") {
			t.Errorf("%s:\ngot  %v\nwant one containing %q", c.name, err, c.want)
		}
	}
	// A generic body the source refuses is still said to be one.
	if err := readBody(t, `{"event_id":"e","deal":{"id":"D"}}`); !strings.Contains(err.Error(), "not a deal event of the generic source: malformed payload: deal.stage: is required") {
		t.Errorf("a generic body without a stage: %v", err)
	}
}

// The captured Salesforce outbound message of ../shared/webhooks (skipped
// without it) names its opportunity and org.
func TestReadSaysWhatToDoWithTheCapturedSalesforceMessage(t *testing.T) {
	err := readBody(t, string(sharedfiles.Webhook(t, "salesforce-outbound-opportunity.captured.xml")))
	if err == nil || !strings.Contains(err.Error(), "a Salesforce outbound message (SOAP)") ||
		!strings.Contains(err.Error(), "--fetch 0065w000023STAmAAO --save FILE (with --account 00D5w000004qGTOEA2 when") {
		t.Errorf("got %v", err)
	}
}

// A deal file that writes item.has_tax_rate (a mapping's variable, not a
// field of the deal) is told to leave it out and how tax_rate says it.
func TestReadSaysHasTaxRateIsNotWritten(t *testing.T) {
	err := readBody(t, `{"event_id":"e","account":"1","deal":{"id":"D","stage":"won","line_items":[{"sku":"A","quantity":"1","unit_price":"10","tax_rate":"19","has_tax_rate":true}]}}`)
	if !strings.Contains(err.Error(), `unknown field "has_tax_rate"`) || !strings.Contains(err.Error(), "it is true where the line item has a tax_rate, so leave it out") {
		t.Errorf("got %v", err)
	}
}

// A deal file with a byte order mark (some editors write one) is read as
// the same file without it: one of dealsync's event shape was read as a
// generic body, its account and raw fields lost.
func TestReadPastAByteOrderMark(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.deal.json")
	body := `{"account":"6083095","deal":{"id":"D","stage":"won","raw":{"po":"PO-1"}}}`
	if err := os.WriteFile(path, []byte("\xef\xbb\xbf"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	ev, err := dealfile.Read(path)
	if err != nil || ev.Account != "6083095" || string(ev.Deal.Raw["po"]) != `"PO-1"` {
		t.Fatalf("%+v, %v; want the event shape read, with its account and raw field", ev, err)
	}
}

// A run's input, as the Web UI shows and copies it on the run's page,
// which a failed run's message invites one to save as the deal file, is
// no deal event: Read says to save its event alone, or, for a CRM's thin
// webhook, to read the deal from the CRM.
func TestReadSaysWhatToDoWithARunsInput(t *testing.T) {
	generic := `{"connection":"demo","event":{"event_id":"evt_ch","occurred_at":"2026-11-20T10:00:00Z",
		"deal":{"id":"D-CH","stage":"closed_won","amount":"12000","raw":{"id":"D-CH"}}},
		"retry":{"initial_interval":1000000000},"mapping":"generic-standard","mapping_hash":"35f00bb5fa22"}`
	err := readBody(t, generic)
	if want := `: a run's input (connection, event, …, as the Web UI shows it), not a deal event; its "event" is the deal event the run started with: save that object alone as the deal file (jq .event INPUT.json > FILE)`; !strings.HasSuffix(err.Error(), want) {
		t.Errorf("a generic run's input:\ngot  %v\nwant one ending %q", err, want)
	}
	thin := `{"connection":"hubspot-eu","event":{"event_id":"1","account":"62515","thin":true,"deal":{"id":"1234567890","stage":"closedwon"}},"won_stages":["closedwon"]}`
	err = readBody(t, thin)
	if want := "; its event is the CRM's thin webhook, not the deal: read the deal from the CRM as the run did, and save it as a deal file: dealsync mapping test --connection hubspot-eu --fetch 1234567890 --save FILE --account 62515"; !strings.HasSuffix(err.Error(), want) {
		t.Errorf("a thin run's input:\ngot  %v\nwant one ending %q", err, want)
	}
	// A body whose "event" holds no deal is no run's input: the generic
	// source's own message stands.
	if err := readBody(t, `{"event_id":"e","event":{"type":"deal.won"}}`); strings.Contains(err.Error(), "run's input") || !strings.Contains(err.Error(), "deal: is required") {
		t.Errorf("an event field without a deal: %v", err)
	}
	// A body of the generic source that merely has an "event" field is
	// read as the body it is.
	path := filepath.Join(t.TempDir(), "x.deal.json")
	if err := os.WriteFile(path, []byte(`{"event_id":"e","event":{"deal":{"id":"X"}},"deal":{"id":"D","stage":"won"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if ev, err := dealfile.Read(path); err != nil || ev.Deal.ID != "D" {
		t.Errorf("a body with an event field: %+v, %v", ev, err)
	}
	// Such a body that does not read says its own error, not a run's
	// input's.
	if err := readBody(t, `{"event_id":"e","event":{"deal":{"id":"X"}},"deal":{"id":"D","stage":"won","amount":"abc"}}`); strings.Contains(err.Error(), "run's input") ||
		!strings.Contains(err.Error(), "amount") {
		t.Errorf("a deal event with an event field, its amount wrong: %v", err)
	}
}
