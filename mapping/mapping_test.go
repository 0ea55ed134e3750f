package mapping_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/mapping/dealfile"
	"github.com/dealsync/dealsync/model"
)

var update = flag.Bool("update", false, "rewrite the golden files of examples/mappings")

func parse(t *testing.T, src string) *mapping.File {
	t.Helper()
	m, err := mapping.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func wonEvent(stage, previous string) model.DealEvent {
	return model.DealEvent{
		EventID:    "evt_1",
		OccurredAt: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC),
		Deal: model.Deal{
			ID: "D-1", Name: "Acme annual", Stage: stage, PreviousStage: previous,
			Amount:    decimal.NewNullDecimal(dec("12000.00")),
			Currency:  "EUR",
			CloseDate: model.NewDate(2026, 11, 20),
			Company:   model.Company{ID: "C-1", Name: "Acme GmbH", Address: model.Address{Country: "DE"}},
			LineItems: []model.LineItem{{SKU: "PRO-1Y", Description: "Pro", Quantity: dec("1"), UnitPrice: dec("12000.00")}},
		},
	}
}

func TestTriggerSemantics(t *testing.T) {
	won := []string{"closedwon", "Closed_Won", "123456"} // HubSpot default and a custom pipeline's numeric id
	custom := parse(t, "name: t\ntrigger: is_won(deal.stage) && !is_won(deal.previous_stage)\n")
	implicit := parse(t, "name: t\n")
	for _, tc := range []struct {
		name, stage, prev string
		want              bool
	}{
		{"transition into won", "closedwon", "contractsent", true},
		{"custom pipeline id", "123456", "123455", true},
		{"case-insensitive", "CLOSED_WON", "negotiation", true},
		{"already won", "closedwon", "closed_won", false},
		{"not a won stage", "closedlost", "closedwon", false},
		// won → lost → won: the second transition into won triggers again;
		// the deterministic workflow ID keeps it from invoicing twice.
		{"won→lost→won: into lost", "closedlost", "closedwon", false},
		{"won→lost→won: back to won", "closedwon", "closedlost", true},
		{"unknown previous stage", "closedwon", "", true},
	} {
		for _, tr := range []struct {
			kind string
			tr   mapping.Trigger
		}{{"expression", custom.Trigger(won)}, {"default", implicit.Trigger(won)}, {"stage", mapping.StageTrigger{WonStages: won}}} {
			got, reason, err := tr.tr.Evaluate(wonEvent(tc.stage, tc.prev))
			if err != nil {
				t.Fatalf("%s (%s trigger): %v", tc.name, tr.kind, err)
			}
			if got != tc.want {
				t.Errorf("%s (%s trigger): got %v (%s), want %v", tc.name, tr.kind, got, reason, tc.want)
			}
			if !got && reason == "" {
				t.Errorf("%s (%s trigger): no reason for not triggering", tc.name, tr.kind)
			}
		}
	}

	// An event without a stage (a thin CRM's deal made, deleted or
	// merged) is named so, not as stage "" not being won.
	if ok, r, err := (mapping.StageTrigger{WonStages: won}).Evaluate(wonEvent("", "")); ok || err != nil || !strings.Contains(r, "the event names no stage") {
		t.Errorf("no stage: got %v %q %v, want not triggered, saying the event names no stage", ok, r, err)
	}

	// A trigger can look at anything of the event.
	big := parse(t, "name: t\ntrigger: is_won(deal.stage) && deal.amount >= 10000 && deal.company.address.country in [\"DE\", \"AT\"]\n")
	if ok, r, err := big.Trigger(won).Evaluate(wonEvent("closedwon", "")); !ok || err != nil {
		t.Errorf("big DE deal: not triggered: %s %v", r, err)
	}
	small := wonEvent("closedwon", "")
	small.Deal.Amount = decimal.NewNullDecimal(dec("9999.99"))
	if ok, r, err := big.Trigger(won).Evaluate(small); ok || err != nil || !strings.Contains(r, "is false") {
		t.Errorf("small deal: got %v %q %v, want not triggered with the expression's reason", ok, r, err)
	}

	// A trigger that fails on a deal says so as an error, not as "not
	// triggered": the deal may well be won.
	first := parse(t, "name: t\ntrigger: is_won(deal.stage) && deal.line_items[0].sku != \"TRIAL\"\n")
	noLines := wonEvent("closedwon", "")
	noLines.Deal.LineItems = nil
	ok, r, err := first.Trigger(won).Evaluate(noLines)
	var me *mapping.Error
	if ok || r != "" || !errors.As(err, &me) || me.Field != "trigger" || !strings.Contains(err.Error(), "deal "+noLines.Deal.ID) {
		t.Errorf("failing trigger: got %v %q %v, want a mapping error of the trigger naming the deal", ok, r, err)
	}
}

const lookupsYAML = `
name: lk
lookups:
  items:
    default: MISC
    entries: {PRO-1Y: ITEM-PRO}
  tax:
    missing: error
    ignore_case: true
    entries: {de: DE19}
invoice:
  lines:
    item_code: lookup("items", item.sku)
    tax_code: lookup("tax", deal.company.address.country)
`

