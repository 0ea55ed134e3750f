package pipedrive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/pipedrive/pipedrivefake"
	"github.com/dealsync/dealsync/model"
)

// ListWonDeals asks for the won deals updated since the period began and
// keeps those won within it, over the pages of the deals list (2 deals a
// page here).
func TestListWonDeals(t *testing.T) {
	f := pipedrivefake.New()
	t.Cleanup(f.Close)
	const c = "6083095"
	f.AddCompany(c, "token-6083095")
	for _, d := range []string{
		`{"id":1,"status":"won","won_time":"2026-11-03T10:00:00Z","update_time":"2026-11-03T10:00:00Z","stage_id":5,"pipeline_id":2}`,
		`{"id":2,"status":"lost","update_time":"2026-11-04T10:00:00Z"}`,
		`{"id":3,"status":"won","won_time":"2026-11-02T10:00:00Z","update_time":"2026-11-05T10:00:00Z"}`,
		`{"id":4,"status":"won","won_time":"2026-10-20T10:00:00Z","update_time":"2026-11-06T10:00:00Z"}`, // edited later
		`{"id":5,"status":"won","won_time":"2026-10-21T10:00:00Z","update_time":"2026-10-21T10:00:00Z"}`,
		`{"id":6,"status":"open","update_time":"2026-11-07T10:00:00Z"}`,
		`{"id":7,"status":"won","won_time":"2026-12-01T00:00:00Z","update_time":"2026-12-01T00:00:00Z"}`,
	} {
		f.PutDeal(c, pipedrivefake.ParseRecord(d))
	}
	s := apiSource(t, f.URL, nil)
	defer func(n int) { wonPageSize = n }(wonPageSize)
	wonPageSize = 2
	var got []string
	err := s.ListWonDeals(context.Background(), c, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		func(d connectors.WonDeal) error {
			got = append(got, d.ID+"@"+d.CloseDate.String())
			// The ids a webhook of the deal carries, for the trigger.
			if d.ID == "1" && (string(d.Raw["stage_id"]) != "5" || string(d.Raw["pipeline_id"]) != "2") {
				t.Errorf("deal 1's raw fields %s", d.Raw)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if want := "1@2026-11-03,3@2026-11-02"; strings.Join(got, ",") != want {
		t.Fatalf("won deals %v, want %s", got, want)
	}
	var q string
	pages := 0
	for _, r := range f.Requests() {
		if r.Path == "/api/v2/deals" {
			q = r.Query
			pages++
		}
	}
	if pages != 2 {
		t.Errorf("%d pages for 4 won deals updated since the 1st, 2 a page; want 2", pages)
	}
	for _, want := range []string{"status=won", "updated_since=2026-11-01T00%3A00%3A00Z", "limit=2", "cursor="} {
		if !strings.Contains(q, want) {
			t.Errorf("query %q lacks %s", q, want)
		}
	}

	// The listing is bounded: more won deals updated since the period
	// began than maxWonPages pages hold is an error, not an endless read.
	defer func(n int) { maxWonPages = n }(maxWonPages)
	maxWonPages = 1
	err = s.ListWonDeals(context.Background(), c, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		func(connectors.WonDeal) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "more than 2 won deals updated since 2026-11-01T00:00:00Z") {
		t.Errorf("over the bound: %v", err)
	}
}

// A deals list whose next_cursor names a page already read (a mock that
// answers every page with the same next_cursor, or two cursors naming
// each other) ends the listing at once with an error saying so: it read
// the same page about 200 times in 10 s, then said the company had more
// than 100,000 won deals updated since the period began, which was false.
func TestListWonDealsStopsAtARepeatedCursor(t *testing.T) {
	for name, c := range map[string]struct {
		next     func(cursor string) string
		requests int
		repeated string
	}{
		"the same cursor": {func(string) string { return "c2FtZQ==" }, 2, `"c2FtZQ=="`},
		"two cursors":     {func(cur string) string { return map[string]string{"": "A", "A": "B", "B": "A"}[cur] }, 3, `"A"`},
	} {
		var mu sync.Mutex
		var requests []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			requests = append(requests, r.URL.Path+"?cursor="+r.URL.Query().Get("cursor"))
			mu.Unlock()
			_, _ = fmt.Fprintf(w, `{"success":true,"data":[{"id":1,"status":"won","won_time":"2026-11-03T10:00:00Z","update_time":"2026-11-03T10:00:00Z"}],`+
				`"additional_data":{"next_cursor":%q}}`, c.next(r.URL.Query().Get("cursor")))
		}))
		s := apiSource(t, srv.URL, nil)
		var got []string
		err := s.ListWonDeals(context.Background(), "6083095", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
			func(d connectors.WonDeal) error {
				got = append(got, d.ID)
				return nil
			})
		srv.Close()
		if len(requests) != c.requests {
			t.Errorf("%s: %d requests, want %d: %v", name, len(requests), c.requests, requests)
		}
		if err == nil || !errors.Is(err, connectors.ErrPermanent) ||
			!strings.Contains(err.Error(), "list won deals of company 6083095: page "+fmt.Sprint(c.requests)+" of /api/v2/deals names by its next_cursor as the next page "+c.repeated+
				", a page already read: the API's paging loops") || strings.Contains(err.Error(), "more than") {
			t.Errorf("%s: %v; want a permanent error saying the cursor repeated", name, err)
		}
		if strings.Join(got, ",") != "1" {
			t.Errorf("%s: deals listed %v, want 1 once", name, got)
		}
	}
}

