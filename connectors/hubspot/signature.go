package hubspot

// HubSpot request signatures:
//
//	v3: X-HubSpot-Signature-v3 = base64(HMAC-SHA256(client secret,
//	        method + uri + body + timestamp)), with
//	    X-HubSpot-Request-Timestamp in Unix milliseconds (5-minute window).
//	v2: X-HubSpot-Signature = hex(SHA-256(client secret + method + uri + body))
//	v1: X-HubSpot-Signature = hex(SHA-256(client secret + body))
//	    (X-HubSpot-Signature-Version says v1 or v2)
//
// uri is the full URL HubSpot called (https://host/path?query), which behind
// a proxy is not what the server sees: the intake builds it from
// intake.public_base_url.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
	"github.com/dealsync/dealsync/internal/wording"
)

// Header names.
const (
	HeaderSignatureV3 = "X-HubSpot-Signature-v3"
	HeaderTimestamp   = "X-HubSpot-Request-Timestamp"
	HeaderSignature   = "X-HubSpot-Signature"
	HeaderVersion     = "X-HubSpot-Signature-Version"
)

// SignV3 returns the X-HubSpot-Signature-v3 value for a request, with ts
// being the X-HubSpot-Request-Timestamp value as sent (milliseconds).
func SignV3(clientSecret, method, uri string, body []byte, ts string) string {
	return base64.StdEncoding.EncodeToString(macV3([]byte(clientSecret), method, uri, body, ts))
}

// SignRequestV3 sets the v3 signature and timestamp headers of req for body
// sent to uri (the public URL) at time ts. It does not touch req.Body.
func SignRequestV3(req *http.Request, clientSecret, uri string, body []byte, ts time.Time) {
	t := strconv.FormatInt(ts.UnixMilli(), 10)
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set(HeaderTimestamp, t)
	req.Header.Set(HeaderSignatureV3, SignV3(clientSecret, req.Method, uri, body, t))
}

// SignV2 returns the legacy v2 X-HubSpot-Signature value.
func SignV2(clientSecret, method, uri string, body []byte) string {
	return hex.EncodeToString(sumV2([]byte(clientSecret), method, uri, body))
}

// SignV1 returns the legacy v1 X-HubSpot-Signature value.
func SignV1(clientSecret string, body []byte) string {
	return hex.EncodeToString(sumV1([]byte(clientSecret), body))
}

func macV3(key []byte, method, uri string, body []byte, ts string) []byte {
	m := hmac.New(sha256.New, key)
	writeAll(m, method, uri, body, ts)
	return m.Sum(nil)
}

func sumV2(key []byte, method, uri string, body []byte) []byte {
	h := sha256.New()
	_, _ = h.Write(key)
	writeAll(h, method, uri, body, "")
	return h.Sum(nil)
}

func sumV1(key []byte, body []byte) []byte {
	h := sha256.New()
	_, _ = h.Write(key)
	_, _ = h.Write(body)
	return h.Sum(nil)
}

func writeAll(h hash.Hash, method, uri string, body []byte, ts string) {
	_, _ = io.WriteString(h, method)
	_, _ = io.WriteString(h, uri)
	_, _ = h.Write(body)
	_, _ = io.WriteString(h, ts)
}

// decodedURI applies the decoding HubSpot's docs ask for before hashing:
// %3A : %2F / %3F ? %40 @ %21 ! %24 $ %27 ' %28 ( %29 ) %2A * %2C , %3B ;
// (any hex case). It returns uri and false when there is nothing to decode.
func decodedURI(uri string) (string, bool) {
	if !strings.Contains(uri, "%") {
		return uri, false
	}
	var b strings.Builder
	changed := false
	for i := 0; i < len(uri); i++ {
		if uri[i] == '%' && i+2 < len(uri) {
			if c, ok := decodable[strings.ToUpper(uri[i+1:i+3])]; ok {
				b.WriteByte(c)
				i += 2
				changed = true
				continue
			}
		}
		b.WriteByte(uri[i])
	}
	return b.String(), changed
}

var decodable = map[string]byte{
	"3A": ':', "2F": '/', "3F": '?', "40": '@', "21": '!', "24": '$',
	"27": '\'', "28": '(', "29": ')', "2A": '*', "2C": ',', "3B": ';',
}

// candidate is a key a delivery may be signed with; only, when set, is the
// one portal whose events that key may sign.
type candidate struct {
	key      []byte
	only     string
	previous bool // a previous_client_secret being rotated out
}

