package model

import (
	"errors"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"golang.org/x/text/currency"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestCurrencyMinorUnitsAndRounding(t *testing.T) {
	cases := []struct {
		cur    Currency
		minor  int32
		in     string
		round  string
		format string
	}{
		{"JPY", 0, "1234.5", "1235", "1235"},
		{"EUR", 2, "10.005", "10.01", "10.01"},
		{"EUR", 2, "-10.005", "-10.01", "-10.01"}, // half away from zero
		{"EUR", 2, "12000", "12000", "12000.00"},
		{"KWD", 3, "1.2345", "1.235", "1.235"},
		{"USD", 2, "0.1", "0.1", "0.10"},
		{"IDR", 2, "1500000.555", "1500000.56", "1500000.56"}, // not whole rupiah, as CLDR has it
		{"CLF", 4, "12.34565", "12.3457", "12.3457"},
	}
	for _, c := range cases {
		if got := c.cur.MinorUnits(); got != c.minor {
			t.Errorf("%s minor units %d, want %d", c.cur, got, c.minor)
		}
		if got := c.cur.Round(d(c.in)); !got.Equal(d(c.round)) {
			t.Errorf("%s round(%s) = %s, want %s", c.cur, c.in, got, c.round)
		}
		if got := c.cur.Format(d(c.in)); got != c.format {
			t.Errorf("%s format(%s) = %s, want %s", c.cur, c.in, got, c.format)
		}
	}
}

// Minor units are ISO 4217's (List One, 2024), which the ERPs keep, and not
// CLDR's, which golang.org/x/text/currency has: the currencies listed under
// "CLDR differs" are every current one for which CLDR 32, the version in
// x/text, gives another number of decimals than ISO.
func TestMinorUnitsFollowISO4217(t *testing.T) {
	want := map[string]int32{
		"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "XOF": 0, "XPF": 0,
		"EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "HUF": 2, "TWD": 2, "CZK": 2,
		"KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3, "LYD": 3,
		"CLF": 4, "UYW": 4,
		// CLDR differs: 0 in CLDR.
		"AFN": 2, "ALL": 2, "AMD": 2, "COP": 2, "GYD": 2, "IDR": 2, "IRR": 2, "KPW": 2,
		"LAK": 2, "LBP": 2, "MGA": 2, "MMK": 2, "MNT": 2, "MUR": 2, "PKR": 2, "RSD": 2,
		"SLL": 2, "SOS": 2, "SYP": 2, "TZS": 2, "UZS": 2, "YER": 2,
		"IQD": 3,
		// Funds and metals have no minor unit in ISO: 2, as before.
		"XAU": 2, "XDR": 2, "XXX": 2,
	}
	for code, minor := range want {
		if got := Currency(code).MinorUnits(); got != minor {
			t.Errorf("%s minor units %d, want %d (ISO 4217)", code, got, minor)
		}
	}
	if got := Currency("jpy").MinorUnits(); got != 0 {
		t.Errorf("jpy minor units %d, want 0: the code's case does not matter", got)
	}
}

func TestParseCurrency(t *testing.T) {
	if c, err := ParseCurrency("eur"); err != nil || c != "EUR" {
		t.Fatalf("ParseCurrency(eur) = %q, %v", c, err)
	}
	for _, bad := range []string{"", "EURO", "XYZ1", "€", "QQQ"} {
		if _, err := ParseCurrency(bad); err == nil {
			t.Errorf("ParseCurrency(%q): want error", bad)
		}
	}
	// Current codes newer than x/text's data.
	for _, code := range []string{"ves", "VED", "MRU", "UYW", "SLE", "ZWG", "XCG"} {
		if c, err := ParseCurrency(code); err != nil || string(c) != strings.ToUpper(code) {
			t.Errorf("ParseCurrency(%q) = %q, %v", code, c, err)
		}
	}
	if c, _ := ParseCurrency("UYW"); c.MinorUnits() != 4 {
		t.Errorf("UYW has %d minor units, want 4", c.MinorUnits())
	}
	// Funds of List One are accepted: CLF is what Chilean contracts are
	// priced in, CHW the WIR franc Swiss firms invoice each other in.
	for _, code := range []string{"CLF", "CHW", "CHE", "BOV", "COU", "MXV", "USN", "UYI"} {
		if _, err := ParseCurrency(code); err != nil {
			t.Errorf("ParseCurrency(%q): %v, want the fund accepted", code, err)
		}
	}
}

// Only current codes name a currency an invoice can be in: x/text's
// ParseISO also takes the withdrawn ones (the Deutsche Mark, the peseta,
// the kuna, the lev since Bulgaria's euro) and List One's codes that are
// no money (XXX, XTS, the metals, the bond-market and accounting units).
func TestParseCurrencyRefusesWithdrawnAndNonMoneyCodes(t *testing.T) {
	withdrawn := []string{"DEM", "esp", "FRF", "ITL", "HRK", "BGN", "ANG", "SLL", "CUC", "ZWL", "VEF", "MRO", "STD", "BYR", "LTL"}
	for _, code := range withdrawn {
		_, err := ParseCurrency(code)
		if err == nil || !strings.Contains(err.Error(), strings.ToUpper(code)+" was withdrawn from ISO 4217") {
			t.Errorf("ParseCurrency(%q) = %v, want it refused as withdrawn", code, err)
		}
	}
	nonMoney := map[string]string{
		"XXX": "no currency", "xts": "testing", "XAU": "gold", "XAG": "silver", "XPD": "palladium", "XPT": "platinum",
		"XBA": "bond-market", "XBB": "bond-market", "XBC": "bond-market", "XBD": "bond-market",
		"XDR": "special drawing right", "XSU": "unit of account", "XUA": "unit of account", "XAD": "unit of account",
	}
	for code, what := range nonMoney {
		_, err := ParseCurrency(code)
		if err == nil || !strings.Contains(err.Error(), what) || !strings.Contains(err.Error(), "not a currency an invoice can be in") {
			t.Errorf("ParseCurrency(%q) = %v, want it refused as %s", code, err, what)
		}
	}
	if _, err := ParseCurrency("CNH"); err == nil || !strings.Contains(err.Error(), "CNY") {
		t.Errorf("ParseCurrency(CNH) = %v, want it refused, naming CNY", err)
	}
}

// listOne is ISO 4217 List One as of amendment 180: 178 codes, of which
// 164 are accepted. A code x/text does not know is one newer than its data
// (or a typo in the table).
func TestListOneIsISO4217ListOne(t *testing.T) {
	if len(listOne) != 178 {
		t.Errorf("listOne has %d codes, want 178 (List One after amendment 180)", len(listOne))
	}
	newer := map[string]bool{"VES": true, "VED": true, "MRU": true, "UYW": true, "SLE": true, "ZWG": true, "XCG": true, "XAD": true}
	accepted := 0
	for code := range listOne {
		if _, err := currency.ParseISO(code); err != nil && !newer[code] {
			t.Errorf("%s is in listOne but is neither known to x/text nor a newer code", code)
		}
		if _, err := ParseCurrency(code); err == nil {
			accepted++
		}
	}
	if accepted != 164 {
		t.Errorf("%d codes accepted, want 164 (178 less the 14 that are no money)", accepted)
	}
	for code := range nonMoney {
		if !listOne[code] {
			t.Errorf("nonMoney's %s is not in listOne", code)
		}
	}
	for code := range isoMinorUnits {
		if _, err := ParseCurrency(code); err != nil {
			t.Errorf("isoMinorUnits has %s, which ParseCurrency refuses: %v", code, err)
		}
	}
}

// An invoice in a withdrawn or non-money code does not validate: it would
// go to the ERP in that code.
func TestValidateRefusesWithdrawnCurrency(t *testing.T) {
	for _, code := range []Currency{"DEM", "XXX", "XTS", "XAU"} {
		inv := validInvoice()
		inv.Currency = code
		if err := inv.Validate(ValidateOptions{}); err == nil || !strings.Contains(err.Error(), "invoice.currency") {
			t.Errorf("invoice in %s: %v, want a currency problem", code, err)
		}
	}
}

// Totals are exact sums of the rounded line amounts: no float drift, no
// cent lost or invented.
func TestComputeTotalsExact(t *testing.T) {
	inv := Invoice{Currency: "EUR", Lines: []InvoiceLine{
		{Quantity: d("3"), UnitPrice: d("0.1"), TaxRate: d("19")},                         // 0.30, tax 0.057 → 0.06
		{Quantity: d("1"), UnitPrice: d("0.2"), TaxRate: d("19")},                         // 0.20, tax 0.038 → 0.04
		{Quantity: d("7"), UnitPrice: d("33.333"), Discount: d("0.331"), TaxRate: d("7")}, // 233.331-0.331 = 233.00, tax 16.31
	}}
	inv.ComputeTotals()
	want := []struct{ amount, tax string }{{"0.30", "0.06"}, {"0.20", "0.04"}, {"233.00", "16.31"}}
	for i, w := range want {
		if !inv.Lines[i].Amount.Equal(d(w.amount)) || !inv.Lines[i].TaxAmount.Equal(d(w.tax)) {
			t.Errorf("line %d: amount %s tax %s, want %s %s", i, inv.Lines[i].Amount, inv.Lines[i].TaxAmount, w.amount, w.tax)
		}
	}
	if !inv.Subtotal.Equal(d("233.50")) || !inv.TaxTotal.Equal(d("16.41")) || !inv.Total.Equal(d("249.91")) {
		t.Fatalf("totals %s + %s = %s", inv.Subtotal, inv.TaxTotal, inv.Total)
	}
	jpy := Invoice{Currency: "JPY", Lines: []InvoiceLine{{Quantity: d("3"), UnitPrice: d("333.5")}}}
	jpy.ComputeTotals()
	if !jpy.Total.Equal(d("1001")) { // 1000.5 → 1001
		t.Fatalf("JPY total %s", jpy.Total)
	}
}

// A discounted line is rounded as the CRMs round it: 15 % off 66.70 is
// 56.695, so the line is 56.70 (Salesforce's TotalPrice, the deal amount
// the subtotal is checked against), and the discount the ERP is sent is
// what that leaves off, 10.00, not 10.005 rounded to 10.01 (a line of
// 56.69). When quantity × price has more decimals than the currency, the
// discount is what the line leaves off that product rounded: 0.5 × 10.01
// with 5 % off is 4.75 (round(5.005 − 0.25025)), 0.26 off 5.01.
func TestComputeTotalsRoundsTheDiscountedLine(t *testing.T) {
	for _, c := range []struct {
		qty, price, discount string
		wantDiscount, want   string
	}{
		{"1", "66.70", "10.005", "10.00", "56.70"},
		{"3", "19.99", "8.9955", "9.00", "50.97"}, // 15 % of 59.97
		{"1", "10.00", "0.5", "0.50", "9.50"},
		{"3", "0.3333", "0.15", "0.15", "0.85"}, // 0.9999 − 0.15 = 0.8499, off 1.00
		{"0.5", "10.01", "0.25025", "0.26", "4.75"},
	} {
		inv := Invoice{Currency: "EUR", Lines: []InvoiceLine{{Quantity: d(c.qty), UnitPrice: d(c.price), Discount: d(c.discount)}}}
		inv.ComputeTotals()
		l := inv.Lines[0]
		if !l.Discount.Equal(d(c.wantDiscount)) || !l.Amount.Equal(d(c.want)) || !inv.Total.Equal(d(c.want)) {
			t.Errorf("%s × %s − %s: discount %s amount %s total %s, want %s, %s", c.qty, c.price, c.discount, l.Discount, l.Amount, inv.Total, c.wantDiscount, c.want)
		}
		if q := l.Quantity.Mul(l.UnitPrice); !Currency("EUR").Round(q.Sub(l.Discount)).Equal(l.Amount) {
			t.Errorf("%s × %s: quantity × price − discount = %s, the line says %s: an ERP would book another amount", c.qty, c.price, q.Sub(l.Discount), l.Amount)
		}
	}
}

func validInvoice() Invoice {
	inv := Invoice{
		Reference: "D-1", Currency: "EUR", Customer: Customer{Name: "Acme"},
		IssueDate: NewDate(2026, 11, 20), DueDate: NewDate(2026, 12, 20),
		Lines: []InvoiceLine{{Description: "Pro", Quantity: d("1"), UnitPrice: d("100")}},
	}
	inv.ComputeTotals()
	return inv
}

func TestValidateNamesEveryField(t *testing.T) {
	if err := (&Invoice{}).Validate(ValidateOptions{}); err == nil {
		t.Fatal("empty invoice validated")
	} else {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("want *ValidationError, got %T", err)
		}
		for _, f := range []string{"invoice.reference", "invoice.customer.name", "invoice.currency", "invoice.issue_date", "invoice.due_date", "invoice.lines"} {
			if !strings.Contains(err.Error(), f) {
				t.Errorf("message does not name %s: %v", f, err)
			}
		}
	}
	inv := validInvoice()
	if err := inv.Validate(ValidateOptions{}); err != nil {
		t.Fatalf("valid invoice: %v", err)
	}
	inv.Lines[0].Quantity = d("0")
	inv.DueDate = NewDate(2026, 1, 1)
	err := inv.Validate(ValidateOptions{})
	if err == nil || !strings.Contains(err.Error(), "invoice.lines[0].quantity") || !strings.Contains(err.Error(), "invoice.due_date") {
		t.Fatalf("want quantity and due date problems, got %v", err)
	}
}