// The deals list of API v2 holds the deals not archived: a deal won in the
// period and archived since is listed from /api/v2/deals/archived.
func TestListWonDealsReadsTheArchivedDealsToo(t *testing.T) {
	f := pipedrivefake.New()
	t.Cleanup(f.Close)
	const c = "6083095"
	f.AddCompany(c, "token-6083095")
	for _, d := range []string{
		`{"id":1,"status":"won","won_time":"2026-11-03T10:00:00Z","update_time":"2026-11-03T10:00:00Z","stage_id":5,"pipeline_id":2}`,
		`{"id":8,"status":"won","won_time":"2026-11-04T10:00:00Z","update_time":"2026-11-09T10:00:00Z","is_archived":true}`,
		`{"id":9,"status":"lost","update_time":"2026-11-09T10:00:00Z","is_archived":true}`,
	} {
		f.PutDeal(c, pipedrivefake.ParseRecord(d))
	}
	s := apiSource(t, f.URL, nil)
	var got []string
	err := s.ListWonDeals(context.Background(), c, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		func(d connectors.WonDeal) error {
			got = append(got, d.ID)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "1,8" {
		t.Fatalf("won deals %v, want 1 and the archived 8", got)
	}
}

// A fetched deal as a webhook says it: its status, and its stage and
// pipeline ids as numbers, as webhooks send them; nothing else.
func TestWebhookDeal(t *testing.T) {
	s := apiSource(t, "http://unused.invalid", nil)
	// Ids as numbers (a fetched deal's) and as strings (a deal file saved
	// before they were numbers).
	for _, raw := range []map[string]json.RawMessage{
		{"stage_id": json.RawMessage(`5`), "pipeline_id": json.RawMessage(`2`), "org_id": json.RawMessage(`9`)},
		{"stage_id": json.RawMessage(`"5"`), "pipeline_id": json.RawMessage(`"2"`), "org_id": json.RawMessage(`"9"`)},
	} {
		got := s.WebhookDeal(model.Deal{ID: "7", Name: "Deal 7", Stage: "won", Raw: raw})
		if got.ID != "7" || got.Stage != "won" || got.Name != "" || len(got.Raw) != 2 ||
			string(got.Raw["stage_id"]) != "5" || string(got.Raw["pipeline_id"]) != "2" {
			t.Errorf("%s: %+v (raw %s)", raw["stage_id"], got, got.Raw)
		}
	}
	// The deal as FetchDeal gives it.
	f := fakePipedrive(t, "token-6083095")
	fetched, err := apiSource(t, f.URL, nil).FetchDeal(context.Background(), "6083095", "213973")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.WebhookDeal(fetched); string(got.Raw["stage_id"]) != "428" || string(got.Raw["pipeline_id"]) != "50" {
		t.Errorf("the fetched deal as a webhook says it: raw %s", got.Raw)
	}
}
