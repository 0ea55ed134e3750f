package xero

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/model"
)

// The JSON below is Xero's Accounting API as published in its OpenAPI
// document (XeroAPI/Xero-OpenAPI, xero_accounting.yaml). Amounts are JSON
// numbers there; they are written as json.Number from the exact decimal,
// so no amount ever passes through a float.

// InvoicesBody is the body of PUT /Invoices.
type InvoicesBody struct {
	Invoices []Invoice `json:"Invoices"`
}

// Invoice is the part of Xero's Invoice dealsync writes (readOnly fields
// such as SubTotal and Total are Xero's to compute).
type Invoice struct {
	Type            string     `json:"Type"`
	Contact         ContactRef `json:"Contact"`
	Date            string     `json:"Date"`
	DueDate         string     `json:"DueDate"`
	LineAmountTypes string     `json:"LineAmountTypes"`
	Reference       string     `json:"Reference,omitempty"`
	CurrencyCode    string     `json:"CurrencyCode"`
	Status          string     `json:"Status"`
	BrandingThemeID string     `json:"BrandingThemeID,omitempty"`
	LineItems       []LineItem `json:"LineItems"`
}

// ContactRef names the invoice's contact by its ContactID.
type ContactRef struct {
	ContactID string `json:"ContactID"`
}

// LineItem is one invoice line.
type LineItem struct {
	Description    string      `json:"Description"`
	Quantity       json.Number `json:"Quantity"`
	UnitAmount     json.Number `json:"UnitAmount"`
	ItemCode       string      `json:"ItemCode,omitempty"`
	AccountCode    string      `json:"AccountCode,omitempty"`
	TaxType        string      `json:"TaxType,omitempty"`
	DiscountAmount json.Number `json:"DiscountAmount,omitempty"`
}

// ContactsBody is the body of PUT /Contacts and the answer of
// PUT /Contacts, POST /Contacts/{ContactID} and GET /Contacts/{ContactID}.
type ContactsBody struct {
	Contacts []Contact `json:"Contacts"`
}

// ContactList is the answer of GET /Contacts: Pagination is there when the
// request asked for a page.
type ContactList struct {
	Pagination *Pagination `json:"pagination,omitempty"`
	Contacts   []Contact   `json:"Contacts"`
}

// Pagination is Xero's paging of a list answer.
type Pagination struct {
	Page      int `json:"page"`
	PageSize  int `json:"pageSize"`
	PageCount int `json:"pageCount"`
	ItemCount int `json:"itemCount"`
}

// Contact is the part of Xero's Contact dealsync writes and reads.
type Contact struct {
	ContactID     string    `json:"ContactID,omitempty"`
	ContactNumber string    `json:"ContactNumber,omitempty"`
	ContactStatus string    `json:"ContactStatus,omitempty"`
	Name          string    `json:"Name"`
	EmailAddress  string    `json:"EmailAddress,omitempty"`
	TaxNumber     string    `json:"TaxNumber,omitempty"`
	Addresses     []Address `json:"Addresses,omitempty"`
	// MergedToContactID is read only: it is set on a contact a person
	// merged into another one (Xero archives it), and Xero returns it only
	// to a paged list or a fetch by ContactID.
	MergedToContactID string `json:"MergedToContactID,omitempty"`
	// HasValidationErrors and ValidationErrors are read only: an element
	// of a 200 answer that Xero did not save carries them (with the
	// all-zero ContactID) when summarizeErrors is false, Xero's default.
	HasValidationErrors bool              `json:"HasValidationErrors,omitempty"`
	ValidationErrors    []ValidationError `json:"ValidationErrors,omitempty"`
}

// ContactClaim is the update that writes the CRM company id onto a contact
// dealsync matched by tax number or name, or that a person merged the
// company's contact into: ContactID and ContactNumber only,
// so that nothing else of the contact changes.
type ContactClaim struct {
	ContactID     string `json:"ContactID"`
	ContactNumber string `json:"ContactNumber"`
}

// ContactClaimsBody is the body of POST /Contacts/{ContactID}.
type ContactClaimsBody struct {
	Contacts []ContactClaim `json:"Contacts"`
}

