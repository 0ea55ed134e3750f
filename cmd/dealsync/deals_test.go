package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/backfill"
	"github.com/dealsync/dealsync/connectors/hubspot/hubspotfake"
	"github.com/dealsync/dealsync/rerun"
	"github.com/dealsync/dealsync/workflows"
)

// syncDeals runs `deals sync --json` with args and returns its results.
// The output says whether the period was open-ended: no --until.
func syncDeals(ctx context.Context, t *testing.T, cfg string, args ...string) []backfill.Result {
	t.Helper()
	out := runJSON[struct {
		OpenEnded bool `json:"open_ended"`
		Deals     []backfill.Result
	}](ctx, t, append([]string{"--config", cfg, "deals", "sync", "--json"}, args...)...)
	if open := !slices.Contains(args, "--until"); out.OpenEnded != open {
		t.Errorf("deals sync %v: open_ended %v, want %v", args, out.OpenEnded, open)
	}
	return out.Deals
}

// HubSpot won four deals in November; dealsync heard of one (its webhook
// was delivered), the CRM gave up on the others. `deals sync` finds the
// three without a run, one of them still with the close date its rep
// forecast for January (the period is the deals' last modification, not
// their close date), and invoices them, skips the invoiced one and the
// deals that are lost or last modified before the period; a second sync
// starts nothing.
func TestDealsSyncInvoicesWonDealsWithoutARun(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startTemporal(ctx, t, false)
	erp, erpURL := startSandbox(t)
	hs := hubspotfake.New()
	defer hs.Close()
	hs.AddPortal("62515", "pat-na1-62515")
	for _, d := range []struct{ id, stage, closed, modified, amount string }{
		{"4711", "closedwon", "2026-11-03T10:00:00.000Z", "2026-11-03T10:00:02.000Z", "300.00"},
		{"4712", "closedwon", "2026-11-10T10:00:00.000Z", "2026-11-10T10:00:02.000Z", "120.00"},
		{"4713", "closedwon", "2026-11-20T10:00:00.000Z", "2026-11-20T10:00:02.000Z", "80.00"},
		{"4714", "closedlost", "2026-11-12T10:00:00.000Z", "2026-11-12T10:00:02.000Z", "50.00"},
		{"4715", "closedwon", "2026-10-20T10:00:00.000Z", "2026-10-20T10:00:02.000Z", "70.00"},
		{"4716", "closedwon", "2027-01-29T00:00:00.000Z", "2026-11-25T15:30:00.000Z", "90.00"},
	} {
		hs.PutDeal("62515", hubspotfake.Deal{ID: d.id,
			Properties: hubspotfake.Props("dealname", "Deal "+d.id, "dealstage", d.stage, "amount", d.amount,
				"closedate", d.closed, "hs_lastmodifieddate", d.modified, "deal_currency_code", "EUR"),
			Companies: []hubspotfake.Association{{ID: "5471", Type: "deal_to_company"}},
		})
	}
	hs.PutCompany("62515", hubspotfake.Object{ID: "5471", Properties: hubspotfake.Props("name", "Renew GmbH")})

	cfg, listen := startHubSpotCLI(ctx, t, srv, erpURL, hs.URL, "")
	sendHubSpotWon(ctx, t, cfg, listen, 9001, "4711") // the one webhook that arrived
	c := temporalClient(ctx, t, srv)
	if err := c.GetWorkflow(ctx, workflows.DealWorkflowID("hs", "62515", "4711"), "").Get(ctx, nil); err != nil {
		t.Fatal(err)
	}

	byDeal := func(rs []backfill.Result) map[string]backfill.Result {
		m := map[string]backfill.Result{}
		for _, r := range rs {
			m[r.DealID] = r
		}
		return m
	}
	dry := byDeal(syncDeals(ctx, t, cfg, "--connection", "hs", "--since", "2026-11-01", "--until", "2026-12-01", "--dry-run"))
	if len(dry) != 4 || dry["4711"].Existing != "Completed" || dry["4711"].Skipped != "invoiced already" ||
		dry["4712"].Existing != "" || dry["4712"].Skipped != "dry run" || dry["4713"].CloseDate != "2026-11-20" ||
		dry["4716"].CloseDate != "2027-01-29" || dry["4716"].Skipped != "dry run" {
		t.Fatalf("dry run: %+v", dry)
	}
	if n := len(erp.Invoices()); n != 1 {
		t.Fatalf("%d invoices after the dry run", n)
	}

	res := byDeal(syncDeals(ctx, t, cfg, "--connection", "hs", "--since", "2026-11-01", "--until", "2026-12-01"))
	for _, id := range []string{"4712", "4713", "4716"} {
		if res[id].NewRun == "" {
			t.Fatalf("deal %s not started: %+v", id, res)
		}
		var out workflows.InvoiceDealResult
		if err := c.GetWorkflow(ctx, res[id].WorkflowID, res[id].NewRun).Get(ctx, &out); err != nil || out.InvoiceID == "" {
			t.Fatalf("the run of %s: %+v, %v", id, out, err)
		}
		if hs.WriteBacks("62515", id) != 1 {
			t.Errorf("deal %s written back %d times", id, hs.WriteBacks("62515", id))
		}
	}
	// The Web UI says what started each run: the webhook's, the sync's.
	for id, by := range map[string]string{"4711": "a webhook", "4712": "dealsync deals sync"} {
		summary, details := runMetadata(ctx, t, c, workflows.DealWorkflowID("hs", "62515", id))
		if want := "Deal " + id + ` · won → invoice via connection "hs" (deal read from the CRM)`; summary != want || !strings.HasSuffix(details, "\n- started by "+by) {
			t.Errorf("the run of %s says %q, details %q; want %q, started by %s", id, summary, details, want, by)
		}
	}
	refs := map[string]int{}
	for _, inv := range erp.Invoices() {
		refs[inv.Reference]++
	}
	if len(refs) != 4 || refs["4711"] != 1 || refs["4712"] != 1 || refs["4713"] != 1 || refs["4716"] != 1 {
		t.Errorf("invoices by deal: %v", refs)
	}
	again := syncDeals(ctx, t, cfg, "--connection", "hs", "--since", "2026-11-01", "--until", "2026-12-01")
	if len(again) != 4 {
		t.Errorf("second sync listed %d deals, want the 4 won ones: %+v", len(again), again)
	}
	for _, r := range again {
		if r.NewRun != "" || r.Skipped != "invoiced already" {
			t.Errorf("second sync: %+v", r)
		}
	}
	// Without --until (open-ended, as for an outage): the same won deals,
	// all invoiced already.
	open := syncDeals(ctx, t, cfg, "--connection", "hs", "--since", "2026-11-01", "--dry-run")
	if len(open) != 4 {
		t.Errorf("open-ended sync listed %d deals, want the 4 won ones: %+v", len(open), open)
	}

	// Usage errors: exit 2.
	for _, args := range [][]string{
		{"--connection", "hs"},
		{"--connection", "hs", "--since", "2026-12-01", "--until", "2026-11-01"},
		{"--connection", "nope", "--since", "2026-11-01"},
		{"--dev", "--connection", "demo", "--since", "2026-11-01"},          // generic: nothing to list
		{"--connection", "hs", "--since", "2026-11-01", "--account", "999"}, // an account hs does not serve
	} {
		if _, err := runOut(ctx, append([]string{"--config", cfg, "deals", "sync"}, args...)...); exitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, exitCode(err), err)
		}
	}
	if !strings.Contains(fmt.Sprint(hs.Requests()), "/crm/objects/2026-03/0-3/search") {
		t.Error("no search request reached HubSpot")
	}
}

