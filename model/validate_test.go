package model

import (
	"errors"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// validated is the problems Validate finds in a EUR invoice of one line,
// totals computed, as text.
func validated(t *testing.T, l InvoiceLine) []string {
	t.Helper()
	inv := Invoice{Reference: "R", Customer: Customer{Name: "Acme"}, Currency: "EUR",
		IssueDate: NewDate(2026, 1, 14), DueDate: NewDate(2026, 2, 13), Lines: []InvoiceLine{l}}
	inv.ComputeTotals()
	var ve *ValidationError
	if err := inv.Validate(ValidateOptions{}); !errors.As(err, &ve) {
		t.Fatalf("Validate(%+v) = %v, want a *ValidationError", l, err)
	}
	out := make([]string, len(ve.Problems))
	for i, p := range ve.Problems {
		out[i] = p.Error()
	}
	return out
}

// A negative line amount is blamed on the discount only when there is
// one and the quantity and unit price are not negative: a negative
// quantity or unit price is the problem reported, alone.
func TestNegativeAmountIsBlamedOnTheDiscountOnlyWhenItIsTheCause(t *testing.T) {
	cases := []struct {
		line InvoiceLine
		want []string
	}{
		{InvoiceLine{Description: "x", Quantity: d("-1"), UnitPrice: d("100")},
			[]string{`invoice.lines[0].quantity: must be greater than 0 (got "-1")`}},
		// A line of quantity 0 (a free item) says how a mapping leaves it out.
		{InvoiceLine{Description: "x", Quantity: d("0"), UnitPrice: d("100")},
			[]string{"invoice.lines[0].quantity: must be greater than 0 (a quantity the deal's line item leaves empty or null is 0: check the CRM's line item; a line item of quantity 0 that is meant to be free is left out with `lines: {skip: item.quantity == 0}` in the mapping) (got \"0\")"}},
		{InvoiceLine{Description: "x", Quantity: d("1"), UnitPrice: d("-100")},
			[]string{`invoice.lines[0].unit_price: must not be negative (got "-100")`}},
		{InvoiceLine{Description: "x", Quantity: d("-1"), UnitPrice: d("100"), Discount: d("5")},
			[]string{`invoice.lines[0].quantity: must be greater than 0 (got "-1")`}},
		{InvoiceLine{Description: "x", Quantity: d("2"), UnitPrice: d("10"), Discount: d("25")},
			[]string{`invoice.lines[0].amount: is negative: the discount exceeds the line (got "-5")`}},
	}
	for _, c := range cases {
		if got := validated(t, c.line); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("quantity %s, unit price %s, discount %s:\ngot  %q\nwant %q", c.line.Quantity, c.line.UnitPrice, c.line.Discount, got, c.want)
		}
	}
}

// A negative price that is the deal's negative amount (a deal without
// line items is one line of it) says so: the deal is a credit, which
// dealsync does not make, not a line item to fix.
func TestNegativeDealAmountIsNamed(t *testing.T) {
	inv := Invoice{Reference: "R", Customer: Customer{Name: "Acme"}, Currency: "EUR",
		IssueDate: NewDate(2026, 1, 14), DueDate: NewDate(2026, 2, 13), Lines: []InvoiceLine{{Description: "x", Quantity: d("1"), UnitPrice: d("-500")}}}
	inv.ComputeTotals()
	err := inv.Validate(ValidateOptions{DealAmount: decimal.NewNullDecimal(d("-500.00"))})
	want := `invoice.lines[0].unit_price: must not be negative: the deal's amount (-500.00) is negative too; dealsync makes invoices, not credit notes, so a refund or credit of the deal is made in the ERP by hand (got "-500")`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Validate = %v\nwant it to contain %s", err, want)
	}
}

// A unit price with too many decimals (a CRM's, as the mapping passed it
// on) says how to round it in the mapping, with the function
// docs/mappings.md lists.
func TestTooManyDecimalsSaysHowToRound(t *testing.T) {
	got := validated(t, InvoiceLine{Description: "x", Quantity: d("9"), UnitPrice: d("11.1111111")})
	want := "invoice.lines[0].unit_price: has more than 6 decimal places: round it in the mapping, e.g. " +
		"`unit_price: round_to(item.unit_price, 6)` under lines, `round_to(deal.amount, 6)` under amount_line (got \"11.1111111\")"
	if len(got) != 1 || got[0] != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// An invoice without an issue date says where the built-in mapping reads
// it from, and its due date that it is computed from the missing one.
func TestAMissingIssueDateSaysWhereItComesFrom(t *testing.T) {
	inv := Invoice{Reference: "R", Customer: Customer{Name: "Acme"}, Currency: "EUR",
		Lines: []InvoiceLine{{Description: "x", Quantity: d("1"), UnitPrice: d("100")}}}
	inv.ComputeTotals()
	err := inv.Validate(ValidateOptions{})
	if err == nil || !strings.Contains(err.Error(), "invoice.issue_date: is required (the built-in mapping reads it from the deal's close date, else the event's occurred_at") ||
		!strings.Contains(err.Error(), "invoice.due_date: is required (the built-in mapping computes it from the issue date, which is missing)") {
		t.Errorf("Validate: %v", err)
	}
	inv.IssueDate = NewDate(2026, 1, 14)
	if err := inv.Validate(ValidateOptions{}); err == nil || strings.Contains(err.Error(), "issue date, which is missing") || !strings.Contains(err.Error(), "invoice.due_date: is required") {
		t.Errorf("Validate with an issue date: %v", err)
	}
}
