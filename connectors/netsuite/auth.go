package netsuite

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit"
)

// NetSuite's OAuth 2.0 client credentials (machine-to-machine) flow: the
// client authenticates with a JWT it signs with the private key of the
// certificate uploaded in Setup > Integration > Manage Authentication >
// OAuth 2.0 Client Credentials (M2M) Setup. There is no client secret and
// no refresh token: when the access token (60 minutes) expires, or the API
// rejects it, a new assertion buys a new one.

// ClientAssertionType is the client_assertion_type of the token request.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Algorithms NetSuite accepts for the assertion ("The Request Token
// Structure": PS256, PS384, PS512, ES256, ES384, ES512; RSA PKCS#1 v1.5
// (RS256) is not among them).
var Algorithms = []string{"PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

// assertionLifetime is exp − iat; NetSuite wants less than 60 minutes.
const assertionLifetime = 5 * time.Minute

// ParsePrivateKey reads a PEM private key: PKCS#8 ("PRIVATE KEY"), PKCS#1
// ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"), RSA or ECDSA.
func ParsePrivateKey(pemData []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, pemData = pem.Decode(pemData)
		if block == nil {
			return nil, errors.New("no PEM private key found (expected -----BEGIN PRIVATE KEY-----)")
		}
		switch block.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				// An RSASSA-PSS key (openssl -newkey rsa-pss, as Oracle's
				// guide makes it), which Go's PKCS#8 parser does not know.
				if pss, ok := parsePSSKey(block.Bytes); ok {
					return pss, nil
				}
				return nil, err
			}
			switch k := k.(type) {
			case *rsa.PrivateKey:
				return k, nil
			case *ecdsa.PrivateKey:
				return k, nil
			default:
				return nil, fmt.Errorf("private key type %T is not RSA or ECDSA", k)
			}
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the private key is encrypted: give it unencrypted (openssl ... -nodes), protected as a secret file")
		}
		// Other blocks (a certificate in the same file): keep looking.
	}
}

// oidRSASSAPSS is the PKCS#8 algorithm of an RSASSA-PSS key (RFC 4055).
var oidRSASSAPSS = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}

