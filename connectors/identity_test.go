package connectors

import (
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

// Fingerprints of two schemes are not compared (a later release that
// hashes other settings): neither is a zero identity.
func TestTargetIdentitiesOfOneSchemeAreComparable(t *testing.T) {
	a := IdentifyTarget("a", "http", nil)
	if !a.Comparable(IdentifyTarget("b", "http", nil)) || a.Comparable(TargetIdentity{Fingerprint: "t9:x"}) || a.Comparable(TargetIdentity{}) || (TargetIdentity{}).Comparable(a) {
		t.Error("comparable: want only two identities of one scheme")
	}
}
