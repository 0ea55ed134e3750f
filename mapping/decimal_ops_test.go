package mapping_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// opsEvent is a deal of 100.00 EUR with lines 2 × 30.00 (5.00 off) and
// 1 × 15.55: its lines add up to 75.55.
func opsEvent() model.DealEvent {
	ev := wonEvent("closedwon", "")
	ev.Deal.Amount = decimal.NewNullDecimal(dec("100.00"))
	ev.Deal.LineItems = []model.LineItem{
		{SKU: "A", Quantity: dec("2"), UnitPrice: dec("30.00"), Discount: dec("5.00")},
		{SKU: "B", Quantity: dec("1"), UnitPrice: dec("15.55")},
	}
	return ev
}

// printed loads a mapping whose memo is string(expression) and maps ev.
func printed(t *testing.T, expression string, ev model.DealEvent) string {
	t.Helper()
	m, err := mapping.Parse("ops.yaml", []byte("name: ops\ninvoice:\n  memo: 'string("+expression+")'\n"))
	if err != nil {
		t.Fatalf("%s: %v", expression, err)
	}
	inv, err := m.Map(ev)
	if err != nil {
		t.Fatalf("%s: %v", expression, err)
	}
	return inv.Memo
}

// Arithmetic on an aggregate loads and computes exactly inside a call of
// dealsync's functions as it does outside one (the aggregate becomes an
// exact decimal one, and the call around it must not keep the type it had
// before, which left the operator expr's own: "mismatched types decimal
// and decimal").
func TestArithmeticOnAggregatesInsideCalls(t *testing.T) {
	for _, c := range []struct{ expression, want string }{
		{`max_dec(dec(0), deal.amount - sum(deal.line_items, .quantity * .unit_price))`, "24.45"},
		{`round_to(max(deal.amount, dec("0")) * 2, 2)`, "200"},
		{`round_currency(sum(deal.line_items, .quantity * .unit_price) * dec("0.1"), invoice.currency)`, "7.56"}, // 7.555
		{`round_to(sum(map(deal.line_items, .unit_price)) / 2, 2)`, "22.78"},                                     // 22.775
		// Deeper, and in expr's own builtins.
		{`round_to(max_dec(dec(0), deal.amount - sum(deal.line_items, .quantity * .unit_price)) * 2, 1)`, "48.9"},
		{`upper(string(min(deal.amount, dec("80")) - 1))`, "79"},
		// Outside a call, as before.
		{`deal.amount - sum(deal.line_items, .quantity * .unit_price)`, "24.45"},
	} {
		if got := printed(t, c.expression, opsEvent()); got != c.want {
			t.Errorf("%s = %s, want %s", c.expression, got, c.want)
		}
	}
	// Over whole numbers the aggregates stay expr's.
	if got := printed(t, `max(1, len(deal.line_items)) * 3`, opsEvent()); got != "6" {
		t.Errorf("max of whole numbers × 3 = %s, want 6", got)
	}
}

// Unary minus (and plus) works on decimals, as docs/mappings.md says the
// operators do: `x + -item.discount` was refused at load ("mismatched
// type decimal").
func TestUnaryMinusOnDecimals(t *testing.T) {
	for _, c := range []struct{ expression, want string }{
		{`-deal.amount`, "-100"},
		{`deal.amount + -deal.line_items[0].discount`, "95"},
		{`- -deal.amount`, "100"},
		{`-(deal.amount * 2)`, "-200"},
		{`-deal.amount * 2`, "-200"},
		{`max_dec(-deal.amount, dec(1))`, "1"},
		{`-sum(deal.line_items, .quantity * .unit_price)`, "-75.55"},
		{`round_to(-deal.line_items[1].unit_price / 2, 2)`, "-7.78"}, // -7.775, half away from zero
		{`+deal.amount`, "100"},
		{`-dec("0")`, "0"},
		{`-2 * deal.amount`, "-200"}, // a whole number's minus stays expr's
		{`-len(deal.line_items)`, "-2"},
	} {
		if got := printed(t, c.expression, opsEvent()); got != c.want {
			t.Errorf("%s = %s, want %s", c.expression, got, c.want)
		}
	}

	// In a line's field, as the guide writes it.
	m := parse(t, "name: neg\ninvoice:\n  lines:\n    unit_price: item.unit_price + -item.discount / item.quantity\n    discount: \"0\"\n")
	inv, err := m.Map(opsEvent())
	if err != nil {
		t.Fatal(err)
	}
	if got := inv.Lines[0].UnitPrice; !got.Equal(dec("27.50")) {
		t.Errorf("unit price %s, want 27.50", got)
	}

	// Still refused where it would be on anything else: a string.
	if _, err := mapping.Parse("m.yaml", []byte("name: m\ninvoice:\n  memo: -deal.name\n")); err == nil {
		t.Error("-deal.name loaded")
	}
}

// dec() of a number whose exponent is past what a decimal takes says it
// is out of range, not that it is no number; text that is none says so.
func TestDecOfAHugeExponentSaysOutOfRange(t *testing.T) {
	ev := wonEvent("closedwon", "")
	ev.Deal.Raw = map[string]json.RawMessage{"big": json.RawMessage(`"1e100000"`), "bad": json.RawMessage(`"12,5x"`)}
	for _, c := range []struct{ memo, want string }{
		{`string(dec(deal.raw["big"]))`, `dec: "1e100000" is out of range: a decimal's exponent goes from -10000 to 10000`},
		{`string(dec(deal.raw["bad"]))`, `dec: "12,5x" is not a decimal number`},
	} {
		m := parse(t, "name: p\ninvoice:\n  memo: '"+c.memo+"'\n")
		if _, err := mapping.Apply(m, ev); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.memo, err, c.want)
		}
	}
	if _, err := mapping.Parse("p.yaml", []byte("name: p\ninvoice:\n  memo: 'string(dec(\"-1.5E-20000\"))'\n")); err == nil || !strings.Contains(err.Error(), `dec: "-1.5E-20000" is out of range`) {
		t.Errorf("a literal: got %v", err)
	}
}
