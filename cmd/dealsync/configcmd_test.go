package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"

	"github.com/dealsync/dealsync/workflows"
)

// runOut executes the CLI with args and returns what it printed.
func runOut(ctx context.Context, args ...string) (string, error) {
	root := newRoot()
	root.SetArgs(args)
	var out bytes.Buffer
	root.SetOut(&out)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	return writeFile(t, filepath.Join(t.TempDir(), "dealsync.yaml"), yaml)
}

// `config check` builds what serve and worker would, says what the config
// sets up, and exits 0, 1 (a part cannot be built) or 2 (invalid config).
func TestConfigCheck(t *testing.T) {
	ctx := context.Background()
	mappings := t.TempDir()
	writeFile(t, filepath.Join(mappings, "net14.yaml"), "name: net14\ninvoice:\n  due_date: add_days(invoice.issue_date, 14)\n")
	t.Setenv("SHOP_SECRET", "whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM=")
	good := writeConfig(t, fmt.Sprintf(`
temporal: {address: "temporal.internal:7233", namespace: sales}
intake: {public_base_url: "https://hooks.example.com"}
mappings: {dir: %q}
targets:
  erp: {type: http, base_url: "https://erp.example.com/api", lookup_invoices: true}
connections:
  shop:
    source: {type: generic, secret: env:SHOP_SECRET}
    target: erp
    mapping: net14
    trigger: {won_stages: [won]}
  listen:
    source: {type: generic, secret: env:SHOP_SECRET}
    target: erp
    settle_time: 20s
    linger: 10m
`, mappings))
	out, err := runOut(ctx, "--config", good, "config", "check")
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	for _, want := range []string{
		"temporal.internal:7233, namespace sales, task queue dealsync",
		"https://hooks.example.com/webhooks/<connection>",
		"target erp", "connection shop", "generic source → target erp; won stages won; mapping net14 (",
		// A generic connection's settle time and linger are said; the
		// built-in mapping is named as runs list names it.
		"; mapping default (", "; runs settle 20s; invoiced runs linger 10m\n",
		// Durations as the config writes them, not Go's 1m0s.
		"retried from 1s up to 1m apart",
		"\nok\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	if strings.Contains(out, "warning") {
		t.Errorf("a warning without a HubSpot connection:\n%s", out)
	}

	// A mapping file that does not compile makes the config invalid: exit
	// 2, with the file, line and column.
	writeFile(t, filepath.Join(mappings, "net14.yaml"), "name: net14\ninvoice:\n  due_date: add_days(invoice.issue_date, \"x\")\n")
	out, err = runOut(ctx, "--config", good, "config", "check")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "net14.yaml:3:") || strings.Contains(out, "\nok\n") {
		t.Errorf("a mapping that does not compile: exit %d, %v\n%s", exitCode(err), err, out)
	}

	bad := writeConfig(t, "connections:\n  shop:\n    source: {type: generic, secret: env:DEALSYNC_TEST_UNSET_SECRET}\n    target: nowhere\n")
	if _, err := runOut(ctx, "--config", bad, "config", "check"); exitCode(err) != 2 || !strings.Contains(err.Error(), "connections.shop.target") {
		t.Errorf("an invalid config: exit %d, %v", exitCode(err), err)
	}

	t.Setenv("HS_SECRET", "hubspot-client-secret")
	hs := writeConfig(t, `
connections:
  hs:
    target: sandbox
    trigger: {won_stages: [closedwon]}
    source:
      type: hubspot
      client_secret: env:HS_SECRET
      accounts:
        "62515": {access_token: env:HS_SECRET}
`)
	out, err = runOut(ctx, "--config", hs, "config", "check", "--dev")
	if err != nil || !strings.Contains(out, "intake.public_base_url is not set") {
		t.Errorf("a HubSpot connection without public_base_url: %v\n%s", err, out)
	}

	out, err = runOut(ctx, "config", "check", "--dev")
	if err != nil || !strings.Contains(out, "connection demo") || !strings.Contains(out, "target sandbox") {
		t.Errorf("--dev: %v\n%s", err, out)
	}
}

