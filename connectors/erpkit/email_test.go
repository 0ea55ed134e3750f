package erpkit

import "testing"

func TestOneAddress(t *testing.T) {
	for s, want := range map[string]bool{
		"ap@acme.example": true, "first.last+tag@sub.acme.co.uk": true, "info@müller.de": true,
		"": false, "n/a": false, "-": false, "ap": false, "@acme.example": false, "ap@": false,
		"a@x.de, b@x.de": false, "a@x.de; b@x.de": false, "a@x.de b@x.de": false,
		"Acme AP <ap@acme.example>": false, "<ap@acme.example>": false, " ap@acme.example ": false,
		"ap@localhost": false, "ap@acme": false, "ap@acme.": false, "ap@.acme": false,
	} {
		if got := OneAddress(s); got != want {
			t.Errorf("OneAddress(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestOneASCIIAddress(t *testing.T) {
	for s, want := range map[string]bool{
		"ap@acme.example": true, "info@müller.de": false, "jörg@acme.example": false, "n/a": false, "a@x.de, b@x.de": false,
	} {
		if got := OneASCIIAddress(s); got != want {
			t.Errorf("OneASCIIAddress(%q) = %v, want %v", s, got, want)
		}
	}
}
