package mapping_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// A time_zone that is an IANA name but reads otherwise than it counts
// loads, with a warning saying what it is and the city zone to name:
// Etc/GMT+1 is UTC-01:00 (POSIX's sign), EST a fixed UTC-05:00 without
// New York's daylight saving, CET a region's rules. A city zone, UTC and
// Etc/GMT+0 are not warned of.
func TestTimeZoneWarnings(t *testing.T) {
	for _, c := range []struct{ zone, want string }{
		{"Etc/GMT+1", `w.yaml:2:12: time_zone: "Etc/GMT+1" is UTC-01:00 all year, without daylight saving: the sign of the Etc/GMT zones is POSIX's, + west of Greenwich (Etc/GMT-1 is UTC+01:00); ` +
			"for a place's time, name its city zone, such as America/New_York or Europe/Berlin"},
		{"Etc/GMT-10", `"Etc/GMT-10" is UTC+10:00 all year, without daylight saving: the sign of the Etc/GMT zones is POSIX's, + west of Greenwich (Etc/GMT+10 is UTC-10:00)`},
		{"Etc/GMT+12", `"Etc/GMT+12" is UTC-12:00 all year, without daylight saving: the sign of the Etc/GMT zones is POSIX's, + west of Greenwich (Etc/GMT-12 is UTC+12:00); `},
		// No Etc/GMT+13, +14 exists to name.
		{"Etc/GMT-13", `"Etc/GMT-13" is UTC+13:00 all year, without daylight saving: the sign of the Etc/GMT zones is POSIX's, + west of Greenwich; for a place's time`},
		{"Etc/GMT-14", `"Etc/GMT-14" is UTC+14:00 all year, without daylight saving: the sign of the Etc/GMT zones is POSIX's, + west of Greenwich; for a place's time`},
		{"EST", `w.yaml:2:12: time_zone: "EST" is a legacy zone name: UTC-05:00 all year, without daylight saving; for a place's time, name its city zone, such as America/New_York (which has daylight saving)`},
		{"MST", `"MST" is a legacy zone name: UTC-07:00 all year, without daylight saving; for a place's time, name its city zone, such as America/Denver (which has daylight saving)`},
		{"HST", `"HST" is a legacy zone name: UTC-10:00 all year, without daylight saving; for a place's time, name its city zone, such as Pacific/Honolulu`},
		{"CET", `"CET" is a legacy zone name: UTC+01:00, UTC+02:00 with daylight saving, by a region's rules under no place's name; name the city zone whose time you mean, such as Europe/Berlin`},
		{"PST8PDT", `"PST8PDT" is a legacy zone name: UTC-08:00, UTC-07:00 with daylight saving`},
		{"Europe/Berlin", ""},
		{"America/New_York", ""},
		{"UTC", ""},
		{"Etc/GMT+0", ""},
		{"Etc/UTC", ""},
	} {
		wantOneWarning(t, c.zone, "w.yaml", []byte("name: w\ntime_zone: "+c.zone+"\ninvoice:\n  memo: deal.name\n"), c.want)
	}
}

// A reload that takes a changed file into use logs its warnings, as the
// start (config check, the intake) prints those of the files it loads.
func TestReloadLogsTheWarningsOfAChangedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "live.yaml")
	if err := os.WriteFile(path, []byte("name: live\ntime_zone: Europe/Berlin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	store, err := mapping.NewStore(mapping.Sources{Dir: dir}, mapping.StoreOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("name: live\ntime_zone: EST\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, `time_zone: \"EST\" is a legacy zone name`) {
		t.Errorf("log after a reload of a file with time_zone EST:\n%s", out)
	}
}

// A tax rate written as a fraction (0.19 where 19 % is meant) loads, as
// 0.19 %, with a warning saying so and what to write: defaults.tax_rate,
// and a dec("…") a tax_rate field's expression can give. A rate of 0, 1
// or more, and a fraction the rate is computed with, are not warned of.
func TestTaxRateFractionWarnings(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"defaults:\n  tax_rate: 0.19\n", `t.yaml:3:13: defaults.tax_rate: 0.19 is 0.19 %: tax rates are percentages; for 19 % write 19; if 0.19 % is meant, ignore this warning`},
		{"defaults:\n  tax_rate: 0.5\n", `defaults.tax_rate: 0.5 is 0.5 %: tax rates are percentages; for 50 % write 50; if 0.5 % is meant, ignore this warning`},
		{"defaults:\n  tax_rate: \"0.075\"\n", `defaults.tax_rate: 0.075 is 0.075 %: tax rates are percentages; for 7.5 % write 7.5`},
		{"invoice:\n  lines:\n    tax_rate: 'dec(\"0.19\")'\n", `t.yaml:4:15: invoice.lines.tax_rate: dec("0.19") is 0.19 %: tax rates are percentages; for 19 % write dec("19")`},
		{"invoice:\n  lines:\n    tax_rate: 'item.has_tax_rate ? item.tax_rate : dec(\"0.07\")'\n", `invoice.lines.tax_rate: dec("0.07") is 0.07 %`},
		{"invoice:\n  amount_line:\n    tax_rate: 'let r = dec(\"0.19\"); r'\n", `invoice.amount_line.tax_rate: dec("0.19") is 0.19 %`},
		{"defaults:\n  tax_rate: 19\n", ""},
		{"defaults:\n  tax_rate: 0\n", ""},
		{"defaults:\n  tax_rate: 1\n", ""},
		{"invoice:\n  lines:\n    tax_rate: 'dec(\"7.5\")'\n", ""},
		{"invoice:\n  lines:\n    tax_rate: 'item.tax_rate * dec(\"0.5\")'\n", ""},
		{"invoice:\n  lines:\n    discount: 'dec(\"0.19\")'\n", ""},
	} {
		wantOneWarning(t, strconv.Quote(c.yaml), "t.yaml", []byte("name: t\n"+c.yaml), c.want)
	}
}

