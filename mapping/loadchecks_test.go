package mapping_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/mapping/dealfile"
	"github.com/dealsync/dealsync/model"
)

// loadProblem parses src and returns its only load problem.
func loadProblem(t *testing.T, name, src string) mapping.Problem {
	t.Helper()
	_, err := mapping.Parse("m.yaml", []byte(src))
	var le *mapping.LoadError
	if !errors.As(err, &le) || len(le.Problems) != 1 {
		t.Fatalf("%s: got %v, want one load problem", name, err)
	}
	return le.Problems[0]
}

// A blank value that coalesce never gives, one of an argument that other
// arguments follow, is not checked at load, whether the file writes it
// as a literal or as a lookup table's value or default: coalesce skips
// it. A blank lookup value as the last argument is the value coalesce
// gives when all are blank, and is checked as before.
func TestCoalesceSkipsBlankValuesOfArgumentsOthersFollow(t *testing.T) {
	jp := wonEvent("closedwon", "")
	jp.Account = "acct-jp"
	jp.Deal.LineItems[0].SKU = "PRO-1Y"
	jp.Deal.LineItems[0].UnitPrice = dec("12000.456") // rounded to the currency the table gives
	other := wonEvent("closedwon", "")
	other.Deal.LineItems[0].UnitPrice = dec("12000.456")
	other.Account = "acct-fr"
	other.Deal.LineItems[0].SKU = "OTHER"
	other.OccurredAt = other.OccurredAt.Add(14 * 3600e9) // 2026-11-21 00:00 UTC: 2026-11-21 in UTC, 20th in New York

	m := parse(t, `name: co
lookups:
  account_currency: {default: "", entries: {acct-jp: JPY}}
  rates: {default: " ", entries: {PRO-1Y: "7"}}
  zones: {default: "", entries: {acct-jp: Asia/Tokyo}}
invoice:
  currency: coalesce(lookup("account_currency", event.account), deal.currency)
  issue_date: 'date_in(event.occurred_at, coalesce(lookup("zones", event.account), "UTC"))'
  lines:
    tax_rate: 'dec(coalesce(lookup("rates", item.sku), "19"))'
    unit_price: 'round_currency(item.unit_price, coalesce(lookup("account_currency", event.account), "EUR"))'
`)
	for _, c := range []struct {
		ev         model.DealEvent
		cur, rate  string
		issue      model.Date
		unitPrices string
	}{
		{jp, "JPY", "7", model.NewDate(2026, 11, 20), "12000"},
		{other, "EUR", "19", model.NewDate(2026, 11, 21), "12000.46"},
	} {
		inv, err := m.Map(c.ev)
		if err != nil {
			t.Fatalf("%s: %v", c.ev.Account, err)
		}
		if string(inv.Currency) != c.cur || !inv.Lines[0].TaxRate.Equal(dec(c.rate)) || inv.IssueDate != c.issue || !inv.Lines[0].UnitPrice.Equal(dec(c.unitPrices)) {
			t.Errorf("%s: currency %s, tax rate %s, issue date %v, unit price %s; want %s, %s, %v, %s", c.ev.Account, inv.Currency, inv.Lines[0].TaxRate, inv.IssueDate, inv.Lines[0].UnitPrice, c.cur, c.rate, c.issue, c.unitPrices)
		}
	}

	// As the last argument, a table's blank value is what coalesce gives
	// when every argument is blank: still refused.
	for name, c := range map[string]struct{ src, frag string }{
		"currency": {"name: co\nlookups:\n  cur: {default: \"\", entries: {acct-jp: JPY}}\ninvoice:\n  currency: coalesce(deal.currency, lookup(\"cur\", event.account))\n",
			`"" leaves the invoice without a currency`},
		"dec": {"name: co\nlookups:\n  rates: {default: \" \", entries: {PRO-1Y: \"7\"}}\ninvoice:\n  lines:\n    tax_rate: dec(coalesce(deal.raw[\"rate\"], lookup(\"rates\", item.sku)))\n",
			`dec: " " is not a decimal number (the default of lookup table "rates")`},
		"zone": {"name: co\nlookups:\n  zones: {default: \"\", entries: {acct-jp: Asia/Tokyo}}\ninvoice:\n  issue_date: date_in(event.occurred_at, coalesce(deal.raw[\"tz\"], lookup(\"zones\", event.account)))\n",
			`"" is not an IANA time zone name`},
		// Not blank: checked wherever it stands.
		"a value that is no number, first": {"name: co\nlookups:\n  rates: {default: none, entries: {PRO-1Y: \"7\"}}\ninvoice:\n  lines:\n    tax_rate: dec(coalesce(lookup(\"rates\", item.sku), \"19\"))\n",
			`dec: "none" is not a decimal number`},
	} {
		if p := loadProblem(t, name, c.src); !strings.Contains(p.Message, c.frag) {
			t.Errorf("%s: %q does not say %q", name, p.Message, c.frag)
		}
	}
}

