package quickbooks

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
)

// The JSON below is QuickBooks Online's v3 entities; its field names and
// types are those of Intuit's XSD (Finance.xsd, namespace
// http://schema.intuit.com/finance/v3), which the contract test checks.
// Amounts are json.Number written from the exact decimal.

// Ref is QBO's ReferenceType: {"value": id}.
type Ref struct {
	Value string `json:"value"`
	Name  string `json:"name,omitempty"`
}

// EmailAddress is QBO's EmailAddress.
type EmailAddress struct {
	Address string `json:"Address"`
}

// PhysicalAddress is QBO's PhysicalAddress.
type PhysicalAddress struct {
	Line1                  string `json:"Line1,omitempty"`
	Line2                  string `json:"Line2,omitempty"`
	City                   string `json:"City,omitempty"`
	CountrySubDivisionCode string `json:"CountrySubDivisionCode,omitempty"`
	PostalCode             string `json:"PostalCode,omitempty"`
	Country                string `json:"Country,omitempty"`
}

// Customer is the part of QBO's Customer dealsync writes and reads.
type Customer struct {
	Id string `json:"Id,omitempty"`
	// SyncToken is the version QBO's updates must name (read only here).
	SyncToken        string           `json:"SyncToken,omitempty"`
	DisplayName      string           `json:"DisplayName"`
	CompanyName      string           `json:"CompanyName,omitempty"`
	PrimaryEmailAddr *EmailAddress    `json:"PrimaryEmailAddr,omitempty"`
	BillAddr         *PhysicalAddress `json:"BillAddr,omitempty"`
	ShipAddr         *PhysicalAddress `json:"ShipAddr,omitempty"`
	Notes            string           `json:"Notes,omitempty"`
	Active           *bool            `json:"Active,omitempty"`
	// CurrencyRef is the one currency the customer is invoiced in (only
	// in companies with multicurrency on; otherwise the home currency).
	CurrencyRef *Ref `json:"CurrencyRef,omitempty"`
}

// Invoice is the part of QBO's Invoice dealsync writes.
type Invoice struct {
	CustomerRef  Ref    `json:"CustomerRef"`
	DocNumber    string `json:"DocNumber,omitempty"`
	TxnDate      string `json:"TxnDate"`
	DueDate      string `json:"DueDate"`
	CurrencyRef  *Ref   `json:"CurrencyRef,omitempty"`
	PrivateNote  string `json:"PrivateNote,omitempty"`
	CustomerMemo *Ref   `json:"CustomerMemo,omitempty"`
	Line         []Line `json:"Line"`
	// ApplyTaxAfterDiscount makes QBO tax the discounted amount, as
	// dealsync's totals do (QBO's default taxes before the discount).
	ApplyTaxAfterDiscount bool `json:"ApplyTaxAfterDiscount,omitempty"`
	// GlobalTaxCalculation (non-US companies): TaxExcluded says the line
	// amounts are net of tax, as dealsync's are.
	GlobalTaxCalculation string `json:"GlobalTaxCalculation,omitempty"`
}

// Line is a SalesItemLineDetail or DiscountLineDetail line.
type Line struct {
	DetailType          string               `json:"DetailType"`
	Amount              json.Number          `json:"Amount"`
	Description         string               `json:"Description,omitempty"`
	SalesItemLineDetail *SalesItemLineDetail `json:"SalesItemLineDetail,omitempty"`
	DiscountLineDetail  *DiscountLineDetail  `json:"DiscountLineDetail,omitempty"`
}

// SalesItemLineDetail names the item (by its QBO Id), quantity, price and tax code.
type SalesItemLineDetail struct {
	ItemRef    *Ref        `json:"ItemRef,omitempty"`
	Qty        json.Number `json:"Qty"`
	UnitPrice  json.Number `json:"UnitPrice"`
	TaxCodeRef *Ref        `json:"TaxCodeRef,omitempty"`
}

// DiscountLineDetail is an amount off the invoice.
type DiscountLineDetail struct {
	PercentBased bool `json:"PercentBased"`
}

// QueryResponse is the answer of the query endpoint.
type QueryResponse struct {
	QueryResponse struct {
		Customer []Customer     `json:"Customer"`
		Invoice  []FoundInvoice `json:"Invoice"`
	} `json:"QueryResponse"`
}

