package model

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// FieldError is one problem with one field, named by its JSON path
// (e.g. "invoice.lines[0].quantity").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Value   string `json:"value,omitempty"`
}

func (e FieldError) Error() string {
	if e.Value != "" {
		return fmt.Sprintf("%s: %s (got %q)", e.Field, e.Message, e.Value)
	}
	return e.Field + ": " + e.Message
}

// ValidationError lists every problem found in an invoice.
type ValidationError struct {
	Problems []FieldError `json:"problems"`
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return "invalid invoice: " + strings.Join(msgs, "; ")
}

// ValidateOptions tune Validate.
type ValidateOptions struct {
	// DealAmount, when valid, must equal the invoice subtotal within Tolerance.
	DealAmount decimal.NullDecimal
	Tolerance  decimal.Decimal
}

// CheckDates refuses dates past the year 9999, which do not read back (a
// placeholder close date of 9999-12-31 plus the payment terms, say): the
// map step checks them before its result is recorded, as that record
// would not decode. A *ValidationError, or nil.
func (inv *Invoice) CheckDates() error {
	if ps := inv.dateProblems(); len(ps) > 0 {
		return &ValidationError{Problems: ps}
	}
	return nil
}

func (inv *Invoice) dateProblems() []FieldError {
	var ps []FieldError
	for _, d := range []struct {
		field string
		date  Date
	}{{"issue_date", inv.IssueDate}, {"due_date", inv.DueDate}} {
		if !d.date.IsZero() && d.date.Time().Year() > 9999 {
			ps = append(ps, FieldError{Field: "invoice." + d.field, Message: "is after the year 9999 (a placeholder close date?)", Value: d.date.String()})
		}
	}
	return ps
}

