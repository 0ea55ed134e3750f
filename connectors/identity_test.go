package connectors

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

type settings []Setting

func (s settings) IdentifyingSettings() []Setting { return s }

// A target's identity is its name, its type and its identifying settings:
// a change of any of them changes the fingerprint; the description says
// them for an operator, leaving out settings without a value.
func TestTargetIdentityIsNameTypeAndSettings(t *testing.T) {
	base := IdentifyTarget("books", "xero", settings{{Key: "tenant_id", Value: "t-1"}, {Key: "base_url", Value: "https://api.example"}, {Key: "unset", Value: ""}})
	if !strings.HasPrefix(base.Fingerprint, identityScheme) || base.Description != `target "books" (xero, tenant_id t-1, base_url https://api.example)` {
		t.Fatalf("identity %+v", base)
	}
	if again := IdentifyTarget("books", "xero", settings{{Key: "tenant_id", Value: "t-1"}, {Key: "base_url", Value: "https://api.example"}}); again != base {
		t.Errorf("the same target: %+v, then %+v", base, again)
	}
	for name, other := range map[string]TargetIdentity{
		"another name":   IdentifyTarget("books2", "xero", settings{{Key: "tenant_id", Value: "t-1"}, {Key: "base_url", Value: "https://api.example"}}),
		"another type":   IdentifyTarget("books", "quickbooks", settings{{Key: "tenant_id", Value: "t-1"}, {Key: "base_url", Value: "https://api.example"}}),
		"another tenant": IdentifyTarget("books", "xero", settings{{Key: "tenant_id", Value: "t-2"}, {Key: "base_url", Value: "https://api.example"}}),
		"another URL":    IdentifyTarget("books", "xero", settings{{Key: "tenant_id", Value: "t-1"}, {Key: "base_url", Value: "https://other.example"}}),
		// The values are not run together: "a b" + "c" is not "a" + "b c".
		"values shifted": IdentifyTarget("books", "xero", settings{{Key: "tenant_id", Value: "t-1 base_url"}, {Key: "base_url", Value: "https://api.example"}}),
	} {
		if other.Fingerprint == base.Fingerprint {
			t.Errorf("%s: the same fingerprint %s", name, base.Fingerprint)
		}
	}
	if bare := IdentifyTarget("x", "http", nil); bare.IsZero() || bare.Description != `target "x" (http)` {
		t.Errorf("a config that names no settings: %+v; want its name and type", bare)
	}
}

// A URL identifies a target without what may hold a credential (user
// info, query, fragment) and without the differences of writing it
// (scheme and host case, a trailing slash); its path stays.
func TestIdentityURLLeavesOutCredentials(t *testing.T) {
	for raw, want := range map[string]string{
		"https://api.example/v2/":                        "https://api.example/v2",
		"HTTPS://API.Example/v2":                         "https://api.example/v2",
		"https://erp:s3cret@api.example/v2?key=s3cret#x": "https://api.example/v2",
		" https://api.example ":                          "https://api.example",
		"https://api.example/Tenant/7":                   "https://api.example/Tenant/7",
	} {
		if got := IdentityURL(raw); got != want {
			t.Errorf("IdentityURL(%q) = %q, want %q", raw, got, want)
		}
	}
	if got := IdentityURL("https://erp:s3cret@api.example/%zz"); strings.Contains(got, "s3cret") {
		t.Errorf("a URL that does not parse is shown: %q", got)
	}
}