// A namespace without dealsync's search attributes is caught before any
// webhook fails on it: `config check --temporal` and `worker` stop with
// the commands that register them, the intake is not ready and says why;
// once they are registered, all three go ahead.
func TestNamespaceWithoutSearchAttributes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startTemporal(ctx, t, true) // no search attributes
	listen := freeAddr(t)
	t.Setenv("SHOP_SECRET", "whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQ=")
	f := writeConfig(t, fmt.Sprintf(`
log: {level: error}
temporal: {address: %q}
intake: {listen: %q}
targets:
  erp: {type: http, base_url: "http://127.0.0.1:9"}
connections:
  shop:
    source: {type: generic, secret: env:SHOP_SECRET}
    target: erp
`, srv.FrontendAddress(), listen))

	_, err := runOut(ctx, "--config", f, "config", "check", "--temporal")
	// The commands reach this frontend, not the CLI's default address.
	register := "temporal operator search-attribute create --address " + srv.FrontendAddress() + " --namespace default --name DealId --type Keyword"
	if exitCode(err) != 1 || !strings.Contains(err.Error(), register) || !strings.Contains(err.Error(), "Amount (Double)") {
		t.Fatalf("config check --temporal: exit %d, %v", exitCode(err), err)
	}
	if err := run(ctx, "--config", f, "worker"); err == nil || !strings.Contains(err.Error(), register) {
		t.Fatalf("worker started on a namespace without the search attributes: %v", err)
	}
	// The runs commands' filters name dealsync's attributes: the namespace
	// lacks them, which is not the query's fault (exit 1, not 2).
	lacks := `namespace "default" lacks dealsync's search attributes (Temporal refused the filter: invalid query: invalid search attribute: `
	if _, err := runOut(ctx, "--config", f, "runs", "list", "--query", `DealId = "x"`); exitCode(err) != 1 || !strings.Contains(err.Error(), lacks+"DealId") ||
		!strings.Contains(err.Error(), "dealsync config check --temporal prints the commands") {
		t.Errorf("runs list --query DealId on a namespace without the search attributes: exit %d, %v", exitCode(err), err)
	}
	if _, err := runOut(ctx, "--config", f, "runs", "retry", "--dry-run"); exitCode(err) != 1 || !strings.Contains(err.Error(), lacks) {
		t.Errorf("runs retry on a namespace without the search attributes: exit %d, %v", exitCode(err), err)
	}

	defer startCommand(ctx, t, "--config", f, "serve")()
	readyz := func() (int, string) {
		for ctx.Err() == nil {
			resp, err := http.Get("http://" + listen + "/readyz")
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(b)
		}
		t.Fatal("the intake never answered")
		return 0, ""
	}
	if status, body := readyz(); status != http.StatusServiceUnavailable || !strings.Contains(body, "DealId") {
		t.Errorf("readyz without the search attributes: %d %s", status, body)
	} else if strings.Contains(body, srv.FrontendAddress()) {
		t.Errorf("readyz, on the webhooks' port, shows the frontend's address: %s", body)
	}

	if _, err := temporalClient(ctx, t, srv).OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: "default", SearchAttributes: workflows.SearchAttributeTypes(),
	}); err != nil {
		t.Fatal(err)
	}
	// The frontend's search-attribute cache refreshes on its own schedule:
	// wait for the check to pass, bounded by ctx.
	for {
		out, err := runOut(ctx, "--config", f, "config", "check", "--temporal")
		if err == nil && strings.Contains(out, "namespace default has dealsync's search attributes") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("config check --temporal after registering: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if status, body := readyz(); status != http.StatusOK {
		t.Errorf("readyz after registering: %d %s", status, body)
	}
}

// A previous_ secret without the current one beside it is an invalid
// config (exit 2) at the current key's path, not a source that fails to
// build.
func TestConfigCheckPreviousSecretNeedsTheCurrentOne(t *testing.T) {
	cfg := writeConfig(t, `
targets:
  erp: {type: http, base_url: "https://erp.example.com"}
connections:
  hs:
    source:
      type: hubspot
      previous_client_secret: old
      accounts:
        "62515": {access_token: pat, previous_client_secret: old-a}
    target: erp
  sf:
    source:
      type: salesforce
      previous_endpoint_token: old
      accounts:
        "00D5w000004qGTOEA2": {instance_url: "https://a.my.salesforce.com", client_id: c, client_secret: s}
    target: erp
  pd:
    source:
      type: pipedrive
      previous_webhook_user: dealsync
      previous_webhook_password: old
      accounts:
        "6083095": {api_token: t}
    target: erp
`)
	out, err := runOut(context.Background(), "--config", cfg, "config", "check")
	if exitCode(err) != 2 {
		t.Fatalf("exit %d (%v), want 2\n%s", exitCode(err), err, out)
	}
	for _, want := range []string{
		"connections.hs.source.client_secret: is required when previous_client_secret is set",
		"connections.hs.source.accounts.62515.client_secret: is required when previous_client_secret is set",
		"connections.sf.source.endpoint_token: is required when previous_endpoint_token is set",
		"connections.pd.source.webhook_user: is required when previous_webhook_user is set",
		"connections.pd.source.webhook_password: is required when previous_webhook_password is set",
	} {
		if !strings.Contains(out+err.Error(), want) {
			t.Errorf("output lacks %q:\n%s\n%v", want, out, err)
		}
	}
}

