package mapping_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// amount_line maps only a deal without line items, so a division by
// their number there (len(deal.line_items), dec() of it, a let variable
// of it) divides by zero for every deal it maps: a load error saying so,
// at the divisor. Under lines, guarded by a condition, or by another
// number, it loads.
func TestAmountLineDivisionByTheNumberOfLineItemsIsRefused(t *testing.T) {
	const says = "division by zero: amount_line is the one line of a deal without line items, so len(deal.line_items) is always 0 here"
	for _, c := range []struct {
		section, expr string
		at            string // "" loads
	}{
		{"amount_line", `round_to(deal.amount / len(deal.line_items), 2)`, "a.yaml:4:41: invoice.amount_line.unit_price: " + says},
		{"amount_line", `deal.amount / dec(len(deal.line_items))`, "a.yaml:4:32: invoice.amount_line.unit_price: " + says},
		{"amount_line", `let n = len(deal.line_items); deal.amount / n`, "invoice.amount_line.unit_price: " + says},
		{"lines", `round_to(deal.amount / len(deal.line_items), 2)`, ""},
		{"amount_line", `len(deal.line_items) > 0 ? deal.amount / len(deal.line_items) : deal.amount`, ""},
		{"amount_line", `deal.amount / 2`, ""},
		// A builtin's closure runs once per element: over the deal's
		// line items, never in amount_line.
		{"amount_line", `sum(map(deal.line_items, deal.amount / len(deal.line_items)))`, ""},
		{"amount_line", `count(deal.line_items, deal.amount / len(deal.line_items) > 1) > 0 ? dec(0) : deal.amount`, ""},
		{"amount_line", `sum(deal.line_items, deal.amount / len(deal.line_items))`, ""},
		{"amount_line", `reduce(deal.line_items, dec(#acc) + deal.amount / len(deal.line_items), dec(0))`, ""},
		{"amount_line", `any(deal.line_items, {deal.amount / len(deal.line_items) > 1}) ? dec(0) : deal.amount`, ""},
		{"amount_line", `sum(map(filter(deal.line_items, #.quantity > 0), deal.amount / len(deal.line_items)))`, ""},
		{"amount_line", `let xs = deal.line_items; sum(map(xs, deal.amount / len(deal.line_items)))`, ""},
		{"amount_line", `sum(deal?.line_items, deal.amount / len(deal.line_items))`, ""},
		{"amount_line", `sum(deal.line_items[1:], deal.amount / len(deal.line_items))`, ""},
		{"amount_line", `sum(take(deal.line_items, 2), deal.amount / len(deal.line_items))`, ""},
		// A closure over another collection runs whether the deal has
		// line items or not: refused.
		{"amount_line", `sum(map([1], deal.amount / len(deal.line_items)))`, "a.yaml:4:45: invoice.amount_line.unit_price: " + says},
		{"amount_line", `sum(map(fromJSON(deal.raw["x"]), deal.amount / len(deal.line_items)))`, "invoice.amount_line.unit_price: " + says},
		{"amount_line", `let xs = [1, 2]; sum(xs, deal.amount / len(deal.line_items))`, "invoice.amount_line.unit_price: " + says},
		{"amount_line", `sum(map(filter([1], true), deal.amount / len(deal.line_items)))`, "a.yaml:4:59: invoice.amount_line.unit_price: " + says},
		{"amount_line", `sum(filter([1, 2], # > 1), deal.amount / len(deal.line_items))`, "invoice.amount_line.unit_price: " + says},
		// Outside the closure it still runs: refused.
		{"amount_line", `sum(map(deal.line_items, #.unit_price)) + deal.amount / len(deal.line_items)`, "invoice.amount_line.unit_price: " + says},
	} {
		_, err := mapping.Parse("a.yaml", fmt.Appendf(nil, "name: a\ninvoice:\n  %s:\n    unit_price: '%s'\n", c.section, c.expr))
		switch {
		case c.at == "" && err != nil:
			t.Errorf("%s: %s: %v; want it loaded", c.section, c.expr, err)
		case c.at != "" && (err == nil || !strings.Contains(err.Error(), c.at)):
			t.Errorf("%s: %s: %v; want %q", c.section, c.expr, err, c.at)
		}
	}
}
