package model

import (
	"encoding/json"
	"fmt"
	"time"
)

// Date is a calendar date without time or zone, as on an invoice.
// Its JSON form is "YYYY-MM-DD"; the zero Date is encoded as "".
type Date struct {
	t time.Time // always midnight UTC; zero means unset
}

const dateLayout = "2006-01-02"

// NewDate builds a Date from its parts.
func NewDate(year int, month time.Month, day int) Date {
	return Date{t: time.Date(year, month, day, 0, 0, 0, 0, time.UTC)}
}

// DateOf is the calendar date of t in t's own location.
func DateOf(t time.Time) Date { return NewDate(t.Date()) }

// DateIn is the calendar date of the moment t in loc (UTC when loc is
// nil): 2026-11-30T23:30:00Z is 30 November in UTC and 1 December in
// Asia/Tokyo.
func DateIn(t time.Time, loc *time.Location) Date {
	if loc == nil {
		loc = time.UTC
	}
	return DateOf(t.In(loc))
}

// ParseDate accepts "YYYY-MM-DD" or an RFC 3339 timestamp (its date part).
func ParseDate(s string) (Date, error) {
	if s == "" {
		return Date{}, nil
	}
	if t, err := time.Parse(dateLayout, s); err == nil {
		return Date{t: t}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return DateOf(t), nil
	}
	return Date{}, fmt.Errorf("%q is not a date (want YYYY-MM-DD, or an RFC 3339 timestamp such as 2026-01-14T09:30:00Z)", s)
}

// IsZero reports whether the date is unset.
func (d Date) IsZero() bool { return d.t.IsZero() }

// AddDays returns the date n days later (earlier when n < 0).
func (d Date) AddDays(n int) Date { return Date{t: d.t.AddDate(0, 0, n)} }

// Time is midnight UTC of the date.
func (d Date) Time() time.Time { return d.t }

// Before reports whether d is earlier than o.
func (d Date) Before(o Date) bool { return d.t.Before(o.t) }

func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return d.t.Format(dateLayout)
}

// MarshalJSON encodes the date as "YYYY-MM-DD".
func (d Date) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts "YYYY-MM-DD", an RFC 3339 timestamp, "" or null.
func (d *Date) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = Date{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("date must be a string: %w", err)
	}
	v, err := ParseDate(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
