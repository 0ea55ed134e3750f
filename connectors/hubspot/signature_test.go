package hubspot

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/sharedfiles"
	"github.com/dealsync/dealsync/secret"
)

// Published vectors (../shared/webhooks/README.md §1), inlined.
const (
	docSecret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
	docURI    = "https://www.example.com/webhook_uri"
	// HubSpot Python SDK test: the body has single quotes, exactly.
	pyBody = "{'example_field':'example_value'}"
	pyTS   = "15000000"
	pyV3   = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="
	// v2 docs (GET, empty body) and Node SDK (POST) vectors.
	docV2GET   = "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
	nodeBody   = `{"example_field":"example_value"}`
	nodeV2POST = "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
	pyV1       = "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
	pyV2       = "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"
	// v1 docs vector over the docs body (hubspot-v1-docs-body.json).
	docV1Body = `[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]`
	docV1     = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"

	// The README's own v3 vectors over the saved payloads (not HubSpot's;
	// computed with @hubspot/api-client and re-derived in Python).
	oursSecret = "test-client-secret-0000"
	oursURI    = "https://sync.example.com/webhooks/hubspot"
	oursTS     = "1716900001234"
)

// The saved payloads, inlined byte for byte (no trailing newline).
const (
	capturedDealstage      = `[{"objectId":697680835,"propertyName":"dealstage","propertyValue":"1f4f1ec1-8174-49f3-a112-4eaa4748e38e","changeSource":"CRM_UI","eventId":802835955,"subscriptionId":92894,"portalId":5799819,"appId":186886,"occurredAt":1556094637139,"subscriptionType":"deal.propertyChange","attemptNumber":0}]`
	constructedClosedwon   = `[{"eventId":1718190532,"subscriptionId":2881778,"portalId":62515,"appId":54321,"occurredAt":1716900000000,"subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":1234567890,"propertyName":"dealstage","propertyValue":"closedwon","changeSource":"CRM_UI","sourceId":"userId:1234567"}]`
	capturedDealstageV3    = "G01FGvHYxMd78L+4b6hC4EC7YDDRL0IuyiSddikyRWo="
	constructedClosedwonV3 = "PSCOZPQmNhSioGldVhiuOfybk6/PeIW+kPyBQxJyfP0="
)

func testSource(t testing.TB, mutate func(*Config)) *Source {
	t.Helper()
	return testSourceIn(t, connectors.Env{}, mutate)
}

// testSourceIn is testSource built in env (a config key).
func testSourceIn(t testing.TB, env connectors.Env, mutate func(*Config)) *Source {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ClientSecret = secret.New(oursSecret)
	cfg.Accounts = map[string]Account{
		"62515":   {AccessToken: secret.New("pat-na1-62515")},
		"5799819": {AccessToken: secret.New("pat-na1-5799819")},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg, env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func hook(method, uri, body string, h map[string]string, received time.Time) *connectors.Webhook {
	hdr := http.Header{}
	for k, v := range h {
		hdr.Set(k, v)
	}
	return &connectors.Webhook{Method: method, URL: uri, Header: hdr, Body: []byte(body), Received: received}
}

func msTime(ts string) time.Time {
	n, _ := strconv.ParseInt(ts, 10, 64)
	return time.UnixMilli(n)
}

func TestSignPublishedVectors(t *testing.T) {
	cases := []struct{ name, got, want string }{
		{"v3 python sdk", SignV3(docSecret, "POST", docURI, []byte(pyBody), pyTS), pyV3},
		{"v2 docs GET", SignV2(docSecret, "GET", docURI, nil), docV2GET},
		{"v2 node sdk POST", SignV2(docSecret, "POST", docURI, []byte(nodeBody)), nodeV2POST},
		{"v2 python sdk", SignV2(docSecret, "POST", docURI, []byte(pyBody)), pyV2},
		{"v1 python sdk", SignV1(docSecret, []byte(pyBody)), pyV1},
		{"v1 docs", SignV1(docSecret, []byte(docV1Body)), docV1},
		{"v3 ours dealstage", SignV3(oursSecret, "POST", oursURI, []byte(capturedDealstage), oursTS), capturedDealstageV3},
		{"v3 ours closedwon", SignV3(oursSecret, "POST", oursURI, []byte(constructedClosedwon), oursTS), constructedClosedwonV3},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, c.got, c.want)
		}
	}
}