// Address is a contact's address; POBOX is the one Xero prints on invoices.
type Address struct {
	AddressType  string `json:"AddressType"`
	AddressLine1 string `json:"AddressLine1,omitempty"`
	AddressLine2 string `json:"AddressLine2,omitempty"`
	City         string `json:"City,omitempty"`
	Region       string `json:"Region,omitempty"`
	PostalCode   string `json:"PostalCode,omitempty"`
	Country      string `json:"Country,omitempty"`
}

// InvoiceAnswer is what dealsync reads of Xero's invoice answers.
type InvoiceAnswer struct {
	// Pagination is there when Xero paged the answer (a request that asked
	// for a page, or a Xero that pages every list).
	Pagination *Pagination       `json:"pagination,omitempty"`
	Invoices   []AnsweredInvoice `json:"Invoices"`
}

// AnsweredInvoice is one invoice of an InvoiceAnswer.
type AnsweredInvoice struct {
	InvoiceID     string `json:"InvoiceID"`
	InvoiceNumber string `json:"InvoiceNumber"`
	Reference     string `json:"Reference"`
	Type          string `json:"Type"`
	Status        string `json:"Status"`
	HasErrors     bool   `json:"HasErrors"`
	// Total and SubTotal are the invoice's totals as Xero computed them
	// (with and before tax).
	Total            json.Number       `json:"Total"`
	SubTotal         json.Number       `json:"SubTotal"`
	ValidationErrors []ValidationError `json:"ValidationErrors"`
	Contact          struct {
		ContactID string `json:"ContactID"`
		Name      string `json:"Name"`
	} `json:"Contact"`
}

// ValidationError is one of Xero's validation messages.
type ValidationError struct {
	Message string `json:"Message"`
}

// ErrorBody is Xero's error answer: the API's Error schema (400
// ValidationException with Elements[].ValidationErrors) and the identity
// layer's problem shape (401/403: Title, Detail).
type ErrorBody struct {
	ErrorNumber int    `json:"ErrorNumber"`
	Type        string `json:"Type"`
	Message     string `json:"Message"`
	Elements    []struct {
		ValidationErrors []ValidationError `json:"ValidationErrors"`
		LineItems        []struct {
			ValidationErrors []ValidationError `json:"ValidationErrors"`
		} `json:"LineItems"`
	} `json:"Elements"`
	Title  string `json:"Title"`
	Detail string `json:"Detail"`
}

// Options are the connection's invoice defaults.
type Options struct {
	Status             string
	LineAmountTypes    string
	DefaultAccountCode string
	DefaultTaxType     string
	BrandingThemeID    string
}

// xeroUnitDP is the decimals of a unit price Xero keeps (unitdp=4).
const xeroUnitDP = 4

// xeroQuantityDP is how many decimals of a line quantity Xero keeps.
const xeroQuantityDP = 4

