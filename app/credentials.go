package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/dealsync/dealsync/secret"
)

// credentialReread is how often a rotated Temporal credential (an API key
// in a file, a client certificate) is looked for: a process keeps
// connecting with the new one after a rotation, without a restart.
var credentialReread = time.Minute

// apiKeySource returns the API key key gives (secret.Reveal re-reads a
// file: reference), read again at most every credentialReread; a read that
// fails keeps the last key, so a file being replaced does not stop the
// process.
func apiKeySource(key secret.Secret, first string) func(context.Context) (string, error) {
	var mu sync.Mutex
	current, readAt := first, time.Now()
	return func(context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(readAt) >= credentialReread {
			readAt = time.Now()
			if v, err := key.Reveal(); err == nil && v != "" {
				current = v
			}
		}
		return current, nil
	}
}

// certReloader gives the client certificate of cert and key files for
// each TLS handshake, loaded again when the certificate file changed (a
// rotation by cert-manager, say), looked at at most every
// credentialReread. A load that fails keeps the last pair.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert, r.checked = &cert, time.Now()
	if fi, err := os.Stat(certFile); err == nil {
		r.modTime = fi.ModTime()
	}
	return r, nil
}

// GetClientCertificate implements tls.Config.GetClientCertificate.
func (r *certReloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= credentialReread {
		r.checked = time.Now()
		if fi, err := os.Stat(r.certFile); err == nil && !fi.ModTime().Equal(r.modTime) {
			if cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile); err == nil {
				r.cert, r.modTime = &cert, fi.ModTime()
			}
		}
	}
	if r.cert == nil {
		return nil, fmt.Errorf("temporal.tls: no client certificate loaded from %s", r.certFile)
	}
	return r.cert, nil
}
