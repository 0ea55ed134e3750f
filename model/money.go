package model

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
	"golang.org/x/text/currency"
)

// Currency is an ISO 4217 alphabetic code such as "EUR".
type Currency string

// ParseCurrency validates an ISO 4217 code, accepting any letter case.
func ParseCurrency(s string) (Currency, error) {
	u, err := currency.ParseISO(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("%q is not an ISO 4217 currency code", s)
	}
	return Currency(u.String()), nil
}

// MinorUnits is the number of decimal places the currency uses on invoices
// (JPY 0, EUR 2, KWD 3), from CLDR's ISO 4217 data.
func (c Currency) MinorUnits() int32 {
	u, err := currency.ParseISO(string(c))
	if err != nil {
		return 2
	}
	scale, _ := currency.Standard.Rounding(u)
	return int32(scale)
}

// Round rounds an amount to the currency's minor units, half away from zero
// (commercial rounding, what invoices and ERPs use).
func (c Currency) Round(d decimal.Decimal) decimal.Decimal {
	return d.Round(c.MinorUnits())
}

// Format renders an amount with exactly the currency's minor units, e.g.
// "12000.00" for EUR and "1500" for JPY.
func (c Currency) Format(d decimal.Decimal) string {
	return d.StringFixed(c.MinorUnits())
}

// ExactString renders d with all its significant digits and no exponent
// ("1.5E3" → "1500", "1.50" → "1.5", "-0.0700" → "-0.07"), whatever
// decimal's package-level formatting switches say. Connectors use it for
// quantities, unit prices and rates that must reach the vendor unrounded.
func ExactString(d decimal.Decimal) string {
	e := d.Exponent()
	if e >= 0 {
		return d.StringFixed(0)
	}
	s := strings.TrimRight(d.StringFixed(-e), "0")
	return strings.TrimSuffix(s, ".")
}
