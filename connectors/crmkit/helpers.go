package crmkit

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/oauth2"

	"github.com/dealsync/dealsync/connectors"
)

// StageSet is the set of the stages in the lists, trimmed; blank ones are
// left out.
func StageSet(lists ...[]string) map[string]bool {
	return stageSet(func(s string) string { return s }, lists)
}

// StageSetFold is StageSet with the stages lower-cased, for vendors whose
// stage names compare case-insensitively (look them up lower-cased).
func StageSetFold(lists ...[]string) map[string]bool {
	return stageSet(strings.ToLower, lists)
}

func stageSet(norm func(string) string, lists [][]string) map[string]bool {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	m := make(map[string]bool, n)
	for _, l := range lists {
		for _, v := range l {
			if v = strings.TrimSpace(v); v != "" {
				m[norm(v)] = true
			}
		}
	}
	return m
}

// Unauthorized is a webhook verification failure of the service, wrapping
// connectors.ErrUnauthorized: "<ErrUnauthorized>: hubspot: <message>".
func Unauthorized(service, format string, args ...any) error {
	return fmt.Errorf("%w: "+service+": "+format, append([]any{connectors.ErrUnauthorized}, args...)...)
}

// JSONString is s as a JSON string, for Deal.Raw.
func JSONString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// WriteBackNames are the CRM fields (HubSpot properties, Salesforce or
// Pipedrive fields) an invoice is written to; an empty name is not written.
type WriteBackNames struct {
	InvoiceID, InvoiceNumber, InvoiceURL, Status string
	// StatusValue is what Status is set to.
	StatusValue string
}

// Any says whether any field is configured: without one, nothing is
// written back.
func (n WriteBackNames) Any() bool {
	return n.InvoiceID != "" || n.InvoiceNumber != "" || n.InvoiceURL != "" || n.Status != "" && n.StatusValue != ""
}

// Values maps each configured field to its value for result, leaving out
// empty names and empty values (rather than clearing the field).
func (n WriteBackNames) Values(result connectors.InvoiceResult) map[string]string {
	out := map[string]string{}
	for _, kv := range [][2]string{
		{n.InvoiceID, result.InvoiceID},
		{n.InvoiceNumber, result.Number},
		{n.InvoiceURL, result.URL},
		{n.Status, n.StatusValue},
	} {
		if kv[0] != "" && kv[1] != "" {
			out[kv[0]] = kv[1]
		}
	}
	return out
}

// Resettable is a cached token source whose token can be dropped after a
// 401, so that the next call gets a new one: Salesforce tokens carry no
// expiry (a session that timed out is only noticed by the API), and an
// OAuth access token may be refused before its expiry (revoked, or a
// clock that stepped).
type Resettable struct {
	make func() oauth2.TokenSource
	// fetch lets one caller at a time ask the source for a token; mu
	// guards src and tok, and is never held across a request, so that
	// Invalidate never waits for a token endpoint.
	fetch sync.Mutex
	mu    sync.Mutex
	src   oauth2.TokenSource
	gen   int           // counts the sources made: Invalidate makes one
	tok   *oauth2.Token // the token handed out, while valid
}

// NewResettable caches the tokens of the sources mk makes.
func NewResettable(mk func() oauth2.TokenSource) *Resettable {
	return &Resettable{make: mk, src: mk()}
}

// Token implements oauth2.TokenSource: the cached token while it is valid,
// else a new one (one request at a time: callers that find it expired
// together wait for the same new token).
func (r *Resettable) Token() (*oauth2.Token, error) {
	if tok := r.valid(); tok != nil {
		return tok, nil
	}
	r.fetch.Lock()
	defer r.fetch.Unlock()
	if tok := r.valid(); tok != nil {
		return tok, nil // fetched while this caller waited
	}
	r.mu.Lock()
	src, gen := r.src, r.gen
	r.mu.Unlock()
	tok, err := src.Token()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.gen == gen { // not invalidated meanwhile
		r.tok = tok
	}
	r.mu.Unlock()
	return tok, nil
}

// valid is the cached token, if it is still valid.
func (r *Resettable) valid() *oauth2.Token {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tok.Valid() {
		return r.tok
	}
	return nil
}

// Invalidate drops the cached token, and the source's own cache, when it
// is still the one refused (accessToken, the token a call was refused
// with): calls refused together with one token get one new token, not
// one each, and a call that was refused with an older token does not
// throw away the new one.
func (r *Resettable) Invalidate(accessToken string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tok != nil && r.tok.AccessToken == accessToken {
		r.tok, r.src = nil, r.make()
		r.gen++
	}
}

// WriteBackField is one configured write-back field, for a check of the
// CRM's fields (connectors.WriteBackChecker).
type WriteBackField struct {
	// Setting is the source's config key ("write_back.invoice_id_property").
	Setting string
	// Name is the field as configured.
	Name string
	// Holds says what is written to it ("the invoice's id in the ERP").
	Holds string
	// Status is set for the status field, which is given Value; the
	// others' values are the ERP's.
	Status bool
	Value  string
}

// Fields lists the configured fields (non-empty names) in the settings'
// order: invoice id, number, URL, status. Their settings are
// "write_back.invoice_id"+suffix and so on (suffix "_property" or
// "_field").
func (n WriteBackNames) Fields(suffix string) []WriteBackField {
	var out []WriteBackField
	for _, f := range []WriteBackField{
		{Setting: "invoice_id", Name: n.InvoiceID, Holds: "the invoice's id in the ERP"},
		{Setting: "invoice_number", Name: n.InvoiceNumber, Holds: "the invoice number"},
		{Setting: "invoice_url", Name: n.InvoiceURL, Holds: "the link to the invoice"},
		{Setting: "status", Name: n.Status, Holds: fmt.Sprintf("the sync status %q (write_back.status_value)", n.StatusValue), Status: true, Value: n.StatusValue},
	} {
		if f.Name != "" {
			f.Setting = "write_back." + f.Setting + suffix
			out = append(out, f)
		}
	}
	return out
}

// NewWriteBackCheck is the check of one account (where names it: "HubSpot
// portal 62515") of fields, before any field is judged.
func NewWriteBackCheck(account, where string, fields []WriteBackField) connectors.WriteBackCheck {
	check := connectors.WriteBackCheck{Account: account, Where: where}
	for _, f := range fields {
		check.Fields = append(check.Fields, f.Name)
	}
	return check
}

// CheckAccounts runs check for each account, four at a time, and returns
// their answers sorted by account. Each check's context is ctx.
func CheckAccounts(ctx context.Context, accounts []string, check func(ctx context.Context, account string) connectors.WriteBackCheck) []connectors.WriteBackCheck {
	accounts = slices.Sorted(slices.Values(accounts))
	out := make([]connectors.WriteBackCheck, len(accounts))
	turn := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, a := range accounts {
		wg.Add(1)
		turn <- struct{}{}
		go func() {
			defer func() { <-turn; wg.Done() }()
			out[i] = check(ctx, a)
		}()
	}
	wg.Wait()
	return out
}
