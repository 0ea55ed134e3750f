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
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors"
	_ "github.com/dealsync/dealsync/connectors/httptarget" // target "http" for the config test
	"github.com/dealsync/dealsync/connectors/salesforce/salesforcefake"
	"github.com/dealsync/dealsync/internal/wording"
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
	// ... naming the org's key and what to check.
	if msg := err.Error(); !strings.Contains(strings.ToLower(msg), "org "+strings.ToLower(orgA)) ||
		!strings.Contains(msg, "consumer key and secret, the source's accounts."+orgA+".client_id and accounts."+orgA+".client_secret, and") {
		t.Errorf("bad client secret: %v; want the org and the settings to check named", err)
	}
	// Built from a config, by their config keys, where an engineer edits
	// them, with the variables that can set them: never within other
	// parentheses.
	org, v := "connections.sf.source.accounts."+orgA, "DEALSYNC_CONNECTIONS_SF_SOURCE_ACCOUNTS_"+strings.ToUpper(orgA)
	keyVar := func(key string) string {
		if key == org {
			return "" // an account's block, no setting: no variable sets it
		}
		return envVar(key)
	}
	bad = testSourceIn(t, connectors.Env{ConfigKey: "connections.sf.source", KeyVar: keyVar}, func(c *Config) {
		c.Accounts = map[string]Account{orgA: {InstanceURL: f.URL, ClientID: "cid-a", ClientSecret: secret.New("wrong")}}
	})
	_, err = bad.FetchDeal(ctx, orgA, "0065w000023STAmAAO")
	if msg := err.Error(); !strings.Contains(msg, "org "+orgA+", configured under "+org+": check the app's consumer key and secret, "+
		org+".client_id (or "+v+"_CLIENT_ID) and "+org+".client_secret (or "+v+"_CLIENT_SECRET), and that") || wording.ParenDepth(msg) > 1 {
		t.Errorf("bad client secret, built from a config: %v", err)
	}
}

