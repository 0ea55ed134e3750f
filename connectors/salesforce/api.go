package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/oauth2"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
	"github.com/dealsync/dealsync/model"
)

const service = "salesforce"

// maxPages bounds the query pages read for one deal; maxListPages those of
// one listing of won deals (`deals sync`): 5 million opportunities at
// Salesforce's 2,000 a page, handed on page by page.
const (
	maxPages     = 20
	maxListPages = 2500
)

func permanent(format string, args ...any) error {
	return fmt.Errorf("%w: salesforce: "+format, append([]any{connectors.ErrPermanent}, args...)...)
}

type queryResult struct {
	TotalSize      int              `json:"totalSize"`
	Done           bool             `json:"done"`
	NextRecordsURL string           `json:"nextRecordsUrl"`
	Records        []map[string]any `json:"records"`
}

// field reads a dotted path ("Account.Name") of a record. Salesforce
// answers a field under its API name as the org spells it, whatever the
// case it was selected in (SOQL names are case-insensitive): a name not
// found as written is looked up ignoring case, so that `amount` in
// fetch.extra_fields reads Amount.
func field(rec map[string]any, path string) any {
	var cur any = rec
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		v, ok := m[p]
		if !ok {
			for k, x := range m {
				if strings.EqualFold(k, p) {
					v = x
					break
				}
			}
		}
		cur = v
	}
	return cur
}

// selectFields is fields with each of more that is not empty and not
// selected yet appended, in order. Salesforce refuses a query that selects
// a field twice (400 INVALID_FIELD "duplicate field selected: X"), and its
// field names are case-insensitive: `amount` is Amount, so the names are
// compared ignoring case.
func selectFields(fields []string, more ...string) []string {
	out := slices.Clone(fields)
	for _, f := range more {
		if f != "" && !slices.ContainsFunc(out, func(g string) bool { return strings.EqualFold(f, g) }) {
			out = append(out, f)
		}
	}
	return out
}

func text(rec map[string]any, path string) string {
	if path == "" {
		return ""
	}
	switch v := field(rec, path).(type) {
	case string:
		return strings.TrimSpace(v)
	case json.Number:
		return v.String()
	case bool:
		return fmt.Sprint(v)
	}
	return ""
}

func number(rec map[string]any, path string) (decimal.Decimal, bool, error) {
	switch v := field(rec, path).(type) {
	case nil:
		return decimal.Zero, false, nil
	case json.Number:
		d, err := decimal.NewFromString(v.String())
		return d, err == nil, err
	case string:
		d, err := decimal.NewFromString(v)
		return d, err == nil, err
	default:
		return decimal.Zero, false, fmt.Errorf("%s is a %T, not a number", path, v)
	}
}

func accountField(f string) string {
	if f == "" || strings.HasPrefix(f, "Account.") {
		return f
	}
	return "Account." + f
}

// baseFields are the Opportunity fields FetchDeal always selects.
var baseFields = []string{"Id", "Name", "StageName", "IsWon", "Amount", "CloseDate", "OwnerId", "AccountId",
	"Account.Name", "Account.BillingStreet", "Account.BillingCity", "Account.BillingState",
	"Account.BillingPostalCode", "Account.BillingCountry"}

// RawFields implements connectors.RawFielder: the keys of a fetched
// deal's Raw. Exact: the fields FetchDeal always selects, by their
// top-level name as Salesforce answers them (a relationship field,
// Account.Name, is inside its parent's object, "Account"),
// CurrencyIsoCode (read where the org has one, without a currency_field)
// and each extra field and currency_field as configured. In any case:
// the top-level names of those, which Salesforce answers in the org's
// spelling.
func (s *Source) RawFields() connectors.RawFieldSet {
	var exact, anyCase []string
	add := func(list *[]string, f string) {
		if f != "" && !slices.Contains(*list, f) {
			*list = append(*list, f)
		}
	}
	for _, f := range baseFields {
		top, _, _ := strings.Cut(f, ".")
		add(&exact, top)
	}
	if s.fetch.CurrencyField == "" {
		add(&exact, "CurrencyIsoCode")
	}
	for _, f := range append([]string{s.fetch.CurrencyField}, s.fetch.ExtraFields...) {
		add(&exact, f)
		top, _, _ := strings.Cut(f, ".")
		add(&anyCase, top)
	}
	return connectors.RawFieldSet{Exact: exact, AnyCase: anyCase, Setting: "fetch.extra_fields"}
}