// FoundInvoice is an invoice as the look-up by DocNumber reads it.
type FoundInvoice struct {
	Id           string      `json:"Id"`
	DocNumber    string      `json:"DocNumber"`
	CustomerRef  Ref         `json:"CustomerRef"`
	PrivateNote  string      `json:"PrivateNote"`
	TotalAmt     json.Number `json:"TotalAmt"`
	TxnTaxDetail struct {
		TotalTax json.Number `json:"TotalTax"`
	} `json:"TxnTaxDetail"`
}

// Preferences is the part of QBO's Preferences entity dealsync reads: the
// company's currency settings, and whether it numbers sales forms itself.
type Preferences struct {
	CurrencyPrefs struct {
		MultiCurrencyEnabled bool `json:"MultiCurrencyEnabled"`
		HomeCurrency         Ref  `json:"HomeCurrency"`
	} `json:"CurrencyPrefs"`
	SalesFormsPrefs struct {
		// CustomTxnNumbers: the company's people may number invoices
		// themselves; off, QuickBooks numbers them (and Intuit advises
		// not to send DocNumber).
		CustomTxnNumbers *bool `json:"CustomTxnNumbers,omitempty"`
	} `json:"SalesFormsPrefs,omitzero"`
}

// Fault is QBO's error answer. encoding/json matches names without
// regard to case, so it reads both {"Fault":{"Error":[...]}} (API) and
// {"fault":{"error":[...]}} (authentication).
type Fault struct {
	Fault struct {
		Error []struct {
			Message string `json:"Message"`
			Detail  string `json:"Detail"`
			Code    string `json:"code"`
			Element string `json:"element"`
		} `json:"Error"`
		Type string `json:"type"`
	} `json:"Fault"`
}

// Options are the connection's invoice defaults.
type Options struct {
	DefaultItemID  string
	DefaultTaxCode string
	SetCurrency    bool
	// GlobalTaxCalculation is sent as is ("": not sent).
	GlobalTaxCalculation string
}

// DocNumber is the DocNumber (21 characters at most) for a reference: the
// reference itself when it fits in 21 bytes and QBO's query language can
// carry it (Queryable), else a deterministic short form, valid UTF-8 and
// queryable. The invoice is looked up by its DocNumber before it is made,
// so a DocNumber the query cannot carry would fail every deal of that
// reference; and one that earlier versions gave and could look up is kept
// as it was (their invoices are found by it).
func DocNumber(reference string) string {
	reference = strings.TrimSpace(reference)
	if len(reference) <= 21 && Queryable(reference) {
		return reference
	}
	sum := sha256.Sum256([]byte(reference))
	// The form of earlier versions: at most 8 bytes of the beginning, cut
	// where a character starts (a character cut in half would be sent as
	// U+FFFD and never match the DocNumber a look-up asks for).
	if len(reference) > 21 {
		cut := 8
		for cut > 0 && !utf8.RuneStart(reference[cut]) {
			cut--
		}
		if earlier := reference[:cut] + "-" + hex.EncodeToString(sum[:6]); Queryable(earlier) {
			return earlier
		}
	}
	// Else the same of its queryable characters.
	head := strings.Map(func(r rune) rune {
		if r > maxQueryRune {
			return -1
		}
		return r
	}, reference)
	cut := min(8, len(head))
	for cut > 0 && cut < len(head) && !utf8.RuneStart(head[cut]) {
		cut--
	}
	return head[:cut] + "-" + hex.EncodeToString(sum[:6])
}

// maxQueryRune is the last character QBO's query language reads in a
// string literal: its parser stops at anything past Latin-1 with "Lexical
// error … Encountered: "\u2019" (8217)" (a typographic apostrophe; an en
// dash, 8211, alike), error 4000, although the same characters are
// accepted in the names and numbers it stores.
const maxQueryRune = 0xFF

// Queryable reports whether QBO's query language can carry s in a string
// literal.
func Queryable(s string) bool {
	for _, r := range s {
		if r > maxQueryRune {
			return false
		}
	}
	return true
}

// likePattern is a LIKE pattern that matches s: its longest run of
// queryable characters between %s (just "%" when it has none). The
// customers it finds are then compared with s in full.
func likePattern(s string) string {
	best, start := "", -1
	flush := func(end int) {
		if start >= 0 {
			if seg := strings.TrimSpace(s[start:end]); len(seg) > len(best) {
				best = seg
			}
			start = -1
		}
	}
	for i, r := range s {
		if r > maxQueryRune {
			flush(i)
		} else if start < 0 {
			start = i
		}
	}
	flush(len(s))
	if best == "" {
		return "%"
	}
	return "%" + best + "%"
}

// privateNote is the invoice's PrivateNote: which deal it invoices.
func privateNote(inv model.Invoice) string {
	return strings.TrimSpace("dealsync " + inv.SourceDealID)
}