func TestVerifyPublishedV3Vector(t *testing.T) {
	s := testSource(t, func(c *Config) { c.ClientSecret = secret.New(docSecret) })
	w := hook("POST", docURI, pyBody, map[string]string{HeaderSignatureV3: pyV3, HeaderTimestamp: pyTS}, msTime(pyTS).Add(time.Minute))
	if err := s.Verify(w); err != nil {
		t.Fatalf("Verify(published v3 vector): %v", err)
	}
	// The same vector five minutes and one millisecond later is stale.
	w.Received = msTime(pyTS).Add(5*time.Minute + time.Millisecond)
	if err := s.Verify(w); !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "too old") {
		t.Fatalf("stale: got %v", err)
	}
	// ...and exactly five minutes is still accepted.
	w.Received = msTime(pyTS).Add(5 * time.Minute)
	if err := s.Verify(w); err != nil {
		t.Fatalf("at the boundary: %v", err)
	}
}

func TestVerifyPublishedLegacyVectors(t *testing.T) {
	s := testSource(t, func(c *Config) {
		c.ClientSecret = secret.New(docSecret)
		c.LegacySignatures = []string{"v1", "v2"}
	})
	now := time.Now()
	for name, w := range map[string]*connectors.Webhook{
		"v1 docs":   hook("POST", docURI, docV1Body, map[string]string{HeaderSignature: docV1, HeaderVersion: "v1"}, now),
		"v2 docs":   hook("GET", docURI, "", map[string]string{HeaderSignature: docV2GET, HeaderVersion: "v2"}, now),
		"v2 node":   hook("POST", docURI, nodeBody, map[string]string{HeaderSignature: nodeV2POST, HeaderVersion: "v2"}, now),
		"v2 python": hook("POST", docURI, pyBody, map[string]string{HeaderSignature: pyV2, HeaderVersion: "v2"}, now),
	} {
		if err := s.Verify(w); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Not configured: refused even though the signature is right.
	strict := testSource(t, func(c *Config) { c.ClientSecret = secret.New(docSecret) })
	err := strict.Verify(hook("POST", docURI, docV1Body, map[string]string{HeaderSignature: docV1, HeaderVersion: "v1"}, now))
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "legacy_signatures") {
		t.Fatalf("v1 without legacy_signatures: got %v", err)
	}
	// v1 signs the secret and the body: a mismatch does not blame the URL.
	err = s.Verify(hook("POST", docURI, docV1Body, map[string]string{HeaderSignature: strings.Repeat("ab", 32), HeaderVersion: "v1"}, now))
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "v1 signs the client secret and the body") || strings.Contains(err.Error(), "public URL") {
		t.Errorf("a v1 signature of another secret: got %v, want a hint at the secret, not the URL", err)
	}
	// v2 signs the URI: another URI fails.
	err = s.Verify(hook("POST", docURI+"?x=1", nodeBody, map[string]string{HeaderSignature: nodeV2POST, HeaderVersion: "v2"}, now))
	if !errors.Is(err, connectors.ErrUnauthorized) {
		t.Fatalf("v2 with another URI: got %v", err)
	}
}