// parsePSSKey reads a PKCS#8 RSASSA-PSS private key: its key is an RSA
// one (PKCS#1), its algorithm's parameters (the hash it is bound to) are
// not read, as the configured algorithm (PS256, PS384, PS512) says it.
func parsePSSKey(der []byte) (*rsa.PrivateKey, bool) {
	var p8 struct {
		Version    int
		Algo       pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	if rest, err := asn1.Unmarshal(der, &p8); err != nil || len(rest) > 0 || !p8.Algo.Algorithm.Equal(oidRSASSAPSS) {
		return nil, false
	}
	k, err := x509.ParsePKCS1PrivateKey(p8.PrivateKey)
	return k, err == nil
}

// DefaultAlgorithm is the algorithm for a key: PS256 for RSA, ES256/384/512
// for P-256/P-384/P-521.
func DefaultAlgorithm(key crypto.Signer) string {
	if k, ok := key.(*ecdsa.PrivateKey); ok {
		switch k.Curve {
		case elliptic.P384():
			return "ES384"
		case elliptic.P521():
			return "ES512"
		}
		return "ES256"
	}
	return "PS256"
}

func hashFor(alg string) (crypto.Hash, func() hash.Hash, error) {
	switch alg[2:] {
	case "256":
		return crypto.SHA256, sha256.New, nil
	case "384":
		return crypto.SHA384, sha512.New384, nil
	case "512":
		return crypto.SHA512, sha512.New, nil
	}
	return 0, nil, fmt.Errorf("unsupported algorithm %q", alg)
}

// checkAlgorithm reports whether alg can be made with key.
func checkAlgorithm(alg string, key crypto.Signer) error {
	known := false
	for _, a := range Algorithms {
		known = known || a == alg
	}
	if !known {
		return fmt.Errorf("algorithm %q is not one NetSuite accepts (%s)", alg, strings.Join(Algorithms, ", "))
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if !strings.HasPrefix(alg, "PS") {
			return fmt.Errorf("algorithm %s needs an EC key, the key is RSA", alg)
		}
		// NetSuite's certificate conditions: "The length of the RSA key
		// must be 3072 bits, or 4096 bits".
		if n := k.N.BitLen(); n != 3072 && n != 4096 {
			return fmt.Errorf("the RSA key has %d bits; NetSuite accepts 3072 or 4096 (openssl ... -newkey rsa:4096)", n)
		}
	case *ecdsa.PrivateKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if want == nil || k.Curve != want {
			return fmt.Errorf("algorithm %s does not fit the key's curve %s", alg, k.Curve.Params().Name)
		}
	default:
		return fmt.Errorf("key type %T is not RSA or ECDSA", key)
	}
	return nil
}

// Assertion is the claims of the client assertion.
type Assertion struct {
	Issuer   string `json:"iss"`   // the integration record's client id
	Scope    string `json:"scope"` // "rest_webservices" (comma-separated list)
	Audience string `json:"aud"`   // the token endpoint
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
}

// SignAssertion makes the compact JWS of claims with the given algorithm,
// key and key id (the certificate id).
func SignAssertion(claims Assertion, alg, kid string, key crypto.Signer) (string, error) {
	if err := checkAlgorithm(alg, key); err != nil {
		return "", err
	}
	h, err := json.Marshal(map[string]string{"typ": "JWT", "alg": alg, "kid": kid})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	ch, newHash, err := hashFor(alg)
	if err != nil {
		return "", err
	}
	d := newHash()
	d.Write([]byte(input))
	digest := d.Sum(nil)
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		// JWS PS*: RSASSA-PSS with MGF1 of the same hash, salt = hash length.
		sig, err = rsa.SignPSS(rand.Reader, k, ch, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case *ecdsa.PrivateKey:
		// JWS ES*: R || S, each left-padded to the curve's byte size.
		r, s, serr := ecdsa.Sign(rand.Reader, k, digest)
		if serr != nil {
			return "", serr
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	}
	if err != nil {
		return "", err
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// ClientCredentials is the token source of the client credentials flow:
// it caches the access token until shortly before its expiry and gets a
// new one with a fresh assertion. It implements the erpkit client's
// Invalidate, so a 401 from the API costs exactly one new token. It is safe
// for concurrent use.
type ClientCredentials struct {
	TokenURL      string
	ClientID      string
	CertificateID string
	Algorithm     string
	Scope         string
	Key           crypto.Signer
	HTTPClient    *http.Client
	// Connection names the account in errors, for people.
	Connection string
	// Keys name the target's settings in advice (targets.<name>.client_id);
	// zero: as the target's.
	Keys connectors.Keys
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time

	mu  sync.Mutex
	tok *oauth2.Token
}

// keys are c.Keys, or the target's without a block.
func (c *ClientCredentials) keys() connectors.Keys {
	if c.Keys.IsZero() {
		return connectors.TargetKeys("")
	}
	return c.Keys
}

// expiryDelta: a token this close to its expiry is replaced first.
const expiryDelta = 60 * time.Second

func (c *ClientCredentials) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Token returns a usable access token, asking for a new one when needed.
func (c *ClientCredentials) Token(ctx context.Context) (*oauth2.Token, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && c.tok.Expiry.Sub(c.now()) > expiryDelta {
		return c.tok, nil
	}
	tok, err := c.fetch(ctx)
	if err != nil {
		return nil, err
	}
	c.tok = tok
	return tok, nil
}

// Invalidate drops accessToken (the API answered 401), unless it was
// replaced meanwhile.
func (c *ClientCredentials) Invalidate(accessToken string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && c.tok.AccessToken == accessToken {
		c.tok = nil
	}
}

const maxTokenAnswer = 1 << 20

func (c *ClientCredentials) fetch(ctx context.Context) (*oauth2.Token, error) {
	now := c.now()
	assertion, err := SignAssertion(Assertion{
		Issuer: c.ClientID, Scope: c.Scope, Audience: c.TokenURL,
		IssuedAt: now.Unix(), Expires: now.Add(assertionLifetime).Unix(),
	}, c.Algorithm, c.CertificateID, c.Key)
	if err != nil {
		return nil, fmt.Errorf("netsuite: signing the client assertion: %v: %w", err, connectors.ErrPermanent)
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {ClientAssertionType},
		"client_assertion":      {assertion},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("netsuite %s: %w", tokenOp, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dealsync")
	resp, err := erpkit.NoRedirects(c.HTTPClient).Do(req)
	if err != nil {
		return nil, fmt.Errorf("netsuite %s: %w", tokenOp, err) // network: retried
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenAnswer))
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("netsuite %s: reading answer: %w", tokenOp, err)
	}
	if refused, ok := erpkit.RedirectRefused(resp, "the signed client assertion",
		"check "+c.keys().Key("token_url")+" (default: base_url + "+TokenPath+") and that it is the account's own SuiteTalk host, then retry the run"); ok {
		// NetSuite's token endpoint does not redirect: token_url (or
		// base_url) is not the account's endpoint, or something between
		// moves it. Permanent: asking again meets the same answer.
		return nil, &connectors.APIError{Service: "netsuite", Op: tokenOp, StatusCode: resp.StatusCode, Message: c.Connection + ": " + refused}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.tokenError(resp, body, now)
	}
	var ans struct {
		AccessToken string          `json:"access_token"`
		TokenType   string          `json:"token_type"`
		ExpiresIn   json.RawMessage `json:"expires_in"` // NetSuite sends "3600", a string
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.AccessToken == "" {
		return nil, fmt.Errorf("netsuite %s: the answer has no access_token (%s)", tokenOp, erpkit.Truncate(string(body)))
	}
	secs, _ := strconv.Atoi(strings.Trim(string(ans.ExpiresIn), `" `))
	if secs <= 0 {
		secs = 3600
	}
	typ := ans.TokenType
	if typ == "" || strings.EqualFold(typ, "bearer") {
		typ = "Bearer"
	}
	return &oauth2.Token{AccessToken: ans.AccessToken, TokenType: typ, Expiry: now.Add(time.Duration(secs) * time.Second)}, nil
}

// tokenOp is the Op of the token endpoint's errors.
const tokenOp = "get token"

// tokenError reads a refused token request. The OAuth error codes (RFC
// 6749 5.2) say whose the fault is: invalid_client and invalid_grant (or
// a 401 or 403, whatever the code) refuse the credentials, the client id,
// the certificate or its mapping (revoked, expired): Unauthorized, naming
// the account. Any other 400 is a request NetSuite cannot take as it is
// (invalid_request, unsupported_grant_type, invalid_scope): its code and
// description are passed on, not read as bad credentials, and the failure
// is Permanent (retrying the same assertion cannot help; the operator
// mends the cause, then retries the run). invalid_request is also
// NetSuite's answer to an assertion whose iat or exp it cannot accept,
// which a worker's clock ahead of or behind the real time makes, so its
// message names the clock and the assertion's iat. 429 and 5xx are
// retried.
func (c *ClientCredentials) tokenError(resp *http.Response, body []byte, iat time.Time) error {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	msg := ""
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
		if e.Description != "" {
			msg += ": " + erpkit.Truncate(e.Description)
		}
	} else if m, _ := errorDetail(resp.StatusCode, resp.Header, body); m != "" {
		msg = m
	} else {
		msg = erpkit.Truncate(string(body))
	}
	status := resp.StatusCode
	switch {
	case status == http.StatusUnauthorized, status == http.StatusForbidden,
		status == http.StatusBadRequest && (e.Error == "invalid_client" || e.Error == "invalid_grant"):
		return &connectors.APIError{Service: "netsuite", Op: tokenOp, StatusCode: status, Credentials: true,
			Message: fmt.Sprintf("%s: the token endpoint refused the client assertion (%s): check %s, "+
				"and that the certificate's OAuth 2.0 client credentials mapping is not revoked or expired", c.Connection, msg, c.keys().List("client_id", "certificate_id"))}
	case status == http.StatusBadRequest:
		hint := "check " + c.keys().List("scope", "algorithm", "token_url") + ", then retry the run"
		if e.Error == "invalid_request" {
			hint = fmt.Sprintf("NetSuite answers invalid_request also to an assertion whose iat or exp it does not accept, which a wrong clock on the worker makes: "+
				"this worker's clock put iat at %s; if that is not the time now (UTC), set the worker host's clock right (NTP), then retry the run",
				iat.UTC().Format(time.RFC3339))
		}
		// Not Credentials: a 400 is Permanent.
		return &connectors.APIError{Service: "netsuite", Op: tokenOp, StatusCode: status,
			Message: fmt.Sprintf("%s: the token endpoint refused the token request (%s): %s", c.Connection, msg, hint)}
	}
	return &connectors.APIError{Service: "netsuite", Op: tokenOp, StatusCode: status, Message: msg,
		RetryAfter: connectors.ParseRetryAfter(resp.Header, time.Now())}
}
