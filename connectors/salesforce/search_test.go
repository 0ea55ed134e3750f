package salesforce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/salesforce/salesforcefake"
	"github.com/dealsync/dealsync/secret"
)

// ListWonDeals asks, in one SOQL query, for the Opportunities won (IsWon,
// or a StageName of won_stages) last modified (SystemModstamp) in the
// period, widened to whole seconds, with a CloseDate on the day before
// its first (UTC) or later: a CloseDate is picked in the rep's zone, and
// the rep's forecast, kept when the opportunity is won, may be
// after the period; one closed before it (won long ago, edited in the
// period, or back-dated) is not listed.
func TestListWonDeals(t *testing.T) {
	f := salesforcefake.New(orgA, "cid-a", "cs-a")
	t.Cleanup(f.Close)
	for _, o := range []string{
		`{"Id":"0065w00000000001AAA","StageName":"Closed Won","IsWon":true,"CloseDate":"2026-11-03","SystemModstamp":"2026-11-03T10:00:00.000+0000"}`,
		`{"Id":"0065w00000000002AAA","StageName":"Closed Lost","IsWon":false,"CloseDate":"2026-11-04","SystemModstamp":"2026-11-04T10:00:00.000+0000"}`,
		`{"Id":"0065w00000000003AAA","StageName":"Signed","IsWon":false,"CloseDate":"2026-11-02","SystemModstamp":"2026-11-02T10:00:00.000+0000"}`,
		// Modified before the period, and at its end (excluded).
		`{"Id":"0065w00000000004AAA","StageName":"Closed Won","IsWon":true,"CloseDate":"2026-11-05","SystemModstamp":"2026-10-31T23:59:59.000+0000"}`,
		`{"Id":"0065w00000000005AAA","StageName":"Closed Won","IsWon":true,"CloseDate":"2026-11-27","SystemModstamp":"2026-11-27T15:00:01.000+0000"}`,
		// Won in the period with the forecast CloseDate kept, in the
		// future; modified within the period's last second.
		`{"Id":"0065w00000000006AAA","StageName":"Closed Won","IsWon":true,"CloseDate":"2027-03-31","SystemModstamp":"2026-11-20T08:15:00.000+0000"}`,
		`{"Id":"0065w00000000008AAA","StageName":"Closed Won","IsWon":true,"CloseDate":"2026-11-01","SystemModstamp":"2026-11-27T15:00:00.000+0000"}`,
		// Won on the period's first evening in California (02:00 UTC),
		// its CloseDate that day there, the day before in UTC.
		`{"Id":"0065w00000000009AAA","StageName":"Closed Won","IsWon":true,"CloseDate":"2026-10-31","SystemModstamp":"2026-11-01T02:00:00.000+0000"}`,
		// Closed before the period (won long ago, only edited in it).
		`{"Id":"0065w00000000007AAA","StageName":"Closed Won","IsWon":true,"CloseDate":"2026-09-30","SystemModstamp":"2026-11-21T15:00:00.000+0000"}`,
	} {
		f.PutOpportunity(salesforcefake.ParseRecord(o))
	}
	s := apiSource(t, f, nil)
	var got []string
	// Until within a second, from a time in another zone: that second
	// counts, the next does not.
	err := s.ListWonDeals(context.Background(), orgA, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 27, 16, 0, 0, 500_000_000, time.FixedZone("CET", 3600)),
		func(d connectors.WonDeal) error {
			got = append(got, d.ID[len(d.ID)-4:]+"@"+d.CloseDate.String())
			// As a notification of it says: won, its StageName in Raw.
			if d.EventStage != StageWon || string(d.Raw["StageName"]) != `"`+d.Stage+`"` || string(d.Raw["Id"]) != `"`+d.ID+`"` {
				t.Errorf("opportunity %s: event stage %q, raw %s", d.ID, d.EventStage, d.Raw)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	// In the order of their last modification.
	if want := "9AAA@2026-10-31,3AAA@2026-11-02,1AAA@2026-11-03,6AAA@2027-03-31,8AAA@2026-11-01"; strings.Join(got, ",") != want {
		t.Fatalf("won opportunities %v, want %s", got, want)
	}
	q := f.Queries()
	if len(q) != 1 || !strings.Contains(q[0], "(IsWon = true OR StageName IN ('closed won', 'signed')) AND SystemModstamp >= 2026-11-01T00:00:00Z AND SystemModstamp < 2026-11-27T15:00:01Z AND CloseDate >= 2026-10-31 ORDER BY SystemModstamp, Id") ||
		strings.Contains(q[0], "CloseDate <") {
		t.Errorf("queries %q", q)
	}
	if got := soqlString(`O'Brien \ Co`); got != `'O\'Brien \\ Co'` {
		t.Errorf("soqlString: %s", got)
	}
}

// A listing longer than a deal's page bound (`deals sync` over a busy
// period) is read to its end, page by page.
func TestListWonDealsReadsEveryPage(t *testing.T) {
	f := salesforcefake.New(orgA, "cid-a", "cs-a")
	t.Cleanup(f.Close)
	f.WonPageSize = 1
	const n = maxPages + 5
	for i := range n {
		f.PutOpportunity(salesforcefake.ParseRecord(fmt.Sprintf(`{"Id":"0065w%014dAAA","StageName":"Closed Won","IsWon":true,"CloseDate":"2026-11-03","SystemModstamp":"2026-11-03T10:00:00.000+0000"}`, i)))
	}
	s := apiSource(t, f, nil)
	var got []string
	err := s.ListWonDeals(context.Background(), orgA, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
		func(d connectors.WonDeal) error {
			got = append(got, d.ID)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || got[0] != "0065w00000000000000AAA" || got[n-1] != fmt.Sprintf("0065w%014dAAA", n-1) {
		t.Fatalf("%d won opportunities listed (%v), want all %d in order", len(got), got, n)
	}
}

// fetch.extra_fields are read into deal.raw by the fetch and by the
// listing of `deals sync` alike, so a trigger or mapping that reads one
// (RecordTypeId) sees it on both paths; the listing had only Id,
// StageName and CloseDate, and the fetch a fixed list. A name that is not
// a field API name is refused at start (it goes into the SOQL).
func TestExtraFieldsAreReadOnEveryPath(t *testing.T) {
	f := salesforcefake.New(orgA, "cid-a", "cs-a")
	t.Cleanup(f.Close)
	f.MultiCurrency = true
	// Fields of the org: one it does not have is refused (INVALID_FIELD).
	f.PutField(salesforcefake.Field{Name: "RecordTypeId", Type: "reference", Length: 18})
	f.AddFields("PO_Number__c")
	f.PutOpportunity(salesforcefake.ParseRecord(`{"Id":"0065w0000000001AAA","Name":"Partner deal","StageName":"Closed Won","IsWon":true,"CurrencyIsoCode":"EUR",` +
		`"CloseDate":"2026-11-03","SystemModstamp":"2026-11-03T10:00:00.000+0000","Amount":100,"RecordTypeId":"0125w00000PartnAAA","PO_Number__c":"PO-7"}`))
	s := apiSource(t, f, func(c *Config) { c.Fetch.ExtraFields = []string{"RecordTypeId", "PO_Number__c"} })
	var listed connectors.WonDeal
	err := s.ListWonDeals(context.Background(), orgA, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC),
		func(d connectors.WonDeal) error { listed = d; return nil })
	if err != nil || string(listed.Raw["RecordTypeId"]) != `"0125w00000PartnAAA"` || string(listed.Raw["PO_Number__c"]) != `"PO-7"` {
		t.Fatalf("listed: %v, raw %s", err, listed.Raw)
	}
	d, err := s.FetchDeal(context.Background(), orgA, "0065w0000000001AAA")
	if err != nil || string(d.Raw["RecordTypeId"]) != `"0125w00000PartnAAA"` || string(d.Raw["PO_Number__c"]) != `"PO-7"` {
		t.Fatalf("fetched: %v, raw %s", err, d.Raw)
	}
	cfg := DefaultConfig()
	cfg.Accounts = map[string]Account{strings.ToLower(orgA): {InstanceURL: "https://a.my.salesforce.com", ClientID: "c", ClientSecret: secret.New("s")}}
	cfg.AllowUnauthenticated = true
	cfg.Fetch.ExtraFields = []string{"RecordTypeId FROM User --"}
	if _, err := New(cfg, connectors.Env{}); err == nil || !strings.Contains(err.Error(), "fetch.extra_fields[0]") {
		t.Errorf("an extra field that is not an API name: %v, want refused", err)
	}
}

// A query whose nextRecordsUrl names a page already read (a mock that
// answers every page with the same nextRecordsUrl, or two naming each
// other) ends at once with an error saying so, as Pipedrive's listing
// does at a repeated next_cursor: it read the same page until the bound
// of 2,500 pages, and then said only "more than 2500 pages".
func TestListWonDealsStopsAtARepeatedNextRecordsURL(t *testing.T) {
	const base = "/services/data/" + DefaultAPIVersion + "/query/"
	for name, c := range map[string]struct {
		next     func(page string) string
		requests int
		repeated string
	}{
		"the same locator": {func(string) string { return "01gSAME-2000" }, 2, `"query/01gSAME-2000"`},
		"two locators": {func(page string) string {
			return map[string]string{"": "01gA-2000", "01gA-2000": "01gB-4000", "01gB-4000": "01gA-2000"}[page]
		}, 3, `"query/01gA-2000"`},
	} {
		var mu sync.Mutex
		var requests []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if r.URL.Path == "/services/oauth2/token" {
				_, _ = io.WriteString(w, `{"access_token":"tok","token_type":"Bearer","instance_url":"`+"http://"+r.Host+`"}`)
				return
			}
			mu.Lock()
			requests = append(requests, r.URL.Path)
			mu.Unlock()
			page := strings.TrimPrefix(r.URL.Path, base) // "" for the query's first page
			if r.URL.Query().Has("q") {
				page = ""
			}
			_, _ = fmt.Fprintf(w, `{"totalSize":9000,"done":false,"nextRecordsUrl":%q,"records":[{"Id":"0065w00000000001AAA","StageName":"Closed Won","CloseDate":"2026-11-03"}]}`,
				base+c.next(page))
		}))
		s := testSource(t, func(cfg *Config) {
			cfg.Accounts = map[string]Account{strings.ToLower(orgA): {InstanceURL: srv.URL, ClientID: "cid-a", ClientSecret: secret.New("cs-a")}}
		})
		var got []string
		err := s.ListWonDeals(context.Background(), orgA, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
			func(d connectors.WonDeal) error {
				got = append(got, d.ID)
				return nil
			})
		srv.Close()
		if len(requests) != c.requests {
			t.Errorf("%s: %d requests, want %d: %v", name, len(requests), c.requests, requests)
		}
		if err == nil || !errors.Is(err, connectors.ErrPermanent) ||
			!strings.Contains(err.Error(), "list won opportunities of org "+strings.ToLower(orgA)+": page "+fmt.Sprint(c.requests)+" names by its nextRecordsUrl as the next page "+c.repeated+
				", a page already read: the API's paging loops (does instance_url point at a mock") || strings.Contains(err.Error(), "more than") {
			t.Errorf("%s: %v; want a permanent error saying the nextRecordsUrl repeated", name, err)
		}
		if len(got) != c.requests {
			t.Errorf("%s: %d opportunities listed, want one a page", name, len(got))
		}
	}
}
