package connections_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/testconfig"
)

// identityOf builds a config whose connection shop (generic source) calls
// the target named name, written as spec, and returns the identity the
// intake pins for its runs and the activities compare.
func identityOf(t *testing.T, name, spec string) connectors.TargetIdentity {
	t.Helper()
	dir := t.TempDir()
	body := "targets:\n  " + name + ": " + strings.ReplaceAll(spec, "DIR", dir) + `
connections:
  shop:
    source: {type: generic, secret: whsec_c2hvcC1zZWNyZXQ=}
    target: ` + name + "\n"
	_, set := testconfig.Build(t, dir, body, connectors.Env{})
	shop, _ := set.Get("shop")
	resolved, _ := set.Resolve("shop")
	if got, want := shop.TargetIdentityFor(""), resolved.TargetIdentityFor(""); got != want || got.IsZero() {
		t.Fatalf("the intake's identity %+v, the activities' %+v: want one, not zero", got, want)
	}
	return shop.TargetIdentityFor("")
}

func ecKeyFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "ns.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Where a connection's ERP calls go is its target's name, type and the
// settings that say which ERP, company or books they reach: base URL,
// tenant, realm, account. A credential, a token or a token file is not
// part of it (rotating a secret must not make runs under way refuse
// their ERP steps), nor shown in its description.
func TestTheTargetIdentityIsWhereTheCallsGoNotTheirCredentials(t *testing.T) {
	const tenant, tenant2 = "11111111-2222-3333-4444-555555555555", "11111111-2222-3333-4444-666666666666"
	xero := func(tenant, secret, extra string) string {
		return `{type: xero, tenant_id: "` + tenant + `", client_id: c, client_secret: "` + secret + `", refresh_token: "rt-` + secret + `", token_file: DIR/x.json` + extra + `}`
	}
	qbo := func(realm, secret, extra string) string {
		return `{type: quickbooks, realm_id: "` + realm + `", client_id: c, client_secret: "` + secret + `", token_file: DIR/q.json, link_file: DIR/l.json` + extra + `}`
	}
	key1, key2 := ecKeyFile(t), ecKeyFile(t)
	netsuite := func(account, key, extra string) string {
		return `{type: netsuite, account_id: "` + account + `", client_id: c, certificate_id: k, private_key: "file:` + key + `"` + extra + `}`
	}
	http := func(baseURL, auth string) string {
		return `{type: http, base_url: "` + baseURL + `", auth_value: "Bearer ` + auth + `"}`
	}
	base := map[string]connectors.TargetIdentity{
		"xero":     identityOf(t, "books", xero(tenant, "s3cret-1", "")),
		"qbo":      identityOf(t, "books", qbo("9130355555555555", "s3cret-1", "")),
		"netsuite": identityOf(t, "books", netsuite("1234567_SB1", key1, "")),
		"http":     identityOf(t, "books", http("https://erp.example/api", "s3cret-1")),
	}
	for kind, id := range base {
		if strings.Contains(id.Description, "s3cret") || !strings.HasPrefix(id.Description, `target "books" (`) {
			t.Errorf("%s: description %q; want the target's name and no secret", kind, id.Description)
		}
	}
	if want := `target "books" (xero, tenant_id ` + tenant + `, base_url https://api.xero.com/api.xro/2.0)`; base["xero"].Description != want {
		t.Errorf("xero: description %q, want %q", base["xero"].Description, want)
	}
	if want := `target "books" (netsuite, account_id 1234567_SB1, base_url https://1234567-sb1.suitetalk.api.netsuite.com)`; base["netsuite"].Description != want {
		t.Errorf("netsuite: description %q, want %q", base["netsuite"].Description, want)
	}
	for _, c := range []struct {
		name, kind string
		id         connectors.TargetIdentity
		same       bool
	}{
		{"xero: another client secret and refresh token", "xero", identityOf(t, "books", xero(tenant, "s3cret-2", "")), true},
		{"xero: another token file", "xero", identityOf(t, "books", strings.Replace(xero(tenant, "s3cret-1", ""), "x.json", "y.json", 1)), true},
		{"xero: its base URL written with a trailing slash", "xero", identityOf(t, "books", xero(tenant, "s3cret-1", ", base_url: https://api.xero.com/api.xro/2.0/")), true},
		{"xero: another tenant", "xero", identityOf(t, "books", xero(tenant2, "s3cret-1", "")), false},
		{"xero: another base URL", "xero", identityOf(t, "books", xero(tenant, "s3cret-1", ", base_url: https://mock.example/api.xro/2.0")), false},
		{"xero: another target name", "xero", identityOf(t, "books-2", xero(tenant, "s3cret-1", "")), false},
		{"quickbooks: another client secret", "qbo", identityOf(t, "books", qbo("9130355555555555", "s3cret-2", "")), true},
		{"quickbooks: another realm", "qbo", identityOf(t, "books", qbo("9130355555555556", "s3cret-1", "")), false},
		{"netsuite: another private key", "netsuite", identityOf(t, "books", netsuite("1234567_SB1", key2, "")), true},
		{"netsuite: its own base URL written out", "netsuite", identityOf(t, "books", netsuite("1234567_SB1", key1, ", base_url: https://1234567-sb1.suitetalk.api.netsuite.com")), true},
		{"netsuite: another account", "netsuite", identityOf(t, "books", netsuite("1234567", key1, "")), false},
		{"http: another auth value", "http", identityOf(t, "books", http("https://erp.example/api", "s3cret-2")), true},
		{"http: another base URL", "http", identityOf(t, "books", http("https://erp2.example/api", "s3cret-1")), false},
		{"http: another path", "http", identityOf(t, "books", http("https://erp.example/api/tenant-2", "s3cret-1")), false},
	} {
		if got := c.id.Fingerprint == base[c.kind].Fingerprint; got != c.same {
			t.Errorf("%s: same fingerprint %v, want %v (%+v, %+v)", c.name, got, c.same, c.id, base[c.kind])
		}
	}
	if base["xero"].Fingerprint == base["http"].Fingerprint || base["qbo"].Fingerprint == base["netsuite"].Fingerprint {
		t.Error("targets of different types share a fingerprint")
	}
}

