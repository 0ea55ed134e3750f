package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors/generic"
)

// `webhook send` needs the connection's secret and the intake's address,
// not its mapping: while a mapping file does not compile (being edited),
// it still signs and sends the delivery, where it exited 2 with the
// mapping's error. The rest of the config is checked as before: a
// connection naming a target that does not exist still stops it, and
// `config check` still refuses the broken mapping.
func TestWebhookSendWithAMappingThatDoesNotCompile(t *testing.T) {
	ctx := context.Background()
	const secret = "whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM="
	dir := t.TempDir()
	broken := writeFile(t, filepath.Join(dir, "std.yaml"), "name: std\ninvoice:\n  memo: deal.nme\n")
	body := `{"event_id":"evt_1","deal":{"id":"D-1","stage":"closed_won","amount":"10.00","currency":"EUR"}}`
	deal := writeFile(t, filepath.Join(dir, "deal.json"), body)

	var (
		mu       sync.Mutex
		received []string // the verification of each delivery: "" when it verified
		bodies   []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		// Judged at the moment it was signed: no clock in the test.
		ts, err := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
		verdict := "no webhook-timestamp"
		if err == nil {
			verdict = ""
			if err := generic.Verify(secret, r.Header, b, time.Unix(ts, 0), 0); err != nil {
				verdict = err.Error()
			}
		}
		mu.Lock()
		received, bodies = append(received, verdict), append(bodies, string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"results":[{"event_id":"evt_1","duplicate":false}]}`)
	}))
	defer srv.Close()

	yaml := fmt.Sprintf(`
log: {level: error}
mappings: {files: [%q], reload_interval: 0}
connections:
  shop:
    source: {type: generic, secret: %q}
    target: sandbox
    mapping: std
`, broken, secret)
	cfg := writeConfig(t, yaml)

	out, err := runOut(ctx, "--config", cfg, "webhook", "send", "--connection", "shop", "--url", srv.URL+"/webhooks/shop", deal)
	if err != nil {
		t.Fatalf("webhook send: exit %d, %v\n%s", exitCode(err), err, out)
	}
	if !strings.Contains(out, "200 OK") {
		t.Errorf("output does not show the intake's answer:\n%s", out)
	}
	mu.Lock()
	if len(received) != 1 || received[0] != "" || bodies[0] != body {
		t.Errorf("deliveries %q with bodies %q; want the file's body, once, signed with the connection's secret", received, bodies)
	}
	mu.Unlock()

	// The mapping is still an error where it matters.
	if out, err := runOut(ctx, "--config", cfg, "config", "check"); exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), "nme") {
		t.Errorf("config check: exit %d, %v, want 2 naming the mapping's problem\n%s", exitCode(err), err, out)
	}
	// And the rest of the config is checked as before.
	bad := writeConfig(t, yaml+"  other:\n    source: {type: generic, secret: "+strconv.Quote(secret)+"}\n    target: nowhere\n")
	if out, err := runOut(ctx, "--config", bad, "webhook", "send", "--connection", "shop", "--url", srv.URL+"/webhooks/shop", deal); exitCode(err) != 2 ||
		err == nil || !strings.Contains(err.Error(), `target "nowhere" is not defined`) {
		t.Errorf("webhook send with an undefined target: exit %d, %v, want 2 naming it\n%s", exitCode(err), err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(received) != 1 {
		t.Errorf("%d deliveries posted, want the first only", len(received))
	}
}

// A connection the config lacks is named with those it has; without
// --config, the message says only dev's demo is there and to give the file.
func TestWebhookSendToAConnectionTheConfigLacks(t *testing.T) {
	ctx := context.Background()
	deal := writeFile(t, filepath.Join(t.TempDir(), "deal.json"), `{"event_id":"evt_1","deal":{"id":"D-1","stage":"closed_won"}}`)
	_, err := runOut(ctx, "webhook", "send", "--connection", "acme", deal)
	if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), `no connection "acme" in the config (defined: demo)`) ||
		!strings.Contains(err.Error(), "no --config was given") {
		t.Fatalf("without --config: %v", err)
	}
	cfg := writeFile(t, filepath.Join(t.TempDir(), "dealsync.yaml"), "connections:\n  shop:\n    source: {type: generic, secret: x}\n    target: sandbox\n")
	_, err = runOut(ctx, "--config", cfg, "webhook", "send", "--connection", "acme", deal)
	if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), "(defined: demo, shop)") || strings.Contains(err.Error(), "no --config") {
		t.Fatalf("with --config: %v", err)
	}
}

// --sample is FILE's alternative, for a generic source only: with FILE,
// without either, or to a connection of another CRM, it is a usage error
// that says what to give; nothing is sent.
func TestWebhookSendSampleIsFilesAlternative(t *testing.T) {
	ctx := context.Background()
	sent := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent++ }))
	t.Cleanup(srv.Close)
	deal := writeFile(t, filepath.Join(t.TempDir(), "deal.json"), `{"event_id":"evt_1","deal":{"id":"D-1","stage":"closed_won"}}`)
	cfg := writeFile(t, filepath.Join(t.TempDir(), "dealsync.yaml"), "connections:\n  pd:\n    source: {type: pipedrive, webhook_user: u, webhook_password: p, accounts: {\"1\": {api_token: t}}}\n    target: sandbox\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"webhook", "send", "--url", srv.URL, "--sample", deal}, "give FILE or --sample, not both"},
		{[]string{"webhook", "send", "--url", srv.URL}, "give the delivery's FILE, or --sample"},
		{[]string{"--config", cfg, "webhook", "send", "--connection", "pd", "--url", srv.URL, "--sample"}, `connection "pd"'s source is pipedrive`},
		// The tour's file, away from the repository: the built-in one is
		// named.
		{[]string{"webhook", "send", "--url", srv.URL, filepath.Join(t.TempDir(), "examples", "closed-won.json")}, "dealsync's sample closed-won deal is built in: --sample sends it"},
	} {
		if out, err := runOut(ctx, c.args...); exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: exit %d, %v, want 2 saying %q\n%s", c.args, exitCode(err), err, c.want, out)
		}
	}
	if sent != 0 {
		t.Errorf("%d deliveries sent", sent)
	}
}

