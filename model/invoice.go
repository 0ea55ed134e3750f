package model

import (
	"github.com/shopspring/decimal"
)

// Invoice is what dealsync asks an ERP to create for a won deal.
type Invoice struct {
	// Reference is the external reference the ERP stores (e.g. Xero
	// Reference, QBO DocNumber); stable for a deal so duplicates can be found.
	Reference string          `json:"reference"`
	Customer  Customer        `json:"customer"`
	Currency  Currency        `json:"currency"`
	IssueDate Date            `json:"issue_date"`
	DueDate   Date            `json:"due_date"`
	Lines     []InvoiceLine   `json:"lines"`
	Subtotal  decimal.Decimal `json:"subtotal"`
	TaxTotal  decimal.Decimal `json:"tax_total"`
	Total     decimal.Decimal `json:"total"`
	Memo      string          `json:"memo,omitempty"`
	// Source names where the invoice came from (connection and deal id), for audit.
	SourceDealID string `json:"source_deal_id"`
}

// Customer is the invoice's billed party. ExternalID is the CRM company id,
// the first key an ERP connector matches on.
type Customer struct {
	ExternalID string  `json:"external_id,omitempty"`
	Name       string  `json:"name"`
	Email      string  `json:"email,omitempty"`
	TaxID      string  `json:"tax_id,omitempty"`
	Address    Address `json:"address"`
	// Currency is the currency the customer is invoiced in: the invoice's,
	// set by the run (mappings do not set it). Targets whose customers
	// have one currency each (QuickBooks with multicurrency on) create new
	// customers in it.
	Currency Currency `json:"currency,omitempty"`
}

// InvoiceLine is one line of an invoice. Amount (net of discount, before
// tax) and TaxAmount are computed by ComputeTotals.
type InvoiceLine struct {
	ItemCode    string          `json:"item_code,omitempty"`
	Description string          `json:"description"`
	Quantity    decimal.Decimal `json:"quantity"`
	UnitPrice   decimal.Decimal `json:"unit_price"`
	Discount    decimal.Decimal `json:"discount"`
	AccountCode string          `json:"account_code,omitempty"`
	TaxCode     string          `json:"tax_code,omitempty"`
	// TaxRate is a percentage applied to Amount (e.g. 19 for 19 %).
	TaxRate   decimal.Decimal `json:"tax_rate"`
	Amount    decimal.Decimal `json:"amount"`
	TaxAmount decimal.Decimal `json:"tax_amount"`
}

// CarriesTax says whether the invoice has tax of its own (a line with a
// tax rate), rather than leaving the tax to the ERP.
func (inv *Invoice) CarriesTax() bool {
	for _, l := range inv.Lines {
		if !l.TaxRate.IsZero() {
			return true
		}
	}
	return false
}

// ComputeTotals fills each line's Amount and TaxAmount and the invoice's
// Subtotal, TaxTotal and Total. A line's amount is quantity × unit price
// less its discount, rounded to the currency's minor units, as the CRMs
// round a discounted line (15 % off 66.70 is 56.695: 56.70, as
// Salesforce's TotalPrice and Xero's DiscountRate make it); its discount,
// an amount of money the ERP is sent, is then what that leaves off
// quantity × unit price rounded (10.00), so that the ERP's quantity ×
// price − discount, rounded, is the amount here (0.5 × 10.01 with 5 % off
// is 4.75, 0.26 off the 5.01 the line rounds to). Every line amount is
// rounded, so the totals are exact sums of what the invoice shows.
func (inv *Invoice) ComputeTotals() {
	cur := inv.Currency
	subtotal, tax := decimal.Zero, decimal.Zero
	for i := range inv.Lines {
		l := &inv.Lines[i]
		gross := l.Quantity.Mul(l.UnitPrice)
		l.Amount = cur.Round(gross.Sub(l.Discount))
		l.Discount = cur.Round(gross).Sub(l.Amount)
		l.TaxAmount = cur.Round(l.Amount.Mul(l.TaxRate).Shift(-2)) // exactly: Div stops at 16 digits
		subtotal = subtotal.Add(l.Amount)
		tax = tax.Add(l.TaxAmount)
	}
	inv.Subtotal, inv.TaxTotal, inv.Total = subtotal, tax, subtotal.Add(tax)
}
