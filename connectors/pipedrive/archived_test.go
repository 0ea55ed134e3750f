package pipedrive

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/pipedrive/pipedrivefake"
)

// The deal's archive state is in Raw, for triggers and mappings: from the
// fetch, from a webhook and from the won deals listed by `deals sync`.
func TestArchivedInRaw(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	s := apiSource(t, f.URL, nil)
	d, err := s.FetchDeal(context.Background(), "6083095", "213973")
	if err != nil {
		t.Fatal(err)
	}
	if string(d.Raw["is_archived"]) != "false" || d.Raw["archive_time"] != nil {
		t.Errorf("a deal not archived: raw is_archived %s, archive_time %s", d.Raw["is_archived"], d.Raw["archive_time"])
	}
	f.ArchiveDeal("6083095", "213973")
	d, err = s.FetchDeal(context.Background(), "6083095", "213973")
	if err != nil {
		t.Fatal(err)
	}
	// Still a won deal, invoiced as any: only its write-back is refused.
	if d.Stage != "won" || len(d.LineItems) != 2 || string(d.Raw["is_archived"]) != "true" || !strings.HasPrefix(string(d.Raw["archive_time"]), `"20`) {
		t.Errorf("an archived deal: stage %s, %d lines, raw is_archived %s, archive_time %s", d.Stage, len(d.LineItems), d.Raw["is_archived"], d.Raw["archive_time"])
	}
	if w := s.WebhookDeal(d); string(w.Raw["is_archived"]) != "true" || string(w.Raw["archive_time"]) != string(d.Raw["archive_time"]) {
		t.Errorf("the fetched deal as a webhook says it: raw %s", w.Raw)
	}

	evs, err := s.Parse(delivery(changeStage, ""))
	if err != nil || len(evs) != 1 || string(evs[0].Deal.Raw["is_archived"]) != "false" || evs[0].Deal.Raw["archive_time"] != nil {
		t.Fatalf("the captured delivery: %v, %+v", err, evs)
	}
	archived := strings.Replace(changeStage, `"is_archived": false, "archive_time": null`, `"is_archived": true, "archive_time": "2026-01-15T09:00:00Z"`, 1)
	evs, err = s.Parse(delivery(archived, ""))
	if err != nil || len(evs) != 1 || string(evs[0].Deal.Raw["is_archived"]) != "true" || string(evs[0].Deal.Raw["archive_time"]) != `"2026-01-15T09:00:00Z"` {
		t.Fatalf("an archived deal's delivery: %v, %+v", err, evs)
	}

	f.PutDeal("6083095", pipedrivefake.ParseRecord(`{"id":7,"status":"won","won_time":"2026-11-03T10:00:00Z","update_time":"2026-11-03T10:00:00Z"}`))
	got := map[string]string{}
	if err := s.ListWonDeals(context.Background(), "6083095", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		func(d connectors.WonDeal) error { got[d.ID] = string(d.Raw["is_archived"]); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["7"] != "false" || got["213973"] != "true" {
		t.Errorf("listed won deals' is_archived: %v", got)
	}
}

// A deal archived in Pipedrive, whose API does not edit archived deals,
// is not sent the write-back: it fails for good, saying what to do, and
// after the deal is unarchived the write-back goes through.
func TestWriteBackToAnArchivedDeal(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	s := apiSource(t, f.URL, nil)
	res := connectors.InvoiceResult{InvoiceID: "inv-9", Number: "INV-0007"}
	f.ArchiveDeal("6083095", "213973")
	err := s.WriteBack(context.Background(), "6083095", "213973", res)
	var archived *ArchivedDealError
	if !errors.As(err, &archived) || !errors.Is(err, connectors.ErrPermanent) || archived.Refusal != nil {
		t.Fatalf("WriteBack: %v; want an ArchivedDealError, permanent, with no refusal", err)
	}
	if c, _ := connectors.Classify(err); c != connectors.Permanent {
		t.Errorf("class %v, want Permanent (not retried)", c)
	}
	for _, want := range []string{"deal 213973 of company 6083095 is archived in Pipedrive (since 20",
		"does not edit archived deals", "nothing was sent to the deal", "id inv-9, number INV-0007", "is not made again",
		"unarchive the deal in Pipedrive", `dealsync runs retry --writeback --query 'DealId = "213973" AND CrmAccount = "6083095"'`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q\nlacks %q", err, want)
		}
	}
	if n := f.WriteBackAttempts("6083095", "213973"); n != 0 {
		t.Fatalf("%d PATCHes sent to the archived deal, want none", n)
	}

	f.UnarchiveDeal("6083095", "213973")
	if err := s.WriteBack(context.Background(), "6083095", "213973", res); err != nil {
		t.Fatalf("after unarchiving: %v", err)
	}
	if f.WriteBacks("6083095", "213973") != 1 {
		t.Fatalf("write-backs %d, want 1", f.WriteBacks("6083095", "213973"))
	}
}

// archivingProxy stands before the fake: it archives the deal when the
// PATCH comes (a deal archived between the read and the write), and
// answers the reads (GET) with readStatus when set.
func archivingProxy(t *testing.T, f *pipedrivefake.Server, readStatus int) *httptest.Server {
	u, _ := url.Parse(f.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPatch:
			f.ArchiveDeal("6083095", strings.TrimPrefix(r.URL.Path, "/api/v2/deals/"))
		case readStatus != 0:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(readStatus)
			_, _ = w.Write([]byte(`{"success":false,"error":"read refused","data":null}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A PATCH refused because the deal was archived after the read (whatever
// Pipedrive's undocumented answer says) is told as the archive, and is
// not retried even when the refusal's status looks like the credentials'.
func TestWriteBackRefusedForADealArchivedMeanwhile(t *testing.T) {
	for _, status := range []int{http.StatusForbidden, http.StatusBadRequest, http.StatusNotFound} {
		f := fakePipedrive(t, "token-6083095")
		f.ArchivedPatchStatus = status
		s := apiSource(t, archivingProxy(t, f, 0).URL, nil)
		err := s.WriteBack(context.Background(), "6083095", "213973", connectors.InvoiceResult{InvoiceID: "inv-9"})
		var archived *ArchivedDealError
		var api *connectors.APIError
		if !errors.As(err, &archived) || archived.Refusal == nil || !errors.As(err, &api) || api.StatusCode != status {
			t.Fatalf("%d: %v; want an ArchivedDealError wrapping the refusal", status, err)
		}
		if c, _ := connectors.Classify(err); c != connectors.Permanent {
			t.Errorf("%d: class %v, want Permanent", status, c)
		}
		if !strings.Contains(err.Error(), "the deal was archived when Pipedrive refused the write-back") || !strings.Contains(err.Error(), pipedrivefake.ArchivedPatchError) {
			t.Errorf("%d: message %q", status, err)
		}
		if n := f.WriteBackAttempts("6083095", "213973"); n != 1 {
			t.Errorf("%d: %d PATCHes, want 1", status, n)
		}
	}

	// Answered as an outage: retried, and the retry's read finds the
	// deal archived and sends nothing.
	f := fakePipedrive(t, "token-6083095")
	f.ArchivedPatchStatus = http.StatusInternalServerError
	s := apiSource(t, archivingProxy(t, f, 0).URL, nil)
	err := s.WriteBack(context.Background(), "6083095", "213973", connectors.InvoiceResult{InvoiceID: "inv-9"})
	if c, _ := connectors.Classify(err); c != connectors.Retry {
		t.Fatalf("a 500: %v (class %v); want it retried", err, c)
	}
	err = s.WriteBack(context.Background(), "6083095", "213973", connectors.InvoiceResult{InvoiceID: "inv-9"})
	var archived *ArchivedDealError
	if !errors.As(err, &archived) || archived.Refusal != nil || f.WriteBackAttempts("6083095", "213973") != 1 {
		t.Fatalf("the retry: %v after %d PATCHes; want the archive, no second PATCH", err, f.WriteBackAttempts("6083095", "213973"))
	}
}

// The read before the write-back: one not answered is retried without a
// PATCH; one refused (404: a deleted deal) lets the PATCH go, whose
// answer is reported as before.
func TestWriteBackReadFails(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	s := apiSource(t, archivingProxy(t, f, http.StatusServiceUnavailable).URL, nil)
	err := s.WriteBack(context.Background(), "6083095", "213973", connectors.InvoiceResult{InvoiceID: "inv-9"})
	if c, _ := connectors.Classify(err); c != connectors.Retry || f.WriteBackAttempts("6083095", "213973") != 0 {
		t.Fatalf("a 503 to the read: %v (class %v), %d PATCHes; want it retried, no PATCH", err, c, f.WriteBackAttempts("6083095", "213973"))
	}

	f.DeleteDeal("6083095", "213973")
	s = apiSource(t, f.URL, nil)
	err = s.WriteBack(context.Background(), "6083095", "213973", connectors.InvoiceResult{InvoiceID: "inv-9"})
	var api *connectors.APIError
	var archived *ArchivedDealError
	if !errors.As(err, &api) || api.StatusCode != http.StatusNotFound || api.Op != "write back" || errors.As(err, &archived) {
		t.Fatalf("a deleted deal: %v; want the PATCH's 404", err)
	}
	if n := f.WriteBackAttempts("6083095", "213973"); n != 1 {
		t.Errorf("%d PATCHes, want 1", n)
	}
}
