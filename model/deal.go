package model

import (
	"encoding/json"
	"time"

	"github.com/shopspring/decimal"
)

// Deal is a CRM opportunity in dealsync's vendor-neutral shape.
type Deal struct {
	ID            string              `json:"id"`
	Name          string              `json:"name,omitempty"`
	Stage         string              `json:"stage"`
	PreviousStage string              `json:"previous_stage,omitempty"` // "" when the source does not say
	Amount        decimal.NullDecimal `json:"amount"`
	Currency      string              `json:"currency,omitempty"` // ISO 4217 as sent; validated when mapped
	CloseDate     Date                `json:"close_date"`
	// CloseTime is the moment the deal closed, when the CRM records one
	// (HubSpot's closedate, Pipedrive's won_time, a timestamp sent as the
	// generic source's close_date); zero when it records a date only.
	// CloseDate is then the moment's date in UTC, or in the offset the
	// sender wrote. See CloseDateIn.
	CloseTime time.Time  `json:"close_time,omitzero"`
	Company   Company    `json:"company"`
	LineItems []LineItem `json:"line_items,omitempty"`
	Owner     string     `json:"owner,omitempty"`
	// Raw keeps the source's own fields, untouched, for mappings that need them.
	Raw map[string]json.RawMessage `json:"raw,omitempty"`
}

// CloseDateIn is the deal's close date as a calendar in loc reads it: the
// date of CloseTime there when the CRM recorded a moment, else CloseDate (a
// date without a time is the same date everywhere). A nil loc (no time
// zone configured) is CloseDate as the source read it.
func (d Deal) CloseDateIn(loc *time.Location) Date {
	if loc == nil || d.CloseTime.IsZero() {
		return d.CloseDate
	}
	return DateIn(d.CloseTime, loc)
}

// Company is the customer organisation of a deal.
type Company struct {
	ID      string  `json:"id,omitempty"`
	Name    string  `json:"name,omitempty"`
	Email   string  `json:"email,omitempty"`
	TaxID   string  `json:"tax_id,omitempty"`
	Address Address `json:"address"`
}

// Address is a postal address; Country is ISO 3166-1 alpha-2 when known.
type Address struct {
	Line1      string `json:"line1,omitempty"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city,omitempty"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
	Country    string `json:"country,omitempty"`
}

// LineItem is one product line of a deal. Discount is an amount off the
// line (not per unit); DiscountPercent a percentage of quantity × unit price.
type LineItem struct {
	SKU             string          `json:"sku,omitempty"`
	Description     string          `json:"description,omitempty"`
	Quantity        decimal.Decimal `json:"quantity"`
	UnitPrice       decimal.Decimal `json:"unit_price"`
	Discount        decimal.Decimal `json:"discount"`
	DiscountPercent decimal.Decimal `json:"discount_percent"`
	// TaxRate is the line's tax rate in percent as the CRM states it
	// (Pipedrive: the product's tax, 0 when the deal adds none); unset
	// when the CRM states none. Mappings choose the line's tax code by it.
	TaxRate decimal.NullDecimal `json:"tax_rate,omitzero"`
}

// DiscountAmount is the line's whole discount as an amount: Discount plus
// DiscountPercent of quantity × unit price, exactly (the default of every
// mapping's line discount).
func (li LineItem) DiscountAmount() decimal.Decimal {
	return li.Discount.Add(li.Quantity.Mul(li.UnitPrice).Mul(li.DiscountPercent).Shift(-2))
}

// DealEvent is one change of a deal as a source reports it.
type DealEvent struct {
	// EventID is the CRM's id of this delivery's event, stable across its retries.
	EventID    string    `json:"event_id"`
	OccurredAt time.Time `json:"occurred_at"`
	// Account is the CRM account the event belongs to (HubSpot portal,
	// Salesforce org); "" for single-account sources.
	Account string `json:"account,omitempty"`
	// Deal holds what the event carries. When Thin is set, only Deal.ID and
	// the stage fields are known and the rest must be fetched from the CRM.
	Deal Deal `json:"deal"`
	Thin bool `json:"thin,omitempty"`
}
