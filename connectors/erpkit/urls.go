package erpkit

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
)

// ShownURL is u as an error message or a log line may show it:
// scheme://host/path, without the user info, query and fragment, which
// may hold a credential (https://erp:PASSWORD@host, ?api_key=...). The
// connectors name a configured URL they refuse (base_url, token_url,
// instance_url) with it. A value url.Parse refuses is not shown at all:
// its error quotes the whole value.
func ShownURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}

// ParseConfiguredURL parses the value of a configured URL; what names the
// setting in the error ("netsuite: base_url"), example is how to write it.
// A value url.Parse refuses is an error that does not show it: url.Parse's
// own error quotes the whole value, which may hold a credential.
func ParseConfiguredURL(what, value, example string) (*url.URL, error) {
	u, err := url.Parse(value)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid URL (a space or control character, a %% not followed by two hex digits, "+
			"or a port that is not a number?); its value is not shown, as it may hold a credential: write it as %s", what, example)
	}
	// A port out of range parses, and every call would fail to dial,
	// retried as an outage.
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%s has port %s, which is not a port (1 to 65535): write it as %s", what, p, example)
		}
	}
	return u, nil
}

// APIPathError is the error of a configured base URL u whose path already
// has the API path the connector adds to it itself: apiPath matches it (in
// any case), adds says what the connector adds ("/v3/company/<realm_id>"),
// what names the setting ("quickbooks: base_url") and example is how to
// write it. Such a base_url (as a vendor's API reference writes the base,
// the server URL of its OpenAPI spec) doubles the path: every call answers
// 404, which each check then blames on something else (a property that
// does not exist, a deal that is not there). The error names the value as
// ShownURL shows it and the path from where apiPath matches. It is nil
// when apiPath does not match, so that a proxy's own path prefix is taken.
func APIPathError(what string, u *url.URL, apiPath *regexp.Regexp, adds, example string) error {
	loc := apiPath.FindStringIndex(u.Path)
	if loc == nil {
		return nil
	}
	return fmt.Errorf("%s %q already has the API path %q: dealsync adds %s itself; give the host alone, e.g. %s",
		what, ShownURL(u), u.Path[loc[0]:], adds, example)
}

// NoRedirects is a copy of hc (nil: http.DefaultClient) that follows no
// redirect, for token requests: they carry a credential in their body (a
// refresh token, a client secret, a signed client assertion), and Go's
// client posts a body again to wherever a 307 or 308 points, another host
// included (only headers such as Authorization are dropped there). The
// redirect comes back as the answer, for the caller to refuse
// (RedirectRefused).
func NoRedirects(hc *http.Client) *http.Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// RedirectRefused is the message of a token endpoint's answer resp when it
// is a redirect (NoRedirects did not follow it), naming where it points as
// ShownURL shows it, the credential it kept from going there and what to
// check; ok is false for any other answer.
func RedirectRefused(resp *http.Response, credential, check string) (msg string, ok bool) {
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return "", false
	}
	to := "no Location"
	if loc, err := resp.Location(); err == nil {
		to = ShownURL(loc)
	}
	return "the token endpoint answered with a redirect (to " + to + "), which dealsync does not follow, so that " +
		credential + " goes to no other address: " + check, true
}
