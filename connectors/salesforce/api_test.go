package salesforce

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors"
	_ "github.com/dealsync/dealsync/connectors/httptarget" // target "http" for the config test
	"github.com/dealsync/dealsync/connectors/salesforce/salesforcefake"
	"github.com/dealsync/dealsync/secret"
)

// Answers shaped as in the REST API Developer Guide (query, sObject rows,
// error arrays, OAuth token responses).
const (
	oppRecord = `{"attributes":{"type":"Opportunity","url":"/services/data/v62.0/sobjects/Opportunity/0065w000023STAmAAO"},
 "Id":"0065w000023STAmAAO","Name":"Backpackers, Inc.","StageName":"Signed","IsWon":true,"Amount":45000.10,"CloseDate":"2020-07-11",
 "OwnerId":"0055w00000BhqR0AAJ","AccountId":"0015w00002BFDeLAAX","CurrencyIsoCode":"eur",
 "Account":{"attributes":{"type":"Account","url":"/services/data/v62.0/sobjects/Account/0015w00002BFDeLAAX"},"Name":"Backpackers, Inc.",
  "BillingStreet":"Hauptstr. 1\nHinterhaus\n3. OG","BillingCity":"Berlin","BillingState":"Berlin","BillingPostalCode":"10115","BillingCountry":"DE",
  "Billing_Email__c":"ap@backpackers.example","VAT_Id__c":"DE123456789"}}`
	line1 = `{"attributes":{"type":"OpportunityLineItem","url":"/services/data/v62.0/sobjects/OpportunityLineItem/00k5w000001"},"Id":"00k5w0000010001AAA",
  "Quantity":2.00,"UnitPrice":6000.05,"Discount":null,"Description":null,"SortOrder":1,
  "Product2":{"attributes":{"type":"Product2","url":"/services/data/v62.0/sobjects/Product2/01t"},"ProductCode":"PRO-1Y","Name":"Pro plan, 1 year"}}`
	line2 = `{"Id":"00k5w0000010002AAA","Quantity":3,"UnitPrice":0.1,"Discount":12.5,
  "Description":"Onboarding (remote)","SortOrder":2,"Product2":{"attributes":{"type":"Product2","url":"/y"},"ProductCode":"ONB","Name":"Onboarding"}}`
	line3 = `{"Id":"00k5w0000010003AAA","Quantity":1,"UnitPrice":0,"Discount":null,"Description":null,"SortOrder":null,"Product2":null}`
)

func newFakeOrg(t *testing.T) *salesforcefake.Server {
	f := salesforcefake.New(orgA, "cid-a", "cs-a")
	t.Cleanup(f.Close)
	// Two pages of line items, as for a large opportunity.
	f.LineItemPageSize = 1
	f.MultiCurrency = true
	f.PutOpportunity(salesforcefake.ParseRecord(oppRecord))
	f.PutLineItems("0065w000023STAmAAO", salesforcefake.ParseRecord(line1), salesforcefake.ParseRecord(line2), salesforcefake.ParseRecord(line3))
	return f
}

func apiSource(t *testing.T, f *salesforcefake.Server, mutate func(*Config)) *Source {
	return testSource(t, func(c *Config) {
		c.Accounts = map[string]Account{orgA: {InstanceURL: f.URL, ClientID: "cid-a", ClientSecret: secret.New("cs-a"), WonStages: []string{"Signed"}}}
		c.Fetch = FetchConfig{CurrencyField: "CurrencyIsoCode", AccountEmailField: "Billing_Email__c", AccountTaxIDField: "Account.VAT_Id__c"}
		if mutate != nil {
			mutate(c)
		}
	})
}

