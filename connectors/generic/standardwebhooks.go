package generic

// Standard Webhooks (https://www.standardwebhooks.com, the scheme Svix uses),
// symmetric variant:
//
//	webhook-id:        msg_p5jXN8AQM9LWM0D4loKWxJek
//	webhook-timestamp: 1614265330                       (integer seconds)
//	webhook-signature: v1,<base64> [v1,<base64> ...]    (space-separated)
//
// where each signature is base64(HMAC-SHA256(key, id + "." + timestamp + "." +
// body)) and key is the base64 decoding of the secret after its optional
// "whsec_" prefix.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/wording"
)

// DefaultTolerance is how far a webhook-timestamp may lie in the past or the
// future of the receiver's clock, as in the Standard Webhooks libraries.
const DefaultTolerance = 5 * time.Minute

// Header names of the Standard Webhooks scheme. Verify also accepts them
// with the "svix-" prefix instead of "webhook-".
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

const secretPrefix = "whsec_"

// headerSet is one spelling of the three headers.
type headerSet struct{ id, timestamp, signature string }

var (
	standardHeaders = headerSet{HeaderID, HeaderTimestamp, HeaderSignature}
	svixHeaders     = headerSet{"svix-id", "svix-timestamp", "svix-signature"}
)

// maxTimestamp (9999-12-31T23:59:59Z) keeps time arithmetic far from overflow;
// anything later is simply "too new".
const maxTimestamp = 253402300799

// errBadSecret never quotes the secret.
var errBadSecret = errors.New("the secret is not a Standard Webhooks secret (want whsec_ followed by base64)")

// decodeSecret turns "whsec_<base64>" (or the bare base64, padded or not)
// into the HMAC key.
func decodeSecret(secret string) ([]byte, error) {
	s := strings.TrimPrefix(strings.TrimSpace(secret), secretPrefix)
	if s == "" {
		return nil, errors.New("the secret is empty")
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil || len(key) == 0 {
		return nil, errBadSecret
	}
	return key, nil
}

var dot = []byte{'.'}

// computeSignature is the raw HMAC over msgID.timestamp.body.
func computeSignature(key []byte, msgID string, ts int64, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	var num [20]byte
	_, _ = io.WriteString(mac, msgID)
	_, _ = mac.Write(dot)
	_, _ = mac.Write(strconv.AppendInt(num[:0], ts, 10))
	_, _ = mac.Write(dot)
	_, _ = mac.Write(body)
	return mac.Sum(nil)
}

func signWithKey(key []byte, msgID string, ts time.Time, body []byte) (string, error) {
	if msgID == "" {
		return "", errors.New("standard webhooks: the message id is empty")
	}
	return "v1," + base64.StdEncoding.EncodeToString(computeSignature(key, msgID, ts.Unix(), body)), nil
}

// Sign returns the webhook-signature value "v1,<base64>" for a message. The
// secret is "whsec_<base64>" or the bare base64 (padded or not); errors never
// contain it.
func Sign(secret string, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", fmt.Errorf("standard webhooks: %w", err)
	}
	return signWithKey(key, msgID, ts, body)
}

// SignRequest signs body and sets the webhook-id, webhook-timestamp and
// webhook-signature headers of req. It does not touch req.Body: the caller
// sends exactly body.
func SignRequest(req *http.Request, secret, msgID string, ts time.Time, body []byte) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return fmt.Errorf("standard webhooks: %w", err)
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	return signHeader(req.Header, [][]byte{key}, msgID, ts, body)
}

// signHeader sets the three headers of a message in h, with one v1
// signature per key, space-separated, in the order of keys: the Standard
// Webhooks way of signing with a secret and the one it replaces while a
// receiver moves from one to the other (it takes any that matches).
func signHeader(h http.Header, keys [][]byte, msgID string, ts time.Time, body []byte) error {
	if len(keys) == 0 {
		return errors.New("standard webhooks: no secret to sign with")
	}
	sigs := make([]string, 0, len(keys))
	for _, key := range keys {
		sig, err := signWithKey(key, msgID, ts, body)
		if err != nil {
			return err
		}
		sigs = append(sigs, sig)
	}
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
	return nil
}

// Verify checks a delivery's Standard Webhooks signature over the raw body.
// It reads webhook-id, webhook-timestamp and webhook-signature (or their
// svix- equivalents), rejects a timestamp more than tolerance before or after
// now (tolerance <= 0 means DefaultTolerance), and accepts the delivery if
// any v1 signature of the space-separated list matches; other versions are
// ignored.
//
// Every rejection wraps connectors.ErrUnauthorized. An unusable secret is a
// configuration error and does not.
func Verify(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return fmt.Errorf("standard webhooks: %w", err)
	}
	return verifyWithKey(key, header, body, now, tolerance)
}