// A text written in quotes whose braces hold a value of the mapping
// ('"DS-{deal.id}"') loads, but is the same text for every deal: it is
// warned of, with the rewrite that joins texts and values. Braces around
// what is no value of the mapping, a text without braces and the joined
// form are not warned of.
func TestTemplateTextWarnings(t *testing.T) {
	for _, c := range []struct{ field, want string }{
		{`'"DS-{deal.id}"'`, `w.yaml:3:14: invoice.reference: the text "DS-{deal.id}" is the same for every deal: {…} in a text written in quotes puts no value in it; to join texts and values write "DS-" + deal.id`},
		{`'"Deal {deal.name} of {deal.amount}"'`, `write "Deal " + deal.name + " of " + string(deal.amount)`},
		{`'"DS-" + deal.id + "-{{deal.stage}}"'`, `the text "-{{deal.stage}}" is the same for every deal`},
		{`'"DS-" + deal.id'`, ""},
		{`'"DS-{customer}-" + deal.id'`, ""},
		{`'"DS-{}-" + deal.id'`, ""},
	} {
		wantOneWarning(t, c.field, "w.yaml", []byte("name: w\ninvoice:\n  reference: "+c.field+"\n"), c.want)
	}
}

// A zone written in an expression for date_in that reads otherwise than
// it counts (EST, Etc/GMT+1) is warned of as a time_zone is, at the
// literal: a literal, either branch of a condition, the values and
// default of a lookup table that gives it (naming the entry). A city
// zone and a zone read from the deal are not.
func TestDateInZoneWarnings(t *testing.T) {
	const est = `"EST" is a legacy zone name: UTC-05:00 all year, without daylight saving; for a place's time, name its city zone, such as America/New_York (which has daylight saving)`
	for _, c := range []struct {
		memo   string
		tables string
		want   []string
	}{
		{`'string(date_in(deal.close_time, "EST"))'`, "", []string{`w.yaml:3:42: invoice.memo: date_in: ` + est + " (in `string(date_in(deal.close_time, \"EST\"))`)"}},
		{`'string(date_in(deal.close_time, "Europe/Berlin")) + string(date_in(event.occurred_at, "Etc/GMT+1"))'`, "", []string{
			`w.yaml:3:96: invoice.memo: date_in: "Etc/GMT+1" is UTC-01:00 all year, without daylight saving: the sign of the Etc/GMT zones is POSIX's, + west of Greenwich (Etc/GMT-1 is UTC+01:00)`}},
		{"|\n    string(date_in(deal.close_time,\n      deal.raw[\"x\"] == \"1\" ? \"Europe/Berlin\" : \"CET\"))", "", []string{
			`w.yaml:5:48: invoice.memo: date_in: "CET" is a legacy zone name: UTC+01:00, UTC+02:00 with daylight saving`}},
		{`'string(date_in(deal.close_time, lookup("zones", deal.raw["region"])))'`, "lookups:\n  zones:\n    default: HST\n    entries: {ny: America/New_York, de: CET}\n", []string{
			`w.yaml:3:42: invoice.memo: date_in: "CET" is a legacy zone name: UTC+01:00, UTC+02:00 with daylight saving, by a region's rules under no place's name; name the city zone whose time you mean, such as Europe/Berlin (the entry "de" of lookup table "zones")`,
			`w.yaml:3:42: invoice.memo: date_in: "HST" is a legacy zone name: UTC-10:00 all year, without daylight saving; for a place's time, name its city zone, such as Pacific/Honolulu (the default of lookup table "zones")`}},
		{`'string(date_in(deal.close_time, "America/New_York"))'`, "", nil},
		{`'string(date_in(deal.close_time, deal.raw["zone"]))'`, "", nil},
	} {
		got, ok := warningsOf(t, c.memo, "w.yaml", []byte("name: w\ninvoice:\n  memo: "+c.memo+"\n"+c.tables))
		if !ok {
			continue
		}
		ok = len(got) == len(c.want)
		for i := 0; ok && i < len(got); i++ {
			ok = strings.HasPrefix(got[i], c.want[i])
		}
		if !ok {
			t.Errorf("%s: warned\n%s\nwant\n%s", c.memo, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
}

// warningsOf loads the mapping file src (named file) and gives its
// warnings as they are printed; false (reported under label) when it
// does not load.
func warningsOf(t *testing.T, label, file string, src []byte) ([]string, bool) {
	t.Helper()
	f, err := mapping.Parse(file, src)
	if err != nil {
		t.Errorf("%s: %v; want it loaded", label, err)
		return nil, false
	}
	var got []string
	for _, w := range f.Warnings() {
		got = append(got, w.String())
	}
	return got, true
}

// wantOneWarning checks that src loads with one warning holding want, or
// with none when want is "".
func wantOneWarning(t *testing.T, label, file string, src []byte, want string) {
	t.Helper()
	got, ok := warningsOf(t, label, file, src)
	switch {
	case !ok:
	case want == "" && len(got) != 0:
		t.Errorf("%s: warned %q; want nothing", label, got)
	case want != "" && (len(got) != 1 || !strings.Contains(got[0], want)):
		t.Errorf("%s: warned %q; want one warning with %q", label, got, want)
	}
}