func TestVerifySharedSamples(t *testing.T) {
	s := testSource(t, nil)
	for file, sig := range map[string]string{
		"hubspot-deal-propertychange-dealstage.captured.json":    capturedDealstageV3,
		"hubspot-deal-propertychange-closedwon.constructed.json": constructedClosedwonV3,
	} {
		body := sharedfiles.Webhook(t, file)
		w := &connectors.Webhook{Method: "POST", URL: oursURI, Body: body, Received: msTime(oursTS).Add(2 * time.Second),
			Header: http.Header{HeaderSignatureV3: {sig}, HeaderTimestamp: {oursTS}}}
		if err := s.Verify(w); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
	legacy := testSource(t, func(c *Config) {
		c.ClientSecret = secret.New(docSecret)
		c.LegacySignatures = []string{"v1"}
	})
	body := sharedfiles.Webhook(t, "hubspot-v1-docs-body.json")
	if string(body) != docV1Body {
		t.Fatalf("shared v1 body differs from the inlined one: %q", body)
	}
	w := &connectors.Webhook{Method: "POST", URL: docURI, Body: body, Received: time.Now(),
		Header: http.Header{HeaderSignature: {docV1}, HeaderVersion: {"v1"}}}
	if err := legacy.Verify(w); err != nil {
		t.Errorf("v1 docs body: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	s := testSource(t, nil)
	now := msTime(oursTS).Add(time.Second)
	good := map[string]string{HeaderSignatureV3: constructedClosedwonV3, HeaderTimestamp: oursTS}
	if err := s.Verify(hook("POST", oursURI, constructedClosedwon, good, now)); err != nil {
		t.Fatalf("good delivery: %v", err)
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name string
		w    *connectors.Webhook
		want string
	}{
		{"tampered body", hook("POST", oursURI, strings.Replace(constructedClosedwon, "1234567890", "1234567891", 1), good, now), "does not match"},
		{"internal URL instead of public", hook("POST", "http://10.0.0.7:8080/webhooks/hubspot", constructedClosedwon, good, now), "does not match"},
		{"other method", hook("PUT", oursURI, constructedClosedwon, good, now), "does not match"},
		{"timestamp in seconds", hook("POST", oursURI, constructedClosedwon, with(HeaderTimestamp, "1716900001"), now), "timestamp 1716900001 is in seconds: X-HubSpot-Request-Timestamp is Unix milliseconds"},
		{"timestamp old", hook("POST", oursURI, constructedClosedwon, good, now.Add(6*time.Minute)), "before now (tolerance 5m)"},
		{"future", hook("POST", oursURI, constructedClosedwon, good, now.Add(-6*time.Minute)), "ahead of now (tolerance 5m)"},
		{"no timestamp", hook("POST", oursURI, constructedClosedwon, with(HeaderTimestamp, ""), now), "missing X-HubSpot-Request-Timestamp"},
		{"bad timestamp", hook("POST", oursURI, constructedClosedwon, with(HeaderTimestamp, "soon"), now), "invalid"},
		{"no signature", hook("POST", oursURI, constructedClosedwon, with(HeaderSignatureV3, ""), now), "missing X-HubSpot-Signature-v3"},
		{"not base64", hook("POST", oursURI, constructedClosedwon, with(HeaderSignatureV3, "!!"), now), "not base64"},
		{"hex", hook("POST", oursURI, constructedClosedwon, with(HeaderSignatureV3, strings.Repeat("ab", 32)), now), "48 bytes, want 32 (it reads as hex: v3 signatures are base64"},
		{"other secret's signature", hook("POST", oursURI, constructedClosedwon,
			with(HeaderSignatureV3, SignV3("other", "POST", oursURI, []byte(constructedClosedwon), oursTS)), now), "does not match"},
	}
	for _, c := range cases {
		err := s.Verify(c.w)
		if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ErrUnauthorized containing %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), oursSecret) {
			t.Errorf("%s: error leaks the secret", c.name)
		}
	}
	// Header names are case-insensitive (-V3 spelling).
	w := hook("POST", oursURI, constructedClosedwon, nil, now)
	w.Header.Set("x-hubspot-signature-V3", constructedClosedwonV3)
	w.Header.Set("x-hubspot-request-timestamp", oursTS)
	if err := s.Verify(w); err != nil {
		t.Errorf("lower-case header names: %v", err)
	}
}

func TestVerifyQueryAndDecodedURI(t *testing.T) {
	s := testSource(t, nil)
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	// A URL with a query string, signed as is (what the SDKs do).
	uri := "https://sync.example.com/webhooks/hubspot?tenant=acme&x=1"
	sig := SignV3(oursSecret, "POST", uri, []byte(constructedClosedwon), ts)
	if err := s.Verify(hook("POST", uri, constructedClosedwon, map[string]string{HeaderSignatureV3: sig, HeaderTimestamp: ts}, now)); err != nil {
		t.Fatalf("query string: %v", err)
	}
	// Reordered query parameters are another URI.
	reordered := "https://sync.example.com/webhooks/hubspot?x=1&tenant=acme"
	if err := s.Verify(hook("POST", reordered, constructedClosedwon, map[string]string{HeaderSignatureV3: sig, HeaderTimestamp: ts}, now)); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Fatalf("reordered query: got %v", err)
	}
	// HubSpot's docs: %3A, %2F, ... are decoded before hashing.
	encoded := "https://sync.example.com/webhooks/hubspot?next=%2Fdeals%3Fid%3D1&at=a%40b%2c"
	decoded := "https://sync.example.com/webhooks/hubspot?next=/deals?id%3D1&at=a@b," // %3D is not in the list
	sig = SignV3(oursSecret, "POST", decoded, []byte(constructedClosedwon), ts)
	if err := s.Verify(hook("POST", encoded, constructedClosedwon, map[string]string{HeaderSignatureV3: sig, HeaderTimestamp: ts}, now)); err != nil {
		t.Fatalf("signature over the decoded URI: %v", err)
	}
	if got, _ := decodedURI(encoded); got != decoded {
		t.Fatalf("decodedURI = %q, want %q", got, decoded)
	}
	// %20 is not in the list and stays encoded.
	if got, changed := decodedURI("https://h/a%20b"); changed || got != "https://h/a%20b" {
		t.Fatalf("decodedURI(%%20) = %q, %v", got, changed)
	}
}