func TestValidateDealAmountTolerance(t *testing.T) {
	inv := validInvoice() // subtotal 100.00
	amount := func(s string) decimal.NullDecimal { return decimal.NewNullDecimal(d(s)) }
	if err := inv.Validate(ValidateOptions{DealAmount: amount("100.00")}); err != nil {
		t.Fatalf("exact match: %v", err)
	}
	if err := inv.Validate(ValidateOptions{DealAmount: amount("100.01")}); err == nil || !strings.Contains(err.Error(), "invoice.subtotal") {
		t.Fatalf("a cent off with zero tolerance must fail naming the subtotal, got %v", err)
	}
	if err := inv.Validate(ValidateOptions{DealAmount: amount("100.01"), Tolerance: d("0.01")}); err != nil {
		t.Fatalf("within tolerance: %v", err)
	}
	// The amount is held in the currency's minor units, as the subtotal
	// is: 99.999 is 100.00, 100.005 is 100.01.
	if err := inv.Validate(ValidateOptions{DealAmount: amount("99.999")}); err != nil {
		t.Fatalf("99.999 against a subtotal of 100.00: %v", err)
	}
	if err := inv.Validate(ValidateOptions{DealAmount: amount("100.005")}); err == nil || !strings.Contains(err.Error(), "the deal amount is 100.01 EUR (the CRM's 100.005, rounded to the currency's minor units)") {
		t.Fatalf("100.005 against 100.00: %v; want a problem naming both forms of the amount", err)
	}
}