// A port written as its scheme's default is the same API as none (and a
// host in another case the same host), so that a target whose base_url
// gains or loses ":443" keeps its identity, and its runs under way are not
// refused; another port, or another name of the host (localhost and
// 127.0.0.1, which need not be the same host), is another target.
func TestIdentityURLLeavesOutTheDefaultPort(t *testing.T) {
	for _, same := range [][]string{
		{"https://api.x.com/v1", "https://api.x.com:443/v1", "HTTPS://API.X.COM:443/v1/", "https://api.x.com:/v1", "https://api.x.com:0443/v1"},
		{"http://h", "http://h:80", "http://H:80/"},
		{"http://h:8080/api", "http://h:08080/api/"},
		{"https://[::1]/v1", "https://[::1]:443/v1"},
		{"http://[::1]:8443", "http://[::1]:08443"},
	} {
		for _, raw := range same[1:] {
			if got, want := IdentityURL(raw), IdentityURL(same[0]); got != want {
				t.Errorf("IdentityURL(%q) = %q, want %q as for %q", raw, got, want, same[0])
			}
		}
		id := func(raw string) string {
			return IdentifyTarget("books", "http", settings{{Key: "base_url", Value: IdentityURL(raw)}}).Fingerprint
		}
		if id(same[0]) != id(same[len(same)-1]) {
			t.Errorf("%q and %q: two identities", same[0], same[len(same)-1])
		}
	}
	if got := IdentityURL("https://api.x.com:443/v1"); got != "https://api.x.com/v1" {
		t.Errorf("shown as %q; want https://api.x.com/v1", got)
	}
	if got := IdentityURL("http://[::1]:8443/"); got != "http://[::1]:8443" {
		t.Errorf("an IPv6 address with a port shown as %q", got)
	}
	for _, other := range [][2]string{
		{"https://api.x.com/v1", "https://api.x.com:8443/v1"},
		{"http://h", "http://h:443"},  // https's default port, not http's
		{"https://h", "https://h:80"}, // and the other way
		{"http://h", "https://h"},     // another scheme
		{"http://localhost:8080", "http://127.0.0.1:8080"},
		{"http://localhost", "http://[::1]"},
	} {
		if IdentityURL(other[0]) == IdentityURL(other[1]) {
			t.Errorf("%q and %q: one identity %q; want two", other[0], other[1], IdentityURL(other[0]))
		}
	}
}

// Fingerprints of two schemes are not compared (a later release that
// hashes other settings): neither is a zero identity.
func TestTargetIdentitiesOfOneSchemeAreComparable(t *testing.T) {
	a := IdentifyTarget("a", "http", nil)
	if !a.Comparable(IdentifyTarget("b", "http", nil)) || a.Comparable(TargetIdentity{Fingerprint: "t9:x"}) || a.Comparable(TargetIdentity{}) || (TargetIdentity{}).Comparable(a) {
		t.Error("comparable: want only two identities of one scheme")
	}
}

// A description reads back as the target's name and what its parentheses
// show, a value's own parentheses and commas within it (a URL that does
// not parse); another text does not read.
func TestParseDescriptionReadsADescriptionBack(t *testing.T) {
	for _, c := range []struct {
		id    TargetIdentity
		name  string
		shown []string
	}{
		{IdentifyTarget("books", "xero", settings{{Key: "tenant_id", Value: "t-1"}, {Key: "base_url", Value: "https://api.example"}}),
			"books", []string{"xero", "tenant_id t-1", "base_url https://api.example"}},
		{IdentifyTarget(`odd "name", (x)`, "http", nil), `odd "name", (x)`, []string{"http"}},
		{IdentifyTarget("erp", "http", settings{{Key: "base_url", Value: IdentityURL("https://erp/%zz")}, {Key: "realm_id", Value: "9"}}),
			"erp", []string{"http", "base_url " + IdentityURL("https://erp/%zz"), "realm_id 9"}},
	} {
		name, shown, ok := ParseDescription(c.id.Description)
		if !ok || name != c.name || !slices.Equal(shown, c.shown) {
			t.Errorf("ParseDescription(%q) = %q, %q, %v; want %q, %q", c.id.Description, name, shown, ok, c.name, c.shown)
		}
	}
	for _, text := range []string{"", `target books (xero)`, `target "books"`, `target "books" (xero`, `the target "books" (xero)`} {
		if _, _, ok := ParseDescription(text); ok {
			t.Errorf("ParseDescription(%q) read it", text)
		}
	}
}