func TestVerifyPrivateAppSecrets(t *testing.T) {
	s := testSource(t, func(c *Config) {
		c.ClientSecret = secret.Secret{}
		c.Accounts = map[string]Account{
			"62515":   {AccessToken: secret.New("pat-a"), ClientSecret: secret.New("secret-a")},
			"5799819": {AccessToken: secret.New("pat-b"), ClientSecret: secret.New("secret-b")},
		}
	})
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	sign := func(sec, body string) map[string]string {
		return map[string]string{HeaderSignatureV3: SignV3(sec, "POST", oursURI, []byte(body), ts), HeaderTimestamp: ts}
	}
	if err := s.Verify(hook("POST", oursURI, constructedClosedwon, sign("secret-a", constructedClosedwon), now)); err != nil {
		t.Fatalf("portal 62515 with its own secret: %v", err)
	}
	if err := s.Verify(hook("POST", oursURI, constructedClosedwon, sign("secret-b", constructedClosedwon), now)); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Fatalf("portal 62515's event signed with 5799819's secret: got %v", err)
	}
	mixed := "[" + strings.Trim(constructedClosedwon, "[]") + "," + strings.Trim(capturedDealstage, "[]") + "]"
	err := s.Verify(hook("POST", oursURI, mixed, sign("secret-a", mixed), now))
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "portal 5799819") {
		t.Fatalf("one tenant signing another's event: got %v", err)
	}
	// An element whose portal cannot be read is passed over here (Parse
	// leaves it out as unreadable): the portal's good event goes through.
	withBad := "[" + strings.Trim(constructedClosedwon, "[]") + `,"x",{"eventId":9,"portalId":{}}]`
	if err := s.Verify(hook("POST", oursURI, withBad, sign("secret-a", withBad), now)); err != nil {
		t.Fatalf("portal 62515's batch with unreadable elements: %v", err)
	}
	w := hook("POST", oursURI, withBad, nil, now)
	if evs, err := s.Parse(w); err != nil || len(evs) != 1 || len(w.Unreadable) != 2 {
		t.Fatalf("parse: %d events, %v, unreadable %v", len(evs), err, w.Unreadable)
	}
}