// NewInvoice is Xero's invoice for inv, billed to contactID. Lines keep the
// mapping's ItemCode, AccountCode and TaxCode (as TaxType), falling back to
// the connection's defaults; Xero computes tax and totals from them.
func NewInvoice(inv model.Invoice, contactID string, o Options) (Invoice, error) {
	if len(inv.Lines) == 0 {
		return Invoice{}, fmt.Errorf("the invoice has no lines")
	}
	cur := inv.Currency
	lines := make([]LineItem, len(inv.Lines))
	for i, l := range inv.Lines {
		// The request asks for unitdp=4: Xero keeps a unit price to 4
		// decimals and would compute another line amount from a finer one.
		if !l.UnitPrice.Equal(l.UnitPrice.Round(xeroUnitDP)) {
			return Invoice{}, fmt.Errorf("lines[%d]: unit price %s has more than %d decimals, which Xero keeps; round it in the mapping", i, model.ExactString(l.UnitPrice), xeroUnitDP)
		}
		// Xero keeps a quantity to 4 decimals too: a finer one would be
		// rounded there, and the line amount differ from the one validated.
		if !l.Quantity.Equal(l.Quantity.Round(xeroQuantityDP)) {
			return Invoice{}, fmt.Errorf("lines[%d]: quantity %s has more than %d decimals, which Xero keeps; round it in the mapping", i, model.ExactString(l.Quantity), xeroQuantityDP)
		}
		if err := sameLineAmount(l, cur); err != nil {
			return Invoice{}, fmt.Errorf("lines[%d]: %w", i, err)
		}
		li := LineItem{
			Description: l.Description,
			Quantity:    json.Number(model.ExactString(l.Quantity)),
			UnitAmount:  json.Number(atLeast(l.UnitPrice, cur.MinorUnits())),
			ItemCode:    l.ItemCode,
			AccountCode: cmp.Or(l.AccountCode, o.DefaultAccountCode),
			TaxType:     cmp.Or(l.TaxCode, o.DefaultTaxType),
		}
		if l.Discount.IsPositive() {
			li.DiscountAmount = json.Number(cur.Format(l.Discount))
		}
		// dealsync adds a line's tax_rate on top of its net amount; Xero
		// takes the unit price as including tax (Inclusive) or ignores tax
		// (NoTax), and would bill another total than the one validated.
		if o.LineAmountTypes != "" && o.LineAmountTypes != "Exclusive" && !l.TaxRate.IsZero() {
			return Invoice{}, fmt.Errorf("lines[%d]: tax_rate %s%% is added on top of the line's net price, but line_amount_types %s has Xero take the unit price as %s; "+
				"map tax_rate 0 (Xero computes the tax from the tax type) or use line_amount_types Exclusive", i, model.ExactString(l.TaxRate), o.LineAmountTypes,
				map[string]string{"Inclusive": "including tax", "NoTax": "untaxed"}[o.LineAmountTypes])
		}
		if li.ItemCode == "" && li.AccountCode == "" {
			return Invoice{}, fmt.Errorf("lines[%d]: Xero needs an item code or an account code (map account_code, or set default_account_code)", i)
		}
		lines[i] = li
	}
	return Invoice{
		Type:            "ACCREC",
		Contact:         ContactRef{ContactID: contactID},
		Date:            inv.IssueDate.String(),
		DueDate:         inv.DueDate.String(),
		LineAmountTypes: o.LineAmountTypes,
		Reference:       inv.Reference,
		CurrencyCode:    string(cur),
		Status:          o.Status,
		BrandingThemeID: o.BrandingThemeID,
		LineItems:       lines,
	}, nil
}

// xeroAmountDP is the decimals of Xero's line amounts and discounts, in
// every currency.
const xeroAmountDP = 2

// sameLineAmount refuses a line whose amount Xero would compute otherwise
// than the invoice does: Xero rounds quantity × unit price, and the
// discount it is sent, to 2 decimals in every currency, dealsync to the
// currency's minor units. In a currency of 2 decimals they agree; in JPY
// (0) a line of 1.5 × 999 is 1498.50 in Xero and 1499 here, in KWD (3) a
// line of 10.125 is 10.13 there. Such an invoice would be made with
// another amount than the deal's, which the totals check finds only once
// it exists: the mapping must make the line exact in both. That Xero
// rounds the two apart, half away from zero, is an assumption: were it to
// round their difference once, a few lines refused here would have come
// out the same there (a safe refusal, never a wrong invoice).
func sameLineAmount(l model.InvoiceLine, cur model.Currency) error {
	if cur.MinorUnits() == xeroAmountDP {
		return nil
	}
	gross := l.Quantity.Mul(l.UnitPrice)
	ours := cur.Round(gross).Sub(cur.Round(l.Discount))
	theirs := gross.Round(xeroAmountDP).Sub(cur.Round(l.Discount).Round(xeroAmountDP))
	if theirs.Equal(ours) {
		return nil
	}
	what := model.ExactString(l.Quantity) + " × " + model.ExactString(l.UnitPrice)
	if !l.Discount.IsZero() {
		what += " less " + cur.Format(l.Discount)
	}
	fix := fmt.Sprintf("make quantity × unit price exact in %s, e.g. unit_price: round_currency(x, %q) with a whole quantity", cur, string(cur))
	if cur.MinorUnits() > xeroAmountDP {
		fix = fmt.Sprintf("make quantity × unit price, and the discount, exact to %d decimals (e.g. a whole quantity and unit_price: round_to(x, %d)), or bill this customer in another currency", xeroAmountDP, xeroAmountDP)
	}
	return fmt.Errorf("amount differs in Xero, which rounds a line's amount to %d decimals in every currency: %s is %s there, %s %s here (%d decimals), so Xero would bill another amount than the invoice's; %s",
		xeroAmountDP, what, theirs.StringFixed(xeroAmountDP), cur, cur.Format(ours), cur.MinorUnits(), fix)
}

