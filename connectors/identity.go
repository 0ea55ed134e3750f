package connectors

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Setting is one setting of a target's config that says where its calls
// go, by its config key ("base_url", "tenant_id") and its value.
type Setting struct {
	Key   string
	Value string
	// Earlier is the value as the release before this one identified the
	// target by it, when that differs from Value, "" when it does not: a
	// base URL whose host ends with a dot, or is an IPv6 address written
	// another way (URLSetting). The runs that release's intake pinned are
	// not refused for it (TargetIdentity.Matches).
	Earlier string
}

// TargetIdentifier is implemented by a target type's config: the
// settings that say which ERP, company or set of books its calls reach
// (base URL, tenant, realm, account id), in a fixed order. Never a
// credential, a token or a file of the host: rotating a secret, or moving
// a token file, must not make a run's ERP steps refuse to go on.
type TargetIdentifier interface {
	IdentifyingSettings() []Setting
}

// TargetIdentity is where a connection's ERP calls go for a deal: the
// target's name, type and identifying settings (TargetIdentifier). A run
// is started for one (the intake pins it in its input), and each of its
// ERP steps refuses to call another, so that workers whose configs
// disagree, or a target changed while runs are under way, do not split a
// deal's customer and invoice between two ERPs.
type TargetIdentity struct {
	// Fingerprint is a hash of the name, type and identifying settings:
	// two configs that send the calls to the same place give the same one.
	// It starts with its scheme (identityScheme).
	Fingerprint string `json:"fingerprint"`
	// Description says it for an operator: `target "books" (xero,
	// tenant_id …, base_url https://api.xero.com/api.xro/2.0)`.
	Description string `json:"description"`
	// EarlierFingerprint is the Fingerprint the release before this one
	// gave the same target, when one of its settings was identified
	// otherwise then (Setting.Earlier); "" when it is Fingerprint. Never
	// pinned: a step matches the pin of an earlier intake by it (Matches).
	EarlierFingerprint string `json:"-"`
	// InvoiceRetry says whether a retry of the run's invoice step, or a
	// new run of its deal, finds an invoice an earlier attempt may have
	// made (InvoiceRetryOf). Not part of the fingerprint: a change of it
	// refuses no run. Pins of the release before this one lack it
	// (InvoiceRetryUnsaid), and their runs' messages promise nothing.
	InvoiceRetry InvoiceRetry `json:"invoice_retry,omitempty"`
	// LookupSetting is, for InvoiceRetryKeyOnly, the target's setting
	// that turns its look-up of the invoice by reference on
	// (lookup_invoices, check_reference), which the failures' advice
	// names; "" otherwise.
	LookupSetting string `json:"lookup_setting,omitempty"`
}

// InvoiceRetry says what a retry of an invoice step (or `dealsync runs
// retry`, which starts the deal's run again under the same idempotency
// keys) does about an invoice an earlier attempt may have made, its
// answer lost: the message of a failure that says the invoice may exist
// promises that the retry finds it only where that is so.
type InvoiceRetry string

const (
	// InvoiceRetryUnsaid is a target that does not say (a type that does
	// not implement InvoiceRetrier, a pin of the release before this
	// one): nothing is promised.
	InvoiceRetryUnsaid InvoiceRetry = ""
	// InvoiceRetryFinds is a target that finds the invoice before making
	// one (by reference, number or external id) or whose ERP keeps the
	// idempotency keys and answers one with it: xero with
	// check_reference, quickbooks, netsuite, an http target with
	// lookup_invoices, dealsync dev's sandbox ERP.
	InvoiceRetryFinds InvoiceRetry = "finds"
	// InvoiceRetryKeyOnly is a target whose look-up of the invoice is off
	// (an http target without lookup_invoices, xero with check_reference:
	// false): a retry sends the invoice again, and gets the one made only
	// if the ERP still honours the idempotency key (Xero keeps its keys
	// for a limited time); otherwise it makes a second invoice.
	InvoiceRetryKeyOnly InvoiceRetry = "key_only"
)

// InvoiceRetrier is implemented by targets that say what a retry of
// their invoice step does (InvoiceRetry).
type InvoiceRetrier interface {
	InvoiceRetry() InvoiceRetry
}

// InvoiceRetryOf is what a retry of t's invoice step does
// (InvoiceRetryUnsaid for a target that does not say) and, when it only
// sends the invoice again under its key (InvoiceRetryKeyOnly), the
// setting that turns its look-up on (InvoiceReferenceLookup).
func InvoiceRetryOf(t Target) (how InvoiceRetry, lookupSetting string) {
	r, ok := t.(InvoiceRetrier)
	if !ok {
		return InvoiceRetryUnsaid, ""
	}
	if how = r.InvoiceRetry(); how == InvoiceRetryKeyOnly {
		if l, ok := t.(InvoiceReferenceLookup); ok {
			_, lookupSetting = l.LooksUpInvoicesByReference()
		}
	}
	return how, lookupSetting
}