// Portals that share a secret (the app's, configured under each): each
// portal's events are accepted, whichever of them comes first in the
// order the keys are tried. A body a portal's key signed that is not a
// JSON array of events is malformed (400), not forged.
func TestVerifySharedPortalSecrets(t *testing.T) {
	s := testSource(t, func(c *Config) {
		c.ClientSecret = secret.Secret{}
		c.Accounts = map[string]Account{
			"62515":   {AccessToken: secret.New("pat-a"), ClientSecret: secret.New("shared")},
			"5799819": {AccessToken: secret.New("pat-b"), ClientSecret: secret.New("shared")},
		}
	})
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	sign := func(body string) map[string]string {
		return map[string]string{HeaderSignatureV3: SignV3("shared", "POST", oursURI, []byte(body), ts), HeaderTimestamp: ts}
	}
	other := strings.Replace(constructedClosedwon, `"portalId":62515`, `"portalId":5799819`, 1)
	for _, body := range []string{constructedClosedwon, other} {
		if err := s.Verify(hook("POST", oursURI, body, sign(body), now)); err != nil {
			t.Errorf("a portal's event signed with the shared secret: %v\n%s", err, body)
		}
	}
	if err := s.Verify(hook("POST", oursURI, `{"not":"an array"}`, sign(`{"not":"an array"}`), now)); !errors.Is(err, connectors.ErrMalformed) {
		t.Errorf("a signed body that is not an array of events: %v, want malformed (400)", err)
	}
	stranger := strings.Replace(constructedClosedwon, `"portalId":62515`, `"portalId":777`, 1)
	if err := s.Verify(hook("POST", oursURI, stranger, sign(stranger), now)); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Errorf("an event of a portal no key is bound to: %v, want unauthorized", err)
	}
	// A public app's batch mixes portals: both listed portals' events, in
	// either order, and an unlisted portal's (dropped by Parse) first or
	// not, are admitted by the secret they share. They were refused (401,
	// which HubSpot never resends): the first event's portal's key was
	// taken for that portal's alone.
	for _, body := range []string{"[" + event(constructedClosedwon) + "," + event(other) + "]", "[" + event(other) + "," + event(constructedClosedwon) + "]",
		"[" + event(stranger) + "," + event(constructedClosedwon) + "]", "[" + event(constructedClosedwon) + "," + event(stranger) + "]"} {
		if err := s.Verify(hook("POST", oursURI, body, sign(body), now)); err != nil {
			t.Errorf("a batch of portals sharing the secret: %v\n%s", err, body)
		}
	}
	// A portal with a secret of its own is still not admitted by another's.
	own := testSource(t, func(c *Config) {
		c.ClientSecret = secret.Secret{}
		c.Accounts = map[string]Account{
			"62515":   {AccessToken: secret.New("pat-a"), ClientSecret: secret.New("shared")},
			"5799819": {AccessToken: secret.New("pat-b"), ClientSecret: secret.New("private-b")},
		}
	})
	mixed := "[" + event(stranger) + "," + event(constructedClosedwon) + "," + event(other) + "]"
	if err := own.Verify(hook("POST", oursURI, mixed, sign(mixed), now)); !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "portal 5799819") {
		t.Errorf("portal 5799819's event under 62515's secret: %v, want unauthorized naming 5799819", err)
	}
}

// event is the one event of a batch body.
func event(batch string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(batch), "["), "]")
}

// A rotation of the app's secret: while previous_client_secret is
// configured, deliveries signed with it (v3, and v1/v2 when enabled) are
// accepted beside those signed with the new client_secret; once it is
// removed they are refused.
func TestVerifyPreviousClientSecret(t *testing.T) {
	rotating := func(c *Config) {
		c.ClientSecret = secret.New("new-app-secret")
		c.PreviousClientSecret = secret.New("old-app-secret")
		c.LegacySignatures = []string{"v1", "v2"}
	}
	during := testSource(t, rotating)
	after := testSource(t, func(c *Config) {
		rotating(c)
		c.PreviousClientSecret = secret.Secret{}
	})
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	body := []byte(constructedClosedwon)
	signed := func(sec string) map[string]*connectors.Webhook {
		return map[string]*connectors.Webhook{
			"v3": hook("POST", oursURI, constructedClosedwon, map[string]string{HeaderSignatureV3: SignV3(sec, "POST", oursURI, body, ts), HeaderTimestamp: ts}, now),
			"v2": hook("POST", oursURI, constructedClosedwon, map[string]string{HeaderSignature: SignV2(sec, "POST", oursURI, body), HeaderVersion: "v2"}, now),
			"v1": hook("POST", oursURI, constructedClosedwon, map[string]string{HeaderSignature: SignV1(sec, body), HeaderVersion: "v1"}, now),
		}
	}
	for scheme, w := range signed("old-app-secret") {
		if err := during.Verify(w); err != nil || !w.PreviousSecret {
			t.Errorf("%s signed with the previous secret during the rotation: %v (previous %v, want true)", scheme, err, w.PreviousSecret)
		}
		if err := after.Verify(w); !errors.Is(err, connectors.ErrUnauthorized) {
			t.Errorf("%s signed with the previous secret once it is removed: %v, want unauthorized", scheme, err)
		}
	}
	for scheme, w := range signed("new-app-secret") {
		for name, s := range map[string]*Source{"during": during, "after": after} {
			w.PreviousSecret = true // Verify says which admitted it, whatever was there
			if err := s.Verify(w); err != nil || w.PreviousSecret {
				t.Errorf("%s signed with the new secret, %s the rotation: %v (previous %v, want false)", scheme, name, err, w.PreviousSecret)
			}
		}
	}
	for scheme, w := range signed("some-other-secret") {
		if err := during.Verify(w); !errors.Is(err, connectors.ErrUnauthorized) {
			t.Errorf("%s signed with neither secret: %v, want unauthorized", scheme, err)
		}
	}
}

