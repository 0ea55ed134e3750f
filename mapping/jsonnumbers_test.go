package mapping_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// A CRM's custom fields read with fromJSON (a Pipedrive deal's
// custom_fields, as docs/connectors/crm.md shows) hold numbers, yes/no
// values and objects. Their text is written as the CRM sent it: a number
// that coalesce() took for a blank lost the PO number it held, string()
// wrote 4500012345 as "4.500012345e+09", and a number with more digits
// than a float holds changed on its way to the invoice without a word; it
// is now its text, which string() and dec() take exactly, and a mapping
// that does not read it is not affected by it.
func TestValuesReadFromJSONAreWrittenAsSent(t *testing.T) {
	fields := `{"po": 4500012345, "ref": 17, "rate": 0.1, "big": 12345678.123456789, "flag": true, "empty": null,
		"money": {"value": 1200.10, "currency": "EUR"}, "text": "A-1"}`
	cf := `fromJSON(deal.raw["custom_fields"])`
	checkMemos(t, fields, []memoCase{
		{`"PO " + coalesce(` + cf + `["po"], "")`, "PO 4500012345", ""},
		{`"PO " + string(` + cf + `["po"])`, "PO 4500012345", ""},
		{`string(` + cf + `["rate"])`, "0.1", ""},
		{`coalesce(` + cf + `["flag"], "no")`, "true", ""},
		{`coalesce(` + cf + `["empty"], ` + cf + `["text"])`, "A-1", ""},
		{`coalesce(` + cf + `["missing"], "none")`, "none", ""},
		{`coalesce(` + cf + `["empty"])`, "", ""},
		{`string(` + cf + `["money"]["value"])`, "1200.1", ""},
		// Nothing (a missing key, a JSON null: an empty Pipedrive custom
		// field) is blank, not "<nil>"; an object is no text.
		{`"PO " + string(` + cf + `["empty"]) + string(` + cf + `["missing"])`, "PO ", ""},
		{`coalesce(string(` + cf + `["empty"]), "none")`, "none", ""},
		{`string(` + cf + `["money"])`, "", `string() was given {"currency":"EUR","value":1200.1}, which is not text, a number or a date: pick the part to write`},
		{`string(dec(string(` + cf + `["money"]["value"])) * 2)`, "2400.2", ""},
		{`string(dec(` + cf + `["po"]))`, "", "dec: 4500012345 is a number of JSON, which dec takes as text: write dec(string(x))"},
		{`coalesce(` + cf + `["money"], "none")`, "", `coalesce() was given {"currency":"EUR","value":1200.1}, which is not text, a number or a date: pick the part to write`},
		{`join(map(` + cf + `, string(#)), ",")`, "", "a list was needed, and the value is an object (a JSON object read with fromJSON, say)"},
		{`string(find(` + cf + `["money"], # != nil))`, "", "a list was needed, and the value is an object"},
		{`string(` + cf + `["big"])`, "12345678.123456789", ""},
		{`string(dec(` + cf + `["big"]) * 2)`, "24691356.246913578", ""},
		{`"PO " + coalesce(` + cf + `["po"], "")`, "PO 4500012345", ""},
		{`string(` + cf + `["big"] * 2)`, "", "invalid operation"},
		// A decimal and a JSON number compare by value (7 and 7 were
		// not equal, and a tax code chosen by it was the other one).
		// Arithmetic on a JSON number is in binary floats (documented):
		// dec(string(x)) first computes exactly.
		{`dec("17") == ` + cf + `["ref"] ? "same" : "other"`, "same", ""},
		{`dec("0.10") == ` + cf + `["rate"] ? "same" : "other"`, "same", ""},
		{`dec("17") != ` + cf + `["ref"] ? "differ" : "same"`, "same", ""},
		{`dec("17") in [` + cf + `["po"], ` + cf + `["ref"]] ? "in" : "out"`, "in", ""},
		{`"PO " + ` + cf + `["text"]`, "PO A-1", ""},
		{`string(dec(string(` + cf + `["rate"])) * 3)`, "0.3", ""},
		// A raw field the CRM did not send reads as "": fromJSON says so.
		{`string(fromJSON(deal.raw["absent"])["po"])`, "", "fromJSON() was given empty text: the field read is missing or empty for this deal"},
		// Text after the JSON value is refused as before, an inexact
		// number in it or not.
		{`string(fromJSON(deal.raw["custom_fields"] + " {\"po\": 12345678.123456789}")["po"])`, "", "after top-level value"},
	})
}

// round_to and add_days refuse what no mapping means and what would hang
// a run (a number rounded to a million places has a million digits) or
// write a date of another era, naming the value.
func TestRoundToAndAddDaysAreBounded(t *testing.T) {
	for _, c := range []struct{ expr, err string }{
		{`string(round_to(deal.amount, 100000000))`, "round_to: 100000000 places; give from -30 to 30"},
		{`string(round_to(deal.amount, -31))`, "round_to: -31 places"},
		{`string(add_days(deal.close_date, -400000000))`, "add_days: -400000000 days from 2026-11-20; give at most 100000 either way"},
	} {
		m, err := mapping.Parse("b.yaml", fmt.Appendf(nil, "name: b\ninvoice:\n  memo: %q\n", c.expr))
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		inv, err := mapping.Apply(m, wonEvent("closedwon", ""))
		var me *mapping.Error
		if !errors.As(err, &me) || !strings.Contains(me.Message, c.err) {
			t.Errorf("%s: memo %q, error %v; want %q", c.expr, inv.Memo, err, c.err)
		}
	}
	for _, c := range []struct{ expr, want string }{
		{`string(round_to(deal.amount, 30))`, "12000"},
		{`string(round_to(deal.amount, -3))`, "12000"},
		{`string(add_days(deal.close_date, 100000))`, "2300-09-05"},
	} {
		m, err := mapping.Parse("b.yaml", fmt.Appendf(nil, "name: b\ninvoice:\n  memo: %q\n", c.expr))
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if inv, err := mapping.Apply(m, wonEvent("closedwon", "")); err != nil || inv.Memo != c.want {
			t.Errorf("%s: memo %q, error %v; want %q", c.expr, inv.Memo, err, c.want)
		}
	}
}