// Without --until the period has no end (HubSpot lists the deals modified
// up to when it reads them; the others stop at now); with it, it ends
// there. A --since not before the end is a usage error.
func TestSyncPeriod(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var o backfill.Options
	if err := syncPeriod(&o, "2026-11-01", "", now); err != nil || !o.OpenEnded || !o.Until.Equal(now) ||
		!o.Since.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("no --until: %+v, %v; want an open period, Until now", o, err)
	}
	o = backfill.Options{}
	if err := syncPeriod(&o, "2026-11-01", "2026-11-20T08:00:00Z", now); err != nil || o.OpenEnded || !o.Until.Equal(time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("--until given: %+v, %v; want the period to end there", o, err)
	}
	for _, args := range [][2]string{{"", ""}, {"2026-12-02", ""}, {"2026-11-01", "2026-11-01"}, {"2026-11-01", "soon"}} {
		if err := syncPeriod(&backfill.Options{}, args[0], args[1], now); exitCode(err) != 2 {
			t.Errorf("--since %q --until %q: %v (exit %d), want a usage error", args[0], args[1], err, exitCode(err))
		}
	}
	// A --since to come, without --until, is held against now, and says
	// so: no --until was given.
	if err := syncPeriod(&backfill.Options{}, "2026-12-02", "", now); !strings.Contains(fmt.Sprint(err), "--since 2026-12-02T00:00:00Z is not before now (") || strings.Contains(fmt.Sprint(err), "--until") {
		t.Errorf("--since to come: %v", err)
	}
	// A --since given that is no date says so, not that it is missing.
	if err := syncPeriod(&backfill.Options{}, "yesterday", "", now); exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), `--since: "yesterday" is neither a date`) {
		t.Errorf("--since yesterday: %v", err)
	}
}