// An expression reads only the invoice fields evaluated before it: one
// that reads a later field, or itself, would read "" or an unset date
// for every deal, and is refused at load at the read's position.
func TestReadingAnInvoiceFieldNotEvaluatedYetIsALoadError(t *testing.T) {
	for _, c := range []struct {
		name, field, expr string
		col               int
		frag              string
	}{
		{"a later field", "reference", `'"INV-" + invoice.memo'`, 24, "reads invoice.memo before it is evaluated"},
		{"a later date", "reference", `'"INV-" + string(invoice.issue_date)'`, 31, `reads invoice.issue_date before it is evaluated: it would read an unset date`},
		{"itself", "memo", `'invoice.memo + deal.name'`, 10, "reads invoice.memo, the field it gives"},
		{"optional chaining", "currency", `'is_set(invoice?.issue_date) ? "EUR" : "EUR"'`, 21, "invoice.issue_date"},
		{"through $env", "reference", `'$env.invoice.memo'`, 15, "invoice.memo"},
		{"by index", "reference", `'invoice["memo"]'`, 15, "invoice.memo"},
		{"the environment by a computed name", "memo", `'string($env[deal.name].memo)'`, 17, "reads $env, whose invoice.memo is not evaluated yet"},
		{"a group with a later field", "customer.name", `'invoice.customer.address.city'`, 0, "invoice.customer.address.city"},
		{"the whole group", "customer.name", `'string(invoice.customer)'`, 0, "reads invoice.customer, whose invoice.customer.name is not evaluated yet"},
		{"the whole invoice", "memo", `'string(invoice)'`, 17, "reads invoice, whose invoice.memo"},
		{"through a variable", "reference", `'let i = invoice; i.reference'`, 23, "reads invoice, whose invoice.reference"},
		{"the default due date's own", "issue_date", `'coalesce(invoice.due_date, deal.close_date)'`, 25, "invoice.due_date"},
	} {
		src := "name: ord\ninvoice:\n  " + c.field + ": " + c.expr + "\n"
		line := 3
		if strings.HasPrefix(c.field, "customer.") {
			src = "name: ord\ninvoice:\n  customer:\n    " + strings.TrimPrefix(c.field, "customer.") + ": " + c.expr + "\n"
			line = 4
		}
		p := loadProblem(t, c.name, src)
		if p.Key != "invoice."+c.field || p.Line != line || (c.col != 0 && p.Column != c.col) || !strings.Contains(p.Message, c.frag) {
			t.Errorf("%s: %s; want %s at %d:%d saying %q", c.name, p, "invoice."+c.field, line, c.col, c.frag)
		}
	}

	// Fields evaluated before, and every field from the lines and the
	// amount line, read what was mapped.
	m := parse(t, `name: ord
invoice:
  reference: '"DS-" + deal.id'
  customer:
    name: invoice.customer.external_id + " " + deal.company.name
    address:
      country: invoice.customer.name
  currency: '"eur"'
  issue_date: date("2026-12-01")
  due_date: add_days(invoice.issue_date, 14)
  memo: 'invoice.reference + " " + invoice.currency + " " + string(invoice.due_date) + " " + invoice.customer.address.country'
  lines:
    description: invoice.memo + " " + item.sku
  amount_line:
    description: invoice.memo
`)
	inv, err := m.Map(wonEvent("closedwon", ""))
	if err != nil {
		t.Fatal(err)
	}
	if want := "DS-D-1 EUR 2026-12-15 C-1 Acme GmbH"; inv.Memo != want || inv.Lines[0].Description != want+" PRO-1Y" {
		t.Errorf("memo %q, line %q; want %q", inv.Memo, inv.Lines[0].Description, want)
	}
	ev := wonEvent("closedwon", "")
	ev.Deal.LineItems = nil
	if inv, err := m.Map(ev); err != nil || inv.Lines[0].Description != "DS-D-1 EUR 2026-12-15 C-1 Acme GmbH" {
		t.Errorf("amount line: %+v, %v", inv.Lines, err)
	}
}

