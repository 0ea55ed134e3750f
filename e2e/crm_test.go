package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/backfill"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/hubspot"
	"github.com/dealsync/dealsync/connectors/hubspot/hubspotfake"
	"github.com/dealsync/dealsync/connectors/pipedrive/pipedrivefake"
	"github.com/dealsync/dealsync/connectors/salesforce/salesforcefake"
	"github.com/dealsync/dealsync/connectors/sandbox"
	"github.com/dealsync/dealsync/rerun"
	"github.com/dealsync/dealsync/workflows"
)

// The CRM sources end to end: vendor-signed thin events into the intake,
// one InvoiceDeal run per deal on the embedded Temporal server, the deal
// read from a fake CRM API, the invoice created in the sandbox ERP and
// written back to the fake CRM.

// crmConfig writes a YAML config with one connection and returns its path.
func crmConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dealsync.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startCRMStack starts a stack with the config. A file store: the
// in-memory one cannot be started twice in one process (see erp_test.go).
func startCRMStack(t *testing.T, yaml string) *stack {
	return startStack(t, stackOptions{configFile: crmConfig(t, yaml), dataDir: t.TempDir()})
}

// post sends one webhook delivery and returns the status and body.
func post(t *testing.T, url, contentType string, header http.Header, body []byte) (int, []byte) {
	t.Helper()
	status, b, err := tryPost(url, contentType, header, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, b
}

// tryPost is post for a goroutine other than the test's (a fake's
// handler), where a failure cannot end the test: it returns the error.
func tryPost(url, contentType string, header http.Header, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, nil
}

// jsonReply decodes the intake's JSON results of a 2xx answer.
func jsonReply(t *testing.T, status int, body []byte) connectors.Reply {
	t.Helper()
	if status/100 != 2 {
		t.Fatalf("delivery answered %d: %s", status, body)
	}
	var r connectors.Reply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("reply is not the JSON results shape: %v\n%s", err, body)
	}
	return r
}

// completed waits for the deal's run to complete successfully.
func (s *stack) completed(t *testing.T, connection, account, dealID string) workflows.InvoiceDealResult {
	t.Helper()
	var out workflows.InvoiceDealResult
	if err := s.waitRun(t, workflows.DealWorkflowID(connection, account, dealID), &out); err != nil {
		t.Fatalf("run of deal %s: %v", dealID, err)
	}
	return out
}

// invoice returns the sandbox ERP's one invoice for a deal, failing the
// test unless there is exactly one.
func invoiceIn(t *testing.T, sb *sandbox.Server, reference string) sandbox.Invoice {
	t.Helper()
	var found []sandbox.Invoice
	for _, inv := range sb.Invoices() {
		if inv.Reference == reference {
			found = append(found, inv)
		}
	}
	if len(found) != 1 {
		t.Fatalf("ERP has %d invoices for deal %s, want 1", len(found), reference)
	}
	return found[0]
}

// checkDelivered: every event the intake reported as handed to a run
// (started or signalled) is among the run's events, exactly once.
func checkDelivered(t *testing.T, results []connectors.EventResult, runs map[string]workflows.InvoiceDealResult) {
	t.Helper()
	for _, r := range results {
		if r.Skipped != "" || r.WorkflowID == "" {
			continue
		}
		out, ok := runs[r.DealID]
		if !ok {
			continue
		}
		if n := countOf(out.Events, r.EventID); n != 1 {
			t.Errorf("event %s of deal %s: %d times among the run's events %v, want 1", r.EventID, r.DealID, n, out.Events)
		}
	}
}

// noRunFor fails the test when a run exists for the deal: one of the
// workflow IDs its runs would have (read directly: consistent), or any run
// with its DealId search attribute, whatever the account (the run list,
// which lags a start by tens of milliseconds here, so it is watched for
// half a second: a check that can only add to the first).
func (s *stack) noRunFor(t *testing.T, dealID string, workflowIDs ...string) {
	t.Helper()
	if len(workflowIDs) == 0 {
		t.Fatal("noRunFor needs the workflow IDs the deal's runs would have")
	}
	for _, id := range workflowIDs {
		if s.runExists(t, id) {
			t.Fatalf("run %s exists for deal %s, want none", id, dealID)
		}
	}
	query := `DealId = "` + dealID + `"`
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := s.Client.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{Query: query})
		if err != nil {
			t.Fatalf("count %q: %v", query, err)
		}
		if n := resp.GetCount(); n != 0 {
			t.Fatalf("%d runs exist for deal %s, want none", n, dealID)
		}
	}
}

