package mapping_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
	"github.com/shopspring/decimal"
)

// Arithmetic on numbers read with fromJSON (a CRM's custom fields) is
// done on the numbers their text says: expr computed it in binary floats,
// so a rate of 0.145 times 3 was 0.43499999999999994, rounded to 0.43
// where 0.44 is due, and 0.1 + 0.2 was not <= 0.3. The types stay
// expr's: the result is a float (converted for money with
// dec(string(x))), whole numbers are whole numbers, and what expr
// refused (a decimal beside a JSON number) it still refuses.
func TestArithmeticOnJSONNumbersIsDoneOnTheirText(t *testing.T) {
	fields := `{"rate": 0.145, "a": 0.1, "b": 0.2, "c": 0.3, "ref": 17, "two": 2, "annual": 1000, "tiny": 1e-20, "pct": 14.5, "seventh": 0.14285714285714285, "big": 1e30, "least": 1e-308, "name": "Acme", "days": 30}`
	cf := `fromJSON(deal.raw["custom_fields"])`
	checkMemos(t, fields, []memoCase{
		{`string(` + cf + `["rate"] * 3)`, "0.435", ""},
		{`string(round_to(dec(string(` + cf + `["rate"] * 3)), 2))`, "0.44", ""},
		{`string(round(` + cf + `["rate"] * 3 * 100))`, "44", ""},
		{`string(` + cf + `["a"] + ` + cf + `["b"])`, "0.3", ""},
		{`string(` + cf + `["c"] - ` + cf + `["a"] - ` + cf + `["b"])`, "0", ""},
		{`string(` + cf + `["c"] / ` + cf + `["a"])`, "3", ""},
		{`` + cf + `["a"] + ` + cf + `["b"] <= 0.3 ? "le" : "gt"`, "le", ""},
		{`` + cf + `["a"] + ` + cf + `["b"] == ` + cf + `["c"] ? "same" : "other"`, "same", ""},
		{`join(map([1, 2, 3], string(# * ` + cf + `["rate"])), ",")`, "0.145,0.29,0.435", ""},
		// Ordered against a decimal by value, as == compares them (it was
		// "mismatched types decimal and unknown" at load).
		{`deal.amount >= ` + cf + `["annual"] ? "ge" : "lt"`, "ge", ""},
		{cf + `["annual"] > deal.amount ? "gt" : "le"`, "le", ""},
		{`dec("0.435") <= ` + cf + `["rate"] * 3 ? "le" : "gt"`, "le", ""},
		{`deal.amount < ` + cf + `["name"] ? "lt" : "ge"`, "", "invalid operation"},
		// A quotient is a float, as expr types it, and computed so on.
		{`string(` + cf + `["pct"] / 100 * 3)`, "0.435", ""},
		// Where the float expr computes has the shorter text, it stays:
		// a quotient's float times its divisor is the dividend again.
		{`string(` + cf + `["two"] / 3 * 3)`, "2", ""},
		{`string(` + cf + `["annual"] / 12 * 12)`, "1000", ""},
		{`string(` + cf + `["a"] / 3)`, "0.03333333333333333", ""},
		{`string(` + cf + `["two"] / 3)`, "0.6666666666666666", ""},
		// Texts of one length: the written numbers' (expr's is
		// 0.7142857142857142).
		{`string(` + cf + `["seventh"] * 5)`, "0.7142857142857143", ""},
		// Typed as expr types it: a float beside an unknown is unknown,
		// which coalesce takes (as its text).
		{`coalesce(` + cf + `["rate"] * 1.5, "n/a")`, "0.2175", ""},
		{`string(` + cf + `["tiny"] / 2)`, "5e-21", ""},
		// Whole numbers and the rest are expr's.
		{`string(` + cf + `["ref"] + 1)`, "18", ""},
		{`string(add_days(deal.close_date, int(` + cf + `["days"] / 7)))`, "2026-11-24", ""},
		{`string(1 + 2)`, "3", ""},
		{`"Ref " + ` + cf + `["name"]`, "Ref Acme", ""},
		{`string(` + cf + `["name"] * 2)`, "", "invalid operation"},
		// A divisor that is zero for this deal: "division by zero", as
		// for decimals (it was +Inf, which a trigger took as more than
		// anything, and int() as -9223372036854775808).
		{`string(` + cf + `["ref"] / (` + cf + `["ref"] - 17))`, "", "division by zero"},
		{`string(int(` + cf + `["ref"] / (` + cf + `["ref"] - 17)))`, "", "division by zero"},
		// Past a float's range, or a whole number's: an error, not +Inf
		// or the smallest whole number.
		{`string(` + cf + `["ref"] / ` + cf + `["least"])`, "", "past the range of a number read with fromJSON"},
		{`string(int(` + cf + `["big"] / 1))`, "", "int: 1000000000000000000000000000000 is no whole number a mapping can use"},
	})
	// What the load refused, it refuses: a decimal beside a JSON number,
	// a float for money, a float compared with a decimal, a zero divisor.
	for _, c := range []struct{ key, expr, says string }{
		{"lines:\n    unit_price", `deal.amount * ` + cf + `["rate"]`, "mismatched types decimal and unknown); a number read with fromJSON is a float, which money is not computed with: write dec(string(x)) for it"},
		{"lines:\n    unit_price", cf + `["annual"] / 3`, "expression gives float64"},
		{"lines:\n    unit_price", cf + `["pct"] / 100 * 3`, "expression gives float64"},
		{"memo", cf + `["c"] / 100 == dec("0.003") ? "x" : "y"`, "mismatched types float64 and decimal"},
		{"memo", `string(` + cf + `["annual"] / 0)`, "division by zero: the divisor is always 0"},
	} {
		_, err := mapping.Parse("cf.yaml", fmt.Appendf(nil, "name: cf\ninvoice:\n  %s: %q\n", c.key, c.expr))
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v; want a load error saying %q", c.expr, err, c.says)
		}
	}
}