// A private app's previous secret is bound to its portal like its current
// one: it admits that portal's events only.
func TestVerifyPreviousPortalSecretIsBound(t *testing.T) {
	accounts := func(previous secret.Secret) func(*Config) {
		return func(c *Config) {
			c.ClientSecret = secret.Secret{}
			c.Accounts = map[string]Account{
				"62515":   {AccessToken: secret.New("pat-a"), ClientSecret: secret.New("new-secret-a"), PreviousClientSecret: previous},
				"5799819": {AccessToken: secret.New("pat-b"), ClientSecret: secret.New("secret-b")},
			}
		}
	}
	during := testSource(t, accounts(secret.New("old-secret-a")))
	after := testSource(t, accounts(secret.Secret{}))
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	signed := func(sec, body string) *connectors.Webhook {
		return hook("POST", oursURI, body, map[string]string{HeaderSignatureV3: SignV3(sec, "POST", oursURI, []byte(body), ts), HeaderTimestamp: ts}, now)
	}
	// constructedClosedwon is portal 62515's event, capturedDealstage 5799819's.
	if err := during.Verify(signed("old-secret-a", constructedClosedwon)); err != nil {
		t.Errorf("portal 62515's event signed with its previous secret: %v", err)
	}
	if err := during.Verify(signed("new-secret-a", constructedClosedwon)); err != nil {
		t.Errorf("portal 62515's event signed with its new secret: %v", err)
	}
	err := during.Verify(signed("old-secret-a", capturedDealstage))
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "portal 5799819") {
		t.Errorf("portal 5799819's event signed with 62515's previous secret: %v, want unauthorized naming the portal", err)
	}
	mixed := "[" + strings.Trim(constructedClosedwon, "[]") + "," + strings.Trim(capturedDealstage, "[]") + "]"
	if err := during.Verify(signed("old-secret-a", mixed)); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Errorf("62515's previous secret signing another portal's event among its own: %v, want unauthorized", err)
	}
	if err := after.Verify(signed("old-secret-a", constructedClosedwon)); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Errorf("portal 62515's previous secret once removed: %v, want unauthorized", err)
	}
	if err := after.Verify(signed("new-secret-a", constructedClosedwon)); err != nil {
		t.Errorf("portal 62515's new secret once the previous one is removed: %v", err)
	}
}

// A previous_client_secret that resolves to nothing is refused like a
// client_secret (never an empty HMAC key), and one without a
// client_secret beside it is a config error; both name the key.
func TestNewRefusesUnusablePreviousClientSecret(t *testing.T) {
	t.Setenv("DEALSYNC_TEST_HUBSPOT_EMPTY", "")
	emptyFile := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pat := secret.New("pat-na1-62515")
	for _, c := range []struct {
		name string
		cfg  Config
		key  string
	}{
		{"empty variable", Config{ClientSecret: secret.New("x"), PreviousClientSecret: secret.New("env:DEALSYNC_TEST_HUBSPOT_EMPTY"),
			Accounts: map[string]Account{"62515": {AccessToken: pat}}}, "hubspot source: previous_client_secret (env:DEALSYNC_TEST_HUBSPOT_EMPTY)"},
		{"empty file", Config{ClientSecret: secret.New("x"), PreviousClientSecret: secret.New("file:" + emptyFile),
			Accounts: map[string]Account{"62515": {AccessToken: pat}}}, "hubspot source: previous_client_secret (file:"},
		{"account's empty variable", Config{Accounts: map[string]Account{"62515": {AccessToken: pat, ClientSecret: secret.New("x"),
			PreviousClientSecret: secret.New("env:DEALSYNC_TEST_HUBSPOT_EMPTY")}}}, "hubspot source: accounts.62515.previous_client_secret (env:"},
		{"without client_secret", Config{PreviousClientSecret: secret.New("old-secret-value"),
			Accounts: map[string]Account{"62515": {AccessToken: pat, ClientSecret: secret.New("x")}}}, "hubspot source: previous_client_secret is set without client_secret"},
		{"account's without client_secret", Config{ClientSecret: secret.New("x"),
			Accounts: map[string]Account{"62515": {AccessToken: pat, PreviousClientSecret: secret.New("old-secret-value")}}}, "hubspot source: accounts.62515.previous_client_secret is set without client_secret"},
	} {
		_, err := New(c.cfg, connectors.Env{})
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.key)
		} else if strings.Contains(err.Error(), "old-secret-value") || strings.Contains(err.Error(), "pat-") {
			t.Errorf("%s: error leaks a secret: %v", c.name, err)
		}
	}
}

