package mapping_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// expr's optimizer turns map(filter(xs, p), q) into a filter whose q is
// a field ast.Walk does not visit: the load checks and the reads of the
// file see q as they see map's closure without the filter.
func TestChecksSeeMapsClosureAfterAFilter(t *testing.T) {
	for _, c := range []struct {
		expr string
		says string // a load error, or with warn a warning
		warn bool
	}{
		{`deal.company.email != nil ? "a" : "b"`, "!= nil is always true here", false},
		{`deal.company.email ?? "x"`, "?? never falls back here", false},
		{`lookup("nope", #.sku)`, `lookup table "nope" is not declared`, false},
		{`string(dec("abc"))`, `dec: "abc" is not a decimal number`, false},
		{`string(date_in(deal.close_time, "Nowhere/X"))`, `"Nowhere/X" is not an IANA time zone name`, false},
		{`string(date_in(deal.close_time, "EST"))`, `date_in: "EST" is a legacy zone name`, true},
	} {
		for _, form := range []string{`join(map(deal.line_items, %s), ",")`, `join(map(filter(deal.line_items, #.quantity > 0), %s), ",")`} {
			src := fmt.Sprintf(form, c.expr)
			m, err := mapping.Parse("a.yaml", fmt.Appendf(nil, "name: a\ninvoice:\n  memo: '%s'\n", src))
			got := fmt.Sprint(err)
			if c.warn {
				if err != nil {
					t.Errorf("%s: %v; want it loaded", src, err)
					continue
				}
				got = fmt.Sprint(m.Warnings())
			}
			if !strings.Contains(got, c.says) {
				t.Errorf("%s: got %s; want %q", src, got, c.says)
			}
		}
	}
	// The raw keys read only there are read (a source that does not read
	// them is warned of).
	m, err := mapping.Parse("a.yaml", []byte("name: a\n"+
		"trigger: 'any(map(filter(deal.line_items, #.quantity > 0), deal.raw[\"stage_po\"]), # != \"\")'\n"+
		"invoice:\n  memo: 'join(map(filter(deal.line_items, #.quantity > 0), deal.raw[\"po\"]), \",\")'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.RawKeysRead(); !slices.Contains(got, "po") {
		t.Errorf("RawKeysRead() = %q; want po in it", got)
	}
	if got := m.TriggerRawKeysRead(); !slices.Contains(got, "stage_po") {
		t.Errorf("TriggerRawKeysRead() = %q; want stage_po in it", got)
	}
}
