package mapping_test

import (
	"strings"
	"testing"
)

// An argument of a type percent or dec does not take: the message says
// what the function takes (expr's named the last overload's type, "int"
// for percent's percentage, which obeyed bills 2 % for 2.5 %, and
// "decimal" for dec), what to write instead, and has no double space.
func TestPercentAndDecArgumentsSayWhatTheyTake(t *testing.T) {
	cases := []struct{ expr, want string }{
		{`percent(item.unit_price, 2.5)`, `invoice.lines.unit_price: percent(x, p) takes a whole number or a decimal p, not float64: money never goes through floats, write dec("2.5") instead of 2.5 (in ` + "`percent(item.unit_price, 2.5)`)"},
		{`dec(2.5)`, `invoice.lines.unit_price: dec(x) takes a text, a whole number or a decimal, not float64: money never goes through floats, write dec("2.5") instead of dec(2.5) (in ` + "`dec(2.5)`)"},
		{`percent(item.unit_price, "2.5")`, `percent(x, p) takes a whole number or a decimal p, not string: convert with dec(...) (in`},
		{`percent(2.5, 3)`, `percent(x, p) takes a decimal x, not float64: money never goes through floats, write dec("2.5") instead of 2.5 (in`},
		{`percent(item.unit_price, 1e1)`, `write dec("10") instead of 1e1 (in`},
		{`dec(true)`, "dec(x) takes a text, a whole number or a decimal, not bool (in"},
		// Another function's: expr's message, one space before "(in".
		{`add_days(deal.close_date, "x") > deal.close_date ? item.unit_price : item.unit_price`, "cannot use string as argument (type int) to call add_days (in"},
	}
	for _, c := range cases {
		got := loadProblems(t, "name: y\ninvoice:\n  lines:\n    unit_price: '"+strings.ReplaceAll(c.expr, "'", "''")+"'\n")
		if len(got) != 1 || !strings.Contains(got[0], c.want) || strings.Contains(got[0], "  (in") {
			t.Errorf("%s:\ngot  %q\nwant one containing %q", c.expr, got, c.want)
		}
	}
}