// notesDeal reports whether an invoice's PrivateNote names the deal of
// inv: its words (separated by white space) hold privateNote(inv)'s words
// one after the other, so text a person added in QBO before or after
// dealsync's note, on its line or on others, does not hide it, while
// "dealsync 123" or "dealsync 12-b" does not name deal 12. A deal without
// an id names nothing beyond "dealsync": only that note, alone, is its.
func notesDeal(note string, inv model.Invoice) bool {
	want := privateNote(inv)
	marker := strings.Fields(want)
	if len(marker) < 2 {
		return strings.TrimSpace(note) == want
	}
	words := strings.Fields(note)
	for i := 0; i+len(marker) <= len(words); i++ {
		if slices.Equal(words[i:i+len(marker)], marker) {
			return true
		}
	}
	return false
}

// maxMemo is the longest CustomerMemo QBO takes.
const maxMemo = 1000

// maxLineDescription is the longest line Description QBO takes
// (Finance.xsd, Line/Description: "Max. length: 4000 characters").
const maxLineDescription = 4000

// qboAmountDP is the decimals QBO keeps of a line's amount, in every
// currency: it computes Qty × UnitPrice to 2 decimals, and checks the
// Amount it is sent against it.
const qboAmountDP = 2

// sameLineAmount refuses a line whose amount, quantity × unit price
// rounded to the currency's minor units as dealsync bills it, is not what
// QBO makes of it at 2 decimals: in a currency of 0 decimals (1.5 × 999
// JPY: 1499 here, 1498.50 there) or of 3 (3 × 411.5223 KWD). QBO refuses
// such a line, or changes its unit price to fit the amount: either way not
// the invoice dealsync made. A currency of 2 decimals is always alike.
func sameLineAmount(i int, l model.InvoiceLine, cur model.Currency) error {
	if cur.MinorUnits() == qboAmountDP {
		return nil
	}
	gross := l.Quantity.Mul(l.UnitPrice)
	ours, theirs := cur.Round(gross), gross.Round(qboAmountDP)
	if theirs.Equal(ours) {
		return nil
	}
	fix := fmt.Sprintf("make quantity × unit price exact in %s, e.g. unit_price: round_currency(x, %q) with a whole quantity", cur, string(cur))
	if cur.MinorUnits() > qboAmountDP {
		fix = fmt.Sprintf("make quantity × unit price exact to %d decimals (e.g. a whole quantity and unit_price: round_to(x, %d)), or bill this customer in another currency", qboAmountDP, qboAmountDP)
	}
	return fmt.Errorf("lines[%d] (%q): amount differs in QuickBooks, which computes a line's quantity × unit price to %d decimals in every currency: %s × %s is %s there, %s %s here (%d decimals), so QuickBooks would refuse the line or bill another unit price; %s",
		i, l.Description, qboAmountDP, model.ExactString(l.Quantity), model.ExactString(l.UnitPrice), theirs.StringFixed(qboAmountDP), cur, cur.Format(ours), cur.MinorUnits(), fix)
}

