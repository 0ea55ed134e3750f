package mapping_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// ** and ^ on a decimal compute exactly, by repeated multiplication: a
// compound rate (1 + rate) ** years was refused at load ("mismatched
// types decimal and int"), and expr's own power computes with floats
// (1.1 ** 3 is 1.3310000000000004 there).
func TestPowerOfADecimalIsExact(t *testing.T) {
	for _, c := range []struct{ expression, want string }{
		{`deal.amount * (1 + dec("0.05")) ** 2`, "110.25"},
		{`dec("1.1") ** 3`, "1.331"},
		{`dec("1.1") ^ 3`, "1.331"},
		{`dec("0.1") ** 20`, "0.00000000000000000001"},
		{`len(string(dec("1.0000001") ** 100))`, "702"},
		{`len(string(dec("1000000") ** 100))`, "601"},
		{`deal.amount ** 0`, "1"},
		{`-dec("1.5") ** 3`, "-3.375"},
		{`deal.amount ** len(deal.line_items)`, "10000"},
		{`round_to(deal.amount * (1 + dec("0.0325")) ** 7, 2)`, "125.09"},
	} {
		if got := printed(t, c.expression, opsEvent()); got != c.want {
			t.Errorf("%s = %s, want %s", c.expression, got, c.want)
		}
	}

	// In a decimal field.
	m := parse(t, "name: pow\ninvoice:\n  lines:\n    unit_price: 'item.unit_price * (1 + dec(\"0.05\")) ** 2'\n")
	inv, err := m.Map(opsEvent())
	if err != nil {
		t.Fatal(err)
	}
	if got := inv.Lines[0].UnitPrice; got.String() != "33.075" {
		t.Errorf("unit price %s, want 33.075", got)
	}

	// An exponent the run cannot compute exactly, or at all: a mapping
	// error saying what to write.
	for _, c := range []struct{ expression, want string }{
		{`deal.amount ** (len(deal.line_items) - 3)`, "a decimal to the power -1 divides, which is not exact; write dec(1) / x, x being the base, and round it"},
		{`deal.amount ** (len(deal.line_items) - 4)`, "a decimal to the power -2 divides, which is not exact; write dec(1) / x ** 2, x being the base, and round it"},
		{`deal.amount ** (len(deal.line_items) * 51)`, "a decimal to the power 102; give an exponent from 0 to 100"},
		// A power of a power: bounded by its digits, not only its
		// exponent (it would build millions of digits and hang the worker).
		{`((dec("1.05") ** 100) ** 100) ** 100`, "would have about 20300 digits, more than the 1000 a power may have; round the base first"},
		{`(deal.amount * dec("1000000000")) ** 100`, "digits, more than the 1000 a power may have"},
	} {
		m, err := mapping.Parse("p.yaml", []byte("name: p\ninvoice:\n  memo: 'string("+c.expression+")'\n"))
		if err != nil {
			t.Fatalf("%s: %v", c.expression, err)
		}
		if _, err := m.Map(opsEvent()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.expression, err, c.want)
		}
	}
}

// A power with a decimal that has no exact result (a fractional or a
// decimal exponent) is refused at load, saying why and what to write;
// a power of whole numbers, a float in expr, that can be a decimal
// field's value is refused as a float literal is, with its exact
// rewrite (dec(2) ** 3).
func TestPowersThatWouldBeFloatsAreRefusedAtLoad(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"  memo: 'string(deal.amount ** 0.5)'\n", "invoice.memo: invalid operation: ** (mismatched types decimal and float64); a decimal's power is computed exactly for a whole-number exponent only"},
		{"  memo: 'string(deal.amount ^ dec(\"2\"))'\n", "invalid operation: ^ (mismatched types decimal and decimal); a decimal's power is computed exactly for a whole-number exponent only"},
		{"  memo: 'string(dec(\"1.05\") ** 3 ** 1)'\n", "an exponent computed with floats, 3 ** 1 or 10 / 5, is a float"},
		{"  lines:\n    quantity: 'deal.id == \"x\" ? 2 ** 3 : dec(1)'\n",
			"bad/y.yaml:4:33: invoice.lines.quantity: a power of whole numbers, which expr computes as a float, can be this field's value, which needs a decimal: the deals that take it would fail the run: money never goes through floats, write dec(2) ** 3 instead of 2 ** 3"},
		{"  lines:\n    unit_price: 'round_to(deal.id == \"x\" ? item.unit_price : len(deal.line_items) ^ 2, 2)'\n",
			"can be round_to's argument, which takes a decimal: the deals that take it would fail the run: money never goes through floats, write dec(len(deal.line_items)) ^ 2 instead of len(deal.line_items) ^ 2"},
	} {
		got := loadProblems(t, "name: y\ninvoice:\n"+c.src)
		if len(got) != 1 || !strings.Contains(got[0], c.want) {
			t.Errorf("%s:\ngot  %q\nwant one containing %q", c.src, got, c.want)
		}
	}
}

