package mapping_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// loadProblems parses src as y.yaml and returns its problems, as text.
func loadProblems(t *testing.T, src string) []string {
	t.Helper()
	_, err := mapping.Parse("bad/y.yaml", []byte(src))
	var le *mapping.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("Parse(%q) = %v, want a *LoadError", src, err)
	}
	out := make([]string, len(le.Problems))
	for i, p := range le.Problems {
		out[i] = p.String()
	}
	return out
}

// A YAML error gives its line once, as the position; where YAML stopped
// on an expression written without quotes that it reads as YAML, it
// names the field, gives the column and the expression quoted as it
// should be written.
func TestYAMLErrorsOnExpressionsSayToQuoteThem(t *testing.T) {
	cases := []struct{ src, want string }{
		// The integration engineer's: a condition's ": ".
		{"name: y\ninvoice:\n  memo: deal.amount > 0 ? \"paid\" : \"free\"   # paid or not\n",
			`bad/y.yaml:3:34: invoice.memo: mapping values are not allowed in this context: YAML reads ": " in a value without quotes as the colon of a key; ` +
				"quote the whole expression: `memo: 'deal.amount > 0 ? \"paid\" : \"free\"'`"},
		{"name: y\ntrigger: deal.stage == \"won\" ? true : false\n",
			`bad/y.yaml:2:37: trigger: mapping values are not allowed in this context: YAML reads ": " in a value without quotes as the colon of a key; ` +
				"quote the whole expression: `trigger: 'deal.stage == \"won\" ? true : false'`"},
		// A value that starts with a quoted string and goes on: YAML
		// gives the line where the mapping starts; the problem is on the
		// field's.
		{"name: y\ninvoice:\n  currency: EUR\n  lines:\n    item_code: x\n    description: \"Deal \" + item.sku\n  reference: deal.id\n",
			`bad/y.yaml:6:26: invoice.lines.description: did not find expected key: a YAML value that starts with a quote ends where the quote closes; ` +
				"quote the whole expression: `description: '\"Deal \" + item.sku'`"},
		// Single quotes in it: the expression in double quotes.
		{"name: y\ninvoice:\n  memo: 'Deal ' + deal.id\n",
			`bad/y.yaml:3:17: invoice.memo: did not find expected key: a YAML value that starts with a quote ends where the quote closes; ` +
				"quote the whole expression: `memo: \"'Deal ' + deal.id\"`"},
		// A character YAML reserves.
		{"name: y\ninvoice:\n  amount_line:\n    discount: - deal.amount\n",
			`bad/y.yaml:4:15: invoice.amount_line.discount: block sequence entries are not allowed in this context: YAML does not read a value that starts with "-" as text; ` +
				"quote the whole expression: `discount: '- deal.amount'`"},
		{"name: y\ninvoice:\n  memo: `raw`\n",
			"bad/y.yaml:3:9: invoice.memo: found character that cannot start any token: YAML does not read a value that starts with \"`\" as text; " +
				"quote the whole expression: `memo: '`raw`'`"},
		// A plain value continued on the next line: no one-line example.
		{"name: y\ninvoice:\n  memo: deal.amount > 0 ?\n    \"paid\" : \"free\"\n",
			`bad/y.yaml:4:12: invoice.memo: mapping values are not allowed in this context: YAML reads ": " in a value without quotes as the colon of a key; ` +
				"quote the whole expression, or write it as a literal block (`memo: |`, the expression on the lines below)"},
		// A leading "!" is a tag, which would leave the field empty (the
		// default trigger), silently.
		{"name: y\ntrigger: !is_won(deal.previous_stage)\n",
			"bad/y.yaml:2:10: trigger: YAML reads !is_won(deal.previous_stage) as a tag, not as part of the expression; " +
				"quote the whole expression: `trigger: '!is_won(deal.previous_stage)'`"},
		// No expression: YAML's message, its line given once.
		{"name: y\ndefaults:\n  item_code: a: b\n",
			"bad/y.yaml:3: mapping values are not allowed in this context"},
	}
	for _, c := range cases {
		got := loadProblems(t, c.src)
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%q:\ngot  %q\nwant %q", c.src, got, c.want)
		}
	}
}

// The quoted expressions that the messages give load.
func TestTheQuotedExpressionsLoad(t *testing.T) {
	src := "name: y\ntrigger: '!is_won(deal.previous_stage)'\ninvoice:\n  memo: 'deal.amount > 0 ? \"paid\" : \"free\"'\n" +
		"  lines:\n    description: '\"Deal \" + item.sku'\n  amount_line:\n    discount: '- deal.amount'\n    description: \"'Deal ' + deal.id\"\n"
	if _, err := mapping.Parse("y.yaml", []byte(src)); err != nil {
		t.Fatal(err)
	}
}

