package pipedrive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/oauth2"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
	"github.com/dealsync/dealsync/model"
)

const service = "pipedrive"

// maxPages bounds the product pages read for one deal.
const maxPages = 20

type envelope struct {
	Success        bool            `json:"success"`
	Data           json.RawMessage `json:"data"`
	Error          string          `json:"error"`
	ErrorInfo      string          `json:"error_info"`
	AdditionalData struct {
		NextCursor *string `json:"next_cursor"`
	} `json:"additional_data"`
}

// StageDeleted is the stage FetchDeal reports for a deleted deal: DELETE
// /deals/{id} keeps a deal 30 days, and a merge deletes the deal merged
// away. GET /api/v2/deals/{id} answers such a deal 404 (FetchDeal then
// finds it among the deleted deals) or with is_deleted true. The API does
// not say whether a deleted deal was merged, so unlike HubSpot's "merged"
// there is no stage of its own for that.
const StageDeleted = "deleted"

type pdDeal struct {
	ID                Ident                      `json:"id"`
	Title             string                     `json:"title"`
	Value             json.Number                `json:"value"`
	Currency          string                     `json:"currency"`
	Status            string                     `json:"status"`
	IsDeleted         bool                       `json:"is_deleted"`
	IsArchived        bool                       `json:"is_archived"`
	ArchiveTime       *string                    `json:"archive_time"`
	StageID           Ident                      `json:"stage_id"`
	PipelineID        Ident                      `json:"pipeline_id"`
	OrgID             Ident                      `json:"org_id"`
	PersonID          Ident                      `json:"person_id"`
	OwnerID           Ident                      `json:"owner_id"`
	ExpectedCloseDate *string                    `json:"expected_close_date"`
	WonTime           *string                    `json:"won_time"`
	CloseTime         *string                    `json:"close_time"`
	CustomFields      map[string]json.RawMessage `json:"custom_fields"`
}

// pdPerson is the contact person of a deal (GET /api/v2/persons/{id}).
type pdPerson struct {
	ID     Ident  `json:"id"`
	Name   string `json:"name"`
	Emails []struct {
		Value   string `json:"value"`
		Primary bool   `json:"primary"`
	} `json:"emails"`
}

// email is the person's primary e-mail address, else the first.
func (p pdPerson) email() string {
	for _, e := range p.Emails {
		if e.Primary && strings.TrimSpace(e.Value) != "" {
			return strings.TrimSpace(e.Value)
		}
	}
	for _, e := range p.Emails {
		if v := strings.TrimSpace(e.Value); v != "" {
			return v
		}
	}
	return ""
}

// PersonCompanyPrefix starts the company id of a deal billed to its
// contact person (a deal without an organization): person ids are
// another sequence than organization ids.
const PersonCompanyPrefix = "person-"

type pdOrg struct {
	ID      Ident  `json:"id"`
	Name    string `json:"name"`
	Address *struct {
		Value           string `json:"value"`
		Country         string `json:"country"`
		AdminAreaLevel1 string `json:"admin_area_level_1"`
		Locality        string `json:"locality"`
		Route           string `json:"route"`
		StreetNumber    string `json:"street_number"`
		Subpremise      string `json:"subpremise"`
		PostalCode      string `json:"postal_code"`
	} `json:"address"`
	CustomFields map[string]json.RawMessage `json:"custom_fields"`
}

// streetLine is an address's street line: as the address was written
// (its first part, when that holds the route and the number: "123 Main
// St" in the US, "Hauptstr. 1" in Germany), else the route and the number
// Pipedrive read from it.
func streetLine(value, route, number string) string {
	first, _, _ := strings.Cut(value, ",")
	first = strings.TrimSpace(first)
	if route != "" && strings.Contains(strings.ToLower(first), strings.ToLower(route)) && strings.Contains(first, number) {
		return first
	}
	return strings.TrimSpace(route + " " + number)
}

type pdDealProduct struct {
	ID           Ident       `json:"id"`
	ProductID    Ident       `json:"product_id"`
	Name         string      `json:"name"`
	ItemPrice    json.Number `json:"item_price"`
	Quantity     json.Number `json:"quantity"`
	Discount     json.Number `json:"discount"`
	DiscountType string      `json:"discount_type"`
	// Sum is the line's total as Pipedrive computes it, Currency its
	// currency: checkLine holds the line against both.
	Sum       json.Number `json:"sum"`
	Currency  string      `json:"currency"`
	Tax       json.Number `json:"tax"`        // a percentage
	TaxMethod string      `json:"tax_method"` // exclusive, inclusive or none
	Comments  *string     `json:"comments"`
	IsEnabled *bool       `json:"is_enabled"`
	// BillingFrequency is "one-time", or how often a recurring product
	// (Growth plans and above) is billed: "weekly" … "annually". Absent on
	// plans without recurring products: one-time.
	BillingFrequency string `json:"billing_frequency"`
	// BillingFrequencyCycles is how many times a recurring product is
	// billed; empty (null) for one billed until cancelled.
	BillingFrequencyCycles json.Number `json:"billing_frequency_cycles"`
	BillingStartDate       *string     `json:"billing_start_date"`
}