// Matches says whether pinned, the target a run was started for, is t:
// the same fingerprint, or the one the release before this one gave t
// (EarlierFingerprint), or pinned is the release before's pin of a
// target whose URLs this release identifies as t's (pinnedAsNow: its
// host written with a trailing dot, or an IPv6 address in another form,
// where t's config now writes it plainly), so that the runs an earlier
// intake pinned are not refused for a setting this release identifies
// otherwise. Both must be Comparable.
func (t TargetIdentity) Matches(pinned TargetIdentity) bool {
	if t.Fingerprint == pinned.Fingerprint || (t.EarlierFingerprint != "" && t.EarlierFingerprint == pinned.Fingerprint) {
		return true
	}
	fp, ok := pinnedAsNow(pinned)
	return ok && fp == t.Fingerprint
}

// pinnedAsNow is the fingerprint this release gives the target that
// pinned, a pin the release before this one made, identifies, when that
// differs: its Description read back (ParseDescription) hashes, as that
// release did, to its Fingerprint, and a setting's value there that is a
// URL whose host this release writes otherwise (IdentityURL: without its
// trailing dot, an IPv6 address in its short form) is taken as this
// release takes it. False for any other pin: one whose description does
// not hash to it (a value the description cannot show apart), or whose
// URLs this release writes as that release did.
func pinnedAsNow(pinned TargetIdentity) (string, bool) {
	name, shown, ok := ParseDescription(pinned.Description)
	if !ok || len(shown) == 0 {
		return "", false
	}
	settings := make([]Setting, 0, len(shown)-1)
	changed := false
	for _, s := range shown[1:] {
		key, value, ok := strings.Cut(s, " ")
		if !ok || value == "" {
			return "", false
		}
		set := Setting{Key: key, Value: value}
		if u, err := url.Parse(value); err == nil && u.Scheme != "" && u.Host != "" && identityURL(value, false) == value {
			if now := identityURL(value, true); now != value {
				set.Value, set.Earlier, changed = now, value, true
			}
		}
		settings = append(settings, set)
	}
	if !changed || fingerprint(name, shown[0], settings, true) != pinned.Fingerprint {
		return "", false
	}
	return fingerprint(name, shown[0], settings, false), true
}

// identityScheme starts every Fingerprint. A release that hashes other
// settings must use another scheme: a step compares only fingerprints of
// one scheme (Comparable), so that runs pinned by an older intake are not
// refused for the change of what is hashed.
const identityScheme = "t1:"

// IsZero says that t identifies nothing (a run started before targets
// were pinned, or a connection built without its config).
func (t TargetIdentity) IsZero() bool { return t.Fingerprint == "" }

// Comparable says whether t and o can be compared: both identify a target,
// with fingerprints of the same scheme.
func (t TargetIdentity) Comparable(o TargetIdentity) bool {
	return !t.IsZero() && !o.IsZero() && scheme(t.Fingerprint) == scheme(o.Fingerprint)
}

func scheme(fp string) string {
	if i := strings.IndexByte(fp, ':'); i >= 0 {
		return fp[:i+1]
	}
	return ""
}

// IdentifyTarget is the identity of the target configured as name, of
// type typ, with cfg its decoded config (the registry's NewConfig type):
// its name and type, and the settings cfg names when it is a
// TargetIdentifier. It is the one place that computes it, for the intake
// that pins it and for the steps that compare it.
func IdentifyTarget(name, typ string, cfg any) TargetIdentity {
	var settings []Setting
	if id, ok := cfg.(TargetIdentifier); ok {
		for _, s := range id.IdentifyingSettings() {
			if s.Value != "" {
				settings = append(settings, s)
			}
		}
	}
	shown := make([]string, 0, len(settings)+1)
	shown = append(shown, typ)
	earlier := false
	for _, s := range settings {
		shown = append(shown, s.Key+" "+s.Value)
		earlier = earlier || (s.Earlier != "" && s.Earlier != s.Value)
	}
	id := TargetIdentity{
		Fingerprint: fingerprint(name, typ, settings, false),
		Description: fmt.Sprintf("target %q (%s)", name, strings.Join(shown, ", ")),
	}
	if earlier {
		id.EarlierFingerprint = fingerprint(name, typ, settings, true)
	}
	return id
}

// fingerprint hashes the name, type and settings of a target, each
// setting's Earlier value in place of its Value when earlier and it has
// one.
func fingerprint(name, typ string, settings []Setting, earlier bool) string {
	pairs := make([][2]string, 0, len(settings)+2)
	pairs = append(pairs, [2]string{"name", name}, [2]string{"type", typ})
	for _, s := range settings {
		v := s.Value
		if earlier && s.Earlier != "" {
			v = s.Earlier
		}
		pairs = append(pairs, [2]string{s.Key, v})
	}
	b, _ := json.Marshal(pairs) // strings only: cannot fail
	sum := sha256.Sum256(b)
	return identityScheme + hex.EncodeToString(sum[:12])
}