// A delivery that finds nothing listening (dealsync dev not started, or
// stopped) says so, and which address it tried: the config's
// intake.listen, or --url.
func TestWebhookSendToNothingListeningSaysSo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx := context.Background()
	t.Setenv("DEALSYNC_INTAKE_LISTEN", addr)
	_, err = runOut(ctx, "webhook", "send", "--sample")
	if want := "(nothing listens there: is dealsync dev or dealsync serve running? this command posts to intake.listen (DEALSYNC_INTAKE_LISTEN) of the config, " + addr + ")"; exitCode(err) != 1 || err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("exit %d, %v; want 1 ending %q", exitCode(err), err, want)
	}
	_, err = runOut(ctx, "webhook", "send", "--url", "http://"+addr+"/webhooks/demo", "--sample")
	if err == nil || !strings.HasSuffix(err.Error(), "this command posts to --url)") {
		t.Errorf("--url: %v", err)
	}
	// Another failure says nothing of the kind.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler) // the connection is closed unanswered
	}))
	t.Cleanup(srv.Close)
	if _, err = runOut(ctx, "webhook", "send", "--url", srv.URL, "--sample"); err == nil || strings.Contains(err.Error(), "nothing listens") {
		t.Errorf("a connection closed unanswered: %v", err)
	}
}

// A connection a proxy refused (HTTP_PROXY of a staging URL) is no
// intake that does not listen: its address is the proxy's.
func TestNothingListensIsTheIntakesRefusal(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	if !nothingListens(postError(&url.Error{Op: "Post", URL: "http://127.0.0.1:9/webhooks/demo", Err: refused})) {
		t.Error("the intake's address refused: want the hint")
	}
	viaProxy := &url.Error{Op: "Post", URL: "http://intake.internal/webhooks/demo", Err: &net.OpError{Op: "proxyconnect", Net: "tcp", Err: refused}}
	if nothingListens(postError(viaProxy)) {
		t.Error("the proxy refused: want no hint of the intake")
	}
}