// config check prints the won-stage warning of a connection whose list
// misses the stage its source reports won deals as.
func TestConfigCheckWarnsOfWonStagesMissingTheSourcesStage(t *testing.T) {
	cfg := writeConfig(t, `
connections:
  pd:
    target: sandbox
    trigger: {won_stages: [closed_won]}
    source:
      type: pipedrive
      webhook_user: dealsync
      webhook_password: correct-horse
      accounts:
        "6083095": {api_token: t}
`)
	out, err := runOut(context.Background(), "--config", cfg, "config", "check", "--dev")
	if err != nil || !strings.Contains(out, "warning") || !strings.Contains(out, `the pipedrive source reports every won deal as stage "won", which trigger.won_stages [closed_won] does not list`) {
		t.Fatalf("config check: %v\n%s", err, out)
	}
}

// Two connections of one Pipedrive company into one target (a pipeline
// each, won stages of their own) are a valid config, with a warning that
// a deal both trigger on is invoiced twice.
func TestConfigCheckWarnsOfTwoConnectionsOfOneAccount(t *testing.T) {
	conn := func(name, stage string) string {
		return fmt.Sprintf(`  %s:
    target: sandbox
    trigger: {won_stages: [%s]}
    source:
      type: pipedrive
      webhook_user: dealsync
      webhook_password: correct-horse
      accounts:
        "6083095": {api_token: t}
`, name, stage)
	}
	cfg := writeConfig(t, "connections:\n"+conn("pd-sales", "won")+conn("pd-renewals", "renewed"))
	out, err := runOut(context.Background(), "--config", cfg, "config", "check", "--dev")
	if err != nil || !regexp.MustCompile(`warning +connections.pd-sales.target: connections pd-renewals and pd-sales both list Pipedrive company 6083095 and invoice it into target "sandbox"; .* is invoiced twice`).MatchString(out) {
		t.Fatalf("config check: %v\n%s", err, out)
	}
}

// A DEALSYNC_* variable that sets no key (misspelt, or of a connection the
// file does not have) is named as a warning, not silently ignored.
func TestConfigCheckWarnsOfEnvironmentThatSetsNothing(t *testing.T) {
	cfg := writeConfig(t, `
connections:
  shop:
    target: sandbox
    source: {type: generic, secret: "whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQ="}
`)
	t.Setenv("DEALSYNC_INTAKE_LISTN", "0.0.0.0:1")
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP_MAPPNG", "generic-standard")
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP_SETTLE_TIME", "1m") // a key: no warning
	// A misspelt prefix, or one not in capitals, is named too, with the
	// variable meant; another program's variable is not.
	t.Setenv("DEALSYN_CONNECTIONS_SHOP_LINGER", "1m")
	t.Setenv("dealsync_intake_listen", "0.0.0.0:1")
	t.Setenv("DEALS_API_TOKEN", "x")
	out, err := runOut(context.Background(), "--config", cfg, "config", "check", "--dev")
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	for _, name := range []string{"DEALSYNC_INTAKE_LISTN", "DEALSYNC_CONNECTIONS_SHOP_MAPPNG", "DEALSYN_CONNECTIONS_SHOP_LINGER", "dealsync_intake_listen"} {
		if !regexp.MustCompile(`warning +environment variable ` + name + ` sets no config key`).MatchString(out) {
			t.Errorf("no warning naming %s:\n%s", name, out)
		}
	}
	for _, want := range []string{"DEALSYN_CONNECTIONS_SHOP_LINGER sets no config key and is ignored: did you mean DEALSYNC_CONNECTIONS_SHOP_LINGER?",
		"dealsync_intake_listen sets no config key and is ignored: did you mean DEALSYNC_INTAKE_LISTEN?"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "SETTLE_TIME") || strings.Contains(out, "DEALS_API_TOKEN") {
		t.Errorf("a variable that sets a key, or another program's, is warned about:\n%s", out)
	}
}