// A float where a decimal is needed: the hint repeats the file's own
// literal, or the division of whole numbers, rewritten, at its position.
func TestFloatHintRepeatsTheExpression(t *testing.T) {
	cases := []struct{ expr, want string }{
		{"1.5", `bad/y.yaml:4:15: invoice.lines.quantity: expression gives float64, but this field needs a decimal: money never goes through floats, write dec("1.5") instead of 1.5 (in ` + "`1.5`)"},
		{"19.50", `write dec("19.50") instead of 19.50 (in`},
		{"1e3", `write dec("1000") instead of 1e3 (in`},
		{"3 / 2", `bad/y.yaml:4:15: invoice.lines.quantity: expression gives float64, but this field needs a decimal: a division of whole numbers gives a float, and money never goes through floats: write dec(3) / 2 instead of 3 / 2 (in ` + "`3 / 2`)"},
		{"len(deal.line_items) / (1 + 1)", `write dec(len(deal.line_items)) / (1 + 1) instead of len(deal.line_items) / (1 + 1) (in`},
		// At the literal's position, not the expression's start.
		{"1 + 2.5", `bad/y.yaml:4:19: invoice.lines.quantity: expression gives float64, but this field needs a decimal: money never goes through floats, write dec("2.5") instead of 2.5`},
		// A power of whole numbers: of a decimal, computed exactly.
		{"2 ** 3", `bad/y.yaml:4:15: invoice.lines.quantity: expression gives float64, but this field needs a decimal: money never goes through floats, write dec(2) ** 3 instead of 2 ** 3, which is computed exactly (in`},
		{"len(deal.line_items) ^ (1 + 1)", `write dec(len(deal.line_items)) ^ (1 + 1) instead of len(deal.line_items) ^ (1 + 1), which`},
		// Neither: the general hint.
		{"ceil(3)", `money never goes through floats; compute with decimals, e.g. dec("19.5") for 19.5 (in`},
	}
	for _, c := range cases {
		got := loadProblems(t, "name: y\ninvoice:\n  lines:\n    quantity: "+c.expr+"\n")
		if len(got) != 1 || !strings.Contains(got[0], c.want) {
			t.Errorf("quantity: %s:\ngot  %q\nwant one containing %q", c.expr, got, c.want)
		}
	}
}

// runtimeMapping is a mapping whose expressions fail on the example deal:
// a division by zero (the deal has one line) in a literal block, an index out of range in a
// quoted value.
const runtimeMapping = `name: fails
# a comment line
invoice:
  memo: |
    string(
      deal.amount / dec(len(deal.line_items) - 1))
  lines:
    item_code: "deal.line_items[5].sku"
`

func failingDeal() model.DealEvent {
	return model.DealEvent{EventID: "e", Deal: model.Deal{
		ID: "D-1", Stage: "won", Currency: "EUR", Amount: decimal.NewNullDecimal(dec("10")),
		Company:   model.Company{ID: "C", Name: "Acme"},
		LineItems: []model.LineItem{{SKU: "X"}},
	}}
}

