package mapping_test

import (
	"encoding/json"
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
	if ok, why, err := m.Trigger([]string{"closedwon"}).Evaluate(ev); !ok || err != nil {
		t.Errorf("trigger in Tokyo: %s %v", why, err)
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

// date_in dates a moment in a zone the expression chooses: accounts of one
// connection in different zones each get their own calendar. A moment the
// CRM did not record gives an unset date.
func TestDateIn(t *testing.T) {
	lateWin := time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC)
	m := parse(t, `name: t
invoice:
  issue_date: 'coalesce(date_in(deal.close_time, event.account == "jp" ? "Asia/Tokyo" : "America/New_York"), deal.close_date)'
  memo: 'is_set(deal.close_time) ? "closed at " + string(date_in(event.occurred_at, "UTC")) : "date only"'
`)
	for _, tc := range []struct {
		account   string
		closeTime time.Time
		issued    string
		memo      string
	}{
		{"jp", lateWin, "2026-12-01", "closed at 2026-11-30"},
		{"us", lateWin, "2026-11-30", "closed at 2026-11-30"},
		{"jp", time.Time{}, "2026-11-20", "date only"}, // the CRM's date
	} {
		ev := wonEvent("closedwon", "contractsent")
		ev.Account, ev.OccurredAt = tc.account, lateWin
		ev.Deal.CloseTime = tc.closeTime
		if !tc.closeTime.IsZero() {
			ev.Deal.CloseDate = model.DateOf(tc.closeTime)
		}
		inv, err := m.Map(ev)
		if err != nil {
			t.Fatal(err)
		}
		if inv.IssueDate.String() != tc.issued || inv.Memo != tc.memo {
			t.Errorf("%s, %v: issued %s, memo %q; want %s, %q", tc.account, tc.closeTime, inv.IssueDate, inv.Memo, tc.issued, tc.memo)
		}
	}

	// The guide's example: a zone per Pipedrive company from a lookup table.
	guide := parse(t, `name: pd-companies
lookups:
  zones:
    default: Europe/Berlin
    entries: {"6083095": Asia/Tokyo, "15747575": America/New_York}
invoice:
  issue_date: 'coalesce(date_in(deal.close_time, lookup("zones", event.account)), deal.close_date)'
`)
	for account, want := range map[string]string{"6083095": "2026-12-01", "15747575": "2026-11-30", "777": "2026-12-01"} {
		ev := wonEvent("closedwon", "contractsent")
		ev.Account, ev.Deal.CloseTime = account, lateWin
		if inv, err := guide.Map(ev); err != nil || inv.IssueDate.String() != want {
			t.Errorf("company %s: %s %v, want %s", account, inv.IssueDate, err, want)
		}
	}

	// A zone written in the file is checked at load, where it stands; one
	// computed from the deal fails the run naming the value.
	_, err := mapping.Parse("tz.yaml", []byte("name: t\ninvoice:\n  issue_date: date_in(deal.close_time, \"Asia/Tokio\")\n"))
	var le *mapping.LoadError
	if !errors.As(err, &le) || len(le.Problems) != 1 || le.Problems[0].Line != 3 || !strings.Contains(le.Problems[0].Message, `"Asia/Tokio" is not an IANA time zone name`) {
		t.Errorf("literal zone: %v", err)
	}
	dyn := parse(t, "name: t\ninvoice:\n  issue_date: date_in(deal.close_time, deal.raw[\"tz\"])\n")
	ev := wonEvent("closedwon", "contractsent")
	ev.Deal.CloseTime = lateWin
	ev.Deal.Raw = map[string]json.RawMessage{"tz": json.RawMessage(`"Mars/Olympus"`)}
	if _, err := dyn.Map(ev); !mapping.IsMappingError(err) || !strings.Contains(err.Error(), "Mars/Olympus") || !strings.Contains(err.Error(), "issue_date") {
		t.Errorf("computed zone: %v", err)
	}

	// A moment has no methods: the host's zone or clock cannot enter.
	if _, err := mapping.Parse("m.yaml", []byte("name: t\ninvoice:\n  memo: string(deal.close_time.Local())\n")); err == nil {
		t.Error("deal.close_time.Local() compiled")
	}
}

// Zone names are IANA names only, and the ones the file gives are checked
// at load wherever an expression can take them from.
func TestZoneNamesAreChecked(t *testing.T) {
	for name, src := range map[string]string{
		"empty":              `date_in(deal.close_time, "")`,
		"the host's":         `date_in(deal.close_time, "localtime")`,
		"a path":             `date_in(deal.close_time, "Asia/./Tokyo")`,
		"a host file":        `date_in(deal.close_time, "posix/Asia/Tokyo")`,
		"in a condition":     `date_in(deal.close_time, event.account == "jp" ? "Asia/Tokio" : "UTC")`,
		"in a lookup table":  `date_in(deal.close_time, lookup("zones", event.account))`,
		"a lookup's default": `date_in(deal.close_time, lookup("fallback", event.account))`,
	} {
		file := "name: t\nlookups:\n  zones: {default: UTC, entries: {jp: Asia/Tokio}}\n  fallback: {default: Mars/Olympus, entries: {jp: Asia/Tokyo}}\n" +
			"invoice:\n  issue_date: '" + src + "'\n"
		if _, err := mapping.Parse("tz.yaml", []byte(file)); err == nil || !strings.Contains(err.Error(), "is not an IANA time zone name") && !strings.Contains(err.Error(), "host's clock") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// time_zone "" is no zone (dates in UTC); the host's zone is refused.
	if _, err := mapping.Parse("tz.yaml", []byte("name: t\ntime_zone: \"\"\n")); err != nil {
		t.Errorf("time_zone \"\": %v", err)
	}
	if _, err := mapping.Parse("tz.yaml", []byte("name: t\ntime_zone: Local\n")); err == nil {
		t.Error("time_zone Local loaded")
	}
	// A zone computed from the deal that is blank fails the run, not dates
	// in UTC.
	dyn := parse(t, "name: t\ninvoice:\n  issue_date: date_in(deal.close_time, deal.raw[\"tz\"])\n")
	ev := wonEvent("closedwon", "contractsent")
	ev.Deal.CloseTime = time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC)
	if _, err := dyn.Map(ev); !mapping.IsMappingError(err) {
		t.Errorf("a blank computed zone: %v", err)
	}
}

// What an expression sees of a moment is the instant alone: the same
// instant sent with another offset prints and compares the same.
func TestMomentsAreInstants(t *testing.T) {
	m := parse(t, "name: t\ninvoice:\n  memo: 'string(deal.close_time) + (deal.close_time == event.occurred_at ? \" same\" : \" other\")'\n")
	utc := time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC)
	var memos []string
	for _, at := range []time.Time{utc, utc.In(time.FixedZone("", 9*3600)), utc.In(time.Local)} {
		ev := wonEvent("closedwon", "contractsent")
		ev.Deal.CloseTime, ev.OccurredAt = at, utc
		inv, err := m.Map(ev)
		if err != nil {
			t.Fatal(err)
		}
		memos = append(memos, inv.Memo)
	}
	if memos[0] != memos[1] || memos[0] != memos[2] || !strings.HasSuffix(memos[0], " same") {
		t.Errorf("memos %q", memos)
	}
}