func TestFetchDeal(t *testing.T) {
	f := newFakeOrg(t)
	s := apiSource(t, f, nil)
	d, err := s.FetchDeal(context.Background(), orgA, "0065w000023STAmAAO")
	if err != nil {
		t.Fatalf("FetchDeal: %v", err)
	}
	if d.ID != "0065w000023STAmAAO" || d.Name != "Backpackers, Inc." || d.Stage != StageWon || d.Currency != "EUR" ||
		d.Amount.Decimal.String() != "45000.1" || d.CloseDate.String() != "2020-07-11" || d.Owner != "0055w00000BhqR0AAJ" {
		t.Errorf("deal: %+v", d)
	}
	if string(d.Raw["StageName"]) != `"Signed"` {
		t.Errorf("Raw StageName %s", d.Raw["StageName"])
	}
	c := d.Company
	if c.ID != "0015w00002BFDeLAAX" || c.Name != "Backpackers, Inc." || c.Email != "ap@backpackers.example" || c.TaxID != "DE123456789" ||
		c.Address.Line1 != "Hauptstr. 1" || c.Address.Line2 != "Hinterhaus, 3. OG" || c.Address.City != "Berlin" ||
		c.Address.PostalCode != "10115" || c.Address.Country != "DE" {
		t.Errorf("company: %+v", c)
	}
	if len(d.LineItems) != 3 {
		t.Fatalf("line items over two pages: %+v", d.LineItems)
	}
	l0, l1 := d.LineItems[0], d.LineItems[1]
	if l0.SKU != "PRO-1Y" || l0.Description != "Pro plan, 1 year" || l0.Quantity.String() != "2" || l0.UnitPrice.String() != "6000.05" || !l0.DiscountPercent.IsZero() {
		t.Errorf("line 0: %+v", l0)
	}
	if l1.SKU != "ONB" || l1.Description != "Onboarding (remote)" || l1.Quantity.Mul(l1.UnitPrice).String() != "0.3" || l1.DiscountPercent.String() != "12.5" {
		t.Errorf("line 1: %+v", l1)
	}
	queries := f.Queries()
	if len(queries) != 2 {
		t.Fatalf("queries: %q", queries)
	}
	for _, want := range []string{"Account.Billing_Email__c", "Account.VAT_Id__c", "CurrencyIsoCode", "Account.BillingPostalCode", "IsWon"} {
		if !strings.Contains(queries[0], want) {
			t.Errorf("opportunity query lacks %s: %s", want, queries[0])
		}
	}
	if !strings.Contains(queries[1], "FROM OpportunityLineItem WHERE OpportunityId = '0065w000023STAmAAO'") {
		t.Errorf("line item query: %s", queries[1])
	}
	if n := len(f.Requests()); n != 5 {
		t.Errorf("%d requests, want a token, 2 queries and 2 more pages", n)
	}
	if f.TokenCalls() != 1 {
		t.Errorf("token calls %d for 4 API calls, want 1", f.TokenCalls())
	}
}

func TestFetchDealErrorsAndSessionExpiry(t *testing.T) {
	f := newFakeOrg(t)
	s := apiSource(t, f, nil)
	ctx := context.Background()
	_, err := s.FetchDeal(ctx, orgA, "0065w000023XXXXAAO")
	var api *connectors.APIError
	if !errors.As(err, &api) || api.StatusCode != 404 {
		t.Fatalf("unknown opportunity: %v", err)
	}
	if _, err := s.FetchDeal(ctx, "00D000000000001AAA", "0065w000023STAmAAO"); !errors.Is(err, connectors.ErrUnknownAccount) {
		t.Fatalf("unknown org: %v", err)
	}
	if _, err := s.FetchDeal(ctx, orgA, "x' OR Name != '"); !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("SOQL injection attempt: %v", err)
	}
	// The session times out: the first token is refused, a new one is got
	// and the call succeeds.
	f.ExpireSessions()
	if _, err := s.FetchDeal(ctx, orgA, "0065w000023STAmAAO"); err != nil {
		t.Fatalf("after session expiry: %v", err)
	}
	if f.TokenCalls() != 2 {
		t.Errorf("token calls %d, want 2", f.TokenCalls())
	}
	// Wrong client secret: the token endpoint's error is an APIError.
	bad := apiSource(t, f, func(c *Config) {
		c.Accounts = map[string]Account{orgA: {InstanceURL: f.URL, ClientID: "cid-a", ClientSecret: secret.New("wrong")}}
	})
	_, err = bad.FetchDeal(ctx, orgA, "0065w000023STAmAAO")
	if cl, _ := connectors.Classify(err); !errors.As(err, &api) || api.Op != "oauth token" || api.StatusCode != 400 || !strings.Contains(api.Message, "invalid_client") || cl != connectors.Unauthorized {
		t.Fatalf("bad client secret: %v", err)
	}
}