// A run-time error gives the file's line and column, as a load error
// does, not expr's position in the expression ("(1:46)", which reads as
// a file position); so does the mapping of a run's snapshot.
func TestRuntimeErrorsGiveTheFilePosition(t *testing.T) {
	f, err := mapping.Parse("maps/fails.yaml", []byte(runtimeMapping))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := mapping.FromSnapshot(f.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]mapping.Mapper{"file": f, "snapshot": snap} {
		_, err := m.Map(failingDeal())
		var me *mapping.Error
		const want = "division by zero: the divisor `dec(len(deal.line_items) - 1)` is 0 for this deal; guard it, as in x == 0 ? 0 : y / x (at maps/fails.yaml:6:21)"
		if !errors.As(err, &me) || me.Field != "memo" || me.Message != want {
			t.Errorf("%s: %v, want %s", name, err, want)
		}
	}

	// The memo set: the line's item code fails.
	src := strings.Replace(runtimeMapping, "deal.amount / dec(len(deal.line_items) - 1))", "deal.amount)", 1)
	f, err = mapping.Parse("maps/fails.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Map(failingDeal())
	var me *mapping.Error
	if !errors.As(err, &me) || me.Field != "lines[0].item_code" ||
		me.Message != "index out of range: 5 (array length is 1) (at maps/fails.yaml:8:32)" {
		t.Errorf("got %v, want index out of range ... (at maps/fails.yaml:8:32)", err)
	}
}

// A divisor written as zero fails every run: it is a load error, at the
// divisor, in whatever way the zero is written; a divisor that is zero
// only for some deals loads, and a run's snapshot, accepted before the
// check, still compiles.
func TestLiteralZeroDivisorIsALoadError(t *testing.T) {
	const msg = "division by zero: the divisor is always 0, so every run would fail; divide by a value that is not 0"
	for _, c := range []struct{ expr, at string }{
		{`deal.amount / 0`, "4:32"},
		{`deal.amount / dec(0)`, "4:32"},
		{`deal.amount / dec("0.00")`, "4:32"},
		{`deal.amount / -0`, "4:32"},
		{`dec(len(deal.line_items) % 0)`, "4:45"},
		{`dec(string(len(deal.line_items) / 0))`, "4:52"},
		// In map's closure over a filter, which expr's optimizer moves
		// out of the builtin's arguments.
		{`item.unit_price + sum(map(filter(deal.line_items, #.quantity > 0), deal.amount / 0))`, "4:99"},
	} {
		got := loadProblems(t, "name: y\ninvoice:\n  lines:\n    unit_price: '"+c.expr+"'\n")
		if len(got) != 1 || !strings.Contains(got[0], "bad/y.yaml:"+c.at+": invoice.lines.unit_price: "+msg) {
			t.Errorf("%s: got %q, want one problem at %s: %s", c.expr, got, c.at, msg)
		}
	}
	for _, e := range []string{`deal.amount / 2`, `deal.amount / dec(len(deal.line_items))`, `dec(0) / deal.amount`, `deal.amount / dec("0.5")`} {
		if _, err := mapping.Parse("ok/y.yaml", []byte("name: y\ninvoice:\n  lines:\n    unit_price: '"+e+"'\n")); err != nil {
			t.Errorf("%s: %v, want it to load", e, err)
		}
	}
	src := []byte("name: y\ninvoice:\n  memo: string(deal.amount / 0)\n")
	if _, err := mapping.FromSnapshot(&mapping.Snapshot{Name: "y", Hash: mapping.HashOf(src), Path: "y.yaml", Source: src}); err != nil {
		t.Errorf("a snapshot with a zero divisor: %v, want it to compile as when its run started", err)
	}
}

// A key indented unlike its siblings is named on its own line, with what
// to do, not on the line YAML gives (the key above it, or where the
// enclosing mapping starts) with advice to quote (a newcomer's journey).
func TestYAMLErrorsOnAMisindentedKeyNameIt(t *testing.T) {
	cases := []struct{ src, want string }{
		{"name: y\ninvoice:\n  issue_date: deal.close_date\n   due_date: add_days(deal.close_date, 30)\n",
			"bad/y.yaml:4:4: key due_date is indented 3 spaces, deeper than the key above it, issue_date, whose value is on the same line as it, " +
				"so YAML reads this line as more of that value: indent it as the keys beside it (YAML: mapping values are not allowed in this context)"},
		{"name: y\ninvoice:\n  lines:\n    description: item.description\n     quantity: item.quantity\n",
			"bad/y.yaml:5:6: key quantity is indented 5 spaces, deeper than the key above it, description, whose value is on the same line as it, " +
				"so YAML reads this line as more of that value: indent it as the keys beside it (YAML: mapping values are not allowed in this context)"},
		{"name: y\ninvoice:\n  lines:\n    description: item.description\n   quantity: item.quantity\n",
			"bad/y.yaml:5:4: key quantity is indented 3 spaces, neither as its siblings nor as their parent: indent it as the keys beside it (YAML: did not find expected key)"},
		{"name: y\ninvoice:\n  lines:\n\tquantity: item.quantity\n",
			"bad/y.yaml:4:1: the line is indented with a tab, which YAML refuses: indent with spaces only (YAML: found character that cannot start any token)"},
		// The odd one out: the first key of the block, not the key after
		// it where YAML stopped.
		{"name: y\ninvoice:\n  customer:\n    address:\n     line1: deal.company.address.line1\n      city: deal.company.address.city\n      country: deal.company.address.country\n",
			"bad/y.yaml:5:6: key line1 is indented 5 spaces, not 6 as the keys after it: indent it as the keys beside it (YAML: mapping values are not allowed in this context)"},
		{"name: y\ninvoice:\n  lines:\n  item_code: item.sku\n    description: item.description\n    quantity: item.quantity\n",
			"bad/y.yaml:4:3: key item_code is indented 2 spaces, as lines above it, which it leaves with no value, while the 2 keys after it are indented 4: indent it as the keys beside it (YAML: mapping values are not allowed in this context)"},
		// A block merged with `<<: &anchor`: the keys beside << are its
		// siblings, not those of its parent.
		{"name: y\ninvoice:\n  amount_line:\n    <<: &line\n      item_code: '\"MISC\"'\n      tax_code: '\"T\"'\n    quantity: dec(\"1\")\n    description: '\"d\"'\n     unit_price: deal.amount\n",
			"bad/y.yaml:9:6: key unit_price is indented 5 spaces, deeper than the key above it, description, whose value is on the same line as it, so YAML reads this line as more of that value: indent it as the keys beside it (YAML: did not find expected key)"},
	}
	for _, c := range cases {
		got := loadProblems(t, c.src)
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%q:\ngot  %q\nwant %q", c.src, got, c.want)
		}
	}
}