func TestNewRequiresASecretAndCredentials(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no accounts":           {ClientSecret: secret.New("x")},
		"no secret at all":      {Accounts: map[string]Account{"1": {AccessToken: secret.New("t")}}},
		"no credentials":        {ClientSecret: secret.New("x"), Accounts: map[string]Account{"1": {}}},
		"portal id not digits":  {ClientSecret: secret.New("x"), Accounts: map[string]Account{"acme": {AccessToken: secret.New("t")}}},
		"token and oauth":       {ClientSecret: secret.New("x"), Accounts: map[string]Account{"1": {AccessToken: secret.New("t"), OAuth: &OAuth{ClientID: "c", ClientSecret: secret.New("s"), RefreshToken: secret.New("r")}}}},
		"unresolvable token":    {ClientSecret: secret.New("x"), Accounts: map[string]Account{"1": {AccessToken: secret.New("env:DEALSYNC_TEST_UNSET_HUBSPOT_TOKEN")}}},
		"bad legacy signatures": {ClientSecret: secret.New("x"), LegacySignatures: []string{"v9"}, Accounts: map[string]Account{"1": {AccessToken: secret.New("t")}}},
	} {
		if _, err := New(cfg, connectors.Env{}); err == nil {
			t.Errorf("%s: New succeeded", name)
		} else if strings.Contains(err.Error(), "pat-") {
			t.Errorf("%s: error leaks a secret: %v", name, err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s := testSource(b, nil)
	w := hook("POST", oursURI, constructedClosedwon, map[string]string{HeaderSignatureV3: constructedClosedwonV3, HeaderTimestamp: oursTS}, msTime(oursTS))
	b.ReportAllocs()
	b.SetBytes(int64(len(w.Body)))
	for b.Loop() {
		if err := s.Verify(w); err != nil {
			b.Fatal(err)
		}
	}
}

// A delivery counts as the previous secret's only when no current key
// admits it: a portal that keeps the old app secret as its own client
// secret is not mistaken for a CRM still signing with the old one.
func TestPreviousSecretOnlyWhenNoCurrentKeyAdmits(t *testing.T) {
	s := testSource(t, func(c *Config) {
		c.ClientSecret, c.PreviousClientSecret = secret.New("new-app-secret"), secret.New("old-app-secret")
		c.Accounts = map[string]Account{
			"62515":   {AccessToken: secret.New("pat-a"), ClientSecret: secret.New("old-app-secret")},
			"5799819": {AccessToken: secret.New("pat-b")},
		}
	})
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	signed := func(body string) *connectors.Webhook {
		return hook("POST", oursURI, body, map[string]string{HeaderSignatureV3: SignV3("old-app-secret", "POST", oursURI, []byte(body), ts), HeaderTimestamp: ts}, now)
	}
	// constructedClosedwon is portal 62515's event, capturedDealstage 5799819's.
	if w := signed(constructedClosedwon); s.Verify(w) != nil || w.PreviousSecret {
		t.Errorf("62515's event, signed with its own current secret: %v (previous %v, want false)", s.Verify(w), w.PreviousSecret)
	}
	w := signed(capturedDealstage)
	if s.Verify(w) != nil || !w.PreviousSecret {
		t.Errorf("5799819's event, admitted by the previous app secret only: %v (previous %v, want true)", s.Verify(w), w.PreviousSecret)
	}
	w.Header.Set(HeaderSignatureV3, "bm9wZQ==") // the same delivery, its signature broken
	if err := s.Verify(w); err == nil || w.PreviousSecret {
		t.Errorf("a refused delivery: %v (previous %v, want false)", err, w.PreviousSecret)
	}
}

// A v3 signature that does not match names, beside the URL, the setting
// the app's client secret is read from, as the other sources do: its
// name, never the secret or the signature expected.
func TestMismatchNamesTheClientSecretSetting(t *testing.T) {
	s := testSourceIn(t, connectors.Env{ConfigKey: "connections.hs.source"}, nil)
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	sig := SignV3("another-app-secret", "POST", oursURI, []byte(constructedClosedwon), ts)
	err := s.Verify(hook("POST", oursURI, constructedClosedwon, map[string]string{HeaderSignatureV3: sig, HeaderTimestamp: ts}, now))
	want := `what HubSpot calls?): check that connections.hs.source.client_secret is the app's client secret (or a portal's own, under accounts)`
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v\nwant it to contain %s", err, want)
	}
	expected := SignV3(oursSecret, "POST", oursURI, []byte(constructedClosedwon), ts)
	for _, leak := range []string{oursSecret, "another-app-secret", expected, sig} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("%v: contains %q", err, leak)
		}
	}
	// The sender is answered the refusal and its URL's hint, not the
	// setting (connectors.Terse).
	if got := connectors.Terse(err); !strings.HasSuffix(got, "what HubSpot calls?)") {
		t.Errorf("Terse = %q, want it to end with the URL's hint", got)
	}
}