// recurring says whether the product is billed on a schedule rather than
// once.
func (p pdDealProduct) recurring() bool {
	f := strings.TrimSpace(p.BillingFrequency)
	return f != "" && !strings.EqualFold(f, billingOneTime)
}

// billingOneTime is the billing_frequency of a product billed once.
const billingOneTime = "one-time"

type pdProduct struct {
	ID   Ident   `json:"id"`
	Code *string `json:"code"`
}

// pdDiscount is a discount on the whole deal (GET
// /api/v2/deals/{id}/discounts), which Pipedrive takes off the value of the
// deal's one-time products after their own discounts.
type pdDiscount struct {
	ID          string      `json:"id"`
	Type        string      `json:"type"` // percentage or amount
	Amount      json.Number `json:"amount"`
	Description string      `json:"description"`
}

func permanent(format string, args ...any) error {
	return fmt.Errorf("%w: pipedrive: "+format, append([]any{connectors.ErrPermanent}, args...)...)
}

// FetchDeal reads the deal (GET /api/v2/deals/{id}), its organization
// (GET /api/v2/organizations/{id}), its products (GET
// /api/v2/deals/{id}/products?sort_by=order_nr, all pages, in the order
// Pipedrive shows them), their codes (GET /api/v2/products?ids=...) and,
// when it has products, the discounts on the whole deal (GET
// /api/v2/deals/{id}/discounts). Numbers are read as exact decimals. A product
// discount of discount_type "percentage" becomes DiscountPercent, of type
// "amount" Discount (an amount off the line, or off each unit when the
// product's sum says so: checkLine, which also refuses a product priced in
// another currency than the deal's, or whose sum dealsync cannot account
// for). Disabled products (is_enabled false) are left out.
//
// A deleted deal (or one merged into another, which Pipedrive deletes) is
// reported in stage StageDeleted, with its own fields but neither its
// organization nor its products, which are not read: it is no longer a
// deal to invoice, and they may be gone too. The API answers such a deal
// 404, so on a 404 FetchDeal looks the id up among the company's deleted
// deals (kept 30 days; see deletedDeal); one not there either keeps the
// 404 (ErrPermanent). A deal answered with is_deleted true is deleted too.
//
// Line items are net of tax, as dealsync's invoice lines are: the ERP adds
// the tax. A product of tax_method "exclusive" or "none" is read as it is.
// One of tax_method "inclusive", whose item_price (and amount discount)
// include its tax percentage, becomes the net line that bills the same
// total once that tax is added (see netOfTax), and the deal's Amount, the
// deal value, which counts such lines with their tax, is lowered by the tax
// they include, so that it is compared with the net lines like for like. A
// line whose total no net amount reaches is billed a minor unit less; one
// that no net line can be made of (a negative quantity) fails the fetch
// (ErrPermanent), naming the deal, the product line and what to change.
//
// A deal with a recurring product (billing_frequency other than
// "one-time"), or with products and a discount on the whole deal, fails
// the fetch (ErrPermanent): the invoice of its one-time lines would not
// bill what the deal does (see refuseRecurringProducts and
// refuseDealDiscounts).
func (s *Source) FetchDeal(ctx context.Context, accountID, dealID string) (model.Deal, error) {
	acc, err := s.account(accountID)
	if err != nil {
		return model.Deal{}, err
	}
	if !connectors.IsDigits(dealID) {
		return model.Deal{}, permanent("deal id %q is not a Pipedrive id", dealID)
	}
	var pd pdDeal
	if _, err := s.call(ctx, acc, "fetch deal", http.MethodGet, "/api/v2/deals/"+dealID, nil, &pd); err != nil {
		var apiErr *connectors.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
			return model.Deal{}, err
		}
		deleted, found, lookupErr := s.deletedDeal(ctx, acc, dealID)
		if !found {
			if lookupErr == nil {
				return model.Deal{}, fmt.Errorf("%w (deal %s is neither among the company's deals nor among those deleted in the last 30 days: "+
					"check the deal id, and that the user of the API token or OAuth install can see every deal, as an admin does)", err, dealID)
			}
			if c, _ := connectors.Classify(lookupErr); c != connectors.Permanent {
				return model.Deal{}, lookupErr // not answered now: asked again on the retry
			}
			// The lookup was refused: the deal is not found, as the API said.
			return model.Deal{}, fmt.Errorf("%w (looking deal %s up among the deleted deals failed: %v)", err, dealID, lookupErr)
		}
		deleted.IsDeleted = true
		pd = deleted
	}
	d, err := dealHeader(dealID, pd)
	if err != nil {
		return model.Deal{}, err
	}
	if d.Stage == StageDeleted {
		return d, nil
	}

	if pd.OrgID != "" && pd.OrgID != "0" {
		var org pdOrg
		if _, err := s.call(ctx, acc, "fetch organization", http.MethodGet, "/api/v2/organizations/"+url.PathEscape(string(pd.OrgID)), nil, &org); err != nil {
			return model.Deal{}, err
		}
		d.Company = model.Company{
			ID:    string(org.ID),
			Name:  org.Name,
			Email: customText(org.CustomFields, s.fetch.OrganizationEmailField),
			TaxID: customText(org.CustomFields, s.fetch.OrganizationTaxIDField),
		}
		if a := org.Address; a != nil {
			line1 := streetLine(a.Value, a.Route, a.StreetNumber)
			if line1 == "" && a.Locality == "" && a.PostalCode == "" {
				line1 = a.Value // only the free-text address is known
			}
			d.Company.Address = model.Address{Line1: line1, Line2: a.Subpremise, City: a.Locality,
				Region: a.AdminAreaLevel1, PostalCode: a.PostalCode, Country: a.Country}
		}
	} else if pd.PersonID != "" && pd.PersonID != "0" {
		// A deal with a person and no organization (a private customer)
		// is billed to the person.
		var person pdPerson
		if _, err := s.call(ctx, acc, "fetch person", http.MethodGet, "/api/v2/persons/"+url.PathEscape(string(pd.PersonID)), nil, &person); err != nil {
			return model.Deal{}, err
		}
		d.Company = model.Company{ID: PersonCompanyPrefix + string(person.ID), Name: strings.TrimSpace(person.Name), Email: person.email()}
	}

	products, err := s.dealProducts(ctx, acc, dealID)
	if err != nil {
		return model.Deal{}, err
	}
	if err := refuseRecurringProducts(dealID, products); err != nil {
		return model.Deal{}, err
	}
	if len(products) > 0 {
		if err := s.refuseDealDiscounts(ctx, acc, dealID); err != nil {
			return model.Deal{}, err
		}
	}
	codes, err := s.productCodes(ctx, acc, products)
	if err != nil {
		return model.Deal{}, err
	}
	cur := model.Currency(d.Currency)
	includedTax := decimal.Zero // in the inclusive lines, counted in the deal value
	// The exclusive tax the lines' sums count, and the sums' total: a
	// deal's value is Pipedrive's total of its products' sums, with that
	// tax in it when they count it.
	exclusiveTax, sums, sumsKnown := decimal.Zero, decimal.Zero, len(products) > 0
	for _, p := range products {
		li := model.LineItem{SKU: codes[string(p.ProductID)], Description: p.Name}
		var bad string
		dec := func(name string, n json.Number) decimal.Decimal {
			if n == "" || bad != "" {
				return decimal.Zero
			}
			v, err := decimal.NewFromString(n.String())
			if err != nil {
				bad = fmt.Sprintf("%s %q is not a decimal", name, n)
			}
			return v
		}
		li.Quantity = dec("quantity", p.Quantity)
		li.UnitPrice = dec("item_price", p.ItemPrice)
		disc := dec("discount", p.Discount)
		if bad != "" {
			return model.Deal{}, permanent("deal %s product %s: %s", dealID, p.ID, bad)
		}
		switch p.DiscountType {
		case "amount":
			li.Discount = disc
		case "percentage", "":
			li.DiscountPercent = disc
		default:
			return model.Deal{}, permanent("deal %s product %s: unknown discount_type %q", dealID, p.ID, p.DiscountType)
		}
		// The line's rate, for mappings to choose its tax code by: the
		// product's tax, 0 when the deal adds none (tax_method none:
		// Pipedrive keeps the products' rates but adds no tax).
		rate := dec("tax", p.Tax)
		if bad != "" {
			return model.Deal{}, permanent("deal %s product %s: %s", dealID, p.ID, bad)
		}
		if rate.IsNegative() {
			return model.Deal{}, permanent("deal %s product %s: tax %s is negative", dealID, p.ID, rate)
		}
		taxInSum, err := checkLine(dealID, p, cur, &li, rate)
		if err != nil {
			return model.Deal{}, err
		}
		exclusiveTax = exclusiveTax.Add(taxInSum)
		if sum, err := decimal.NewFromString(p.Sum.String()); p.Sum != "" && err == nil {
			sums = sums.Add(cur.Round(sum))
		} else {
			sumsKnown = false // a line without its sum: the total is unknown
		}
		switch p.TaxMethod {
		case "":
		case taxNone:
			li.TaxRate = decimal.NewNullDecimal(decimal.Zero)
		case taxExclusive:
			li.TaxRate = decimal.NewNullDecimal(rate)
		case taxInclusive:
			li.TaxRate = decimal.NewNullDecimal(rate)
			net, tax, err := netOfTax(cur, li, rate)
			if err != nil {
				return model.Deal{}, permanent("deal %s product line %s (%q, %s × %s including %s%% tax, tax_method inclusive): %v; "+
					"dealsync invoices net prices and the ERP adds the tax, so the invoice would not bill what the deal does. "+
					"Change the line in Pipedrive (its price, quantity or discount) so that its total is one that can be invoiced, "+
					"or price the deal's products net of tax (tax_method exclusive), then retry the run (dealsync runs retry)",
					dealID, p.ID, p.Name, li.Quantity, li.UnitPrice, rate, err)
			}
			li, includedTax = net, includedTax.Add(tax)
		default:
			return model.Deal{}, permanent("deal %s product %s: unknown tax_method %q (want exclusive, inclusive or none)", dealID, p.ID, p.TaxMethod)
		}
		d.LineItems = append(d.LineItems, li)
	}
	if d.Amount.Valid && !exclusiveTax.IsZero() && sumsKnown {
		// Taken off only when the value is the sums' total (within a
		// minor unit a line, Pipedrive's rounding), nearer to it than to
		// the sums less that tax: a value set apart from the products
		// (net of tax, or any other) is left as it is, even where the
		// tax is within that rounding (a cent of tax).
		value := cur.Round(d.Amount.Decimal)
		rounding := decimal.New(int64(len(products)), -cur.MinorUnits()) // a minor unit a line
		if off := value.Sub(sums).Abs(); off.LessThanOrEqual(rounding) && off.LessThan(value.Sub(sums.Sub(exclusiveTax)).Abs()) {
			includedTax = includedTax.Add(exclusiveTax)
		}
	}
	if d.Amount.Valid && !includedTax.IsZero() {
		d.Amount = decimal.NewNullDecimal(d.Amount.Decimal.Sub(includedTax))
	}
	return d, nil
}

