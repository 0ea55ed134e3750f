package mapping_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// date() of an RFC 3339 timestamp dates it as deal.close_date dates the
// same moment: in the mapping's time_zone, and without one in the
// timestamp's own offset. A date without a time is the same everywhere,
// and so is exactly midnight UTC, a date sent as a timestamp (as the
// sources read close_date, HubSpot's date properties).
// The trigger, a predicate and a literal see the same dates.
func TestDateDatesTimestampsInTheTimeZone(t *testing.T) {
	const late = "2026-02-01T23:30:00-05:00" // 05:30 on 2 February in Berlin
	src := func(zone string) string {
		s := "name: z\n"
		if zone != "" {
			s += "time_zone: " + zone + "\n"
		}
		return s + `trigger: date(deal.raw["start"]) == deal.close_date
invoice:
  issue_date: date(deal.raw["start"])
  due_date: 'date("` + late + `")'
  memo: 'string(date(deal.raw["start"])) + "|" + string(deal.close_date) + "|" + join(map([deal.raw["start"]], string(date(#))), ",") + "|" + string(date(deal.raw["day"])) + "|" + string(date(deal.raw["midnight"])) + "|" + string(deal.close_time == event.occurred_at)'
`
	}
	at, err := time.Parse(time.RFC3339, late)
	if err != nil {
		t.Fatal(err)
	}
	ev := wonEvent("closedwon", "")
	ev.OccurredAt = at
	ev.Deal.CloseDate, ev.Deal.CloseTime = model.DateOf(at), at
	ev.Deal.Raw = map[string]json.RawMessage{"start": json.RawMessage(`"` + late + `"`), "day": json.RawMessage(`"2026-02-01"`),
		"midnight": json.RawMessage(`"2026-02-01T00:00:00Z"`)}

	for _, c := range []struct{ zone, date string }{
		{"Europe/Berlin", "2026-02-02"},
		{"America/Los_Angeles", "2026-02-01"}, // 20:30 there
		{"Asia/Tokyo", "2026-02-02"},
		{"", "2026-02-01"}, // no time_zone: the sender's offset, as close_date
	} {
		m := parse(t, src(c.zone))
		inv, err := m.Map(ev)
		if err != nil {
			t.Fatalf("%s: %v", c.zone, err)
		}
		want := c.date + "|" + c.date + "|" + c.date + "|2026-02-01|2026-02-01|true"
		if inv.Memo != want || inv.IssueDate.String() != c.date || inv.DueDate.String() != c.date {
			t.Errorf("%q: memo %q, issue %s, due %s; want memo %q, both dates %s", c.zone, inv.Memo, inv.IssueDate, inv.DueDate, want, c.date)
		}
		if ok, why, err := m.Trigger([]string{"closedwon"}).Evaluate(ev); !ok || err != nil {
			t.Errorf("%q: the trigger dates date() and close_date differently: %s %v", c.zone, why, err)
		}
	}

	// A run's snapshot (used when its mapping file changed since the run
	// started) keeps date() as it was: the timestamp's own date, whatever
	// the time_zone.
	old := []byte(src("Europe/Berlin"))
	m, err := mapping.FromSnapshot(&mapping.Snapshot{Name: "z", Hash: mapping.HashOf(old), Path: "z.yaml", Source: old})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := m.Map(ev)
	if err != nil {
		t.Fatal(err)
	}
	if want := "2026-02-01|2026-02-02|2026-02-01|2026-02-01|2026-02-01|true"; inv.Memo != want || inv.IssueDate.String() != "2026-02-01" {
		t.Errorf("snapshot: memo %q, issue %s; want memo %q, issue 2026-02-01", inv.Memo, inv.IssueDate, want)
	}
}