var _ connectors.RawFielder = (*Source)(nil)

// UnsetCompanyFields implements connectors.CompanyFielder: an Account's
// email and tax id are custom fields.
func (s *Source) UnsetCompanyFields() map[string]string {
	return connectors.UnsetCompanyFields("fetch.account_email_field", s.fetch.AccountEmailField,
		"fetch.account_tax_id_field", s.fetch.AccountTaxIDField)
}

// FetchDeal reads the Opportunity with its Account (one SOQL query with the
// Account relationship) and its OpportunityLineItems (a second query, all
// pages). OpportunityLineItem.Discount is a percentage (DiscountPercent).
func (s *Source) FetchDeal(ctx context.Context, accountID, dealID string) (model.Deal, error) {
	acc, err := s.account(accountID)
	if err != nil {
		return model.Deal{}, err
	}
	full, ok := caseSafeID(dealID)
	if !ok {
		return model.Deal{}, permanent("%q is not a Salesforce record id", dealID)
	}
	dealID = full // its 18-character form, as the webhooks name it
	email, tax := accountField(s.fetch.AccountEmailField), accountField(s.fetch.AccountTaxIDField)
	fields := selectFields(baseFields, append([]string{email, tax, s.fetch.CurrencyField}, s.fetch.ExtraFields...)...)
	// Without a currency_field, the Opportunity's CurrencyIsoCode is read
	// where the org has one (a multi-currency org): its deals are not all
	// in default_currency. A single-currency org refuses the field; it is
	// then asked for no more. One that extra_fields selects already is
	// not selected twice (nor dropped: it was asked for).
	currencyField := s.fetch.CurrencyField
	auto := currencyField == "" && !acc.singleCurrency.Load()
	if auto {
		currencyField = "CurrencyIsoCode"
	}
	withCurrency := selectFields(fields, currencyField)
	oppQuery := func(fields []string) ([]map[string]any, error) {
		return s.query(ctx, acc, "fetch opportunity", "SELECT "+strings.Join(fields, ", ")+" FROM Opportunity WHERE Id = '"+dealID+"'")
	}
	var opps []map[string]any
	if auto && len(withCurrency) > len(fields) {
		opps, err = oppQuery(withCurrency)
		var api *connectors.APIError
		if errors.As(err, &api) && api.StatusCode == http.StatusBadRequest && strings.Contains(api.Message, "'CurrencyIsoCode'") {
			acc.singleCurrency.Store(true)
			currencyField = ""
			opps, err = oppQuery(fields)
		}
	} else {
		opps, err = oppQuery(fields)
	}
	if err != nil {
		return model.Deal{}, err
	}
	if len(opps) == 0 {
		return s.deletedDeal(ctx, acc, dealID)
	}
	o := opps[0]
	d := model.Deal{
		ID:       dealID,
		Name:     text(o, "Name"),
		Owner:    text(o, "OwnerId"),
		Currency: strings.ToUpper(text(o, currencyField)),
		Raw:      map[string]json.RawMessage{},
	}
	if d.Currency == "" {
		d.Currency = acc.defaultCurrency
	}
	if d.Currency == "" {
		d.Currency = strings.ToUpper(s.fetch.DefaultCurrency)
	}
	stage := text(o, "StageName")
	if text(o, "IsWon") == "true" || s.wonStages[strings.ToLower(stage)] || acc.wonStages[strings.ToLower(stage)] {
		stage = StageWon
	}
	d.Stage = stage
	for k, v := range o {
		if k == "attributes" {
			continue
		}
		if b, err := json.Marshal(v); err == nil {
			d.Raw[k] = b
		}
	}
	// Each extra field also under its name as configured, as the listing
	// of `deals sync` has it: a relationship field (Owner.Email), which
	// Salesforce answers inside its parent object (kept above, as
	// raw["Owner"]), and one spelt in another case (amount).
	for _, f := range s.fetch.ExtraFields {
		if b, err := json.Marshal(field(o, f)); err == nil {
			d.Raw[f] = b
		}
	}
	amount, ok, err := number(o, "Amount")
	if err != nil {
		return model.Deal{}, permanent("opportunity %s Amount: %v", dealID, err)
	}
	if ok {
		d.Amount = decimal.NewNullDecimal(amount)
	}
	if cd := text(o, "CloseDate"); cd != "" {
		if d.CloseDate, err = model.ParseDate(cd); err != nil {
			return model.Deal{}, permanent("opportunity %s CloseDate: %v", dealID, err)
		}
	}
	if id := text(o, "AccountId"); id != "" {
		line1, line2, _ := strings.Cut(strings.ReplaceAll(text(o, "Account.BillingStreet"), "\r\n", "\n"), "\n")
		d.Company = model.Company{
			ID:    id,
			Name:  text(o, "Account.Name"),
			Email: text(o, email),
			TaxID: text(o, tax),
			Address: model.Address{
				Line1: strings.TrimSpace(line1), Line2: strings.TrimSpace(strings.ReplaceAll(line2, "\n", ", ")),
				City: text(o, "Account.BillingCity"), Region: text(o, "Account.BillingState"),
				PostalCode: text(o, "Account.BillingPostalCode"), Country: text(o, "Account.BillingCountry"),
			},
		}
	}

	lines, err := s.query(ctx, acc, "fetch opportunity line items",
		"SELECT Id, Quantity, UnitPrice, Discount, Description, SortOrder, Product2.ProductCode, Product2.Name"+
			" FROM OpportunityLineItem WHERE OpportunityId = '"+dealID+"' ORDER BY SortOrder NULLS LAST, Id")
	if err != nil {
		return model.Deal{}, err
	}
	for _, l := range lines {
		li := model.LineItem{SKU: text(l, "Product2.ProductCode"), Description: text(l, "Description")}
		if li.Description == "" {
			li.Description = text(l, "Product2.Name")
		}
		var errs []error
		get := func(name string) decimal.Decimal {
			v, _, err := number(l, name)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
			return v
		}
		li.Quantity, li.UnitPrice, li.DiscountPercent = get("Quantity"), get("UnitPrice"), get("Discount")
		if len(errs) > 0 {
			return model.Deal{}, permanent("opportunity %s line item %s: %v", dealID, text(l, "Id"), errors.Join(errs...))
		}
		d.LineItems = append(d.LineItems, li)
	}
	return d, nil
}

