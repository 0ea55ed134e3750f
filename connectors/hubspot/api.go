package hubspot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
	"github.com/dealsync/dealsync/model"
)

const service = "hubspot"

// batchSize is the most ids one batch read takes.
const batchSize = 100

// Properties read by FetchDeal besides the configured ones.
var (
	// hs_is_closed_won is for mappings (deal.raw): won is judged from
	// the stage and the pipelines (stages.go).
	dealProperties    = []string{"dealname", "dealstage", "pipeline", "amount", "closedate", "hubspot_owner_id", "hs_is_closed_won"}
	companyProperties = []string{"name", "domain", "address", "address2", "city", "state", "zip", "country"}
	// hs_line_item_currency_code: a line item's currency, held against
	// the deal's (a portal without it answers none).
	lineItemProperties = []string{"name", "description", "hs_sku", "quantity", "price", "discount", "hs_discount_percentage", "amount", "hs_product_id", "hs_line_item_currency_code"}
)

// alwaysReturned are the properties HubSpot returns with every object,
// whichever are asked for.
var alwaysReturned = []string{"hs_object_id", "createdate", "hs_lastmodifieddate"}

// RawFields implements connectors.RawFielder: a fetched deal's Raw holds
// the deal properties FetchDeal asks for (its own, the currency property
// and fetch.extra_deal_properties) and those HubSpot always returns.
func (s *Source) RawFields() connectors.RawFieldSet {
	exact := slices.Concat(dealProperties, alwaysReturned, []string{s.fetch.CurrencyProperty}, s.fetch.ExtraDealProperties)
	exact = slices.DeleteFunc(exact, func(p string) bool { return p == "" })
	return connectors.RawFieldSet{Exact: exact, Setting: "fetch.extra_deal_properties"}
}

var _ connectors.RawFielder = (*Source)(nil)

// UnsetCompanyFields implements connectors.CompanyFielder: HubSpot's
// companies have no standard email or tax id property.
func (s *Source) UnsetCompanyFields() map[string]string {
	return connectors.UnsetCompanyFields("fetch.company_email_property", s.fetch.CompanyEmailProperty,
		"fetch.company_tax_id_property", s.fetch.CompanyTaxIDProperty)
}

// object is a CRM object as the objects API returns it. Property values are
// strings or null.
type object struct {
	ID           string                     `json:"id"`
	Archived     *bool                      `json:"archived"`
	Properties   map[string]*string         `json:"properties"`
	Associations map[string]associationList `json:"associations"`
}

