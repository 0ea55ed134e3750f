package mapping_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// Values written in the file that would fail every run that meets them (a
// currency that is no ISO 4217 code, a dec() of something that is no
// number, a date() that is no date) are refused at load, as date_in's zone
// names are: a literal, either branch of a condition, the values and
// default of the lookup table that gives it. The problem names the field,
// its position and the value.
func TestLiteralsThatFailEveryRunAreRefusedAtLoad(t *testing.T) {
	const tables = `name: lit
lookups:
  tax_rates:
    default: 19%
    entries: {DE: "19", FR: "20"}
  currencies:
    missing: error
    entries: {DE: EUR, CH: CHF, UK: pound}
`
	for _, c := range []struct {
		name, src string
		line, col int
		key       string
		frags     []string
	}{
		{"currency", "name: lit\ninvoice:\n  currency: '\"EURO\"'\n",
			3, 14, "invoice.currency", []string{`"EURO" is not an ISO 4217 currency code`}},
		{"currency in a branch", "name: lit\ninvoice:\n  currency: 'deal.id == \"x\" ? \"eur\" : \"EURO\"'\n",
			3, 39, "invoice.currency", []string{`"EURO" is not an ISO 4217`}},
		{"currency from a lookup table", tables + "invoice:\n  currency: lookup(\"currencies\", deal.company.address.country)\n",
			10, 13, "invoice.currency", []string{`"pound" is not an ISO 4217`, `entry "UK" of lookup table "currencies"`}},
		{"blank currency without defaults.currency", "name: lit\ninvoice:\n  currency: '\"\"'\n",
			3, 14, "invoice.currency", []string{`"" leaves the invoice without a currency`, "defaults.currency"}},
		// One cause, one problem: the blank is not refused again.
		{"blank currency with a defaults.currency that is none", "name: lit\ndefaults: {currency: EURO}\ninvoice:\n  currency: '\"\"'\n",
			2, 22, "defaults.currency", []string{`"EURO" is not an ISO 4217 currency code`}},
		{"round_currency", "name: lit\ninvoice:\n  lines:\n    unit_price: 'round_currency(item.unit_price, \"EURO\")'\n",
			4, 50, "invoice.lines.unit_price", []string{`round_currency: "EURO" is not an ISO 4217`}},
		{"round_currency of a lookup", tables + "invoice:\n  lines:\n    unit_price: round_currency(item.unit_price, lookup(\"currencies\", \"UK\"))\n",
			11, 49, "invoice.lines.unit_price", []string{`round_currency: "pound"`, `entry "UK"`}},
		{"dec", "name: lit\ninvoice:\n  lines:\n    tax_rate: 'dec(\"19%\")'\n",
			4, 20, "invoice.lines.tax_rate", []string{`dec: "19%" is not a decimal number`}},
		{"dec of a lookup's default", tables + "invoice:\n  lines:\n    tax_rate: dec(lookup(\"tax_rates\", deal.company.address.country))\n",
			11, 19, "invoice.lines.tax_rate", []string{`dec: "19%" is not a decimal number`, `default of lookup table "tax_rates"`}},
		{"dec in the trigger", "name: lit\ntrigger: 'deal.amount > dec(\"1,000\")'\n",
			2, 29, "trigger", []string{`dec: "1,000"`}},
		{"date", "name: lit\ninvoice:\n  issue_date: 'date(\"2026-13-01\")'\n",
			3, 21, "invoice.issue_date", []string{`date: "2026-13-01" is not a date`}},
		{"zone in a branch", "name: lit\ninvoice:\n  issue_date: 'date_in(deal.close_time, deal.id == \"x\" ? \"UTC\" : \"Asia/Tokio\")'\n",
			3, 66, "invoice.issue_date", []string{`"Asia/Tokio" is not an IANA time zone name`}},
		{"zone from a lookup table", "name: lit\nlookups:\n  zones: {default: UTC, entries: {JP: Asia/Tokio}}\ninvoice:\n  issue_date: date_in(deal.close_time, lookup(\"zones\", event.account))\n",
			5, 40, "invoice.issue_date", []string{`"Asia/Tokio" is not an IANA time zone name`, `entry "JP" of lookup table "zones"`}},
		// coalesce's fallback is the value whenever the deal has none.
		{"currency as coalesce's fallback", "name: lit\ninvoice:\n  currency: 'coalesce(deal.currency, \"EURO\")'\n",
			3, 38, "invoice.currency", []string{`"EURO" is not an ISO 4217`}},
	} {
		_, err := mapping.Parse("lit.yaml", []byte(c.src))
		var le *mapping.LoadError
		if !errors.As(err, &le) || len(le.Problems) != 1 {
			t.Errorf("%s: got %v, want one load problem", c.name, err)
			continue
		}
		p := le.Problems[0]
		if p.Line != c.line || p.Column != c.col || p.Key != c.key {
			t.Errorf("%s: at %d:%d %s, want %d:%d %s (%s)", c.name, p.Line, p.Column, p.Key, c.line, c.col, c.key, p)
		}
		for _, f := range c.frags {
			if !strings.Contains(p.Message, f) {
				t.Errorf("%s: %q does not say %q", c.name, p.Message, f)
			}
		}
	}

	// What the mapping takes is accepted: any case and spaces, a blank
	// currency where defaults.currency stands in, numbers and dates as
	// dec() and date() read them, values computed from the deal.
	for _, src := range []string{
		"name: ok\ninvoice:\n  currency: '\" eur \"'\n",
		"name: ok\ndefaults: {currency: EUR}\ninvoice:\n  currency: 'deal.currency == \"\" ? \"\" : deal.currency'\n",
		"name: ok\ninvoice:\n  lines:\n    unit_price: 'round_currency(item.unit_price, \"jpy\")'\n    tax_rate: 'dec(\" 19.5 \") + dec(\"-1e1\")'\n",
		"name: ok\ninvoice:\n  issue_date: 'deal.id == \"x\" ? date(\"2026-12-01\") : date(\"2026-12-01T10:00:00+09:00\")'\n  due_date: date(\"\")\n",
		"name: ok\nlookups:\n  rates: {default: \"0\", entries: {DE: \"19\", FR: \"5.5\"}}\ninvoice:\n  lines:\n    tax_rate: dec(lookup(\"rates\", deal.company.address.country))\n",
		"name: ok\ninvoice:\n  currency: deal.raw[\"currency\"]\n  lines:\n    tax_rate: dec(deal.raw[\"rate\"])\n",
		// A blank last resort: given only when every argument is blank.
		"name: ok\ninvoice:\n  currency: 'coalesce(deal.currency, \"chf\", \"\")'\n",
	} {
		if _, err := mapping.Parse("ok.yaml", []byte(src)); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
}