// deletedDeal is FetchDeal's answer for an Opportunity its query does not
// find. The query resource leaves out deleted records; Salesforce keeps a
// deleted one in the Recycle Bin (15 days), where the queryAll resource
// finds it (IsDeleted = true). One found there is reported in stage
// StageDeleted, not won (its run ends DealNotWon, as a deleted Pipedrive
// deal's does), with its own fields but neither its Account nor its line
// items: it is no longer a deal to invoice. One not found there either is
// a 404 (ErrPermanent); a lookup not answered now is returned as is, to be
// asked again.
func (s *Source) deletedDeal(ctx context.Context, acc *account, dealID string) (model.Deal, error) {
	notFound := &connectors.APIError{Service: service, Op: "fetch opportunity", StatusCode: http.StatusNotFound,
		Message: "no Opportunity with Id " + dealID}
	var recs []map[string]any
	err := s.eachPage(ctx, acc, "look up deleted opportunity", "queryAll",
		"SELECT Id, Name, StageName, IsWon, IsDeleted, Amount, CloseDate, OwnerId, AccountId FROM Opportunity WHERE Id = '"+dealID+"' AND IsDeleted = true",
		maxPages, func(records []map[string]any) error {
			recs = append(recs, records...)
			return nil
		})
	switch c, _ := connectors.Classify(err); {
	case err != nil && c != connectors.Permanent:
		return model.Deal{}, err // not answered now: asked again on the retry
	case err != nil:
		return model.Deal{}, fmt.Errorf("%w (looking opportunity %s up among the deleted ones failed: %v)", notFound, dealID, err)
	case len(recs) == 0:
		return model.Deal{}, fmt.Errorf("%w (opportunity %s is neither among the org's opportunities nor among the deleted ones "+
			"in its Recycle Bin: check the id, and that the integration user can see every opportunity)", notFound, dealID)
	}
	o := recs[0]
	d := model.Deal{ID: dealID, Name: text(o, "Name"), Owner: text(o, "OwnerId"), Stage: StageDeleted, Raw: map[string]json.RawMessage{}}
	for k, v := range o {
		if k == "attributes" {
			continue
		}
		if b, err := json.Marshal(v); err == nil {
			d.Raw[k] = b
		}
	}
	// Shown with the run; a value that does not read is left out, not an
	// error: nothing is invoiced.
	if amount, ok, err := number(o, "Amount"); ok && err == nil {
		d.Amount = decimal.NewNullDecimal(amount)
	}
	d.CloseDate, _ = model.ParseDate(text(o, "CloseDate"))
	return d, nil
}