// A float known at load that string() writes for dec() to read is
// refused, as dec() of the float is: string() writes the float's binary
// approximation, and dec(string(0.07 * 100)) was 7.000000000000001. A
// whole number, a decimal and a number read with fromJSON (and
// arithmetic on it, computed as its text says) convert exactly, and
// still load.
func TestFloatsThroughStringAreRefusedAtLoad(t *testing.T) {
	for _, c := range []struct{ expression, want string }{
		{`dec(string(0.07 * 100))`, `bad/y.yaml:4:22: invoice.lines.unit_price: 0.07 * 100 is a float, and string() writes a float's binary approximation, which dec() reads as it is (dec(string(0.07 * 100)) is 7.000000000000001): money never goes through floats, write dec("0.07") instead of 0.07 (in`},
		{`dec(string(1.5))`, `write dec("1.5") instead of dec(string(1.5))`},
		{`dec(string(2 ** 3))`, `2 ** 3 is a float, and string() writes`},
		{`dec(string(len(deal.line_items) / 3))`, `write dec(len(deal.line_items)) / 3 instead of len(deal.line_items) / 3`},
		// Through a let, trim() and a conditional's branch.
		{`let s = string(0.07 * 100); dec(trim(s))`, `bad/y.yaml:4:26: invoice.lines.unit_price: 0.07 * 100 is a float`},
		{`dec(deal.id == \"x\" ? string(1.25 * 3) : \"1\")`, `1.25 * 3 is a float`},
	} {
		got := loadProblems(t, "name: y\ninvoice:\n  lines:\n    unit_price: \""+c.expression+"\"\n")
		if len(got) != 1 || !strings.Contains(got[0], c.want) {
			t.Errorf("%s:\ngot  %q\nwant one containing %q", c.expression, got, c.want)
		}
	}

	ev := opsEvent()
	ev.Deal.Raw = map[string]json.RawMessage{"cf": json.RawMessage(`{"rate": 0.07}`)}
	for _, c := range []struct{ expression, want string }{
		{`dec(string(len(deal.line_items)))`, "2"},
		{`dec(string(deal.amount))`, "100"},
		{`dec(string(fromJSON(deal.raw["cf"])["rate"]))`, "0.07"},
		{`dec(string(fromJSON(deal.raw["cf"])["rate"] * 100))`, "7"},
		{`let r = fromJSON(deal.raw["cf"])["rate"]; dec(string(r * 100))`, "7"},
	} {
		m, err := mapping.Parse("ok.yaml", []byte("name: ok\ninvoice:\n  memo: 'string("+c.expression+")'\n"))
		if err != nil {
			t.Errorf("%s: %v", c.expression, err)
			continue
		}
		inv, err := m.Map(ev)
		if err != nil || inv.Memo != c.want {
			t.Errorf("%s = %q, %v; want %s", c.expression, inv.Memo, err, c.want)
		}
	}
}

