package pipedrive

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/model"
)

// checkLine holds a deal product against what Pipedrive says of it, before
// it becomes an invoice line: its currency must be the deal's, and its sum
// (the line's total, which Pipedrive computes) must be the total dealsync
// computes for li, the line as read (prices as Pipedrive gives them, with
// their tax for tax_method inclusive). Pipedrive documents neither how an
// amount discount applies (off the line, or off each unit) nor whether a
// line's sum counts exclusive tax, so the sum settles both per line:
//
//   - sum = quantity × item_price − discount: the discount is off the line,
//     as read;
//   - sum = quantity × (item_price − discount): the discount is off each
//     unit, and li's discount becomes quantity × discount;
//   - for tax_method exclusive, either total with rate percent added: the
//     sum counts the tax the ERP adds.
//
// Sums are compared rounded to the currency's minor units, within one
// minor unit (Pipedrive rounds a percentage discount its own way). A sum
// none of these explains fails the run, naming the line and both totals,
// rather than invoicing a line dealsync cannot account for. A product
// without a sum or a currency (an older answer) is taken as read.
//
// taxInSum is the exclusive tax the sum counts, as it counts it (the sum
// less the line's net total; 0 when it counts none): the deal's value,
// Pipedrive's total of the sums, counts it too (FetchDeal).
func checkLine(dealID string, p pdDealProduct, cur model.Currency, li *model.LineItem, rate decimal.Decimal) (taxInSum decimal.Decimal, err error) {
	name := fmt.Sprintf("deal %s product line %s (%q)", dealID, p.ID, p.Name)
	if c := strings.TrimSpace(p.Currency); c != "" && cur != "" && !strings.EqualFold(c, string(cur)) {
		return decimal.Zero, permanent("%s is priced in %s but the deal is in %s: dealsync invoices a deal in its own currency and would bill the line's quantity %s at unit price %s in %s, not in %s. "+
			"Make the deal's and its products' currencies agree in Pipedrive (a deal's products take its currency when they are added to it), then retry the run (dealsync runs retry)",
			name, strings.ToUpper(c), cur, li.Quantity, li.UnitPrice, cur, strings.ToUpper(c))
	}
	if p.Sum == "" {
		return decimal.Zero, nil
	}
	sum, err := decimal.NewFromString(p.Sum.String())
	if err != nil {
		return decimal.Zero, permanent("%s: sum %q is not a decimal", name, p.Sum)
	}
	sum = cur.Round(sum)
	unit := decimal.New(1, -cur.MinorUnits())
	near := func(total decimal.Decimal) bool { return sum.Sub(total).Abs().LessThanOrEqual(unit) }

	// The readings of the line: as read, and with an amount discount off
	// each unit; each with its total, and with its exclusive tax added.
	candidates := []model.LineItem{*li}
	if p.DiscountType == "amount" && !li.Discount.IsZero() && !li.Quantity.Equal(decimal.NewFromInt(1)) {
		perUnit := *li
		perUnit.Discount = li.Discount.Mul(li.Quantity)
		candidates = append(candidates, perUnit)
	}
	for _, c := range candidates {
		net, _ := lineTotals(cur, c, decimal.Zero)
		if near(net) {
			*li = c
			return decimal.Zero, nil
		}
		if p.TaxMethod == taxExclusive && rate.IsPositive() {
			if amount, tax := lineTotals(cur, c, rate); near(amount.Add(tax)) {
				*li = c
				// The tax as the sum counts it (Pipedrive's rounding),
				// which the deal's value counts too.
				return sum.Sub(amount), nil
			}
		}
	}
	asRead, _ := lineTotals(cur, *li, decimal.Zero)
	return decimal.Zero, permanent("%s: dealsync makes the line's total %s (%s × %s less a discount of %s) but Pipedrive's sum for it is %s, "+
		"which neither an amount discount off each unit nor the line's tax (nor both) explains, so dealsync does not invoice it. "+
		"Check the line in Pipedrive (its quantity, price, discount and tax); if it is right there, dealsync reads it wrongly: report it to dealsync's maintainers with the line's fields as Pipedrive's API gives them (GET /api/v2/deals/%s/products). "+
		"Then retry the run (dealsync runs retry)",
		name, cur.Format(asRead), li.Quantity, li.UnitPrice, cur.Format(li.DiscountAmount()), cur.Format(sum), dealID)
}
