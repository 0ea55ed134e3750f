package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dealsync/dealsync/secret"
)

// A Temporal API key rotated in its file is read again (every
// credentialReread), without a restart: the key was read once at start,
// and every call after a rotation was refused. A file that cannot be read
// meanwhile keeps the last key.
func TestAPIKeyIsReadAgainFromItsFile(t *testing.T) {
	defer func(d time.Duration) { credentialReread = d }(credentialReread)
	credentialReread = 0
	path := filepath.Join(t.TempDir(), "api-key")
	write := func(v string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("key-1")
	key := apiKeySource(secret.New("file:"+path), "key-1")
	ctx := context.Background()
	if got, _ := key(ctx); got != "key-1" {
		t.Fatalf("key %q, want key-1", got)
	}
	write("key-2")
	if got, _ := key(ctx); got != "key-2" {
		t.Errorf("after the rotation: key %q, want key-2", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got, err := key(ctx); got != "key-2" || err != nil {
		t.Errorf("file gone: key %q, %v; want the last one", got, err)
	}
}

// A client certificate rotated in its files is used for the next
// handshake; files being replaced (unreadable a moment) keep the last
// pair.
func TestClientCertificateIsLoadedAgainWhenItsFileChanges(t *testing.T) {
	defer func(d time.Duration) { credentialReread = d }(credentialReread)
	credentialReread = 0
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	issue := func(serial int64, at time.Time) {
		t.Helper()
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "dealsync"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(certFile, at, at); err != nil {
			t.Fatal(err)
		}
	}
	serial := func(c *tls.Certificate) int64 {
		t.Helper()
		x, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return x.SerialNumber.Int64()
	}
	start := time.Now().Add(-time.Minute)
	issue(1, start)
	r, err := newCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := r.GetClientCertificate(nil); err != nil || serial(c) != 1 {
		t.Fatalf("first certificate: %v", err)
	}
	issue(2, start.Add(time.Second))
	if c, err := r.GetClientCertificate(nil); err != nil || serial(c) != 2 {
		t.Errorf("after the rotation: serial %d, %v; want 2", serial(c), err)
	}
	if err := os.WriteFile(keyFile, []byte("half-written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(certFile, start.Add(2*time.Second), start.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if c, err := r.GetClientCertificate(nil); err != nil || serial(c) != 2 {
		t.Errorf("a key file being replaced: serial %d, %v; want the last pair", serial(c), err)
	}
}