// HubSpot signs the URL it calls with its query: a signature that does
// not match names the public URL verified with the query's parameter
// names as received, so that a query the proxy drops or adds shows, but
// no value (any may be a credential, whatever its name: jwt, hmac,
// bearer, t), and no more than 100 bytes of the query, the sender's.
func TestMismatchHintNamesTheURLWithItsQuery(t *testing.T) {
	s := testSource(t, nil)
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	refuse := func(uri string) string {
		// Signed for the URL without its query (what a proxy that adds one
		// would make of it).
		sig := SignV3(oursSecret, "POST", oursURI, []byte(constructedClosedwon), ts)
		err := s.Verify(hook("POST", uri, constructedClosedwon, map[string]string{HeaderSignatureV3: sig, HeaderTimestamp: ts}, now))
		if !errors.Is(err, connectors.ErrUnauthorized) {
			t.Fatalf("%s: %v, want a refusal", uri, err)
		}
		return err.Error()
	}
	if got, want := refuse(oursURI+"?a=1&b=2"), `(is the public URL "`+oursURI+`?a=…&b=…" what HubSpot calls?)`; !strings.Contains(got, want) {
		t.Errorf("got %s\nwant %s", got, want)
	}
	got := refuse(oursURI + "?jwt=j-value&hmac=h-value&bearer=b-value&hash=x-value&t=t-value&token=s3cr3t-value&API%5FKey=k3y-value&flag")
	if want := `(is the public URL "` + oursURI + `?jwt=…&hmac=…&bearer=…&hash=…&t=…&token=…&API%5FKey=…&flag" what HubSpot calls?)`; !strings.Contains(got, want) ||
		strings.Contains(got, "-value") || strings.Contains(got, "not shown") {
		t.Errorf("got %s\nwant %s, without the values", got, want)
	}
	// A long query: cut, its first 100 bytes shown.
	long := strings.Repeat("p", 150) + "=v"
	got = refuse(oursURI + "?" + long)
	if want := `(is the public URL "` + oursURI + `?` + strings.Repeat("p", 100) + `…" what HubSpot calls?)`; !strings.Contains(got, want) {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

// A body's portalId is read before its signature is verified: whatever
// JSON number it is (the body may be megabytes of digits), the refusal,
// answered and logged, shows at most maxShownPortal bytes of it, for a
// portal no key is bound to (no client secret for it) and for one the
// app's secret does not sign.
func TestVerifyShownPortalIsCut(t *testing.T) {
	huge := strings.Repeat("9", 10_000)
	body := strings.Replace(constructedClosedwon, `"portalId":62515`, `"portalId":`+huge, 1)
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	w := func() *connectors.Webhook {
		return hook("POST", oursURI, body, map[string]string{HeaderSignatureV3: SignV3("wrong", "POST", oursURI, []byte(body), ts), HeaderTimestamp: ts}, now)
	}
	noApp := testSource(t, func(c *Config) {
		c.ClientSecret = secret.Secret{}
		c.Accounts = map[string]Account{"62515": {AccessToken: secret.New("pat-a"), ClientSecret: secret.New("own")}}
	})
	withApp := testSource(t, func(c *Config) {
		c.Accounts = map[string]Account{"62515": {AccessToken: secret.New("pat-a"), ClientSecret: secret.New("own")}}
	})
	shown := "portal " + huge[:maxShownPortal] + "…"
	for name, s := range map[string]*Source{"no key for the portal": noApp, "the app's secret": withApp} {
		err := s.Verify(w())
		if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), shown+",") && !strings.Contains(err.Error(), shown+"'s") || len(err.Error()) > 400 {
			t.Errorf("%s: %d bytes: %.300v, want unauthorized showing %q", name, len(err.Error()), err, shown)
		}
	}
	if got := portalName("62515"); got != "portal 62515" {
		t.Errorf("portalName(62515) = %q", got)
	}
}
