package netsuite

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/model"
)

// The JSON below is NetSuite's REST record service (record/v1) as its
// documentation and REST API Browser describe it: references are
// {"id": internalId}, sublists are {"items": [...]}, amounts are numbers
// (written as json.Number from the exact decimal, never through a float).
// There is no machine-readable NetSuite schema in this repository, so no
// contract test checks these bodies; the fake in netsuitefake checks the
// fields dealsync relies on.

// Ref names a record by its internal id.
type Ref struct {
	ID string `json:"id"`
}

func ref(id string) *Ref {
	if id == "" {
		return nil
	}
	return &Ref{ID: id}
}

// Sublist is the REST shape of a sublist.
type Sublist[T any] struct {
	Items []T `json:"items"`
}

// Customer is the part of the customer record dealsync writes: a company
// (isPerson false). The external id is not in the body: it is in the URL
// of the upsert (PUT /customer/eid:…).
type Customer struct {
	IsPerson    bool   `json:"isPerson"`
	CompanyName string `json:"companyName"`
	Email       string `json:"email,omitempty"`
	Subsidiary  *Ref   `json:"subsidiary,omitempty"`
	// Currency is the customer's primary currency (multi-currency
	// accounts): the deal's, so its invoices can be in it.
	Currency *Ref `json:"currency,omitempty"`
}

// Invoice is the part of the invoice record dealsync writes.
type Invoice struct {
	Entity      Ref                  `json:"entity"`
	TranDate    string               `json:"tranDate"`
	DueDate     string               `json:"dueDate,omitempty"`
	Currency    *Ref                 `json:"currency,omitempty"`
	OtherRefNum string               `json:"otherRefNum,omitempty"`
	Memo        string               `json:"memo,omitempty"`
	Location    *Ref                 `json:"location,omitempty"`
	Item        Sublist[InvoiceItem] `json:"item"`
}

// InvoiceItem is one line of the invoice's item sublist. NetSuite computes
// amount = quantity × rate and the tax from taxCode.
type InvoiceItem struct {
	Item        Ref         `json:"item"`
	Description string      `json:"description,omitempty"`
	Quantity    json.Number `json:"quantity,omitempty"`
	Rate        json.Number `json:"rate"`
	TaxCode     *Ref        `json:"taxCode,omitempty"`
}

// Record is what dealsync reads of a GET /customer/… or /invoice/… answer.
type Record struct {
	ID          string `json:"id"`
	ExternalID  string `json:"externalId"`
	TranID      string `json:"tranId"`
	CompanyName string `json:"companyName"`
	IsInactive  bool   `json:"isInactive"`
	Entity      *Ref   `json:"entity"`
	// Total and Subtotal are an invoice's totals as NetSuite computed them
	// (with and before tax).
	Total    json.Number `json:"total"`
	Subtotal json.Number `json:"subtotal"`
}

// SuiteQLRequest is the body of POST /services/rest/query/v1/suiteql.
type SuiteQLRequest struct {
	Q string `json:"q"`
}

// SuiteQLResponse is a SuiteQL answer. Column names come back in lower
// case and every value as a string.
type SuiteQLResponse struct {
	Count        int                          `json:"count"`
	HasMore      bool                         `json:"hasMore"`
	Offset       int                          `json:"offset"`
	TotalResults int                          `json:"totalResults"`
	Items        []map[string]json.RawMessage `json:"items"`
}

// Rows returns the items as column → value, leaving out "links" and any
// value that is not a string or a number.
func (r SuiteQLResponse) Rows() []map[string]string {
	out := make([]map[string]string, 0, len(r.Items))
	for _, it := range r.Items {
		row := map[string]string{}
		for k, raw := range it {
			var s string
			var n json.Number
			switch {
			case json.Unmarshal(raw, &s) == nil:
				row[strings.ToLower(k)] = s
			case json.Unmarshal(raw, &n) == nil:
				row[strings.ToLower(k)] = n.String()
			}
		}
		out = append(out, row)
	}
	return out
}

// ErrorBody is NetSuite's REST error answer.
type ErrorBody struct {
	Type         string        `json:"type"`
	Title        string        `json:"title"`
	Status       int           `json:"status"`
	ErrorDetails []ErrorDetail `json:"o:errorDetails"`
}

// ErrorDetail is one entry of o:errorDetails.
type ErrorDetail struct {
	Detail    string `json:"detail"`
	ErrorCode string `json:"o:errorCode"`
	ErrorPath string `json:"o:errorPath,omitempty"`
	URLPath   string `json:"o:errorUrl,omitempty"`
	// URLPathAlt is the same under the name Oracle's error-handling page
	// gives it; answers seen elsewhere use o:errorUrl.
	URLPathAlt string `json:"o:urlPath,omitempty"`
	Header     string `json:"o:errorHeader,omitempty"`
	QueryParam string `json:"o:errorQueryParam,omitempty"`
}

// errorDetail reads o:errorDetails: every detail (with its o:errorCode)
// as the message, the first o:errorPath (or header, query parameter or
// URL: o:errorUrl, as NetSuite's record metadata names it) as the element.
func errorDetail(status int, h http.Header, body []byte) (msg, field string) {
	var e ErrorBody
	if json.Unmarshal(body, &e) != nil {
		return "", ""
	}
	var msgs []string
	for _, d := range e.ErrorDetails {
		m := d.Detail
		if d.ErrorCode != "" {
			m += " (" + d.ErrorCode + ")"
		}
		msgs = append(msgs, strings.TrimSpace(m))
		if field == "" {
			switch {
			case d.ErrorPath != "":
				field = d.ErrorPath
			case d.Header != "":
				field = "header " + d.Header
			case d.QueryParam != "":
				field = "query parameter " + d.QueryParam
			case d.URLPath != "" || d.URLPathAlt != "":
				// An error in the request's URL (an id NetSuite does not
				// take, a record type it does not know).
				field = "URL " + d.URLPath + d.URLPathAlt
			}
		}
	}
	msg = strings.Join(msgs, "; ")
	if msg == "" {
		msg = e.Title
	}
	return erpkit.Truncate(msg), field
}