// With account_targets, an account's deals are pinned to its own target,
// the others' to the connection's, as the ERP steps pick them.
func TestTheTargetIdentityOfAnAccountIsItsTargets(t *testing.T) {
	t.Setenv("DEALSYNC_TEST_HS_SECRET", "hubspot-client-secret")
	t.Setenv("DEALSYNC_TEST_HS_TOKEN", "pat-na1-62515")
	yaml := `targets:
  erp-a: {type: http, base_url: "https://a.example"}
  erp-b: {type: http, base_url: "https://b.example"}
connections:
  hs:
    target: erp-a
    account_targets: {"62515": erp-b}
    source:
      type: hubspot
      client_secret: env:DEALSYNC_TEST_HS_SECRET
      accounts:
        "62515": {access_token: env:DEALSYNC_TEST_HS_TOKEN}
        "70001": {access_token: env:DEALSYNC_TEST_HS_TOKEN}
`
	_, set := testconfig.Build(t, "", yaml, connectors.Env{})
	hs, _ := set.Get("hs")
	routed, other := hs.TargetIdentityFor("62515"), hs.TargetIdentityFor("70001")
	if routed.Description != `target "erp-b" (http, base_url https://b.example)` || other.Description != `target "erp-a" (http, base_url https://a.example)` ||
		routed.Fingerprint == other.Fingerprint {
		t.Errorf("account 62515: %+v, account 70001: %+v; want erp-b's and erp-a's", routed, other)
	}
	resolved, _ := set.Resolve("hs")
	if resolved.TargetIdentityFor("62515") != routed || resolved.TargetIdentityFor("70001") != other {
		t.Error("the activities pick another identity than the intake pins")
	}
}

