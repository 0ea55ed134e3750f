package mapping_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// An expression written as a text template (DS-{deal.id}, ${…}, {{…}})
// got expr's bare parse error; it says that an expression joins texts
// with +, with the rewrite when it compiles (a value that is no text in
// string()), which loads. Braces inside quotes, or around a map literal,
// are no template.
func TestATemplateStyleExpressionSaysHowToJoinTexts(t *testing.T) {
	const tail = " (the whole YAML value in single quotes)"
	for _, c := range []struct{ key, value, says, rewrite string }{
		{"reference", `DS-{deal.id}`, `unexpected token Operator("."); an expression is no template, {…} does not put a value into a text: join texts written in quotes and values with +, write reference: '"DS-" + deal.id'`, `"DS-" + deal.id`},
		{"reference", `"DS-{deal.id}"`, `write reference: '"DS-" + deal.id'`, `"DS-" + deal.id`},
		{"reference", `DS-${deal.id}`, `write reference: '"DS-" + deal.id'`, `"DS-" + deal.id`},
		{"reference", `INV-{{ deal.id }}`, `write reference: '"INV-" + deal.id'`, `"INV-" + deal.id`},
		{"reference", `DS-{deal.id}-{event.account}`, `write reference: '"DS-" + deal.id + "-" + event.account'`, `"DS-" + deal.id + "-" + event.account`},
		{"memo", `PO {deal.raw["po"]}`, `write memo: '"PO " + deal.raw["po"]'`, `"PO " + deal.raw["po"]`},
		{"memo", `Total {deal.amount} {deal.currency}`, `write memo: '"Total " + string(deal.amount) + " " + deal.currency'`, `"Total " + string(deal.amount) + " " + deal.currency`},
		{"memo", `'"PO " + {deal.name}'`, `an expression is no template, {…} does not put a value into a text: join texts written in quotes and values with +, as in '"DS-" + deal.id'`, ""},
	} {
		_, err := mapping.Parse("t.yaml", fmt.Appendf(nil, "name: t\ninvoice:\n  %s: %s\n", c.key, c.value))
		if err == nil || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), tail) {
			t.Errorf("%s: %v\nwant it to say %q", c.value, err, c.says)
		}
		if c.rewrite == "" {
			continue
		}
		if _, err := mapping.Parse("t.yaml", fmt.Appendf(nil, "name: t\ninvoice:\n  %s: '%s'\n", c.key, c.rewrite)); err != nil {
			t.Errorf("%s (the rewrite): %v", c.rewrite, err)
		}
	}
	// Braces that expr reads (an if block, a closure) are no template:
	// the error keeps its own hint.
	for _, c := range []struct{ value, says string }{
		{`'"{" + deal.nam'`, ""},
		{`'{"a": 1}["a"] + deal.nam'`, ""},
		{`'DS- + deal.id'`, ""},
		{`'if deal.amount > 0 { deal.nam } else { "x" }'`, "(did you mean name?)"},
		{`'join(map(deal.line_items, {#.sku + now()}), ", ")'`, "now() is expr's, left out of mappings"},
		{`'join(map(deal.line_items, {#.skuu}), ", ")'`, "(did you mean sku?)"},
	} {
		_, err := mapping.Parse("t.yaml", fmt.Appendf(nil, "name: t\ninvoice:\n  memo: %s\n", c.value))
		if err == nil || strings.Contains(err.Error(), "template") || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v; want an error that does not speak of a template, saying %q", c.value, err, c.says)
		}
	}
}