// The amount check prints the subtotal, the deal amount and the tolerance
// with the currency's minor units and its code, as the invoice shows
// them: 100.50 EUR, not 100.5; 1000 JPY.
func TestAmountCheckPrintsAmountsInTheCurrency(t *testing.T) {
	for _, c := range []struct {
		currency        Currency
		price, amount   string
		tolerance, want string
	}{
		{"EUR", "100.50", "100", "0",
			`invoice.subtotal: lines add up to 100.50 EUR but the deal amount is 100.00 EUR (tolerance 0.00 EUR) (got "100.50")`},
		{"JPY", "1000", "1200", "10",
			`invoice.subtotal: lines add up to 1000 JPY but the deal amount is 1200 JPY (tolerance 10 JPY) (got "1000")`},
		{"KWD", "12.5", "12.4", "0.005",
			`invoice.subtotal: lines add up to 12.500 KWD but the deal amount is 12.400 KWD (tolerance 0.005 KWD) (got "12.500")`},
		// A tolerance finer than the minor units is shown as it is.
		{"EUR", "10", "10.02", "0.015",
			`lines add up to 10.00 EUR but the deal amount is 10.02 EUR (tolerance 0.015 EUR)`},
	} {
		inv := Invoice{Reference: "R", Customer: Customer{Name: "Acme"}, Currency: c.currency,
			IssueDate: NewDate(2026, 1, 14), DueDate: NewDate(2026, 2, 13),
			Lines: []InvoiceLine{{Description: "x", Quantity: d("1"), UnitPrice: d(c.price)}}}
		inv.ComputeTotals()
		err := inv.Validate(ValidateOptions{DealAmount: decimal.NewNullDecimal(d(c.amount)), Tolerance: d(c.tolerance)})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant it to say %s", c.currency, err, c.want)
		}
	}
}

