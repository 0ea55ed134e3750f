package model

import (
	"encoding/json"
	"testing"
	"time"
)

func TestCloseDateIn(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	late := time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC)
	withTime := Deal{CloseDate: DateOf(late), CloseTime: late}
	if got := withTime.CloseDateIn(tokyo); got != NewDate(2026, 12, 1) {
		t.Errorf("in Tokyo: %s", got)
	}
	if got := withTime.CloseDateIn(time.UTC); got != NewDate(2026, 11, 30) {
		t.Errorf("in UTC: %s", got)
	}
	// No zone configured: the date as the source read it (a sender's own
	// offset included).
	offset := time.Date(2026, 12, 1, 2, 0, 0, 0, time.FixedZone("", 9*3600))
	sent := Deal{CloseDate: DateOf(offset), CloseTime: offset}
	if got := sent.CloseDateIn(nil); got != NewDate(2026, 12, 1) {
		t.Errorf("no zone: %s", got)
	}
	dateOnly := Deal{CloseDate: NewDate(2026, 11, 20)}
	if got := dateOnly.CloseDateIn(tokyo); got != NewDate(2026, 11, 20) {
		t.Errorf("date only: %s", got)
	}
	if got := DateIn(late, nil); got != NewDate(2026, 11, 30) {
		t.Errorf("DateIn(nil) = %s, want the UTC date", got)
	}

	// The moment travels in the run's input and comes back the same.
	b, err := json.Marshal(withTime)
	if err != nil {
		t.Fatal(err)
	}
	var back Deal
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.CloseTime.Equal(late) || back.CloseDateIn(tokyo) != NewDate(2026, 12, 1) {
		t.Errorf("round trip: %s", b)
	}
	if b, _ := json.Marshal(dateOnly); string(b) != `{"id":"","stage":"","amount":null,"close_date":"2026-11-20","company":{"address":{}}}` {
		t.Errorf("a deal without a close time: %s", b)
	}
}

// A date that is neither YYYY-MM-DD nor an RFC 3339 timestamp: the
// message says both forms it accepts.
func TestParseDateSaysBothForms(t *testing.T) {
	for _, s := range []string{"2026-01-14", "2026-01-14T09:30:00+01:00"} {
		if _, err := ParseDate(s); err != nil {
			t.Errorf("ParseDate(%q): %v", s, err)
		}
	}
	_, err := ParseDate("14/01/2026")
	if err == nil || err.Error() != `"14/01/2026" is not a date (want YYYY-MM-DD, or an RFC 3339 timestamp such as 2026-01-14T09:30:00Z)` {
		t.Errorf("ParseDate(14/01/2026) = %v", err)
	}
}