// An expression written without quotes that YAML cut at " #" (expr's
// predicate argument, a "No. #" text) does not compile: the message says
// YAML read the rest as a comment, and to quote it. One that compiles
// keeps its comment.
func TestAnExpressionCutByAYAMLCommentSaysSo(t *testing.T) {
	for _, src := range []string{
		"name: c\ninvoice:\n  memo: join(map(deal.line_items, #.sku), \", \")\n",
		"name: c\ntrigger: is_won(deal.stage) && all(deal.line_items, #.quantity > 0)\n",
	} {
		_, err := mapping.Parse("c.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), `as a comment: a " #" in a value without quotes starts one, and the expression ends before it; quote the whole expression`) {
			t.Errorf("%q: %v", src, err)
		}
	}
	for _, src := range []string{
		"name: c\ninvoice:\n  memo: deal.name # the deal's name\n",
		"name: c\ninvoice:\n  memo: nme # a typo, no cut\n",
	} {
		_, err := mapping.Parse("c.yaml", []byte(src))
		if err != nil && strings.Contains(err.Error(), "as a comment") {
			t.Errorf("%q: %v", src, err)
		}
	}
}

// A lookup by a value read with fromJSON takes its text, as string()
// writes it (17 is "17"): it failed with Go's "interface conversion:
// interface {} is float64, not string". A key the JSON lacks says so.
func TestLookupByAValueReadFromJSON(t *testing.T) {
	for _, c := range []struct{ key, want, err string }{
		{`["n"]`, "seventeen", ""},
		{`["yes"]`, "agreed", ""},
		{`["missing"]`, "", `lookup() was given nothing as its key`},
		{`["missing"] ?? ""`, "", `lookup table "t" has no entry for ""`},
		{`["o"]`, "", `lookup() was given {"a":1}, which is not text, a number or a date`},
	} {
		src := fmt.Sprintf("name: c\nlookups:\n  t:\n    missing: error\n    entries: {\"17\": seventeen, \"true\": agreed}\ninvoice:\n  memo: 'lookup(\"t\", fromJSON(deal.raw[\"cf\"])%s)'\n", c.key)
		m, err := mapping.Parse("c.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		ev := wonEvent("closedwon", "")
		ev.Deal.Raw = map[string]json.RawMessage{"cf": json.RawMessage(`{"n": 17, "yes": true, "o": {"a": 1}}`)}
		inv, err := mapping.Apply(m, ev)
		var me *mapping.Error
		switch {
		case c.err == "" && (err != nil || inv.Memo != c.want):
			t.Errorf("%s: memo %q, %v; want %q", c.key, inv.Memo, err, c.want)
		case c.err != "" && (!errors.As(err, &me) || !strings.Contains(me.Message, c.err) || !strings.Contains(me.Message, "(at c.yaml:7:10)")):
			t.Errorf("%s: %v; want an error at c.yaml:7:10 saying %q", c.key, err, c.err)
		}
	}
}

// A key of another kind (a date, where a conditional's type shows only
// as the run reads it) says what it is and what to write.
func TestLookupByADateSaysToWriteItsText(t *testing.T) {
	m, err := mapping.Parse("c.yaml", []byte("name: c\nlookups:\n  t:\n    default: none\n    entries: {a: b}\ninvoice:\n  memo: 'lookup(\"t\", deal.has_amount ? deal.close_date : \"x\")'\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = mapping.Apply(m, wonEvent("closedwon", ""))
	var me *mapping.Error
	if !errors.As(err, &me) || !strings.Contains(me.Message, "lookup() takes a text as its key, and was given a date: write string(x)") {
		t.Fatalf("got %v", err)
	}
}

// memoCase is an expression mapped to a memo, with the memo it gives or
// the mapping error it fails with.
type memoCase struct{ expr, want, err string }

// checkMemos maps each case's expression to the memo of a deal whose
// deal.raw["custom_fields"] is fields.
func checkMemos(t *testing.T, fields string, cases []memoCase) {
	t.Helper()
	for _, c := range cases {
		m, err := mapping.Parse("cf.yaml", fmt.Appendf(nil, "name: cf\ninvoice:\n  memo: %q\n", c.expr))
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		ev := wonEvent("closedwon", "")
		ev.Deal.Raw = map[string]json.RawMessage{"custom_fields": json.RawMessage(fields)}
		inv, err := mapping.Apply(m, ev)
		var me *mapping.Error
		switch {
		case c.err == "" && (err != nil || inv.Memo != c.want):
			t.Errorf("%s: memo %q, error %v; want %q", c.expr, inv.Memo, err, c.want)
		case c.err != "" && (!errors.As(err, &me) || me.Field != "memo" || !strings.Contains(me.Message, c.err)):
			t.Errorf("%s: memo %q, error %v; want a mapping error of memo saying %q", c.expr, inv.Memo, err, c.err)
		}
	}
}