// NewInvoice is QBO's invoice for inv, billed to customerID. A line's
// ItemCode is the QBO Item Id (ItemRef), its TaxCode the TaxCodeRef; a
// line discount becomes a DiscountLineDetail line (QBO checks Amount ==
// Qty × UnitPrice on sales lines, so a discount cannot go inside one).
func NewInvoice(inv model.Invoice, customerID string, o Options) (Invoice, error) {
	if len(inv.Lines) == 0 {
		return Invoice{}, fmt.Errorf("the invoice has no lines")
	}
	cur := inv.Currency
	out := Invoice{
		CustomerRef: Ref{Value: customerID},
		DocNumber:   DocNumber(inv.Reference),
		TxnDate:     inv.IssueDate.String(),
		DueDate:     inv.DueDate.String(),
		PrivateNote: privateNote(inv),
		// Finance.xsd: "Indicates the GlobalTax model if the model
		// inclusive of tax, exclusive of taxes or not applicable".
		GlobalTaxCalculation: o.GlobalTaxCalculation,
	}
	if o.SetCurrency {
		out.CurrencyRef = &Ref{Value: string(cur)}
	}
	if inv.Memo != "" {
		// Finance.xsd: "The maximum length for Invoice Msg is 1000
		// characters"; QBO refuses a longer one.
		if n := utf8.RuneCountInString(inv.Memo); n > maxMemo {
			return Invoice{}, fmt.Errorf("the memo (CustomerMemo) has %d characters, QuickBooks takes at most %d: shorten the mapping's memo", n, maxMemo)
		}
		out.CustomerMemo = &Ref{Value: inv.Memo}
	}
	discount := decimal.Zero
	for i, l := range inv.Lines {
		d := SalesItemLineDetail{
			Qty:       json.Number(model.ExactString(l.Quantity)),
			UnitPrice: json.Number(model.ExactString(l.UnitPrice)),
		}
		// Finance.xsd: "When a line lacks an ItemRef it will be treated as
		// documentation and the Amount will be ignored": the customer
		// would not be billed for it.
		item := cmp.Or(l.ItemCode, o.DefaultItemID)
		switch {
		case item == "":
			return Invoice{}, fmt.Errorf("lines[%d] (%q) has no item, and QuickBooks ignores the amount of a line without one: "+
				"set the target's default_item_id, or map item_code to an Item Id", i, l.Description)
		case !connectors.IsDigits(item):
			return Invoice{}, fmt.Errorf("lines[%d]: item_code %q is not a QuickBooks Item Id (a number, as in the item's URL): "+
				"map the CRM's SKU to its Item Id with a lookup table, or leave item_code blank for the target's default_item_id", i, item)
		}
		d.ItemRef = &Ref{Value: item}
		if n := utf8.RuneCountInString(l.Description); n > maxLineDescription {
			return Invoice{}, fmt.Errorf("lines[%d]: the description has %d characters, QuickBooks takes at most %d: shorten it in the mapping (e.g. a lines description of item.name rather than a long text)", i, n, maxLineDescription)
		}
		if err := sameLineAmount(i, l, cur); err != nil {
			return Invoice{}, err
		}
		if tax := cmp.Or(l.TaxCode, o.DefaultTaxCode); tax != "" {
			d.TaxCodeRef = &Ref{Value: tax}
		}
		out.Line = append(out.Line, Line{
			DetailType: "SalesItemLineDetail", Description: l.Description,
			Amount:              json.Number(cur.Format(cur.Round(l.Quantity.Mul(l.UnitPrice)))),
			SalesItemLineDetail: &d,
		})
		discount = discount.Add(l.Discount)
	}
	if discount.IsPositive() {
		// QBO spreads the one discount line over the lines in proportion to
		// their amounts: with lines of different tax rates, the tax QBO
		// computes is not the invoice's (a line at 19 % with 100 off and
		// one at 7 %: 6.00 more tax). Refused rather than billed wrong.
		// QBO taxes by the tax code it is sent (not the rate dealsync
		// computed with): both must be alike on every line.
		// An invoice without tax rates leaves the tax to QBO (a US
		// company's automated sales tax): its figures do not depend on how
		// the discount is spread.
		first := inv.Lines[0]
		firstCode := cmp.Or(first.TaxCode, o.DefaultTaxCode)
		for i, l := range inv.Lines[1:] {
			if code := cmp.Or(l.TaxCode, o.DefaultTaxCode); inv.CarriesTax() && (!l.TaxRate.Equal(first.TaxRate) || code != firstCode) {
				return Invoice{}, fmt.Errorf("lines[0] and lines[%d] are taxed differently (tax code %q at %s %% and %q at %s %%), and the invoice has line discounts: "+
					"QuickBooks takes them as one discount spread over all lines, which would tax the invoice otherwise than it was computed; "+
					"put such discounts into the unit price in the mapping (unit_price net of the discount, no discount), or keep one tax code and rate per invoice",
					i+1, firstCode, first.TaxRate, code, l.TaxRate)
			}
		}
		if !discount.Equal(discount.Round(qboAmountDP)) {
			// A 3-decimal currency's discount (10.025 KWD): QBO keeps
			// the discount line to 2 decimals too, and would bill
			// another total.
			return Invoice{}, fmt.Errorf("the lines' discounts add up to %s %s, which QuickBooks keeps to %d decimals (%s): make each line's discount exact to %d decimals in the mapping (e.g. discount: round_to(x, %d)), or put it into the unit price",
				cur, cur.Format(discount), qboAmountDP, discount.StringFixed(qboAmountDP), qboAmountDP, qboAmountDP)
		}
		out.Line = append(out.Line, Line{DetailType: "DiscountLineDetail", Amount: json.Number(cur.Format(discount)),
			DiscountLineDetail: &DiscountLineDetail{PercentBased: false}})
		out.ApplyTaxAfterDiscount = true
	}
	return out, nil
}

