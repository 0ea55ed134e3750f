package erpkit

import (
	"net/mail"
	"strings"
)

// OneAddress reports whether s is one plain e-mail address, as the ERPs'
// e-mail fields take it: no display name ("Acme AP <ap@acme.example>"),
// no list ("a@x.de, b@x.de", "a@x.de; b@x.de"), no surrounding space, and
// a domain with a dot in it ("ap@localhost" and "ap@acme" are refused).
// A CRM's e-mail field holds whatever people typed ("n/a", two addresses);
// a target leaves such a value out of the customer it makes rather than
// have the ERP refuse the customer, and with it every deal of the company.
func OneAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	_, domain, _ := strings.Cut(s, "@")
	return strings.Contains(strings.Trim(domain, "."), ".")
}

// OneASCIIAddress is OneAddress of an address all in ASCII: Xero refuses
// an internationalized one (info@müller.de), and NetSuite does not
// document taking one.
func OneASCIIAddress(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return OneAddress(s)
}