// query runs a SOQL query about one deal and follows nextRecordsUrl, for at
// most maxPages pages.
func (s *Source) query(ctx context.Context, acc *account, op, soql string) ([]map[string]any, error) {
	var out []map[string]any
	err := s.eachPage(ctx, acc, op, "query", soql, maxPages, func(records []map[string]any) error {
		out = append(out, records...)
		return nil
	})
	return out, err
}

// eachPage runs a SOQL query through resource (query, or queryAll, which
// includes deleted records) and hands fn each page of its records,
// following nextRecordsUrl for at most pages pages. A page whose
// nextRecordsUrl names a page already read (a mock, or a proxy answering
// every page alike) ends the query with an error saying so, at once,
// rather than reading it again until the bound on the pages.
func (s *Source) eachPage(ctx context.Context, acc *account, op, resource, soql string, pages int, fn func([]map[string]any) error) error {
	path := "/services/data/" + s.apiVersion + "/" + resource + "?" + url.Values{"q": {soql}}.Encode()
	read := map[string]bool{} // the paths of the pages read (the query's the first)
	for page := 0; ; page++ {
		if page == pages {
			return permanent("%s: more than %d pages", op, pages)
		}
		var res queryResult
		if err := s.call(ctx, acc, op, http.MethodGet, path, nil, &res); err != nil {
			return err
		}
		if err := fn(res.Records); err != nil {
			return err
		}
		if res.Done || res.NextRecordsURL == "" {
			return nil
		}
		if !strings.HasPrefix(res.NextRecordsURL, "/services/data/") {
			return permanent("%s: unexpected nextRecordsUrl %q", op, res.NextRecordsURL)
		}
		read[path] = true
		if read[res.NextRecordsURL] {
			return permanent("%s of org %s: page %d names by its nextRecordsUrl as the next page %s, a page already read: "+
				"the API's paging loops (does instance_url point at a mock, or at a proxy that answers every page alike?)",
				op, acc.id, page+1, connectors.QuoteShort(strings.TrimPrefix(res.NextRecordsURL, "/services/data/"+s.apiVersion+"/")))
		}
		path = res.NextRecordsURL
	}
}