type associationList struct {
	Results []struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"results"`
	Paging *struct {
		Next *struct {
			After string `json:"after"`
		} `json:"next"`
	} `json:"paging"`
}

type batchReadResult struct {
	Status  string   `json:"status"`
	Results []object `json:"results"`
}

func (o *object) prop(name string) string {
	if name == "" || o.Properties == nil {
		return ""
	}
	if v := o.Properties[name]; v != nil {
		return strings.TrimSpace(*v)
	}
	return ""
}

// FetchDeal reads the deal with its primary company and its line items
// (GET /crm/objects/2026-03/0-3/{id} with associations, then batch reads of
// the company and line items; associations beyond the first page through
// the associations API; paths.go). Amounts are read as exact decimals. HubSpot's
// line item `discount` is a unit discount: LineItem.Discount is it times the
// quantity. API failures are *connectors.APIError; a deal the answer cannot
// be mapped from wraps connectors.ErrPermanent. A company or line item the
// deal is associated with that the batch read does not return (deleted
// between the two reads) fails the fetch with an error that is retried.
//
// A deleted deal is reported in stage StageDeleted, with its own fields but
// neither its company nor its line items, which are not read: it is no
// longer a deal to invoice. HubSpot answers such a deal 404, so on a 404
// FetchDeal asks for it among the archived (deleted) deals (the same GET
// with archived=true, which answers archived objects only); one not there
// either keeps the 404 (Permanent). A merged-away deal is StageMerged, on
// either read: the answer is another deal than the one asked for.
func (s *Source) FetchDeal(ctx context.Context, accountID, dealID string) (model.Deal, error) {
	acc, err := s.account(accountID)
	if err != nil {
		return model.Deal{}, err
	}
	if !connectors.IsDigits(dealID) {
		return model.Deal{}, fmt.Errorf("%w: hubspot: deal id %q is not a HubSpot object id", connectors.ErrPermanent, dealID)
	}
	props := append([]string{}, dealProperties...)
	if p := s.fetch.CurrencyProperty; p != "" {
		props = append(props, p)
	}
	props = append(props, s.fetch.ExtraDealProperties...)
	q := url.Values{}
	q.Set("properties", strings.Join(props, ","))
	q.Set("associations", "companies,line_items")
	q.Set("archived", "false")
	var deal object
	deleted := false
	if err := s.call(ctx, acc, "fetch deal", http.MethodGet, dealPath(dealID)+"?"+q.Encode(), nil, &deal); err != nil {
		var apiErr *connectors.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
			return model.Deal{}, err
		}
		archived, found, lookupErr := s.archivedDeal(ctx, acc, dealID, props)
		if !found {
			if lookupErr == nil {
				return model.Deal{}, fmt.Errorf("%w (deal %s is neither among the portal's deals nor among its deleted ones: "+
					"check the deal id, and that the app's token can read the portal's deals)", err, dealID)
			}
			if c, _ := connectors.Classify(lookupErr); c != connectors.Permanent {
				// Not answered now (asked again on the retry), or the
				// credentials refused (CRMUnauthorized, as the other
				// sources' look-ups of deleted deals fail).
				return model.Deal{}, lookupErr
			}
			// The look-up was refused: the deal is not found, as the API said.
			return model.Deal{}, fmt.Errorf("%w (looking deal %s up among the deleted deals failed: %v)", err, dealID, lookupErr)
		}
		deal, deleted = archived, true
	}
	if deal.ID != "" && deal.ID != dealID {
		// Merged into deal.ID, which HubSpot answers with: two won deals
		// merged while their runs settle would otherwise both invoice it.
		// (Answered among the archived deals, the deal it went into was
		// deleted since: merged all the same.)
		return model.Deal{ID: dealID, Stage: StageMerged, Raw: map[string]json.RawMessage{"merged_into": crmkit.JSONString(deal.ID)}}, nil
	}

	d, err := s.dealHeader(dealID, deal)
	if err != nil {
		return model.Deal{}, err
	}
	if deleted {
		// Deleted (archived), whatever stage it was in: no longer a deal to
		// invoice. Its stage id stays in Raw["dealstage"].
		d.Stage = StageDeleted
		return d, nil
	}
	won, err := s.won(ctx, acc, d.Stage)
	if err != nil {
		return model.Deal{}, err
	}
	if won {
		d.Stage = StageWon
	}

	companies, err := s.associated(ctx, acc, deal.Associations, dealID, "companies", "companies")
	if err != nil {
		return model.Deal{}, err
	}
	id, err := primaryCompany(companies)
	if err != nil {
		return model.Deal{}, fmt.Errorf("%w: hubspot: deal %s: %v", connectors.ErrPermanent, dealID, err)
	}
	if id != "" {
		cprops := append([]string{}, companyProperties...)
		for _, p := range []string{s.fetch.CompanyEmailProperty, s.fetch.CompanyTaxIDProperty} {
			if p != "" {
				cprops = append(cprops, p)
			}
		}
		got, err := s.batchRead(ctx, acc, "companies", []string{id}, cprops)
		if err != nil {
			return model.Deal{}, err
		}
		c, ok := got[id]
		if !ok {
			return model.Deal{}, goneSinceAssociated("company", id, dealID)
		}
		d.Company = model.Company{
			ID:    id,
			Name:  c.prop("name"),
			Email: c.prop(s.fetch.CompanyEmailProperty),
			TaxID: c.prop(s.fetch.CompanyTaxIDProperty),
			Address: model.Address{
				Line1:      c.prop("address"),
				Line2:      c.prop("address2"),
				City:       c.prop("city"),
				Region:     c.prop("state"),
				PostalCode: c.prop("zip"),
				Country:    c.prop("country"),
			},
		}
	}

	items, err := s.associated(ctx, acc, deal.Associations, dealID, "line_items", "line_items", "line items")
	if err != nil {
		return model.Deal{}, err
	}
	ids := uniqueIDs(items)
	if len(ids) > 0 {
		got, err := s.batchRead(ctx, acc, "line_items", ids, lineItemProperties)
		if err != nil {
			return model.Deal{}, err
		}
		for _, id := range ids {
			li, ok := got[id]
			if !ok {
				return model.Deal{}, goneSinceAssociated("line item", id, dealID)
			}
			item, err := lineItem(li)
			if err != nil {
				return model.Deal{}, fmt.Errorf("%w: hubspot: deal %s line item %s: %v", connectors.ErrPermanent, dealID, id, err)
			}
			// dealsync invoices a deal in its currency: a line priced in
			// another would be billed as the deal's at its figures.
			if c := strings.ToUpper(li.prop("hs_line_item_currency_code")); c != "" && d.Currency != "" && c != d.Currency {
				return model.Deal{}, fmt.Errorf("%w: hubspot: deal %s line item %s (%q) is priced in %s but the deal is in %s: "+
					"dealsync invoices a deal in its own currency and would bill the line's figures as %s. "+
					"Make the line item's currency the deal's in HubSpot, then retry the run (dealsync runs retry)",
					connectors.ErrPermanent, dealID, id, item.Description, c, d.Currency, d.Currency)
			}
			d.LineItems = append(d.LineItems, item)
		}
	}
	return d, nil
}

// goneSinceAssociated is the error of an object the deal is associated
// with that the batch read (of objects not archived) did not answer:
// HubSpot leaves an id it cannot read out of the results (207,
// OBJECT_NOT_FOUND), typically an object deleted or merged between the
// deal's read and the batch read. It is not permanent: the fetch is
// retried, and reads the deal's associations again.
func goneSinceAssociated(what, id, dealID string) error {
	return fmt.Errorf("hubspot: deal %s is associated with %s %s, which the batch read did not return "+
		"(deleted or merged since the deal was read?): the deal is read again", dealID, what, id)
}

// dealHeader is the deal's own fields: its name, currency, owner, amount
// and close date, its properties in Raw and its stage id as the stage (to
// be judged won or not by the caller).
func (s *Source) dealHeader(dealID string, deal object) (model.Deal, error) {
	d := model.Deal{
		ID:       dealID,
		Name:     deal.prop("dealname"),
		Stage:    deal.prop("dealstage"),
		Currency: strings.ToUpper(deal.prop(s.fetch.CurrencyProperty)),
		Owner:    deal.prop("hubspot_owner_id"),
		Raw:      make(map[string]json.RawMessage, len(deal.Properties)),
	}
	for k, v := range deal.Properties {
		if v != nil {
			d.Raw[k] = crmkit.JSONString(*v)
		}
	}
	if a := deal.prop("amount"); a != "" {
		v, err := decimal.NewFromString(a)
		if err != nil {
			return model.Deal{}, fmt.Errorf("%w: hubspot: deal %s amount %q is not a decimal", connectors.ErrPermanent, dealID, a)
		}
		d.Amount = decimal.NewNullDecimal(v)
	}
	if cd := deal.prop("closedate"); cd != "" {
		date, at, err := parseHubSpotDate(cd)
		if err != nil {
			return model.Deal{}, fmt.Errorf("%w: hubspot: deal %s closedate: %v", connectors.ErrPermanent, dealID, err)
		}
		d.CloseDate, d.CloseTime = date, at
	}
	return d, nil
}

// archivedDeal looks the deal up among the portal's archived (deleted)
// deals: GET /crm/objects/2026-03/0-3/{id}?archived=true answers archived
// objects only (HubSpot keeps a deleted deal 90 days). found is false when
// it answers 404: no such deal, deleted or not.
func (s *Source) archivedDeal(ctx context.Context, acc *account, dealID string, props []string) (object, bool, error) {
	q := url.Values{}
	q.Set("properties", strings.Join(props, ","))
	q.Set("archived", "true")
	var deal object
	if err := s.call(ctx, acc, "look up deleted deal", http.MethodGet, dealPath(dealID)+"?"+q.Encode(), nil, &deal); err != nil {
		var apiErr *connectors.APIError
		if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
			return object{}, false, nil
		}
		return object{}, false, err
	}
	if deal.ID == dealID && deal.Archived != nil && !*deal.Archived {
		// Answered 404, then found but not as archived: restored in
		// between, or a read not yet consistent. Not a deleted deal: the
		// fetch is retried (a plain error), and reads it then.
		return object{}, false, fmt.Errorf("hubspot: deal %s was answered 404, then found among the deleted deals but not archived (restored meanwhile?): read again", dealID)
	}
	return deal, true, nil
}

type assoc = struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// associated returns the deal's associations of one kind (the objects API
// names line items "line items" in some answers). When the embedded list
// has more pages, all of them are read through the associations API.
func (s *Source) associated(ctx context.Context, acc *account, all map[string]associationList, dealID, toType string, names ...string) ([]assoc, error) {
	for _, n := range names {
		l, ok := all[n]
		if !ok {
			continue
		}
		if l.Paging != nil && l.Paging.Next != nil {
			return s.allAssociations(ctx, acc, dealID, toType)
		}
		out := make([]assoc, len(l.Results))
		for i, r := range l.Results {
			out[i] = assoc{ID: r.ID, Type: r.Type}
		}
		return out, nil
	}
	return nil, nil
}

// associationsPage is a page of GET
// /crm/objects/2026-03/0-3/{id}/associations/{toObjectType}.
type associationsPage struct {
	Results []struct {
		ToObjectID       json.Number `json:"toObjectId"`
		AssociationTypes []struct {
			Category string `json:"category"`
			TypeID   int    `json:"typeId"`
		} `json:"associationTypes"`
	} `json:"results"`
	Paging *struct {
		Next *struct {
			After string `json:"after"`
		} `json:"next"`
	} `json:"paging"`
}

// primaryCompanyTypeID is HubSpot's "Primary" deal-to-company association.
const primaryCompanyTypeID = 5

// maxAssociationPages bounds the pages read (500 associations each).
const maxAssociationPages = 20

func (s *Source) allAssociations(ctx context.Context, acc *account, dealID, toType string) ([]assoc, error) {
	var out []assoc
	after := ""
	for page := 0; page < maxAssociationPages; page++ {
		q := url.Values{"limit": {"500"}}
		if after != "" {
			q.Set("after", after)
		}
		var res associationsPage
		if err := s.call(ctx, acc, "read "+strings.ReplaceAll(toType, "_", " ")+" associations", http.MethodGet,
			dealAssociationsPath(dealID, toType)+"?"+q.Encode(), nil, &res); err != nil {
			return nil, err
		}
		for _, r := range res.Results {
			a := assoc{ID: r.ToObjectID.String(), Type: "deal_to_" + strings.TrimSuffix(toType, "s")}
			if toType == "companies" {
				a.Type = "deal_to_company_unlabeled"
				for _, t := range r.AssociationTypes {
					if t.Category == "HUBSPOT_DEFINED" && t.TypeID == primaryCompanyTypeID {
						a.Type = "deal_to_company"
					}
				}
			}
			out = append(out, a)
		}
		if res.Paging == nil || res.Paging.Next == nil || res.Paging.Next.After == "" {
			return out, nil
		}
		after = res.Paging.Next.After
	}
	return nil, fmt.Errorf("%w: hubspot: deal %s has more than %d pages of %s", connectors.ErrPermanent, dealID, maxAssociationPages, toType)
}

// primaryCompany picks the company with the primary association
// ("deal_to_company"), else the deal's one company; "" for none. Several
// companies and none primary is an error naming them: which one is billed
// is for a person to say (HubSpot's Primary label), not the list's order.
func primaryCompany(list []assoc) (string, error) {
	for _, a := range list {
		if a.Type == "deal_to_company" {
			return a.ID, nil
		}
	}
	switch ids := uniqueIDs(list); len(ids) {
	case 0:
		return "", nil
	case 1:
		return ids[0], nil
	default:
		return "", fmt.Errorf("%d companies are associated (%s) and none is the Primary one: label the company to invoice as Primary on the deal in HubSpot, then retry the run (dealsync runs retry)",
			len(ids), strings.Join(ids, ", "))
	}
}

func uniqueIDs(list []assoc) []string {
	seen := make(map[string]bool, len(list))
	var out []string
	for _, a := range list {
		if a.ID != "" && !seen[a.ID] {
			seen[a.ID] = true
			out = append(out, a.ID)
		}
	}
	return out
}

func lineItem(o object) (model.LineItem, error) {
	li := model.LineItem{SKU: o.prop("hs_sku"), Description: o.prop("name")}
	if li.Description == "" {
		li.Description = o.prop("description")
	}
	var err error
	dec := func(name string) decimal.Decimal {
		v := o.prop(name)
		if v == "" || err != nil {
			return decimal.Zero
		}
		d, e := decimal.NewFromString(v)
		if e != nil {
			err = fmt.Errorf("%s %q is not a decimal", name, v)
		}
		return d
	}
	li.Quantity = dec("quantity")
	li.UnitPrice = dec("price")
	unitDiscount := dec("discount")
	li.DiscountPercent = dec("hs_discount_percentage")
	if err != nil {
		return model.LineItem{}, err
	}
	li.Discount = unitDiscount.Mul(li.Quantity)
	return li, nil
}

// parseHubSpotDate reads a date property: an ISO date or timestamp, or Unix
// milliseconds. It gives the UTC date and, for a moment of the day, that
// moment. HubSpot keeps a date property as midnight UTC of that date and
// shows it as that date in every time zone (its FAQ "How should timestamps
// be formatted for HubSpot's APIs?"): exactly midnight UTC is a date, not a
// moment.
func parseHubSpotDate(v string) (model.Date, time.Time, error) {
	var t time.Time
	switch {
	case connectors.IsDigits(v):
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return model.Date{}, time.Time{}, err
		}
		t = time.UnixMilli(ms).UTC()
	default:
		var err error
		if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
			d, err := model.ParseDate(v)
			return d, time.Time{}, err
		}
		t = t.UTC()
	}
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return model.DateOf(t), time.Time{}, nil
	}
	return model.DateOf(t), t, nil
}

// batchRead reads objects by id in batches of 100, keyed by id.
func (s *Source) batchRead(ctx context.Context, acc *account, objectType string, ids, props []string) (map[string]object, error) {
	out := make(map[string]object, len(ids))
	for start := 0; start < len(ids); start += batchSize {
		end := min(start+batchSize, len(ids))
		inputs := make([]map[string]string, 0, end-start)
		for _, id := range ids[start:end] {
			inputs = append(inputs, map[string]string{"id": id})
		}
		body := map[string]any{"properties": props, "propertiesWithHistory": []string{}, "inputs": inputs}
		var res batchReadResult
		if err := s.call(ctx, acc, "read "+strings.ReplaceAll(objectType, "_", " "), http.MethodPost,
			batchReadPath(objectType)+"?archived=false", body, &res); err != nil {
			return nil, err
		}
		for _, o := range res.Results {
			out[o.ID] = o
		}
	}
	return out, nil
}

// WriteBackBody is the PATCH body WriteBack sends: the configured deal
// properties, all as strings (HubSpot property values are strings). Empty
// values are left out rather than clearing the property.
func (s *Source) WriteBackBody(result connectors.InvoiceResult) map[string]any {
	return map[string]any{"properties": s.writeBackNames().Values(result)}
}

// WritesBack implements connectors.WriteBackSwitch: without a write-back
// field configured, the connection writes nothing back.
func (s *Source) WritesBack() bool { return s.writeBackNames().Any() }

// writeBackNames are the configured write-back properties.
func (s *Source) writeBackNames() crmkit.WriteBackNames {
	return crmkit.WriteBackNames{
		InvoiceID: s.write.InvoiceIDProperty, InvoiceNumber: s.write.InvoiceNumberProperty,
		InvoiceURL: s.write.InvoiceURLProperty, Status: s.write.StatusProperty, StatusValue: s.write.StatusValue,
	}
}

// WriteBack records the invoice on the deal: PATCH
// /crm/objects/2026-03/0-3/{id} with the configured properties (see
// WriteBackBody). With no property configured it does nothing. An answer
// naming another deal (the deal was merged into it?) is logged.
func (s *Source) WriteBack(ctx context.Context, accountID, dealID string, result connectors.InvoiceResult) error {
	acc, err := s.account(accountID)
	if err != nil {
		return err
	}
	if !connectors.IsDigits(dealID) {
		return fmt.Errorf("%w: hubspot: deal id %q is not a HubSpot object id", connectors.ErrPermanent, dealID)
	}
	body := s.WriteBackBody(result)
	if len(body["properties"].(map[string]string)) == 0 {
		return nil
	}
	answer, err := s.send(ctx, acc, "write back", http.MethodPatch, dealPath(dealID), body)
	if err != nil {
		return err
	}
	// The deal answered, when it can be read: an answer that cannot (an
	// empty body) is still HubSpot's success.
	var ans struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(answer, &ans) == nil && ans.ID != "" && ans.ID != dealID {
		// HubSpot answers a merged-away deal's id with the deal it went
		// into (as a GET does): the invoice of this deal may have been
		// written onto that one, replacing its own invoice fields. A
		// warning, not a failure: whether a PATCH follows a merge is not
		// verified, and a mock of the API (Prism) answers its example's id.
		s.log.Warn("hubspot: the write-back of a deal was answered with another deal: if the deal was merged into it, the invoice was written onto that deal "+
			"(check its invoice properties: they may now name this deal's invoice rather than its own)",
			"portal", accountID, "deal_id", dealID, "answered_deal_id", ans.ID, "invoice_id", result.InvoiceID)
	}
	return nil
}

// call sends one API request with the account's token and decodes a 2xx
// answer into out (when not nil). Non-2xx answers are *connectors.APIError.
func (s *Source) call(ctx context.Context, acc *account, op, method, path string, in, out any) error {
	answer, err := s.send(ctx, acc, op, method, path, in)
	if err != nil {
		return err
	}
	return s.api().Decode(op, answer, out)
}

// send sends one API request with the account's token and returns a 2xx
// answer's body. Non-2xx answers are *connectors.APIError.
func (s *Source) send(ctx context.Context, acc *account, op, method, path string, in any) ([]byte, error) {
	api := s.api()
	body, err := api.Encode(op, in)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		resp, err := api.Do(ctx, crmkit.Call{Op: op, Method: method, URL: s.baseURL + path, Body: body, Token: acc.token})
		var apiErr *connectors.APIError
		if attempt == 0 && acc.oauth != nil && errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnauthorized && apiErr.Op == op {
			// An access token refused before its expiry: a new one (Do dropped it), once.
			continue
		}
		if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnauthorized && apiErr.Op == op {
			// The API's refusal; the token endpoint's (a refresh refused)
			// says its own.
			// HubSpot's EXPIRED_AUTHENTICATION or "authentication
			// credentials not found" names neither the setting nor what
			// to do.
			if acc.oauth == nil {
				return nil, fmt.Errorf("%w; HubSpot refused the private app's access token of portal %s, %s: it was rotated, "+
					"or the app was deleted from the portal; set the app's current token (Settings > Integrations > Private Apps in HubSpot) and restart dealsync, "+
					"then retry the runs that failed so (dealsync runs retry; --writeback for those that failed writing back)", err, acc.id, s.keys.Key("accounts."+acc.id+".access_token"))
			}
			oauth := s.keys.Under("accounts." + acc.id + ".oauth")
			return nil, fmt.Errorf("%w; HubSpot refused portal %s's OAuth access token, one just refreshed too, of the app set in %s: check that "+
				"the app is still installed in the portal and that %s are that app's, restart dealsync, "+
				"then retry the runs that failed so (dealsync runs retry; --writeback for those that failed writing back)", err, acc.id, s.keys.Key("accounts."+acc.id+".oauth"), oauth.List("client_id", "client_secret"))
		}
		if err != nil {
			return nil, err
		}
		return resp.Body, nil
	}
}

// api is the HubSpot API as crmkit sees it.
func (s *Source) api() *crmkit.Client {
	return &crmkit.Client{Service: service, HTTP: s.client, Permanent: permanent, APIError: apiError}
}

// permanent wraps connectors.ErrPermanent: "hubspot <format>".
func permanent(format string, args ...any) error {
	return fmt.Errorf("%w: hubspot "+format, append([]any{connectors.ErrPermanent}, args...)...)
}

// errorBody is HubSpot's error answer.
type errorBody struct {
	Message  string              `json:"message"`
	Category string              `json:"category"`
	Context  map[string][]string `json:"context"`
	// CorrelationID is what HubSpot's support asks for about an error.
	CorrelationID string `json:"correlationId"`
	// PolicyName is the rate limit a 429 hit: DAILY, or a rolling one
	// (TEN_SECONDLY_ROLLING, SECONDLY).
	PolicyName string `json:"policyName"`
	Errors     []struct {
		Message string              `json:"message"`
		In      string              `json:"in"`
		Context map[string][]string `json:"context"`
	} `json:"errors"`
}

// dailyLimitWait is how long a run waits after HubSpot's daily limit
// refused a call: the limit resets at the portal's midnight, which
// dealsync does not know, so it looks again every hour.
const dailyLimitWait = time.Hour

// propertyName finds the property a validation message names, e.g. in
// `Property values were not valid: [{"isValid":false,...,"name":"erp_x"}]`.
var propertyName = regexp.MustCompile(`"name"\s*:\s*"([^"]+)"`)