func TestLookups(t *testing.T) {
	m := parse(t, lookupsYAML)
	ev := wonEvent("closedwon", "")
	ev.Deal.LineItems = append(ev.Deal.LineItems, model.LineItem{SKU: "OTHER", Description: "x", Quantity: dec("1"), UnitPrice: dec("0")})
	inv, err := m.Map(ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := inv.Lines[0].ItemCode; got != "ITEM-PRO" {
		t.Errorf("hit: item code %q, want ITEM-PRO", got)
	}
	if got := inv.Lines[1].ItemCode; got != "MISC" {
		t.Errorf("default: item code %q, want MISC", got)
	}
	if got := inv.Lines[0].TaxCode; got != "DE19" {
		t.Errorf("ignore_case hit: tax code %q, want DE19", got)
	}

	ev.Deal.Company.Address.Country = "CH"
	_, err = m.Map(ev)
	var me *mapping.Error
	if !errors.As(err, &me) {
		t.Fatalf("declared error: got %v, want *mapping.Error", err)
	}
	want := mapping.Error{Mapping: "lk", Field: "lines[0].tax_code", Expression: `lookup("tax", deal.company.address.country)`, Value: "CH"}
	if me.Mapping != want.Mapping || me.Field != want.Field || me.Expression != want.Expression || me.Value != want.Value {
		t.Errorf("error = %+v, want %+v", *me, want)
	}
	if !strings.Contains(me.Error(), `lookup table "tax" has no entry for "CH"`) {
		t.Errorf("message %q does not say which table and key", me.Error())
	}
}

func TestRoundingPerCurrency(t *testing.T) {
	// 3 × 10.7605 = 32.2815: each line amount (and its tax) is rounded to
	// the currency's minor units, half away from zero, and the totals are
	// sums of the rounded amounts.
	m := parse(t, `
name: r
tolerance: "1"
invoice:
  currency: deal.currency
  lines:
    tax_rate: dec("19")
`)
	for _, tc := range []struct{ cur, amount, tax string }{
		{"JPY", "32", "6"},         // 0 places; 32 × 19 % = 6.08 → 6
		{"EUR", "32.28", "6.13"},   // 2 places; 6.1332 → 6.13
		{"KWD", "32.282", "6.134"}, // 3 places, half away from zero; 6.13358 → 6.134
	} {
		ev := wonEvent("closedwon", "")
		ev.Deal.Currency = tc.cur
		ev.Deal.Amount = decimal.NewNullDecimal(dec("32.28"))
		ev.Deal.LineItems = []model.LineItem{{Description: "x", Quantity: dec("3"), UnitPrice: dec("10.7605")}}
		inv, err := mapping.Apply(m, ev)
		if err != nil {
			t.Fatalf("%s: %v", tc.cur, err)
		}
		l := inv.Lines[0]
		if !l.Amount.Equal(dec(tc.amount)) || !l.TaxAmount.Equal(dec(tc.tax)) {
			t.Errorf("%s: amount %s tax %s, want %s and %s", tc.cur, l.Amount, l.TaxAmount, tc.amount, tc.tax)
		}
		if !inv.Total.Equal(dec(tc.amount).Add(dec(tc.tax))) {
			t.Errorf("%s: total %s", tc.cur, inv.Total)
		}
	}
	// round_currency in an expression rounds the same way.
	rc := parse(t, "name: rc\ninvoice:\n  lines:\n    unit_price: round_currency(item.unit_price * dec(\"1.0005\"), deal.currency)\n")
	ev := wonEvent("closedwon", "")
	ev.Deal.Currency = "KWD"
	ev.Deal.LineItems = []model.LineItem{{Description: "x", Quantity: dec("1"), UnitPrice: dec("10.0005")}}
	inv, err := rc.Map(ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := inv.Lines[0].UnitPrice; !got.Equal(dec("10.006")) { // 10.00550025 → 10.006
		t.Errorf("round_currency KWD: %s, want 10.006", got)
	}
}

func TestToleranceIsAValidationError(t *testing.T) {
	m := parse(t, "name: tol\ntolerance: \"0.05\"\n")
	ev := wonEvent("closedwon", "")
	ev.Deal.Amount = decimal.NewNullDecimal(dec("12000.04"))
	if _, err := mapping.Apply(m, ev); err != nil {
		t.Errorf("within tolerance: %v", err)
	}
	ev.Deal.Amount = decimal.NewNullDecimal(dec("12000.06"))
	_, err := mapping.Apply(m, ev)
	var ve *model.ValidationError
	if !errors.As(err, &ve) || ve.Problems[0].Field != "invoice.subtotal" {
		t.Fatalf("beyond tolerance: got %v, want a validation error on invoice.subtotal", err)
	}
	if !m.Tolerance().Equal(dec("0.05")) {
		t.Errorf("Tolerance() = %s", m.Tolerance())
	}
}

func TestLoadErrorsHavePositions(t *testing.T) {
	src := `name: bad
lookups:
  items: {default: X}
invoice:
  memo: deal.compnay.name
  customer:
    name: 'deal.company.name + 1'
  due_date: add_days(invoice.issue_date, "30")
  lines:
    quantity: 2.5
    unit_price: item.unit_price * 1.19
    item_code: lookup("itmes", item.sku)
    colour: red
  issue_date: |
    coalesce(
      deal.close_date,
      deal.stage)
`
	_, err := mapping.Parse("bad.yaml", []byte(src))
	var le *mapping.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want *LoadError", err)
	}
	type pos struct {
		line, col int
		key, frag string
	}
	want := []pos{
		{5, 14, "invoice.memo", "has no field compnay"},
		{7, 30, "invoice.customer.name", "mismatched types string and int"},
		{8, 42, "invoice.due_date", "add_days"},
		{10, 15, "invoice.lines.quantity", `write dec("2.5") instead of 2.5`},
		{11, 35, "invoice.lines.unit_price", "mismatched types decimal and float64"}, // at the float, not the operator
		{12, 23, "invoice.lines.item_code", `lookup table "itmes" is not declared under lookups (declared: items)`},
		{13, 5, "invoice.lines.colour", "unknown key"},
		{17, 12, "invoice.issue_date", "cannot use string as argument (type date) to call coalesce"},
	}
	if len(le.Problems) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(le.Problems), len(want), err)
	}
	for i, w := range want {
		p := le.Problems[i]
		if p.File != "bad.yaml" || p.Line != w.line || p.Column != w.col || p.Key != w.key || !strings.Contains(p.Message, w.frag) {
			t.Errorf("problem %d = %s\nwant bad.yaml:%d:%d: %s: ...%s...", i, p, w.line, w.col, w.key, w.frag)
		}
	}
	if !strings.HasPrefix(le.Problems[0].String(), "bad.yaml:5:14: invoice.memo: ") {
		t.Errorf("problem text %q should start with file:line:col: key:", le.Problems[0])
	}
}