// rawKeys are the keys of a fetched deal's Raw (dealHeader).
var rawKeys = []string{"stage_id", "pipeline_id", "org_id", "custom_fields", "is_archived", "archive_time"}

// RawFields implements connectors.RawFielder: a fetched deal's Raw holds
// its stage, pipeline and organization ids, its custom fields and whether
// it is archived (and since when), whatever the config says.
func (s *Source) RawFields() connectors.RawFieldSet {
	return connectors.RawFieldSet{Exact: rawKeys,
		Advice: `a custom field is fromJSON(deal.raw["custom_fields"])["<its 40-character API key>"]`}
}

var _ connectors.RawFielder = (*Source)(nil)

// UnsetCompanyFields implements connectors.CompanyFielder: a Pipedrive
// organization's email and tax id are custom fields.
func (s *Source) UnsetCompanyFields() map[string]string {
	return connectors.UnsetCompanyFields("fetch.organization_email_field", s.fetch.OrganizationEmailField,
		"fetch.organization_tax_id_field", s.fetch.OrganizationTaxIDField)
}

// dealHeader is the deal's own fields as FetchDeal reports them: its
// status as the stage (StageDeleted for a deleted deal, whatever that
// says), its stage, pipeline and organization ids, custom fields and
// is_archived (with archive_time, when archived) in Raw, its value as
// Amount and its won, else expected or close time. An archived deal is
// read like any other (a won deal archived is still won and invoiced);
// its write-back is what Pipedrive refuses (see WriteBack).
func dealHeader(dealID string, pd pdDeal) (model.Deal, error) {
	stage := pd.Status
	if pd.IsDeleted {
		// Deleted (or merged into another deal), kept 30 days with its
		// status: no longer a deal to invoice, whatever that says.
		stage = StageDeleted
	}
	d := model.Deal{
		ID:       dealID,
		Name:     pd.Title,
		Stage:    stage,
		Currency: strings.ToUpper(pd.Currency),
		Owner:    string(pd.OwnerID),
		Raw:      map[string]json.RawMessage{},
	}
	// As a webhook's event carries them (stageRaw): numbers, so that the
	// trigger and the mapping read one type.
	for k, v := range map[string]Ident{"stage_id": pd.StageID, "pipeline_id": pd.PipelineID, "org_id": pd.OrgID} {
		if v != "" {
			d.Raw[k] = identRaw(v)
		}
	}
	// Always an object, {} for a deal without custom fields (Pipedrive
	// answers {} or leaves the key out): a mapping's
	// coalesce(fromJSON(deal.raw["custom_fields"])["<key>"], "") reads ""
	// then, where fromJSON of a missing key ("") failed the run.
	d.Raw["custom_fields"] = json.RawMessage(`{}`)
	if len(pd.CustomFields) > 0 {
		b, _ := json.Marshal(pd.CustomFields)
		d.Raw["custom_fields"] = b
	}
	archiveRaw(d.Raw, &pd.IsArchived, pd.ArchiveTime)
	if pd.Value != "" {
		v, err := decimal.NewFromString(pd.Value.String())
		if err != nil {
			return model.Deal{}, permanent("deal %s value %q is not a decimal", dealID, pd.Value)
		}
		d.Amount = decimal.NewNullDecimal(v)
	}
	for _, t := range []*string{pd.WonTime, pd.ExpectedCloseDate, pd.CloseTime} {
		if t == nil || strings.TrimSpace(*t) == "" {
			continue
		}
		date, at, err := parseDate(*t)
		if err != nil {
			return model.Deal{}, permanent("deal %s: %v", dealID, err)
		}
		d.CloseDate, d.CloseTime = date, at
		break
	}
	return d, nil
}

