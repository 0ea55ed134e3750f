package erpkit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// The workflow hands every step a key such as
// "invoice/<connection>/<deal>/invoice": the same on every attempt and on a
// re-run of a failed workflow (the workflow id is the deal's). Vendors put
// limits on the values that carry it; the functions below derive a legal
// value deterministically, so the derived value is just as stable.

// LegalKey returns key itself when it is at most max bytes of allowed
// characters, and otherwise a readable prefix of its legal characters
// followed by "-" and 32 hex digits of its SHA-256 (so two keys that differ
// only beyond the cut still differ).
func LegalKey(key string, max int, allowed func(r rune) bool) string {
	ok := len(key) <= max
	for _, r := range key {
		if !allowed(r) {
			ok = false
			break
		}
	}
	if ok {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:16])
	var b strings.Builder
	for _, r := range key {
		if b.Len() >= max-len(h)-1 {
			break
		}
		if allowed(r) && r < 0x80 {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return h[:min(len(h), max)]
	}
	return b.String() + "-" + h
}

// PrintableASCII allows visible ASCII characters (no space).
func PrintableASCII(r rune) bool { return r > ' ' && r < 0x7f }

// Slug allows letters, digits, '-', '_' and '.'.
func Slug(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

// UUIDFromKey is a name-based (version 5 layout, SHA-256 based) UUID of the
// key: for vendors whose request ids must be short (QuickBooks requestid).
func UUIDFromKey(key string) string {
	sum := sha256.Sum256([]byte("dealsync:" + key))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