func unauthorized(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{connectors.ErrUnauthorized}, args...)...)
}

func verifyWithKey(key []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	names := headerNames(header)
	msgID := strings.TrimSpace(headerValue(header, names.id))
	if msgID == "" {
		return unauthorized("missing %s header", names.id)
	}
	tsText := strings.TrimSpace(headerValue(header, names.timestamp))
	if tsText == "" {
		return unauthorized("missing %s header", names.timestamp)
	}
	var sigs []string
	for _, v := range headerValues(header, names.signature) {
		sigs = append(sigs, strings.Fields(v)...)
	}
	if len(sigs) == 0 {
		return unauthorized("missing %s header", names.signature)
	}

	ts, ok := parseTimestamp(tsText)
	if !ok {
		return unauthorized("invalid %s header %s: want integer seconds since 1970", names.timestamp, connectors.QuoteShort(tsText))
	}
	if ts > maxTimestamp {
		hint := ""
		if ts/1000 <= maxTimestamp {
			hint = ": it looks like milliseconds; the Standard Webhooks timestamp is in seconds"
		}
		return unauthorized("timestamp too new: %s is after year 9999%s", names.timestamp, hint)
	}
	age := now.Sub(time.Unix(ts, 0)) // saturates, never overflows
	switch {
	case age > tolerance:
		return unauthorized("timestamp too old: %s before now (tolerance %s)", wording.Duration(age.Round(time.Second)), wording.Duration(tolerance))
	case age < -tolerance:
		return unauthorized("timestamp too new: %s ahead of now (tolerance %s)", wording.Duration((-age).Round(time.Second)), wording.Duration(tolerance))
	}

	want := computeSignature(key, msgID, ts, body)
	v1 := 0
	for _, s := range sigs {
		version, b64, found := strings.Cut(s, ",")
		if !found || version != "v1" {
			continue
		}
		v1++
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			if got, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
				continue
			}
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	if v1 == 0 {
		// Not errNoMatch: no signature was compared, so the secret is
		// not what to check (a v1a one, or one without its "v1,").
		return unauthorized("no matching signature: %s has no v1 signature (each is written v1,<base64>)", names.signature)
	}
	return fmt.Errorf("%w: %w (%d v1 signature(s) checked)", connectors.ErrUnauthorized, errNoMatch, v1)
}

// errNoMatch is a delivery whose timestamp was within the tolerance but
// whose v1 signatures, one or more, none matched: the secret, or what was
// signed, differs.
var errNoMatch = errors.New("no matching signature")

// parseTimestamp accepts plain decimal digits only (no sign, no fraction).
func parseTimestamp(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// headerNames picks the webhook- spelling unless only svix- headers are present.
func headerNames(h http.Header) headerSet {
	for _, n := range []string{standardHeaders.id, standardHeaders.timestamp, standardHeaders.signature} {
		if len(headerValues(h, n)) > 0 {
			return standardHeaders
		}
	}
	for _, n := range []string{svixHeaders.id, svixHeaders.timestamp, svixHeaders.signature} {
		if len(headerValues(h, n)) > 0 {
			return svixHeaders
		}
	}
	return standardHeaders
}

// canonicalKeys are the canonical forms of the six header names, computed
// once so that lookups do not allocate.
var canonicalKeys = func() map[string]string {
	m := map[string]string{}
	for _, s := range []headerSet{standardHeaders, svixHeaders} {
		for _, n := range []string{s.id, s.timestamp, s.signature} {
			m[n] = http.CanonicalHeaderKey(n)
		}
	}
	return m
}()

// headerValues is h.Values(name), falling back to a case-insensitive scan
// for maps that were filled without canonical keys.
func headerValues(h http.Header, name string) []string {
	key, ok := canonicalKeys[name]
	if !ok {
		key = http.CanonicalHeaderKey(name)
	}
	if v := h[key]; len(v) > 0 {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v
		}
	}
	return nil
}

func headerValue(h http.Header, name string) string {
	if v := headerValues(h, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// messageID is the delivery's webhook-id (or svix-id), "" if absent.
func messageID(h http.Header) string {
	if id := strings.TrimSpace(headerValue(h, standardHeaders.id)); id != "" {
		return id
	}
	return strings.TrimSpace(headerValue(h, svixHeaders.id))
}