func TestWriteBack(t *testing.T) {
	f := newFakeOrg(t)
	s := apiSource(t, f, nil)
	res := connectors.InvoiceResult{InvoiceID: "inv-1", Number: "INV-0007", URL: "https://erp.example/i/1"}
	if err := s.WriteBack(context.Background(), strings.ToLower(orgA), "0065w000023STAmAAO", res); err != nil {
		t.Fatalf("WriteBack: %v", err)
	}
	want := map[string]any{"ERP_Invoice_Id__c": "inv-1", "ERP_Invoice_Number__c": "INV-0007", "ERP_Invoice_URL__c": "https://erp.example/i/1", "ERP_Sync_Status__c": "synced"}
	patches := f.Patches("0065w000023STAmAAO")
	if len(patches) != 1 || !reflect.DeepEqual(patches[0], want) || f.WriteBacks("0065w000023STAmAAO") != 1 {
		t.Fatalf("PATCH %v", patches)
	}
	if o, _ := f.Opportunity("0065w000023STAmAAO"); o["ERP_Invoice_Number__c"] != "INV-0007" {
		t.Fatalf("opportunity after the write-back: %v", o)
	}
	s = apiSource(t, f, func(c *Config) { c.WriteBack = WriteBackConfig{InvoiceNumberField: "Missing__c"} })
	err := s.WriteBack(context.Background(), orgA, "0065w000023STAmAAO", res)
	var api *connectors.APIError
	if !errors.As(err, &api) || api.StatusCode != 400 || api.Field != "Missing__c" || !strings.HasPrefix(api.Message, "INVALID_FIELD: No such column") {
		t.Fatalf("invalid field: %#v", err)
	}
	if c, _ := connectors.Classify(err); c != connectors.Permanent {
		t.Errorf("classified %v", c)
	}
	if _, err := New(Config{WriteBack: WriteBackConfig{StatusField: "X__c; DELETE"}, Accounts: map[string]Account{orgA: {InstanceURL: "https://a", ClientID: "c", ClientSecret: secret.New("s")}}}, connectors.Env{}); err == nil {
		t.Error("a field name that is not an API name was accepted")
	}
}

func TestRequestLimitIsARateLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/services/oauth2/token" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"t","token_type":"Bearer","instance_url":"x"}`)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`)
	}))
	defer srv.Close()
	s := testSource(t, func(c *Config) {
		c.Accounts = map[string]Account{orgA: {InstanceURL: srv.URL, ClientID: "c", ClientSecret: secret.New("s")}}
	})
	err := s.WriteBack(context.Background(), orgA, "0065w000023STAmAAO", connectors.InvoiceResult{InvoiceID: "i"})
	if c, _ := connectors.Classify(err); c != connectors.Retry || !strings.Contains(err.Error(), "REQUEST_LIMIT_EXCEEDED") {
		t.Fatalf("got %v (class %v)", err, c)
	}
}

func TestJWTBearer(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	var claims map[string]any
	mux := http.NewServeMux()
	mux.HandleFunc("POST /services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"error":"unsupported_grant_type","error_description":"grant type not supported"}`)
			return
		}
		parts := strings.Split(r.PostForm.Get("assertion"), ".")
		if len(parts) != 3 {
			w.WriteHeader(400)
			return
		}
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"invalid assertion"}`)
			return
		}
		hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
		if !strings.Contains(string(hdr), `"RS256"`) {
			t.Errorf("JWT header %s", hdr)
		}
		body, _ := base64.RawURLEncoding.DecodeString(parts[1])
		_ = json.Unmarshal(body, &claims)
		_, _ = io.WriteString(w, `{"access_token":"jwt-at","scope":"api","instance_url":"https://x","id":"y","token_type":"Bearer"}`)
	})
	mux.HandleFunc("PATCH /services/data/v62.0/sobjects/Opportunity/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer jwt-at" {
			w.WriteHeader(401)
			return
		}
		w.WriteHeader(204)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	s := testSource(t, func(c *Config) {
		c.Accounts = map[string]Account{orgA: {InstanceURL: srv.URL, ClientID: "3MVG9-consumer-key",
			JWT: &JWT{Username: "integration@acme.example", PrivateKey: secret.New(keyPEM)}}}
	})
	if err := s.WriteBack(context.Background(), orgA, "0065w000023STAmAAO", connectors.InvoiceResult{InvoiceID: "i"}); err != nil {
		t.Fatalf("WriteBack with JWT bearer: %v", err)
	}
	exp, _ := claims["exp"].(float64)
	if claims["iss"] != "3MVG9-consumer-key" || claims["sub"] != "integration@acme.example" || claims["aud"] != DefaultAudience ||
		time.Until(time.Unix(int64(exp), 0)) > 4*time.Minute || time.Until(time.Unix(int64(exp), 0)) < time.Minute {
		t.Fatalf("claims: %v", claims)
	}
	if _, err := New(Config{Accounts: map[string]Account{orgA: {InstanceURL: srv.URL, ClientID: "c", JWT: &JWT{Username: "u", PrivateKey: secret.New("not a key")}}}}, connectors.Env{}); err == nil {
		t.Fatal("an unusable private key was accepted")
	}
}

func TestRegisteredAndLoadedFromConfig(t *testing.T) {
	spec, ok := connectors.LookupSource("salesforce")
	if !ok {
		t.Fatal("salesforce is not registered")
	}
	yaml := `
