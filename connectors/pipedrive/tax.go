package pipedrive

import (
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/model"
)

// Pipedrive's tax_method of a deal product.
const (
	taxExclusive = "exclusive" // item_price is net, the tax comes on top
	taxInclusive = "inclusive" // item_price (and an amount discount) include the tax
	taxNone      = "none"      // no tax
)

// lineTotals is what model.Invoice.ComputeTotals makes of li at rate
// percent of tax in cur, its discount taken as the mappings take it (the
// amount plus the percentage of quantity × unit price): the line's amount
// (net of discount, before tax) and its tax.
func lineTotals(cur model.Currency, li model.LineItem, rate decimal.Decimal) (amount, tax decimal.Decimal) {
	inv := model.Invoice{Currency: cur, Lines: []model.InvoiceLine{{
		Quantity: li.Quantity, UnitPrice: li.UnitPrice, Discount: li.DiscountAmount(), TaxRate: rate,
	}}}
	inv.ComputeTotals()
	return inv.Lines[0].Amount, inv.Lines[0].TaxAmount
}

// netUnitDecimals is the most decimals a net unit price gets: Xero keeps
// 4 (unitdp=4) and refuses finer prices; QuickBooks and NetSuite keep more.
const netUnitDecimals = 4

// netOfTax turns gross, a line read from a deal product whose item_price
// and amount discount include rate percent of tax (tax_method inclusive),
// into a line of net prices, as dealsync's lines are: the ERP adds the tax
// to them. The net line is chosen so that its amount plus its tax, both
// rounded to cur's minor units as model.Invoice.ComputeTotals rounds them,
// is the amount the gross line bills; its unit price has at most
// netUnitDecimals decimals, which every ERP keeps.
//
// Not every gross amount can be reached: at 19 %, net 80.71 comes to 96.04
// and 80.72 to 96.06, so no net line bills 96.05. Such a line gets the
// largest net amount that bills less (80.71, billing 96.04): one minor
// unit less than Pipedrive shows for the line, never more.
//
// The unit price is item_price / (1 + rate/100); a percentage discount
// stays the percentage, an amount discount is taken net of tax. When
// rounding then misses the net amount, the line gets the unit price that
// makes it, or the net amount off as its discount. It returns the net line
// and the tax the line is taken to include (its gross amount less its net
// amount), which the deal value, counting the line with its tax, is
// lowered by.
func netOfTax(cur model.Currency, gross model.LineItem, rate decimal.Decimal) (model.LineItem, decimal.Decimal, error) {
	if rate.IsZero() {
		return gross, decimal.Zero, nil
	}
	minor := cur.MinorUnits()
	unit := decimal.New(1, -minor)
	target, _ := lineTotals(cur, gross, decimal.Zero) // what the deal bills for the line
	factor := decimal.NewFromInt(1).Add(rate.Shift(-2))
	total := func(n decimal.Decimal) decimal.Decimal {
		a, t := lineTotals(cur, model.LineItem{Quantity: decimal.NewFromInt(1), UnitPrice: n}, rate)
		return a.Add(t)
	}

	// The net amount: the total grows with it, by one minor unit or more
	// a step, so the largest one whose total is not over target is next to
	// target / factor.
	net := cur.Round(target.Div(factor))
	for total(net).GreaterThan(target) {
		net = net.Sub(unit)
	}
	for total(net.Add(unit)).LessThanOrEqual(target) {
		net = net.Add(unit)
	}

	unitPrice := gross.UnitPrice.Div(factor).Round(netUnitDecimals)
	natural := gross
	natural.UnitPrice = unitPrice
	natural.Discount = cur.Round(gross.Discount.Div(factor))
	candidates := []model.LineItem{natural}
	if gross.Discount.IsZero() && gross.DiscountPercent.IsZero() && !gross.Quantity.IsZero() {
		exact := gross
		exact.UnitPrice = net.Div(gross.Quantity).Round(netUnitDecimals)
		candidates = append(candidates, exact)
	}
	if off := cur.Round(gross.Quantity.Mul(unitPrice)).Sub(net); !off.IsNegative() {
		exact := gross
		exact.UnitPrice, exact.Discount, exact.DiscountPercent = unitPrice, off, decimal.Zero
		candidates = append(candidates, exact)
	}
	if gross.Quantity.IsPositive() {
		// A large quantity at a small price: the unit price rounded up,
		// and the difference off as a discount (never negative).
		up := net.Div(gross.Quantity).RoundCeil(netUnitDecimals)
		exact := gross
		exact.UnitPrice, exact.Discount, exact.DiscountPercent = up, cur.Round(gross.Quantity.Mul(up)).Sub(net), decimal.Zero
		candidates = append(candidates, exact)
	}
	want := total(net)
	for _, c := range candidates {
		if a, t := lineTotals(cur, c, rate); a.Equal(net) && a.Add(t).Equal(want) {
			return c, target.Sub(net), nil
		}
	}
	return model.LineItem{}, decimal.Zero, fmt.Errorf("no unit price of at most %d decimals gives its net amount %s (%s with %s%% tax) for quantity %s",
		netUnitDecimals, cur.Format(net), cur.Format(want), rate, gross.Quantity)
}