func apiError(op string, resp *http.Response, data []byte) *connectors.APIError {
	e := &connectors.APIError{Service: service, Op: op, StatusCode: resp.StatusCode,
		RetryAfter: connectors.ParseRetryAfter(resp.Header, time.Now())}
	var eb errorBody
	if json.Unmarshal(data, &eb) == nil && (eb.Message != "" || eb.Category != "") {
		e.Message = eb.Message
		if eb.Category != "" && !strings.Contains(e.Message, eb.Category) {
			e.Message = eb.Category + ": " + e.Message
		}
		for _, d := range eb.Errors {
			if d.In != "" {
				e.Field = d.In
				break
			}
			if v := d.Context["propertyName"]; len(v) > 0 {
				e.Field = v[0]
				break
			}
		}
		if e.Field == "" {
			if v := eb.Context["propertyName"]; len(v) > 0 {
				e.Field = v[0]
			} else if m := propertyName.FindStringSubmatch(eb.Message); m != nil {
				e.Field = m[1]
			}
		}
		// A 403 MISSING_SCOPES names the scopes the app lacks there.
		var scopes []string
		for _, d := range eb.Errors {
			scopes = append(scopes, d.Context["requiredGranularScopes"]...)
			scopes = append(scopes, d.Context["requiredScopes"]...)
		}
		if len(scopes) > 0 {
			slices.Sort(scopes)
			e.Message += " (required scopes: " + strings.Join(slices.Compact(scopes), ", ") + ")"
		}
		if eb.CorrelationID != "" {
			e.Message += " (correlationId " + eb.CorrelationID + ", for HubSpot's support)"
		}
	} else {
		e.Message = crmkit.Short(string(data))
	}
	if e.StatusCode == http.StatusTooManyRequests && e.RetryAfter == 0 {
		switch {
		case eb.PolicyName == "DAILY" || resp.Header.Get("X-HubSpot-RateLimit-Daily-Remaining") == "0":
			// The portal's daily limit: nothing passes before it resets
			// (midnight in the portal's time zone), so each run waits an
			// hour between tries instead of the policy's backoff.
			e.RetryAfter = dailyLimitWait
			e.Message += " (policy DAILY: the portal's daily API limit is spent; it resets at midnight in the portal's time zone)"
		default:
			// A rolling (burst) limit: HubSpot refused the call, so its
			// window is waited, as long as the answer says it is, whatever
			// X-HubSpot-RateLimit-Remaining says (it may be absent, or
			// not 0). Without the interval, the policy's backoff.
			if ms, err := strconv.Atoi(resp.Header.Get("X-HubSpot-RateLimit-Interval-Milliseconds")); err == nil && ms > 0 {
				e.RetryAfter = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return e
}

// WebhookDeal implements connectors.WebhookShaper (webhookDeal).
func (s *Source) WebhookDeal(d model.Deal) model.Deal { return webhookDeal(d) }

// webhookDeal is the deal as a webhook of it carries it (the source
// type's connectors.SourceSpec.WebhookDeal): a stage change of the
// deal, as Parse reads it (the stage, won stages as StageWon; in Raw the
// event's fields and the stage id).
func webhookDeal(d model.Deal) model.Deal {
	stageID := d.Raw["dealstage"]
	raw := map[string]json.RawMessage{
		"subscriptionType": crmkit.JSONString("deal.propertyChange"),
		"propertyName":     crmkit.JSONString("dealstage"),
	}
	if stageID != nil {
		raw["propertyValue"], raw["dealstage"] = stageID, stageID
	}
	return model.Deal{ID: d.ID, Stage: d.Stage, Raw: raw}
}

var _ connectors.WebhookShaper = (*Source)(nil)

// WebhookRawKeys implements connectors.WebhookRawKeyser: the event's
// fields Parse keeps in Raw, and the stage id.
func (s *Source) WebhookRawKeys() []string {
	return []string{"subscriptionType", "propertyName", "propertyValue", "changeSource", "restored", "dealstage", "merged_into", "merged_ids"}
}
