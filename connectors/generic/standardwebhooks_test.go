package generic

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/sharedfiles"
)

// The vector published in the Standard Webhooks library tests (Go, Python
// and JS), inlined so that it always runs.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecMsgID  = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	// vecBadSig is the header the Go library's test treats as invalid.
	vecBadSig = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
)

var vecTime = time.Unix(vecTS, 0)

func vecHeader(sig string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", vecMsgID)
	h.Set("webhook-timestamp", strconv.Itoa(vecTS))
	h.Set("webhook-signature", sig)
	return h
}

func TestSignPublishedVector(t *testing.T) {
	got, err := Sign(vecSecret, vecMsgID, vecTime, []byte(vecBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != vecSig {
		t.Fatalf("Sign = %q, want %q", got, vecSig)
	}
}

func TestVerifyPublishedVector(t *testing.T) {
	if err := Verify(vecSecret, vecHeader(vecSig), []byte(vecBody), vecTime, DefaultTolerance); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestPublishedVectorFromSharedFile(t *testing.T) {
	body := sharedfiles.Webhook(t, "standard-webhooks-vector-body.txt")
	if len(body) != 20 || !bytes.Equal(body, []byte(vecBody)) {
		t.Fatalf("shared vector body is %d bytes %q, inlined constant is %d bytes %q", len(body), body, len(vecBody), vecBody)
	}
	got, err := Sign(vecSecret, vecMsgID, vecTime, body)
	if err != nil {
		t.Fatal(err)
	}
	if got != vecSig {
		t.Fatalf("Sign(shared body) = %q, want %q", got, vecSig)
	}
	if err := Verify(vecSecret, vecHeader(vecSig), body, vecTime, DefaultTolerance); err != nil {
		t.Fatalf("Verify(shared body): %v", err)
	}
}

// The spec's example body comes without a secret: check a round trip with our
// own, and that the generic parser turns this non-dealsync event away.
func TestSpecExampleBodyFromSharedFile(t *testing.T) {
	body := sharedfiles.Webhook(t, "standard-webhooks-spec-example-body.json")
	const id, ts = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", 1674087231
	req, err := http.NewRequest(http.MethodPost, "https://sync.example.com/webhooks/generic", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := SignRequest(req, vecSecret, id, time.Unix(ts, 0), body); err != nil {
		t.Fatal(err)
	}
	if err := Verify(vecSecret, req.Header, body, time.Unix(ts+60, 0), 0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	tampered := append(bytes.Clone(body[:len(body)-1]), ' ', '}')
	if err := Verify(vecSecret, req.Header, tampered, time.Unix(ts, 0), 0); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Fatalf("Verify(tampered) = %v, want ErrUnauthorized", err)
	}
	_, err = ParseEvents(body, id)
	if !errors.Is(err, connectors.ErrMalformed) || !strings.Contains(err.Error(), "deal: is required") {
		t.Fatalf("ParseEvents(spec example) = %v, want ErrMalformed naming deal", err)
	}
}

func TestVerifyMultiSignatureHeader(t *testing.T) {
	h := vecHeader("v1,bad v2,bad " + vecSig + " v1,bad")
	if err := Verify(vecSecret, h, []byte(vecBody), vecTime, DefaultTolerance); err != nil {
		t.Fatalf("Verify(multi) = %v, want nil", err)
	}
	// The same list spread over several header lines is accepted too.
	h = vecHeader("v1,bad")
	h.Add("webhook-signature", vecSig)
	if err := Verify(vecSecret, h, []byte(vecBody), vecTime, DefaultTolerance); err != nil {
		t.Fatalf("Verify(multi-line) = %v, want nil", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	otherSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another-secret-of-32-bytes-long!"))
	altered := []byte(vecBody)
	altered[len(altered)-2]++ // one byte of the number changes

	without := func(name string) http.Header {
		h := vecHeader(vecSig)
		h.Del(name)
		return h
	}
	cases := []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		now    time.Time
		want   string
	}{
		{"published invalid signature", vecSecret, vecHeader(vecBadSig), []byte(vecBody), vecTime, "no matching signature"},
		{"stale by 6 minutes", vecSecret, vecHeader(vecSig), []byte(vecBody), vecTime.Add(6 * time.Minute), "timestamp too old: 6m before now (tolerance 5m)"},
		{"6 minutes in the future", vecSecret, vecHeader(vecSig), []byte(vecBody), vecTime.Add(-6 * time.Minute), "timestamp too new: 6m ahead of now (tolerance 5m)"},
		{"missing webhook-id", vecSecret, without("webhook-id"), []byte(vecBody), vecTime, "missing webhook-id header"},
		{"missing webhook-timestamp", vecSecret, without("webhook-timestamp"), []byte(vecBody), vecTime, "missing webhook-timestamp header"},
		{"missing webhook-signature", vecSecret, without("webhook-signature"), []byte(vecBody), vecTime, "missing webhook-signature header"},
		{"no headers at all", vecSecret, http.Header{}, []byte(vecBody), vecTime, "missing webhook-id header"},
		{"empty signature header", vecSecret, vecHeader(" "), []byte(vecBody), vecTime, "missing webhook-signature header"},
		{"wrong secret", otherSecret, vecHeader(vecSig), []byte(vecBody), vecTime, "no matching signature"},
		{"body altered by one byte", vecSecret, vecHeader(vecSig), altered, vecTime, "no matching signature"},
		{"body with a trailing newline", vecSecret, vecHeader(vecSig), []byte(vecBody + "\n"), vecTime, "no matching signature"},
		{"only other versions", vecSecret, vecHeader("v1a,abc v2," + strings.TrimPrefix(vecSig, "v1,")), []byte(vecBody), vecTime, "no matching signature"},
		{"signature without version", vecSecret, vecHeader(strings.TrimPrefix(vecSig, "v1,")), []byte(vecBody), vecTime, "no matching signature"},
		{"milliseconds timestamp", vecSecret, func() http.Header {
			h := vecHeader(vecSig)
			h.Set("webhook-timestamp", strconv.Itoa(vecTS)+"000")
			return h
		}(), []byte(vecBody), vecTime, "timestamp too new: webhook-timestamp is after year 9999: it looks like milliseconds; the Standard Webhooks timestamp is in seconds"},
		{"non-numeric timestamp", vecSecret, func() http.Header {
			h := vecHeader(vecSig)
			h.Set("webhook-timestamp", "2021-02-25T15:02:10Z")
			return h
		}(), []byte(vecBody), vecTime, "invalid webhook-timestamp header"},
		{"negative timestamp", vecSecret, func() http.Header {
			h := vecHeader(vecSig)
			h.Set("webhook-timestamp", "-1")
			return h
		}(), []byte(vecBody), vecTime, "invalid webhook-timestamp header"},
		{"huge timestamp", vecSecret, func() http.Header {
			h := vecHeader(vecSig)
			h.Set("webhook-timestamp", "999999999999999999")
			return h
		}(), []byte(vecBody), vecTime, "timestamp too new"},
		{"different message id", vecSecret, func() http.Header {
			h := vecHeader(vecSig)
			h.Set("webhook-id", vecMsgID+"x")
			return h
		}(), []byte(vecBody), vecTime, "no matching signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.secret, c.header, c.body, c.now, DefaultTolerance)
			if !errors.Is(err, connectors.ErrUnauthorized) {
				t.Fatalf("Verify = %v, want an error wrapping ErrUnauthorized", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Verify = %q, want it to say %q", err, c.want)
			}
			for _, s := range []string{vecSecret, strings.TrimPrefix(vecSecret, "whsec_"), otherSecret, strings.TrimPrefix(otherSecret, "whsec_")} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}

func TestVerifyToleranceBoundary(t *testing.T) {
	body := []byte(vecBody)
	for _, c := range []struct {
		offset time.Duration
		ok     bool
	}{
		{5 * time.Minute, true},
		{-5 * time.Minute, true},
		{5*time.Minute + time.Second, false},
		{-5*time.Minute - time.Second, false},
	} {
		err := Verify(vecSecret, vecHeader(vecSig), body, vecTime.Add(c.offset), 5*time.Minute)
		if c.ok && err != nil {
			t.Errorf("now = ts%+v: %v, want accepted", c.offset, err)
		}
		if !c.ok && !errors.Is(err, connectors.ErrUnauthorized) {
			t.Errorf("now = ts%+v: %v, want ErrUnauthorized", c.offset, err)
		}
	}
	// A wider tolerance lets the 6-minute-old delivery through.
	if err := Verify(vecSecret, vecHeader(vecSig), body, vecTime.Add(6*time.Minute), 10*time.Minute); err != nil {
		t.Errorf("tolerance 10m, 6m old: %v", err)
	}
	// tolerance <= 0 means the default, never "no check".
	if err := Verify(vecSecret, vecHeader(vecSig), body, vecTime.Add(6*time.Minute), 0); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Errorf("tolerance 0, 6m old: %v, want ErrUnauthorized", err)
	}
}

func TestSecretEncodings(t *testing.T) {
	bare := strings.TrimPrefix(vecSecret, "whsec_")
	got, err := Sign(bare, vecMsgID, vecTime, []byte(vecBody))
	if err != nil || got != vecSig {
		t.Fatalf("Sign(without whsec_) = %q, %v; want %q", got, err, vecSig)
	}
	if err := Verify(bare, vecHeader(vecSig), []byte(vecBody), vecTime, 0); err != nil {
		t.Fatalf("Verify(without whsec_): %v", err)
	}

	// A 31-byte key has padding in std base64; raw (unpadded) must agree.
	key := []byte("0123456789abcdef0123456789abcde")
	padded := "whsec_" + base64.StdEncoding.EncodeToString(key)
	raw := "whsec_" + base64.RawStdEncoding.EncodeToString(key)
	if !strings.HasSuffix(padded, "=") || strings.HasSuffix(raw, "=") {
		t.Fatalf("test setup: %q / %q", padded, raw)
	}
	a, err := Sign(padded, "msg_1", vecTime, []byte(vecBody))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Sign(raw, "msg_1", vecTime, []byte(vecBody))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("padded and unpadded secrets sign differently: %q vs %q", a, b)
	}
	h := vecHeader(a)
	h.Set("webhook-id", "msg_1")
	if err := Verify(raw, h, []byte(vecBody), vecTime, 0); err != nil {
		t.Fatalf("Verify(unpadded secret): %v", err)
	}
	// An unpadded signature in the header is accepted as well.
	h.Set("webhook-signature", strings.TrimRight(a, "="))
	if err := Verify(padded, h, []byte(vecBody), vecTime, 0); err != nil {
		t.Fatalf("Verify(unpadded signature): %v", err)
	}
}

func TestBadSecretIsAConfigError(t *testing.T) {
	for _, s := range []string{"", "whsec_", "whsec_not*base64!", "my secret"} {
		if _, err := Sign(s, vecMsgID, vecTime, []byte(vecBody)); err == nil {
			t.Errorf("Sign(%q) succeeded", s)
		} else if bare := strings.TrimPrefix(s, "whsec_"); bare != "" && strings.Contains(err.Error(), bare) {
			t.Errorf("Sign error %q contains the secret", err)
		}
		err := Verify(s, vecHeader(vecSig), []byte(vecBody), vecTime, 0)
		if err == nil || errors.Is(err, connectors.ErrUnauthorized) {
			t.Errorf("Verify(secret %q) = %v, want a configuration error (not ErrUnauthorized)", s, err)
		}
	}
	if _, err := Sign(vecSecret, "", vecTime, []byte(vecBody)); err == nil {
		t.Error("Sign with an empty message id succeeded")
	}
}

func TestSvixHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("svix-id", vecMsgID)
	h.Set("svix-timestamp", strconv.Itoa(vecTS))
	h.Set("svix-signature", vecSig)
	if err := Verify(vecSecret, h, []byte(vecBody), vecTime, 0); err != nil {
		t.Fatalf("Verify(svix-*): %v", err)
	}
	h.Del("svix-signature")
	err := Verify(vecSecret, h, []byte(vecBody), vecTime, 0)
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "missing svix-signature header") {
		t.Fatalf("Verify(svix without signature) = %v", err)
	}
}

func TestVerifyNonCanonicalHeaderKeys(t *testing.T) {
	h := http.Header{
		"webhook-id":        {vecMsgID},
		"webhook-timestamp": {strconv.Itoa(vecTS)},
		"webhook-signature": {vecSig},
	}
	if err := Verify(vecSecret, h, []byte(vecBody), vecTime, 0); err != nil {
		t.Fatalf("Verify(lower-case map keys): %v", err)
	}
}

func TestSignRequest(t *testing.T) {
	body := []byte(vecBody)
	req, err := http.NewRequest(http.MethodPost, "https://sync.example.com/webhooks/generic", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := SignRequest(req, vecSecret, vecMsgID, vecTime, body); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"webhook-id":        vecMsgID,
		"webhook-timestamp": "1614265330",
		"webhook-signature": vecSig,
	} {
		if got := req.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if err := Verify(vecSecret, req.Header, body, vecTime.Add(time.Minute), 0); err != nil {
		t.Fatalf("Verify(SignRequest): %v", err)
	}
	if err := SignRequest(req, "whsec_***", vecMsgID, vecTime, body); err == nil {
		t.Fatal("SignRequest with a bad secret succeeded")
	}
}