// deletedDeal looks the deal up among the company's deleted deals: GET
// /api/v2/deals/{id} answers 404 for a deleted deal, which Pipedrive keeps
// 30 days and lists with status=deleted (GET /api/v2/deals?ids=…&status=deleted,
// then the same of /api/v2/deals/archived, as the first list leaves out
// archived deals). found is false when neither has it.
func (s *Source) deletedDeal(ctx context.Context, acc *account, dealID string) (pdDeal, bool, error) {
	q := url.Values{"ids": {dealID}, "status": {StageDeleted}}
	for _, path := range []string{"/api/v2/deals", "/api/v2/deals/archived"} {
		var deals []pdDeal
		if _, err := s.call(ctx, acc, "look up deleted deal", http.MethodGet, path+"?"+q.Encode(), nil, &deals); err != nil {
			return pdDeal{}, false, err
		}
		for _, d := range deals {
			if string(d.ID) == dealID {
				return d, true, nil
			}
		}
	}
	return pdDeal{}, false, nil
}

func (s *Source) dealProducts(ctx context.Context, acc *account, dealID string) ([]pdDealProduct, error) {
	var out []pdDealProduct
	cursor := ""
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, permanent("deal %s has more than %d pages of products", dealID, maxPages)
		}
		// order_nr: the order the deal shows its products in, which the
		// invoice keeps (the API's default is the order they were added).
		q := url.Values{"limit": {"500"}, "sort_by": {"order_nr"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var items []pdDealProduct
		env, err := s.call(ctx, acc, "fetch deal products", http.MethodGet, "/api/v2/deals/"+dealID+"/products?"+q.Encode(), nil, &items)
		if err != nil {
			return nil, err
		}
		for _, p := range items {
			if p.IsEnabled == nil || *p.IsEnabled {
				out = append(out, p)
			}
		}
		if env.AdditionalData.NextCursor == nil || *env.AdditionalData.NextCursor == "" {
			return out, nil
		}
		cursor = *env.AdditionalData.NextCursor
	}
}

