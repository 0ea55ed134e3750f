package mapping_test

import (
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// A code written without quotes in a text field (YAML strips the quotes
// of "0400" too) is read as a number, arithmetic or names: the advice is
// to quote the whole value, not string(...), which gives "400" for 0400
// and "3990" for 4000-10, nor the first name of DE-VAT19 alone.
func TestCodesWithoutQuotesAreToBeQuotedWhole(t *testing.T) {
	cases := []struct{ value, want string }{
		{`"0400"`, `invoice.lines.item_code: expression gives int, but this field needs a string: for the text 0400, write it in quotes inside the YAML value: '"0400"' (string(0400) gives the number, "400") (in` + " `0400`)"},
		{`4000-10`, `for the text 4000-10, write it in quotes inside the YAML value: '"4000-10"' (string(4000-10) gives the number, "3990")`},
		{`7`, `for the text 7, write it in quotes inside the YAML value: '"7"' (in`},
		{`DE-VAT19`, `unknown name DE (did you mean deal? if DE-VAT19 is a text, write it in quotes inside the YAML value: '"DE-VAT19"')`},
		{`MISC-1`, `a text is written in quotes inside the YAML value, as in '"MISC-1"')`},
		{`PRO.ANNUAL`, `a text is written in quotes inside the YAML value, as in '"PRO.ANNUAL"')`},
		{`EU/B2B_1`, `a text is written in quotes inside the YAML value, as in '"EU/B2B_1"')`},
		// An expression that reads the deal is converted.
		{`deal.amount`, `expression gives decimal, but this field needs a string: convert with string(...) (in`},
		{`len(deal.line_items) + 1`, `expression gives int, but this field needs a string: convert with string(...) (in`},
		// A misspelt name, not a code: the name only.
		{`dael.name`, `unknown name dael (did you mean deal?) (in`},
	}
	for _, c := range cases {
		got := loadProblems(t, "name: y\ninvoice:\n  lines:\n    item_code: "+c.value+"\n")
		if len(got) != 1 || !strings.Contains(got[0], c.want) {
			t.Errorf("item_code: %s:\ngot  %q\nwant one containing %q", c.value, got, c.want)
		}
	}
	// The values the advice gives load.
	src := "name: y\ninvoice:\n  lines:\n    item_code: '\"DE-VAT19\"'\n    description: '\"4000-10\"'\n  memo: '\"0400\"'\n"
	if _, err := mapping.Parse("y.yaml", []byte(src)); err != nil {
		t.Fatal(err)
	}
}