// The patch behind it leaves the operators on typed values to the
// decimal operators, even where an operand is typed only after a later
// pass (a unary minus of a product): the expression stays a decimal at
// load, so add_days refuses it there, and a decimal field takes it.
func TestArithmeticOnTypedValuesStaysTyped(t *testing.T) {
	m, err := mapping.Parse("t.yaml", []byte("name: t\ninvoice:\n  lines:\n    unit_price: -(dec(\"2\") * 3) + dec(\"7\")\n"))
	if err != nil {
		t.Fatal(err)
	}
	ev := wonEvent("closedwon", "")
	ev.Deal.Amount = decimal.NullDecimal{} // no amount check
	inv, err := mapping.Apply(m, ev)
	if err != nil || len(inv.Lines) != 1 || inv.Lines[0].UnitPrice.String() != "1" {
		t.Fatalf("unit price: %+v, %v; want 1", inv.Lines, err)
	}
	for _, src := range []string{
		"name: t\ninvoice:\n  due_date: add_days(deal.close_date, -(dec(\"2\") * 3) + dec(\"7\"))\n",
		// An ordering of a decimal typed in a later pass and a float, and
		// one with a literal nil: load errors, as before.
		"name: t\ninvoice:\n  memo: '-(deal.amount * 2) >= 0.5 ? \"a\" : \"b\"'\n",
		"name: t\ninvoice:\n  memo: 'deal.amount > nil ? \"a\" : \"b\"'\n",
		// A decimal beside a JSON number: refused at load as before, also
		// where the decimal is typed only after a later pass.
		"name: t\ninvoice:\n  memo: string(-(dec(\"2\") * 3) + fromJSON(deal.raw[\"x\"])[\"n\"])\n",
	} {
		if _, err := mapping.Parse("t.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "t.yaml:3") {
			t.Errorf("%q: %v; want a load error at t.yaml:3", src, err)
		}
	}
}