// A host written with its trailing dot (the fully qualified name) is the
// host without it, and an IPv6 address is one however it is written
// ([0:0:0:0:0:0:0:1] is [::1]): a base_url written so keeps its target's
// identity. An IPv4 address and the IPv6 address that maps it, or ::1 and
// 127.0.0.1, stay two hosts, as localhost and 127.0.0.1 do.
func TestIdentityURLTakesAHostHoweverWritten(t *testing.T) {
	for _, same := range [][]string{
		{"https://api.example.com/v1", "https://api.example.com./v1", "HTTPS://API.Example.COM.:443/v1/"},
		{"http://erp.internal:8090", "http://erp.internal.:8090"},
		{"http://[::1]:8080/x", "http://[0:0:0:0:0:0:0:1]:8080/x", "http://[0::1]:8080/x/", "http://[0000:0000::0001]:08080/x"},
		{"https://[2001:db8::1]/api", "https://[2001:DB8:0:0:0:0:0:1]:443/api", "https://[2001:0db8::0001]/api"},
	} {
		for _, raw := range same[1:] {
			if got, want := IdentityURL(raw), IdentityURL(same[0]); got != want {
				t.Errorf("IdentityURL(%q) = %q, want %q as for %q", raw, got, want, same[0])
			}
		}
		id := func(raw string) TargetIdentity {
			return IdentifyTarget("books", "http", settings{URLSetting("base_url", raw)})
		}
		if first, last := id(same[0]), id(same[len(same)-1]); first.Fingerprint != last.Fingerprint {
			t.Errorf("%q and %q: two identities", same[0], same[len(same)-1])
		}
	}
	if got := IdentityURL("http://[0:0:0:0:0:0:0:1]:8080/"); got != "http://[::1]:8080" {
		t.Errorf("an IPv6 address shown as %q, want http://[::1]:8080", got)
	}
	if got := IdentityURL("https://api.example.com./v1"); got != "https://api.example.com/v1" {
		t.Errorf("a name with its trailing dot shown as %q, want https://api.example.com/v1", got)
	}
	for _, other := range [][2]string{
		{"http://[::1]", "http://127.0.0.1"},
		{"http://[::ffff:127.0.0.1]", "http://127.0.0.1"},
		{"http://[::1]", "http://[::2]"},
		{"https://api.example.com", "https://api.example.co"},
		{"http://localhost.", "http://127.0.0.1"},
		// One label: erp. is looked up as written, erp through the search
		// domains (another host, maybe).
		{"http://localhost.:8090", "http://localhost:8090"},
		{"https://erp./v1", "https://erp/v1"},
		// A dotted address with a trailing dot is a DNS name.
		{"http://127.0.0.1.:8090", "http://127.0.0.1:8090"},
	} {
		if IdentityURL(other[0]) == IdentityURL(other[1]) {
			t.Errorf("%q and %q: one identity %q; want two", other[0], other[1], IdentityURL(other[0]))
		}
	}
}

// The release before this one identified such a base_url as written: the
// runs its intake pinned to it match the target (Matches, by its
// EarlierFingerprint), which is never pinned itself; another target, or
// the pin of the host written without the dot then, does not match.
func TestAnEarlierReleasesPinOfTheSameTargetMatches(t *testing.T) {
	for _, c := range []struct{ raw, earlier string }{
		{"https://api.example.com./v1", "https://api.example.com./v1"},
		{"http://[0:0:0:0:0:0:0:1]:8080/", "http://[0:0:0:0:0:0:0:1]:8080"},
	} {
		here := IdentifyTarget("books", "http", settings{{Key: "realm_id", Value: "9"}, URLSetting("base_url", c.raw)})
		// The earlier release's pin: its identity of the URL as written.
		pin := IdentifyTarget("books", "http", settings{{Key: "realm_id", Value: "9"}, {Key: "base_url", Value: c.earlier}})
		if pin.Fingerprint == here.Fingerprint || !here.Matches(pin) || !here.Matches(here) {
			t.Errorf("%s: %+v does not match the earlier release's pin %+v (or itself)", c.raw, here, pin)
		}
		b, err := json.Marshal(here)
		if err != nil || strings.Contains(string(b), here.EarlierFingerprint) || strings.Contains(string(b), "arlier") {
			t.Errorf("%s: pinned as %s (%v): want no earlier fingerprint", c.raw, b, err)
		}
		other := IdentifyTarget("books", "http", settings{{Key: "realm_id", Value: "10"}, {Key: "base_url", Value: c.earlier}})
		if here.Matches(other) {
			t.Errorf("%s: matches another realm's earlier pin", c.raw)
		}
	}
	plain := IdentifyTarget("books", "http", settings{URLSetting("base_url", "https://api.example.com/v1")})
	if plain.EarlierFingerprint != "" || plain.Matches(IdentifyTarget("books", "http", settings{{Key: "base_url", Value: "https://api.example.co./v1"}})) {
		t.Errorf("a base_url written as before: %+v; want no earlier fingerprint, matching no other host's pin", plain)
	}
}

