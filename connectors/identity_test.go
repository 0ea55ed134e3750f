package connectors

import (
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
	base := IdentifyTarget("books", "xero", settings{{"tenant_id", "t-1"}, {"base_url", "https://api.example"}, {"unset", ""}})
	if !strings.HasPrefix(base.Fingerprint, identityScheme) || base.Description != `target "books" (xero, tenant_id t-1, base_url https://api.example)` {
		t.Fatalf("identity %+v", base)
	}
	if again := IdentifyTarget("books", "xero", settings{{"tenant_id", "t-1"}, {"base_url", "https://api.example"}}); again != base {
		t.Errorf("the same target: %+v, then %+v", base, again)
	}
	for name, other := range map[string]TargetIdentity{
		"another name":   IdentifyTarget("books2", "xero", settings{{"tenant_id", "t-1"}, {"base_url", "https://api.example"}}),
		"another type":   IdentifyTarget("books", "quickbooks", settings{{"tenant_id", "t-1"}, {"base_url", "https://api.example"}}),
		"another tenant": IdentifyTarget("books", "xero", settings{{"tenant_id", "t-2"}, {"base_url", "https://api.example"}}),
		"another URL":    IdentifyTarget("books", "xero", settings{{"tenant_id", "t-1"}, {"base_url", "https://other.example"}}),
		// The values are not run together: "a b" + "c" is not "a" + "b c".
		"values shifted": IdentifyTarget("books", "xero", settings{{"tenant_id", "t-1 base_url"}, {"base_url", "https://api.example"}}),
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
			return IdentifyTarget("books", "http", settings{{"base_url", IdentityURL(raw)}}).Fingerprint
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
		{IdentifyTarget("books", "xero", settings{{"tenant_id", "t-1"}, {"base_url", "https://api.example"}}),
			"books", []string{"xero", "tenant_id t-1", "base_url https://api.example"}},
		{IdentifyTarget(`odd "name", (x)`, "http", nil), `odd "name", (x)`, []string{"http"}},
		{IdentifyTarget("erp", "http", settings{{"base_url", IdentityURL("https://erp/%zz")}, {"realm_id", "9"}}),
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
