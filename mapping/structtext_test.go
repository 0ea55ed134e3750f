package mapping_test

import (
	"encoding/json"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// string() and toJSON() of a deal's record (the company, a line item, the
// list of them, the event) write JSON with the names a mapping reads the
// fields by, not Go's text of the struct; other values as before. A run's
// snapshot keeps what it wrote when the run started.
func TestStringAndToJSONOfARecordAreJSONWithTheMappingsNames(t *testing.T) {
	ev := wonEvent("closedwon", "x")
	ev.Deal.Raw = map[string]json.RawMessage{"cf": json.RawMessage(`{"l":[1,"a<"]}`)}
	company := `{"id":"C-1","name":"Acme GmbH","email":"","tax_id":"","address":{"line1":"","line2":"","city":"","region":"","postal_code":"","country":"DE"}}`
	item := `{"sku":"PRO-1Y","description":"Pro","quantity":"1","unit_price":"12000","discount":"0","discount_percent":"0","tax_rate":"0","has_tax_rate":false}`
	for _, c := range []struct{ memo, want string }{
		{`string(deal.company)`, company},
		{`string(deal.line_items[0])`, item},
		{`string(first(deal.line_items))`, item},
		{`string(deal.line_items)`, "[" + item + "]"},
		{`string(true ? deal.company : 1)`, company}, // a type known only as the run reads it
		{`let c = deal.company; string(c.address)`, `{"line1":"","line2":"","city":"","region":"","postal_code":"","country":"DE"}`},
		{`toJSON(deal.company.address)`, "{\n  \"line1\": \"\",\n  \"line2\": \"\",\n  \"city\": \"\",\n  \"region\": \"\",\n  \"postal_code\": \"\",\n  \"country\": \"DE\"\n}"},
		{`toJSON(event)`, "{\n  \"id\": \"evt_1\",\n  \"account\": \"\",\n  \"occurred_on\": \"2026-11-20\",\n  \"occurred_at\": \"2026-11-20T10:00:00Z\"\n}"},
		// As before: strings, numbers, decimals, lists of them.
		{`string(deal.amount)`, "12000"},
		{`toJSON(deal.amount)`, `"12000"`},
		{`string([1, "a"])`, "[1 a]"},
		{`string(fromJSON(deal.raw["cf"])["l"])`, "[1 a<]"},
		{`string(find(deal.line_items, .sku == "x"))`, ""},
	} {
		m := parse(t, "name: p\ninvoice:\n  memo: '"+c.memo+"'\n")
		inv, err := mapping.Apply(m, ev)
		if err != nil || inv.Memo != c.want {
			t.Errorf("%s:\ngot  %q %v\nwant %q", c.memo, inv.Memo, err, c.want)
		}
	}

	src := []byte("name: p\ninvoice:\n  memo: 'string(deal.company.address)'\n")
	snap, err := mapping.FromSnapshot(&mapping.Snapshot{Name: "p", Hash: mapping.HashOf(src), Path: "p.yaml", Source: src})
	if err != nil {
		t.Fatal(err)
	}
	if inv, err := mapping.Apply(snap, ev); err != nil || inv.Memo != "{     DE}" {
		t.Errorf("a run's snapshot: got %q %v, want Go's text, as when the run started", inv.Memo, err)
	}
}
