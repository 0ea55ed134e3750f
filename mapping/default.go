package mapping

import (
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/model"
)

// Default is the built-in field-for-field mapping used when a connection
// names no mapping: the deal's company becomes the customer, its line items
// the lines (or one line for the deal amount when it has none), the invoice
// is dated on the close date and due PaymentTermsDays later.
type Default struct {
	PaymentTermsDays int
}

// DefaultName is the name runs record when the default mapping was used.
const DefaultName = "default"

// Builtin is the built-in mapping as connections without a mapping use it.
var Builtin = Default{PaymentTermsDays: 30}

// Name implements Mapper.
func (d Default) Name() string { return DefaultName }

// Hash implements Mapper: the built-in mapping is versioned by its settings.
func (d Default) Hash() string {
	return HashOf(fmt.Appendf(nil, "default/v1/terms=%d", d.PaymentTermsDays))
}

// Tolerance implements Mapper: lines must add up to the deal amount exactly.
func (d Default) Tolerance() decimal.Decimal { return decimal.Zero }

// InvoiceDealReads lists what the built-in mapping reads of the deal, as
// File.InvoiceDealReads does for a file's invoice expressions (the
// company's email and tax id among them, which some sources leave empty
// until a setting names their field).
func (d Default) InvoiceDealReads() []string {
	return []string{
		"deal.amount", "deal.close_date", "deal.company.address", "deal.company.email", "deal.company.id",
		"deal.company.name", "deal.company.tax_id", "deal.currency", "deal.id", "deal.line_items", "deal.name",
	}
}

// Map implements Mapper.
func (d Default) Map(ev model.DealEvent) (model.Invoice, error) {
	deal := ev.Deal
	inv := model.Invoice{
		Reference:    deal.ID,
		SourceDealID: deal.ID,
		Currency:     model.Currency(deal.Currency),
		Memo:         deal.Name,
		Customer: model.Customer{
			ExternalID: deal.Company.ID,
			Name:       deal.Company.Name,
			Email:      deal.Company.Email,
			TaxID:      deal.Company.TaxID,
			Address:    deal.Company.Address,
		},
	}
	if deal.Currency != "" {
		cur, err := model.ParseCurrency(deal.Currency)
		if err != nil {
			return model.Invoice{}, &Error{Mapping: d.Name(), Field: "currency", Value: deal.Currency, Message: "deal.currency: " + err.Error()}
		}
		inv.Currency = cur
	}
	inv.IssueDate = deal.CloseDate
	if inv.IssueDate.IsZero() && !ev.OccurredAt.IsZero() {
		inv.IssueDate = model.DateOf(ev.OccurredAt.UTC())
	}
	if !inv.IssueDate.IsZero() {
		inv.DueDate = inv.IssueDate.AddDays(d.PaymentTermsDays)
	}
	for _, li := range deal.LineItems {
		desc := li.Description
		if desc == "" {
			desc = li.SKU
		}
		// As a mapping file's default expression: item.discount +
		// percent(item.quantity * item.unit_price, item.discount_percent).
		discount := li.DiscountAmount()
		inv.Lines = append(inv.Lines, model.InvoiceLine{
			ItemCode:    li.SKU,
			Description: desc,
			Quantity:    li.Quantity,
			UnitPrice:   li.UnitPrice,
			Discount:    discount,
		})
	}
	if len(inv.Lines) == 0 && deal.Amount.Valid {
		desc := deal.Name
		if desc == "" {
			desc = "Deal " + deal.ID
		}
		inv.Lines = []model.InvoiceLine{{Description: desc, Quantity: decimal.NewFromInt(1), UnitPrice: deal.Amount.Decimal}}
	}
	return inv, nil
}