// The Go methods of the values an expression sees are not callable: they
// would bring floats and the host's time zone into a mapping. The error
// names the function to use instead.
func TestMethodsOfValuesAreRefusedAtLoad(t *testing.T) {
	for _, c := range []struct{ expr, at, frag string }{
		{`string(deal.amount.InexactFloat64() * 1.1)`, "InexactFloat64", "money never goes through floats"},
		{`string(deal.amount.RoundBank(0))`, "RoundBank", "round_to(x, places)"},
		{`string(deal.close_date.Time().Local().Day())`, "Time", "date_in"},
		{`string(deal.close_time.String())`, "String", "string(m)"},
		{`deal.close_date.AddDays(3) == event.occurred_on ? "a" : "b"`, "AddDays", "add_days(d, n)"},
		{`string(map(deal.line_items, .unit_price.Round(0)))`, "Round", "round_to"},
		{`string((deal.has_amount ? deal.amount : 0).Truncate(0))`, "Truncate", "round_to"},
		{`string(deal.amount.String)`, "String", "string(x)"},
		{`string(fromJSON(deal.raw["meta"]).Add(1))`, "Add", "x + y"},
	} {
		p := loadProblem(t, c.expr, "name: m\ninvoice:\n  memo: '"+c.expr+"'\n")
		if want := 10 + strings.Index(c.expr, "."+c.at) + 1; p.Column != want || !strings.Contains(p.Message, c.at+" is a method") || !strings.Contains(p.Message, c.frag) {
			t.Errorf("%s: %s; want column %d naming %s and saying %q", c.expr, p, want, c.at, c.frag)
		}
	}
	// Nor can a variable, whatever it holds.
	if p := loadProblem(t, "variable", "name: m\ninvoice:\n  memo: 'let f = fromJSON(deal.raw[\"x\"]).f; f()'\n"); !strings.Contains(p.Message, "f is a variable") {
		t.Errorf("call of a variable: %s", p)
	}
	if _, err := mapping.Parse("m.yaml", []byte("name: m\ninvoice:\n  memo: 'let f = deal.amount.String; f()'\n")); err == nil ||
		!strings.Contains(err.Error(), "String is a method") || !strings.Contains(err.Error(), "f is a variable") {
		t.Errorf("a method as a variable: %v", err)
	}
	// The functions, and the environment's own (is_won), stay callable.
	parse(t, "name: m\ntrigger: $env.is_won(deal.stage) && is_won(deal.stage)\ninvoice:\n  memo: 'upper(trim(deal.name)) + string(round_to(deal.amount, 2)) + string(add_days(deal.close_date, 1))'\n")
}

// A key of a value whose type shows only as it runs (a JSON object) may
// share a Go method's name: read, it is the key; called, it is refused as
// any call of a member is.
func TestJSONKeysNamedAsMethodsLoad(t *testing.T) {
	ev := wonEvent("closedwon", "")
	ev.Deal.Raw = map[string]json.RawMessage{"meta": json.RawMessage(`{"Time":"noon","Add":3,"String":"s"}`)}
	for expression, want := range map[string]string{
		`fromJSON(deal.raw["meta"])["Time"]`: "noon",
		`fromJSON(deal.raw["meta"]).Add`:     "3",
		`fromJSON(deal.raw["meta"])?.String`: "s",
	} {
		if got := printed(t, expression, ev); got != want {
			t.Errorf("%s = %s, want %s", expression, got, want)
		}
	}
	if p := loadProblem(t, "call", "name: m\ninvoice:\n  memo: 'string(fromJSON(deal.raw[\"meta\"]).Time())'\n"); !strings.Contains(p.Message, "Time is a method") {
		t.Errorf("a call of a member of unknown type: %s", p)
	}
}

