package mapping_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/mapping"
)

// A decimal beside a value whose type shows only as the run reads it is
// a load error whose hint names that value: reduce's accumulator (#acc,
// whatever reduce starts it with) is converted with dec(#acc), which the
// hint shows and which computes; a number read with fromJSON with
// dec(string(x)); a conditional of two types by giving its branches one.
func TestAHintForADecimalBesideAValueOfUnknownTypeNamesIt(t *testing.T) {
	for _, c := range []struct{ expr, says, not string }{
		{`reduce(deal.line_items, #acc + .quantity * .unit_price, dec(0))`, "#acc, reduce's accumulator", "fromJSON"},
		{`reduce(deal.line_items, .unit_price + #acc)`, "dec(#acc)", "fromJSON"},
		{`deal.amount + fromJSON(deal.raw["cf"])["rate"]`, "a number read with fromJSON is a float, which money is not computed with: write dec(string(x))", "#acc"},
		{`(deal.has_amount ? deal.amount : 0) + deal.amount`, "the conditional gives values of two types (decimal and int)", "fromJSON"},
	} {
		_, err := mapping.Parse("h.yaml", fmt.Appendf(nil, "name: h\ninvoice:\n  lines:\n    unit_price: %q\n", c.expr))
		if err == nil || !strings.Contains(err.Error(), "h.yaml:4:") || !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), c.not) {
			t.Errorf("%s: %v; want a load error saying %q, not %q", c.expr, err, c.says, c.not)
		}
	}
	ev := opsEvent() // lines 2 × 30.00 and 1 × 15.55
	ev.Deal.Amount = decimal.NullDecimal{}
	for _, expr := range []string{
		`reduce(deal.line_items, dec(#acc) + .quantity * .unit_price, dec(0))`,
		`reduce(deal.line_items, dec(#acc) + .quantity * .unit_price, 0)`,
		`sum(deal.line_items, .quantity * .unit_price)`,
	} {
		m, err := mapping.Parse("h.yaml", fmt.Appendf(nil, "name: h\ninvoice:\n  lines:\n    unit_price: %q\n", expr))
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		inv, err := mapping.Apply(m, ev)
		if err != nil || len(inv.Lines) != 2 || !inv.Lines[0].UnitPrice.Equal(dec("75.55")) {
			t.Errorf("%s: %+v, %v; want a unit price of 75.55", expr, inv.Lines, err)
		}
	}
}