func TestLoadErrorsInDeclarations(t *testing.T) {
	_, err := mapping.Parse("d.yaml", []byte(`name: default
tolerance: lots
defaults: {currency: EURO, payment_terms_days: -1}
lookups:
  a: {entries: {x: y}}
  b: {default: z, missing: error}
`))
	for _, frag := range []string{
		`d.yaml:1:7: name: "default" is the built-in`,
		"d.yaml:2:12: tolerance: must be a decimal",
		`d.yaml:3:22: defaults.currency: "EURO" is not an ISO 4217`,
		"d.yaml:3:48: defaults.payment_terms_days",
		"d.yaml:5:6: lookups.a: declare what a missing key gives",
		"d.yaml:6:28: lookups.b.missing: declare either",
	} {
		if err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("error does not contain %q:\n%v", frag, err)
		}
	}
}

// An error in the amount line (of a deal without line items) names that
// section of the file, not a line of invoice.lines.
func TestRuntimeErrorInTheAmountLineNamesIt(t *testing.T) {
	m := parse(t, "name: al\ninvoice:\n  amount_line:\n    unit_price: dec(deal.raw[\"list_price\"])\n")
	ev := wonEvent("closedwon", "")
	ev.Deal.LineItems = nil
	ev.Deal.Raw = map[string]json.RawMessage{"list_price": json.RawMessage(`"12,000"`)}
	_, err := m.Map(ev)
	var me *mapping.Error
	if !errors.As(err, &me) || me.Field != "amount_line.unit_price" {
		t.Fatalf("got %#v, want the error of field amount_line.unit_price", err)
	}
}

func TestRuntimeErrorNamesFieldExpressionValue(t *testing.T) {
	m := parse(t, "name: rt\ninvoice:\n  lines:\n    unit_price: dec(deal.raw[\"list_price\"])\n")
	ev := wonEvent("closedwon", "")
	ev.Deal.Raw = map[string]json.RawMessage{"list_price": json.RawMessage(`"12,000"`)}
	_, err := m.Map(ev)
	var me *mapping.Error
	if !errors.As(err, &me) || me.Field != "lines[0].unit_price" || me.Expression != `dec(deal.raw["list_price"])` || !strings.Contains(me.Message, `"12,000" is not a decimal`) {
		t.Fatalf("got %#v", err)
	}
	ev.Deal.Raw = map[string]json.RawMessage{"list_price": json.RawMessage(`12000.5`)}
	inv, err := m.Map(ev)
	if err != nil || !inv.Lines[0].UnitPrice.Equal(dec("12000.5")) {
		t.Fatalf("raw number: %v %v", inv.Lines, err)
	}
}

func TestDefaultsAndBuiltins(t *testing.T) {
	m := parse(t, `
name: d
defaults: {currency: usd, payment_terms_days: 14, account_code: "4000", tax_code: T0, item_code: GEN}
invoice:
  due_date: end_of_month(add_days(invoice.issue_date, defaults.payment_terms_days))
`)
	ev := wonEvent("closedwon", "")
	ev.Deal.Currency = ""
	ev.Deal.CloseDate = model.Date{}
	ev.Deal.LineItems = nil
	inv, err := mapping.Apply(m, ev)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Currency != "USD" || inv.IssueDate != model.NewDate(2026, 11, 20) || inv.DueDate != model.NewDate(2026, 12, 31) {
		t.Errorf("currency %s issue %s due %s", inv.Currency, inv.IssueDate, inv.DueDate)
	}
	l := inv.Lines[0]
	if len(inv.Lines) != 1 || l.Description != "Acme annual" || !l.UnitPrice.Equal(dec("12000")) || l.ItemCode != "GEN" || l.AccountCode != "4000" || l.TaxCode != "T0" {
		t.Errorf("amount line: %+v", inv.Lines)
	}
}

// The built-in mapping and a mapping file with no invoice section agree.
func TestEmptyFileMatchesDefault(t *testing.T) {
	m := parse(t, "name: same\n")
	ev := wonEvent("closedwon", "")
	ev.Deal.LineItems[0].DiscountPercent = dec("10")
	_, err1 := mapping.Apply(m, ev)
	_, err2 := mapping.Apply(mapping.Default{PaymentTermsDays: 30}, ev)
	if err1 == nil || err2 == nil {
		t.Fatalf("both should fail the amount check (discounted lines): %v / %v", err1, err2)
	}
	ev.Deal.Amount = decimal.NewNullDecimal(dec("10800"))
	a, err1 := mapping.Apply(m, ev)
	b, err2 := mapping.Apply(mapping.Default{PaymentTermsDays: 30}, ev)
	if err1 != nil || err2 != nil {
		t.Fatalf("with the discounted amount both should map: %v / %v", err1, err2)
	}
	if string(mustJSON(t, a)) != string(mustJSON(t, b)) {
		t.Errorf("file:\n%s\ndefault:\n%s", mustJSON(t, a), mustJSON(t, b))
	}
}

func TestGoldenExamples(t *testing.T) {
	files, _ := filepath.Glob("../examples/mappings/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example mappings")
	}
	for _, f := range files {
		set, err := mapping.Load(mapping.Sources{Files: []string{f}})
		if err != nil {
			t.Fatal(err)
		}
		m, _ := set.Get(set.Names()[0])
		dir := strings.TrimSuffix(f, filepath.Ext(f))
		results, err := mapping.RunGolden(dir, m, *update, dealfile.Read)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			if !r.OK {
				t.Errorf("%s/%s:\n%s", filepath.Base(dir), r.Name, r.Diff)
			}
		}
	}
}

