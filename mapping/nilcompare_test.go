package mapping_test

import (
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// x == nil and x != nil where x is never nil (a text is "", a date unset,
// an amount 0 where the deal has none) are refused at load, as ?? is:
// the comparison is always false or always true. One of a value that may
// be nil loads.
func TestNilComparisonsOfValuesNeverNilAreRefused(t *testing.T) {
	cases := []struct{ src, want string }{
		{"name: y\ninvoice:\n  customer:\n    name: 'deal.company.email != nil ? deal.company.email : deal.company.name'\n",
			`bad/y.yaml:4:31: invoice.customer.name: != nil is always true here: deal.company.email is never nil (a text, "" where the deal has none); ` +
				`compare with "" instead: deal.company.email != "" (in` + " `deal.company.email != nil ? deal.company.email : deal.company.name`)"},
		{"name: y\ninvoice:\n  lines:\n    skip: item.sku == nil\n",
			`bad/y.yaml:4:20: invoice.lines.skip: == nil is always false here: item.sku is never nil (a text, "" where the deal has none); compare with "" instead: item.sku == "" (in`},
		{"name: y\ninvoice:\n  lines:\n    skip: nil == item.quantity\n",
			`== nil is always false here: item.quantity is never nil (a decimal, 0 where the deal has none); compare with 0 instead, if that is what is meant: item.quantity == 0 (in`},
		{"name: y\ninvoice:\n  memo: 'deal.amount != nil ? \"x\" : \"y\"'\n",
			`!= nil is always true here: deal.amount is never nil (a decimal, 0 where the deal has none)`},
		{"name: y\ninvoice:\n  memo: 'deal.close_date == nil ? \"x\" : \"y\"'\n",
			`== nil is always false here: deal.close_date is never nil (a date, unset where the deal has none); test it with is_set() instead: !is_set(deal.close_date) (in`},
		{"name: y\ninvoice:\n  memo: 'deal.close_time != nil ? \"x\" : \"y\"'\n",
			`!= nil is always true here: deal.close_time is never nil (a moment, unset where the deal has none); test it with is_set() instead: is_set(deal.close_time) (in`},
		{"name: y\ntrigger: 'deal.raw[\"po\"] != nil'\n",
			`trigger: != nil is always true here: deal.raw["po"] is never nil (a text, "" where the deal has none); compare with "" instead: deal.raw["po"] != "" (in`},
		{"name: y\ninvoice:\n  memo: 'deal.raw?.po == nil ? \"x\" : \"y\"'\n",
			`== nil here tells only whether the deal has any raw field (deal.raw?.po is nil for a deal without any, else a text, "" where the deal has none); compare with "" instead: deal.raw?.po == "" (in`},
	}
	for _, c := range cases {
		got := loadProblems(t, c.src)
		if len(got) != 1 || !strings.Contains(got[0], c.want) {
			t.Errorf("%q:\ngot  %q\nwant one containing %q", c.src, got, c.want)
		}
	}
	// Values that may be nil compare with nil as before.
	for _, e := range []string{
		`find(deal.line_items, .sku == "A") == nil`, `get(deal.raw, "po") != nil`, `deal.line_items == nil`,
		`(let e = first(deal.line_items); e == nil)`, `nil == findLast(deal.line_items, .quantity > 0)`,
		`is_set(deal.close_time)`, // the advice for a moment
	} {
		src := "name: y\ninvoice:\n  memo: '" + strings.ReplaceAll(e, "'", "''") + " ? \"x\" : \"y\"'\n"
		if _, err := mapping.Parse("y.yaml", []byte(src)); err != nil {
			t.Errorf("%s: %v", e, err)
		}
	}
}