// WriteBackBody is the PATCH body WriteBack sends: the configured
// Opportunity fields. Empty values are left out.
func (s *Source) WriteBackBody(result connectors.InvoiceResult) map[string]string {
	return s.writeBackNames().Values(result)
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

// WriteBack updates the Opportunity: PATCH
// /services/data/vXX.X/sobjects/Opportunity/{id} (204 No Content). With no
// field configured it does nothing.
func (s *Source) WriteBack(ctx context.Context, accountID, dealID string, result connectors.InvoiceResult) error {
	acc, err := s.account(accountID)
	if err != nil {
		return err
	}
	if !recordID.MatchString(dealID) {
		return permanent("%q is not a Salesforce record id", dealID)
	}
	body := s.WriteBackBody(result)
	if len(body) == 0 {
		return nil
	}
	return s.call(ctx, acc, "write back", http.MethodPatch, "/services/data/"+s.apiVersion+"/sobjects/Opportunity/"+dealID, body, nil)
}

// call sends one request; on a 401 it drops the cached token and tries once
// more with a new one.
func (s *Source) call(ctx context.Context, acc *account, op, method, path string, in, out any) error {
	api := s.api()
	payload, err := api.Encode(op, in)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err := s.send(ctx, api, acc, op, method, path, payload, out)
		var apiErr *connectors.APIError
		if attempt == 0 && errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnauthorized && apiErr.Op == op {
			continue
		}
		if errors.As(err, &apiErr) && apiErr.Op == "oauth token" &&
			(apiErr.Credentials || apiErr.StatusCode == http.StatusBadRequest || apiErr.StatusCode == http.StatusUnauthorized) {
			// The token endpoint's refusal of the credentials names
			// neither the org nor the setting to look at (its 429 or
			// 503, retried, is no matter of the config).
			return fmt.Errorf("%w; org %s, configured under %s: %s", err, acc.id, s.keys.Key("accounts."+acc.id), tokenHint(s.keys.Under("accounts."+acc.id), apiErr.Message))
		}
		return err
	}
}

// tokenHint says what to check after the token endpoint refused the
// credentials of an org, by its message ("error: error_description");
// org names the org's settings (accounts.<org>). A setting is never named
// within parentheses: Keys.Key may add its variable in its own.
func tokenHint(org connectors.Keys, msg string) string {
	switch {
	case strings.Contains(msg, "not installed in this org") || strings.Contains(strings.ToLower(msg), "app_not_found"):
		// An External Client App's refusal. Users report that one whose
		// JWT names the login host as audience gets it too, and that the
		// org's My Domain URL is taken there (Salesforce's pages name the
		// login hosts only).
		return "the org has no External Client App installed of the consumer key in " + org.Key("client_id") + ": make the app in this org, or install its package there; with jwt, also try " +
			org.Key("jwt.audience") + ": the org's My Domain URL, its " + org.Key("instance_url") + ", which External Client Apps are reported to need"
	case strings.Contains(msg, "audience is invalid"):
		// Salesforce's page on the flow names the login hosts; External
		// Client Apps are reported (Salesforce CLI's tracker, 2026) to
		// answer this to a login host too, and to take the My Domain URL.
		return "the JWT's audience is not the org's login host: a sandbox org needs " + org.Key("jwt.audience") + ": https://test.salesforce.com (production and Developer Edition: https://login.salesforce.com); " +
			"with an External Client App, the org's My Domain URL, its " + org.Key("instance_url") + ", which such apps are reported to need"
	case strings.HasPrefix(msg, "invalid_client"):
		return "check the app's consumer key and secret, " + org.List("client_id", "client_secret") + ", and that the app (External Client App or connected app) is enabled for the org"
	case strings.HasPrefix(msg, "invalid_grant"):
		return "the grant was refused: check that the user, " + org.Key("jwt.username") + " or the client credentials flow's run-as user, is approved for the app (pre-authorized in its policies), and for jwt the certificate uploaded to the app and the audience"
	}
	return "check the org's credentials in the config"
}

