package mapping_test

import (
	"strconv"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// A target that looks invoices up by reference needs a reference unique
// per deal: ReferenceReadsDealID tells whether invoice.reference reads
// deal.id, wherever in the expression.
func TestReferenceReadsDealID(t *testing.T) {
	for _, c := range []struct {
		name, invoice string // invoice: the `invoice:` block, "" for none
		expr          string
		reads         bool
	}{
		{"built-in (no invoice block)", "", "deal.id", true},
		{"file without reference", "  memo: deal.name\n", "deal.id", true},
		{"deal.id", "  reference: deal.id\n", "deal.id", true},
		{"prefixed", `  reference: '"DS-" + deal.id'` + "\n", `"DS-" + deal.id`, true},
		{"account and id", `  reference: 'event.account + "-" + deal.id'` + "\n", `event.account + "-" + deal.id`, true},
		{"index", `  reference: 'deal["id"]'` + "\n", `deal["id"]`, true},
		{"optional chain", "  reference: deal?.id\n", "deal?.id", true},
		{"$env", "  reference: $env.deal.id\n", "$env.deal.id", true},
		{"in a condition", `  reference: 'deal.raw["po"] != "" ? deal.raw["po"] : deal.id'` + "\n", `deal.raw["po"] != "" ? deal.raw["po"] : deal.id`, true},
		{"company name", "  reference: deal.company.name\n", "deal.company.name", false},
		{"company id", "  reference: deal.company.id\n", "deal.company.id", false},
		{"a PO number", `  reference: 'deal.raw["po_number"]'` + "\n", `deal.raw["po_number"]`, false},
		{"the deal's name", "  reference: deal.name\n", "deal.name", false},
		{"the event's id", "  reference: event.id\n", "event.id", false},
		{"an id field not the deal's", `  reference: '"X-" + deal.company.id'` + "\n", `"X-" + deal.company.id`, false},
		{"unmapped", `  reference: ""` + "\n", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := "name: ref\n"
			if c.invoice != "" {
				src += "invoice:\n" + c.invoice
			}
			m := parse(t, src)
			if got := m.ReferenceExpression(); got != c.expr {
				t.Errorf("ReferenceExpression() = %s, want %s", strconv.Quote(got), strconv.Quote(c.expr))
			}
			if got := m.ReferenceReadsDealID(); got != c.reads {
				t.Errorf("ReferenceReadsDealID() = %v, want %v", got, c.reads)
			}
		})
	}
}

// ReferenceIsDealID: the deal's id and nothing else, also through
// string() and trim(), and through string()'s guard of a value read with
// ?. (which writes nothing as "").
func TestReferenceIsDealID(t *testing.T) {
	for src, want := range map[string]bool{
		"deal.id":                  true,
		"string(deal.id)":          true,
		"trim(string(deal?.id))":   true,
		"string(deal?.id)":         true,
		`"DS-" + deal.id`:          false,
		"string(deal.company?.id)": false,
	} {
		m := parse(t, "name: ref\ninvoice:\n  reference: '"+src+"'\n")
		if got := mapping.ReferenceIsDealID(m); got != want {
			t.Errorf("ReferenceIsDealID(%s) = %v, want %v", src, got, want)
		}
	}
}