// Verify authenticates a delivery: the v3 signature when present (rejecting
// a timestamp outside the tolerance), else v1/v2 if configured. The key is
// the connection's client_secret, or the client_secret of the account the
// events name (a private app), in which case every event must be of that
// account. During a rotation the previous_client_secret beside either is a
// key too, bound the same way. w.URL must be the public URL HubSpot called.
// Errors wrap connectors.ErrUnauthorized.
//
// A signature that cannot be one (not 32 bytes: HMAC-SHA256 for v3, SHA-256
// for v1/v2) is refused before any key is tried. Of the portals' own keys,
// only those of the portal the first event names are tried when that can
// be read (see candidates): such a forged delivery costs at most four
// signatures over its body (eight when the URL has a decodable %XX),
// however many portals. A body whose first event cannot be read is still
// tried against every key.
func (s *Source) Verify(w *connectors.Webhook) error {
	if w == nil {
		return crmkit.Unauthorized(service, "no delivery")
	}
	w.PreviousSecret = false
	now := w.Received
	if now.IsZero() {
		if s.Now != nil {
			now = s.Now()
		} else {
			now = time.Now()
		}
	}
	var (
		match func(key []byte) bool
		what  string
	)
	if sig := strings.TrimSpace(header(w.Header, HeaderSignatureV3)); sig != "" {
		tsText := strings.TrimSpace(header(w.Header, HeaderTimestamp))
		if tsText == "" {
			return crmkit.Unauthorized(service, "missing %s header", HeaderTimestamp)
		}
		ms, err := strconv.ParseInt(tsText, 10, 64)
		if err != nil || ms < 0 || ms > 253402300799999 {
			return crmkit.Unauthorized(service, "invalid %s header: want Unix milliseconds", HeaderTimestamp)
		}
		age := now.Sub(time.UnixMilli(ms))
		switch {
		case age > s.tolerance && time.Unix(ms, 0).Sub(now).Abs() <= s.tolerance:
			// Seconds where milliseconds belong: a sender's mistake
			// (HubSpot's own header is in milliseconds), said as such.
			return crmkit.Unauthorized(service, "timestamp %s is in seconds: %s is Unix milliseconds (the v3 signature covers it as sent)", tsText, HeaderTimestamp)
		case age > s.tolerance:
			return crmkit.Unauthorized(service, "timestamp too old: %s before now (tolerance %s)", wording.Duration(age.Round(time.Second)), wording.Duration(s.tolerance))
		case age < -s.tolerance:
			return crmkit.Unauthorized(service, "timestamp too new: %s ahead of now (tolerance %s)", wording.Duration((-age).Round(time.Second)), wording.Duration(s.tolerance))
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			return crmkit.Unauthorized(service, "%s is not base64", HeaderSignatureV3)
		}
		if len(got) != sha256.Size {
			hint := ""
			if _, err := hex.DecodeString(sig); err == nil && len(sig) == 2*sha256.Size {
				hint = " (it reads as hex: v3 signatures are base64; hex is v1's and v2's)"
			}
			return crmkit.Unauthorized(service, "%s is not an HMAC-SHA256: %d bytes, want %d%s", HeaderSignatureV3, len(got), sha256.Size, hint)
		}
		decoded, hasDecoded := decodedURI(w.URL)
		what = "v3"
		match = func(key []byte) bool {
			s.computed()
			if hmac.Equal(got, macV3(key, w.Method, w.URL, w.Body, tsText)) {
				return true
			}
			if !hasDecoded {
				return false
			}
			s.computed()
			return hmac.Equal(got, macV3(key, w.Method, decoded, w.Body, tsText))
		}
	} else {
		sig := strings.TrimSpace(header(w.Header, HeaderSignature))
		version := strings.ToLower(strings.TrimSpace(header(w.Header, HeaderVersion)))
		if sig == "" {
			return crmkit.Unauthorized(service, "missing %s header", HeaderSignatureV3)
		}
		got, err := hex.DecodeString(sig)
		if err != nil {
			return crmkit.Unauthorized(service, "%s is not hex", HeaderSignature)
		}
		switch {
		case (version == "v1" && s.legacyV1 || version == "v2" && s.legacyV2) && len(got) != sha256.Size:
			return crmkit.Unauthorized(service, "%s is not a SHA-256: %d hex digits, want %d", HeaderSignature, len(sig), hex.EncodedLen(sha256.Size))
		case version == "v1" && s.legacyV1:
			what = "v1"
			match = func(key []byte) bool { s.computed(); return hmac.Equal(got, sumV1(key, w.Body)) }
		case version == "v2" && s.legacyV2:
			what = "v2"
			match = func(key []byte) bool { s.computed(); return hmac.Equal(got, sumV2(key, w.Method, w.URL, w.Body)) }
		case version == "v1" || version == "v2":
			return crmkit.Unauthorized(service, "%s signatures are not accepted (no %s header; enable legacy_signatures: [%s] to accept them)", version, HeaderSignatureV3, version)
		default:
			return crmkit.Unauthorized(service, "missing %s header", HeaderSignatureV3)
		}
	}
	keys, portal, narrowed := s.candidates(w.Body)
	if len(keys) == 0 {
		// Only when narrowed: New requires a key for every portal.
		return crmkit.Unauthorized(service, "no client secret for %s, whose event the delivery carries", portalName(portal))
	}
	// Portals may share a secret (the app's, configured under each of
	// them): a key bound to another portal than the body's gives way to
	// the next one that matches.
	// A delivery a previous secret admits is looked at further: a current
	// key may admit it too (a portal that kept the old app secret as its
	// own), and then it does not count as the previous secret's.
	var mismatch error
	byPrevious := false
	for _, c := range keys {
		if !match(c.key) {
			continue
		}
		if c.only != "" {
			p, other, err := s.otherPortal(w.Body, c.key)
			if err != nil {
				return fmt.Errorf("%w: %s: the body is not a JSON array of events: %v", connectors.ErrMalformed, service, err)
			}
			if other {
				if mismatch == nil {
					mismatch = crmkit.Unauthorized(service, "signed with portal %s's client secret but carries an event of %s, whose secret is another", c.only, portalName(p))
				}
				continue
			}
		}
		if c.previous {
			byPrevious = true
			continue
		}
		return nil
	}
	if byPrevious {
		w.PreviousSecret = true
		return nil
	}
	if mismatch != nil {
		return mismatch
	}
	// v1 signs the secret and the body only: the URL cannot be why.
	// HubSpot signs the URL with its query: the hint shows its parameters'
	// names as received, never their values (shownURL).
	hint := fmt.Sprintf(" (is the public URL %q what HubSpot calls?)", shownURL(w.URL))
	if what == "v1" {
		hint = " (v1 signs the client secret and the body only)"
	}
	// The secret, by the setting's name only, as the other sources say:
	// in the log's line only (connectors.Terse).
	advice := fmt.Sprintf("check that %s is the app's client secret (or a portal's own, under accounts)", s.keys.Key("client_secret"))
	if narrowed {
		return connectors.Advised(crmkit.Unauthorized(service, "%s signature does not match the keys that may sign %s's events%s", what, portalName(portal), hint), advice)
	}
	return connectors.Advised(crmkit.Unauthorized(service, "%s signature does not match%s", what, hint), advice)
}