// ParseDescription reads a TargetIdentity's Description back: the
// target's name, and what the parentheses show, its type and then each
// identifying setting as "key value" (a value's own parentheses and
// commas kept within it); false for a text that is not one.
func ParseDescription(desc string) (name string, shown []string, ok bool) {
	rest, ok := strings.CutPrefix(desc, "target ")
	if !ok {
		return "", nil, false
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return "", nil, false
	}
	name, _ = strconv.Unquote(q)
	inner, ok := strings.CutPrefix(rest[len(q):], " (")
	if !ok {
		return "", nil, false
	}
	if inner, ok = strings.CutSuffix(inner, ")"); !ok {
		return "", nil, false
	}
	depth, start := 0, 0
	for i := 0; i < len(inner); i++ {
		switch {
		case inner[i] == '(':
			depth++
		case inner[i] == ')':
			depth--
		case depth == 0 && strings.HasPrefix(inner[i:], ", "):
			shown = append(shown, inner[start:i])
			start = i + 2
		}
	}
	return name, append(shown, inner[start:]), true
}

// IdentityURL is a configured URL as a target identifies itself by it:
// scheme://host/path with the scheme and host in lower case, no
// trailing slash, and no port when it is the scheme's default (80 for
// http, 443 for https: https://api.example:443/v1 is
// https://api.example/v1), without the user info, query and fragment,
// which may hold a credential (rotated without changing where calls go).
// A host's name of more than one label is without its trailing dot
// (api.example. is the fully qualified api.example; erp. and 127.0.0.1.
// keep it: fullyQualified), an IPv6 address in its short form, in lower
// case ([0:0:0:0:0:0:0:1] is [::1]). Two names of one host (localhost and
// 127.0.0.1, an IP address and its DNS name, an IPv4 address and the
// IPv6 address that maps it) stay apart: in general they are other
// hosts. A value url.Parse refuses (which the target refuses when built)
// is not shown: a hash of it stands for it.
func IdentityURL(raw string) string { return identityURL(raw, true) }

// URLSetting is the identifying setting key of a configured URL, raw
// (IdentityURL), with the value the release before this one identified
// it by when that differs (Setting.Earlier: it kept a host's trailing
// dot, and an IPv6 address as written).
func URLSetting(key, raw string) Setting {
	s := Setting{Key: key, Value: IdentityURL(raw)}
	if earlier := identityURL(raw, false); earlier != s.Value {
		s.Earlier = earlier
	}
	return s
}

// identityURL is IdentityURL, or, without canonicalHost, the form of
// the release before this one, which kept a host's trailing dot and an
// IPv6 address as written.
func identityURL(raw string, canonicalHost bool) string {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil {
		sum := sha256.Sum256([]byte(raw))
		return "(a URL that does not parse, " + hex.EncodeToString(sum[:6]) + ")"
	}
	scheme := strings.ToLower(u.Scheme)
	return strings.TrimRight((&url.URL{Scheme: scheme, Host: identityHost(scheme, u, canonicalHost), Path: u.Path, RawPath: u.RawPath}).String(), "/")
}

// identityHost is u's host in lower case, with its port in decimal unless
// it is scheme's default (or empty, "https://api.example:/v1"); with
// canonical, a name of more than one label without its trailing dot
// (fullyQualified) and an IPv6 address in its short form (netip).
func identityHost(scheme string, u *url.URL, canonical bool) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if canonical {
		if addr, err := netip.ParseAddr(host); err == nil {
			if addr.Is6() {
				host = addr.String()
			}
		} else if name, ok := strings.CutSuffix(host, "."); ok && fullyQualified(name) {
			host = name
		}
	}
	if n, err := strconv.ParseUint(port, 10, 16); err == nil {
		port = strconv.FormatUint(n, 10) // 0443 is 443
	}
	if port == "" || port == map[string]string{"http": "80", "https": "443"}[scheme] {
		if strings.Contains(host, ":") {
			return "[" + host + "]" // an IPv6 address
		}
		return host
	}
	return net.JoinHostPort(host, port)
}

// fullyQualified says whether name, a host name whose trailing dot was
// cut, is the same name without the dot: it has more than one label
// (erp. is looked up as written, erp through the search domains, which
// may give another host) and is not an IP address (127.0.0.1. is a DNS
// name, not the address).
func fullyQualified(name string) bool {
	if _, err := netip.ParseAddr(name); err == nil {
		return false
	}
	label, rest, ok := strings.Cut(name, ".")
	return ok && label != "" && rest != "" && !strings.HasSuffix(rest, ".")
}
