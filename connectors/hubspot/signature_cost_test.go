package hubspot

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/secret"
)

// manyPortals is a connection of n private-app portals (100001...), each
// with its own secret and a previous one being rotated out, beside an app
// secret being rotated too, with v1 and v2 enabled: every kind of key
// Verify knows. It counts the signatures Verify computes in *computed.
func manyPortals(t *testing.T, n int, computed *int) *Source {
	t.Helper()
	s := testSource(t, func(c *Config) {
		c.ClientSecret, c.PreviousClientSecret = secret.New("app-new"), secret.New("app-old")
		c.LegacySignatures = []string{"v1", "v2"}
		c.Accounts = map[string]Account{}
		for i := range n {
			id := strconv.Itoa(100001 + i)
			c.Accounts[id] = Account{AccessToken: secret.New("pat-" + id),
				ClientSecret: secret.New("secret-" + id), PreviousClientSecret: secret.New("old-" + id)}
		}
	})
	s.onCompute = func() { *computed++ }
	return s
}

// portalBody is a delivery of one event of each portal given, in order.
func portalBody(portals ...string) string {
	evs := make([]string, len(portals))
	for i, p := range portals {
		evs[i] = strings.Replace(constructedClosedwon[1:len(constructedClosedwon)-1], `"portalId":62515`, `"portalId":`+p, 1)
	}
	return "[" + strings.Join(evs, ",") + "]"
}

// A signature that cannot be one (not the 32 bytes of an HMAC-SHA256 or a
// SHA-256) is refused as unauthorized before any key is tried, whatever
// the number of portals and keys.
func TestVerifyRefusesMalformedSignatureBeforeAnyKey(t *testing.T) {
	var computed int
	s := manyPortals(t, 20, &computed)
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	uri := oursURI + "?next=%2Fdeals" // a decodable %XX: two URLs per key
	body := portalBody("100005")
	for name, h := range map[string]map[string]string{
		"v3 of 3 bytes":     {HeaderSignatureV3: base64.StdEncoding.EncodeToString([]byte("abc")), HeaderTimestamp: ts},
		"v3 of 31 bytes":    {HeaderSignatureV3: base64.StdEncoding.EncodeToString(make([]byte, 31)), HeaderTimestamp: ts},
		"v3 of 33 bytes":    {HeaderSignatureV3: base64.StdEncoding.EncodeToString(make([]byte, 33)), HeaderTimestamp: ts},
		"v3 empty decoding": {HeaderSignatureV3: "====", HeaderTimestamp: ts},
		"v2 of 3 bytes":     {HeaderSignature: "abcdef", HeaderVersion: "v2"},
		"v2 of 31 bytes":    {HeaderSignature: strings.Repeat("ab", 31), HeaderVersion: "v2"},
		"v1 of 33 bytes":    {HeaderSignature: strings.Repeat("AB", 33), HeaderVersion: "v1"},
	} {
		computed = 0
		err := s.Verify(hook("POST", uri, body, h, now))
		if !errors.Is(err, connectors.ErrUnauthorized) {
			t.Errorf("%s: %v, want unauthorized", name, err)
		}
		if computed != 0 {
			t.Errorf("%s: %d signatures computed before refusing it, want 0", name, computed)
		}
	}
}

// Of the portals' own keys, only those of the portal the first event names
// are tried: a forged delivery costs the app's two keys and that portal's
// two, not every portal's. A body whose first event cannot be read is
// tried against every key, as before.
func TestVerifyTriesOnlyTheFirstEventsPortalKeys(t *testing.T) {
	var computed int
	s := manyPortals(t, 20, &computed)
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	uri := oursURI + "?next=%2Fdeals"
	forged := map[string]string{HeaderSignatureV3: base64.StdEncoding.EncodeToString(make([]byte, 32)), HeaderTimestamp: ts}
	const all = 2 * (2 + 20*2) // two URLs, each key: the app's two and every portal's two
	for _, c := range []struct {
		name, body string
		want       int
	}{
		{"one portal's event", portalBody("100005"), 2 * 4},
		{"events of two portals", portalBody("100005", "100017"), 2 * 4},
		{"a portal without its own secret", portalBody("999"), 2 * 2},
		{"an event without portalId", `[{"eventId":1}]`, 2 * 2},
		{"not JSON", "not json", all},
		{"no event", "[]", all},
		{"not an array", `{"portalId":100005}`, all},
	} {
		computed = 0
		if err := s.Verify(hook("POST", uri, c.body, forged, now)); !errors.Is(err, connectors.ErrUnauthorized) {
			t.Errorf("%s: %v, want unauthorized", c.name, err)
		}
		if computed != c.want {
			t.Errorf("%s: %d signatures computed, want %d", c.name, computed, c.want)
		}
	}
}