// computed counts one signature computed by Verify, for tests.
func (s *Source) computed() {
	if s.onCompute != nil {
		s.onCompute()
	}
}

// portalName is how a message names portal p, read from a body before its
// signature is verified: any JSON number the body holds, answered to a
// caller not authenticated and logged, so cut to maxShownPortal bytes.
func portalName(p string) string {
	if p == "" {
		return "a portal with no portalId"
	}
	return "portal " + shownCut(p, maxShownPortal)
}

// maxShownPortal bounds the portalId a message shows, in bytes: a HubSpot
// portal ID is far shorter (a uint64 has 20 digits).
const maxShownPortal = 20

// shownCut is s cut to at most n bytes (at a rune's start), "…" marking
// the cut.
func shownCut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// maxShownQuery bounds the query shownURL shows, in bytes: it is the
// sender's, answered to a caller not authenticated and logged.
const maxShownQuery = 100

// shownURL is u, a URL HubSpot signed with its query, as a message shows
// it: the query's parameter names as received (signed as they are), in
// their order, each value as "…" (a value may be a credential, whatever
// its parameter is named: jwt, hmac, bearer, t), the query cut to
// maxShownQuery bytes.
func shownURL(u string) string {
	base, query, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		if name, _, hasValue := strings.Cut(p, "="); hasValue {
			parts[i] = name + "=…"
		}
	}
	return base + "?" + shownCut(strings.Join(parts, "&"), maxShownQuery)
}

// portalOnly is what Verify reads of a body: before the signature is
// checked, the first event's portal (firstPortal); once a portal's own key
// matched, that every event is that portal's (otherPortal).
type portalOnly struct {
	PortalID json.Number `json:"portalId"`
}

