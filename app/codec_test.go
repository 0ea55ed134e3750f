package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/secret"
)

func encryptionConfig(t *testing.T, endpoint bool) *config.Config {
	t.Helper()
	t.Setenv("TEST_APP_PAYLOAD_KEY", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	return &config.Config{
		Metrics: config.Metrics{Listen: "127.0.0.1:0"},
		Temporal: config.Temporal{Encryption: config.Encryption{
			KeyID: "k1", Keys: map[string]secret.Secret{"k1": secret.New("env:TEST_APP_PAYLOAD_KEY")},
			CodecEndpoint: endpoint, CodecOrigins: []string{"https://ui.example"},
		}},
	}
}

// serve and worker serve the Web UI's codec endpoint on the metrics
// listener only when temporal.encryption.codec_endpoint is set: it hands
// out plaintext.
func TestCodecEndpointOnTheMetricsListenerOnlyWhenEnabled(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		cfg := encryptionConfig(t, enabled)
		codec, err := PayloadCodec(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := converter.GetDefaultDataConverter().ToPayload("Ada Lovelace")
		enc, err := codec.Encode([]*commonpb.Payload{p})
		if err != nil {
			t.Fatal(err)
		}
		body := `{"payloads":[{"metadata":{"encoding":"` + base64.StdEncoding.EncodeToString(enc[0].Metadata["encoding"]) +
			`","encryption-key-id":"` + base64.StdEncoding.EncodeToString([]byte("k1")) + `"},"data":"` + base64.StdEncoding.EncodeToString(enc[0].Data) + `"}]}`
		addr, err := ServeMetrics(t.Context(), cfg, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+CodecPath+"/decode", strings.NewReader(body))
		req.Header.Set("Origin", "https://ui.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		_, _ = got.ReadFrom(resp.Body)
		resp.Body.Close()
		decoded := strings.Contains(got.String(), base64.StdEncoding.EncodeToString([]byte(`"Ada Lovelace"`)))
		if enabled && (resp.StatusCode != 200 || !decoded || resp.Header.Get("Access-Control-Allow-Origin") != "https://ui.example") {
			t.Errorf("enabled: %d %s %v", resp.StatusCode, got.String(), resp.Header)
		}
		if !enabled && (resp.StatusCode != http.StatusNotFound || decoded) {
			t.Errorf("not enabled, the endpoint answered %d %s", resp.StatusCode, got.String())
		}
	}
}

// A key that does not resolve or is not 32 bytes stops the client's
// options, naming the key's setting and not its value.
func TestClientOptionsRefuseABadPayloadKey(t *testing.T) {
	cfg := encryptionConfig(t, false)
	t.Setenv("TEST_APP_PAYLOAD_KEY", "c2hvcnQ=")
	_, err := ClientOptions(cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "temporal.encryption.keys.k1") || strings.Contains(err.Error(), "c2hvcnQ") {
		t.Fatalf("ClientOptions with a 5-byte key: %v", err)
	}
	off := &config.Config{}
	if opts, err := ClientOptions(off, slog.New(slog.DiscardHandler)); err != nil || len(opts.ConnectionOptions.DialOptions) != 1 {
		t.Fatalf("without encryption: %v, %d dial options, want only the start probe's", err, len(opts.ConnectionOptions.DialOptions))
	}
	if opts, err := ClientOptions(encryptionConfig(t, false), slog.New(slog.DiscardHandler)); err != nil || len(opts.ConnectionOptions.DialOptions) != 2 {
		t.Fatalf("with encryption: %v, %d dial options, want the start probe's and the codec's", err, len(opts.ConnectionOptions.DialOptions))
	}
}

// dev's codec endpoint answers the pages of its own Web UI, at 127.0.0.1,
// at localhost and at the names of dev.allowed_hosts (as the browser
// writes them: lower case, without a trailing dot), and refuses every
// other page (another port of the same host included).
func TestDevCodecEndpointAnswersItsUIOnly(t *testing.T) {
	codec, err := PayloadCodec(encryptionConfig(t, false))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ui, origin string
		want       int
		allowed    []string
	}{
		{"http://127.0.0.1:8233", "http://mylaptop.test:8233", http.StatusOK, []string{"MyLaptop.Test."}},
		{"http://127.0.0.1:8233", "http://[::1]:8233", http.StatusOK, []string{"[0:0::1]"}},
		{"http://127.0.0.1:8233", "http://other.test:8233", http.StatusForbidden, []string{"MyLaptop.Test."}},
		{"http://127.0.0.1:8233", "http://127.0.0.1:8233", http.StatusOK, nil},
		{"http://127.0.0.1:8233", "http://localhost:8233", http.StatusOK, nil},
		{"http://127.0.0.1:8233", "http://127.0.0.1:8234", http.StatusForbidden, nil},
		{"http://127.0.0.1:8233", "http://localhost.example:8233", http.StatusForbidden, nil},
		{"", "http://127.0.0.1:8233", http.StatusForbidden, nil}, // no UI
		{"http://127.0.0.1:8233", "", http.StatusOK, nil},        // not a browser page
	} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(t.Context())
		done := serveCodec(ctx, l, codec, c.ui, c.allowed)
		req, _ := http.NewRequest(http.MethodPost, "http://"+l.Addr().String()+CodecPath+"/decode", strings.NewReader(`{"payloads":[]}`))
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want || (c.want == http.StatusOK && resp.Header.Get("Access-Control-Allow-Origin") != c.origin) {
			t.Errorf("UI %q, page of %q: %d %v, want %d", c.ui, c.origin, resp.StatusCode, resp.Header, c.want)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