// refuseDealDiscounts fails (ErrPermanent) when the deal has discounts on
// the whole deal, naming them and what to change: dealsync invoices the
// deal's product lines, each with its own discount, and an invoice line
// has nowhere to take a discount on the whole deal that the ERPs would
// compute as Pipedrive does (before tax, spread over lines of different
// tax rates).
func (s *Source) refuseDealDiscounts(ctx context.Context, acc *account, dealID string) error {
	var discounts []pdDiscount
	if _, err := s.call(ctx, acc, "fetch deal discounts", http.MethodGet, "/api/v2/deals/"+dealID+"/discounts", nil, &discounts); err != nil {
		return err
	}
	if len(discounts) == 0 {
		return nil
	}
	names := make([]string, len(discounts))
	for i, d := range discounts {
		off := d.Amount.String()
		if d.Type == "percentage" {
			off += "%"
		}
		names[i] = fmt.Sprintf("%q (%s off)", d.Description, off)
	}
	return permanent("deal %s has %d discount(s) on the whole deal: %s; "+
		"dealsync invoices the deal's product lines and their own discounts, so the invoice would bill more than the deal's value. "+
		"Move the discount onto the deal's products in Pipedrive (each product's discount) and remove it from the deal, "+
		"then retry the run (dealsync runs retry)", dealID, len(discounts), strings.Join(names, ", "))
}

// refuseRecurringProducts fails (ErrPermanent) when products of the deal
// are recurring (billing_frequency other than "one-time": billed every
// week, month, quarter, half-year or year, a number of times or until
// cancelled, from billing_start_date), naming each with its schedule and
// saying what to change: dealsync makes one invoice when the deal is won,
// with a one-time line per product, so a recurring product would be billed
// once, as if one-time, and never on its schedule. Disabled products are
// not billed and were left out before.
func refuseRecurringProducts(dealID string, products []pdDealProduct) error {
	var names []string
	for _, p := range products {
		if !p.recurring() {
			continue
		}
		schedule := "billing_frequency " + strings.TrimSpace(p.BillingFrequency)
		if n := p.BillingFrequencyCycles.String(); n != "" {
			schedule += ", " + n + " cycles"
		} else {
			schedule += ", until cancelled"
		}
		if p.BillingStartDate != nil && strings.TrimSpace(*p.BillingStartDate) != "" {
			schedule += ", from " + strings.TrimSpace(*p.BillingStartDate)
		}
		names = append(names, fmt.Sprintf("%q (product line %s, %s)", p.Name, p.ID, schedule))
	}
	if len(names) == 0 {
		return nil
	}
	return permanent("deal %s has %d recurring product(s): %s; "+
		"dealsync makes one invoice of a won deal with a one-time line per product, so it would bill each recurring product once, not on its billing schedule. "+
		"If the deal is to be billed once, set the product's billing frequency to One-time in Pipedrive and retry the run (dealsync runs retry); "+
		"otherwise bill the subscription outside dealsync (the ERP's recurring invoices) and leave this run failed",
		dealID, len(names), strings.Join(names, ", "))
}