// otherPortal reports a portal of body whose events key may not admit; a
// body that is not a JSON array is an error (answered 400, never
// accepted). A portal's key admits the events of the portals it is
// configured for (several portals may share one: a public app's secret
// under each) and of portals the connection does not list (Parse drops
// those), but not a body of only unlisted portals' events ("" reported:
// another portal's, as far as the key can tell). An element
// whose portal cannot be read is passed over: Parse leaves it out as
// unreadable, so the key admits nothing of another portal through it.
func (s *Source) otherPortal(body []byte, key []byte) (string, bool, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return "", false, err
	}
	own, unlisted := false, false
	for _, item := range items {
		var e portalOnly
		if json.Unmarshal(item, &e) != nil {
			continue
		}
		p := e.PortalID.String()
		a := s.accounts[p]
		switch {
		case a == nil:
			unlisted = true // dropped by Parse
		case hmac.Equal(a.secret, key) || hmac.Equal(a.previous, key):
			own = true
		default:
			return p, true, nil
		}
	}
	return "", unlisted && !own, nil
}

// candidates lists the keys a delivery with body may be signed with: the
// app's secret, then the portals' own, each followed by the previous
// secret being rotated out beside it, which is bound the same way.
//
// A portal's own key admits a delivery only when every event is of a
// portal configured with that key, or of one the connection does not list
// (checked by Verify once the key matched: otherPortal), so when the first
// event's portalId can be read (firstPortal, before the signature is
// verified: the body is not trusted for anything else) and names a listed
// portal, only its keys are tried, and narrowed is true with portal the
// one read; so too when it names no listed portal ("" for an event without
// portalId) and the connection has the app's secret, which then signs it;
// without the app's secret, the keys of the body's first listed portal
// with a key of its own (firstListedPortal: an unlisted portal's event may
// come first in a batch that portals sharing a secret sign), or none.
// Otherwise (no event can be read) every portal's keys are tried, in a
// fixed order, and one that matches a body that is not a JSON array of
// events finds it malformed.
func (s *Source) candidates(body []byte) (keys []candidate, portal string, narrowed bool) {
	var out []candidate
	for i, key := range [][]byte{s.appSecret, s.appPrevious} {
		if len(key) > 0 {
			out = append(out, candidate{key: key, previous: i == 1})
		}
	}
	if len(s.secretPortals) == 0 {
		return out, "", false
	}
	portals := s.secretPortals
	if p, ok := firstPortal(body); ok {
		switch a := s.accounts[p]; {
		case a != nil && len(a.secret) > 0:
			portal, narrowed, portals = p, true, []string{p}
		case a != nil || len(s.appSecret) > 0:
			// A listed portal without a key of its own, or one the
			// connection does not list beside the app's secret: the app's
			// secret signs its events.
			portal, narrowed, portals = p, true, nil
		default:
			// A portal the connection does not list (its events dropped)
			// comes first in a batch that a secret the listed portals share
			// may sign (a public app's, configured under each of them):
			// only the first listed portal of the body can own the key
			// that admits it (otherPortal), so only its keys are tried.
			portal, narrowed, portals = p, true, nil
			if q, found := s.firstListedPortal(body); found {
				portal, portals = q, []string{q}
			}
		}
	}
	for _, p := range portals {
		a := s.accounts[p]
		for i, key := range [][]byte{a.secret, a.previous} {
			if len(key) > 0 { // never an empty HMAC key
				out = append(out, candidate{key: key, only: p, previous: i == 1})
			}
		}
	}
	return out, portal, narrowed
}

// firstPortal reads the portalId of the first event of body, and nothing
// past that event: it runs before the signature is verified, on a body
// anyone can send. ok is false when body is not a JSON array that starts
// with an event (then no portal is ruled out). An event whose portalId is
// missing or null gives "", as otherPortal reads it.
func firstPortal(body []byte) (portal string, ok bool) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if tok, err := d.Token(); err != nil || tok != json.Delim('[') {
		return "", false
	}
	if !d.More() {
		return "", false // no event: nothing names a portal
	}
	var e portalOnly
	if err := d.Decode(&e); err != nil {
		return "", false
	}
	return e.PortalID.String(), true
}

// firstListedPortal reads body's events until one of a portal the
// connection lists with a key of its own, and gives that portal; found is
// false when there is none (or the body stops being a JSON array of
// events first). It runs before the signature is verified: the portal only
// chooses which keys to try.
func (s *Source) firstListedPortal(body []byte) (portal string, found bool) {
	d := json.NewDecoder(bytes.NewReader(body))
	if tok, err := d.Token(); err != nil || tok != json.Delim('[') {
		return "", false
	}
	for d.More() {
		var e portalOnly
		if err := d.Decode(&e); err != nil {
			return "", false
		}
		if a := s.accounts[e.PortalID.String()]; a != nil && len(a.secret) > 0 {
			return e.PortalID.String(), true
		}
	}
	return "", false
}

// header reads a header whatever the case of its name in h (a Webhook built
// by hand may not have canonical keys).
func header(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, name) {
			return vs[0]
		}
	}
	return ""
}