targets:
  erp: {type: http, base_url: "http://127.0.0.1:9/"}
connections:
  sf:
    target: erp
    trigger: {won_stages: [Closed Won]}
    source:
      type: salesforce
      endpoint_token: env:DEALSYNC_TEST_SF_TOKEN
      previous_endpoint_token: env:DEALSYNC_TEST_SF_PREVIOUS_TOKEN
      fetch: {default_currency: EUR}
      accounts:
        00D5w000004qGTOEA2:
          instance_url: https://acme.my.salesforce.com
          client_id: 3MVG9-key
          client_secret: env:DEALSYNC_TEST_SF_SECRET
          won_stages: [Signed]
`
	t.Setenv("DEALSYNC_TEST_SF_TOKEN", "tok")
	t.Setenv("DEALSYNC_TEST_SF_PREVIOUS_TOKEN", "old-tok")
	t.Setenv("DEALSYNC_TEST_SF_SECRET", "sec")
	path := filepath.Join(t.TempDir(), "dealsync.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	src, err := spec.Build(cfg.Connections["sf"].Source.Spec, connectors.Env{})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	// The org id key was lower-cased by the loader; the payload's form matches.
	var key string
	for k := range cfg.Connections["sf"].Source.Spec.(*Config).Accounts {
		key = k
	}
	// Account is the key as the loader delivers it, as account_targets keys are.
	evs, err := src.Parse(&connectors.Webhook{Body: []byte(captured)})
	if err != nil || len(evs) != 1 || evs[0].Account != key || !strings.EqualFold(key, orgA) {
		t.Fatalf("Parse with the loaded config: %v %+v", err, evs)
	}
	for _, tok := range []string{"tok", "old-tok"} {
		if err := src.Verify(&connectors.Webhook{URL: "https://h/webhooks/sf?token=" + tok}); err != nil {
			t.Fatalf("token %s: %v", tok, err)
		}
	}
	bad := strings.Replace(yaml, "          instance_url: https://acme.my.salesforce.com\n", "", 1)
	bad = strings.Replace(bad, "env:DEALSYNC_TEST_SF_PREVIOUS_TOKEN", "env:DEALSYNC_TEST_SF_UNSET_PREVIOUS_TOKEN", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err == nil || !strings.Contains(err.Error(), "instance_url") ||
		!strings.Contains(err.Error(), "source.previous_endpoint_token") {
		t.Fatalf("missing instance_url, unresolvable previous_endpoint_token: %v", err)
	}
}

// A record another transaction holds (UNABLE_TO_LOCK_ROW, answered 400) is
// retried: it failed the write-back for good.
func TestRecordLockIsRetried(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/services/oauth2/token" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"t","token_type":"Bearer","instance_url":"x"}`)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `[{"message":"unable to obtain exclusive access to this record","errorCode":"UNABLE_TO_LOCK_ROW","fields":[]}]`)
	}))
	defer srv.Close()
	s := testSource(t, func(c *Config) {
		c.Accounts = map[string]Account{orgA: {InstanceURL: srv.URL, ClientID: "c", ClientSecret: secret.New("s")}}
	})
	err := s.WriteBack(context.Background(), orgA, "0065w000023STAmAAO", connectors.InvoiceResult{InvoiceID: "i"})
	if c, _ := connectors.Classify(err); c != connectors.Retry || !strings.Contains(err.Error(), "HTTP 400 UNABLE_TO_LOCK_ROW") {
		t.Fatalf("got %v (class %v)", err, c)
	}
}

// Without a currency_field, a multi-currency org's Opportunity is read in
// its CurrencyIsoCode, not default_currency; a single-currency org refuses
// that field once, and its deals are in default_currency.
func TestFetchDealCurrencyWithoutCurrencyField(t *testing.T) {
	for _, multi := range []bool{true, false} {
		f := newFakeOrg(t)
		f.MultiCurrency = multi
		s := apiSource(t, f, func(c *Config) { c.Fetch.CurrencyField, c.Fetch.DefaultCurrency = "", "USD" })
		want := map[bool]string{true: "EUR", false: "USD"}[multi]
		for range 2 {
			d, err := s.FetchDeal(context.Background(), orgA, "0065w000023STAmAAO")
			if err != nil || d.Currency != want {
				t.Fatalf("multi-currency %v: currency %q, %v; want %s", multi, d.Currency, err, want)
			}
		}
		refused := 0
		for _, r := range f.Requests() {
			if strings.Contains(r.Query, "CurrencyIsoCode") && !multi {
				refused++
			}
		}
		if !multi && refused != 1 {
			t.Errorf("a single-currency org was asked for CurrencyIsoCode %d times, want once", refused)
		}
	}
}