// productCodes reads the catalogue codes of the products, 100 ids a call.
func (s *Source) productCodes(ctx context.Context, acc *account, items []pdDealProduct) (map[string]string, error) {
	var ids []string
	seen := map[string]bool{}
	for _, p := range items {
		if id := string(p.ProductID); id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	codes := make(map[string]string, len(ids))
	for start := 0; start < len(ids); start += 100 {
		end := min(start+100, len(ids))
		q := url.Values{"ids": {strings.Join(ids[start:end], ",")}, "limit": {"100"}}
		var prods []pdProduct
		if _, err := s.call(ctx, acc, "fetch products", http.MethodGet, "/api/v2/products?"+q.Encode(), nil, &prods); err != nil {
			return nil, err
		}
		for _, p := range prods {
			if p.Code != nil {
				codes[string(p.ID)] = strings.TrimSpace(*p.Code)
			}
		}
	}
	return codes, nil
}

// customText reads a text custom field: a bare string (REST v2) or a typed
// object with a value (webhooks v2).
func customText(fields map[string]json.RawMessage, key string) string {
	if key == "" || fields == nil {
		return ""
	}
	raw := bytes.TrimSpace(fields[key])
	if len(raw) == 0 {
		return ""
	}
	// A text field is a string; a numerical one (a tax number kept as a
	// number) is a JSON number, taken as written; a typed one an object
	// with its value.
	text := func(raw json.RawMessage) (string, bool) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return strings.TrimSpace(s), true
		}
		var n json.Number
		if d := json.NewDecoder(bytes.NewReader(raw)); d.Decode(&n) == nil {
			return n.String(), true
		}
		return "", false
	}
	if s, ok := text(raw); ok {
		return s
	}
	var typed struct {
		Value json.RawMessage `json:"value"`
	}
	if json.Unmarshal(raw, &typed) == nil {
		s, _ := text(typed.Value)
		return s
	}
	return ""
}

// parseDate reads a Pipedrive date or time: won_time and close_time are
// UTC times ("2026-11-20 10:00:00", or RFC 3339), expected_close_date a
// date. It gives the UTC date and, for a time, that moment.
func parseDate(v string) (model.Date, time.Time, error) {
	v = strings.TrimSpace(v)
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return model.DateOf(t.UTC()), t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02 15:04:05", v); err == nil {
		return model.DateOf(t), t, nil
	}
	d, err := model.ParseDate(v)
	return d, time.Time{}, err
}

// WriteBackBody is the PATCH body WriteBack sends: the configured custom
// fields in "custom_fields" (API v2). Empty values are left out.
func (s *Source) WriteBackBody(result connectors.InvoiceResult) map[string]any {
	return map[string]any{"custom_fields": s.writeBackNames().Values(result)}
}

// WritesBack implements connectors.WriteBackSwitch: without a write-back
// field configured, the connection writes nothing back.
func (s *Source) WritesBack() bool { return s.writeBackNames().Any() }

// writeBackNames are the configured write-back fields.
func (s *Source) writeBackNames() crmkit.WriteBackNames {
	return crmkit.WriteBackNames{
		InvoiceID: s.write.InvoiceIDField, InvoiceNumber: s.write.InvoiceNumberField,
		InvoiceURL: s.write.InvoiceURLField, Status: s.write.StatusField, StatusValue: s.write.StatusValue,
	}
}

// WriteBack sets the configured deal custom fields: PATCH /api/v2/deals/{id}.
// With no field configured it does nothing. Pipedrive's API does not edit
// archived deals: the deal is read first, and an archived one is not sent
// the PATCH but fails the write-back for good with an ArchivedDealError
// that says what to do (archivedBeforeWriteBack); a PATCH refused because
// the deal was archived meanwhile fails so too (archivedAfterRefusal).
func (s *Source) WriteBack(ctx context.Context, accountID, dealID string, result connectors.InvoiceResult) error {
	acc, err := s.account(accountID)
	if err != nil {
		return err
	}
	if !connectors.IsDigits(dealID) {
		return permanent("deal id %q is not a Pipedrive id", dealID)
	}
	body := s.WriteBackBody(result)
	if len(body["custom_fields"].(map[string]string)) == 0 {
		return nil
	}
	if err := s.archivedBeforeWriteBack(ctx, acc, dealID, result); err != nil {
		return err
	}
	if _, err := s.call(ctx, acc, "write back", http.MethodPatch, "/api/v2/deals/"+dealID, body, nil); err != nil {
		return s.archivedAfterRefusal(ctx, acc, dealID, result, err)
	}
	return nil
}

