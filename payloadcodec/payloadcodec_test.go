package payloadcodec_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/dealsync/dealsync/payloadcodec"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func mustNew(t *testing.T, id string, keys map[string][]byte) *payloadcodec.Codec {
	t.Helper()
	c, err := payloadcodec.New(id, keys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func payload(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func value(t *testing.T, p *commonpb.Payload) string {
	t.Helper()
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTripHidesThePlaintext(t *testing.T) {
	c := mustNew(t, "k1", map[string][]byte{"k1": key(1)})
	in := payload(t, "Ada Lovelace Ltd")
	enc, err := c.Encode([]*commonpb.Payload{in, in})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range enc {
		if bytes.Contains(p.GetData(), []byte("Lovelace")) || string(p.Metadata[converter.MetadataEncoding]) != payloadcodec.Encoding ||
			string(p.Metadata[payloadcodec.MetadataKeyID]) != "k1" {
			t.Fatalf("encoded payload shows its value or lacks its metadata: %v", p)
		}
	}
	if bytes.Equal(enc[0].Data, enc[1].Data) {
		t.Fatal("the same payload encrypted twice gave the same bytes: the nonce is not random")
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got := value(t, dec[0]); got != "Ada Lovelace Ltd" {
		t.Fatalf("round trip gave %q", got)
	}
	if string(dec[0].Metadata[converter.MetadataEncoding]) != "json/plain" {
		t.Fatalf("decoded metadata %v, want the original's", dec[0].Metadata)
	}
}

func TestPlaintextPayloadsPassThrough(t *testing.T) {
	c := mustNew(t, "k1", map[string][]byte{"k1": key(1)})
	in := payload(t, "written before encryption")
	dec, err := c.Decode([]*commonpb.Payload{in})
	if err != nil || value(t, dec[0]) != "written before encryption" {
		t.Fatalf("plaintext payload: %v, %v", dec, err)
	}
}

func TestTamperingIsDetected(t *testing.T) {
	// k2 is the same key under another id: only the binding of the id
	// to the ciphertext tells them apart.
	c := mustNew(t, "k1", map[string][]byte{"k1": key(1), "k2": key(1)})
	enc, err := c.Encode([]*commonpb.Payload{payload(t, "amount 100")})
	if err != nil {
		t.Fatal(err)
	}
	flipped := &commonpb.Payload{Metadata: enc[0].Metadata, Data: bytes.Clone(enc[0].Data)}
	flipped.Data[len(flipped.Data)-20] ^= 1
	if _, err := c.Decode([]*commonpb.Payload{flipped}); err == nil || !strings.Contains(err.Error(), "altered") {
		t.Fatalf("a flipped bit decoded: %v", err)
	}
	// The key id is bound to the ciphertext: naming another key of the
	// set fails too.
	relabelled := &commonpb.Payload{Metadata: map[string][]byte{
		converter.MetadataEncoding: []byte(payloadcodec.Encoding), payloadcodec.MetadataKeyID: []byte("k2"),
	}, Data: enc[0].Data}
	if _, err := c.Decode([]*commonpb.Payload{relabelled}); err == nil {
		t.Fatal("a payload relabelled with another key id decoded")
	}
}

func TestUnknownKeyIDNamesItAndTheSetting(t *testing.T) {
	enc, err := mustNew(t, "old", map[string][]byte{"old": key(1)}).Encode([]*commonpb.Payload{payload(t, "x")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mustNew(t, "new", map[string][]byte{"new": key(2)}).Decode(enc)
	if err == nil || !strings.Contains(err.Error(), `"old"`) || !strings.Contains(err.Error(), "temporal.encryption.keys") {
		t.Fatalf("error %v, want one naming key id old and temporal.encryption.keys", err)
	}
}

func TestRotationDecodesOldEncodesNew(t *testing.T) {
	before := mustNew(t, "2026a", map[string][]byte{"2026a": key(1)})
	old, err := before.Encode([]*commonpb.Payload{payload(t, "old run")})
	if err != nil {
		t.Fatal(err)
	}
	after := mustNew(t, "2026b", map[string][]byte{"2026a": key(1), "2026b": key(2)})
	dec, err := after.Decode(old)
	if err != nil || value(t, dec[0]) != "old run" {
		t.Fatalf("old key's payload after rotation: %v", err)
	}
	enc, err := after.Encode([]*commonpb.Payload{payload(t, "new run")})
	if err != nil {
		t.Fatal(err)
	}
	if id := string(enc[0].Metadata[payloadcodec.MetadataKeyID]); id != "2026b" {
		t.Fatalf("encoded with %q, want the new key 2026b", id)
	}
	// Decode-only (no key_id): nothing new is encrypted, old still reads.
	off := mustNew(t, "", map[string][]byte{"2026b": key(2)})
	plain, err := off.Encode([]*commonpb.Payload{payload(t, "plain")})
	if err != nil || string(plain[0].Metadata[converter.MetadataEncoding]) != "json/plain" {
		t.Fatalf("decode-only codec encoded: %v %v", plain, err)
	}
	if dec, err := off.Decode(enc); err != nil || value(t, dec[0]) != "new run" {
		t.Fatalf("decode-only codec: %v", err)
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	if _, err := payloadcodec.New("k1", map[string][]byte{"k1": key(1)[:16]}); err == nil {
		t.Fatal("a 16-byte key was taken for AES-256")
	}
	if _, err := payloadcodec.New("k9", map[string][]byte{"k1": key(1)}); err == nil {
		t.Fatal("a key id without its key was taken")
	}
}

func TestHandlerDecodesForTheUIsOriginOnly(t *testing.T) {
	c := mustNew(t, "k1", map[string][]byte{"k1": key(1)})
	enc, err := c.Encode([]*commonpb.Payload{payload(t, "Ada")})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"payloads":[{"metadata":{"encoding":"` + b64(enc[0].Metadata["encoding"]) + `","encryption-key-id":"` + b64(enc[0].Metadata[payloadcodec.MetadataKeyID]) +
		`"},"data":"` + b64(enc[0].Data) + `"}]}`
	h := c.Handler("/codec", []string{"http://127.0.0.1:8233"})
	req := httptest.NewRequest(http.MethodPost, "/codec/decode", strings.NewReader(body))
	req.Header.Set("Origin", "http://127.0.0.1:8233")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), b64([]byte(`"Ada"`))) {
		t.Fatalf("decode: %d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" {
		t.Fatalf("UI origin not allowed: %v", rec.Header())
	}
	req = httptest.NewRequest(http.MethodPost, "/codec/decode", strings.NewReader(body))
	req.Header.Set("Origin", "https://evil.example")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || rec.Header().Get("Access-Control-Allow-Origin") != "" || strings.Contains(rec.Body.String(), b64([]byte(`"Ada"`))) {
		t.Fatalf("another origin's page (or a DNS-rebound one) was answered: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	// The UI's preflight (it sends JSON with its namespace) is answered.
	req = httptest.NewRequest(http.MethodOptions, "/codec/decode?preserveStorageRefs=true", nil)
	req.Header.Set("Origin", "http://127.0.0.1:8233")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" ||
		!strings.Contains(rec.Header().Get("Access-Control-Allow-Headers"), "X-Namespace") {
		t.Fatalf("preflight: %d %v", rec.Code, rec.Header())
	}
	// Only POST decodes.
	req = httptest.NewRequest(http.MethodGet, "/codec/decode", strings.NewReader(body))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code == 200 {
		t.Fatalf("GET decoded: %s", rec.Body)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