func (s *Source) send(ctx context.Context, api *crmkit.Client, acc *account, op, method, path string, payload []byte, out any) error {
	resp, err := api.Do(ctx, crmkit.Call{Op: op, Method: method, URL: acc.instanceURL + path, Body: payload, Token: acc.token})
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(resp.Body)) == 0 {
		return nil
	}
	return api.Decode(op, resp.Body, out)
}

// api is the Salesforce REST API as crmkit sees it.
func (s *Source) api() *crmkit.Client {
	return &crmkit.Client{Service: service, HTTP: s.client, Permanent: permanent, APIError: apiError, TokenMessage: tokenMessage}
}

// totalRequestsWait is how long a run waits after the org's rolling
// 24-hour API request limit (REQUEST_LIMIT_EXCEEDED TotalRequests) refused
// a call.
const totalRequestsWait = time.Hour

// restError is one element of the REST API's error array.
type restError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields"`
}

func apiError(op string, resp *http.Response, data []byte) *connectors.APIError {
	e := &connectors.APIError{Service: service, Op: op, StatusCode: resp.StatusCode,
		RetryAfter: connectors.ParseRetryAfter(resp.Header, time.Now())}
	var list []restError
	if json.Unmarshal(data, &list) == nil && len(list) > 0 {
		first := list[0]
		e.Message = first.ErrorCode + ": " + first.Message
		if len(first.Fields) > 0 {
			e.Field = first.Fields[0]
		}
		// The org's API request limit is answered 403; it is a rate limit,
		// not a credentials problem.
		switch first.ErrorCode {
		case "REQUEST_LIMIT_EXCEEDED":
			e.StatusCode = http.StatusTooManyRequests
			e.Message = "HTTP 403 " + e.Message
			if strings.Contains(first.Message, "TotalRequests") && e.RetryAfter == 0 {
				// "TotalRequests Limit exceeded.": the org's API requests
				// of the last 24 hours (rolling) are spent, and calls pass
				// again only as the usage of the preceding 24 hours drops
				// below the limit, so each run waits an hour between tries
				// instead of the policy's backoff. Other kinds (the
				// concurrent long requests, ConcurrentPerOrgLongTxn) pass
				// within minutes and keep the backoff.
				e.RetryAfter = totalRequestsWait
				e.Message += " (the org's API request limit of the last 24 hours is spent; calls pass again as its usage drops below it: retried every hour)"
			}
		case "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE":
			// Another transaction holds the record (answered 400), or the
			// org is busy: it goes away; retried like an unavailable CRM.
			e.Message = fmt.Sprintf("HTTP %d %s", resp.StatusCode, e.Message)
			e.StatusCode = http.StatusServiceUnavailable
		}
	} else {
		e.Message = crmkit.Short(string(data))
	}
	return e
}

// tokenMessage is the message of a token endpoint's error answer:
// "error: error_description".
func tokenMessage(re *oauth2.RetrieveError) string {
	msg := re.ErrorCode
	if re.ErrorDescription != "" {
		msg += ": " + re.ErrorDescription
	}
	return msg
}

// WebhookDeal implements connectors.WebhookShaper (webhookDeal).
func (s *Source) WebhookDeal(d model.Deal) model.Deal { return webhookDeal(d) }

// webhookDeal is the deal as a webhook of it carries it (the source
// type's connectors.SourceSpec.WebhookDeal): an outbound message
// carries the fields its definition lists, as Raw, and Parse reads the
// name and the stage from them; the fields read from the API stand for
// them.
func webhookDeal(d model.Deal) model.Deal {
	return model.Deal{ID: d.ID, Name: d.Name, Stage: d.Stage, Raw: d.Raw}
}

var _ connectors.WebhookShaper = (*Source)(nil)
