package mapping_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/mapping"
)

// anchorsFile uses an alias of a lookup table, of an expression and of a
// whole block, and merges the lines' block into amount_line with keys of
// its own beside the merge key (which win).
const anchorsFile = `name: anchors-test
defaults:
  currency: EUR
  account_code: "200"

lookups:
  tax_codes_by_rate: &rates
    missing: error
    entries: {"0": NONE, "7": OUTPUT7, "19": OUTPUT2}
  tax_codes_copy: *rates

invoice:
  reference: &ref '"DS-" + deal.id'
  memo: *ref
  lines: &line
    item_code: coalesce(item.sku, "MISC")
    description: coalesce(item.description, item.sku)
    tax_code: &taxcode 'item.has_tax_rate ? lookup("tax_codes_copy", string(item.tax_rate)) : "OUTPUT2"'
    account_code: '"4000"'
    tax_rate: 'item.has_tax_rate ? item.tax_rate : dec("19")'
  amount_line:
    <<: *line
    item_code: '"MISC"'
    description: coalesce(deal.name, "Deal " + deal.id)
    tax_code: '"OUTPUT2"'
    tax_rate: dec("19")
`

// A mapping file's aliases and merge keys are read as any YAML reader
// reads them: *ref is the anchored value, a merged block's keys are the
// mapping's, and the keys written beside the merge key win over the
// merged ones. They were "must be a single value", "must be a mapping of
// keys" and "<<: unknown key".
func TestAliasesAndMergeKeysLoadAsYAMLReadsThem(t *testing.T) {
	m := parse(t, anchorsFile)
	ev := wonEvent("closedwon", "")
	ev.Deal.LineItems[0].TaxRate = decimal.NewNullDecimal(dec("7"))
	inv, err := m.Map(ev)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Reference != "DS-D-1" || inv.Memo != "DS-D-1" {
		t.Errorf("reference %q, memo %q: want DS-D-1 for both (memo: *ref)", inv.Reference, inv.Memo)
	}
	if l := inv.Lines[0]; l.ItemCode != "PRO-1Y" || l.TaxCode != "OUTPUT7" || l.AccountCode != "4000" || !l.TaxRate.Equal(dec("7")) {
		t.Errorf("line %+v: want PRO-1Y, OUTPUT7 from the table's alias, account 4000, rate 7", l)
	}

	// A deal without line items: the amount line, lines' block merged.
	ev.Deal.LineItems = nil
	inv, err = m.Map(ev)
	if err != nil {
		t.Fatal(err)
	}
	l := inv.Lines[0]
	if l.ItemCode != "MISC" || l.Description != "Acme annual" || l.TaxCode != "OUTPUT2" || !l.TaxRate.Equal(dec("19")) {
		t.Errorf("amount line %+v: the keys beside <<: *line must win", l)
	}
	if l.AccountCode != "4000" {
		t.Errorf("amount line's account_code %q: want 4000, merged from the lines' block", l.AccountCode)
	}
}

// With a list of mappings to merge, the first one's keys win over a
// later one's, and keys written beside the merge key over both; a block
// written after `<<:` merges as an alias does, and merges nest.
func TestMergeKeyListsAndNestedMerges(t *testing.T) {
	m := parse(t, `name: merges
invoice:
  customer:
    name: &a '"first"'
    email: &b '"second"'
    address: &addr
      city: '"Köln"'
      country: '"DE"'
  lines:
    <<: [&one {item_code: '"ONE"', description: '"one"'}, &two {item_code: '"TWO"', account_code: '"TWO"', tax_code: '"TWO"'}]
    tax_code: '"OWN"'
  amount_line:
    <<:
      <<: *two
      item_code: '"NESTED"'
    quantity: dec("2")
    unit_price: dec("5")
`)
	ev := wonEvent("closedwon", "")
	inv, err := m.Map(ev)
	if err != nil {
		t.Fatal(err)
	}
	l := inv.Lines[0]
	if l.ItemCode != "ONE" || l.Description != "one" || l.AccountCode != "TWO" || l.TaxCode != "OWN" {
		t.Errorf("line %+v: want item ONE (first of the list wins), description one, account TWO, tax OWN (written beside <<)", l)
	}
	if inv.Customer.Name != "first" || inv.Customer.Email != "second" || inv.Customer.Address.City != "Köln" {
		t.Errorf("customer %+v", inv.Customer)
	}
	ev.Deal.LineItems = nil
	ev.Deal.Amount = decimal.NewNullDecimal(dec("10"))
	inv, err = m.Map(ev)
	if err != nil {
		t.Fatal(err)
	}
	if l := inv.Lines[0]; l.ItemCode != "NESTED" || l.AccountCode != "TWO" || !l.Quantity.Equal(dec("2")) {
		t.Errorf("amount line %+v: want NESTED (beside the inner <<), account TWO (merged twice over), quantity 2", l)
	}
}