// Narrowing the keys changes what is accepted in nothing: every portal's
// events signed with its secret or its previous one, and the app's, are
// admitted as before (last portal in the key order included); another
// portal's key is refused naming the portal; a batch that mixes portals
// signed with one portal's key is refused naming the other.
func TestVerifyNarrowedKeysAcceptAsBefore(t *testing.T) {
	var computed int
	s := manyPortals(t, 20, &computed)
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	uri := oursURI + "?next=%2Fdeals"
	v3 := func(sec, body string) *connectors.Webhook {
		return hook("POST", uri, body, map[string]string{HeaderSignatureV3: SignV3(sec, "POST", uri, []byte(body), ts), HeaderTimestamp: ts}, now)
	}
	v1 := func(sec, body string) *connectors.Webhook {
		return hook("POST", uri, body, map[string]string{HeaderSignature: SignV1(sec, []byte(body)), HeaderVersion: "v1"}, now)
	}
	for _, p := range []string{"100001", "100013", "100020"} {
		body := portalBody(p, p)
		for _, c := range []struct {
			name     string
			w        *connectors.Webhook
			previous bool
		}{
			{"own secret", v3("secret-"+p, body), false},
			{"own previous secret", v3("old-"+p, body), true},
			{"own secret, v1", v1("secret-"+p, body), false},
			{"app secret", v3("app-new", body), false},
			{"app previous secret", v3("app-old", body), true},
		} {
			if err := s.Verify(c.w); err != nil || c.w.PreviousSecret != c.previous {
				t.Errorf("portal %s, %s: %v (previous %v, want %v)", p, c.name, err, c.w.PreviousSecret, c.previous)
			}
		}
	}
	err := s.Verify(v3("secret-100001", portalBody("100002")))
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "portal 100002") {
		t.Errorf("portal 100002's event signed with 100001's secret: %v, want unauthorized naming portal 100002", err)
	}
	err = s.Verify(v3("secret-100001", portalBody("100001", "100002")))
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "portal 100002") {
		t.Errorf("100001's secret over a batch with 100002's event: %v, want unauthorized naming portal 100002", err)
	}
	// The body is not read past the first event before the signature is
	// verified; once a key matched it is read whole, as before.
	if err := s.Verify(v3("secret-100001", "not json")); !errors.Is(err, connectors.ErrMalformed) {
		t.Errorf("a portal's key over a body that is not JSON: %v, want malformed", err)
	}
	if err := s.Verify(v3("secret-100020", "[]")); err != nil {
		t.Errorf("a portal's key over an empty batch: %v, want it verified as before (Parse refuses it)", err)
	}
}

func TestCandidatesOfABody(t *testing.T) {
	var computed int
	s := manyPortals(t, 3, &computed)
	keys := func(body string) []string {
		cs, _, _ := s.candidates([]byte(body))
		var out []string
		for _, c := range cs {
			out = append(out, string(c.key))
		}
		return out
	}
	for body, want := range map[string]string{
		portalBody("100002", "100003"): "app-new app-old secret-100002 old-100002",
		`[{"portalId":"100003"}]`:      "app-new app-old secret-100003 old-100003",
		`[null]`:                       "app-new app-old",
		`[{"portalId":100004}]`:        "app-new app-old",
		`[1]`:                          "app-new app-old secret-100001 old-100001 secret-100002 old-100002 secret-100003 old-100003",
		`[`:                            "app-new app-old secret-100001 old-100001 secret-100002 old-100002 secret-100003 old-100003",
	} {
		if got := strings.Join(keys(body), " "); got != want {
			t.Errorf("candidates(%s) = %s, want %s", body, got, want)
		}
	}
}

// Without the app's secret (portals with keys of their own, maybe shared),
// a forged delivery whose first event is of a portal the connection does
// not list, or names none, costs the keys of its first listed portal, or
// none: not every portal's (it tried all of them, 2 per portal at this URL).
func TestVerifyWithoutAnAppSecretTriesOneListedPortalsKeys(t *testing.T) {
	var computed int
	s := manyPortals(t, 20, &computed)
	s.appSecret, s.appPrevious = nil, nil
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	forged := map[string]string{HeaderSignatureV3: base64.StdEncoding.EncodeToString(make([]byte, 32)), HeaderTimestamp: ts}
	for _, c := range []struct {
		name, body string
		want       int
	}{
		{"an unlisted portal, then a listed one", portalBody("999", "100005"), 2},
		{"unlisted portals only", portalBody("999", "998"), 0},
		{"an event without portalId", `[{"eventId":1}]`, 0},
		{"an unlisted portal, then one without portalId, then a listed one", "[" + portalBody("999")[1:len(portalBody("999"))-1] + `,{"eventId":2},` + portalBody("100007")[1:], 2},
	} {
		computed = 0
		if err := s.Verify(hook("POST", oursURI, c.body, forged, now)); !errors.Is(err, connectors.ErrUnauthorized) {
			t.Errorf("%s: %v, want unauthorized", c.name, err)
		}
		if computed != c.want {
			t.Errorf("%s: %d signatures computed, want %d", c.name, computed, c.want)
		}
	}
	// The genuine batch (an unlisted portal first, a listed one signing)
	// still goes through.
	body := portalBody("999", "100005")
	if err := s.Verify(hook("POST", oursURI, body, map[string]string{HeaderSignatureV3: SignV3("secret-100005", "POST", oursURI, []byte(body), ts), HeaderTimestamp: ts}, now)); err != nil {
		t.Errorf("an unlisted portal's event, then the signing portal's: %v", err)
	}
}