// round_to and round_currency round a half away from zero, unless the
// mapping's `rounding` or their last argument says half_even (banker's
// rounding): the modes differ only on an exact half.
func TestRoundingModes(t *testing.T) {
	cases := []struct{ expression, halfUp, halfEven string }{
		{`round_to(dec("2.345"), 2)`, "2.35", "2.34"},
		{`round_to(dec("2.355"), 2)`, "2.36", "2.36"},
		{`round_to(dec("-2.345"), 2)`, "-2.35", "-2.34"},
		{`round_to(dec("-2.5"), 0)`, "-3", "-2"},
		{`round_to(dec("2.5"), 0)`, "3", "2"},
		{`round_to(dec("3.5"), 0)`, "4", "4"},
		{`round_to(dec("2.3451"), 2)`, "2.35", "2.35"}, // no half
		{`round_to(dec("25"), -1)`, "30", "20"},
		{`round_currency(dec("0.125"), "EUR")`, "0.13", "0.12"},
		{`round_currency(dec("1234.5"), "JPY")`, "1235", "1234"},
		{`round_currency(dec("-1.0005"), "KWD")`, "-1.001", "-1"},
	}
	for _, rounding := range []string{"", "rounding: half_up\n", "rounding: half_even\n"} {
		for _, c := range cases {
			want := c.halfUp
			if rounding == "rounding: half_even\n" {
				want = c.halfEven
			}
			m, err := mapping.Parse("r.yaml", []byte("name: r\n"+rounding+"invoice:\n  memo: 'string("+c.expression+")'\n"))
			if err != nil {
				t.Fatal(err)
			}
			inv, err := m.Map(opsEvent())
			if err != nil || inv.Memo != want {
				t.Errorf("%q %s = %q, %v; want %s", rounding, c.expression, inv.Memo, err, want)
			}
		}
	}

	// The last argument wins over the mapping's rounding, either way.
	for _, c := range []struct{ rounding, expression, want string }{
		{"", `round_to(dec("2.345"), 2, "half_even")`, "2.34"},
		{"rounding: half_even\n", `round_to(dec("2.345"), 2, "half_up")`, "2.35"},
		{"", `round_currency(dec("-2.5"), "JPY", "half_even")`, "-2"},
		{"rounding: half_even\n", `round_currency(dec("-2.5"), "JPY", "half_up")`, "-3"},
		// A mode computed from the deal.
		{"", `round_to(dec("2.5"), 0, deal.id == "D-1" ? "half_even" : "half_up")`, "2"},
	} {
		m, err := mapping.Parse("r.yaml", []byte("name: r\n"+c.rounding+"invoice:\n  memo: '"+strings.ReplaceAll("string("+c.expression+")", "'", "''")+"'\n"))
		if err != nil {
			t.Fatal(err)
		}
		inv, err := m.Map(opsEvent())
		if err != nil || inv.Memo != c.want {
			t.Errorf("%q %s = %q, %v; want %s", c.rounding, c.expression, inv.Memo, err, c.want)
		}
	}

	// A mode that is none: the file's key, or a mode written in the
	// file, at load; one computed from the deal as the run maps it.
	for _, c := range []struct{ src, want string }{
		{"name: r\nrounding: bankers\n", `bad/y.yaml:2:11: rounding: "bankers" is no rounding; give half_up (half away from zero: 2.345 → 2.35, -2.5 → -3; the default) or half_even (banker's rounding, to the even digit: 2.345 → 2.34, -2.5 → -2); it is how round_to and round_currency round a half`},
		{"name: r\ninvoice:\n  memo: 'string(round_to(deal.amount, 2, \"HALF_EVEN\"))'\n", `bad/y.yaml:3:42: invoice.memo: round_to: "HALF_EVEN" is no rounding; give half_up`},
		{"name: r\ninvoice:\n  memo: 'string(round_currency(deal.amount, \"EUR\", \"up\"))'\n", `round_currency: "up" is no rounding`},
	} {
		got := loadProblems(t, c.src)
		if len(got) != 1 || !strings.Contains(got[0], c.want) {
			t.Errorf("%s:\ngot  %q\nwant one containing %q", c.src, got, c.want)
		}
	}
	m := parse(t, "name: r\ninvoice:\n  memo: 'string(round_to(deal.amount, 2, deal.name))'\n")
	if _, err := m.Map(opsEvent()); err == nil || !strings.Contains(err.Error(), `round_to: "`) || !strings.Contains(err.Error(), "is no rounding; give half_up") {
		t.Errorf("a mode that is none, from the deal: %v", err)
	}
	// A mode the deal does not have (fromJSON's null, a missing key) or
	// that is no text says so, not `"" is no rounding`.
	for expression, want := range map[string]string{
		`round_to(deal.amount, 2, fromJSON("{}")["mode"])`:     `round_to: the rounding mode is nothing (nil), not a text; give half_up`,
		`round_to(deal.amount, 2, fromJSON("{\"m\":2}")["m"])`: `round_to: the rounding mode is a float64, 2, not a text`,
	} {
		m := parse(t, "name: r\ninvoice:\n  memo: 'string("+expression+")'\n")
		if _, err := m.Map(opsEvent()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", expression, err, want)
		}
	}
}