// A base_url rewritten without its trailing dot, or with its IPv6 address
// in the short form, once every host is upgraded, is the target the runs
// the earlier release's intake started are pinned to (as it wrote the
// URL then): its description, read back, hashes as that release did to
// the pin's fingerprint, and its URL taken as this release takes it is
// the config's. Another target's pin, a pin whose description does not
// hash to its fingerprint, a host of one label (erp. is not erp), or a
// dotted address with a dot (a DNS name) does not match.
func TestAnEarlierReleasesPinMatchesTheURLRewrittenPlainly(t *testing.T) {
	earlierPin := func(name string, s ...Setting) TargetIdentity {
		return IdentifyTarget(name, "xero", settings(s)) // the values as that release wrote them
	}
	now := func(raw string) TargetIdentity {
		return IdentifyTarget("books", "xero", settings{{Key: "tenant_id", Value: "t-1"}, URLSetting("base_url", raw)})
	}
	for _, c := range []struct{ pinned, now string }{
		{"https://erp.example./v1", "https://erp.example/v1"},
		{"https://erp.example./v1", "https://ERP.example:443/v1/"},
		{"http://[0:0:0:0:0:0:0:1]:8080", "http://[::1]:8080"},
		// The release before's pin of a (plain) host that was the same.
		{"https://erp.example/v1", "https://erp.example./v1"},
	} {
		pin := earlierPin("books", Setting{Key: "tenant_id", Value: "t-1"}, Setting{Key: "base_url", Value: c.pinned})
		if here := now(c.now); !here.Matches(pin) {
			t.Errorf("config %s: refuses the earlier release's pin of %s (%+v, %+v)", c.now, c.pinned, here, pin)
		}
	}
	here := now("https://erp.example/v1")
	for name, pin := range map[string]TargetIdentity{
		"another tenant": earlierPin("books", Setting{Key: "tenant_id", Value: "t-2"}, Setting{Key: "base_url", Value: "https://erp.example./v1"}),
		"another name":   earlierPin("books2", Setting{Key: "tenant_id", Value: "t-1"}, Setting{Key: "base_url", Value: "https://erp.example./v1"}),
		"another host":   earlierPin("books", Setting{Key: "tenant_id", Value: "t-1"}, Setting{Key: "base_url", Value: "https://erp.example.com./v1"}),
		"another path":   earlierPin("books", Setting{Key: "tenant_id", Value: "t-1"}, Setting{Key: "base_url", Value: "https://erp.example./v2"}),
		"a forged pin":   {Fingerprint: "t1:0123456789abcdef01234567", Description: `target "books" (xero, tenant_id t-1, base_url https://erp.example./v1)`},
		"another type":   {Fingerprint: IdentifyTarget("books", "http", settings{{Key: "tenant_id", Value: "t-1"}, {Key: "base_url", Value: "https://erp.example./v1"}}).Fingerprint, Description: `target "books" (xero, tenant_id t-1, base_url https://erp.example./v1)`},
		"no description": {Fingerprint: earlierPin("books", Setting{Key: "tenant_id", Value: "t-1"}, Setting{Key: "base_url", Value: "https://erp.example./v1"}).Fingerprint},
	} {
		if here.Matches(pin) {
			t.Errorf("%s: %+v matches %+v", name, here, pin)
		}
	}
	for _, c := range [][2]string{{"https://erp./v1", "https://erp/v1"}, {"http://127.0.0.1.:8090", "http://127.0.0.1:8090"}} {
		pin := earlierPin("books", Setting{Key: "tenant_id", Value: "t-1"}, Setting{Key: "base_url", Value: c[0]})
		if now(c[1]).Matches(pin) {
			t.Errorf("config %s matches the earlier release's pin of %s", c[1], c[0])
		}
	}
}

// A run's pin says what a retry of its invoice step does (InvoiceRetry)
// in an optional field: a pin of the release before, without it, reads
// as unsaid (its runs' messages promise nothing), and a pin that does not
// say is written as that release wrote it.
func TestThePinsInvoiceRetryIsOptional(t *testing.T) {
	var older TargetIdentity
	if err := json.Unmarshal([]byte(`{"fingerprint":"t1:abc","description":"target \"books\" (xero)"}`), &older); err != nil {
		t.Fatal(err)
	}
	if older.InvoiceRetry != InvoiceRetryUnsaid || older.Fingerprint != "t1:abc" {
		t.Errorf("a pin of the release before: %+v; want InvoiceRetry unsaid", older)
	}
	if b, _ := json.Marshal(older); string(b) != `{"fingerprint":"t1:abc","description":"target \"books\" (xero)"}` {
		t.Errorf("an unsaid pin is written %s; want it as the release before wrote it", b)
	}
	pin := TargetIdentity{Fingerprint: "t1:abc", Description: `target "erp" (http)`, InvoiceRetry: InvoiceRetryKeyOnly, LookupSetting: "lookup_invoices"}
	b, _ := json.Marshal(pin)
	var back TargetIdentity
	if err := json.Unmarshal(b, &back); err != nil || back != pin {
		t.Errorf("%s read back as %+v (%v); want %+v", b, back, err, pin)
	}
}