// A write_back.url over plain HTTP to another machine is refused when the
// config loads (exit 2, an invalid config, naming the key), not only when
// the connection is built (it was "the config is valid, but", exit 1);
// https, and http to this machine's loopback, are taken.
func TestConfigCheckRefusesAWriteBackInClear(t *testing.T) {
	for url, want := range map[string]int{"http://crm.internal/dealsync": 2, "https://crm.internal/dealsync": 0, "http://127.0.0.1:9/dealsync": 0} {
		cfg := writeConfig(t, fmt.Sprintf(`
targets:
  erp: {type: http, base_url: "https://erp.example.com/api", lookup_invoices: true}
connections:
  shop:
    source: {type: generic, secret: whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM=, write_back: {url: %q}}
    target: erp
`, url))
		out, err := runOut(context.Background(), "--config", cfg, "config", "check")
		if got := exitCode(err); got != want || (want == 2 && !strings.Contains(err.Error(), "connections.shop.source.write_back.url: must be an https:// URL")) {
			t.Errorf("write_back.url %s: exit %d, %v\n%s; want exit %d", url, got, err, out, want)
		}
	}
}

// A source or target that cannot be built from what the config gives it
// (an http base_url with a query) is the config's to fix: config check,
// and the commands that build connections, say "invalid configuration in
// FILE" with the connector's words below, where they said "the config
// is valid, but:" and then failed.
func TestAnUnbuildableTargetIsAnInvalidConfig(t *testing.T) {
	cfg := writeConfig(t, `
targets:
  erp: {type: http, base_url: "https://erp.example.com/api?x=1", lookup_invoices: true}
connections:
  shop:
    source: {type: generic, secret: whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM=}
    target: erp
`)
	for _, args := range [][]string{{"config", "check"}} {
		out, err := runOut(context.Background(), append([]string{"--config", cfg}, args...)...)
		want := "invalid configuration in " + cfg + " (a source or target cannot be built from it):\n  targets.erp: httptarget: base_url"
		if exitCode(err) != 1 || err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "is valid") {
			t.Errorf("%v: exit %d, %v\n%s; want exit 1 and %q", args, exitCode(err), err, out, want)
		}
	}
}

// The Temporal client's TLS files are read by config check as serve and
// worker read them before they dial: a CA file with no certificate in it,
// which the validator takes (the file exists), fails the check, naming
// the key, where the check said ok and serve then refused to start.
func TestConfigCheckReadsTheTemporalTLSFiles(t *testing.T) {
	junk := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "temporal:\n  tls:\n    ca_file: "+junk+"\n")
	out, err := runOut(context.Background(), "--config", cfg, "config", "check")
	if exitCode(err) != 1 || err == nil || !strings.Contains(err.Error(), "serve and worker would not start: temporal.tls.ca_file: no PEM certificate found") {
		t.Errorf("config check with a CA file that holds none: exit %d, %v\n%s", exitCode(err), err, out)
	}
	// dev serves its own frontend: the client's TLS is not its.
	if out, err := runOut(context.Background(), "--config", cfg, "config", "check", "--dev"); err != nil {
		t.Errorf("config check --dev: %v\n%s", err, out)
	}
}

// A config without a connection (an empty file, a config map not
// mounted) is warned of: serve and worker start, ready, and do nothing.
func TestConfigCheckWarnsOfAConfigWithoutConnections(t *testing.T) {
	out, err := runOut(context.Background(), "--config", writeConfig(t, "log:\n  level: info\n"), "config", "check")
	if err != nil || !regexp.MustCompile(`warning +the config defines no connection`).MatchString(out) {
		t.Errorf("config check of a config without connections: %v\n%s", err, out)
	}
	if out, err := runOut(context.Background(), "config", "check", "--dev"); err != nil || strings.Contains(out, "defines no connection") {
		t.Errorf("config check --dev (demo): %v\n%s", err, out)
	}
}

// HubSpot's legacy_signatures written as one value that is not a scheme
// is reported at its own key, with the item's problem first, not at an
// item [0] the file does not have.
func TestConfigCheckNamesAListWrittenAsOneValue(t *testing.T) {
	t.Setenv("HS_SECRET", "hubspot-client-secret")
	cfg := writeConfig(t, `
connections:
  hs:
    target: sandbox
    source:
      type: hubspot
      client_secret: env:HS_SECRET
      accounts:
        "62515": {access_token: env:HS_SECRET}
      legacy_signatures: v3
`)
	_, err := runOut(context.Background(), "--config", cfg, "config", "check", "--dev")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "\n  connections.hs.source.legacy_signatures: must be one of: v1, v2 (written as one value, it is read as a list of one)") ||
		strings.Contains(err.Error(), "legacy_signatures[0]") {
		t.Errorf("exit %d, %v; want 2 naming legacy_signatures", exitCode(err), err)
	}
}