// The mapping functions that take a decimal or a whole number take a
// number read with fromJSON (a CRM's custom field), as the number its
// text says: they failed every run with "cannot take a decimal and a
// float64 (… a conditional …)". A days count or places that is no whole
// number, and a JSON string, say so.
func TestFunctionsTakeNumbersReadWithFromJSON(t *testing.T) {
	ev := wonEvent("closedwon", "")
	ev.Deal.Raw = map[string]json.RawMessage{"cf": json.RawMessage(`{"disc": 12.5, "terms": 30, "half": 7.5, "places": 1, "text": "12.5", "p": 0.1}`)}
	cf := `fromJSON(deal.raw["cf"])`
	m := parse(t, "name: d\ninvoice:\n  lines:\n    discount: 'percent(item.quantity * item.unit_price, "+cf+`["disc"])'`+"\n")
	if inv, err := m.Map(ev); err != nil || !inv.Lines[0].Discount.Equal(decimal.RequireFromString("1500")) {
		t.Errorf("discount: got %+v, %v; want 1500", inv, err)
	}
	for _, c := range []struct{ field, expr, want string }{
		{"memo", `string(percent(deal.amount, ` + cf + `["p"]))`, "12"},
		{"memo", `string(percent(` + cf + `["disc"], 10))`, "1.25"},
		{"memo", `string(add_days(deal.close_date, ` + cf + `["terms"]))`, "2026-12-20"},
		{"memo", `string(round_to(dec("1.25"), ` + cf + `["places"]))`, "1.3"},
		{"memo", `string(round_to(` + cf + `["half"], 0))`, "8"},
		{"memo", `string(max_dec(deal.amount, ` + cf + `["disc"]))`, "12000"},
		{"memo", `string(min_dec(deal.amount, ` + cf + `["disc"]))`, "12.5"},
		{"memo", `string(round_currency(` + cf + `["disc"], "JPY"))`, "13"},
	} {
		m := parse(t, "name: d\ninvoice:\n  "+c.field+": '"+c.expr+"'\n")
		inv, err := m.Map(ev)
		if err != nil || inv.Memo != c.want {
			t.Errorf("%s: got %q, %v; want %s", c.expr, inv.Memo, err, c.want)
		}
	}
	for _, c := range []struct{ expr, want string }{
		{`string(add_days(deal.close_date, ` + cf + `["half"]))`, "add_days: 7.5 is not a whole number of days (a number read with fromJSON): round it first"},
		{`string(round_to(deal.amount, ` + cf + `["half"]))`, "round_to: 7.5 is not a whole number of places (a number read with fromJSON)"},
		{`string(percent(deal.amount, ` + cf + `["text"]))`, "percent cannot take a decimal and a string (a text where a number is needed, e.g. a JSON string read with fromJSON: convert it, with dec(x) for a decimal or int(x) for a whole number)"},
		{`string(add_days(deal.close_date, ` + cf + `["text"]))`, "add_days cannot take a date and a string (a text where a number is needed"},
	} {
		m := parse(t, "name: d\ninvoice:\n  memo: '"+c.expr+"'\n")
		_, err := m.Map(ev)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v; want %s", c.expr, err, c.want)
		}
	}
}

// Text joined with + to a value read with fromJSON that is no text (a
// number, nothing, an object) fails as the run reads it; the error says
// what the value is and what to write, as the load errors of a decimal
// beside such a value do.
func TestTextJoinedWithAFromJSONValueSaysWhatToWrite(t *testing.T) {
	ev := wonEvent("closedwon", "")
	ev.Deal.Raw = map[string]json.RawMessage{"cf": json.RawMessage(`{"po":"123","n":4500012345,"z":null,"o":{"a":1}}`)}
	for _, c := range []struct{ memo, want string }{
		{`"PO " + fromJSON(deal.raw["cf"])["n"]`, `invalid operation: string + float64: the value beside the text is a number or a yes/no here`},
		{`fromJSON(deal.raw["cf"])["n"] + " PO"`, `join its text, string(x), as in "PO " + string(fromJSON(deal.raw["cf"])["po"])`},
		{`"PO " + fromJSON(deal.raw["cf"])["missing"]`, `invalid operation: string + <nil>: the value beside the text is nothing here`},
		{`"PO " + fromJSON(deal.raw["cf"])["o"]`, `is an object or a list here (read with fromJSON): pick the part to write`},
	} {
		m := parse(t, "name: p\ninvoice:\n  memo: '"+c.memo+"'\n")
		if _, err := mapping.Apply(m, ev); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.memo, err, c.want)
		}
	}
	m := parse(t, "name: p\ninvoice:\n  memo: '\"PO \" + string(fromJSON(deal.raw[\"cf\"])[\"n\"])'\n")
	if inv, err := mapping.Apply(m, ev); err != nil || inv.Memo != "PO 4500012345" {
		t.Errorf("the advice: %q %v", inv.Memo, err)
	}
}