// Options are the connection's invoice defaults.
type Options struct {
	DefaultItemID    string
	DiscountItemID   string
	DefaultTaxCodeID string
	LocationID       string
	// CurrencyIDs maps ISO codes to currency internal ids (currency_ids,
	// or the account's currencies as read); empty sends no currency (the
	// customer's currency applies).
	CurrencyIDs map[string]string
}

// NewInvoice is NetSuite's invoice for inv, billed to customerID. A line's
// item_code is the NetSuite item's internal id, its tax_code the tax code's
// internal id. A line discount becomes a line of the discount item right
// after it (NetSuite applies a discount item to the line above), with the
// discount as a negative rate.
func NewInvoice(inv model.Invoice, customerID string, o Options) (Invoice, error) {
	if len(inv.Lines) == 0 {
		return Invoice{}, fmt.Errorf("the invoice has no lines")
	}
	if customerID == "" {
		return Invoice{}, fmt.Errorf("no customer")
	}
	cur := inv.Currency
	out := Invoice{
		Entity:      Ref{ID: customerID},
		TranDate:    inv.IssueDate.String(),
		OtherRefNum: strings.TrimSpace(inv.Reference),
		Memo:        strings.TrimSpace(inv.Memo),
		Location:    ref(o.LocationID),
	}
	if !inv.DueDate.IsZero() {
		out.DueDate = inv.DueDate.String()
	}
	if out.Memo == "" && inv.SourceDealID != "" {
		out.Memo = "dealsync " + inv.SourceDealID
	}
	if len(o.CurrencyIDs) > 0 {
		id, ok := o.CurrencyIDs[string(cur)]
		if !ok {
			return Invoice{}, fmt.Errorf("currency %s has no entry in currency_ids", cur)
		}
		out.Currency = ref(id)
	}
	for i, l := range inv.Lines {
		item := cmp.Or(l.ItemCode, o.DefaultItemID)
		if item == "" {
			return Invoice{}, fmt.Errorf("lines[%d]: NetSuite needs an item (map item_code to an item's internal id, or set default_item_id)", i)
		}
		if !connectors.IsDigits(item) {
			return Invoice{}, fmt.Errorf("lines[%d]: item_code %q is not a NetSuite internal id (a number): map the CRM's SKU to the item's internal id "+
				"with a lookup table, or leave item_code blank for the target's default_item_id", i, item)
		}
		taxCode := cmp.Or(l.TaxCode, o.DefaultTaxCodeID)
		if taxCode != "" && !connectors.IsDigits(taxCode) {
			return Invoice{}, fmt.Errorf("lines[%d]: tax_code %q is not a NetSuite internal id (a number): map the tax code to its internal id "+
				"with a lookup table, or leave tax_code blank for the target's default_tax_code_id", i, taxCode)
		}
		out.Item.Items = append(out.Item.Items, InvoiceItem{
			Item:        Ref{ID: item},
			Description: l.Description,
			Quantity:    json.Number(model.ExactString(l.Quantity)),
			Rate:        json.Number(model.ExactString(l.UnitPrice)),
			TaxCode:     ref(taxCode),
		})
		if l.Discount.IsPositive() {
			if o.DiscountItemID == "" {
				return Invoice{}, fmt.Errorf("lines[%d] has a discount: set discount_item_id to a discount item's internal id", i)
			}
			// Taxed as the line it discounts (dealsync's totals take the
			// discount off that line's taxable amount), not as the
			// discount item's default tax code.
			out.Item.Items = append(out.Item.Items, InvoiceItem{
				Item: Ref{ID: o.DiscountItemID}, Description: "Discount",
				Rate:    json.Number(cur.Format(l.Discount.Neg())),
				TaxCode: ref(taxCode),
			})
		}
	}
	return out, nil
}

// NewCustomer is NetSuite's customer (a company) for c; currencyID is its
// primary currency's internal id ("" leaves the account's default). The
// e-mail address goes only when NetSuite would take it (CustomerEmail).
func NewCustomer(c model.Customer, subsidiaryID, currencyID string) Customer {
	email, _ := CustomerEmail(c)
	return Customer{
		IsPerson:    false,
		CompanyName: strings.TrimSpace(c.Name),
		Email:       email,
		Subsidiary:  ref(subsidiaryID),
		Currency:    ref(currencyID),
	}
}

// CustomerEmail is the customer's e-mail address as sent to NetSuite: the
// company's, trimmed, when it is one plain ASCII address
// (erpkit.OneAddress). NetSuite validates the field and refuses the
// customer with anything else ("n/a", two addresses), which would fail
// every deal of the company; an internationalized address (info@müller.de)
// is left out too, as for Xero, since NetSuite does not document taking
// one. Such a value is left out, and dropped says so.
func CustomerEmail(c model.Customer) (email string, dropped bool) {
	email = strings.TrimSpace(c.Email)
	if email == "" {
		return "", false
	}
	if !erpkit.OneASCIIAddress(email) {
		return "", true
	}
	return email, false
}
