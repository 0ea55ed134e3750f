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
	code := strings.ToUpper(strings.TrimSpace(s))
	if newerCodes[code] {
		return Currency(code), nil
	}
	u, err := currency.ParseISO(code)
	if err != nil {
		return "", fmt.Errorf("%q is not an ISO 4217 currency code", s)
	}
	return Currency(u.String()), nil
}

// newerCodes are current ISO 4217 codes that golang.org/x/text/currency's
// data (CLDR 32, 2017) does not know: the bolívar soberano (VES, 2018) and
// digital (VED, 2021), the ouguiya (MRU, 2018), the unidad previsional
// (UYW, 2018), the leone (SLE, 2022), the Zimbabwe Gold (ZWG, 2024) and the
// Caribbean guilder (XCG, 2025). Add a code when an amendment of ISO 4217
// introduces one that x/text lacks.
var newerCodes = map[string]bool{"VES": true, "VED": true, "MRU": true, "UYW": true, "SLE": true, "ZWG": true, "XCG": true}

// MinorUnits is the number of decimal places the currency uses on invoices
// (JPY 0, EUR 2, KWD 3, CLF 4): ISO 4217's minor unit, which the ERPs
// keep (NetSuite at most 2). See isoMinorUnits.
func (c Currency) MinorUnits() int32 {
	if n, ok := isoMinorUnits[strings.ToUpper(string(c))]; ok {
		return n
	}
	return 2
}

// isoMinorUnits lists the currencies whose minor unit in ISO 4217 is not 2,
// from ISO 4217 List One (current currencies and funds) as of 2024; every
// other code has 2. Those are the currencies with 2 in List One, the funds
// and precious metals that List One gives no minor unit (XAU, XDR, XXX:
// "N.A."), and the withdrawn codes of List Three, which give none either
// (CLDR gives some of them 0, e.g. ITL and ESP).
//
// golang.org/x/text/currency's rounding is CLDR's (version 32), the
// decimals a currency is commonly written with: it says 0 where ISO says 2
// for 22 current currencies (AFN, ALL, AMD, COP, GYD, IDR, IRR, KPW, LAK,
// LBP, MGA, MMK, MNT, MUR, PKR, RSD, SLL, SOS, SYP, TZS, UZS, YER) and 0
// where ISO says 3 for IQD, and the ERPs, which keep ISO's decimals, would
// not round those amounts as it does. ISO's own short list is kept here
// rather than exceptions to CLDR's: it is no longer than the exceptions,
// can be checked against the standard line by line, and does not change
// when x/text's CLDR data does. Add a code when an ISO 4217 amendment
// gives a new currency other than 2 decimals.
var isoMinorUnits = map[string]int32{
	// 0 decimals.
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
	"RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	// 3 decimals.
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	// 4 decimals: Chile's and Uruguay's units of account.
	"CLF": 4, "UYW": 4,
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
