package mapping_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// A deal won late on 30 November UTC is a 1 December invoice in Tokyo and
// a 30 November one in New York: a mapping's time_zone dates the moments
// the CRM records (close time, event time); dates without a time stay.
func TestTimeZoneDatesMoments(t *testing.T) {
	lateWin := time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC)
	ev := wonEvent("closedwon", "contractsent")
	ev.OccurredAt = lateWin
	ev.Deal.CloseDate, ev.Deal.CloseTime = model.DateOf(lateWin), lateWin
	dateOnly := wonEvent("closedwon", "contractsent") // CloseDate 2026-11-20, no CloseTime
	dateOnly.OccurredAt = lateWin
	noClose := wonEvent("closedwon", "contractsent")
	noClose.Deal.CloseDate = model.Date{}
	noClose.OccurredAt = lateWin

	for _, tc := range []struct {
		name, zone      string
		ev              model.DealEvent
		issued, dueDate string
	}{
		{"no time_zone: the source's date", "", ev, "2026-11-30", "2026-12-30"},
		{"Tokyo", "Asia/Tokyo", ev, "2026-12-01", "2026-12-31"},
		{"New York", "America/New_York", ev, "2026-11-30", "2026-12-30"},
		{"a date without a time is the same everywhere", "Asia/Tokyo", dateOnly, "2026-11-20", "2026-12-20"},
		{"event.occurred_on in the zone", "Asia/Tokyo", noClose, "2026-12-01", "2026-12-31"},
		{"event.occurred_on without a zone is UTC", "", noClose, "2026-11-30", "2026-12-30"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "name: t\n"
			if tc.zone != "" {
				src += "time_zone: " + tc.zone + "\n"
			}
			inv, err := parse(t, src).Map(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if inv.IssueDate.String() != tc.issued || inv.DueDate.String() != tc.dueDate {
				t.Errorf("issue %s due %s, want %s %s", inv.IssueDate, inv.DueDate, tc.issued, tc.dueDate)
			}
		})
	}

	// The trigger sees the same dates as the invoice.
	m := parse(t, "name: t\ntime_zone: Asia/Tokyo\ntrigger: deal.close_date == date(\"2026-12-01\")\n")
	if ok, why := m.Trigger([]string{"closedwon"}).Evaluate(ev); !ok {
		t.Errorf("trigger in Tokyo: %s", why)
	}
}

func TestTimeZoneRefusesUnknownAndHostZones(t *testing.T) {
	for _, zone := range []string{"Mars/Olympus", "Local", "+09:00"} {
		_, err := mapping.Parse("tz.yaml", []byte("name: t\ntime_zone: "+zone+"\n"))
		var le *mapping.LoadError
		if !errors.As(err, &le) || len(le.Problems) != 1 || le.Problems[0].Key != "time_zone" || le.Problems[0].Line != 2 {
			t.Fatalf("time_zone %s: %v", zone, err)
		}
		if !strings.Contains(le.Problems[0].Message, zone) {
			t.Errorf("the problem does not name %s: %s", zone, le.Problems[0].Message)
		}
	}
}