// A ?? whose left side is never nil never falls back (a text the deal
// does not have is "", not nil): a load error at the ??, which gives the
// coalesce to write where the operands are texts or dates. A ?? after
// what may be nil (first, find, get, ?. on them, a let variable) loads and
// falls back; a run's snapshot still compiles.
func TestNilCoalescingThatNeverFallsBackIsALoadError(t *testing.T) {
	const never = "?? never falls back here: "
	for _, c := range []struct{ field, expr, want string }{
		{"memo", `deal.company.name ?? deal.name`, `bad/y.yaml:3:28: invoice.memo: ` + never +
			`deal.company.name is never nil (a text, "" where the deal has none), and ?? gives its right side only for nil; ` +
			`write coalesce(deal.company.name, deal.name), which gives the first of them that is not blank (in ` + "`deal.company.name ?? deal.name`)"},
		{"memo", `deal.raw["po"] ?? "no PO"`, `bad/y.yaml:3:25: invoice.memo: ` + never +
			`deal.raw["po"] is never nil (a text, "" where the deal has none), and ?? gives its right side only for nil; ` +
			`write coalesce(deal.raw["po"], "no PO"), which gives the first of them that is not blank`},
		// nil only for a deal without any raw field: said so.
		{"memo", `upper(deal.raw?.["po-number"] ?? "none")`, `bad/y.yaml:3:40: invoice.memo: ?? falls back here only for a deal without any raw field: ` +
			`deal.raw?.["po-number"] is a text, "" where the deal has none, and ?? gives its right side only for nil; write coalesce(`},
		{"memo", `deal.company.name ?? deal.name ?? "Customer"`, `bad/y.yaml:3:28: invoice.memo: ` + never +
			`deal.company.name is never nil (a text, "" where the deal has none), and ?? gives its right side only for nil; ` +
			`write coalesce(deal.company.name, deal.name, "Customer"), which gives`},
		{"memo", `get(deal.raw, "po") ?? deal.name ?? "none"`, `bad/y.yaml:3:43: invoice.memo: ` + never +
			`deal.name is never nil (a text, "" where the deal has none), and ?? gives its right side only for nil; ` +
			`write coalesce(get(deal.raw, "po"), deal.name, "none"), which gives`},
		{"memo", `join(map(deal.line_items, .description ?? .sku), ", ")`, `bad/y.yaml:3:49: invoice.memo: ` + never +
			`.description is never nil`},
		{"issue_date", `deal.close_date ?? event.occurred_on`, `bad/y.yaml:3:32: invoice.issue_date: ` + never +
			`deal.close_date is never nil (a date, unset where the deal has none), and ?? gives its right side only for nil; ` +
			`write coalesce(deal.close_date, event.occurred_on), which gives the first of them that is set`},
		{"memo", `string(deal.amount ?? dec(1))`, `bad/y.yaml:3:29: invoice.memo: ` + never +
			`deal.amount is never nil (a decimal, 0 where the deal has none), and ?? gives its right side only for nil; ` +
			`test the value with a condition instead (c ? a : b)`},
	} {
		got := loadProblems(t, "name: y\ninvoice:\n  "+c.field+": '"+c.expr+"'\n")
		if len(got) != 1 || !strings.HasPrefix(got[0], c.want) {
			t.Errorf("%s:\ngot  %q\nwant one problem starting %q", c.expr, got, c.want)
		}
	}
	deal := wonEvent("won", "")
	deal.Deal.Raw = map[string]json.RawMessage{"note": json.RawMessage(`"x"`)}
	for _, c := range []struct{ expr, want string }{
		{`get(deal.raw, "po") ?? "no PO"`, "no PO"},
		{`first(filter(deal.line_items, .sku == "none"))?.description ?? "no line"`, "no line"},
		{`find(deal.line_items, .sku == "PRO-1Y")?.description ?? "no line"`, "Pro"},
		{`let po = get(deal.raw, "po"); po ?? "no PO"`, "no PO"},
		{`deal.raw["note"]`, "x"},
	} {
		m, err := mapping.Parse("ok/y.yaml", []byte("name: y\ninvoice:\n  memo: '"+strings.ReplaceAll(c.expr, "'", "''")+"'\n"))
		if err != nil {
			t.Errorf("%s: %v, want it to load", c.expr, err)
			continue
		}
		inv, err := m.Map(deal)
		if err != nil || inv.Memo != c.want {
			t.Errorf("%s: memo %q, %v; want %q", c.expr, inv.Memo, err, c.want)
		}
	}
	src := []byte("name: y\ninvoice:\n  memo: deal.company.name ?? deal.name\n")
	if _, err := mapping.FromSnapshot(&mapping.Snapshot{Name: "y", Hash: mapping.HashOf(src), Path: "y.yaml", Source: src}); err != nil {
		t.Errorf("a snapshot with ?? on a text: %v, want it to compile as when its run started", err)
	}
}

// int() of a text that is not a whole number says so, the value quoted,
// as dec() does (expr's own said "invalid operation: int(net 30)"); a
// whole number with blanks around it is read, and the texts written in the
// file are checked at load.
func TestIntOfATextThatIsNoWholeNumber(t *testing.T) {
	m, err := mapping.Parse("maps/terms.yaml", []byte("name: terms\ninvoice:\n  due_date: 'add_days(invoice.issue_date, int(deal.raw[\"terms\"]))'\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		raw, want string
		days      int
	}{
		{`"net 30"`, `mapping "terms": field due_date: int: "net 30" is not a whole number (at maps/terms.yaml:3:43)`, 0},
		{`"12.5"`, `int: "12.5" is not a whole number`, 0},
		{`" 30 "`, "", 30},
		{`14`, "", 14},
	} {
		ev := wonEvent("won", "")
		ev.Deal.Raw = map[string]json.RawMessage{"terms": json.RawMessage(c.raw)}
		inv, err := m.Map(ev)
		switch {
		case c.want != "":
			var me *mapping.Error
			if !errors.As(err, &me) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("terms %s: %v, want a mapping error with %q", c.raw, err, c.want)
			}
		case err != nil || inv.DueDate != ev.Deal.CloseDate.AddDays(c.days):
			t.Errorf("terms %s: due %v, %v; want %d days after the close", c.raw, inv.DueDate, err, c.days)
		}
	}
	got := loadProblems(t, "name: y\nlookups:\n  terms: {default: \"14\", entries: {a: net 30}}\ninvoice:\n  due_date: 'add_days(invoice.issue_date, int(lookup(\"terms\", deal.name)))'\n")
	if want := `bad/y.yaml:5:47: invoice.due_date: int: "net 30" is not a whole number (the entry "a" of lookup table "terms")`; len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Errorf("a table value int() cannot read: %q, want %q", got, want)
	}
}

