package mapping_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// address is what fmt prints for a function: its memory address.
var address = regexp.MustCompile(`0x[0-9a-f]+`)

// A method of a value whose type shows only as the expression runs, read
// without a call, loads (the load cannot tell it from a key of a map),
// and was a function at run time: string() of it wrote the function's
// address ("0x4a5b60") into the invoice, and a field giving it reported
// the address as its value. Both are now a mapping error naming the
// mapping, the field and the expression, without any address.
func TestAFunctionValueIsAMappingErrorNotAnAddress(t *testing.T) {
	const amount = `(deal.name != "" ? deal.amount : 0)` // a decimal, of a type known only as it runs
	for _, c := range []struct {
		expr, field, message string
	}{
		{`string(` + amount + `.String)`, "memo", "string() was given a function, not a value"},
		{`"Deal " + string(` + amount + `.StringFixed)`, "memo", "string() was given a function, not a value"},
		{`string([` + amount + `.String])`, "memo", "string() was given a function, not a value"},
		{`string({"a": (deal.name != "" ? deal.close_time : 0).String})`, "memo", "string() was given a function, not a value"},
		{`string(let f = ` + amount + `.Round; f)`, "memo", "string() was given a function, not a value"},
		{`toJSON(` + amount + `.String)`, "memo", "toJSON() was given a function, not a value"},
		{amount + `.String`, "memo", "expression gave a function, not a value"},
		{`coalesce(` + amount + `.String)`, "customer.name", "expression gave a function, not a value"},
		{`lookup("codes", string(` + amount + `.String))`, "memo", "string() was given a function, not a value"},
	} {
		key := c.field
		if key == "customer.name" {
			key = "customer:\n    name"
		}
		src := fmt.Sprintf("name: fn\nlookups:\n  codes: {entries: {a: b}, missing: error}\ninvoice:\n  %s: %q\n", key, c.expr)
		m, err := mapping.Parse("fn.yaml", []byte(src))
		if err != nil {
			t.Errorf("%s: %v; want it loaded (the type shows only as it runs)", c.expr, err)
			continue
		}
		inv, err := mapping.Apply(m, wonEvent("closedwon", ""))
		var me *mapping.Error
		if !errors.As(err, &me) {
			t.Errorf("%s: memo %q, customer %q, error %v; want a mapping error", c.expr, inv.Memo, inv.Customer.Name, err)
			continue
		}
		if me.Mapping != "fn" || me.Field != c.field || me.Expression != c.expr || me.Value != "" ||
			!strings.Contains(me.Message, c.message) || !strings.Contains(me.Message, "write string(x)") {
			t.Errorf("%s: got %#v; want mapping fn, field %s, the expression, no value, %q", c.expr, me, c.field, c.message)
		}
		if address.MatchString(err.Error()) {
			t.Errorf("%s: the error shows an address: %v", c.expr, err)
		}
	}
}

// The guard lets values through: string() and toJSON() of a value whose
// type shows only as the expression runs give what they gave.
func TestStringOfAValueOfARunTimeTypeIsUnchanged(t *testing.T) {
	m := parse(t, `name: ok
invoice:
  memo: 'string(deal.name != "" ? deal.amount : 0) + " " + string([deal.name != "" ? deal.close_date : 0]) + " " + toJSON(deal.name != "" ? deal.id : 0)'
`)
	inv, err := mapping.Apply(m, wonEvent("closedwon", ""))
	if err != nil || inv.Memo != `12000 [2026-11-20] "D-1"` {
		t.Fatalf("memo %q, %v", inv.Memo, err)
	}
}

// A value known at load to be a function (the trigger's is_won, uncalled)
// given to string() is refused at load. A run's snapshot, accepted before
// that check, still compiles, and the run fails on it with the run-time
// error instead of writing an address.
func TestAFunctionKnownAtLoadIsRefusedAndASnapshotFailsAtRunTime(t *testing.T) {
	src := []byte("name: old\ntrigger: 'string(is_won) != \"\" && is_won(deal.stage)'\ninvoice:\n  memo: 'string((deal.name != \"\" ? deal.amount : 0).String)'\n")
	_, err := mapping.Parse("old.yaml", src)
	if err == nil || !strings.Contains(err.Error(), "old.yaml:2:18: trigger: is_won is a function, not a value") ||
		!strings.Contains(err.Error(), "is_won(deal.stage)") {
		t.Fatalf("load: %v; want is_won refused at its position", err)
	}
	m, err := mapping.FromSnapshot(&mapping.Snapshot{Name: "old", Hash: mapping.HashOf(src), Path: "old.yaml", Source: src})
	if err != nil {
		t.Fatalf("the snapshot of a run under way: %v", err)
	}
	f := m.(*mapping.File)
	ok, _, err := f.Trigger([]string{"closedwon"}).Evaluate(wonEvent("closedwon", ""))
	var me *mapping.Error
	if ok || !errors.As(err, &me) || me.Field != "trigger" || !strings.Contains(me.Message, "string() was given a function") || address.MatchString(err.Error()) {
		t.Errorf("snapshot trigger: %v, %v; want the run-time error", ok, err)
	}
	inv, err := m.Map(wonEvent("closedwon", ""))
	if !errors.As(err, &me) || me.Field != "memo" || !strings.Contains(me.Message, "string() was given a function") || address.MatchString(err.Error()) {
		t.Errorf("snapshot memo %q, %v; want the run-time error", inv.Memo, err)
	}
}