// A problem of a value reached through an alias or a merge key is
// reported where the value is written (its line and column), at the key
// path where it is used, and says where it is used.
func TestProblemsInAliasedValuesNameWhereWrittenAndUsed(t *testing.T) {
	_, err := mapping.Parse("m.yaml", []byte(`name: e1
invoice:
  reference: &ref deal.idd
  memo: *ref
  lines: &line
    skip: item.quantity == 0
    tax_code: coalesce(item.sku, "X")
  amount_line:
    <<: *line
    item_code: '"MISC"'
  customer: *ref
`))
	var le *mapping.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want a load error", err)
	}
	var got []string
	for _, p := range le.Problems {
		got = append(got, p.String())
	}
	want := []string{
		"m.yaml:3:14: invoice.customer: must be a mapping of keys (used as *ref at line 11)",
		"m.yaml:3:24: invoice.reference: type deal has no field idd (did you mean id?) (in `deal.idd`)",
		"m.yaml:3:24: invoice.memo: type deal has no field idd (did you mean id?) (in `deal.idd`) (used as *ref at line 4)",
		"m.yaml:6:5: invoice.amount_line.skip: unknown key (known keys: item_code, description, quantity, unit_price, discount, account_code, tax_code, tax_rate) (merged by <<: *line at line 9)",
		"m.yaml:7:24: invoice.amount_line.tax_code: unknown name item; item is the line item being mapped, known only under invoice.lines (in `coalesce(item.sku, \"X\")`) (merged by <<: *line at line 9)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A merge key whose value is no mapping (nor an alias of one, nor a list
// of those) is refused, and so is a second merge key in a mapping.
func TestMergeKeyValuesThatAreNoMappings(t *testing.T) {
	_, err := mapping.Parse("m.yaml", []byte(`name: e4
invoice:
  memo: &memo deal.name
  amount_line:
    <<: [*memo]
  lines:
    <<: {item_code: '"A"'}
    <<: {item_code: '"B"'}
`))
	var le *mapping.LoadError
	if !errors.As(err, &le) || len(le.Problems) != 2 {
		t.Fatalf("got %v, want two load problems", err)
	}
	p := le.Problems[0]
	if p.Line != 5 || p.Column != 10 || p.Key != "invoice.amount_line.<<" || !strings.Contains(p.Message, "a merge key takes a mapping") || !strings.HasSuffix(p.Message, "not a single value") {
		t.Errorf("got %s", p)
	}
	p = le.Problems[1]
	if p.Line != 8 || p.Key != "invoice.lines.<<" || !strings.HasPrefix(p.Message, "duplicate key: a mapping has one merge key") {
		t.Errorf("got %s", p)
	}
}

// An alias written inside the value it stands for cannot be expanded
// (every YAML reader refuses it): it is a load problem at the alias, and
// the file's walk ends.
func TestSelfContainingAliasIsRefused(t *testing.T) {
	for _, src := range []string{
		"name: s\ninvoice: &i\n  customer: *i\n",
		"name: s\ninvoice:\n  lines: &l\n    <<: *l\n",
		"name: s\nlookups: &t\n  x: {default: a, entries: {<<: [*t]}}\n",
	} {
		p := loadProblem(t, src, src)
		if !strings.Contains(p.Message, "is written inside the value of &") || !strings.Contains(p.Message, "YAML cannot expand a value that contains itself") {
			t.Errorf("%q: got %s", src, p)
		}
	}
}

// Merges are expanded once per mapping merged, however many times it is
// merged: a chain where each level merges the one before ten times (the
// "billion laughs" of merge keys) loads, each level's keys worked out
// once, not ten times per level above it.
func TestMergeChainsDoNotExpandExponentially(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: laughs\nlookups:\n  t0: {default: none, entries: &l0 {k0: v0}}\n")
	const levels = 14
	for i := 1; i <= levels; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", ")
		fmt.Fprintf(&b, "  t%d: {default: none, entries: &l%d {<<: [%s], k%d: v%d}}\n", i, i, refs, i, i)
	}
	fmt.Fprintf(&b, "invoice:\n  memo: 'lookup(\"t%d\", \"k0\") + lookup(\"t%d\", \"k%d\")'\n", levels, levels, levels)
	m := parse(t, b.String())
	inv, err := m.Map(wonEvent("closedwon", ""))
	if err != nil {
		t.Fatal(err)
	}
	if inv.Memo != "v0v14" {
		t.Errorf("memo %q, want v0v14", inv.Memo)
	}
}