func TestGoldenShowsDiff(t *testing.T) {
	dir := t.TempDir()
	deal, _ := os.ReadFile("../examples/mappings/generic-standard/won-de-two-lines.deal.json")
	want, _ := os.ReadFile("../examples/mappings/generic-standard/won-de-two-lines.invoice.json")
	os.WriteFile(filepath.Join(dir, "c.deal.json"), deal, 0o644)
	os.WriteFile(filepath.Join(dir, "c.invoice.json"), []byte(strings.Replace(string(want), `"PRO-ANNUAL"`, `"PRO-1Y"`, 1)), 0o644)
	set, err := mapping.Load(mapping.Sources{Files: []string{"../examples/mappings/generic-standard.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Get("generic-standard")
	results, err := mapping.RunGolden(dir, m, false, dealfile.Read)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].OK || !strings.Contains(results[0].Diff, `-       "item_code": "PRO-1Y",`) ||
		!strings.Contains(results[0].Diff, `+       "item_code": "PRO-ANNUAL",`) {
		t.Fatalf("want a failing case with a diff, got %+v", results)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The config check refuses mappings whose ERP keys do not tell two CRM
// accounts apart; it asks each mapping file whether they read
// event.account.
func TestKeysReadAccount(t *testing.T) {
	for _, c := range []struct {
		name, invoice string
		want          bool
	}{
		{"none: the built-in keys", "", false},
		{"both", "  reference: event.account + \"-\" + deal.id\n  customer:\n    external_id: event.account + \"-\" + deal.company.id\n", true},
		{"the reference only", "  reference: event.account + \"-\" + deal.id\n", false},
		{"the external id only", "  customer:\n    external_id: 'event.account + \"/\" + deal.company.id'\n", false},
		{"the external id through invoice.reference", "  reference: 'deal.id + \"@\" + event.account'\n  customer:\n    external_id: invoice.reference + \"-c\"\n", true},
		{"optional chaining", "  reference: event?.account + deal.id\n  customer:\n    external_id: upper(event?.account) + deal.company.id\n", true},
		{"another event field", "  reference: event.id + deal.id\n  customer:\n    external_id: event.id + deal.company.id\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := "name: keys\n"
			if c.invoice != "" {
				src += "invoice:\n" + c.invoice
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "keys.yaml")
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			set, err := mapping.Load(mapping.Sources{Files: []string{path}})
			if err != nil {
				t.Fatal(err)
			}
			f, _ := set.Get("keys")
			if got := f.KeysReadAccount(); got != c.want {
				t.Errorf("KeysReadAccount() = %v, want %v\n%s", got, c.want, src)
			}
		})
	}
}

// What would make a mapping answer differently from one evaluation to the
// next is refused at load: a map's keys in Go's random order, and an
// ignore_case lookup table with two keys that differ only in case.
func TestNondeterminismIsRefusedAtLoad(t *testing.T) {
	for name, c := range map[string]struct{ src, want string }{
		"keys":    {"name: m\ninvoice:\n  memo: 'join(keys({\"a\": \"1\", \"b\": \"2\"}), \",\")'\n", "unknown name keys"},
		"values":  {"name: m\ninvoice:\n  memo: 'join(values({\"a\": \"1\", \"b\": \"2\"}), \",\")'\n", "unknown name values"},
		"toPairs": {"name: m\ninvoice:\n  memo: 'string(len(toPairs({\"a\": \"1\"})))'\n", "unknown name toPairs"},
		// The clock and floats: a replay would date or round otherwise.
		"now":      {"name: m\ninvoice:\n  memo: 'string(now())'\n", "unknown name now"},
		"duration": {"name: m\ninvoice:\n  memo: 'string(duration(\"1h\"))'\n", "unknown name duration"},
		"float":    {"name: m\ninvoice:\n  memo: 'string(float(1))'\n", "unknown name float"},
		"timezone": {"name: m\ninvoice:\n  memo: 'string(timezone(\"UTC\"))'\n", "unknown name timezone"},
		"the case": {"name: m\nlookups:\n  codes:\n    ignore_case: true\n    default: X\n    entries: {de: LOWER, DE: UPPER}\n", `lookups.codes.entries.DE: duplicate key ignoring case: "de" and "DE" are one key when ignore_case is true; keep one of them`},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.yaml")
			if err := os.WriteFile(path, []byte(c.src), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := mapping.Load(mapping.Sources{Files: []string{path}})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error naming %q\n%s", err, c.want, c.src)
			}
		})
	}
}

// A file both listed in mappings.files and found in mappings.dir is one
// file, not a mapping defined twice.
func TestAFileListedAndInTheDirLoadsOnce(t *testing.T) {
	set, err := mapping.Load(mapping.Sources{
		Files: []string{"../examples/mappings/generic-standard.yaml", "../examples/mappings/./generic-standard.yaml"},
		Dir:   "../examples/mappings",
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if _, ok := set.Get("generic-standard"); !ok {
		t.Fatal("generic-standard not loaded")
	}
}

// A mapping file with only a name maps line discounts as the built-in
// mapping does, whatever the signs of their parts (the built-in applied a
// percentage only when positive, so 20 off and -10 % billed 80 there and
// 90 in a file).
func TestNameOnlyFileDiscountsAsTheBuiltin(t *testing.T) {
	file := parse(t, "name: m\n")
	for _, c := range [][2]string{{"20", "-10"}, {"5", "12.5"}, {"0", "0"}, {"10", "0"}, {"0", "33.3333"}} {
		ev := model.DealEvent{Deal: model.Deal{ID: "D", Name: "n", Currency: "EUR", CloseDate: model.NewDate(2026, 11, 20),
			Company:   model.Company{ID: "C", Name: "Acme"},
			LineItems: []model.LineItem{{SKU: "S", Quantity: dec("3"), UnitPrice: dec("33.33"), Discount: dec(c[0]), DiscountPercent: dec(c[1])}}}}
		a, errA := mapping.Builtin.Map(ev)
		b, errB := file.Map(ev)
		if errA != nil || errB != nil {
			t.Fatalf("%v: %v / %v", c, errA, errB)
		}
		if !a.Lines[0].Discount.Equal(b.Lines[0].Discount) {
			t.Errorf("discount %s, %s %%: built-in %s, file %s", c[0], c[1], a.Lines[0].Discount, b.Lines[0].Discount)
		}
	}
}

// expr's aggregates add up ints and floats only; over decimals they must
// compute exactly, in every form, and still be ints over ints.
func TestAggregatesOverDecimals(t *testing.T) {
	m := parse(t, `
name: agg
invoice:
  memo: >-
    string(sum(deal.line_items, .quantity * .unit_price)) + " " +
    string(sum(map(deal.line_items, .unit_price))) + " " +
    string(mean(map(deal.line_items, .unit_price))) + " " +
    string(median(map(deal.line_items, .unit_price))) + " " +
    string(min(map(deal.line_items, .unit_price))) + " " +
    string(max(deal.amount, dec("0.1"))) + " " +
    string(min(dec("0.1"), 2)) + " " +
    string(max([dec("0.5"), 3], 1)) + " " +
    string(sum([1, 2]) * dec("0.5")) + " " +
    string(sum(deal.line_items, .quantity * .unit_price) - deal.amount)
  due_date: add_days(invoice.issue_date, max(1, len(deal.line_items)) + sum([1, 2]) + min([1, 2], 3) - 1)
`)
	ev := wonEvent("closedwon", "")
	ev.Deal.LineItems = []model.LineItem{
		{SKU: "A", Description: "A", Quantity: dec("3"), UnitPrice: dec("0.10")},
		{SKU: "B", Description: "B", Quantity: dec("1"), UnitPrice: dec("0.20")},
		{SKU: "C", Description: "C", Quantity: dec("2"), UnitPrice: dec("0.35")},
		{SKU: "D", Description: "D", Quantity: dec("1"), UnitPrice: dec("11999")},
	}
	inv, err := m.Map(ev)
	if err != nil {
		t.Fatal(err)
	}
	// 0.3+0.2+0.7+11999 = 12000.2; the mean of the prices is 11999.65/4.
	want := "12000.2 11999.65 2999.9125 0.275 0.1 12000 0.1 3 1.5 0.2"
	if inv.Memo != want {
		t.Errorf("memo %q, want %q", inv.Memo, want)
	}
	// Over ints they stay ints (add_days takes an int): 4 lines + 3.
	if inv.DueDate != model.NewDate(2026, 11, 27) {
		t.Errorf("due date %s, want 2026-11-27", inv.DueDate)
	}

	// A float among the values is a mapping error that says what to write.
	m = parse(t, "name: f\ninvoice:\n  memo: 'string(sum(map(deal.line_items, #index == 0 ? 1.5 : dec(\"1\"))))'\n")
	_, err = m.Map(ev)
	var me *mapping.Error
	if !errors.As(err, &me) || !strings.Contains(me.Message, "float 1.5") || !strings.Contains(me.Message, `dec(`) {
		t.Fatalf("got %v, want a mapping error naming the float", err)
	}
}

// A raw object or array reads as the same text in a dry run (the bytes the
// CRM sent, or a saved file's indented ones) as in the run, whose deal has
// been through Temporal's JSON payloads (compacted, & written \u0026): a
// `contains` that finds a value in the dry run finds it in the run.
func TestRawObjectsReadTheSameInTheRunAsInTheDryRun(t *testing.T) {
	m := parse(t, "name: raw\ninvoice:\n  memo: |-\n    deal.raw[\"custom\"] + \" | \" + deal.raw[\"tags\"] + \" | \" + "+
		"(deal.raw[\"custom\"] contains '\"cost_center\":\"R&D\"' ? \"R&D\" : \"other\")\n")
	sent := wonEvent("closedwon", "")
	sent.Deal.Raw = map[string]json.RawMessage{
		"custom": json.RawMessage("{\n  \"po\": \"PO-1\",\n  \"cost_center\": \"R&D\", \"note\": \"a \\\\u0026 b <c>\"\n}"),
		"tags":   json.RawMessage(`[ "a&b", 2 ]`),
	}
	var run model.DealEvent // as the worker decodes the run's input
	b, err := json.Marshal(sent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	const want = `{"po":"PO-1","cost_center":"R&D","note":"a \\u0026 b <c>"} | ["a&b",2] | R&D`
	for name, ev := range map[string]model.DealEvent{"dry run": sent, "run": run} {
		inv, err := m.Map(ev)
		if err != nil || inv.Memo != want {
			t.Errorf("%s: memo %q, %v; want %q", name, inv.Memo, err, want)
		}
	}
}

// Decimals compare by value wherever expr cannot tell their type at load
// (`in` a list literal, a ternary of a decimal and 0): 12000.00 is 12000,
// in a dry run (the digits the CRM sent) as in the run (whose input lost
// the trailing zeros in JSON). Types that can never meet are still refused
// at load.
func TestDecimalsCompareByValue(t *testing.T) {
	m := parse(t, "name: eq\ninvoice:\n  memo: |-\n    string([deal.amount in [dec(\"12000\")], deal.amount not in [dec(\"12000\")], "+
		"(deal.has_amount ? deal.amount : 0) == 12000, (deal.has_amount ? deal.amount : 0) != 12000, "+
		"deal.amount == dec(\"12000.000\"), dec(\"12000\") in [1, deal.amount], \"a\" in [\"a\"], 1 in [2]])\n")
	sent := wonEvent("closedwon", "")
	sent.Deal.Amount = decimal.NullDecimal{Decimal: dec("12000.00"), Valid: true}
	var run model.DealEvent
	b, err := json.Marshal(sent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatal(err)
	}
	const want = "[true false true false true true true false]"
	for name, ev := range map[string]model.DealEvent{"dry run": sent, "run": run} {
		inv, err := m.Map(ev)
		if err != nil || inv.Memo != want {
			t.Errorf("%s: %q, %v; want %s", name, inv.Memo, err, want)
		}
	}
	for _, bad := range []string{`deal.amount == "12000"`, `deal.amount == 12000.0`, `deal.amount != 12000.0`, `deal.line_items[0].quantity == 1.0`, `deal.amount in [12000.0]`, `deal.amount in ["12000"]`} {
		if _, err := mapping.Parse("m.yaml", []byte("name: bad\ninvoice:\n  memo: '"+bad+" ? \"y\" : \"n\"'\n")); err == nil {
			t.Errorf("%s passed the load", bad)
		}
	}
}

// Apply, the dry run's map step, maps the event as the run's worker reads
// it, after Temporal's JSON payloads, which change what a mapping sees in
// two ways: text that is not valid UTF-8 (a name in Latin-1) reads with
// U+FFFD in its place, and a moment sent with an offset of seconds (a
// local mean time) moves to the whole minute RFC 3339 writes. A decimal
// prints the same either way (12000.00 as 12000: its trailing zeros are
// dropped by string(), not by JSON).
func TestApplyMapsTheEventAsTheRunReadsIt(t *testing.T) {
	m := parse(t, "name: txt\ninvoice:\n  memo: 'deal.name + \" \" + string(deal.close_time) + \" \" + string(deal.amount)'\n")
	ev := wonEvent("closedwon", "")
	ev.Deal.Name = "Caf\xe9"
	ev.Deal.CloseTime = time.Date(1900, 1, 1, 12, 0, 0, 0, time.FixedZone("LMT", 9*60+21))
	ev.Deal.Amount = decimal.NullDecimal{Decimal: dec("12000.00"), Valid: true}

	// The run's worker maps the event its input carried.
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var input model.DealEvent
	if err := json.Unmarshal(b, &input); err != nil {
		t.Fatal(err)
	}
	run, err := m.Map(input)
	const want = "Caf\uFFFD 1900-01-01T11:51:00Z 12000"
	if err != nil || run.Memo != want {
		t.Fatalf("the run's memo %q, %v; want %q", run.Memo, err, want)
	}
	inv, err := mapping.Apply(m, ev)
	if err != nil || inv.Memo != run.Memo {
		t.Fatalf("memo %q, %v; want the run's %q", inv.Memo, err, run.Memo)
	}
}

// The hash a run records (memo mapping_hash) is the first 12 hex digits of
// the SHA-256 of the file's bytes, as docs/mappings.md tells operators to
// find the file a run used with `sha256sum file.yaml | cut -c1-12`.
func TestHashIsTheFilesSHA256(t *testing.T) {
	const path = "../examples/mappings/generic-standard.yaml"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set, err := mapping.Load(mapping.Sources{Files: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := set.Get("generic-standard")
	if !ok {
		t.Fatal("generic-standard not loaded")
	}
	sum := sha256.Sum256(raw)
	if want := hex.EncodeToString(sum[:])[:12]; m.Hash() != want {
		t.Errorf("hash %q, want sha256sum's first 12 digits %q", m.Hash(), want)
	}
}

// coalesce evaluates every argument, so a lookup that fails is not a
// fallback there; a conditional evaluates only the branch it takes, the
// form docs/mappings.md gives for a fallback.
func TestFallbackLookupOnlyWhenNeeded(t *testing.T) {
	const tables = `name: fb
lookups:
  codes: {missing: error, entries: {DE: DE-VAT19}}
`
	ev := wonEvent("closedwon", "")
	ev.Deal.Company.Address.Country = "CH" // not in the table
	ev.Deal.Company.TaxID = "CH-VAT81"
	eager := parse(t, tables+"invoice:\n  lines:\n    tax_code: coalesce(deal.company.tax_id, lookup(\"codes\", deal.company.address.country))\n")
	if _, err := mapping.Apply(eager, ev); err == nil || !strings.Contains(err.Error(), "CH") {
		t.Errorf("coalesce with a failing lookup: %v; want the lookup's error", err)
	}
	lazy := parse(t, tables+"invoice:\n  lines:\n    tax_code: 'trim(deal.company.tax_id) != \"\" ? deal.company.tax_id : lookup(\"codes\", deal.company.address.country)'\n")
	inv, err := mapping.Apply(lazy, ev)
	if err != nil || inv.Lines[0].TaxCode != "CH-VAT81" {
		t.Fatalf("conditional fallback: %v, %+v", err, inv.Lines)
	}
	ev.Deal.Company.TaxID, ev.Deal.Company.Address.Country = "", "DE"
	if inv, err := mapping.Apply(lazy, ev); err != nil || inv.Lines[0].TaxCode != "DE-VAT19" {
		t.Fatalf("conditional fallback taken: %v, %+v", err, inv.Lines)
	}
}

// A value whose type shows only as the expression runs (a conditional of
// a whole number and a decimal) passed to a function that does not take
// it is a mapping error naming the function and what it got, not Go's
// "interface conversion" message.
func TestArgumentOfAnotherTypeIsNamed(t *testing.T) {
	m := parse(t, "name: types\ninvoice:\n  memo: 'string(round_to(dec(\"1.234\"), deal.name == \"x\" ? 2 : dec(2)))'\n")
	_, err := mapping.Apply(m, wonEvent("closedwon", ""))
	var me *mapping.Error
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "round_to cannot take a decimal and a decimal") || strings.Contains(err.Error(), "interface conversion") {
		t.Fatalf("got %v; want a mapping error naming round_to and the decimals it got", err)
	}
}

// An expression expr's compiler panics on (expr 1.17.8: an index into
// filter's result followed by a field) is a load problem that says what
// to write instead, without the goroutine stack the library recovers with.
func TestCompilerCrashIsALoadProblemWithoutAStack(t *testing.T) {
	src := "name: crash\ninvoice:\n  memo: 'string(filter(deal.line_items, .sku != \"\")[0].sku)'\n"
	_, err := mapping.Parse("crash.yaml", []byte(src))
	if err == nil {
		t.Fatal("expr compiles this expression now: remove compilerCrash's workaround in mapping/file.go and this test")
	}
	for _, want := range []string{"crash.yaml:3", "invoice.memo", "the expression library failed", "first(filter(xs, p)).field"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "goroutine") || strings.Contains(err.Error(), ".go:") {
		t.Errorf("error carries a stack:\n%v", err)
	}
}

// The CRM's rate of each line (item.tax_rate, item.has_tax_rate) chooses
// its tax code through a lookup table, as docs/connectors/crm.md shows for
// Pipedrive: a rate written with trailing zeros finds its entry, 0 (a
// deal that adds no tax) its own, a line without a rate the default, and
// a rate the table lacks is a mapping error naming it.
func TestLineTaxCodeByTheCRMsRate(t *testing.T) {
	m := parse(t, `name: t
defaults:
  tax_code: DEFAULT
  tax_rate: "20"
lookups:
  tax_codes_by_rate:            # Pipedrive's tax → the ERP's code
    missing: error              # a rate without a code stops the run
    entries: {"0": NONE, "7": OUTPUT7, "19": OUTPUT2}
invoice:
  lines:
    tax_code: 'item.has_tax_rate ? lookup("tax_codes_by_rate", string(item.tax_rate)) : defaults.tax_code'
    tax_rate: 'item.has_tax_rate ? item.tax_rate : defaults.tax_rate'
`)
	line := func(rate string) model.LineItem {
		li := model.LineItem{SKU: "P", Quantity: dec("1"), UnitPrice: dec("100")}
		if rate != "" {
			li.TaxRate = decimal.NewNullDecimal(dec(rate))
		}
		return li
	}
	ev := wonEvent("closedwon", "")
	ev.Deal.Amount = decimal.NewNullDecimal(dec("400"))
	ev.Deal.LineItems = []model.LineItem{line("19.00"), line("7"), line("0"), line("")}
	inv, err := m.Map(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ code, rate string }{{"OUTPUT2", "19"}, {"OUTPUT7", "7"}, {"NONE", "0"}, {"DEFAULT", "20"}}
	for i, w := range want {
		if l := inv.Lines[i]; l.TaxCode != w.code || !l.TaxRate.Equal(dec(w.rate)) {
			t.Errorf("line %d: tax code %q at %s %%, want %q at %s %%", i, l.TaxCode, l.TaxRate, w.code, w.rate)
		}
	}
	ev.Deal.LineItems = []model.LineItem{line("5.5")}
	ev.Deal.Amount = decimal.NewNullDecimal(dec("100"))
	if _, err := m.Map(ev); err == nil || !strings.Contains(err.Error(), `"5.5"`) {
		t.Errorf("a rate the table lacks: %v; want a mapping error naming 5.5", err)
	}
}

// RawKeysRead lists the literal keys of deal.raw the file's invoice reads
// (header, lines), in either spelling; a computed key is not, nor the
// trigger's (it reads the webhook's deal).
func TestRawKeysRead(t *testing.T) {
	m := parse(t, `name: t
trigger: 'deal.raw["IsWon"] == "true"'
lookups:
  types: {default: X, entries: {a: b}}
invoice:
  memo: '"PO " + deal.raw.PO_Number__c + deal.raw["Owner.Email"]'
  lines:
    account_code: 'lookup("types", deal.raw["RecordTypeId"]) + deal.raw[item.sku]'
`)
	if got := strings.Join(m.RawKeysRead(), ","); got != "Owner.Email,PO_Number__c,RecordTypeId" {
		t.Errorf("RawKeysRead() = %s", got)
	}
}

// lines.skip leaves an item's line out when true (a free item of quantity
// 0, which an invoice line cannot be); the others keep their order. It is
// a condition (not a condition: a load error), reads the item, and fails
// the run, naming it, when it leaves no line at all or fails itself.
func TestLinesSkip(t *testing.T) {
	m := parse(t, "name: t\ninvoice:\n  lines:\n    skip: item.quantity == 0\n")
	ev := wonEvent("closedwon", "")
	ev.Deal.LineItems = []model.LineItem{
		{SKU: "A", Quantity: dec("1"), UnitPrice: dec("12000.00")},
		{SKU: "FREE", Quantity: dec("0"), UnitPrice: dec("50.00")},
		{SKU: "B", Quantity: dec("2"), UnitPrice: dec("0")},
	}
	inv, err := m.Map(ev)
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if len(inv.Lines) != 2 || inv.Lines[0].ItemCode != "A" || inv.Lines[1].ItemCode != "B" {
		t.Fatalf("lines %+v, want A and B (FREE left out)", inv.Lines)
	}
	if err := inv.Validate(model.ValidateOptions{}); err != nil {
		t.Errorf("the invoice without the free line: %v", err)
	}
	// Without skip, the free line is kept (and refused by validation).
	inv, err = parse(t, "name: t\n").Map(ev)
	if err != nil || len(inv.Lines) != 3 {
		t.Fatalf("without skip: %d lines (%v), want all 3", len(inv.Lines), err)
	}

	ev.Deal.LineItems = ev.Deal.LineItems[1:2]
	_, err = m.Map(ev)
	var me *mapping.Error
	if !errors.As(err, &me) || me.Field != "lines.skip" || !strings.Contains(me.Message, "leaves out every one of the deal's 1 line items") {
		t.Errorf("every line skipped: %v, want a mapping error of lines.skip", err)
	}
	if _, err := mapping.Parse("t.yaml", []byte("name: t\ninvoice:\n  lines:\n    skip: item.sku\n")); err == nil || !strings.Contains(err.Error(), "invoice.lines.skip") {
		t.Errorf("a skip that is not a condition: %v, want a load error naming invoice.lines.skip", err)
	}
	if _, err := mapping.Parse("t.yaml", []byte("name: t\ninvoice:\n  amount_line:\n    skip: deal.amount == 0\n")); err == nil || !strings.Contains(err.Error(), "skip") {
		t.Errorf("skip on the amount line: %v, want refused as an unknown key", err)
	}
}

// The reads of the deal are followed through let variables (an alias of
// a part of the deal, of a key) and through get() with a literal key, in
// the trigger and the invoice alike: `let c = deal.company; c.email`
// reads deal.company.email, `get(deal.raw, "po")` deal.raw's po. A let
// variable read whole reads what it holds whole; a name declared again in
// another scope reads its own value; a computed key cuts the path.
func TestDealReadsFollowLetVariablesAndGet(t *testing.T) {
	m := parse(t, `name: t
trigger: |
  let r = deal.raw; let k = "Owner.Email";
  is_won(deal.stage) && r[k] != "" && get(deal.raw, "pipeline_id") == "1" && (let c = deal.company; c.name != "") && (let c = deal.line_items; len(c) > 0)
invoice:
  memo: |
    let c = deal.company; let a = c.address;
    c.email + a.city + get(deal.raw, "po") + $env["deal"]["owner"] + string(len(deal.line_items))
  customer:
    tax_id: 'let co = deal.company; co["tax_id"]'
    name: 'let r = deal.raw; r.PO_Number__c + r[deal.id] + string(deal.company?.address?.country)'
  lines:
    account_code: 'let d = deal; d.currency'
`)
	if got, want := strings.Join(m.TriggerDealReads(), ","), "deal.company.name,deal.line_items,deal.raw.Owner.Email,deal.raw.pipeline_id,deal.stage"; got != want {
		t.Errorf("TriggerDealReads() = %s, want %s", got, want)
	}
	if got, want := strings.Join(m.TriggerRawKeysRead(), ","), "Owner.Email,pipeline_id"; got != want {
		t.Errorf("TriggerRawKeysRead() = %s, want %s", got, want)
	}
	for _, want := range []string{"deal.company.email", "deal.company.address.city", "deal.raw.po", "deal.owner", "deal.line_items",
		"deal.company.tax_id", "deal.raw.PO_Number__c", "deal.raw", "deal.id", "deal.company.address.country", "deal.currency"} {
		if !slices.Contains(m.InvoiceDealReads(), want) {
			t.Errorf("InvoiceDealReads() = %v, lacks %s", m.InvoiceDealReads(), want)
		}
	}
	// The values of the let variables (deal.company of c and co, its
	// address of a, the deal of d), read only in part through them.
	for _, not := range []string{"deal.company", "deal", "deal.company.address"} {
		if slices.Contains(m.InvoiceDealReads(), not) {
			t.Errorf("InvoiceDealReads() = %v, has %s (only the parts of it read through a variable)", m.InvoiceDealReads(), not)
		}
	}
	if got, want := strings.Join(m.RawKeysRead(), ","), "PO_Number__c,po"; got != want {
		t.Errorf("RawKeysRead() = %s, want %s", got, want)
	}
}

// SkippedLines names the line items lines.skip leaves out, by their index
// in the deal and with the rule that left them out; none for a mapping
// without skip, or whose mapping fails, but for failing because every
// item was left out.
func TestSkippedLinesNameTheItemsLeftOut(t *testing.T) {
	m := parse(t, "name: t\ninvoice:\n  lines:\n    skip: item.quantity == 0\n")
	ev := wonEvent("closedwon", "")
	ev.Deal.LineItems = []model.LineItem{
		{SKU: "A", Quantity: dec("1"), UnitPrice: dec("12000.00")},
		{SKU: "FREE", Quantity: dec("0"), UnitPrice: dec("50.00")},
		{Description: "Setup", Quantity: dec("0")},
	}
	got := mapping.SkippedLines(m, ev)
	want := []string{`lines[1] (sku FREE): lines.skip is true (item.quantity == 0)`, `lines[2] ("Setup"): lines.skip is true (item.quantity == 0)`}
	if len(got) != 2 || got[0].String() != want[0] || got[1].String() != want[1] || got[0].Index != 1 || got[1].SKU != "" {
		t.Errorf("SkippedLines = %v, want %q", got, want)
	}
	if got := mapping.SkippedLines(parse(t, "name: t\n"), ev); got != nil {
		t.Errorf("without skip: %v", got)
	}
	if got := mapping.SkippedLines(mapping.Default{}, ev); got != nil {
		t.Errorf("the built-in mapping: %v", got)
	}
	failing := parse(t, "name: t\ninvoice:\n  memo: 'lookup(\"t\", deal.name)'\n  lines:\n    skip: item.quantity == 0\nlookups:\n  t: {missing: error}\n")
	if got := mapping.SkippedLines(failing, ev); got != nil {
		t.Errorf("a mapping that fails: %v", got)
	}

	// Every line item left out: the mapping fails, saying how many; the
	// items are listed all the same, as those of a deal partly left out.
	all := parse(t, "name: t\ninvoice:\n  lines:\n    skip: item.sku != \"X\"\n")
	if _, err := mapping.Apply(all, ev); err == nil || !strings.Contains(err.Error(), "leaves out every one of the deal's 3 line items") {
		t.Fatalf("all left out: %v", err)
	}
	if got := mapping.SkippedLines(all, ev); len(got) != 3 || got[0].Index != 0 || got[1].SKU != "FREE" || got[2].Description != "Setup" {
		t.Errorf("all left out: SkippedLines = %v, want the three items", got)
	}
}
