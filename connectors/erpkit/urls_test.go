package erpkit

import (
	"net/url"
	"strings"
	"testing"
)

// A URL is shown without its user info, query and fragment: scheme, host
// and path only.
func TestShownURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://erp:S3cretPass@erp.example.com/api":       "https://erp.example.com/api",
		"https://erp.example.com/api?api_key=k3y&x=1#frag": "https://erp.example.com/api",
		"http://user@127.0.0.1:8090/v2/":                   "http://127.0.0.1:8090/v2/",
		"ftp://u:p@files.example/in":                       "ftp://files.example/in",
		"/api?token=t0k":                                   "/api",
		"erp:S3cretPass@erp.example.com/api":               "erp:", // no "//": all of it is opaque
		"https://erp.example.com/a%2Fb?api_key=k3y":        "https://erp.example.com/a%2Fb",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got := ShownURL(u); got != want {
			t.Errorf("ShownURL(%s) = %q, want %q", raw, got, want)
		}
	}
	if ShownURL(nil) != "" {
		t.Error("a nil URL is shown")
	}
}

// A configured URL whose port is no port (99999, 0) is refused when the
// connection is built, naming the port: it parsed, and every call failed
// to dial, retried as an ERP outage for up to a day.
func TestParseConfiguredURLRefusesAPortOutOfRange(t *testing.T) {
	for _, raw := range []string{"http://127.0.0.1:99999", "https://erp.example:0/api", "https://erp.example:65536"} {
		if _, err := ParseConfiguredURL("x: base_url", raw, "https://host"); err == nil || !strings.Contains(err.Error(), "which is not a port (1 to 65535)") {
			t.Errorf("%s: %v", raw, err)
		}
	}
	for _, raw := range []string{"http://127.0.0.1:8090", "https://erp.example/api", "https://erp.example:65535"} {
		if _, err := ParseConfiguredURL("x: base_url", raw, "https://host"); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
	}
}