// call sends one API request and decodes the envelope's data into out.
func (s *Source) call(ctx context.Context, acc *account, op, method, path string, in, out any) (*envelope, error) {
	api := s.api()
	body, err := api.Encode(op, in)
	if err != nil {
		return nil, err
	}
	resp, err := s.send(ctx, api, acc, op, method, path, body)
	if err != nil {
		return nil, err
	}
	var env envelope
	if err := json.Unmarshal(resp.Body, &env); err != nil {
		return nil, fmt.Errorf("pipedrive %s: decoding answer: %w", op, err)
	}
	if !env.Success {
		return nil, &connectors.APIError{Service: service, Op: op, StatusCode: resp.Status, Message: "success false: " + env.Error}
	}
	if out != nil {
		if err := crmkit.DecodeNumbers(env.Data, out); err != nil {
			return nil, fmt.Errorf("pipedrive %s: decoding data: %w", op, err)
		}
	}
	return &env, nil
}

// api is the Pipedrive API as crmkit sees it.
// send makes the request with the account's credentials. With OAuth, an
// access token the API rejects (401: revoked or expired early) is
// refreshed and the request sent once more.
func (s *Source) send(ctx context.Context, api *crmkit.Client, acc *account, op, method, path string, body []byte) (*crmkit.Response, error) {
	for attempt := 0; ; attempt++ {
		base := acc.baseURL
		h := http.Header{}
		var bearer string
		if acc.oauth == nil {
			h.Set("x-api-token", acc.apiKey)
		} else {
			tok, err := acc.oauth.Token(ctx)
			if err != nil {
				return nil, err
			}
			bearer = tok.AccessToken
			h.Set("Authorization", "Bearer "+bearer)
			if base == "" {
				base = DefaultBaseURL
				if d, ok := tok.Extra("api_domain").(string); ok && d != "" {
					base = strings.TrimRight(d, "/")
				}
			}
		}
		resp, err := api.Do(ctx, crmkit.Call{Op: op, Method: method, URL: base + path, Body: body, Header: h})
		var apiErr *connectors.APIError
		if acc.oauth != nil && attempt == 0 && errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnauthorized {
			acc.oauth.Invalidate(bearer)
			continue
		}
		if acc.oauth == nil && errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnauthorized {
			// A bare "unauthorized access" names neither the token nor
			// what to do.
			return resp, fmt.Errorf("%w; Pipedrive refused the API token of company %s, %s: it was regenerated, or its user lost access to the company; "+
				"set that user's current API token (Personal preferences > API in Pipedrive) and restart dealsync; then retry what failed on it (dealsync runs retry, with --writeback for a write-back)", err, acc.id, s.keys.Key("accounts."+acc.id+".api_token"))
		}
		if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusPaymentRequired {
			// Not retried (it lasts until someone pays): a bare "Payment
			// required" names neither the company nor what to do.
			return resp, fmt.Errorf("%w; the Pipedrive account of company %s is not open (possible reason: trial expired, payment details not entered): "+
				"a user of it with billing access enters the billing details or starts the subscription (Settings > Billing in Pipedrive), "+
				"then retry the runs that failed so (dealsync runs retry): they are not retried by themselves", err, acc.id)
		}
		return resp, err
	}
}

// tokenMessage reads Pipedrive's token endpoint errors ({"success":false,
// "message":"Invalid client credentials","error":"unauthorized"}).
func tokenMessage(re *oauth2.RetrieveError) string {
	var body struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(re.Body, &body) == nil && body.Message != "" {
		return body.Message
	}
	if re.ErrorDescription != "" {
		return re.ErrorDescription
	}
	return re.ErrorCode
}

func (s *Source) api() *crmkit.Client {
	return &crmkit.Client{Service: service, HTTP: s.client, Permanent: permanent, APIError: apiError}
}

// apiError reads Pipedrive's error envelope ({"success":false,"error":...,
// "error_info":...}) and how long a 429 asks to wait.
func apiError(op string, resp *http.Response, data []byte) *connectors.APIError {
	return apiErrorAt(op, resp, data, time.Now())
}