// envVar is the variable of a config key as the config spells it when
// no other key shares it (config.Config.KeyVar).
func envVar(key string) string {
	return "DEALSYNC_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

func TestTokenHints(t *testing.T) {
	for msg, want := range map[string]string{
		"invalid_grant: audience is invalid": "jwt.audience: https://test.salesforce.com",
		"invalid_grant: audience is invalid [audience=https://login.salesforce.com/ login=https://acme--full.sandbox.my.salesforce.com]": "External Client App, the org's My Domain URL, its instance_url",
		"invalid_client: invalid client credentials":                       "client_secret",
		"invalid_grant: user hasn't approved this consumer":                "approved for the app",
		"invalid_client: External client app is not installed in this org": "jwt.audience: the org's My Domain URL",
		"OAUTH_EC_APP_NOT_FOUND: app not found":                            "no External Client App installed of the consumer key in",
		"unsupported_grant_type: grant type not supported":                 "check the org's credentials",
	} {
		if got := tokenHint(connectors.Keys{}, msg); !strings.Contains(got, want) {
			t.Errorf("tokenHint(%q) = %q, want it to say %q", msg, got, want)
		}
		// With the variables beside the keys, no parentheses nest.
		org := connectors.SourceKeys("connections.sf.source").Under("accounts." + orgA)
		org.KeyVar = envVar
		if got := tokenHint(org, msg); wording.ParenDepth(got) > 1 ||
			(want != "check the org's credentials" && !strings.Contains(got, " (or DEALSYNC_CONNECTIONS_SF_SOURCE_ACCOUNTS_")) {
			t.Errorf("tokenHint(%q) with the config's keys = %q, want the keys' variables, no parentheses in others", msg, got)
		}
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

// A write-back refused 401 (a session that expired or was revoked) gets a
// new token and is sent once more; a 400 or a 404 fails for good; a 503
// and a 500 are retried, each read as its own status. The fake's faults
// answer each status with Salesforce's errorCode for it.
func TestWriteBackFaults(t *testing.T) {
	const id = "0065w000023STAmAAO"
	f := newFakeOrg(t)
	s := apiSource(t, f, nil)
	res := connectors.InvoiceResult{InvoiceID: "i"}
	write := func(faults ...salesforcefake.Fault) error {
		f.FailWriteBacks(faults...)
		return s.WriteBack(context.Background(), orgA, id, res)
	}

	if err := write(salesforcefake.Fault{Status: http.StatusUnauthorized}); err != nil {
		t.Fatalf("401 once: %v; want a new token and the write-back sent again", err)
	}
	if f.WriteBackAttempts(id) != 2 || f.WriteBacks(id) != 1 || f.TokenCalls() != 2 {
		t.Fatalf("401 once: %d attempts, %d written, %d token calls; want 2, 1, 2", f.WriteBackAttempts(id), f.WriteBacks(id), f.TokenCalls())
	}

	err := write(salesforcefake.Fault{Status: http.StatusUnauthorized}, salesforcefake.Fault{Status: http.StatusUnauthorized})
	var api *connectors.APIError
	if c, _ := connectors.Classify(err); !errors.As(err, &api) || api.StatusCode != 401 || !strings.Contains(api.Message, "INVALID_SESSION_ID") || c != connectors.Unauthorized {
		t.Fatalf("401 twice: %v (class %v); want Unauthorized", err, c)
	}
	if f.WriteBackAttempts(id) != 4 || f.TokenCalls() != 3 {
		t.Fatalf("401 twice: %d attempts, %d token calls; want one new token and one more attempt only", f.WriteBackAttempts(id), f.TokenCalls())
	}
	// The token refused twice is dropped: the next call gets a new one.
	if err := write(); err != nil || f.TokenCalls() != 4 {
		t.Fatalf("after 401 twice: %v, %d token calls; want a new token", err, f.TokenCalls())
	}

	for _, tc := range []struct {
		status int
		code   string
		class  connectors.Class
	}{
		{http.StatusBadRequest, "INVALID_FIELD", connectors.Permanent},
		{http.StatusNotFound, "NOT_FOUND", connectors.Permanent},
		{http.StatusServiceUnavailable, "SERVER_UNAVAILABLE", connectors.Retry},
		{http.StatusInternalServerError, "UNKNOWN_EXCEPTION", connectors.Retry},
	} {
		before, tokens := f.WriteBackAttempts(id), f.TokenCalls()
		err := write(salesforcefake.Fault{Status: tc.status})
		c, _ := connectors.Classify(err)
		if !errors.As(err, &api) || api.StatusCode != tc.status || !strings.Contains(api.Message, tc.code+": ") || c != tc.class {
			t.Errorf("%d: %v (class %v); want HTTP %d %s, class %v", tc.status, err, c, tc.status, tc.code, tc.class)
		}
		if f.WriteBackAttempts(id) != before+1 || f.TokenCalls() != tokens {
			t.Errorf("%d: %d attempts, %d token calls; want one attempt, no new token", tc.status, f.WriteBackAttempts(id)-before, f.TokenCalls()-tokens)
		}
	}
}

// REQUEST_LIMIT_EXCEEDED is a rate limit: the org's rolling 24-hour
// request limit (TotalRequests) is retried every hour, any other kind (the
// concurrent long requests) with the policy's backoff.
func TestRequestLimitIsARateLimit(t *testing.T) {
	var message atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/services/oauth2/token" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"t","token_type":"Bearer","instance_url":"x"}`)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `[{"message":"`+message.Load().(string)+`","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`)
	}))
	defer srv.Close()
	s := testSource(t, func(c *Config) {
		c.Accounts = map[string]Account{orgA: {InstanceURL: srv.URL, ClientID: "c", ClientSecret: secret.New("s")}}
	})
	for _, tc := range []struct {
		message string
		class   connectors.Class
		delay   time.Duration
		says    string
	}{
		{"TotalRequests Limit exceeded.", connectors.RetryAfter, time.Hour, "API request limit of the last 24 hours is spent"},
		{"ConcurrentPerOrgLongTxn Limit exceeded.", connectors.Retry, 0, ""},
		{"ConcurrentRequests (Concurrent API Requests) Limit exceeded.", connectors.Retry, 0, ""},
	} {
		message.Store(tc.message)
		err := s.WriteBack(context.Background(), orgA, "0065w000023STAmAAO", connectors.InvoiceResult{InvoiceID: "i"})
		c, d := connectors.Classify(err)
		if c != tc.class || d != tc.delay || !strings.Contains(err.Error(), "HTTP 403 REQUEST_LIMIT_EXCEEDED: "+tc.message) ||
			strings.Contains(err.Error(), "24 hours is spent") != (tc.says != "") || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: got %v (class %v, delay %v), want class %v after %v", tc.message, err, c, d, tc.class, tc.delay)
		}
		var api *connectors.APIError
		if !errors.As(err, &api) || api.StatusCode != http.StatusTooManyRequests {
			t.Errorf("%s: %#v, want a 429", tc.message, api)
		}
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

// Salesforce refuses a query that selects a field twice, names compared
// ignoring case (400 INVALID_FIELD "duplicate field selected: X"). The
// fetch and the listing of `deals sync` select each field once: one of
// extra_fields spelt in another case than the fixed ones (amount,
// closedate), and CurrencyIsoCode in extra_fields of a multi-currency org
// without a currency_field, where the fetch adds it itself. What
// extra_fields names is still in deal.raw under its name.
func TestQueriesSelectEachFieldOnce(t *testing.T) {
	f := salesforcefake.New(orgA, "cid-a", "cs-a")
	t.Cleanup(f.Close)
	f.MultiCurrency = true
	f.PutOpportunity(salesforcefake.ParseRecord(`{"Id":"0065w0000000001AAA","Name":"Deal","StageName":"Closed Won","IsWon":true,"CurrencyIsoCode":"EUR",` +
		`"CloseDate":"2026-11-03","SystemModstamp":"2026-11-03T10:00:00.000+0000","Amount":100,"Account":{"Name":"Acme"},"AccountId":"0015w00002BFDeLAAX"}`))
	s := apiSource(t, f, func(c *Config) {
		c.Fetch.CurrencyField, c.Fetch.DefaultCurrency = "", "USD"
		c.Fetch.ExtraFields = []string{"CurrencyIsoCode", "amount", "closedate", "account.name"}
	})
	d, err := s.FetchDeal(context.Background(), orgA, "0065w0000000001AAA")
	if err != nil {
		t.Fatalf("FetchDeal: %v", err)
	}
	if d.Currency != "EUR" || string(d.Raw["amount"]) != "100" || string(d.Raw["account.name"]) != `"Acme"` || d.Company.Name != "Acme" {
		t.Errorf("fetched: currency %q, raw %s, company %+v", d.Currency, d.Raw, d.Company)
	}
	var listed connectors.WonDeal
	err = s.ListWonDeals(context.Background(), orgA, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC),
		func(d connectors.WonDeal) error { listed = d; return nil })
	if err != nil || listed.ID != "0065w0000000001AAA" || string(listed.Raw["amount"]) != `"100"` || string(listed.Raw["closedate"]) != `"2026-11-03"` {
		t.Fatalf("listed: %v, %+v", err, listed)
	}
	for _, q := range f.Queries() {
		fields := strings.Split(strings.TrimPrefix(strings.SplitN(q, " FROM ", 2)[0], "SELECT "), ", ")
		seen := map[string]bool{}
		for _, name := range fields {
			if seen[strings.ToLower(name)] {
				t.Errorf("%s selected twice: %s", name, q)
			}
			seen[strings.ToLower(name)] = true
		}
	}
	if got := selectFields([]string{"Id", "Amount"}, "", "amount", "AMOUNT", "PO__c", "po__C", "Id"); strings.Join(got, ",") != "Id,Amount,PO__c" {
		t.Errorf("selectFields: %q", got)
	}
}

// A relationship field of extra_fields (Owner.Email), which Salesforce
// answers inside its parent object, is in deal.raw under its dotted name
// on the fetch as on the listing of `deals sync`; the fetch keeps the
// parent object (raw["Owner"]) as well.
func TestDottedExtraFieldsAreRawKeysOnEveryPath(t *testing.T) {
	f := salesforcefake.New(orgA, "cid-a", "cs-a")
	t.Cleanup(f.Close)
	f.MultiCurrency = true
	f.PutOpportunity(salesforcefake.ParseRecord(`{"Id":"0065w0000000001AAA","Name":"Deal","StageName":"Closed Won","IsWon":true,"CurrencyIsoCode":"EUR",` +
		`"CloseDate":"2026-11-03","SystemModstamp":"2026-11-03T10:00:00.000+0000","Amount":100,` +
		`"Owner":{"Email":"rep@acme.example","Name":"Rep"},"Account":{"Name":"Acme","Type":"Partner"},"AccountId":"0015w00002BFDeLAAX"}`))
	s := apiSource(t, f, func(c *Config) { c.Fetch.ExtraFields = []string{"Owner.Email", "Account.Type"} })
	var listed connectors.WonDeal
	err := s.ListWonDeals(context.Background(), orgA, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC),
		func(d connectors.WonDeal) error { listed = d; return nil })
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.FetchDeal(context.Background(), orgA, "0065w0000000001AAA")
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"Owner.Email": `"rep@acme.example"`, "Account.Type": `"Partner"`} {
		if string(listed.Raw[key]) != want || string(d.Raw[key]) != want {
			t.Errorf("raw[%q]: listed %s, fetched %s; want %s on both", key, listed.Raw[key], d.Raw[key], want)
		}
	}
	if string(d.Raw["Owner"]) != `{"Email":"rep@acme.example"}` {
		t.Errorf("fetched raw[Owner] %s, want the parent object kept", d.Raw["Owner"])
	}
}

// A won Opportunity deleted in Salesforce (a duplicate deleted while its
// run settles) is not found by the query resource; FetchDeal finds it in
// the Recycle Bin through queryAll and reports it in stage StageDeleted,
// not won, so its run ends DealNotWon rather than failing for good on a
// 404. One found in neither keeps the 404; a lookup not answered now is
// retried.
func TestFetchDealDeletedIsFoundInTheRecycleBin(t *testing.T) {
	f := newFakeOrg(t)
	f.DeleteOpportunity("0065w000023STAmAAO")
	s := apiSource(t, f, nil)
	d, err := s.FetchDeal(context.Background(), orgA, "0065w000023STAmAAO")
	if err != nil || d.Stage != StageDeleted || d.ID != "0065w000023STAmAAO" || d.Name != "Backpackers, Inc." ||
		len(d.LineItems) != 0 || d.Company.ID != "" || d.Amount.Decimal.String() != "45000.1" || string(d.Raw["IsDeleted"]) != "true" {
		t.Fatalf("a deleted won opportunity: %+v, %v; want stage %q", d, err, StageDeleted)
	}
	if s.wonStages[StageDeleted] {
		t.Errorf("stage %q is a won stage", StageDeleted)
	}
	var paths []string
	for _, r := range f.Requests() {
		if r.Path != "/services/oauth2/token" {
			paths = append(paths, r.Path)
		}
	}
	if want := []string{"/services/data/v62.0/query", "/services/data/v62.0/queryAll"}; !slices.Equal(paths, want) {
		t.Errorf("requests %q, want %q: the line items of a deleted opportunity are not read", paths, want)
	}
	if q := f.Queries(); len(q) != 2 || !strings.HasSuffix(q[1], "FROM Opportunity WHERE Id = '0065w000023STAmAAO' AND IsDeleted = true") {
		t.Errorf("queries %q", q)
	}

	_, err = s.FetchDeal(context.Background(), orgA, "0065w000023XXXXAAO")
	var api *connectors.APIError
	if c, _ := connectors.Classify(err); !errors.As(err, &api) || api.StatusCode != 404 || c != connectors.Permanent ||
		!strings.Contains(err.Error(), "neither among the org's opportunities nor among the deleted ones") {
		t.Fatalf("an unknown opportunity: %v; want the 404, not retried", err)
	}

	// The lookup answered 503: retried; answered 400: the 404 stands.
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/services/oauth2/token":
			_, _ = io.WriteString(w, `{"access_token":"t","token_type":"Bearer","instance_url":"x"}`)
		case "/services/data/v62.0/query":
			_, _ = io.WriteString(w, `{"totalSize":0,"done":true,"records":[]}`)
		default:
			w.WriteHeader(int(status.Load()))
			_, _ = io.WriteString(w, `[{"message":"lookup refused","errorCode":"INVALID_TYPE"}]`)
		}
	}))
	defer srv.Close()
	s = testSource(t, func(c *Config) {
		c.Accounts = map[string]Account{orgA: {InstanceURL: srv.URL, ClientID: "c", ClientSecret: secret.New("s")}}
	})
	status.Store(http.StatusServiceUnavailable)
	_, err = s.FetchDeal(context.Background(), orgA, "0065w000023STAmAAO")
	if c, _ := connectors.Classify(err); c != connectors.Retry || !strings.Contains(err.Error(), "lookup refused") {
		t.Errorf("the lookup answered 503: %v (%v); want it retried", err, c)
	}
	status.Store(http.StatusBadRequest)
	_, err = s.FetchDeal(context.Background(), orgA, "0065w000023STAmAAO")
	if c, _ := connectors.Classify(err); !errors.As(err, &api) || api.StatusCode != 404 || c != connectors.Permanent ||
		!strings.Contains(err.Error(), "looking opportunity 0065w000023STAmAAO up among the deleted ones failed") {
		t.Errorf("the lookup refused: %v (%v); want the 404", err, c)
	}
}

// The write-back is a PATCH of the Opportunity: a write_back field of a
// related record (Account.ERP_Invoice__c) is refused at start, not by
// Salesforce after the invoice is made. The fetch's fields may name one.
func TestWriteBackFieldsAreOpportunityFields(t *testing.T) {
	for _, key := range []string{"invoice_id_field", "invoice_number_field", "invoice_url_field", "status_field"} {
		cfg := DefaultConfig()
		cfg.AllowUnauthenticated = true
		cfg.Accounts = map[string]Account{strings.ToLower(orgA): {InstanceURL: "https://a.my.salesforce.com", ClientID: "c", ClientSecret: secret.New("s")}}
		cfg.Fetch.AccountTaxIDField = "Account.VAT_Id__c"
		wb := map[string]*string{"invoice_id_field": &cfg.WriteBack.InvoiceIDField, "invoice_number_field": &cfg.WriteBack.InvoiceNumberField,
			"invoice_url_field": &cfg.WriteBack.InvoiceURLField, "status_field": &cfg.WriteBack.StatusField}
		if _, err := New(cfg, connectors.Env{}); err != nil {
			t.Fatalf("defaults: %v", err)
		}
		*wb[key] = "Account.ERP_Invoice__c"
		_, err := New(cfg, connectors.Env{})
		if err == nil || !strings.Contains(err.Error(), "write_back."+key+` "Account.ERP_Invoice__c"`) || !strings.Contains(err.Error(), "without a dot") {
			t.Errorf("write_back.%s of the Account: %v; want refused, naming it", key, err)
		}
	}
}

// An org's own default_currency is the currency of its Opportunities that
// have none (a single-currency org), before the source's: two
// single-currency orgs of different currencies share a connection. A code
// that is not a currency is refused at start, naming the org's key.
func TestFetchDealOrgDefaultCurrency(t *testing.T) {
	f := newFakeOrg(t)
	f.MultiCurrency = false
	s := apiSource(t, f, func(c *Config) {
		c.Fetch.CurrencyField, c.Fetch.DefaultCurrency = "", "USD"
		a := c.Accounts[orgA]
		a.DefaultCurrency = "gbp"
		c.Accounts[orgA] = a
	})
	if d, err := s.FetchDeal(context.Background(), orgA, "0065w000023STAmAAO"); err != nil || d.Currency != "GBP" {
		t.Fatalf("currency %q, %v; want the org's GBP", d.Currency, err)
	}
	cfg := DefaultConfig()
	cfg.AllowUnauthenticated = true
	cfg.Accounts = map[string]Account{orgA: {InstanceURL: f.URL, ClientID: "cid-a", ClientSecret: secret.New("cs-a"), DefaultCurrency: "EURO"}}
	if _, err := New(cfg, connectors.Env{}); err == nil || !strings.Contains(err.Error(), "default_currency") || !strings.Contains(err.Error(), orgA) {
		t.Fatalf("a default_currency that is not a currency: %v", err)
	}
}