// devIdentity is the identity dealsync dev's config (no file: its
// built-in demo connection and sandbox target) gives connection demo.
func devIdentity(t *testing.T) connectors.TargetIdentity {
	t.Helper()
	t.Chdir(t.TempDir())
	cfg, err := config.Load("", config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	set, err := connections.Build(cfg, connectors.Env{})
	if err != nil {
		t.Fatal(err)
	}
	demo, ok := set.Get("demo")
	if !ok {
		t.Fatal("no demo connection")
	}
	return demo.TargetIdentityFor("")
}

// dealsync dev's built-in sandbox target is dev's own sandbox ERP (the
// data dir's journal) on whatever port dev.sandbox_listen gives it: a dev
// restarted on another port (8090 was taken) goes on with the runs it had
// under way, which a pin of the port would refuse. Pointed elsewhere by
// DEALSYNC_TARGETS_SANDBOX_BASE_URL, it is another ERP.
func TestDevsSandboxTargetIsTheSameOnAnotherPort(t *testing.T) {
	t.Setenv("DEALSYNC_DEV_SANDBOX_LISTEN", "127.0.0.1:8090")
	first := devIdentity(t)
	t.Setenv("DEALSYNC_DEV_SANDBOX_LISTEN", "127.0.0.1:18090")
	if moved := devIdentity(t); moved != first {
		t.Errorf("dev's sandbox on another port: %+v, before %+v; want the same", moved, first)
	}
	t.Setenv("DEALSYNC_TARGETS_SANDBOX_BASE_URL", "http://sandbox.example:8090")
	if elsewhere := devIdentity(t); elsewhere.Fingerprint == first.Fingerprint || !strings.Contains(elsewhere.Description, "http://sandbox.example:8090") {
		t.Errorf("the sandbox target pointed at another host: %+v; want another identity, naming it", elsewhere)
	}
}

// pinnedByURL is a pin of the dev sandbox target as an http target at
// baseURL, as the release before this one made it for a base_url it did
// not take for the sandbox: its base_url written as that release wrote
// it (no trailing dot, an IPv4 address: as this one does).
func pinnedByURL(baseURL string) connectors.TargetIdentity {
	return connectors.IdentifyTarget("sandbox", "http", byURL{baseURL})
}

type byURL struct{ baseURL string }

func (b byURL) IdentifyingSettings() []connectors.Setting {
	return []connectors.Setting{{Key: "base_url", Value: b.baseURL}}
}

// A sandbox on every interface is reached on any address of this
// machine, which this release takes for dev's sandbox (its port may
// change); the release before took only 127.0.0.1 and localhost, and
// identified the built-in sandbox target at another address of this
// machine (127.0.0.2, a LAN address) by its base_url: the runs a dev
// data dir had pinned so go on. A pin of another address does not match,
// and at 127.0.0.1 (the sandbox for both releases) there is no earlier
// identity.
func TestDevsSandboxTargetAtAnotherLocalAddressMatchesTheEarlierPin(t *testing.T) {
	t.Setenv("DEALSYNC_DEV_SANDBOX_LISTEN", "0.0.0.0:19090")
	t.Setenv("DEALSYNC_TARGETS_SANDBOX_BASE_URL", "http://127.0.0.1:19090")
	onLoopback := devIdentity(t)
	t.Setenv("DEALSYNC_TARGETS_SANDBOX_BASE_URL", "http://127.0.0.2:19090/")
	here := devIdentity(t)
	if here.Fingerprint != onLoopback.Fingerprint || !strings.Contains(here.Description, "dev.sandbox_listen") {
		t.Fatalf("the sandbox at 127.0.0.2: %+v; want dev's sandbox %+v", here, onLoopback)
	}
	if pin := pinnedByURL("http://127.0.0.2:19090"); !here.Matches(pin) {
		t.Errorf("dev's sandbox at 127.0.0.2 refuses the earlier release's pin %+v (%+v)", pin, here)
	}
	if pin := pinnedByURL("http://127.0.0.3:19090"); here.Matches(pin) {
		t.Errorf("dev's sandbox at 127.0.0.2 matches a pin of 127.0.0.3: %+v", pin)
	}
	if onLoopback.EarlierFingerprint != "" || onLoopback.Matches(pinnedByURL("http://127.0.0.2:19090")) {
		t.Errorf("dev's sandbox at 127.0.0.1: %+v; want no earlier identity", onLoopback)
	}
	// Listening on one address, only that one is the sandbox, as before.
	t.Setenv("DEALSYNC_DEV_SANDBOX_LISTEN", "127.0.0.2:19090")
	if one := devIdentity(t); one.Fingerprint != onLoopback.Fingerprint || one.EarlierFingerprint != "" {
		t.Errorf("the sandbox listening on 127.0.0.2 only: %+v; want dev's sandbox, as the release before identified it", one)
	}
}

// The identity a run is pinned to says whether a retry of its invoice
// step finds an invoice an earlier attempt may have made, which its
// failures' advice follows: quickbooks, netsuite, xero with
// check_reference and an http target with lookup_invoices do, and dev's
// sandbox, which keeps the keys; an http target without lookup_invoices,
// and xero with check_reference: false, rest on the ERP keeping
// Idempotency-Key (Xero keeps it a limited time), and name the setting
// that turns the look-up on. Turning lookup_invoices on refuses no run under way:
// the fingerprint stays.
func TestTheTargetIdentitySaysWhetherARetryFindsTheInvoice(t *testing.T) {
	xero := `{type: xero, tenant_id: "11111111-2222-3333-4444-555555555555", client_id: c, client_secret: s, refresh_token: rt, token_file: DIR/x.json}`
	xeroKeyOnly := `{type: xero, tenant_id: "11111111-2222-3333-4444-555555555555", client_id: c, client_secret: s, refresh_token: rt, token_file: DIR/x.json, check_reference: false}`
	qbo := `{type: quickbooks, realm_id: "9130355555555555", client_id: c, client_secret: s, token_file: DIR/q.json, link_file: DIR/l.json}`
	netsuite := `{type: netsuite, account_id: "1234567_SB1", client_id: c, certificate_id: k, private_key: "file:` + ecKeyFile(t) + `"}`
	http := func(extra string) string { return `{type: http, base_url: "https://erp.example/api"` + extra + `}` }
	without, with := identityOf(t, "books", http("")), identityOf(t, "books", http(", lookup_invoices: true"))
	for _, c := range []struct {
		name    string
		id      connectors.TargetIdentity
		want    connectors.InvoiceRetry
		setting string
	}{
		{"xero", identityOf(t, "books", xero), connectors.InvoiceRetryFinds, ""},
		// Xero keeps its idempotency keys a limited time: a retry days
		// later makes a second invoice.
		{"xero with check_reference: false", identityOf(t, "books", xeroKeyOnly), connectors.InvoiceRetryKeyOnly, "check_reference"},
		{"quickbooks", identityOf(t, "books", qbo), connectors.InvoiceRetryFinds, ""},
		{"netsuite", identityOf(t, "books", netsuite), connectors.InvoiceRetryFinds, ""},
		{"http with lookup_invoices", with, connectors.InvoiceRetryFinds, ""},
		{"http without lookup_invoices", without, connectors.InvoiceRetryKeyOnly, "lookup_invoices"},
		{"http with lookup_invoices: false", identityOf(t, "books", http(", lookup_invoices: false")), connectors.InvoiceRetryKeyOnly, "lookup_invoices"},
		{"dev's sandbox", devIdentity(t), connectors.InvoiceRetryFinds, ""},
	} {
		if c.id.InvoiceRetry != c.want || c.id.LookupSetting != c.setting {
			t.Errorf("%s: %q (setting %q), want %q (setting %q)", c.name, c.id.InvoiceRetry, c.id.LookupSetting, c.want, c.setting)
		}
	}
	if with.Fingerprint != without.Fingerprint || !with.Matches(without) {
		t.Errorf("lookup_invoices changed the fingerprint: %+v, %+v", with, without)
	}
	t.Setenv("DEALSYNC_TARGETS_SANDBOX_BASE_URL", "http://sandbox.example:8090")
	if elsewhere := devIdentity(t); elsewhere.InvoiceRetry != connectors.InvoiceRetryKeyOnly || elsewhere.LookupSetting != "lookup_invoices" {
		t.Errorf("dev's sandbox target pointed at another host: %q; want an http target's without lookup_invoices", elsewhere.InvoiceRetry)
	}
}