// An exponent of a decimal's power written in the file that no run can
// take (negative, above 100) is a load error, at the exponent: it would
// fail every run. One computed from the deal is the run's (above). The
// advice on a negative one writes the base in, as the file does, in
// parentheses where it is an operation.
func TestPowerExponentWrittenInTheFileIsCheckedAtLoad(t *testing.T) {
	for _, c := range []struct{ expression, want string }{
		{`dec("1.05") ** -1`, `bad/y.yaml:3:32: invoice.memo: the operator **: a decimal to the power -1 divides, which is not exact; write dec(1) / dec("1.05") and round it (round_to, round_currency)`},
		{`deal.amount * (1 + dec("0.05")) ** -1`, `the operator **: a decimal to the power -1 divides, which is not exact; write dec(1) / (1 + dec("0.05")) and round it (`},
		{`deal.amount * (1 + dec("0.05")) ^ -3`, `the operator ^: a decimal to the power -3 divides, which is not exact; write dec(1) / (1 + dec("0.05")) ^ 3 and round it (`},
		{`deal.amount ** -2`, `write dec(1) / deal.amount ** 2 and round it (`},
		{`deal.amount * dec("1.05") ^ 101`, `bad/y.yaml:3:45: invoice.memo: the operator ^: a decimal to the power 101; give an exponent from 0 to 100`},
		{`deal.amount ** (0 - 2)`, `the operator **: a decimal to the power -2 divides, which is not exact; write dec(1) / deal.amount ** 2 and round it (`},
	} {
		got := loadProblems(t, "name: y\ninvoice:\n  memo: 'string("+c.expression+")'\n")
		if len(got) != 1 || !strings.Contains(got[0], c.want) {
			t.Errorf("%s:\ngot  %q\nwant one containing %q", c.expression, got, c.want)
		}
	}
	for _, e := range []string{`dec("1.05") ** 0`, `dec("1.05") ** 100`} {
		if _, err := mapping.Parse("ok.yaml", []byte("name: ok\ninvoice:\n  memo: 'string("+e+")'\n")); err != nil {
			t.Errorf("%s: %v", e, err)
		}
	}
}

// An exponent of a type that shows only as the run reads it (a number
// read with fromJSON) is converted with int(), not with dec(string(x)),
// the conversion the general hint gives, which makes a decimal exponent
// that is refused too.
func TestPowerExponentFromJSONSaysInt(t *testing.T) {
	got := loadProblems(t, "name: y\ninvoice:\n  memo: 'string(dec(\"1.05\") ** fromJSON(deal.raw[\"cf\"])[\"years\"])'\n")
	want := "the exponent of a decimal's power is a whole number, and `fromJSON(deal.raw[\"cf\"])[\"years\"]` has a type that shows only as the run reads it: convert it, int(fromJSON(deal.raw[\"cf\"])[\"years\"])"
	if len(got) != 1 || !strings.Contains(got[0], want) || strings.Contains(got[0], "write dec(string(x))") {
		t.Errorf("got  %q\nwant one containing %q", got, want)
	}
	m := parse(t, "name: y\ninvoice:\n  memo: 'string(dec(\"1.05\") ** int(fromJSON(deal.raw[\"cf\"])[\"years\"]))'\n")
	ev := opsEvent()
	ev.Deal.Raw = map[string]json.RawMessage{"cf": json.RawMessage(`{"years": 3}`)}
	if inv, err := m.Map(ev); err != nil || inv.Memo != "1.157625" {
		t.Errorf("with int(): %q, %v; want 1.157625", inv.Memo, err)
	}
}

// A power of a number read with fromJSON is computed by expr with floats
// (jsonArithmetic takes + - * / only): dec(string(fromJSON(x)["rate"] **
// 2)) was 0.004900000000000001 for a rate of 0.07, and is refused at
// load as other floats through string() are, saying to raise the decimal.
func TestPowerOfAFromJSONNumberThroughStringIsRefused(t *testing.T) {
	for _, e := range []string{
		`dec(string(fromJSON(deal.raw[\"cf\"])[\"rate\"] ** 2))`,
		`dec(string(fromJSON(deal.raw[\"cf\"])[\"rate\"] ^ 2 * 100))`,
		`let r = fromJSON(deal.raw[\"cf\"])[\"rate\"] ** 2; dec(string(r))`,
	} {
		got := loadProblems(t, "name: y\ninvoice:\n  lines:\n    unit_price: \""+e+"\"\n")
		if len(got) != 1 || !strings.Contains(got[0], "is a float, and string() writes a float's binary approximation") ||
			!strings.Contains(got[0], "convert the number first and raise the decimal, exactly: dec(string(x)) ** 2") {
			t.Errorf("%s:\ngot %q", e, got)
		}
	}
	// Converted first, the power is exact.
	m := parse(t, "name: ok\ninvoice:\n  memo: 'string(dec(string(fromJSON(deal.raw[\"cf\"])[\"rate\"])) ** 2)'\n")
	ev := opsEvent()
	ev.Deal.Raw = map[string]json.RawMessage{"cf": json.RawMessage(`{"rate": 0.07}`)}
	if inv, err := m.Map(ev); err != nil || inv.Memo != "0.0049" {
		t.Errorf("dec(string(rate)) ** 2 = %q, %v; want 0.0049", inv.Memo, err)
	}
}