// customerLimits are the lengths QBO allows the customer fields dealsync
// sends (IntuitBaseTypes.xsd, "Product: QBO … Max. length"), with the
// mapping key that gives each.
var customerLimits = []struct {
	field, key string
	max        int
	value      func(Customer) string
}{
	{"PrimaryEmailAddr", "invoice.customer.email", 100, func(c Customer) string {
		if c.PrimaryEmailAddr == nil {
			return ""
		}
		return c.PrimaryEmailAddr.Address
	}},
	{"BillAddr.Line1", "invoice.customer.address.line1", 500, func(c Customer) string { return billAddr(c).Line1 }},
	{"BillAddr.Line2", "invoice.customer.address.line2", 500, func(c Customer) string { return billAddr(c).Line2 }},
	{"BillAddr.City", "invoice.customer.address.city", 255, func(c Customer) string { return billAddr(c).City }},
	{"BillAddr.CountrySubDivisionCode", "invoice.customer.address.region", 255, func(c Customer) string { return billAddr(c).CountrySubDivisionCode }},
	{"BillAddr.PostalCode", "invoice.customer.address.postal_code", 30, func(c Customer) string { return billAddr(c).PostalCode }},
	{"BillAddr.Country", "invoice.customer.address.country", 255, func(c Customer) string { return billAddr(c).Country }},
}

func billAddr(c Customer) PhysicalAddress {
	if c.BillAddr == nil {
		return PhysicalAddress{}
	}
	return *c.BillAddr
}

// CustomerFits refuses a customer with a field longer than QBO takes, naming
// the field, its mapping key and QBO's limit: QBO would refuse it with a
// validation fault that names neither the mapping key nor the limit.
func CustomerFits(c Customer) error {
	for _, l := range customerLimits {
		if n := utf8.RuneCountInString(l.value(c)); n > l.max {
			return fmt.Errorf("the customer's %s (%s) is %d characters, and QuickBooks takes at most %d: shorten it in the CRM or in the mapping", l.field, l.key, n, l.max)
		}
	}
	return nil
}

// NewCustomer is QBO's customer for c. QBO has no external-id field on
// customers; the CRM company id goes into Notes for people, and into the
// link store for dealsync.
func NewCustomer(c model.Customer) Customer {
	out := Customer{DisplayName: strings.TrimSpace(c.Name), CompanyName: strings.TrimSpace(c.Name)}
	// IntuitNamesTypes.xsd, Customer: the e-mail address "must contain "@"
	// and "."": QBO refuses the customer with any other, so an address it
	// would refuse is left out rather than failing every deal of the
	// company.
	if email := strings.TrimSpace(c.Email); strings.Contains(email, "@") && strings.Contains(email, ".") {
		out.PrimaryEmailAddr = &EmailAddress{Address: email}
	}
	if a := c.Address; a != (model.Address{}) {
		out.BillAddr = &PhysicalAddress{Line1: a.Line1, Line2: a.Line2, City: a.City,
			CountrySubDivisionCode: a.Region, PostalCode: a.PostalCode, Country: a.Country}
		// The ship-to address too: an invoice that gives none is shipped to
		// its customer's default ship-to address (Finance.xsd,
		// Invoice.ShipAddr), the address QBO's automated sales tax (US)
		// taxes for.
		ship := *out.BillAddr
		out.ShipAddr = &ship
	}
	if c.ExternalID != "" {
		out.Notes = crmCompanyNote + c.ExternalID
	}
	return out
}

// crmCompanyNote starts the Notes of a customer dealsync made or claimed,
// before the CRM company id, on the first line.
const crmCompanyNote = "CRM company "

// noteCompany is the CRM company a customer's Notes name: on the first
// line, where dealsync writes it, or on a later line a person may have
// pushed it down to, when that line holds nothing but the company id (so
// that free text such as "CRM company id is in HubSpot" is not taken for
// a claim); ok is false when they name none (a customer made outside
// dealsync, not claimed yet).
func noteCompany(notes string) (company string, ok bool) {
	first := true
	for line := range strings.Lines(notes) {
		rest, found := strings.CutPrefix(strings.TrimSpace(line), crmCompanyNote)
		rest = strings.TrimSpace(rest)
		if found && (first || (rest != "" && !strings.ContainsAny(rest, " \t"))) {
			return rest, true
		}
		first = false
	}
	return "", false
}

// claimedNotes are a customer's Notes once claimed by CRM company id:
// the company's line first, the notes it had after it.
func claimedNotes(notes, id string) string {
	if strings.TrimSpace(notes) == "" {
		return crmCompanyNote + id
	}
	return crmCompanyNote + id + "\n" + notes
}