// string() of nothing is "", whatever the type of what was not found: a
// line item find() did not find, a field read with ?. from it, get() of a
// key the map lacks, a let variable holding such a value, ?. on the raw
// fields of a deal without any. It was "<nil>" where the type was known
// at load (a text, a decimal, a line item), written into the invoice. A
// value that is found is written as before, and a list the deal lacks is
// an empty list, "[]".
func TestStringOfNothingIsBlankWhateverItsType(t *testing.T) {
	ev := wonEvent("closedwon", "")
	for _, c := range []struct{ expression, want string }{
		{`find(deal.line_items, .sku == "x")?.sku`, ""},
		{`find(deal.line_items, .sku == "x")?.quantity`, ""},
		{`find(deal.line_items, .sku == "x")`, ""},
		{`findLast(deal.line_items, .sku == "x")?.description`, ""},
		{`get(deal.raw, "po")`, ""},
		{`deal.raw?.po`, ""},
		{`let x = find(deal.line_items, .sku == "x"); x?.sku`, ""},
		{`let s = find(deal.line_items, .sku == "x")?.sku; s`, ""},
		{`deal.name != "" ? find(deal.line_items, .sku == "x")?.sku : "n"`, ""},
		{`find(deal.line_items, .sku == "PRO-1Y")?.sku`, "PRO-1Y"},
		{`find(deal.line_items, .sku == "PRO-1Y")?.unit_price`, "12000"},
		{`deal.line_items[0].sku`, "PRO-1Y"},
	} {
		if got := printed(t, c.expression, ev); got != c.want {
			t.Errorf("string(%s) = %q, want %q", c.expression, got, c.want)
		}
	}
	none := wonEvent("closedwon", "")
	none.Deal.LineItems = nil
	for _, c := range []struct{ expression, want string }{
		{`last(deal.line_items)?.sku`, ""},
		{`first(deal.line_items)?.quantity`, ""},
		{`deal.line_items`, "[]"},
	} {
		if got := printed(t, c.expression, none); got != c.want {
			t.Errorf("without line items, string(%s) = %q, want %q", c.expression, got, c.want)
		}
	}
	m := parse(t, "name: t\ntrigger: 'string(find(deal.line_items, .sku == \"x\")?.sku) == \"\" && is_won(deal.stage)'\n")
	if ok, _, err := m.Trigger([]string{"closedwon"}).Evaluate(ev); !ok || err != nil {
		t.Errorf("trigger: %v, %v; want true (string() of nothing is \"\")", ok, err)
	}
}

// string() of a value of a type known at load is written as expr's
// string() writes it, whether the value is read straight or through a let
// variable, find(), first() or get(), which may give nothing (and then
// ""): a float keeps its text (1e+21, 1.1e-05). Only a value whose type
// shows as the run reads it (fromJSON's number) is written as its JSON
// text.
func TestStringOfAValueThatMayBeNilKeepsItsText(t *testing.T) {
	ev := wonEvent("closedwon", "")
	for _, c := range []struct{ expression, want string }{
		{`string(1e21) + " / " + (let x = 1e21; string(x))`, "1e+21 / 1e+21"},
		{`let r = len(deal.name) / 1000000; string(r)`, "1.1e-05"},
		{`find([0.00001], # > 0)`, "1e-05"},
		{`get([0.00001], 0)`, "1e-05"},
		{`let x = get([0.00001], 0); string(x)`, "1e-05"},
		{`let q = find(deal.line_items, .sku == "PRO-1Y")?.quantity; string(q)`, "1"},
		// A type known only as the run reads it: JSON's text.
		{`first([1e21])`, "1000000000000000000000"},
		{`find(deal.line_items, .sku == "PRO-1Y")?.quantity`, "1"},
		{`let x = find([0.00001], # > 1); string(x)`, ""},
		{`fromJSON("1e21")`, "1000000000000000000000"},
		{`let j = fromJSON("0.00001"); string(j)`, "0.00001"},
	} {
		if got := printed(t, c.expression, ev); got != c.want {
			t.Errorf("string(%s) = %q, want %q", c.expression, got, c.want)
		}
	}
}

// A let variable whose name is one that another environment gives a
// value (item under invoice.lines, is_won in the trigger) is a let
// variable for string() too: nothing is "" in a header field, a trigger
// and a line field alike.
func TestStringOfANilLetNamedLikeAnEnvironmentValueIsBlank(t *testing.T) {
	ev := wonEvent("closedwon", "")
	m := parse(t, `name: t
trigger: 'is_won(deal.stage) && (let item = find(deal.line_items, .sku == "x")?.sku; string(item) == "")'
invoice:
  memo: 'let item = find(deal.line_items, .sku == "x"); "[" + string(item) + "]"'
  reference: 'let is_won = find(deal.line_items, .sku == "x")?.sku; "[" + string(is_won) + "]"'
  lines:
    description: 'let is_won = first(filter(deal.line_items, .sku == "x")); let won_stages = find(deal.line_items, .sku == "x")?.description; "[" + string(won_stages) + string(is_won) + "]"'
    quantity: item.quantity
    unit_price: item.unit_price
`)
	if ok, _, err := m.Trigger([]string{"closedwon"}).Evaluate(ev); !ok || err != nil {
		t.Errorf("trigger: %v, %v; want true (string() of a let holding nothing is \"\")", ok, err)
	}
	inv, err := m.Map(ev)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Memo != "[]" || inv.Reference != "[]" {
		t.Errorf("memo %q, reference %q; want \"[]\" for both", inv.Memo, inv.Reference)
	}
	if len(inv.Lines) != 1 || inv.Lines[0].Description != "[]" {
		t.Errorf("lines %+v; want one described \"[]\"", inv.Lines)
	}
}