// Validate checks an invoice whose totals have been computed. It returns a
// *ValidationError naming every offending field, or nil.
func (inv *Invoice) Validate(o ValidateOptions) error {
	var ps []FieldError
	add := func(field, msg, value string) {
		ps = append(ps, FieldError{Field: "invoice." + field, Message: msg, Value: value})
	}
	if strings.TrimSpace(inv.Reference) == "" {
		add("reference", "is required", "")
	}
	if strings.TrimSpace(inv.Customer.Name) == "" {
		add("customer.name", "is required", "")
	}
	if inv.Currency == "" {
		add("currency", "is required (the deal has no currency and the mapping sets no default: set defaults.currency in a mapping file, the built-in mapping has none; for Salesforce, the source's fetch.default_currency or an org's accounts.<org>.default_currency serve a single-currency org)", "")
	} else if _, err := ParseCurrency(string(inv.Currency)); err != nil {
		add("currency", err.Error(), string(inv.Currency))
	}
	ps = append(ps, inv.dateProblems()...)
	if inv.IssueDate.IsZero() {
		// The built-in mapping's is coalesce(deal.close_date,
		// event.occurred_on).
		add("issue_date", "is required (the built-in mapping reads it from the deal's close date, else the event's occurred_at, and gives none for a deal with neither; a mapping file's issue_date gave none)", "")
	}
	if inv.DueDate.IsZero() {
		if inv.IssueDate.IsZero() {
			add("due_date", "is required (the built-in mapping computes it from the issue date, which is missing)", "")
		} else {
			add("due_date", "is required", "")
		}
	} else if !inv.IssueDate.IsZero() && inv.DueDate.Before(inv.IssueDate) {
		add("due_date", "is before issue_date "+inv.IssueDate.String(), inv.DueDate.String())
	}
	if len(inv.Lines) == 0 {
		add("lines", "at least one line is required (the deal has no line items and no amount)", "")
	}
	minor := inv.Currency.MinorUnits()
	for i, l := range inv.Lines {
		f := fmt.Sprintf("lines[%d].", i)
		if strings.TrimSpace(l.Description) == "" {
			add(f+"description", "is required", "")
		}
		switch {
		case l.Quantity.IsZero():
			add(f+"quantity", "must be greater than 0 (a quantity the deal's line item leaves empty or null is 0: check the CRM's line item; a line item of quantity 0 that is meant to be free is left out with `lines: {skip: item.quantity == 0}` in the mapping)", l.Quantity.String())
		case !l.Quantity.IsPositive():
			add(f+"quantity", "must be greater than 0", l.Quantity.String())
		}
		if l.UnitPrice.IsNegative() {
			msg := "must not be negative"
			if o.DealAmount.Valid && o.DealAmount.Decimal.IsNegative() {
				// A deal without line items is one line of its amount: the
				// price is the deal's, not a line item's.
				amount := o.DealAmount.Decimal
				msg += fmt.Sprintf(": the deal's amount (%s) is negative too; dealsync makes invoices, not credit notes, so a refund or credit of the deal is made in the ERP by hand", amount.StringFixed(max(0, -amount.Exponent())))
			}
			add(f+"unit_price", msg, l.UnitPrice.String())
		}
		if l.Discount.IsNegative() {
			add(f+"discount", "must not be negative", l.Discount.String())
		}
		if l.Amount.IsNegative() {
			// Blamed on the discount only when it is what makes the line
			// negative: a negative quantity or unit price is reported
			// above, as the cause.
			switch {
			case l.Discount.IsPositive() && !l.Quantity.IsNegative() && !l.UnitPrice.IsNegative():
				add(f+"amount", "is negative: the discount exceeds the line", l.Amount.String())
			case !l.Quantity.IsNegative() && !l.UnitPrice.IsNegative():
				add(f+"amount", "is negative (quantity × unit_price − discount)", l.Amount.String())
			}
		} else if inv.Currency != "" && l.Amount.IsZero() && l.Discount.IsPositive() {
			// ComputeTotals makes the ERP's quantity × price − discount,
			// rounded, the line's amount, but for a line the discount
			// takes whole whose quantity × price ends in half a minor
			// unit (1.5 × 33.33 = 49.995): no discount of whole minor
			// units leaves 0 (50.00 leaves -0.01, 49.99 leaves 0.01),
			// and the ERP would refuse the line at every retry.
			gross := l.Quantity.Mul(l.UnitPrice)
			if left := inv.Currency.Round(gross.Sub(l.Discount)); !left.IsZero() {
				add(f+"discount", fmt.Sprintf("takes the whole line, whose quantity × unit_price (%s) is not in whole %s minor units: an ERP bills it %s, not 0, whatever discount of whole minor units it is sent; "+
					"round the unit price (or the quantity) so that their product is in whole minor units, or leave the free line out", gross, inv.Currency, left), l.Discount.String())
			}
		}
		if l.TaxRate.IsNegative() {
			add(f+"tax_rate", "must not be negative", l.TaxRate.String())
		}
		// By value, not by exponent: a division gives 90 as
		// 90.0000000000000000, which has no more decimals than 90.
		if inv.Currency != "" && !l.UnitPrice.Equal(l.UnitPrice.Truncate(minor+4)) {
			add(f+"unit_price", fmt.Sprintf("has more than %d decimal places: round it in the mapping, e.g. `unit_price: round_to(item.unit_price, %d)` under lines, `round_to(deal.amount, %d)` under amount_line",
				minor+4, minor+4, minor+4), l.UnitPrice.String())
		}
	}
	if o.DealAmount.Valid && len(inv.Lines) > 0 {
		// The subtotal is in the currency's minor units, and so is the
		// amount it is held to: a deal of 99.999 EUR is invoiced 100.00.
		amount := o.DealAmount.Decimal
		if inv.Currency != "" {
			amount = inv.Currency.Round(amount)
		}
		if diff := inv.Subtotal.Sub(amount).Abs(); diff.GreaterThan(o.Tolerance) {
			// Both in the currency's minor units, with its code (100.50
			// EUR, 1000 JPY): what the invoice and the CRM show.
			cur := inv.Currency
			given := cur.Amount(amount)
			if !amount.Equal(o.DealAmount.Decimal) {
				given += " (the CRM's " + ExactString(o.DealAmount.Decimal) + ", rounded to the currency's minor units)"
			}
			add("subtotal", fmt.Sprintf("lines add up to %s but the deal amount is %s (tolerance %s)",
				cur.Amount(inv.Subtotal), given, cur.Amount(o.Tolerance)), cur.Format(inv.Subtotal))
		}
	}
	if len(ps) > 0 {
		return &ValidationError{Problems: ps}
	}
	return nil
}