// string() of a moment is RFC 3339 in UTC, not Go's internals, whatever
// offset the moment was sent with; an unset moment prints as "".
func TestMomentsPrintAsRFC3339InUTC(t *testing.T) {
	m := parse(t, "name: t\ninvoice:\n  memo: 'string(deal.close_time) + \"|\" + string(event.occurred_at)'\n")
	for _, c := range []struct {
		closeTime, occurredAt time.Time
		want                  string
	}{
		{time.Date(2026, 11, 30, 23, 30, 0, 0, time.FixedZone("", -5*3600)), time.Time{}, "2026-12-01T04:30:00Z|"},
		{time.Date(2026, 11, 20, 10, 0, 0, 123_000_000, time.UTC), time.Date(2026, 11, 20, 10, 5, 0, 0, time.Local), "2026-11-20T10:00:00.123Z|" + time.Date(2026, 11, 20, 10, 5, 0, 0, time.Local).UTC().Format(time.RFC3339)},
	} {
		ev := wonEvent("closedwon", "contractsent")
		ev.Deal.CloseTime, ev.OccurredAt = c.closeTime, c.occurredAt
		inv, err := m.Map(ev)
		if err != nil {
			t.Fatal(err)
		}
		if inv.Memo != c.want {
			t.Errorf("memo %q, want %q", inv.Memo, c.want)
		}
	}
}

// A zone name written in another case than its IANA name is refused
// naming the right one; any other unknown name says it is none, with
// examples.
func TestZoneInAnotherCaseSaysTheName(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"name: y\ntime_zone: europe/paris\n", `"europe/paris" is not an IANA time zone name: did you mean Europe/Paris? (the names are case-sensitive)`},
		{"name: y\ntime_zone: utc\n", `"utc" is not an IANA time zone name: did you mean UTC?`},
		{"name: y\ninvoice:\n  issue_date: 'date_in(deal.close_time, \"AMERICA/NEW_YORK\")'\n", `did you mean America/New_York?`},
		{"name: y\ntime_zone: Europe/Pariss\n", `"Europe/Pariss" is not an IANA time zone name (such as Europe/Paris, America/New_York or UTC)`},
	} {
		got := loadProblems(t, c.src)
		if len(got) != 1 || !strings.Contains(got[0], c.want) {
			t.Errorf("%q:\ngot  %q\nwant %q", c.src, got, c.want)
		}
	}
}