// An item of a sorted list keeps its type: arithmetic on its decimals
// loads and computes exactly, as on the list's own items.
func TestArithmeticOnAnItemOfASortedList(t *testing.T) {
	ev := opsEvent() // 2 × 30.00 and 1 × 15.55
	for expression, want := range map[string]string{
		`first(sortBy(deal.line_items, .unit_price, "desc")).unit_price * 2`:                                             "60",
		`last(sortBy(deal.line_items, .quantity * .unit_price - sum(deal.line_items, .discount))).quantity + dec("0.5")`: "2.5",
		`sum(sortBy(deal.line_items, .sku), .unit_price)`:                                                                "45.55",
	} {
		if got := printed(t, expression, ev); got != want {
			t.Errorf("%s = %s, want %s", expression, got, want)
		}
	}
}

// sort, sortBy and uniq order and compare decimals by value (expr's own
// failed every run with two values, or kept 100 and 100.0 apart), and
// groupBy refuses to group by one.
func TestCollectionsOfDecimals(t *testing.T) {
	ev := opsEvent() // 2 × 30.00 and 1 × 15.55
	ev.Deal.LineItems = append(ev.Deal.LineItems,
		model.LineItem{SKU: "C", Quantity: dec("3"), UnitPrice: dec("30.0")},
		model.LineItem{SKU: "D", Quantity: dec("1"), UnitPrice: dec("5")})
	for _, c := range []struct{ expression, want string }{
		{`sort(map(deal.line_items, .unit_price))`, "[5 15.55 30 30]"},
		{`sort(map(deal.line_items, .unit_price), "desc")`, "[30 30 15.55 5]"},
		{`map(sortBy(deal.line_items, .unit_price), .sku)`, "[D B A C]"},
		{`map(sortBy(deal.line_items, .quantity * .unit_price, "desc"), .sku)`, "[C A B D]"},
		{`first(sortBy(deal.line_items, .unit_price, "desc")).sku`, "A"},
		{`sort([3, dec("2.5"), 1])`, "[1 2.5 3]"},
		{`uniq(map(deal.line_items, .unit_price))`, "[30 15.55 5]"},
		{`uniq([dec("100"), dec("100.0"), 100, "100"])`, "[100 100]"},
		// Other values as expr orders and compares them.
		{`sort(["b", "a"])`, "[a b]"},
		{`map(sortBy(deal.line_items, .sku, "desc"), .sku)`, "[D C B A]"},
		{`uniq(["a", "a", "b"])`, "[a b]"},
		{`len(groupBy(deal.line_items, string(.unit_price)))`, "3"},
	} {
		if got := printed(t, c.expression, ev); got != c.want {
			t.Errorf("%s = %s, want %s", c.expression, got, c.want)
		}
	}

	// Stable: lines of equal keys keep their order, however many.
	many := opsEvent()
	many.Deal.LineItems = nil
	want := ""
	for i := range 40 {
		price := []string{"10", "10.0", "10.00", "5"}[i%4]
		many.Deal.LineItems = append(many.Deal.LineItems, model.LineItem{SKU: fmt.Sprint(i), Quantity: dec("1"), UnitPrice: dec(price)})
		if i%4 == 3 {
			want += fmt.Sprint(i) + " "
		}
	}
	for i := range 40 {
		if i%4 != 3 {
			want += fmt.Sprint(i) + " "
		}
	}
	if got := printed(t, `join(map(sortBy(deal.line_items, .unit_price), .sku), " ")`, many); got != strings.TrimSpace(want) {
		t.Errorf("sortBy of equal keys: %s, want %s", got, want)
	}

	p := loadProblem(t, "groupBy", "name: m\ninvoice:\n  memo: string(len(groupBy(deal.line_items, .quantity * .unit_price)))\n")
	if p.Column != 45 || !strings.Contains(p.Message, "groupBy cannot group by a decimal") || !strings.Contains(p.Message, "string(.unit_price)") {
		t.Errorf("groupBy by a decimal: %s", p)
	}
	// A key whose type shows only as it runs fails the run on a decimal.
	m := parse(t, "name: m\ninvoice:\n  memo: 'string(len(groupBy(deal.line_items, deal.id == \"x\" ? 1 : .unit_price)))'\n")
	if _, err := m.Map(ev); !mapping.IsMappingError(err) || !strings.Contains(err.Error(), "groupBy cannot group by a decimal") {
		t.Errorf("groupBy by a decimal at run time: %v", err)
	}
	// Values that cannot be ordered are a mapping error, as in expr.
	m = parse(t, "name: m\ninvoice:\n  memo: 'string(sort([dec(\"1\"), \"a\"]))'\n")
	if _, err := m.Map(ev); !mapping.IsMappingError(err) || !strings.Contains(err.Error(), "sort: cannot order a string and a decimal") {
		t.Errorf("sort of a decimal and a string: %v", err)
	}
}

