package httptarget

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/model"
)

// The wire types below are the JSON the http target sends and expects. The
// sandbox ERP decodes the same types, so the two cannot disagree.
//
// Amounts are decimal strings, never JSON numbers: money must not pass
// through a float. Computed amounts (line amount and tax, discount when it
// fits, totals) carry exactly the currency's minor units ("12000.00" for
// EUR, "1500" for JPY); quantity and tax rate are exact ("2", "1.5", "19");
// a unit price keeps any extra precision it has ("0.1234").

// AddressBody is a postal address on the wire.
type AddressBody struct {
	Line1      string `json:"line1"`
	Line2      string `json:"line2"`
	City       string `json:"city"`
	Region     string `json:"region"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

// CustomerBody is the body of POST {customers_path}.
type CustomerBody struct {
	ExternalID string      `json:"external_id"`
	Name       string      `json:"name"`
	Email      string      `json:"email"`
	TaxID      string      `json:"tax_id"`
	Address    AddressBody `json:"address"`
}

// LineBody is one invoice line on the wire; every number is a decimal string.
type LineBody struct {
	ItemCode    string `json:"item_code"`
	Description string `json:"description"`
	Quantity    string `json:"quantity"`
	UnitPrice   string `json:"unit_price"`
	Discount    string `json:"discount"`
	AccountCode string `json:"account_code"`
	TaxCode     string `json:"tax_code"`
	TaxRate     string `json:"tax_rate"`
	Amount      string `json:"amount"`
	TaxAmount   string `json:"tax_amount"`
}

// InvoiceBody is the body of POST {invoices_path}. Dates are YYYY-MM-DD.
type InvoiceBody struct {
	Reference  string     `json:"reference"`
	CustomerID string     `json:"customer_id"`
	Currency   string     `json:"currency"`
	IssueDate  string     `json:"issue_date"`
	DueDate    string     `json:"due_date"`
	Memo       string     `json:"memo"`
	Lines      []LineBody `json:"lines"`
	Subtotal   string     `json:"subtotal"`
	TaxTotal   string     `json:"tax_total"`
	Total      string     `json:"total"`
}

// ID is an id or a number in an answer: a JSON string, or a JSON number
// taken as written (many APIs number their records: {"id": 42} is id
// "42"). null is "".
type ID string

// UnmarshalJSON implements json.Unmarshaler.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
	case string(b) == "null":
		*id = ""
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("want a string or a number, got %s", b)
		}
		*id = ID(n.String())
	}
	return nil
}

// CustomerCreated is the part of a 2xx answer to POST {customers_path}
// the target reads.
type CustomerCreated struct {
	ID ID `json:"id"`
}

// CustomerList is the answer to GET {customers_path}?external_id=X, or
// one page of it. The "customers" key is required (null is an empty
// list): an answer without it is refused, not read as an empty list.
type CustomerList struct {
	Customers []ListedCustomer `json:"customers"`
	// Next is the URL or path (a JSON string) of the page after this one;
	// absent, null or "" on the last page (or give a Link header with
	// rel="next" instead).
	Next json.RawMessage `json:"next,omitempty"`
}

// ListedCustomer is one customer of a CustomerList: its id and its external
// id. The look-up takes only an entry whose external_id is the one asked
// for: an entry without it is never taken for the company's customer.
type ListedCustomer struct {
	ID         ID `json:"id"`
	ExternalID ID `json:"external_id"`
}

// CustomerConflict is the part of a 409 answer to POST {customers_path}
// the target reads: the customer that holds the external id, when the API
// names it (optional; the target looks it up otherwise).
type CustomerConflict struct {
	Customer ListedCustomer `json:"customer"`
}

// InvoiceCreated is the part of a 2xx answer to POST {invoices_path} the
// target reads: the ERP's id, its human number and a link, if any.
type InvoiceCreated struct {
	ID     ID     `json:"id"`
	Number ID     `json:"number"`
	URL    string `json:"url"`
}

// InvoiceList is the answer of GET {invoices_path}?reference=R, or one
// page of it. The "invoices" key is required (null is an empty list).
type InvoiceList struct {
	Invoices []ListedInvoice `json:"invoices"`
	// Next is the URL or path (a JSON string) of the page after this one;
	// absent, null or "" on the last page (or give a Link header with
	// rel="next" instead).
	Next json.RawMessage `json:"next,omitempty"`
}

// ListedInvoice is one entry of InvoiceList: what dealsync compares and
// reports.
type ListedInvoice struct {
	ID         ID     `json:"id"`
	Number     ID     `json:"number"`
	URL        string `json:"url"`
	Reference  ID     `json:"reference"`
	CustomerID ID     `json:"customer_id"`
}

// ErrorBody is the error shape the target understands best:
// {"error":{"message":"...","field":"..."}}. Other bodies are kept as text.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody. Field names the offending
// element of the request, if any (e.g. "lines[0].amount").
type ErrorDetail struct {
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// NewCustomerBody is the wire form of a customer.
func NewCustomerBody(c model.Customer) CustomerBody {
	return CustomerBody{
		ExternalID: c.ExternalID,
		Name:       c.Name,
		Email:      c.Email,
		TaxID:      c.TaxID,
		Address: AddressBody{
			Line1:      c.Address.Line1,
			Line2:      c.Address.Line2,
			City:       c.Address.City,
			Region:     c.Address.Region,
			PostalCode: c.Address.PostalCode,
			Country:    c.Address.Country,
		},
	}
}

// NewInvoiceBody is the wire form of an invoice billed to customerID. The
// invoice's totals must have been computed (model.Invoice.ComputeTotals);
// amounts are written with the currency's minor units, not recomputed.
func NewInvoiceBody(inv model.Invoice, customerID string) InvoiceBody {
	cur := inv.Currency
	lines := make([]LineBody, len(inv.Lines))
	for i, l := range inv.Lines {
		lines[i] = LineBody{
			ItemCode:    l.ItemCode,
			Description: l.Description,
			Quantity:    model.ExactString(l.Quantity),
			UnitPrice:   atLeastMinor(cur, l.UnitPrice),
			Discount:    atLeastMinor(cur, l.Discount),
			AccountCode: l.AccountCode,
			TaxCode:     l.TaxCode,
			TaxRate:     model.ExactString(l.TaxRate),
			Amount:      cur.Format(l.Amount),
			TaxAmount:   cur.Format(l.TaxAmount),
		}
	}
	return InvoiceBody{
		Reference:  inv.Reference,
		CustomerID: customerID,
		Currency:   string(cur),
		IssueDate:  inv.IssueDate.String(),
		DueDate:    inv.DueDate.String(),
		Memo:       inv.Memo,
		Lines:      lines,
		Subtotal:   cur.Format(inv.Subtotal),
		TaxTotal:   cur.Format(inv.TaxTotal),
		Total:      cur.Format(inv.Total),
	}
}

// atLeastMinor renders d with the currency's minor units, or with more
// places when d has more significant digits (a unit price of 0.1234 EUR),
// so that nothing is rounded away before the ERP computes the line.
func atLeastMinor(cur model.Currency, d decimal.Decimal) string {
	places := cur.MinorUnits()
	if e := d.Exponent(); e < 0 && -e > places {
		// Keep the extra places only when they are significant.
		trimmed := model.ExactString(d)
		if dot := strings.IndexByte(trimmed, '.'); dot >= 0 && int32(len(trimmed)-dot-1) > places {
			return trimmed
		}
	}
	return d.StringFixed(places)
}