// A field's value written without quotes that starts with a brace,
// `reference: {deal.id}`, is a map for YAML ({"deal.id": null}), and with
// text after the braces a YAML syntax error: the problem says so at the
// line, with the rewrite of a template, which loads.
func TestABraceValueWithoutQuotesIsAMapForYAML(t *testing.T) {
	const tail = " (the whole YAML value in single quotes)"
	const isMap = "YAML reads {deal.id} as a map, not as an expression: a value without quotes that starts with { is one; "
	const endsMap = "did not find expected key: YAML reads a value without quotes that starts with { as a map, which ends at its }; "
	for _, c := range []struct{ section, key, value, says, rewrite string }{
		{"", "reference", `{deal.id}`, "t.yaml:3:14: invoice.reference: " + isMap + "an expression is no template: write the value without braces, reference: 'deal.id'" + tail, "deal.id"},
		{"", "reference", `{ deal.id }  # the deal's id`, "t.yaml:3:14: invoice.reference: YAML reads { deal.id } as a map", "deal.id"},
		{"lines", "quantity", `{item.quantity}`, "t.yaml:4:15: invoice.lines.quantity: YAML reads {item.quantity} as a map, not as an expression: a value without quotes that starts with { is one; " +
			"an expression is no template: write the value without braces, quantity: 'item.quantity'" + tail, "item.quantity"},
		{"", "reference", `{deal.id}-{deal.name}`, "t.yaml:3:23: invoice.reference: " + endsMap + "an expression is no template, {…} does not put a value into a text: " +
			`join texts written in quotes and values with +, write reference: 'deal.id + "-" + deal.name'` + tail, `deal.id + "-" + deal.name`},
		{"", "memo", `{deal.amount} EUR`, "t.yaml:3:23: invoice.memo: " + endsMap + `an expression is no template, {…} does not put a value into a text: ` +
			`join texts written in quotes and values with +, write memo: 'string(deal.amount) + " EUR"'`, `string(deal.amount) + " EUR"`},
		{"", "memo", `{a: b}`, "t.yaml:3:9: invoice.memo: YAML reads {a: b} as a map, not as an expression: a value without quotes that starts with { is one; quote the whole expression (`memo: '…'`)", ""},
	} {
		doc := "name: t\ninvoice:\n"
		indent := "  "
		if c.section != "" {
			doc += "  " + c.section + ":\n"
			indent = "    "
		}
		_, err := mapping.Parse("t.yaml", []byte(doc+indent+c.key+": "+c.value+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %s: %v\nwant it to say %q", c.key, c.value, err, c.says)
		}
		if c.rewrite == "" {
			continue
		}
		if _, err := mapping.Parse("t.yaml", []byte(doc+indent+c.key+": '"+strings.ReplaceAll(c.rewrite, "'", "''")+"'\n")); err != nil {
			t.Errorf("%s (the rewrite): %v", c.rewrite, err)
		}
	}
	// The trigger too, in its own environment.
	_, err := mapping.Parse("t.yaml", []byte("name: t\ntrigger: {is_won(deal.stage)}\n"))
	if want := "t.yaml:2:10: trigger: YAML reads {is_won(deal.stage)} as a map, not as an expression: a value without quotes that starts with { is one; " +
		"an expression is no template: write the value without braces, trigger: 'is_won(deal.stage)'"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("trigger: %v\nwant %q", err, want)
	}
}

// Braces without quotes around text YAML cannot read as a map's entries
// (`reference: {"DS-" + deal.id}`, a quote inside) were a bare
// YAML error on the line above the field's: the problem is at the field,
// says YAML read the braces as a map, with the rewrite when it has one.
func TestABraceValueYAMLCannotReadAsAMap(t *testing.T) {
	const says = "did not find expected ',' or '}': YAML reads a value without quotes that starts with { as a map, and reads this one's text as no map; "
	for _, c := range []struct{ doc, want string }{
		{"name: t\ninvoice:\n  memo: '\"x\"'\n  reference: {\"DS-\" + deal.id}\n",
			"t.yaml:4:14: invoice.reference: " + says + `an expression is no template: write the value without braces, reference: '"DS-" + deal.id'`},
		{"name: t\ninvoice:\n  lines:\n    description: {coalesce(item.description, \"x\")}  # c\n",
			"t.yaml:4:18: invoice.lines.description: " + says + "quote the whole expression (`description: '…'`)"},
	} {
		_, err := mapping.Parse("t.yaml", []byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v\nwant %q", c.doc, err, c.want)
		}
	}
}