func TestDateJSON(t *testing.T) {
	var dt Date
	if err := dt.UnmarshalJSON([]byte(`"2026-11-20"`)); err != nil || dt.String() != "2026-11-20" {
		t.Fatalf("%v %v", dt, err)
	}
	if err := dt.UnmarshalJSON([]byte(`"2026-11-20T23:30:00Z"`)); err != nil || dt.String() != "2026-11-20" {
		t.Fatalf("%v %v", dt, err)
	}
	if err := dt.UnmarshalJSON([]byte(`"20/11/2026"`)); err == nil {
		t.Fatal("bad date accepted")
	}
	if b, _ := NewDate(2026, 2, 28).AddDays(1).MarshalJSON(); string(b) != `"2026-03-01"` {
		t.Fatalf("AddDays: %s", b)
	}
}

func TestExactString(t *testing.T) {
	for in, want := range map[string]string{
		"1.5E3": "1500", "1.50": "1.5", "-0.0700": "-0.07", "0.00": "0", "12000": "12000", "0.1234": "0.1234",
	} {
		if got := ExactString(d(in)); got != want {
			t.Errorf("ExactString(%s) = %q, want %q", in, got, want)
		}
	}
	decimal.UseScientificNotation = true
	defer func() { decimal.UseScientificNotation = false }()
	if got := ExactString(d("1500")); got != "1500" {
		t.Errorf("ExactString(1500) with scientific notation on = %q", got)
	}
}