func countOf(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

// ---- HubSpot ----

const (
	hsSecret    = "hs-app-client-secret-e2e"
	hsPortal    = "7000001"
	hsPortalB   = "7000002" // routed to the second ERP
	hsPublicURL = "https://hooks.example.com"
)

type hsEvent struct {
	id, deal, portal, prop, value string
	at                            time.Time
	typ                           string // default deal.propertyChange
}

func hsBody(events ...hsEvent) []byte {
	var out []map[string]any
	for _, e := range events {
		portal := e.portal
		if portal == "" {
			portal = hsPortal
		}
		m := map[string]any{
			"eventId": json.Number(e.id), "subscriptionId": 2881778, "portalId": json.Number(portal), "appId": 54321,
			"occurredAt": e.at.UnixMilli(), "subscriptionType": "deal.propertyChange", "attemptNumber": 0,
			"objectId": json.Number(e.deal), "changeSource": "CRM_UI", "sourceId": "userId:1234567",
		}
		if e.typ != "" {
			m["subscriptionType"] = e.typ
		} else {
			m["propertyName"], m["propertyValue"] = e.prop, e.value
		}
		out = append(out, m)
	}
	b, err := json.Marshal(out)
	if err != nil {
		panic(err)
	}
	return b
}

func stageWon(id, deal string, at time.Time) hsEvent {
	return hsEvent{id: id, deal: deal, prop: "dealstage", value: "closedwon", at: at}
}

// sendHubSpot posts a delivery signed as HubSpot does (v3: method, the
// public URI it called, body and millisecond timestamp).
func sendHubSpot(t *testing.T, s *stack, secret, uri string, body []byte) (int, []byte) {
	t.Helper()
	status, b, err := trySendHubSpot(s, secret, uri, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, b
}

// trySendHubSpot is sendHubSpot for a goroutine other than the test's.
func trySendHubSpot(s *stack, secret, uri string, body []byte) (int, []byte, error) {
	if uri == "" {
		uri = hsPublicURL + "/webhooks/hs"
	}
	req, _ := http.NewRequest(http.MethodPost, s.IntakeURL+"/webhooks/hs", nil)
	hubspot.SignRequestV3(req, secret, uri, body, time.Now())
	return tryPost(s.IntakeURL+"/webhooks/hs", "application/json", req.Header, body)
}

// hsOK sends a signed delivery that must be accepted.
func hsOK(t *testing.T, s *stack, body []byte) connectors.Reply {
	t.Helper()
	st, b := sendHubSpot(t, s, hsSecret, "", body)
	return jsonReply(t, st, b)
}

func seedHubSpotDeal(f *hubspotfake.Server, portal, deal, amount string) {
	f.PutDeal(portal, hubspotfake.Deal{ID: deal,
		Properties: hubspotfake.Props("dealname", "Deal "+deal, "dealstage", "closedwon", "amount", amount,
			"closedate", "2026-11-20T10:00:00.000Z", "deal_currency_code", "EUR", "pipeline", "default"),
		Companies: []hubspotfake.Association{{ID: "5" + deal, Type: "deal_to_company"}},
		LineItems: []hubspotfake.Association{{ID: "9" + deal, Type: "deal_to_line_item"}},
	})
	f.PutCompany(portal, hubspotfake.Object{ID: "5" + deal, Properties: hubspotfake.Props("name", "Company "+deal,
		"billing_email", "ap@"+deal+".example", "city", "Berlin", "country", "DE")})
	f.PutLineItem(portal, hubspotfake.Object{ID: "9" + deal, Properties: hubspotfake.Props("name", "Subscription",
		"hs_sku", "SUB-1", "quantity", "1", "price", amount)})
}

func TestCRMHubSpot(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	f := hubspotfake.New()
	t.Cleanup(f.Close)
	f.AddPortal(hsPortal, "pat-na1-e2e-1")
	f.AddPortal(hsPortalB, "pat-na1-e2e-2")
	erpB := sandbox.New(sandbox.Options{})
	erpBSrv := httptest.NewServer(erpB.Handler())
	t.Cleanup(erpBSrv.Close)

	s := startCRMStack(t, fmt.Sprintf(`
intake:
  public_base_url: %s
targets:
  erp-b:
    type: http
    base_url: %s
connections:
  hs:
    target: sandbox
    settle_time: 2s
    linger: 1s
    account_targets:
      "%s": erp-b
    trigger:
      won_stages: [closedwon]
    source:
      type: hubspot
      client_secret: %s
      base_url: %s
      fetch:
        company_email_property: billing_email
      accounts:
        "%s":
          access_token: pat-na1-e2e-1
        "%s":
          access_token: pat-na1-e2e-2
`, hsPublicURL, erpBSrv.URL, hsPortalB, hsSecret, f.URL, hsPortal, hsPortalB))
	t0 := time.Now().Add(-time.Minute)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

	t.Run("batch of 3 deals with duplicates and out-of-order events", func(t *testing.T) {
		for _, d := range []string{"101", "102", "103"} {
			seedHubSpotDeal(f, hsPortal, d, "1000."+d[2:])
		}
		// HubSpot batches events of several deals; 11 appears twice, 102's
		// creation (older) arrives after its stage change, 101's amount
		// change (older than its stage change) comes in a later delivery.
		first := hsBody(stageWon("11", "101", at(10)), stageWon("12", "102", at(20)), stageWon("11", "101", at(10)))
		second := hsBody(hsEvent{id: "14", deal: "101", prop: "amount", value: "1000.1", at: at(5)},
			stageWon("13", "103", at(30)), hsEvent{id: "15", deal: "102", typ: "deal.creation", at: at(1)})
		var results []connectors.EventResult
		firstResults := 0
		for i, body := range [][]byte{first, second, first} { // HubSpot retries a delivery
			r := hsOK(t, s, body)
			results = append(results, r.Results...)
			if i == 0 {
				firstResults = len(r.Results)
			}
		}
		runs := map[string]workflows.InvoiceDealResult{}
		for _, d := range []string{"101", "102", "103"} {
			runs[d] = s.completed(t, "hs", hsPortal, d)
			inv := invoiceIn(t, s.Sandbox, d)
			if want := "1000." + d[2:]; !strings.HasPrefix(inv.Total, want) {
				t.Errorf("deal %s invoiced %s, want %s", d, inv.Total, want)
			}
			if n := f.WriteBacks(hsPortal, d); n != 1 {
				t.Errorf("deal %s written back %d times, want 1", d, n)
			}
			if n := s.countRuns(t, `DealId = "`+d+`"`, 1); n != 1 {
				t.Errorf("%d runs for deal %s, want 1", n, d)
			}
			deal, _ := f.Deal(hsPortal, d)
			if p := deal.Properties["erp_invoice_id"]; p == nil || *p != runs[d].InvoiceID {
				t.Errorf("deal %s: erp_invoice_id not written back as %s", d, runs[d].InvoiceID)
			}
		}
		if n := len(s.Sandbox.Invoices()); n != 3 {
			t.Fatalf("ERP has %d invoices, want 3", n)
		}
		if n := f.TotalWriteBacks(); n != 3 {
			t.Fatalf("%d write-backs, want 3", n)
		}
		if countOf(runs["101"].Events, "11") != 1 || countOf(runs["102"].Events, "12") != 1 || countOf(runs["103"].Events, "13") != 1 {
			t.Errorf("runs' events: %v", runs)
		}
		s.keepHistory(t, workflows.DealWorkflowID("hs", hsPortal, "101"), "hubspot-signals-fetch-writeback")
		checkDelivered(t, results, runs)

		// A retry after the runs completed: duplicates, nothing new.
		r := hsOK(t, s, first)
		if len(r.Results) == 0 || len(r.Results) != firstResults {
			t.Errorf("redelivery: %d results, want %d as the first time: %+v", len(r.Results), firstResults, r.Results)
		}
		for _, res := range r.Results {
			if !res.Duplicate {
				t.Errorf("redelivery after completion not a duplicate: %+v", res)
			}
		}
		if n := len(s.Sandbox.Invoices()); n != 3 || f.TotalWriteBacks() != 3 {
			t.Fatalf("after a redelivery: %d invoices, %d write-backs", n, f.TotalWriteBacks())
		}
	})

	t.Run("a burst for one deal is one run that invoices the final amount", func(t *testing.T) {
		// No line items: the invoice is one line of the deal amount.
		f.PutDeal(hsPortal, hubspotfake.Deal{ID: "201", Properties: hubspotfake.Props("dealname", "Burst", "dealstage", "closedwon",
			"amount", "100.00", "closedate", "2026-11-20", "deal_currency_code", "EUR"),
			Companies: []hubspotfake.Association{{ID: "5201", Type: "deal_to_company"}}})
		f.PutCompany(hsPortal, hubspotfake.Object{ID: "5201", Properties: hubspotfake.Props("name", "Burst GmbH")})
		r1 := hsOK(t, s, hsBody(stageWon("21", "201", at(40))))
		// The user corrects the amount right after winning the deal.
		if n := f.Count(http.MethodGet, "/crm/objects/2026-03/0-3/201"); n != 0 {
			t.Fatalf("the run read the deal before the settle time was over (%d reads)", n)
		}
		f.SetDealProperty(hsPortal, "201", "amount", "250.00")
		r2 := hsOK(t, s, hsBody(hsEvent{id: "22", deal: "201", prop: "amount", value: "250.00", at: at(41)}))
		if r1.Results[0].WorkflowID == "" || r2.Results[0].WorkflowID != r1.Results[0].WorkflowID || r2.Results[0].Skipped != "" {
			t.Fatalf("the amount event did not reach the deal's run: %+v / %+v", r1.Results, r2.Results)
		}
		out := s.completed(t, "hs", hsPortal, "201")
		if !slices.Contains(out.Events, "21") || !slices.Contains(out.Events, "22") {
			t.Errorf("run events %v, want 21 and 22", out.Events)
		}
		if inv := invoiceIn(t, s.Sandbox, "201"); inv.Total != "250.00" {
			t.Errorf("invoiced %s, want the fetched final amount 250.00", inv.Total)
		}
		if n := s.countRuns(t, `DealId = "201"`, 1); n != 1 {
			t.Errorf("%d runs, want 1", n)
		}
		if n := f.Count(http.MethodGet, "/crm/objects/2026-03/0-3/201"); n != 1 {
			t.Errorf("deal read %d times, want once", n)
		}
	})

	t.Run("forged or misaddressed signatures are 401 and start nothing", func(t *testing.T) {
		body := hsBody(stageWon("31", "301", at(50)))
		seedHubSpotDeal(f, hsPortal, "301", "10.00")
		if st, b := sendHubSpot(t, s, "not-the-secret", "", body); st != http.StatusUnauthorized {
			t.Fatalf("forged: %d %s", st, b)
		}
		// Signed for the URL the server sees, not the public one HubSpot calls.
		if st, b := sendHubSpot(t, s, hsSecret, s.IntakeURL+"/webhooks/hs", body); st != http.StatusUnauthorized {
			t.Fatalf("signed for the internal URL: %d %s", st, b)
		}
		if st, b := post(t, s.IntakeURL+"/webhooks/hs", "application/json", nil, body); st != http.StatusUnauthorized {
			t.Fatalf("unsigned: %d %s", st, b)
		}
		s.noRunFor(t, "301", workflows.DealWorkflowID("hs", hsPortal, "301"))
	})

	t.Run("a failing write-back is retried alone", func(t *testing.T) {
		seedHubSpotDeal(f, hsPortal, "401", "400.00")
		f.FailWriteBacks(hubspotfake.Fault{Status: http.StatusServiceUnavailable}, hubspotfake.Fault{Status: http.StatusBadGateway})
		hsOK(t, s, hsBody(stageWon("41", "401", at(60))))
		out := s.completed(t, "hs", hsPortal, "401")
		inv := invoiceIn(t, s.Sandbox, "401")
		if out.InvoiceID != inv.ID {
			t.Errorf("run result %s, ERP invoice %s", out.InvoiceID, inv.ID)
		}
		if w, a := f.WriteBacks(hsPortal, "401"), f.WriteBackAttempts(hsPortal, "401"); w != 1 || a != 3 {
			t.Fatalf("write-backs %d of %d attempts, want 1 of 3", w, a)
		}
		// The thin event said no amount; the invoiced run says what it billed.
		if n := s.countRuns(t, `DealId = "401" AND SyncStatus = "invoiced" AND Amount = 400 AND Currency = "EUR"`, 1); n != 1 {
			t.Errorf("run not recorded as invoiced, with the amount billed (%d)", n)
		}
		s.keepHistory(t, workflows.DealWorkflowID("hs", hsPortal, "401"), "hubspot-writeback-retried")
	})

	t.Run("an event of a portal that is not configured is 403, or dropped from a mixed batch", func(t *testing.T) {
		body := hsBody(hsEvent{id: "51", deal: "501", portal: "7999999", prop: "dealstage", value: "closedwon", at: at(70)})
		st, b := sendHubSpot(t, s, hsSecret, "", body)
		if st != http.StatusForbidden || !strings.Contains(string(b), "7999999") {
			t.Fatalf("unknown portal: %d %s", st, b)
		}
		s.noRunFor(t, "501", workflows.DealWorkflowID("hs", "7999999", "501"), workflows.DealWorkflowID("hs", hsPortal, "501"))

		// In a batch with a listed portal's event, it is dropped and the
		// listed portal's event goes through.
		seedHubSpotDeal(f, hsPortal, "502", "502.00")
		mixed := hsBody(hsEvent{id: "53", deal: "503", portal: "7999999", prop: "dealstage", value: "closedwon", at: at(71)}, stageWon("52", "502", at(72)))
		if st, b := sendHubSpot(t, s, hsSecret, "", mixed); st != http.StatusAccepted {
			t.Fatalf("mixed batch: %d %s", st, b)
		}
		if r := s.completed(t, "hs", hsPortal, "502"); r.InvoiceID == "" {
			t.Errorf("the listed portal's deal of a mixed batch: %+v", r)
		}
		if s.runExists(t, workflows.DealWorkflowID("hs", "7999999", "503")) {
			t.Fatal("an unknown portal's event started a run")
		}

		// An event that cannot be read (no objectId) is left out and
		// reported; the batch's won deal is not lost with it (HubSpot
		// does not send a delivery answered 400 again).
		seedHubSpotDeal(f, hsPortal, "504", "504.00")
		good := hsBody(stageWon("54", "504", at(73)))
		bad := append([]byte(`[{"eventId":55,"portalId":`+hsPortal+`,"subscriptionType":"deal.creation","occurredAt":1},`), good[1:]...)
		if st, b := sendHubSpot(t, s, hsSecret, "", bad); st != http.StatusAccepted || !strings.Contains(string(b), `{"event_id":"55","duplicate":false,"skipped":"cannot be read`) {
			t.Fatalf("batch with an unreadable event: %d %s", st, b)
		}
		if r := s.completed(t, "hs", hsPortal, "504"); r.InvoiceID == "" {
			t.Errorf("the won deal of a batch with an unreadable event: %+v", r)
		}
	})

	t.Run("account_targets route each portal to its own ERP", func(t *testing.T) {
		seedHubSpotDeal(f, hsPortalB, "601", "601.00")
		seedHubSpotDeal(f, hsPortal, "602", "602.00")
		before := len(s.Sandbox.Invoices())
		hsOK(t, s, hsBody(
			hsEvent{id: "61", deal: "601", portal: hsPortalB, prop: "dealstage", value: "closedwon", at: at(80)},
			stageWon("62", "602", at(80))))
		s.completed(t, "hs", hsPortalB, "601")
		s.completed(t, "hs", hsPortal, "602")
		if inv := invoiceIn(t, erpB, "601"); inv.Total != "601.00" {
			t.Errorf("portal B's invoice total %s", inv.Total)
		}
		invoiceIn(t, s.Sandbox, "602")
		if n := len(erpB.Invoices()); n != 1 {
			t.Errorf("second ERP has %d invoices, want only portal B's", n)
		}
		if n := len(s.Sandbox.Invoices()) - before; n != 1 {
			t.Errorf("main ERP got %d new invoices, want only portal A's", n)
		}
		if f.WriteBacks(hsPortalB, "601") != 1 || f.WriteBacks(hsPortal, "602") != 1 {
			t.Errorf("write-backs: B/601 %d, A/602 %d", f.WriteBacks(hsPortalB, "601"), f.WriteBacks(hsPortal, "602"))
		}
	})

	t.Run("a custom pipeline's won stage is found through the pipelines API", func(t *testing.T) {
		// The trigger says [closedwon] only; the portal's Renewals
		// pipeline has its own won and lost stages, listed nowhere in the
		// config.
		f.AddPipeline(hsPortal, hubspotfake.Pipeline{ID: "renewals", Label: "Renewals", Stages: []hubspotfake.Stage{
			{ID: "71000001", Label: "Renewal due", IsClosed: "false", Probability: "0.5"},
			{ID: "71000002", Label: "Renewed", IsClosed: "true", Probability: "1.0"},
			{ID: "71000003", Label: "Churned", IsClosed: "true", Probability: "0.0"},
		}})
		seedHubSpotDeal(f, hsPortal, "701", "701.00")
		f.SetDealProperty(hsPortal, "701", "dealstage", "71000002")
		seedHubSpotDeal(f, hsPortal, "702", "702.00")
		f.SetDealProperty(hsPortal, "702", "dealstage", "71000003")
		r := hsOK(t, s, hsBody(
			hsEvent{id: "71", deal: "701", prop: "dealstage", value: "71000002", at: at(90)},
			hsEvent{id: "72", deal: "702", prop: "dealstage", value: "71000003", at: at(90)}))
		if len(r.Results) != 2 || r.Results[0].WorkflowID == "" || r.Results[1].Skipped == "" {
			t.Fatalf("results %+v", r.Results)
		}
		run := s.completed(t, "hs", hsPortal, "701")
		if inv := invoiceIn(t, s.Sandbox, "701"); inv.Total != "701.00" || inv.ID != run.InvoiceID {
			t.Errorf("invoice %+v, run %+v", inv, run)
		}
		s.noRunFor(t, "702", workflows.DealWorkflowID("hs", hsPortal, "702"))

		// HubSpot down: a stage it never described cannot be judged, so
		// the delivery is refused with a 503 and HubSpot sends it again.
		f.FailPipelines(hubspotfake.Fault{Status: http.StatusServiceUnavailable})
		if st, b := sendHubSpot(t, s, hsSecret, "", hsBody(hsEvent{id: "73", deal: "703", prop: "dealstage", value: "79999999", at: at(95)})); st != http.StatusServiceUnavailable {
			t.Errorf("pipelines API down: %d %s", st, b)
		}
		s.noRunFor(t, "703", workflows.DealWorkflowID("hs", hsPortal, "703"))
	})
}

// ---- Salesforce ----

const (
	sfOrg      = "00D5w000004qGTOEA2"
	sfOtherOrg = "00D7F00000107XsUAI"
	sfToken    = "sf-endpoint-token-e2e"
)

// sfAccount is the org's key as the config loader delivers it (lower-cased),
// which is what events carry as their account.
var sfAccount = strings.ToLower(sfOrg)

type sfNote struct {
	id, opp, stage string
	won            bool
	at             time.Time
}

func sfMessage(org string, notes ...sfNote) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>` + org + `</OrganizationId>
   <ActionId>04k5w000000TSwMAAW</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0/00D5w000004qGTO</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0/00D5w000004qGTO</PartnerUrl>
`)
	for _, n := range notes {
		fmt.Fprintf(&b, `   <Notification>
    <Id>%s</Id>
    <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>%s</sf:Id>
     <sf:IsWon>%t</sf:IsWon>
     <sf:LastModifiedDate>%s</sf:LastModifiedDate>
     <sf:Name>Opportunity %s</sf:Name>
     <sf:StageName>%s</sf:StageName>
    </sObject>
   </Notification>
`, n.id, n.opp, n.won, n.at.UTC().Format("2006-01-02T15:04:05.000Z"), n.opp, n.stage)
	}
	b.WriteString("  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>\n")
	return []byte(b.String())
}

func sfWon(id, opp string, at time.Time) sfNote {
	return sfNote{id: id, opp: opp, stage: "Closed Won", won: true, at: at}
}

// sendSalesforce posts an outbound message to the endpoint URL with token.
func sendSalesforce(t *testing.T, s *stack, token string, body []byte) (int, string) {
	t.Helper()
	st, b := post(t, s.IntakeURL+"/webhooks/sf?token="+token, "text/xml; charset=utf-8", http.Header{"Soapaction": {`""`}}, body)
	return st, string(b)
}

// sfOK sends a message and requires Salesforce's acknowledgement.
func sfOK(t *testing.T, s *stack, msg []byte) {
	t.Helper()
	st, body := sendSalesforce(t, s, sfToken, msg)
	if st != http.StatusOK || !strings.Contains(body, "<Ack>true</Ack>") {
		t.Fatalf("not acknowledged: %d %s", st, body)
	}
}

// sfOpp makes an 18-character opportunity id.
func sfOpp(n int) string { return fmt.Sprintf("0065w00002%08dAAO", n)[:18] }

func seedOpportunity(f *salesforcefake.Server, opp, amount string) {
	f.PutOpportunity(salesforcefake.ParseRecord(fmt.Sprintf(`{"Id":%q,"Name":"Opportunity %s","StageName":"Closed Won","IsWon":true,
 "Amount":%s,"CloseDate":"2026-11-20","SystemModstamp":"2026-11-20T10:00:00.000+0000","OwnerId":"0055w00000BhqR0AAJ","AccountId":"0015w00002BFDeLAAX",
 "Account":{"attributes":{"type":"Account","url":"/services/data/v62.0/sobjects/Account/0015w00002BFDeLAAX"},"Name":"Backpackers, Inc.",
  "BillingStreet":"Hauptstr. 1","BillingCity":"Berlin","BillingPostalCode":"10115","BillingCountry":"DE"}}`, opp, opp, amount)))
	f.PutLineItems(opp, salesforcefake.ParseRecord(fmt.Sprintf(`{"Id":"00k5w0000010001AAA","Quantity":1,"UnitPrice":%s,"Discount":null,
 "Description":null,"SortOrder":1,"Product2":{"ProductCode":"PRO-1Y","Name":"Pro plan"}}`, amount)))
}

func TestCRMSalesforce(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	f := salesforcefake.New(sfOrg, "3MVG9-e2e", "sf-client-secret")
	t.Cleanup(f.Close)
	s := startCRMStack(t, fmt.Sprintf(`
connections:
  sf:
    target: sandbox
    settle_time: 2s
    linger: 1s
    # no trigger.won_stages: the defaults must include the stage the source
    # reports won opportunities as ("Closed Won")
    source:
      type: salesforce
      endpoint_token: %s
      fetch:
        default_currency: EUR
      accounts:
        %s:
          instance_url: %s
          client_id: 3MVG9-e2e
          client_secret: sf-client-secret
`, sfToken, sfOrg, f.URL))
	t0 := time.Now().Add(-time.Minute)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

	t.Run("batch of 3 opportunities with duplicates and out-of-order notifications", func(t *testing.T) {
		a, b, c := sfOpp(1), sfOpp(2), sfOpp(3)
		for i, o := range []string{a, b, c} {
			seedOpportunity(f, o, fmt.Sprintf("%d000.50", i+1))
		}
		first := sfMessage(sfOrg, sfWon("04l5w00005286h0001", a, at(10)), sfWon("04l5w00005286h0002", b, at(20)),
			sfWon("04l5w00005286h0001", a, at(10)))
		// An older notification of a (still negotiating) arrives later.
		second := sfMessage(sfOrg, sfNote{id: "04l5w00005286h0004", opp: a, stage: "Negotiation/Review", at: at(1)},
			sfWon("04l5w00005286h0003", c, at(30)))
		for _, m := range [][]byte{first, second, first} {
			sfOK(t, s, m)
		}
		for i, o := range []string{a, b, c} {
			out := s.completed(t, "sf", sfAccount, o)
			inv := invoiceIn(t, s.Sandbox, o)
			if want := fmt.Sprintf("%d000.50", i+1); inv.Total != want || out.InvoiceID != inv.ID {
				t.Errorf("opportunity %s: invoice %s total %s, want %s (run %+v)", o, inv.ID, inv.Total, want, out)
			}
			if n := f.WriteBacks(o); n != 1 {
				t.Errorf("opportunity %s written back %d times", o, n)
			}
			if rec, _ := f.Opportunity(o); rec["ERP_Invoice_Id__c"] != out.InvoiceID {
				t.Errorf("opportunity %s: ERP_Invoice_Id__c %v, want %s", o, rec["ERP_Invoice_Id__c"], out.InvoiceID)
			}
		}
		if n := len(s.Sandbox.Invoices()); n != 3 || f.TotalWriteBacks() != 3 {
			t.Fatalf("%d invoices and %d write-backs, want 3 and 3", n, f.TotalWriteBacks())
		}
		if out := s.completed(t, "sf", sfAccount, a); countOf(out.Events, "04l5w00005286h0001") != 1 {
			t.Errorf("run of %s events %v", a, out.Events)
		}
	})

	t.Run("a burst for one opportunity is one run that invoices the final amount", func(t *testing.T) {
		o := sfOpp(21)
		seedOpportunity(f, o, "100.00")
		sfOK(t, s, sfMessage(sfOrg, sfWon("04l5w00005286h0021", o, at(40))))
		if strings.Contains(strings.Join(f.Queries(), "\n"), o) {
			t.Fatalf("the run read the opportunity before the settle time was over")
		}
		seedOpportunity(f, o, "175.25")
		sfOK(t, s, sfMessage(sfOrg, sfWon("04l5w00005286h0022", o, at(41))))
		out := s.completed(t, "sf", sfAccount, o)
		if !slices.Contains(out.Events, "04l5w00005286h0021") || !slices.Contains(out.Events, "04l5w00005286h0022") {
			t.Errorf("run events %v", out.Events)
		}
		if inv := invoiceIn(t, s.Sandbox, o); inv.Total != "175.25" {
			t.Errorf("invoiced %s, want 175.25", inv.Total)
		}
	})

	t.Run("wrong org or endpoint token is a SOAP fault and starts nothing", func(t *testing.T) {
		o := sfOpp(31)
		seedOpportunity(f, o, "10.00")
		st, body := sendSalesforce(t, s, sfToken, sfMessage(sfOtherOrg, sfWon("04l5w00005286h0031", o, at(50))))
		if st != http.StatusForbidden || !strings.Contains(body, "<soapenv:Fault>") || !strings.Contains(body, "soapenv:Client") ||
			!strings.Contains(strings.ToLower(body), strings.ToLower(sfOtherOrg)) {
			t.Fatalf("wrong org: %d %s", st, body)
		}
		st, body = sendSalesforce(t, s, "wrong-token", sfMessage(sfOrg, sfWon("04l5w00005286h0032", o, at(50))))
		if st != http.StatusUnauthorized || !strings.Contains(body, "<soapenv:Fault>") {
			t.Fatalf("wrong endpoint token: %d %s", st, body)
		}
		s.noRunFor(t, o, workflows.DealWorkflowID("sf", sfAccount, o), workflows.DealWorkflowID("sf", strings.ToLower(sfOtherOrg), o))
	})

	t.Run("a failing write-back is retried alone", func(t *testing.T) {
		o := sfOpp(41)
		seedOpportunity(f, o, "400.00")
		f.FailWriteBacks(salesforcefake.Fault{Status: http.StatusServiceUnavailable}, salesforcefake.Fault{Status: http.StatusServiceUnavailable})
		sfOK(t, s, sfMessage(sfOrg, sfWon("04l5w00005286h0041", o, at(60))))
		out := s.completed(t, "sf", sfAccount, o)
		if inv := invoiceIn(t, s.Sandbox, o); inv.ID != out.InvoiceID {
			t.Errorf("run %s, ERP %s", out.InvoiceID, inv.ID)
		}
		if w, a := f.WriteBacks(o), f.WriteBackAttempts(o); w != 1 || a != 3 {
			t.Fatalf("write-backs %d of %d attempts, want 1 of 3", w, a)
		}
	})

	t.Run("deals sync invoices the won opportunities without a run", func(t *testing.T) {
		missed := sfOpp(51) // won, its notification never came
		seedOpportunity(f, missed, "51.00")
		f.PutOpportunity(salesforcefake.ParseRecord(fmt.Sprintf(`{"Id":%q,"Name":"Lost","StageName":"Closed Lost","IsWon":false,"Amount":5,
 "CloseDate":"2026-11-21","SystemModstamp":"2026-11-21T10:00:00.000+0000","AccountId":"0015w00002BFDeLAAX"}`, sfOpp(52))))
		f.PutOpportunity(salesforcefake.ParseRecord(fmt.Sprintf(`{"Id":%q,"Name":"Earlier","StageName":"Closed Won","IsWon":true,"Amount":5,
 "CloseDate":"2026-10-21","SystemModstamp":"2026-11-22T10:00:00.000+0000","AccountId":"0015w00002BFDeLAAX"}`, sfOpp(53))))
		conn, ok := s.Connections.Get("sf")
		if !ok {
			t.Fatal("no connection sf")
		}
		opts := backfill.Options{Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		results, err := backfill.Sync(ctx, s.Client, conn, app.Starter(s.cfg, s.Client, false), opts)
		if err != nil {
			t.Fatal(err)
		}
		// Started: the missed one, and the one whose only notification
		// was refused for its wrong org (the opportunity is won all the
		// same). Skipped: those invoiced by the subtests above.
		started := map[string]bool{}
		for _, r := range results {
			switch {
			case r.NewRun != "":
				started[r.DealID] = true
			case r.Skipped != "invoiced already":
				t.Errorf("neither started nor invoiced already: %+v", r)
			}
			if r.DealID == sfOpp(52) || r.DealID == sfOpp(53) {
				t.Errorf("listed a lost or earlier opportunity: %+v", r)
			}
		}
		if len(started) != 2 || !started[missed] || !started[sfOpp(31)] || len(results) < 7 {
			t.Fatalf("first sync started %v of %d deals: %+v", started, len(results), results)
		}
		out := s.completed(t, "sf", sfAccount, missed)
		if inv := invoiceIn(t, s.Sandbox, missed); inv.Total != "51.00" || inv.ID != out.InvoiceID {
			t.Errorf("opportunity %s invoiced %s as %s, run says %s", missed, inv.Total, inv.ID, out.InvoiceID)
		}
		if n := f.WriteBacks(missed); n != 1 {
			t.Errorf("opportunity %s written back %d times", missed, n)
		}
		s.completed(t, "sf", sfAccount, sfOpp(31))
		again, err := backfill.Sync(ctx, s.Client, conn, app.Starter(s.cfg, s.Client, false), opts)
		if err != nil || len(again) != len(results) {
			t.Fatalf("second sync: %d results, %v", len(again), err)
		}
		for _, r := range again {
			if r.NewRun != "" || r.Skipped != "invoiced already" {
				t.Errorf("second sync started or skipped otherwise: %+v", r)
			}
		}
	})
}

// ---- Pipedrive ----

const (
	pdCompany  = "6083095"
	pdCompanyB = "15747575"
	pdUser     = "dealsync"
	pdPass     = "correct horse battery staple"
)

type pdEvent struct {
	id, company, deal, status, prevStatus string
	value                                 string
	at                                    time.Time
}

func pdBody(e pdEvent) []byte {
	company := e.company
	if company == "" {
		company = pdCompany
	}
	prev := map[string]any{"value": 1}
	if e.prevStatus != "" {
		prev = map[string]any{"status": e.prevStatus}
	}
	b, _ := json.Marshal(map[string]any{
		"data": map[string]any{"id": json.Number(e.deal), "status": e.status, "stage_id": 428, "pipeline_id": 50,
			"value": json.Number(e.value), "currency": "EUR", "org_id": 5063, "title": "Deal " + e.deal},
		"previous": prev,
		"meta": map[string]any{"action": "change", "entity": "deal", "entity_id": e.deal, "id": e.id, "company_id": company,
			"correlation_id": "c-" + e.id, "timestamp": e.at.UTC().Format("2006-01-02T15:04:05.000Z"), "type": "general",
			"user_id": "12941358", "version": "2.0", "webhook_id": "1828483", "attempt": 1},
	})
	return b
}

func sendPipedrive(t *testing.T, s *stack, user, pass string, e pdEvent) (int, []byte) {
	t.Helper()
	h := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}}
	return post(t, s.IntakeURL+"/webhooks/pd", "application/json", h, pdBody(e))
}

// pdOK sends a delivery with the right credentials that must be accepted.
func pdOK(t *testing.T, s *stack, e pdEvent) connectors.Reply {
	t.Helper()
	st, b := sendPipedrive(t, s, pdUser, pdPass, e)
	return jsonReply(t, st, b)
}

func seedPipedriveDeal(f *pipedrivefake.Server, company, deal, value string) {
	f.PutDeal(company, pipedrivefake.ParseRecord(fmt.Sprintf(`{"id":%s,"title":"Deal %s","owner_id":1,"org_id":5063,"pipeline_id":50,
 "stage_id":428,"value":%s,"currency":"EUR","status":"won","won_time":"2026-11-20T10:00:00Z","close_time":"2026-11-20T10:00:00Z",
 "expected_close_date":"2026-11-30","custom_fields":{}}`, deal, deal, value)))
	f.PutOrganization(company, pipedrivefake.ParseRecord(`{"id":5063,"name":"Acme GmbH `+company+`","address":{"value":"Hauptstr. 1, 10115 Berlin",
 "country":"DE","locality":"Berlin","route":"Hauptstr.","street_number":"1","postal_code":"10115"},"custom_fields":{}}`))
	f.PutDealProducts(company, deal, pipedrivefake.ParseRecord(fmt.Sprintf(`{"id":1%s,"deal_id":%s,"name":"Pro plan","product_id":501,
 "item_price":%s,"quantity":1,"discount":0,"discount_type":"percentage","tax":0,"is_enabled":true,"currency":"EUR"}`, deal, deal, value)))
	f.PutProducts(company, pipedrivefake.ParseRecord(`{"id":501,"name":"Pro plan","code":"PRO-1Y"}`))
}

func TestCRMPipedrive(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	f := pipedrivefake.New()
	t.Cleanup(f.Close)
	const wbKey = "f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2"
	for c, tok := range map[string]string{pdCompany: "pd-token-1", pdCompanyB: "pd-token-2"} {
		f.AddCompany(c, tok)
		f.AddDealFields(c, wbKey)
	}
	// Pipedrive numbers deals and organizations per company: two companies
	// invoicing into one ERP need a mapping that keeps their ids apart (the
	// built-in one is refused for them).
	mappingFile := filepath.Join(t.TempDir(), "pd-companies.yaml")
	if err := os.WriteFile(mappingFile, []byte(`name: pd-companies
invoice:
  reference: event.account + "-" + deal.id
  customer:
    external_id: event.account + "-" + deal.company.id
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startCRMStack(t, fmt.Sprintf(`
mappings:
  files: [%s]
connections:
  pd:
    target: sandbox
    mapping: pd-companies
    settle_time: 2s
    linger: 1s
    trigger:
      won_stages: [won]
    source:
      type: pipedrive
      base_url: %s
      webhook_user: %s
      webhook_password: %s
      write_back:
        invoice_number_field: %s
      accounts:
        "%s":
          api_token: pd-token-1
        "%s":
          api_token: pd-token-2
`, mappingFile, f.URL, pdUser, pdPass, wbKey, pdCompany, pdCompanyB))
	t0 := time.Now().Add(-time.Minute)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	won := func(id, deal string, sec int) pdEvent {
		return pdEvent{id: id, deal: deal, status: "won", prevStatus: "open", value: "1", at: at(sec)}
	}

	t.Run("deliveries for 3 deals with duplicates and out-of-order events", func(t *testing.T) {
		for _, d := range []string{"1001", "1002", "1003"} {
			seedPipedriveDeal(f, pdCompany, d, d+".10")
		}
		events := []pdEvent{
			won("e-1001", "1001", 10),
			won("e-1002", "1002", 20),
			won("e-1001", "1001", 10), // Pipedrive retries
			// An older edit of 1001 (status unchanged) arrives late.
			{id: "e-1001-old", deal: "1001", status: "open", value: "1", at: at(1)},
			won("e-1003", "1003", 30),
			won("e-1002", "1002", 20),
		}
		var results []connectors.EventResult
		for _, e := range events {
			r := pdOK(t, s, e)
			results = append(results, r.Results...)
		}
		runs := map[string]workflows.InvoiceDealResult{}
		for _, d := range []string{"1001", "1002", "1003"} {
			runs[d] = s.completed(t, "pd", pdCompany, d)
			if inv := invoiceIn(t, s.Sandbox, pdCompany+"-"+d); inv.Total != d+".10" {
				t.Errorf("deal %s invoiced %s", d, inv.Total)
			}
			if n := f.WriteBacks(pdCompany, d); n != 1 {
				t.Errorf("deal %s written back %d times", d, n)
			}
			deal, _ := f.Deal(pdCompany, d)
			if cf, _ := deal["custom_fields"].(map[string]any); cf[wbKey] != runs[d].Number {
				t.Errorf("deal %s: invoice number %v written back, want %s", d, cf[wbKey], runs[d].Number)
			}
		}
		if n := len(s.Sandbox.Invoices()); n != 3 || f.TotalWriteBacks() != 3 {
			t.Fatalf("%d invoices and %d write-backs, want 3 and 3", n, f.TotalWriteBacks())
		}
		checkDelivered(t, results, runs)
	})

	t.Run("a burst for one deal is one run that invoices the final value", func(t *testing.T) {
		seedPipedriveDeal(f, pdCompany, "1101", "100")
		r1 := pdOK(t, s, won("e-1101-won", "1101", 40))
		seedPipedriveDeal(f, pdCompany, "1101", "320.5")
		// The value edit of a won deal: status unchanged, does not trigger.
		r2 := pdOK(t, s, pdEvent{id: "e-1101-value", deal: "1101", status: "won", value: "320.5", at: at(41)})
		if r2.Results[0].WorkflowID != r1.Results[0].WorkflowID || r2.Results[0].Skipped != "" {
			t.Fatalf("the value event did not reach the run: %+v / %+v", r1.Results, r2.Results)
		}
		out := s.completed(t, "pd", pdCompany, "1101")
		if !slices.Contains(out.Events, "e-1101-value") {
			t.Errorf("run events %v", out.Events)
		}
		if inv := invoiceIn(t, s.Sandbox, pdCompany+"-1101"); inv.Total != "320.50" {
			t.Errorf("invoiced %s, want 320.50", inv.Total)
		}
	})

	t.Run("wrong Basic auth is 401 and starts nothing", func(t *testing.T) {
		seedPipedriveDeal(f, pdCompany, "1201", "5")
		for _, cred := range [][2]string{{pdUser, "wrong"}, {"admin", pdPass}, {"", ""}} {
			if st, b := sendPipedrive(t, s, cred[0], cred[1], won("e-1201", "1201", 50)); st != http.StatusUnauthorized {
				t.Fatalf("credentials %q: %d %s", cred, st, b)
			}
		}
		s.noRunFor(t, "1201", workflows.DealWorkflowID("pd", pdCompany, "1201"))
	})

	t.Run("a failing write-back is retried alone", func(t *testing.T) {
		seedPipedriveDeal(f, pdCompany, "1301", "130")
		f.FailWriteBacks(pipedrivefake.Fault{Status: http.StatusServiceUnavailable}, pipedrivefake.Fault{Status: http.StatusServiceUnavailable})
		pdOK(t, s, won("e-1301", "1301", 60))
		out := s.completed(t, "pd", pdCompany, "1301")
		if inv := invoiceIn(t, s.Sandbox, pdCompany+"-1301"); inv.ID != out.InvoiceID {
			t.Errorf("run %s, ERP %s", out.InvoiceID, inv.ID)
		}
		if w, a := f.WriteBacks(pdCompany, "1301"), f.WriteBackAttempts(pdCompany, "1301"); w != 1 || a != 3 {
			t.Fatalf("write-backs %d of %d attempts, want 1 of 3", w, a)
		}
	})

	// Pipedrive's API does not edit archived deals (since 15 July 2025):
	// a won deal archived is invoiced once, its write-back is not sent
	// but fails the run (WriteBackFailed, not retried) saying so, and once
	// the deal is unarchived, runs retry --writeback writes that invoice
	// back, without a second one.
	t.Run("a won deal archived is invoiced once, and written back after it is unarchived", func(t *testing.T) {
		seedPipedriveDeal(f, pdCompany, "1701", "170")
		f.ArchiveDeal(pdCompany, "1701")
		f.ResetRequests()
		r := pdOK(t, s, won("e-1701", "1701", 62))
		id := workflows.DealWorkflowID("pd", pdCompany, "1701")
		if r.Results[0].WorkflowID != id {
			t.Fatalf("delivery: %+v", r.Results)
		}
		err := s.waitRun(t, id, nil)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeWriteBackFailed || !appErr.NonRetryable() {
			t.Fatalf("run: %v; want it failed WriteBackFailed", err)
		}
		inv := invoiceIn(t, s.Sandbox, pdCompany+"-1701")
		for _, want := range []string{"invoice " + inv.ID + " was created, but writing it back to the CRM failed",
			"deal 1701 of company " + pdCompany + " is archived in Pipedrive", "nothing was sent to the deal",
			"unarchive the deal in Pipedrive", `dealsync runs retry --writeback --query 'DealId = "1701" AND CrmAccount = "` + pdCompany + `"'`} {
			if !strings.Contains(appErr.Error(), want) {
				t.Errorf("failure %q\nlacks %q", appErr.Error(), want)
			}
		}
		if n := s.invoicesFor(pdCompany + "-1701"); n != 1 {
			t.Fatalf("%d invoices, want 1", n)
		}
		// Not retried: the deal read once by the fetch and once before
		// the write-back, and no PATCH sent.
		reads := 0
		for _, req := range f.Requests() {
			if req.Method == http.MethodGet && req.Path == "/api/v2/deals/1701" {
				reads++
			}
		}
		if a := f.WriteBackAttempts(pdCompany, "1701"); a != 0 || reads != 2 {
			t.Fatalf("%d PATCHes and %d reads of the deal; want none and 2 (the fetch, the check before the write-back)", a, reads)
		}

		f.UnarchiveDeal(pdCompany, "1701")
		if n := s.countRuns(t, `WorkflowId = "`+id+`" AND ExecutionStatus = "Failed" AND SyncStatus = "writeback_failed"`, 1); n != 1 {
			t.Fatalf("the run list shows %d failed write-backs of the deal, want 1", n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// As the failure says: dealsync runs retry --writeback --query '…'.
		results, err := rerun.Failed(ctx, s.Client, s.Connections, app.Starter(s.cfg, s.Client, false),
			rerun.Options{TaskQueue: s.cfg.Temporal.TaskQueue, WriteBack: true, Query: `DealId = "1701" AND CrmAccount = "` + pdCompany + `"`})
		if err != nil || len(results) != 1 || results[0].NewRun == "" {
			t.Fatalf("runs retry --writeback: %+v, %v", results, err)
		}
		var out workflows.InvoiceDealResult
		if err := s.Client.GetWorkflow(ctx, id, results[0].NewRun).Get(ctx, &out); err != nil {
			t.Fatalf("the write-back run: %v", err)
		}
		if out.InvoiceID != inv.ID || s.invoicesFor(pdCompany+"-1701") != 1 || f.WriteBacks(pdCompany, "1701") != 1 {
			t.Fatalf("after the retry: run's invoice %s (ERP %s), %d invoices, %d write-backs; want the same one invoice, written back once",
				out.InvoiceID, inv.ID, s.invoicesFor(pdCompany+"-1701"), f.WriteBacks(pdCompany, "1701"))
		}
		if deal, _ := f.Deal(pdCompany, "1701"); deal["custom_fields"].(map[string]any)[wbKey] != inv.Number {
			t.Errorf("written back %v, want the invoice number %s", deal["custom_fields"], inv.Number)
		}
	})

	// Pipedrive deal ids are per company: two companies of one connection
	// both have a deal 1501. They are two deals, two runs, two invoices.
	t.Run("the same deal id in two companies is two deals", func(t *testing.T) {
		seedPipedriveDeal(f, pdCompany, "1501", "15")
		seedPipedriveDeal(f, pdCompanyB, "1501", "16")
		a := pdOK(t, s, won("e-a-1501", "1501", 65))
		ev := won("e-b-1501", "1501", 65)
		ev.company = pdCompanyB
		b := pdOK(t, s, ev)
		idA, idB := a.Results[0].WorkflowID, b.Results[0].WorkflowID
		if idA == "" || idA == idB || a.Results[0].Skipped != "" || b.Results[0].Skipped != "" {
			t.Fatalf("two companies' deals met one run: %+v / %+v", a.Results, b.Results)
		}
		for _, id := range []string{idA, idB} {
			var out workflows.InvoiceDealResult
			if err := s.waitRun(t, id, &out); err != nil {
				t.Fatalf("run %s: %v", id, err)
			}
		}
		totals := map[string]string{}
		customers := map[string]bool{}
		for _, inv := range s.Sandbox.Invoices() {
			if strings.HasSuffix(inv.Reference, "-1501") {
				totals[inv.Reference] = inv.Total
				customers[inv.CustomerID] = true
			}
		}
		if want := map[string]string{pdCompany + "-1501": "15.00", pdCompanyB + "-1501": "16.00"}; !maps.Equal(totals, want) || len(customers) != 2 {
			t.Fatalf("invoices for deal 1501: %v for %d customers, want %v for one customer per company", totals, len(customers), want)
		}
		if f.WriteBacks(pdCompany, "1501") != 1 || f.WriteBacks(pdCompanyB, "1501") != 1 {
			t.Fatalf("write-backs: %d, %d", f.WriteBacks(pdCompany, "1501"), f.WriteBacks(pdCompanyB, "1501"))
		}
	})

	t.Run("deals sync invoices the won deals whose webhooks never came", func(t *testing.T) {
		seedPipedriveDeal(f, pdCompanyB, "1601", "42.00") // won 2026-11-20, never delivered
		f.PutDeal(pdCompanyB, pipedrivefake.ParseRecord(`{"id":1602,"title":"Deal 1602","org_id":5063,"value":7,"currency":"EUR","status":"won",
 "won_time":"2026-10-20T10:00:00Z","update_time":"2026-10-20T10:00:00Z","custom_fields":{}}`)) // won before the period
		f.PutDeal(pdCompanyB, pipedrivefake.ParseRecord(`{"id":1603,"title":"Deal 1603","org_id":5063,"value":9,"currency":"EUR","status":"lost",
 "update_time":"2026-11-21T10:00:00Z","custom_fields":{}}`))
		conn, ok := s.Connections.Get("pd")
		if !ok {
			t.Fatal("no connection pd")
		}
		opts := backfill.Options{Accounts: []string{pdCompanyB},
			Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		results, err := backfill.Sync(ctx, s.Client, conn, app.Starter(s.cfg, s.Client, false), opts)
		if err != nil {
			t.Fatal(err)
		}
		byDeal := map[string]backfill.Result{}
		for _, r := range results {
			byDeal[r.DealID] = r
		}
		if len(byDeal) != 2 || byDeal["1501"].Skipped != "invoiced already" || byDeal["1601"].NewRun == "" || byDeal["1601"].CloseDate != "2026-11-20" {
			t.Fatalf("first sync: %+v", results)
		}
		out := s.completed(t, "pd", pdCompanyB, "1601")
		if inv := invoiceIn(t, s.Sandbox, pdCompanyB+"-1601"); inv.Total != "42.00" || out.InvoiceID != inv.ID {
			t.Errorf("deal 1601 invoiced %s as %s, run says %s", inv.Total, inv.ID, out.InvoiceID)
		}
		if n := f.WriteBacks(pdCompanyB, "1601"); n != 1 {
			t.Errorf("deal 1601 written back %d times", n)
		}
		again, err := backfill.Sync(ctx, s.Client, conn, app.Starter(s.cfg, s.Client, false), opts)
		if err != nil || len(again) != 2 {
			t.Fatalf("second sync: %+v, %v", again, err)
		}
		for _, r := range again {
			if r.NewRun != "" || r.Skipped != "invoiced already" {
				t.Errorf("second sync started or skipped otherwise: %+v", r)
			}
		}
		s.noRunFor(t, "1602", workflows.DealWorkflowID("pd", pdCompanyB, "1602"))
		s.noRunFor(t, "1603", workflows.DealWorkflowID("pd", pdCompanyB, "1603"))
	})

	t.Run("an event of a company that is not configured is 403", func(t *testing.T) {
		st, b := sendPipedrive(t, s, pdUser, pdPass, pdEvent{id: "e-x", company: "424242", deal: "1401", status: "won", prevStatus: "open", value: "1", at: at(70)})
		if st != http.StatusForbidden || !strings.Contains(string(b), "424242") {
			t.Fatalf("unknown company: %d %s", st, b)
		}
		s.noRunFor(t, "1401", workflows.DealWorkflowID("pd", "424242", "1401"), workflows.DealWorkflowID("pd", pdCompany, "1401"))
	})
}

// onePortalStack starts a fake HubSpot with one portal and a stack whose
// connection hs reads it, with the workflow and connection settings given
// (YAML lines, indented as their block's keys).
func onePortalStack(t *testing.T, workflow, connection string) (*hubspotfake.Server, *stack) {
	f := hubspotfake.New()
	t.Cleanup(f.Close)
	f.AddPortal(hsPortal, "pat-na1-e2e-1")
	return f, portalStack(t, f, "", workflow, "sandbox", connection)
}

// portalStack starts a stack whose connection hs serves f's portal hsPortal
// into target (declared in targets, a YAML block, unless a built-in one).
func portalStack(t *testing.T, f *hubspotfake.Server, targets, workflow, target, connection string) *stack {
	return startCRMStack(t, fmt.Sprintf(`
intake:
  public_base_url: %s
workflow:
  %s
%s
connections:
  hs:
    target: %s
    %s
    trigger:
      won_stages: [closedwon]
    source:
      type: hubspot
      client_secret: %s
      base_url: %s
      accounts:
        "%s":
          access_token: pat-na1-e2e-1
`, hsPublicURL, workflow, targets, target, connection, hsSecret, f.URL, hsPortal))
}

// A deal that changes after it was invoiced is not invoiced again; its run
// (still lingering) records the change where an operator can filter on it.
func TestCRMHubSpotChangeAfterInvoice(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	f, s := onePortalStack(t, "", "settle_time: 200ms\n    linger: 10m")
	seedHubSpotDeal(f, hsPortal, "301", "500")
	now := time.Now()
	hsOK(t, s, hsBody(stageWon("30101", "301", now)))
	if n := s.countRuns(t, `DealId = "301" AND SyncStatus = "invoiced" AND ExecutionStatus = "Running"`, 1); n != 1 {
		t.Fatalf("the run did not invoice and linger (count %d)", n)
	}
	reply := hsOK(t, s, hsBody(hsEvent{id: "30102", deal: "301", prop: "amount", value: "650", at: now.Add(time.Second)}))
	if len(reply.Results) != 1 || reply.Results[0].Skipped != "" || reply.Results[0].WorkflowID == "" {
		t.Fatalf("the change was not delivered to the lingering run: %+v", reply.Results)
	}
	if n := s.countRuns(t, `DealId = "301" AND ChangedAfterInvoice = true`, 1); n != 1 {
		t.Fatalf("ChangedAfterInvoice not recorded (count %d)", n)
	}
	invoiceIn(t, s.Sandbox, "301")
	if got := f.TotalWriteBacks(); got != 1 {
		t.Fatalf("%d write-backs, want 1", got)
	}
	s.keepHistory(t, workflows.DealWorkflowID("hs", hsPortal, "301"), "hubspot-changed-after-invoice-lingering")
}

// A HubSpot deal moved out of won and back while its run reads it (calls
// as activities): the run reads a lost deal, but the won-again event
// delivered during the read makes it read the deal again and invoice it,
// instead of ending DealNotWon with the event unread.
func TestCRMHubSpotEventDuringTheFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	f, s := onePortalStack(t, "external_calls: activity", "settle_time: 100ms\n    linger: 100ms")
	seedHubSpotDeal(f, hsPortal, "701", "700")
	f.SetDealProperty(hsPortal, "701", "dealstage", "closedlost") // what the first read sees
	now := time.Now()
	var fired atomic.Bool
	during := make(chan string, 1)
	f.SetDealReadHook(func(deal string) {
		if fired.Swap(true) {
			return
		}
		// During the first read: the deal is won again, and HubSpot says
		// so; the read itself still answers "closedlost".
		f.SetDealProperty(hsPortal, deal, "dealstage", "closedwon")
		st, b, err := trySendHubSpot(s, hsSecret, "", hsBody(stageWon("70102", deal, now.Add(time.Second))))
		during <- fmt.Sprintf("%d %s %v", st, b, err)
	})
	hsOK(t, s, hsBody(stageWon("70101", "701", now)))
	// The hook posts on the fake's goroutine: its status, body and error
	// come back through during, with a bound, so that a failed post fails
	// the test instead of hanging it.
	select {
	case got := <-during:
		if !strings.HasPrefix(got, "202 ") {
			t.Fatalf("the event during the read: %s", got)
		}
	case <-time.After(time.Minute):
		t.Fatal("the event during the read was not delivered (its post failed in the read hook, or the deal was never read)")
	}
	r := s.completed(t, "hs", hsPortal, "701")
	if r.InvoiceID == "" || !slices.Contains(r.Events, "70102") {
		t.Fatalf("run %+v: want the deal read again and invoiced, with the event of the read", r)
	}
	if n := f.Count(http.MethodGet, "/crm/objects/2026-03/0-3/701"); n != 2 {
		t.Errorf("the deal was read %d times, want 2", n)
	}
	s.keepHistory(t, workflows.DealWorkflowID("hs", hsPortal, "701"), "hubspot-activity-refetch-after-event")
}

// A HubSpot deal lost while its run waits on the ERP's customer step:
// HubSpot's stage change reaches the run during the step, so the run reads
// the deal again before the invoice, finds it lost and invoices nothing
// (refetch-before-invoice). Calls as activities: a local call's events
// reach the run only at its workflow task's end, or at the heartbeats of a
// long one (an ERP outage).
func TestCRMHubSpotLostDuringTheCustomerStep(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	f := hubspotfake.New()
	t.Cleanup(f.Close)
	f.AddPortal(hsPortal, "pat-na1-e2e-1")
	erp := sandbox.New(sandbox.Options{})
	var s *stack
	var fired atomic.Bool
	during := make(chan string, 1)
	gated := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/customers" && !fired.Swap(true) {
			// The deal is lost in HubSpot while the customer is made, and
			// HubSpot says so.
			f.SetDealProperty(hsPortal, "801", "dealstage", "closedlost")
			st, b, err := trySendHubSpot(s, hsSecret, "", hsBody(hsEvent{id: "80102", deal: "801", prop: "dealstage", value: "closedlost", at: time.Now()}))
			during <- fmt.Sprintf("%d %s %v", st, b, err)
		}
		erp.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(gated.Close)
	s = portalStack(t, f, fmt.Sprintf(`
targets:
  gated:
    type: http
    base_url: %s
    customer_lookup: on_conflict`, gated.URL), "external_calls: activity", "gated", "")
	seedHubSpotDeal(f, hsPortal, "801", "800")
	hsOK(t, s, hsBody(stageWon("80101", "801", time.Now())))
	select {
	case got := <-during:
		if !strings.HasPrefix(got, "202 ") {
			t.Fatalf("the loss during the customer step: %s", got)
		}
	case <-time.After(time.Minute):
		t.Fatal("the customer was never made, or the loss was not delivered")
	}
	id := workflows.DealWorkflowID("hs", hsPortal, "801")
	var appErr *temporal.ApplicationError
	if err := s.waitRun(t, id, nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDealNotWon || !strings.Contains(err.Error(), "closedlost") {
		t.Fatalf("want DealNotWon with the deal closedlost, got %v", err)
	}
	if n := len(erp.Invoices()); n != 0 {
		t.Fatalf("%d invoices of a deal lost before its invoice", n)
	}
	if n := f.Count(http.MethodGet, "/crm/objects/2026-03/0-3/801"); n != 2 {
		t.Errorf("the deal was read %d times, want 2 (once more before the invoice)", n)
	}
	s.keepHistory(t, id, "hubspot-refetch-before-invoice-lost")
}

// A won deal deleted before its run read it ends DealNotWon. Restored from
// HubSpot's recycling bin, its deal.restore event (no stage change) starts
// a run that reads it and invoices it, once: a second restore meets the
// completed run. A restored deal that is not won ends DealNotWon, with no
// invoice.
func TestCRMHubSpotRestoredDeal(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	f, s := onePortalStack(t, "", "settle_time: 200ms\n    linger: 1s")
	seedHubSpotDeal(f, hsPortal, "901", "900")
	f.DeleteDeal(hsPortal, "901")
	hsOK(t, s, hsBody(stageWon("90101", "901", time.Now())))
	id := workflows.DealWorkflowID("hs", hsPortal, "901")
	var appErr *temporal.ApplicationError
	if err := s.waitRun(t, id, nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDealNotWon || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("the deleted deal's run: want DealNotWon, deleted, got %v", err)
	}

	f.RestoreDeal(hsPortal, "901")
	reply := hsOK(t, s, hsBody(hsEvent{id: "90102", deal: "901", typ: "deal.restore", at: time.Now()}))
	if len(reply.Results) != 1 || reply.Results[0].Skipped != "" || reply.Results[0].RunID == "" || reply.Results[0].Duplicate {
		t.Fatalf("the restore started no run: %+v", reply.Results)
	}
	if res := s.completed(t, "hs", hsPortal, "901"); res.InvoiceID == "" {
		t.Fatalf("the restored deal's run made no invoice: %+v", res)
	}
	invoiceIn(t, s.Sandbox, "901")
	reply = hsOK(t, s, hsBody(hsEvent{id: "90103", deal: "901", typ: "deal.restore", at: time.Now()}))
	if len(reply.Results) != 1 || !reply.Results[0].Duplicate {
		t.Fatalf("a second restore of the invoiced deal: %+v, want a duplicate of its run", reply.Results)
	}
	invoiceIn(t, s.Sandbox, "901")
	if got := f.WriteBacks(hsPortal, "901"); got != 1 {
		t.Errorf("%d write-backs, want 1", got)
	}

	seedHubSpotDeal(f, hsPortal, "902", "100")
	f.SetDealProperty(hsPortal, "902", "dealstage", "appointmentscheduled")
	hsOK(t, s, hsBody(hsEvent{id: "90201", deal: "902", typ: "deal.restore", at: time.Now()}))
	if err := s.waitRun(t, workflows.DealWorkflowID("hs", hsPortal, "902"), nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDealNotWon {
		t.Fatalf("a restored deal that is not won: want DealNotWon, got %v", err)
	}
	if n := s.invoicesFor("902"); n != 0 {
		t.Fatalf("%d invoices of a restored deal that is not won", n)
	}
}
