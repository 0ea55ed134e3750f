package dealfile_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/mapping/dealfile"
	"github.com/dealsync/dealsync/model"
)

// genericBody is what `dealsync webhook send` posts to a generic source:
// a field the canonical deal has not (po_number, kept in deal.raw) and a
// close_date with a time (the moment the deal closed, which the mapping's
// time_zone dates: 1 December in Tokyo, 30 November in the sender's offset).
const genericBody = `{"event_id":"evt_9","occurred_at":"2026-11-30T23:40:00-05:00",
 "deal":{"id":"D-7","name":"Acme renewal","stage":"closed_won","amount":"480.00","currency":"EUR",
         "close_date":"2026-11-30T23:30:00-05:00","po_number":"PO-4711",
         "company":{"id":"C-1","name":"Acme GmbH","address":{"country":"DE"}},
         "line_items":[{"sku":"PRO-1Y","description":"Pro plan","quantity":"1","unit_price":"480.00"}]}}
`

// zonedPOMapping reads the extra field and dates in a time zone.
const zonedPOMapping = "name: po\ntime_zone: Asia/Tokyo\ninvoice:\n  memo: 'deal.raw[\"po_number\"]'\n"

// A file in the generic source's wire shape is read as the intake reads
// it: the dry run (and a golden case) gives the invoice of a run.
func TestReadReadsAGenericBodyAsTheSourceDoes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "po.deal.json")
	if err := os.WriteFile(path, []byte(genericBody), 0o644); err != nil {
		t.Fatal(err)
	}
	m := parse(t, zonedPOMapping)

	events, err := generic.ParseEvents([]byte(genericBody), "msg_1")
	if err != nil || len(events) != 1 {
		t.Fatalf("the generic source's parse: %v", err)
	}
	run, err := mapping.Apply(m, events[0])
	if err != nil {
		t.Fatalf("a run's invoice: %v", err)
	}
	if run.Memo != "PO-4711" || run.IssueDate != model.NewDate(2026, 12, 1) {
		t.Fatalf("a run's invoice: memo %q, issue date %v; the test needs the raw field and the zoned close time", run.Memo, run.IssueDate)
	}

	ev, err := dealfile.Read(path)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	dry, err := mapping.Apply(m, ev)
	if err != nil {
		t.Fatalf("the dry run's invoice: %v", err)
	}
	if got, want := mustJSON(t, dry), mustJSON(t, run); !bytes.Equal(got, want) {
		t.Fatalf("dry run and run differ:\n%s", mapping.LineDiff(string(want), string(got)))
	}

	// As a golden case, too.
	if err := os.WriteFile(filepath.Join(dir, "po.invoice.json"), mustJSON(t, run), 0o644); err != nil {
		t.Fatal(err)
	}
	results, err := mapping.RunGolden(dir, m, false, dealfile.Read)
	if err != nil || len(results) != 1 || !results[0].OK {
		t.Fatalf("golden case of a generic body: %+v, %v", results, err)
	}
}

// What the generic source refuses or completes, Read does too: an
// event without event_id gets the stand-in webhook-id, a body of several
// events or one the source refuses is an error.
func TestReadOfGenericBodies(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ev, err := dealfile.Read(write("no-id.json", `{"deal":{"id":"D-1","stage":"won"}}`))
	if err != nil || ev.EventID != dealfile.DryRunWebhookID || ev.Deal.ID != "D-1" {
		t.Errorf("an event without event_id: %+v, %v", ev, err)
	}
	if _, err := dealfile.Read(write("two.json", `[{"deal":{"id":"D-1","stage":"won"}},{"deal":{"id":"D-2","stage":"won"}}]`)); err == nil ||
		!strings.Contains(err.Error(), "2 events") {
		t.Errorf("a delivery of two events: %v", err)
	}
	if _, err := dealfile.Read(write("no-stage.json", `{"event_id":"e","deal":{"id":"D-1","po_number":"x"}}`)); err == nil ||
		!strings.Contains(err.Error(), "deal.stage: is required") {
		t.Errorf("a body the source refuses: %v", err)
	}
}

// A file in dealsync's own event shape (as `mapping test --fetch --save`
// writes it) is read as it is, strictly: deal.raw is the source's fields,
// not a field of them.
func TestReadOfDealsyncsEventShape(t *testing.T) {
	dir := t.TempDir()
	saved := model.DealEvent{EventID: "fetched-4711", Account: "62515", Deal: model.Deal{ID: "4711", Stage: "closedwon",
		Raw: map[string]json.RawMessage{"po_number": json.RawMessage(`"PO-1"`)}}}
	b, err := json.Marshal(saved)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "saved.deal.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if !dealfile.IsEventShape(b) {
		t.Fatalf("%s is not taken for dealsync's event shape", b)
	}
	ev, err := dealfile.Read(path)
	if err != nil || ev.Account != "62515" || len(ev.Deal.Raw) != 1 || string(ev.Deal.Raw["po_number"]) != `"PO-1"` {
		t.Fatalf("saved event read back as %+v: %v", ev, err)
	}

	strict := `{"event_id":"e","deal":{"id":"D-1","stage":"won","close_time":"2026-11-30T23:30:00Z","po_number":"x"}}`
	if err := os.WriteFile(path, []byte(strict), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := dealfile.Read(path); err == nil || !strings.Contains(err.Error(), "po_number") {
		t.Errorf("an unknown field in dealsync's event shape: %v", err)
	}
	for _, body := range []string{genericBody, `[{"deal":{"id":"D-1","stage":"won"}}]`, `{"deal":null}`, `not json`} {
		if dealfile.IsEventShape([]byte(body)) {
			t.Errorf("%s is taken for dealsync's event shape", body)
		}
	}
}

func parse(t *testing.T, src string) *mapping.File {
	t.Helper()
	m, err := mapping.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