// A line a discount takes whole is billed 0 when quantity × unit price is
// in whole minor units; when it ends in half a minor unit (1.5 × 33.33 =
// 49.995, 3 × 333.5 yen) no discount of whole minor units leaves the ERP
// 0: the line is refused at validation, naming its discount, rather than
// by the ERP at every retry (422, "amount is 0.00 but quantity ×
// unit_price − discount is -0.01").
func TestValidateRefusesAFreeLineNoDiscountLeavesAtZero(t *testing.T) {
	for _, c := range []struct {
		cur, qty, price string
		refused         bool
	}{
		{"EUR", "2", "33.33", false},
		{"EUR", "1.5", "33.33", true},
		{"EUR", "0.5", "10.01", true},
		{"JPY", "3", "333.5", true},
		{"JPY", "2", "333.5", false},
	} {
		inv := validInvoice()
		inv.Currency = Currency(c.cur)
		free := InvoiceLine{Description: "Onboarding (free)", Quantity: d(c.qty), UnitPrice: d(c.price)}
		free.Discount = free.Quantity.Mul(free.UnitPrice) // 100 % off
		inv.Lines = append(inv.Lines, free)
		inv.ComputeTotals()
		err := inv.Validate(ValidateOptions{})
		if got := err != nil && strings.Contains(err.Error(), "invoice.lines[1].discount") && strings.Contains(err.Error(), "whole "+c.cur+" minor units"); got != c.refused || (!c.refused && err != nil) {
			t.Errorf("%s %s × %s at 100 %% off: %v; want refused %v", c.cur, c.qty, c.price, err, c.refused)
		}
	}
}

// A unit price is judged by its value: one computed by a division (90 as
// 90.0000000000000000) is fine; one with more decimals than the currency
// allows plus 4 is not, naming the field.
func TestValidateUnitPriceDecimals(t *testing.T) {
	inv := validInvoice()
	inv.Lines[0].UnitPrice = d("100").Sub(d("100").Mul(d("10")).Div(d("100"))) // 90, exponent -16
	inv.ComputeTotals()
	if err := inv.Validate(ValidateOptions{}); err != nil {
		t.Fatalf("a computed 90: %v", err)
	}
	inv.Lines[0].UnitPrice = d("90.0000001") // EUR: 2 + 4 decimals allowed
	inv.ComputeTotals()
	if err := inv.Validate(ValidateOptions{}); err == nil || !strings.Contains(err.Error(), "invoice.lines[0].unit_price") {
		t.Fatalf("7 decimals in EUR: %v, want a problem naming the unit price", err)
	}
}

// A due date past the year 9999 (a placeholder close date of 9999-12-31
// plus net 30) is a validation problem naming the field: it passed, and
// the run then failed decoding "10000-01-30".
func TestValidateRefusesDatesPastTheYear9999(t *testing.T) {
	inv := validInvoice()
	inv.IssueDate = NewDate(9999, 12, 31)
	inv.DueDate = inv.IssueDate.AddDays(30)
	err := inv.Validate(ValidateOptions{})
	if err == nil || !strings.Contains(err.Error(), "invoice.due_date") || !strings.Contains(err.Error(), "after the year 9999") {
		t.Fatalf("got %v", err)
	}
}

// A tax rate of more than 14 decimals is applied exactly: the tax of 1.00
// at 0.4999999999999999999 % is 0.00 (Div rounded the product to 16
// digits, and the tax came to 0.01).
func TestComputeTotalsTaxExactly(t *testing.T) {
	inv := Invoice{Currency: "EUR", Lines: []InvoiceLine{{Quantity: d("1"), UnitPrice: d("1.00"), TaxRate: d("0.4999999999999999999")}}}
	inv.ComputeTotals()
	if !inv.Lines[0].TaxAmount.Equal(d("0")) {
		t.Fatalf("tax %s, want 0", inv.Lines[0].TaxAmount)
	}
}
