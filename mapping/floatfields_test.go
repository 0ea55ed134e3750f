package mapping_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/mapping"
)

// A decimal field whose expression gives what fromJSON reads, or what
// arithmetic makes of it (expr types it as known only at run time), is
// never a decimal: it failed every run ("expression gave float64"), and
// is refused at load, at the expression's position, saying to convert it
// with dec(string(...)). So are expr's own mean and median of floats. A
// value that may be a decimal for some deals (a conditional of such a
// number and a decimal, ?? with a whole number) is left to the run, and
// the conversion the message gives loads and maps exactly.
func TestAFloatForADecimalFieldIsRefusedAtLoad(t *testing.T) {
	cf := `fromJSON(deal.raw["custom_fields"])`
	for _, c := range []struct{ expr, at, fix string }{
		{cf + `["rate"]`, "cf.yaml:5:18:", `dec(string(` + cf + `["rate"]))`},
		{cf + `["rate"] * 2`, "cf.yaml:5:18:", `dec(string(` + cf + `["rate"] * 2))`},
		{`2.5 * ` + cf + `["rate"]`, "cf.yaml:5:18:", `dec(string(2.5 * ` + cf + `["rate"]))`},
		{cf + `?.price?.value - 1`, "cf.yaml:5:18:", "dec(string("},
		{`-` + cf + `["rate"] + ` + cf + `["extra"]`, "cf.yaml:5:18:", "dec(string("},
		{`let r = ` + cf + `["rate"]; r * 3`, "cf.yaml:5:75:", `dec(string(r * 3))`},
		{`deal.has_amount ? ` + cf + `["rate"] : ` + cf + `["other"]`, "cf.yaml:5:18:", "dec(string("},
		{`mean([1.5, 2.5])`, "cf.yaml:5:18:", `dec(string(mean([1.5, 2.5])))`},
	} {
		_, err := mapping.Parse("cf.yaml", fmt.Appendf(nil, "name: cf\ninvoice:\n  lines:\n    quantity: item.quantity\n    unit_price: %q\n", c.expr))
		if err == nil || !strings.Contains(err.Error(), c.at+" invoice.lines.unit_price: expression gives") ||
			!strings.Contains(err.Error(), "never a decimal") || !strings.Contains(err.Error(), c.fix) {
			t.Errorf("%s: %v; want a load error at %s saying to write %s", c.expr, err, c.at, c.fix)
		}
	}
	ev := wonEvent("closedwon", "")
	ev.Deal.Raw = map[string]json.RawMessage{"custom_fields": json.RawMessage(`{"rate": 0.145}`)}
	ev.Deal.Amount = decimal.NullDecimal{}
	for _, c := range []struct{ expr, want, fails string }{
		{`dec(string(` + cf + `["rate"] * 2))`, "0.29", ""},
		{`dec(string(` + cf + `["rate"])) * 2`, "0.29", ""},
		{`round_to(dec(string(` + cf + `["rate"] * 3)), 2)`, "0.44", ""},
		// Decimals for some deals: the run judges them.
		{`deal.has_amount ? ` + cf + `["rate"] : item.unit_price`, "12000", ""},
		{`deal.has_amount ? item.unit_price : ` + cf + `["rate"]`, "", "expression gave float64, but this field needs a decimal"},
		{cf + `["missing"] ?? 7`, "7", ""},
	} {
		m, err := mapping.Parse("cf.yaml", fmt.Appendf(nil, "name: cf\ninvoice:\n  lines:\n    unit_price: %q\n", c.expr))
		if err != nil {
			t.Errorf("%s: %v; want it to load", c.expr, err)
			continue
		}
		inv, err := mapping.Apply(m, ev)
		var me *mapping.Error
		switch {
		case c.fails != "" && (!errors.As(err, &me) || !strings.Contains(me.Message, c.fails)):
			t.Errorf("%s: %v; want a run-time error saying %q", c.expr, err, c.fails)
		case c.fails == "" && (err != nil || len(inv.Lines) != 1 || inv.Lines[0].UnitPrice.String() != c.want):
			t.Errorf("%s: %+v, %v; want a unit price of %s", c.expr, inv.Lines, err, c.want)
		}
	}
	// Text fields are not judged so: string() of such a number is its text.
	if _, err := mapping.Parse("cf.yaml", []byte("name: cf\ninvoice:\n  memo: 'string("+cf+"[\"rate\"] * 2)'\n")); err != nil {
		t.Errorf("memo: %v", err)
	}
}