// A built-in of expr that mappings leave out, or one of floats given a
// decimal, is a load error that says why and what to write instead; the
// replacement it names loads.
func TestLeftOutBuiltinsSayWhatToWriteInstead(t *testing.T) {
	for _, c := range []struct{ expr, says, instead string }{
		{`string(now())`, "now() is expr's, left out of mappings: a mapping gives the same invoice whenever it runs", `string(event.occurred_on)`},
		{`string(float(deal.amount))`, "float() is expr's, left out of mappings: money is exact decimals in a mapping: dec(x)", `string(dec("1.5"))`},
		{`join(keys({"a": 1}), ",")`, "keys() is expr's, left out of mappings: it lists a map in Go's random order", `"a"`},
		{`string(round(deal.amount))`, "expr's round() takes floats, and money is exact decimals in a mapping: write round_to(x, places)", `string(round_to(deal.amount, 0))`},
		{`string(abs(deal.amount))`, "write x < 0 ? -x : x", `string(deal.amount < 0 ? -deal.amount : deal.amount)`},
		// With places, as round_to takes them: expr's arity error alone
		// did not say what to write.
		{`string(round(deal.amount, 2))`, "expr's round() takes one float, and money is exact decimals in a mapping: write round_to(x, places) or round_currency(x, currency)", `string(round_to(deal.amount, 2))`},
		{`"x" + string(floor(dec("1.5"), 2))`, "expr's floor() takes one float, and money is exact decimals in a mapping: there is no decimal floor", `"x" + string(round_to(dec("1.5"), 2))`},
	} {
		_, err := mapping.Parse("b.yaml", fmt.Appendf(nil, "name: b\ninvoice:\n  memo: %q\n", c.expr))
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v; want it to say %q", c.expr, err, c.says)
		}
		if _, err := mapping.Parse("b.yaml", fmt.Appendf(nil, "name: b\ninvoice:\n  memo: %q\n", c.instead)); err != nil {
			t.Errorf("%s (the replacement): %v", c.instead, err)
		}
	}
}

// A misspelt field, value or function says what it is a typo of, and a
// name that is none's says what there is: "type deal has no field amout"
// left the author to find the field's name in the docs.
func TestMisspeltNamesSayWhatTheyAreATypoOf(t *testing.T) {
	for _, c := range []struct{ key, expr, says string }{
		{"memo", `deal.amout`, "type deal has no field amout (did you mean amount?)"},
		{"memo", `invoice.customer.adress.city`, "type customer has no field adress (did you mean address?)"},
		{"memo", `event.occured_at`, "type event has no field occured_at (did you mean occurred_at?)"},
		{"memo", `deal.xyzzy`, "type deal has no field xyzzy (its fields are amount, close_date, close_time, company, currency, has_amount, id, line_items, name, owner, previous_stage, raw, stage)"},
		{"memo", `dael.name`, "unknown name dael (did you mean deal?)"},
		{"memo", `string(round_too(deal.amount, 2))`, "unknown name round_too (did you mean round_to?)"},
		{"memo", `uper(deal.name)`, "unknown name uper (did you mean upper?)"},
		{"memo", `item.sku`, "unknown name item; item is the line item being mapped, known only under invoice.lines"},
		{"memo", `qwerty`, "unknown name qwerty (the values here are deal, defaults, event, invoice; the functions are in docs/mappings.md; a text is written in quotes inside the YAML value, as in '\"qwerty\"')"},
		{"lines:\n    description", `itme.sku`, "unknown name itme (did you mean item?)"},
		// A function only where it is called, a let variable where not;
		// the case of letters aside.
		{"memo", `VAT`, "unknown name VAT (the values here are"},
		{"memo", `let rate = dec("0.19"); string(deal.amount * rat)`, "unknown name rat (did you mean rate?)"},
		{"memo", `string(fromJson(deal.raw["x"])["a"])`, "unknown name fromJson (did you mean fromJSON?)"},
		{"memo", `is_won(deal.stage) ? "won" : ""`, "unknown name is_won; is_won is the trigger's, known only there"},
	} {
		_, err := mapping.Parse("b.yaml", fmt.Appendf(nil, "name: b\ninvoice:\n  %s: %q\n", c.key, c.expr))
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v; want it to say %q", c.expr, err, c.says)
		}
	}
}