// Review: `deals sync --dry-run` against a CRM it could not reach printed
// "0 won deals, 0 runs started" and then the listing's error: the summary
// read as nothing to do. When the listing fails the summary says so; a dry
// run says how many would start, in the singular when it is one.
func TestPrintSyncSummary(t *testing.T) {
	listErr := fmt.Errorf("listing the won deals of account 62515: dial tcp: lookup api.hubapi.com: no such host")
	one := []backfill.Result{{DealID: "4711", WorkflowID: "invoice/hubspot-eu/62515/4711", Stage: "closedwon", Skipped: "dry run"}}
	two := append(slices.Clone(one), backfill.Result{DealID: "4712", WorkflowID: "invoice/hubspot-eu/62515/4712", Skipped: "a run started meanwhile: r1"})
	for _, c := range []struct {
		results []backfill.Result
		dryRun  bool
		err     error
		want    string
	}{
		{nil, true, listErr, "listing the won deals failed (the error follows): none listed, nothing done\n"},
		{nil, false, listErr, "listing the won deals failed (the error follows): none listed, nothing done\n"},
		{one, true, listErr, "listing the won deals failed (the error follows): 1 won deal listed, 1 would start a run; others may be missing\n"},
		{one, true, nil, "1 won deal, 1 would start a run\n"},
		{two, true, nil, "2 won deals, 1 would start a run\n"},
		{[]backfill.Result{{DealID: "4711", NewRun: "r2"}}, false, nil, "1 won deal, 1 run started\n"},
		{nil, false, nil, "0 won deals, 0 runs started\n"},
	} {
		var out strings.Builder
		printSync(&out, c.results, c.dryRun, c.err)
		lines := strings.SplitAfter(out.String(), "\n")
		if got := lines[len(lines)-2]; got != c.want {
			t.Errorf("%d results, dry run %v, error %v: summary %q, want %q", len(c.results), c.dryRun, c.err, got, c.want)
		}
		if strings.Contains(out.String(), "0 runs started") && c.err != nil {
			t.Errorf("a failed listing summed up as nothing to do:\n%s", out.String())
		}
	}
}

// runMetadata is the summary and details the Web UI shows of the latest
// run of workflowID (its start's user metadata).
func runMetadata(ctx context.Context, t *testing.T, c client.Client, workflowID string) (summary, details string) {
	t.Helper()
	desc, err := c.DescribeWorkflow(ctx, workflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	if summary, err = desc.GetStaticSummary(); err != nil {
		t.Fatal(err)
	}
	if details, err = desc.GetStaticDetails(); err != nil {
		t.Fatal(err)
	}
	return summary, details
}

// A deal's stage and the errors printed beside it are the CRM's (a
// trigger's failure quotes the deal's values): a terminal escape sequence
// or a line break in them reaches neither the operator's terminal nor the
// table as such, in `deals sync` and in `runs retry`, nor in the error
// they exit with.
func TestSyncAndRetryTablesEscapeControlCharacters(t *testing.T) {
	const evil = "\x1b]0;owned\x07\x1b[2J"
	var out strings.Builder
	printSync(&out, []backfill.Result{
		{DealID: "4711", WorkflowID: "invoice/hubspot-eu/62515/4711", Stage: "won" + evil, Error: "the trigger failed on " + evil + "\nsecond line"},
	}, false, nil)
	printRetries(&out, rerun.Options{TaskQueue: "dealsync", DryRun: true}, []rerun.Result{
		{WorkflowID: "invoice/shop/D-1", FailedRun: "r1", Skipped: "the ERP said " + evil + "\nsecond line", MappingWarning: "w" + evil, SettingsWarning: "s" + evil},
	}, nil, []string{"shop"})
	// The command's exit then says the first item's error on stderr.
	exit := exitFor(nil, []backfill.Result{{DealID: "4711" + evil, Error: "the trigger failed on " + evil + "\nsecond line"}},
		func(r backfill.Result) (string, string) { return "deal " + r.DealID, r.Error })
	if exit == nil {
		t.Fatal("exitFor of a failed deal: no error")
	}
	fmt.Fprintln(&out, "dealsync:", exit)
	if strings.ContainsAny(out.String(), "\x1b\x07") {
		t.Errorf("a control character reached the output:\n%q", out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "second line") {
			t.Errorf("a line break in a message split the table's row:\n%s", out.String())
		}
	}
}