// The exact aggregates keep expr's load-time refusal of values that are
// no numbers, and take one decimal as expr's take one number.
func TestAggregatesRefuseWhatIsNoNumberAtLoad(t *testing.T) {
	for _, c := range []struct {
		expr string
		col  int
		frag string
	}{
		{`string(max(deal.name))`, 21, "max takes decimals and whole numbers, or lists of them; this is a string"},
		{`string(min(deal.amount, "x"))`, 34, "this is a string"},
		{`string(max(deal.close_date))`, 21, "this is a date"},
		{`string(min(deal.line_items))`, 21, "a list of which an element is a line item"},
		{`string(sum(deal.line_items, .sku))`, 38, "the predicate gives a string"},
		{`string(sum(deal.amount))`, 21, "this is a decimal, not a list"},
		{`string(max(deal.amount, 2.5))`, 34, "a float"},
		{`string(mean([1.5, 2]))`, 22, "a float"},
	} {
		p := loadProblem(t, c.expr, "name: m\ninvoice:\n  memo: '"+c.expr+"'\n")
		if p.Column != c.col || !strings.Contains(p.Message, c.frag) {
			t.Errorf("%s: %s; want column %d saying %q", c.expr, p, c.col, c.frag)
		}
	}
	// mean of whole numbers is a decimal, which add_days refuses at load
	// (expr's was a float, which failed every run).
	if p := loadProblem(t, "mean", "name: m\ninvoice:\n  due_date: add_days(invoice.issue_date, mean([1, 2, 3]))\n"); !strings.Contains(p.Message, "add_days") {
		t.Errorf("add_days of a mean: %s", p)
	}
	for _, c := range []struct{ expression, want string }{
		{`max(deal.amount)`, "100"},
		{`min(deal.amount)`, "100"},
		{`mean([1, 2])`, "1.5"},
		{`median([1, 2, 4, 5])`, "3"},
		{`max(1, len(deal.line_items))`, "2"},
		{`sum(flatten([[deal.amount], [2]]))`, "102"},
		{`sum(deal.line_items, [.quantity, .unit_price])`, "48.55"},
	} {
		if got := printed(t, c.expression, opsEvent()); got != c.want {
			t.Errorf("%s = %s, want %s", c.expression, got, c.want)
		}
	}
	// A snapshot of a run under way loads as it did (the value fails
	// that run when its expression is reached).
	src := []byte("name: old\ninvoice:\n  memo: 'deal.id == \"x\" ? string(max(deal.name)) : deal.name'\n")
	if _, err := mapping.FromSnapshot(&mapping.Snapshot{Name: "old", Hash: mapping.HashOf(src), Path: "old.yaml", Source: src}); err != nil {
		t.Errorf("snapshot: %v", err)
	}
}

// Division stops at 16 decimal places, rounded half away from zero, as
// docs/mappings.md says: a quotient that becomes money must be rounded.
func TestDivisionHasSixteenDecimalPlaces(t *testing.T) {
	if got := printed(t, `dec(2) / 3`, opsEvent()); got != "0.6666666666666667" {
		t.Errorf("2 / 3 = %s", got)
	}
	if got := printed(t, `dec(-2) / 3`, opsEvent()); got != "-0.6666666666666667" {
		t.Errorf("-2 / 3 = %s", got)
	}
	unrounded := parse(t, "name: div\ninvoice:\n  lines:\n    unit_price: item.unit_price / 7 * 7\n")
	if _, err := mapping.Apply(unrounded, wonEvent("closedwon", "")); !mapping.IsValidationError(err) || !strings.Contains(err.Error(), "11999.9999999999999999") {
		t.Errorf("unrounded quotient: %v", err)
	}
	rounded := parse(t, "name: div\ninvoice:\n  lines:\n    unit_price: round_currency(item.unit_price / 7 * 7, invoice.currency)\n")
	if inv, err := mapping.Apply(rounded, wonEvent("closedwon", "")); err != nil || !inv.Lines[0].UnitPrice.Equal(decimal.RequireFromString("12000")) {
		t.Errorf("rounded quotient: %v, %v", inv.Lines, err)
	}
}