// A run-time error names a mapping's types, not Go's (decimal.Decimal).
func TestRuntimeErrorsNameAMappingsTypes(t *testing.T) {
	m, err := mapping.Parse("t.yaml", []byte("name: t\ninvoice:\n  memo: 'string((deal.has_amount ? deal.amount : 0) * 2)'\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = mapping.Apply(m, wonEvent("closedwon", ""))
	var me *mapping.Error
	if !errors.As(err, &me) || !strings.Contains(me.Message, "invalid operation: decimal * int") || strings.Contains(me.Message, "Decimal") {
		t.Fatalf("got %v; want invalid operation: decimal * int", err)
	}
}

// The trigger's own names are offered in a trigger.
func TestMisspeltTriggerFunctionSaysWhatItIsATypoOf(t *testing.T) {
	_, err := mapping.Parse("b.yaml", []byte("name: b\ntrigger: 'is_wonn(deal.stage)'\n"))
	if err == nil || !strings.Contains(err.Error(), "unknown name is_wonn (did you mean is_won?)") {
		t.Fatalf("got %v", err)
	}
}

// invoice.lines written as a list (one entry per line, as an ERP's
// invoice has) says that its expressions are written once and map each
// line item in turn.
func TestLinesWrittenAsAListSayHowTheyAreWritten(t *testing.T) {
	_, err := mapping.Parse("l.yaml", []byte("name: l\ninvoice:\n  lines:\n    - description: item.sku\n"))
	if err == nil || !strings.Contains(err.Error(), `l.yaml:4:5: invoice.lines: must be a mapping of keys, not a list (a "- " before the keys): its expressions map every line item`) {
		t.Fatalf("got %v", err)
	}
}

// A run-time division by zero names the divisor that was 0, as the file
// writes it (without parentheses around all of it, the start of a long
// one), and gives its position, in an expression with several divisions:
// of decimals, of numbers read with fromJSON, a remainder of whole
// numbers, inside a predicate, a conditional, a let, in the trigger.
func TestDivisionByZeroNamesTheDivisor(t *testing.T) {
	ev := wonEvent("closedwon", "")
	ev.Deal.Raw = map[string]json.RawMessage{"cf": json.RawMessage(`{"n": 4, "zero": 0}`)}
	for _, c := range []struct{ expr, divisor, at string }{
		{`deal.amount / 2 / (item.quantity - 1) + dec(1) / item.quantity`, "item.quantity - 1", "4:37"},
		{`deal.amount / item.quantity + dec(1) / item.discount`, "item.discount", "4:57"},
		{`dec(string(fromJSON(deal.raw["cf"])["n"] / fromJSON(deal.raw["cf"])["zero"]))`, `fromJSON(deal.raw["cf"])["zero"]`, "4:61"},
		{`dec(len(deal.line_items) % (len(deal.line_items) - 1))`, "len(deal.line_items) - 1", "4:46"},
		{`sum(deal.line_items, .unit_price / .discount)`, ".discount", "4:53"},
		// In map's closure after a filter, which expr's optimizer moves
		// out of ast.Walk's reach.
		{`sum(map(filter(deal.line_items, true), deal.amount / #.discount))`, "#.discount", "4:71"},
		// Without the parentheses around it, at its start, whatever it is.
		{`deal.amount / (deal.has_amount ? item.discount : dec(1))`, "deal.has_amount ? item.discount : dec(1)", "4:33"},
		{`deal.amount / ((item.quantity - 1))`, "item.quantity - 1", "4:34"},
		{`deal.amount / (let z = item.discount; z)`, "let z = item.discount; z", "4:33"},
		// A long one: its start.
		{`deal.amount / (item.discount + item.discount + item.discount + item.discount + item.discount + item.discount)`,
			"item.discount + item.discount + item.discount + item.discount + item.discount +…", "4:33"},
	} {
		m, err := mapping.Parse("d.yaml", []byte("name: d\ninvoice:\n  lines:\n    unit_price: '"+c.expr+"'\n"))
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		_, err = m.Map(ev)
		want := "division by zero: the divisor `" + c.divisor + "` is 0 for this deal; guard it, as in x == 0 ? 0 : y / x (at d.yaml:" + c.at + ")"
		var me *mapping.Error
		if !errors.As(err, &me) || me.Message != want {
			t.Errorf("%s: %v; want %s", c.expr, err, want)
		}
	}
	m := parse(t, "name: d\ntrigger: 'is_won(deal.stage) && deal.amount / (len(deal.line_items) - 1) > 0'\n")
	_, _, err := m.Trigger([]string{"closedwon"}).Evaluate(ev)
	if err == nil || !strings.Contains(err.Error(), "division by zero: the divisor `len(deal.line_items) - 1` is 0 for this deal") || !strings.Contains(err.Error(), "(at test.yaml:2:48)") {
		t.Errorf("trigger: %v; want the divisor named at test.yaml:2:48", err)
	}
}

// A division of whole numbers, or of floats, whose divisor is 0 for a
// deal fails that run naming the divisor, as a decimal's does: it gave
// +Inf or NaN, which went on into a memo ("+Inf"), a condition (the
// quantity doubled) or a comparison, silently.
func TestWholeNumberDivisionByZeroFailsTheRun(t *testing.T) {
	ev := wonEvent("closedwon", "")
	ev.Deal.Raw = map[string]json.RawMessage{"seats": json.RawMessage(`"10"`), "periods": json.RawMessage(`"0"`)}
	empty := wonEvent("closedwon", "")
	empty.Deal.LineItems = nil
	for _, c := range []struct {
		field, expr, divisor, at string
		ev                       model.DealEvent
	}{
		{"memo", `"seats per period: " + string(int(deal.raw["seats"]) / int(deal.raw["periods"]))`, `int(deal.raw["periods"])`, "3:65", ev},
		{"lines.quantity", `int(deal.raw["seats"]) / int(deal.raw["periods"]) >= 5 ? item.quantity * 2 : item.quantity`, `int(deal.raw["periods"])`, "4:41", ev},
		{"memo", `string(len(deal.line_items) / len(deal.line_items))`, "len(deal.line_items)", "3:40", empty},
		{"memo", `100 / len(deal.line_items) > 5 ? "a" : "b"`, "len(deal.line_items)", "3:16", empty},
		{"memo", `string(1.5 / len(deal.line_items))`, "len(deal.line_items)", "3:23", empty},
	} {
		src := "name: d\ninvoice:\n  " + c.field + ": '" + c.expr + "'\n"
		if c.field == "lines.quantity" {
			src = "name: d\ninvoice:\n  lines:\n    quantity: '" + c.expr + "'\n"
		}
		m, err := mapping.Parse("d.yaml", []byte(src))
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		inv, err := m.Map(c.ev)
		want := "division by zero: the divisor `" + c.divisor + "` is 0 for this deal; guard it, as in x == 0 ? 0 : y / x (at d.yaml:" + c.at + ")"
		var me *mapping.Error
		if !errors.As(err, &me) || me.Message != want {
			t.Errorf("%s: got %+v, %v; want %s", c.expr, inv, err, want)
		}
	}
	// A divisor that is not 0 divides as before.
	ev.Deal.Raw["periods"] = json.RawMessage(`"4"`)
	m := parse(t, "name: d\ninvoice:\n  memo: '\"seats per period: \" + string(int(deal.raw[\"seats\"]) / int(deal.raw[\"periods\"])) + \" \" + string(7 / 2)'\n")
	inv, err := m.Map(ev)
	if err != nil || inv.Memo != "seats per period: 2.5 3.5" {
		t.Errorf("got %q, %v; want seats per period: 2.5 3.5", inv.Memo, err)
	}
}

// A float written in the file that can reach a decimal field through a
// conditional's branch, ??, a map or list literal's values or a let is a
// load error at the literal, with the advice a bare float gets: it
// loaded, and only the deals that took it failed. A run's snapshot still
// compiles, and its run's error gives that advice.
func TestFloatLiteralReachingADecimalFieldIsALoadError(t *testing.T) {
	const advice = `money never goes through floats, write dec("8.1") instead of 8.1`
	for _, c := range []struct{ expr, at string }{
		{`deal.company.address.country == "CH" ? 8.1 : 19`, "4:55"},
		{`{"DE": 19, "CH": 8.1}[deal.company.address.country]`, "4:33"},
		{`[19, 8.1][len(deal.line_items)]`, "4:21"},
		{`let r = deal.has_amount ? 19 : 8.1; r`, "4:47"},
		{`deal.has_amount ? item.tax_rate : (len(deal.line_items) > 1 ? -8.1 : dec("19"))`, "4:79"},
	} {
		got := loadProblems(t, "name: y\ninvoice:\n  lines:\n    tax_rate: '"+c.expr+"'\n")
		if len(got) != 1 || !strings.Contains(got[0], "bad/y.yaml:"+c.at+": invoice.lines.tax_rate: a float written in the file can be this field's value, which needs a decimal") || !strings.Contains(got[0], advice) {
			t.Errorf("%s: got %q, want one problem at %s with %s", c.expr, got, c.at, advice)
		}
	}
	for _, e := range []string{
		`deal.company.address.country == "CH" ? dec("8.1") : 19`,
		`{"DE": 19, "CH": dec("8.1")}[deal.company.address.country]`,
		`dec(string(deal.has_amount ? 8.1 : 19))`,
		`deal.has_amount && 8.1 > 1 ? 19 : 7`,
	} {
		if _, err := mapping.Parse("ok/y.yaml", []byte("name: y\ninvoice:\n  lines:\n    tax_rate: '"+e+"'\n")); err != nil {
			t.Errorf("%s: %v, want it to load", e, err)
		}
	}
	src := []byte("name: y\ninvoice:\n  lines:\n    tax_rate: 'deal.company.address.country == \"CH\" ? 8.1 : 19'\n")
	m, err := mapping.FromSnapshot(&mapping.Snapshot{Name: "y", Hash: mapping.HashOf(src), Path: "y.yaml", Source: src})
	if err != nil {
		t.Fatalf("a snapshot with such a float: %v, want it to compile as when its run started", err)
	}
	ev := wonEvent("closedwon", "")
	ev.Deal.Company.Address.Country = "CH"
	_, err = m.Map(ev)
	const want = `expression gave float64, but this field needs a decimal: money never goes through floats, write dec("8.1") for a number written in the file`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("run: %v, want %s", err, want)
	}
}

// A float written in the file that can be a decimal argument of percent,
// round_to, round_currency, min_dec or max_dec through a conditional's
// branch, ?? or a let is a load error at the literal, as percent(x, 2.5)
// is; one that shows only as the mapping runs (a quotient in a branch)
// fails the run, as it did before numbers read with fromJSON were taken:
// only those are converted, as the numbers their text says.
func TestFloatReachingADecimalArgumentIsRefused(t *testing.T) {
	for _, c := range []struct{ expr, at, fn string }{
		{`percent(item.quantity * item.unit_price, item.quantity > 1 ? 2.5 : dec("3"))`, "4:77", "percent"},
		{`item.discount + percent(item.unit_price, deal.has_amount ? dec("1") : 2.5)`, "4:86", "percent"},
		{`let r = deal.has_amount ? dec("1") : 2.5; round_to(r, 2)`, "4:53", "round_to"},
		{`min_dec(item.unit_price, fromJSON(deal.raw["cf"])["cap"] ?? 2.5)`, "4:76", "min_dec"},
		{`max_dec({"a": dec("1"), "b": 0.5}[deal.currency], item.unit_price)`, "4:45", "max_dec"},
	} {
		got := loadProblems(t, "name: y\ninvoice:\n  lines:\n    discount: '"+c.expr+"'\n")
		if len(got) != 1 || !strings.Contains(got[0], "bad/y.yaml:"+c.at+": invoice.lines.discount: a float written in the file can be "+c.fn+"'s argument, which takes a decimal") || !strings.Contains(got[0], `write dec("`) {
			t.Errorf("%s: got %q, want one problem at %s", c.expr, got, c.at)
		}
	}
	ev := wonEvent("closedwon", "")
	ev.Deal.Raw = map[string]json.RawMessage{"cf": json.RawMessage(`{"disc": 12.5}`)}
	for _, c := range []struct{ expr, want, err string }{
		{`string(percent(deal.amount, deal.has_amount ? 10 / 4 : dec("3")))`, "", "percent cannot take a decimal and a float64"},
		{`string(round_to(deal.has_amount ? 10 / 4 : dec("3"), 1))`, "", "round_to cannot take a float64"},
		{`string(percent(deal.amount, deal.has_amount ? fromJSON(deal.raw["cf"])["disc"] : dec("3")))`, "1500", ""},
		{`string(percent(deal.amount, fromJSON(deal.raw["cf"])["disc"] * 2))`, "3000", ""},
	} {
		m := parse(t, "name: d\ninvoice:\n  memo: '"+c.expr+"'\n")
		inv, err := m.Map(ev)
		if c.err == "" && (err != nil || inv.Memo != c.want) {
			t.Errorf("%s: got %q, %v; want %s", c.expr, inv.Memo, err, c.want)
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: got %v; want %s", c.expr, err, c.err)
		}
	}
}

// A map or list literal read with a key or index written in the file
// returns only that entry: the floats of the others are never the
// field's value.
func TestFloatLiteralOfAnEntryNeverReadLoads(t *testing.T) {
	for _, e := range []string{
		`{"a": dec("1"), "w": 0.5}.a`,
		`{"a": dec("1"), "w": 0.5}["a"]`,
		`[dec("1"), 0.5][0]`,
		`[0.5, dec("1")][-1]`,
	} {
		if _, err := mapping.Parse("ok/y.yaml", []byte("name: y\ninvoice:\n  lines:\n    tax_rate: '"+e+"'\n")); err != nil {
			t.Errorf("%s: %v, want it to load", e, err)
		}
	}
	for _, e := range []string{`{"a": dec("1"), "w": 0.5}.w`, `[dec("1"), 0.5][1]`, `[0.5, dec("1")][-2]`} {
		if got := loadProblems(t, "name: y\ninvoice:\n  lines:\n    tax_rate: '"+e+"'\n"); len(got) != 1 || !strings.Contains(got[0], `write dec("0.5") instead of 0.5`) {
			t.Errorf("%s: got %q, want the float refused", e, got)
		}
	}
}

// A field read of a value that has none (a moment, a date, a decimal)
// says what to write instead, and int() of a decimal how to make a whole
// number of it; what they advise loads and gives what it says.
func TestNoFieldsAndIntOfADecimalSayWhatToWrite(t *testing.T) {
	for _, c := range []struct{ memo, want string }{
		{`string(deal.close_time.date)`, `type moment has no field date; a moment (deal.close_time, event.occurred_at) has no fields: its date in a zone is date_in(deal.close_time, "Europe/Paris")`},
		{`string(deal.close_date.year)`, `type date has no field year; a date has no fields: string(d) is its text, YYYY-MM-DD (its year: string(d)[0:4])`},
		{`string(deal.amount.value)`, `type decimal has no field value; a decimal has no fields`},
		{`string(int(deal.amount))`, `invalid argument for int (type decimal); int() takes whole numbers, floats and a number's text, not a decimal: for a whole number of a decimal (add_days' days), write int(string(x))`},
	} {
		got := loadProblems(t, "name: y\ninvoice:\n  memo: '"+c.memo+"'\n")
		if len(got) != 1 || !strings.Contains(got[0], c.want) {
			t.Errorf("%s:\ngot  %q\nwant %q", c.memo, got, c.want)
		}
	}
	m := parse(t, "name: y\ninvoice:\n  memo: 'string(deal.close_date)[0:4] + \" \" + string(add_days(deal.close_date, int(string(round_to(dec(\"1.6\"), 0)))))'\n")
	if inv, err := mapping.Apply(m, wonEvent("closedwon", "")); err != nil || inv.Memo != "2026 2026-11-22" {
		t.Errorf("the advice: %q %v", inv.Memo, err)
	}
}