// apiErrorAt is apiError at the time now.
func apiErrorAt(op string, resp *http.Response, data []byte, now time.Time) *connectors.APIError {
	e := &connectors.APIError{Service: service, Op: op, StatusCode: resp.StatusCode,
		RetryAfter: connectors.ParseRetryAfter(resp.Header, now)}
	var env envelope
	if json.Unmarshal(data, &env) == nil && env.Error != "" {
		e.Message = env.Error
		e.Field = fieldOf(env.Error, env.ErrorInfo)
	} else {
		e.Message = crmkit.Short(string(data))
	}
	if resp.StatusCode == http.StatusForbidden && !json.Valid(data) {
		// Pipedrive's API answers JSON, its 403s too (a limit of the plan
		// reached, a permission: those stay 403s). A page that is not
		// JSON (HTML) is a proxy's or a CDN's, reportedly sent to a token
		// that goes on calling after 429s: not the credentials' refusal
		// but a passing block, retried with the policy's backoff as an
		// unavailable CRM is.
		e.Message = "HTTP 403 that is not Pipedrive's JSON answer (a proxy's or CDN's page, not a refusal of the credentials; retried with backoff): " + e.Message
		e.StatusCode = http.StatusServiceUnavailable
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		switch spent := dailyBudgetSpent(resp.Header, resp.Request != nil && connectors.IsWrite(resp.Request.Method)); {
		case spent != "":
			// The daily budget: nothing passes before it resets, so not
			// the 2-second window (X-RateLimit-Reset) is waited but
			// dailyBudgetWait, or the Retry-After if that is longer.
			e.RetryAfter = max(e.RetryAfter, dailyBudgetWait(now))
			e.Message += " (" + spent + " 0: the daily API budget is spent; Pipedrive blocks these calls until it resets at the start of the next day, " +
				"which dealsync looks for at midnight UTC and then every hour)"
		case e.RetryAfter == 0:
			// The burst limit of the token: its 2-second window.
			if n, err := strconv.Atoi(resp.Header.Get("X-RateLimit-Reset")); err == nil && n > 0 {
				e.RetryAfter = time.Duration(n) * time.Second
			}
		}
	}
	return e
}

// dailyBudgetSpent names the header of a 429 that says the daily budget
// is spent, "" if none does: the company's token budget
// (x-daily-ratelimit-token-remaining 0, token-based rate limiting) or, for
// a write (write) with an API token on an account still limited by
// requests, the day's POST/PUT requests (x-daily-requests-left 0; they do
// not limit reads, whose 429 is then the burst limit's).
func dailyBudgetSpent(h http.Header, write bool) string {
	for _, name := range []string{"x-daily-ratelimit-token-remaining", "x-daily-requests-left"} {
		if name == "x-daily-requests-left" && !write {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(h.Get(name))); err == nil && n <= 0 {
			return name
		}
	}
	return ""
}

// dailyBudgetWait is how long a run waits, at now, after Pipedrive refused
// a call because the company's daily budget is spent: until the next
// midnight UTC, and at most an hour. Pipedrive resets the budget "at the
// start of the next day" without saying in which time zone (its older
// daily POST/PUT limit was counted in UTC): a company's day may end at
// its own midnight, so after the UTC one the run looks again every hour
// rather than waiting a day it cannot place.
func dailyBudgetWait(now time.Time) time.Duration {
	y, m, d := now.UTC().Date()
	return min(time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC).Sub(now), time.Hour)
}

// fieldOf picks the field an error message names, as in
// "Invalid custom field value: 'abc…' ..." or "... field `value` ...".
func fieldOf(msgs ...string) string {
	for _, m := range msgs {
		for _, q := range []string{"`", "'", "\""} {
			if i := strings.Index(m, q); i >= 0 {
				if j := strings.Index(m[i+1:], q); j > 0 {
					return m[i+1 : i+1+j]
				}
			}
		}
	}
	return ""
}

// WebhookDeal implements connectors.WebhookShaper (webhookDeal).
func (s *Source) WebhookDeal(d model.Deal) model.Deal { return webhookDeal(d) }

// webhookDeal is the deal as a webhook of it carries it (the source
// type's connectors.SourceSpec.WebhookDeal): the deal as a webhook
// event of it says it (its status, stage and pipeline ids, whether it is
// archived and since when; the event's action is not known here).
func webhookDeal(d model.Deal) model.Deal {
	raw := map[string]json.RawMessage{}
	for _, k := range []string{"stage_id", "pipeline_id"} {
		// A fetched deal's ids are numbers (strings in a deal file saved
		// before they were): either is read.
		var id Ident
		if json.Unmarshal(d.Raw[k], &id) == nil && id != "" {
			raw[k] = identRaw(id) // a number when digits, as webhooks send it
		}
	}
	for _, k := range []string{"is_archived", "archive_time"} {
		if v, ok := d.Raw[k]; ok {
			raw[k] = v
		}
	}
	// A webhook says the stage the deal left (previous data).
	return model.Deal{ID: d.ID, Stage: d.Stage, PreviousStage: d.PreviousStage, Raw: raw}
}

var _ connectors.WebhookShaper = (*Source)(nil)

// WebhookRawKeys implements connectors.WebhookRawKeyser: what Parse keeps
// of a webhook in Raw (its custom fields are read by the run, not here).
func (s *Source) WebhookRawKeys() []string {
	return []string{"stage_id", "pipeline_id", "is_archived", "archive_time", "action", "previous_stage_id", "merged_from_id", "merged_to_id"}
}
