package model

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
	"golang.org/x/text/currency"
)

// Currency is an ISO 4217 alphabetic code such as "EUR".
type Currency string

// ParseCurrency validates a currency code an invoice can be in, accepting
// any letter case: a current ISO 4217 code (List One, see listOne) that
// names money, so neither a withdrawn code (DEM, HRK, BGN: List Three) nor
// one of List One's codes that are no currency (nonMoney: XXX, XTS, the
// precious metals, the bond-market and accounting units).
func ParseCurrency(s string) (Currency, error) {
	code := strings.ToUpper(strings.TrimSpace(s))
	if listOne[code] {
		if what, ok := nonMoney[code]; ok {
			return "", fmt.Errorf("%q is %s, not a currency an invoice can be in (ISO 4217 lists it with the currencies)", s, what)
		}
		return Currency(code), nil
	}
	if code == "CNH" {
		return "", fmt.Errorf("%q is not an ISO 4217 currency code: the offshore yuan is CNY there", s)
	}
	// x/text's table has the withdrawn codes too (and, from CLDR, a few
	// historical ones ISO 4217 never listed).
	if _, err := currency.ParseISO(code); err == nil {
		return "", fmt.Errorf("%q is not a current ISO 4217 currency code: %s was withdrawn from ISO 4217 (use the code of the currency that replaced it)", s, code)
	}
	return "", fmt.Errorf("%q is not an ISO 4217 currency code", s)
}

// listOne is ISO 4217 List One (current currencies, funds and other
// units) as amended up to amendment 180 (BGN to List Three, 2026-01-01):
// 178 codes, among them the fund codes (BOV, CHE, CHW, CLF, COU, MXV, USN,
// UYI, UYW), which are accepted, and the nonMoney codes, which are not.
// golang.org/x/text/currency, whose data is CLDR 32's (2017), is not the
// list: it also has the withdrawn codes (ParseISO accepts DEM and HRK) and
// lacks the newer ones (VES, VED, MRU, UYW, SLE, ZWG, XCG, XAD). Remove a
// code when an ISO 4217 amendment moves it to List Three, add one when an
// amendment adds it (and to isoMinorUnits if its minor unit is not 2).
var listOne = codeSet(`
	AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BOV
	BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP
	CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF
	GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
	KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT
	MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
	PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE
	SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX
	USD USN UYI UYU UYW UZS VED VES VND VUV WST XAD XAF XAG XAU XBA XBB XBC
	XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG`)

// nonMoney are the codes of List One that no customer is invoiced in: the
// "no currency" and testing codes, the precious metals (an amount of XAU
// is troy ounces of gold), the European bond-market units, and the units
// of account of the IMF, ALBA, the African Development Bank and the Arab
// Monetary Fund, which only those institutions and their members settle
// in and no ERP dealsync writes to books an invoice in.
var nonMoney = map[string]string{
	"XXX": "ISO 4217's code for \"no currency\"",
	"XTS": "ISO 4217's code reserved for testing",
	"XAU": "gold (troy ounces)", "XAG": "silver (troy ounces)",
	"XPD": "palladium (troy ounces)", "XPT": "platinum (troy ounces)",
	"XBA": "a bond-market unit (EURCO)", "XBB": "a bond-market unit (E.M.U.-6)",
	"XBC": "a bond-market unit (E.U.A.-9)", "XBD": "a bond-market unit (E.U.A.-17)",
	"XDR": "the IMF's special drawing right, a unit of account",
	"XSU": "the sucre, ALBA's unit of account",
	"XUA": "the African Development Bank's unit of account",
	"XAD": "the Arab Monetary Fund's accounting dinar, a unit of account",
}

func codeSet(codes string) map[string]bool {
	set := map[string]bool{}
	for _, c := range strings.Fields(codes) {
		set[c] = true
	}
	return set
}

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

// Amount renders an amount with the currency's minor units and its code,
// as an invoice shows it: "100.50 EUR", "1000 JPY", "0.005 KWD"; an
// amount with more decimals than the minor units keeps them all
// ("99.999 EUR"), as rounding it would show another amount.
func (c Currency) Amount(d decimal.Decimal) string {
	text := c.Format(d)
	if !d.Equal(d.Round(c.MinorUnits())) {
		text = ExactString(d)
	}
	if c == "" {
		return text
	}
	return text + " " + string(c)
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