// The hash that pins a run to its mapping's version is the file's: the
// same for the same text, another when an anchored value changes (which
// changes every place that uses it). A run's snapshot of such a file
// compiles and maps as the file does.
func TestHashOfAnchoredMappingFollowsTheAnchoredValue(t *testing.T) {
	a, b := parse(t, anchorsFile), parse(t, anchorsFile)
	if a.Hash() != b.Hash() {
		t.Errorf("hashes %s and %s of one text", a.Hash(), b.Hash())
	}
	changed := strings.Replace(anchorsFile, `account_code: '"4000"'`, `account_code: '"4100"'`, 1)
	c := parse(t, changed)
	if c.Hash() == a.Hash() {
		t.Errorf("hash %s unchanged when the anchored lines' block changed", c.Hash())
	}
	ev := wonEvent("closedwon", "")
	ev.Deal.LineItems = nil
	snap, err := mapping.FromSnapshot(c.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	inv, err := snap.Map(ev)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Lines[0].AccountCode != "4100" {
		t.Errorf("snapshot's amount line account %q, want 4100 (merged from the changed anchor)", inv.Lines[0].AccountCode)
	}
}

// A YAML error under a key whose value is an anchor alone (`lines:
// &line`) or a merge key's block (`<<:`) names the field and gives the
// expression quoted, as one under a plain key does; an anchor before the
// value is kept in the quoted form.
func TestYAMLErrorHintsUnderAnchorsAndMergeKeys(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"name: x\ninvoice:\n  lines: &line\n    description: \"DS-\" + item.sku\n",
			"m.yaml:4:24: invoice.lines.description: did not find expected key: a YAML value that starts with a quote ends where the quote closes; quote the whole expression: `description: '\"DS-\" + item.sku'`"},
		{"name: x\ninvoice:\n  amount_line:\n    <<:\n      description: \"DS-\" + deal.id\n",
			"m.yaml:5:26: invoice.amount_line.description: did not find expected key: a YAML value that starts with a quote ends where the quote closes; quote the whole expression: `description: '\"DS-\" + deal.id'`"},
		{"name: x\ninvoice:\n  memo: &m \"DS-\" + deal.id\n",
			"m.yaml:3:18: invoice.memo: did not find expected key: a YAML value that starts with a quote ends where the quote closes; quote the whole expression: `memo: &m '\"DS-\" + deal.id'`"},
	} {
		if got := loadProblem(t, c.src, c.src).String(); got != c.want {
			t.Errorf("got\n%s\nwant\n%s", got, c.want)
		}
	}
}

// A lookup table, or a table's entries, that other names alias is read
// once, where it is written: its problem is reported once, at the name
// that writes it, not again (at a path the file lacks) at each alias.
func TestProblemOfAnAliasedLookupTableIsReportedOnceWhereWritten(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"name: x\nlookups:\n  z: &t {default: x, entries: {k: [1]}}\n  a: *t\n  b: *t\n",
			"m.yaml:3:35: lookups.z.entries.k: must be a single value"},
		{"name: x\nlookups:\n  z: {default: x, entries: &e {k: [1]}}\n  a: {default: y, entries: *e}\n",
			"m.yaml:3:35: lookups.z.entries.k: must be a single value"},
	} {
		if got := loadProblem(t, c.src, c.src).String(); got != c.want {
			t.Errorf("got\n%s\nwant\n%s", got, c.want)
		}
	}
}

// A key written twice in a mapping that is only merged is a duplicate
// key, as it is in a mapping written where it is read (the first one was
// merged, silently); in a mapping both read and merged, it is reported
// once.
func TestDuplicateKeyInAMergedMapping(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"name: x\ninvoice:\n  lines:\n    <<: {account_code: '\"a\"', account_code: '\"b\"'}\n",
			"m.yaml:4:31: invoice.lines.account_code: duplicate key"},
		{"name: x\ninvoice:\n  lines: &l {account_code: '\"a\"', account_code: '\"b\"'}\n  amount_line: {<<: *l}\n",
			"m.yaml:3:35: invoice.lines.account_code: duplicate key"},
	} {
		if got := loadProblem(t, c.src, c.src).String(); got != c.want {
			t.Errorf("got\n%s\nwant\n%s", got, c.want)
		}
	}
}