// A currency that is no ISO 4217 code names its expression on one line,
// as every other mapping error does.
func TestCurrencyErrorNamesTheExpressionOnOneLine(t *testing.T) {
	m := parse(t, "name: cur\ninvoice:\n  currency: |\n    deal.currency +\n      \"X\"\n")
	_, err := m.Map(wonEvent("closedwon", ""))
	var me *mapping.Error
	if !errors.As(err, &me) || me.Expression != `deal.currency + "X"` {
		t.Fatalf("got %#v", err)
	}
}

// A directory's hidden files (an editor's lock or swap file beside the
// one edited) are not mapping files.
func TestHiddenFilesOfADirectoryAreSkipped(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "std.yaml"), []byte("name: std\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".#std.yaml"), []byte("name: std\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".std.yml"), []byte("name: [half written\n"), 0o644)
	paths, err := mapping.Sources{Dir: dir}.Paths()
	if err != nil || len(paths) != 1 || filepath.Base(paths[0]) != "std.yaml" {
		t.Fatalf("paths %v, %v", paths, err)
	}
	set, err := mapping.Load(mapping.Sources{Dir: dir})
	if err != nil || len(set.Names()) != 1 {
		t.Fatalf("load: %v, %v", set.Names(), err)
	}
}

// A golden case expects one outcome: a case with both an invoice and an
// error file, or with an error file that has no line to look for (which
// any error would match), is refused rather than half ignored.
func TestAmbiguousGoldenCasesAreRefused(t *testing.T) {
	m := parse(t, "name: g\n")
	deal, err := os.ReadFile("../examples/closed-won.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string]map[string]string{
		"both":        {"c.invoice.json": "{}", "c.error.txt": "amount\n"},
		"blank error": {"c.error.txt": " \n\n"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "c.deal.json"), deal, 0o644)
		for f, content := range files {
			os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644)
		}
		if _, err := mapping.RunGolden(dir, m, false, dealfile.Read); err == nil || !strings.Contains(err.Error(), "golden case c") {
			t.Errorf("%s: got %v, want the case refused", name, err)
		}
		// --update settles it: the file the mapping gives, alone.
		if _, err := mapping.RunGolden(dir, m, true, dealfile.Read); err != nil {
			t.Fatalf("%s: update: %v", name, err)
		}
		if r, err := mapping.RunGolden(dir, m, false, dealfile.Read); err != nil || len(r) != 1 || !r[0].OK {
			t.Errorf("%s: after update: %+v, %v", name, r, err)
		}
	}
}

// A mapping file is one YAML document: the keys of a second one (after a
// `---`) were silently not the mapping's (its reference and skip rule
// gone). A trailing `---` with nothing after it is no document.
func TestASecondYAMLDocumentIsRefused(t *testing.T) {
	_, err := mapping.Parse("multi.yaml", []byte("---\nname: x\n---\ninvoice:\n  reference: '\"DS-\" + deal.id'\n"))
	if err == nil || !strings.Contains(err.Error(), "multi.yaml:3:1: a mapping file holds one YAML document") {
		t.Errorf("two documents: %v", err)
	}
	if _, err := mapping.Parse("trail.yaml", []byte("name: y\ninvoice:\n  memo: '\"a\"'\n---\n")); err != nil {
		t.Errorf("a trailing ---: %v", err)
	}
	// An empty document does not hide the one after it, nor is a broken
	// later one passed over.
	if _, err := mapping.Parse("three.yaml", []byte("name: x\n---\n---\ninvoice:\n  memo: '\"a\"'\n")); err == nil || !strings.Contains(err.Error(), "holds one YAML document") {
		t.Errorf("a document after an empty one: %v", err)
	}
	if _, err := mapping.Parse("broken.yaml", []byte("name: x\n---\ninvoice: [\n")); err == nil {
		t.Error("a broken second document was passed over")
	}
}
