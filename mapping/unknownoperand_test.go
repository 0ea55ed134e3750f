package mapping_test

import (
	"encoding/json"
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

// Each hint fits its value, also through a let variable, and the rewrite
// it gives loads and computes: a reduce whose result is of unknown type
// (its step gives #acc), a ?? and a conditional of two types (dec() given
// only where it makes a decimal of the other side, the types named as the
// mapping's docs name them), a value read from a map or a list written in
// the mapping, a let holding what fromJSON reads. None says fromJSON but
// the last, and none gives the general hint.
func TestEachUnknownOperandHintFitsAndItsRewriteComputes(t *testing.T) {
	ev := opsEvent() // line 0: 2 × 30.00, discount 5.00
	ev.Deal.Amount = decimal.NullDecimal{}
	ev.Deal.Raw = map[string]json.RawMessage{"cf": json.RawMessage(`"{\"price\": 2.5}"`)}
	for _, c := range []struct {
		expr     string
		says     []string
		not      []string
		rewrite  string
		wantLine string // line 0's unit price of the rewrite
	}{
		{
			`item.unit_price * reduce(deal.line_items, #acc, dec(0))`,
			[]string{"reduce gives what its step gives", "make the step give a decimal, with dec(#acc)"},
			[]string{"fromJSON"},
			`item.unit_price * reduce(deal.line_items, dec(#acc), dec(1))`, "30",
		},
		{
			`let t = reduce(deal.line_items, #acc, 1); item.unit_price * t`,
			[]string{"reduce gives what its step gives"},
			[]string{"fromJSON"},
			`let t = reduce(deal.line_items, dec(#acc) + .quantity, 0); item.unit_price * t`, "90",
		},
		{
			`item.unit_price * (find(deal.line_items, .sku == "x")?.quantity ?? 1)`,
			[]string{"the ?? gives values of two types (decimal and int)", "give both its sides one type, as in dec(1) for 1"},
			[]string{"fromJSON", "conditional"},
			`item.unit_price * (find(deal.line_items, .sku == "x")?.quantity ?? dec(1))`, "30",
		},
		{
			`item.unit_price * get({"a": dec(1)}, "a")`,
			[]string{"`get({\"a\": dec(1)}, \"a\")` is read from a list or a map whose values may be of any type", `convert it, dec(get({"a": dec(1)}, "a"))`},
			[]string{"fromJSON"},
			`item.unit_price * dec(get({"a": dec(1)}, "a"))`, "30",
		},
		{
			`let m = {"a": dec(2)}; item.unit_price * m["a"]`,
			[]string{`convert it, dec(m["a"])`},
			[]string{"fromJSON"},
			`let m = {"a": dec(2)}; item.unit_price * dec(m["a"])`, "60",
		},
		{
			`let r = fromJSON(deal.raw["cf"]); item.unit_price + r["price"]`,
			[]string{"a number read with fromJSON is a float, which money is not computed with: write dec(string(x)) for it"},
			[]string{"the value beside the decimal", "conditional"},
			`let r = fromJSON(deal.raw["cf"]); item.unit_price + dec(string(r["price"]))`, "32.5",
		},
		{
			`(deal.has_amount ? item.quantity : 1) * item.unit_price`,
			[]string{"the conditional gives values of two types (decimal and int)", "give both branches one type, as in dec(1) for 1"},
			[]string{"fromJSON"},
			`(deal.has_amount ? item.quantity : dec(1)) * item.unit_price`, "30",
		},
		{
			`(deal.has_amount ? "2" : item.quantity) * item.unit_price`,
			[]string{"the conditional gives values of two types (string and decimal)", `as in dec("2") for "2"`},
			[]string{"fromJSON"},
			`(deal.has_amount ? dec("2") : item.quantity) * item.unit_price`, "60",
		},
		{
			`item.unit_price * (deal.has_amount ? [1] : {"a": 1})`,
			[]string{"the conditional gives values of two types (list and map), so its type shows only as the run reads it: give both branches one type ("},
			[]string{"fromJSON", "interface", "dec(", "e.g."},
			"", "",
		},
	} {
		_, err := mapping.Parse("h.yaml", fmt.Appendf(nil, "name: h\ninvoice:\n  lines:\n    unit_price: %q\n", c.expr))
		if err == nil || !strings.Contains(err.Error(), "h.yaml:4:") {
			t.Errorf("%s: %v; want a load error", c.expr, err)
			continue
		}
		for _, says := range c.says {
			if !strings.Contains(err.Error(), says) {
				t.Errorf("%s: %v; want it to say %q", c.expr, err, says)
			}
		}
		for _, not := range c.not {
			if strings.Contains(err.Error(), not) {
				t.Errorf("%s: %v; want it not to say %q", c.expr, err, not)
			}
		}
		if c.rewrite == "" {
			continue
		}
		m, err := mapping.Parse("h.yaml", fmt.Appendf(nil, "name: h\ninvoice:\n  lines:\n    unit_price: %q\n", c.rewrite))
		if err != nil {
			t.Errorf("%s: %v", c.rewrite, err)
			continue
		}
		inv, err := mapping.Apply(m, ev)
		if err != nil || len(inv.Lines) != 2 || !inv.Lines[0].UnitPrice.Equal(dec(c.wantLine)) {
			t.Errorf("%s: %+v, %v; want line 0's unit price %s", c.rewrite, inv.Lines, err, c.wantLine)
		}
	}
}