// NewContact is Xero's contact for c. ContactNumber carries the CRM
// company id ("used to identify contacts in external systems", 50
// characters at most), so the contact is found by it next time.
func NewContact(c model.Customer) Contact {
	ct := Contact{
		Name:      strings.TrimSpace(c.Name),
		TaxNumber: c.TaxID,
	}
	// Xero's EmailAddress: "umlauts not supported", and a contact's
	// address must be a valid one when given. An address Xero would refuse
	// (info@müller.de, "n/a", two of them) is left out rather than failing
	// every deal of the company.
	if email := strings.TrimSpace(c.Email); erpkit.OneASCIIAddress(email) {
		ct.EmailAddress = email
	}
	if n := contactNumber(c.ExternalID); n != "" {
		ct.ContactNumber = n
	}
	a := c.Address
	if a != (model.Address{}) {
		ct.Addresses = []Address{{
			AddressType: "POBOX", AddressLine1: a.Line1, AddressLine2: a.Line2,
			City: a.City, Region: a.Region, PostalCode: a.PostalCode, Country: a.Country,
		}}
	}
	return ct
}

// contactLimits are the lengths Xero's accounting API allows the contact
// fields dealsync sends (its OpenAPI description's maxLength), with the
// mapping key that gives each.
var contactLimits = []struct {
	field, key string
	max        int
	value      func(Contact) string
}{
	{"Name", "invoice.customer.name", 255, func(c Contact) string { return c.Name }},
	{"TaxNumber", "invoice.customer.tax_id", 50, func(c Contact) string { return c.TaxNumber }},
	{"EmailAddress", "invoice.customer.email", 255, func(c Contact) string { return c.EmailAddress }},
	{"AddressLine1", "invoice.customer.address.line1", 500, func(c Contact) string { return address(c).AddressLine1 }},
	{"AddressLine2", "invoice.customer.address.line2", 500, func(c Contact) string { return address(c).AddressLine2 }},
	{"City", "invoice.customer.address.city", 255, func(c Contact) string { return address(c).City }},
	{"Region", "invoice.customer.address.region", 255, func(c Contact) string { return address(c).Region }},
	{"PostalCode", "invoice.customer.address.postal_code", 50, func(c Contact) string { return address(c).PostalCode }},
	{"Country", "invoice.customer.address.country", 50, func(c Contact) string { return address(c).Country }},
}

func address(c Contact) Address {
	if len(c.Addresses) == 0 {
		return Address{}
	}
	return c.Addresses[0]
}

// ContactFits says which field of c is longer than Xero takes, naming the
// mapping key that gives it: Xero would refuse the contact (a CRM's
// country name, say "United Kingdom of Great Britain and Northern
// Ireland", is longer than Country's 50 characters).
func ContactFits(c Contact) error {
	for _, l := range contactLimits {
		if n := utf8.RuneCountInString(l.value(c)); n > l.max {
			hint := "shorten it in the CRM or in the mapping"
			if l.field == "Country" {
				hint = "map a country code instead (an ISO code such as GB, e.g. Salesforce's BillingCountryCode through fetch.extra_fields)"
			}
			return fmt.Errorf("the contact's %s (%s) is %d characters, and Xero takes at most %d: %s", l.field, l.key, n, l.max, hint)
		}
	}
	return nil
}

// contactNumber is the ContactNumber for an external id, "" when it does
// not fit Xero's 50 characters (such a company is matched by the link
// store, its tax number or its exact name only).
func contactNumber(externalID string) string {
	externalID = strings.TrimSpace(externalID)
	if len(externalID) > 50 {
		return ""
	}
	return externalID
}

// atLeast renders d with at least places decimals, more when significant.
func atLeast(d decimal.Decimal, places int32) string {
	s := model.ExactString(d)
	if dot := strings.IndexByte(s, '.'); dot >= 0 && int32(len(s)-dot-1) > places {
		return s
	}
	return d.StringFixed(places)
}
