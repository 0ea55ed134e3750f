package config_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spf13/viper"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/secret"
)

// Test specs. "test-source" and "test-target" are fakes for these tests.
//
// "generic" and "http" are STAND-INS for the real connector packages, with
// their exact key names (generic: type, secret, tolerance; http: type,
// base_url, auth_header, auth_value, idempotency_header, customers_path,
// customer_lookup, invoices_path, lookup_invoices, timeout), so that the dev defaults and
// examples/dealsync.yaml can be loaded end to end. This is only possible
// because this test binary does not import the real packages (package
// config does not import them); registering a name twice panics.

type testSource struct {
	Secret  secret.Secret `mapstructure:"secret" validate:"required"`
	Account string        `mapstructure:"account"`
	Limit   int           `mapstructure:"limit" validate:"gte=1,lte=10"`
}

type testTarget struct {
	BaseURL string        `mapstructure:"base_url" validate:"required,http_url"`
	Token   secret.Secret `mapstructure:"token"`
	Timeout time.Duration `mapstructure:"timeout" validate:"gt=0"`
	Headers []string      `mapstructure:"headers"`
	// Schemes stands in for a list whose items are checked (hubspot's
	// legacy_signatures).
	Schemes []string `mapstructure:"schemes" validate:"dive,oneof=v1 v2"`
	// TokenFile stands in for the OAuth targets' token_file.
	TokenFile string `mapstructure:"token_file"`
}

type genericStandIn struct {
	Secret    secret.Secret `mapstructure:"secret" validate:"required"`
	Tolerance time.Duration `mapstructure:"tolerance" validate:"gt=0"`
}

type httpStandIn struct {
	BaseURL           string        `mapstructure:"base_url" validate:"required,http_url"`
	AuthHeader        string        `mapstructure:"auth_header"`
	AuthValue         secret.Secret `mapstructure:"auth_value"`
	IdempotencyHeader string        `mapstructure:"idempotency_header" validate:"required"`
	CustomersPath     string        `mapstructure:"customers_path" validate:"required"`
	CustomerLookup    string        `mapstructure:"customer_lookup" validate:"omitempty,oneof=before_create on_conflict"`
	InvoicesPath      string        `mapstructure:"invoices_path" validate:"required"`
	LookupInvoices    bool          `mapstructure:"lookup_invoices"`
	Timeout           time.Duration `mapstructure:"timeout" validate:"gt=0"`
}

func init() {
	connectors.RegisterSource(connectors.SourceSpec{
		Name:      "test-source",
		NewConfig: func() any { return &testSource{Limit: 5} },
	})
	connectors.RegisterTarget(connectors.TargetSpec{
		Name:      "test-target",
		NewConfig: func() any { return &testTarget{Timeout: 10 * time.Second} },
	})
	connectors.RegisterSource(connectors.SourceSpec{
		Name:      "generic",
		NewConfig: func() any { return &genericStandIn{Tolerance: 5 * time.Minute} },
	})
	connectors.RegisterTarget(connectors.TargetSpec{
		Name: "http",
		NewConfig: func() any {
			return &httpStandIn{
				IdempotencyHeader: "Idempotency-Key",
				CustomersPath:     "/customers",
				InvoicesPath:      "/invoices",
				Timeout:           10 * time.Second,
			}
		},
	})
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dealsync.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustLoad(t *testing.T, path string, opts ...config.Option) *config.Config {
	t.Helper()
	cfg, err := config.Load(path, opts...)
	if err != nil {
		t.Fatalf("Load(%q): %v", path, err)
	}
	return cfg
}

func reveal(t *testing.T, s secret.Secret) string {
	t.Helper()
	v, err := s.Reveal()
	if err != nil {
		t.Fatalf("Reveal: %v", err)
	}
	return v
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustLoad(t, "")

	equal(t, "log", cfg.Log, config.Log{Level: "info", Format: "text"})
	equal(t, "temporal.address", cfg.Temporal.Address, "127.0.0.1:7233")
	equal(t, "temporal.namespace", cfg.Temporal.Namespace, "default")
	equal(t, "temporal.task_queue", cfg.Temporal.TaskQueue, "dealsync")
	equal(t, "temporal.api_key set", cfg.Temporal.APIKey.IsZero(), true)
	equal(t, "temporal.tls", cfg.Temporal.TLS, config.TLS{})
	equal(t, "intake", cfg.Intake, config.Intake{
		Listen:           "127.0.0.1:8080",
		MaxBodyBytes:     1 << 20,
		MaxInFlightBytes: 64 << 20,
		StartTimeout:     5 * time.Second,
		DrainDelay:       5 * time.Second,
	})
	equal(t, "workflow", cfg.Workflow, config.Workflow{
		Retry: config.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2.0,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    0,
		},
		ActivityTimeout:     30 * time.Second,
		RunTimeout:          24 * time.Hour,
		ExternalCalls:       "local",
		TargetMismatchGrace: 15 * time.Minute,
	})
	equal(t, "dev", cfg.Dev, config.Dev{
		DataDir:       "./.dealsync",
		FrontendPort:  7233,
		UIPort:        8233,
		SandboxListen: "127.0.0.1:8090",
		Retention:     720 * time.Hour,
		AllowedHosts:  []string{},
	})
	equal(t, "sandbox", cfg.Sandbox, config.Sandbox{RetryAfter: time.Second})
	equal(t, "number of targets", len(cfg.Targets), 0)
	equal(t, "number of connections", len(cfg.Connections), 0)
}

const fileYAML = `
log:
  level: debug
  format: json
temporal:
  address: temporal.internal:7233
  namespace: prod
  api_key: tk-literal-key
intake:
  listen: ":9090"
  max_body_bytes: 4096
  public_base_url: https://hooks.example.com/
  start_timeout: 2s
  drain_delay: 15s
workflow:
  retry:
    initial_interval: 500ms
    backoff_coefficient: 1.5
    maximum_interval: 30s
    maximum_attempts: 7
  run_timeout: 1h
sandbox:
  error_rate: 0.25
  rate_limit_rate: 0.5
  latency: 150ms
  lost_response_rate: 0.125
targets:
  erp:
    type: test-target
    base_url: https://erp.example.com
    timeout: 3s
connections:
  shop:
    source:
      type: test-source
      secret: shop-literal-secret
      account: acme
    target: erp
    mapping: default
  crm-2:
    source:
      type: test-source
      secret: other-literal-secret
      limit: 9
    target: erp
    trigger:
      won_stages: [Won, Signed]
`

func TestFileOverrides(t *testing.T) {
	cfg := mustLoad(t, writeFile(t, fileYAML))

	equal(t, "log", cfg.Log, config.Log{Level: "debug", Format: "json"})
	equal(t, "temporal.address", cfg.Temporal.Address, "temporal.internal:7233")
	equal(t, "temporal.namespace", cfg.Temporal.Namespace, "prod")
	equal(t, "temporal.task_queue (default kept)", cfg.Temporal.TaskQueue, "dealsync")
	equal(t, "temporal.api_key", reveal(t, cfg.Temporal.APIKey), "tk-literal-key")
	equal(t, "intake", cfg.Intake, config.Intake{
		Listen:           ":9090",
		MaxBodyBytes:     4096,
		MaxInFlightBytes: 64 << 20,
		PublicBaseURL:    "https://hooks.example.com/",
		StartTimeout:     2 * time.Second,
		DrainDelay:       15 * time.Second,
	})
	equal(t, "workflow.retry", cfg.Workflow.Retry, config.RetryPolicy{
		InitialInterval:    500 * time.Millisecond,
		BackoffCoefficient: 1.5,
		MaximumInterval:    30 * time.Second,
		MaximumAttempts:    7,
	})
	equal(t, "workflow.activity_timeout (default kept)", cfg.Workflow.ActivityTimeout, 30*time.Second)
	equal(t, "workflow.run_timeout", cfg.Workflow.RunTimeout, time.Hour)
	equal(t, "sandbox", cfg.Sandbox, config.Sandbox{
		ErrorRate: 0.25, RateLimitRate: 0.5, RetryAfter: time.Second, Latency: 150 * time.Millisecond,
		LostResponseRate: 0.125,
	})

	erp, ok := cfg.Targets["erp"]
	if !ok {
		t.Fatalf("targets.erp missing: %v", cfg.Targets)
	}
	equal(t, "targets.erp.type", erp.Type, "test-target")
	equal(t, "targets.erp spec", erp.Spec, any(&testTarget{
		BaseURL: "https://erp.example.com",
		Timeout: 3 * time.Second,
	}))

	shop := cfg.Connections["shop"]
	equal(t, "connections.shop.target", shop.Target, "erp")
	equal(t, "connections.shop.mapping", shop.Mapping, "default")
	equal(t, "connections.shop.trigger (default)", shop.Trigger.WonStages, []string{"closed_won", "closedwon", "closed won", "won"})
	equal(t, "connections.shop.source.type", shop.Source.Type, "test-source")
	src, ok := shop.Source.Spec.(*testSource)
	if !ok {
		t.Fatalf("connections.shop.source.Spec is %T, want *testSource", shop.Source.Spec)
	}
	equal(t, "connections.shop.source.secret", reveal(t, src.Secret), "shop-literal-secret")
	equal(t, "connections.shop.source.account", src.Account, "acme")
	equal(t, "connections.shop.source.limit (spec default kept)", src.Limit, 5)

	crm := cfg.Connections["crm-2"]
	equal(t, "connections.crm-2.trigger.won_stages", crm.Trigger.WonStages, []string{"Won", "Signed"})
	equal(t, "connections.crm-2.source.limit", crm.Source.Spec.(*testSource).Limit, 9)
	equal(t, "connections", sortedKeys(cfg.Connections), []string{"crm-2", "shop"})
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("DEALSYNC_INTAKE_LISTEN", "0.0.0.0:8181")                      // in file
	t.Setenv("DEALSYNC_TEMPORAL_TASK_QUEUE", "from-env")                    // default only
	t.Setenv("DEALSYNC_WORKFLOW_RETRY_MAXIMUM_ATTEMPTS", "3")               // nested, number
	t.Setenv("DEALSYNC_WORKFLOW_ACTIVITY_TIMEOUT", "45s")                   // duration
	t.Setenv("DEALSYNC_WORKFLOW_TARGET_MISMATCH_GRACE", "2m")               // duration, default only
	t.Setenv("DEALSYNC_TEMPORAL_TLS_ENABLED", "true")                       // bool
	t.Setenv("DEALSYNC_SANDBOX_ERROR_RATE", "0.1")                          // float
	t.Setenv("DEALSYNC_SANDBOX_LOST_RESPONSE_RATE", "0.2")                  // float, over the file's
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP_SOURCE_SECRET", "env:SHOP_SECRET")  // map entry, secret
	t.Setenv("SHOP_SECRET", "resolved-from-env")                            // what it refers to
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP_TRIGGER_WON_STAGES", "won, paid ,") // list (default only)
	t.Setenv("DEALSYNC_TARGETS_ERP_TIMEOUT", "90s")                         // component option
	t.Setenv("DEALSYNC_TARGETS_ERP_HEADERS", "X-A,X-B")                     // list inside a spec without default, not in the file: file-only

	cfg := mustLoad(t, writeFile(t, fileYAML))

	equal(t, "intake.listen", cfg.Intake.Listen, "0.0.0.0:8181")
	equal(t, "intake.max_body_bytes (file)", cfg.Intake.MaxBodyBytes, int64(4096))
	equal(t, "temporal.task_queue", cfg.Temporal.TaskQueue, "from-env")
	equal(t, "workflow.retry.maximum_attempts", cfg.Workflow.Retry.MaximumAttempts, 3)
	equal(t, "workflow.activity_timeout", cfg.Workflow.ActivityTimeout, 45*time.Second)
	equal(t, "workflow.target_mismatch_grace", cfg.Workflow.TargetMismatchGrace, 2*time.Minute)
	equal(t, "temporal.tls.enabled", cfg.Temporal.TLS.Enabled, true)
	equal(t, "sandbox.error_rate", cfg.Sandbox.ErrorRate, 0.1)
	equal(t, "sandbox.lost_response_rate", cfg.Sandbox.LostResponseRate, 0.2)

	shop := cfg.Connections["shop"]
	equal(t, "connections.shop.source.secret", reveal(t, shop.Source.Spec.(*testSource).Secret), "resolved-from-env")
	equal(t, "connections.shop.source.account (file)", shop.Source.Spec.(*testSource).Account, "acme")
	equal(t, "connections.shop.trigger.won_stages", shop.Trigger.WonStages, []string{"won", "paid"})

	erp := cfg.Targets["erp"].Spec.(*testTarget)
	equal(t, "targets.erp.timeout", erp.Timeout, 90*time.Second)
	// Scalar keys of a registered type are known to viper with the type's
	// default, so the environment overrides them even when the file does
	// not mention them; a list without a default (like a map) is file-only.
	equal(t, "targets.erp.headers", erp.Headers, []string(nil))
	// What the environment set that no key reads is listed, to be warned
	// about: the file-only list above, a misspelt key, a key of a
	// connection the file does not have. An env: reference's variable and
	// the tests' own are not.
	equal(t, "IgnoredEnv", cfg.IgnoredEnv(), []string{"DEALSYNC_TARGETS_ERP_HEADERS"})
	t.Setenv("DEALSYNC_INTAKE_LISTN", "0.0.0.0:1")
	t.Setenv("DEALSYNC_CONNECTIONS_PROD_TARGET", "sandbox")
	t.Setenv("DEALSYNC_TEMPORAL_API_KEY", "env:DEALSYNC_MY_KEY")
	t.Setenv("DEALSYNC_MY_KEY", "k")
	t.Setenv("DEALSYNC_TEST_ANYTHING", "x")
	cfg = mustLoad(t, writeFile(t, fileYAML))
	equal(t, "IgnoredEnv", cfg.IgnoredEnv(), []string{"DEALSYNC_CONNECTIONS_PROD_TARGET", "DEALSYNC_INTAKE_LISTN", "DEALSYNC_TARGETS_ERP_HEADERS"})
	// A typo of a key's variable names it; the others say what may be wrong.
	warnings := strings.Join(cfg.IgnoredEnvWarnings(), "\n")
	for _, want := range []string{
		"environment variable DEALSYNC_INTAKE_LISTN sets no config key and is ignored: did you mean DEALSYNC_INTAKE_LISTEN?",
		"environment variable DEALSYNC_CONNECTIONS_PROD_TARGET sets no config key and is ignored: is it misspelt, does it set a key of a connection or target the config file does not have",
	} {
		if !strings.Contains(warnings, want) {
			t.Errorf("warnings:\n%s\nlack %q", warnings, want)
		}
	}

	// A config that does not load names them too, after its problems:
	// a misspelt variable is often why a required key is missing.
	t.Setenv("DEALSYNC_LOG_LEVEL", "loud")
	_, err := config.Load(writeFile(t, fileYAML))
	var ce *config.Error
	if !errors.As(err, &ce) || !ce.Has("log.level") {
		t.Fatalf("Load = %v, want the log.level problem", err)
	}
	equal(t, "Error.IgnoredEnv", ce.IgnoredEnv, []string{"DEALSYNC_CONNECTIONS_PROD_TARGET", "DEALSYNC_INTAKE_LISTN", "DEALSYNC_TARGETS_ERP_HEADERS"})
	if msg := err.Error(); !strings.Contains(msg, "\nnote: environment variable DEALSYNC_INTAKE_LISTN sets no config key and is ignored: did you mean DEALSYNC_INTAKE_LISTEN?") {
		t.Errorf("error %q does not name DEALSYNC_INTAKE_LISTN", msg)
	}
}

// A variable the config does not read because its prefix is misspelt
// (DEALSYN_) or not in capitals (dealsync_), but that otherwise is a
// key's variable, is warned about naming that variable, as a misspelt
// DEALSYNC_ one is; other programs' variables are not, nor a near miss
// that is no key's.
func TestNearMissVariablesNameTheKeysVariable(t *testing.T) {
	path := writeFile(t, `
targets:
  erp: {type: test-target, base_url: "https://erp.example.com"}
connections:
  shop:
    target: erp
    source: {type: test-source, secret: s, limit: 1}
`)
	for name, want := range map[string]string{
		"DEALSYN_INTAKE_LISTEN":                   "did you mean DEALSYNC_INTAKE_LISTEN? (only the variables whose names start with DEALSYNC_, in capitals, are read)",
		"DEALSNYC_TEMPORAL_ADDRESS":               "did you mean DEALSYNC_TEMPORAL_ADDRESS? (only the variables",
		"dealsync_connections_shop_source_secret": "did you mean DEALSYNC_CONNECTIONS_SHOP_SOURCE_SECRET? (only the variables",
		"Dealsync_Log_Levl":                       "did you mean DEALSYNC_LOG_LEVEL? (only the variables",
		"DEALSYNC_intake_listen":                  "did you mean DEALSYNC_INTAKE_LISTEN? (variable names are case-sensitive: the config's are in capitals)",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, "x")
			// Not warned about: other programs' variables, and near
			// misses that are no key's (or another entry's).
			for _, other := range []string{"DEALS_API_KEY", "DEALSYN_WHATEVER", "dealsync_home", "DEALSYN_CONNECTIONS_SHOPS_TARGET", "INTAKE_LISTEN", "PATH_DEALSYNC_INTAKE_LISTEN"} {
				t.Setenv(other, "x")
			}
			cfg := mustLoad(t, path)
			equal(t, "IgnoredEnv", cfg.IgnoredEnv(), []string{name})
			w := strings.Join(cfg.IgnoredEnvWarnings(), "\n")
			if !strings.Contains(w, "environment variable "+name+" sets no config key and is ignored: "+want) {
				t.Errorf("warnings:\n%s\nlack %q", w, want)
			}
			// A config that does not load names it too.
			t.Setenv("DEALSYNC_LOG_FORMAT", "fancy")
			_, err := config.Load(path)
			if err == nil || !strings.Contains(err.Error(), "\nnote: environment variable "+name+" sets no config key and is ignored: "+want) {
				t.Errorf("Load = %v, want a note naming %s", err, name)
			}
		})
	}
	// An env: reference may name such a variable: it is read, as the
	// secret.
	t.Setenv("dealsync_connections_shop_source_secret", "s")
	ref := writeFile(t, `
targets:
  erp: {type: test-target, base_url: "https://erp.example.com"}
connections:
  shop:
    target: erp
    source: {type: test-source, secret: env:dealsync_connections_shop_source_secret, limit: 1}
`)
	equal(t, "IgnoredEnv of a referenced variable", mustLoad(t, ref).IgnoredEnv(), []string(nil))
}

// A variable that names a section (DEALSYNC_CONNECTIONS_SHOP,
// DEALSYNC_INTAKE) is refused, but by TemporalOnly (runs list) only when
// it names a section it reads: in the others it is a skipped problem, as
// a connection's typo is, named instead of the keys it dropped.
func TestSectionVariablesUnderTemporalOnly(t *testing.T) {
	path := writeFile(t, `
targets:
  erp: {type: test-target, base_url: "https://erp.example.com"}
connections:
  shop:
    target: erp
    source: {type: test-source, secret: s, limit: 1}
`)
	for _, name := range []string{"DEALSYNC_CONNECTIONS_SHOP", "DEALSYNC_INTAKE", "DEALSYNC_CONNECTIONS", "DEALSYNC_WORKFLOW_RETRY"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, "x")
			if _, err := config.Load(path); err == nil || !strings.Contains(err.Error(), "the environment variable "+name+" is set, which names all of") {
				t.Errorf("Load = %v, want %s refused", err, name)
			}
			cfg, err := config.Load(path, config.TemporalOnly())
			if err != nil {
				t.Fatalf("Load TemporalOnly: %v", err)
			}
			section := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "DEALSYNC_"), "_", "."))
			skipped := cfg.Skipped()
			if len(skipped) != 1 || skipped[0].Key != section || !strings.Contains(skipped[0].Message, "unset "+name) {
				t.Errorf("Skipped = %+v, want the one problem of %s at %s", skipped, name, section)
			}
		})
	}
	// A section it reads is refused as always.
	t.Setenv("DEALSYNC_TEMPORAL_TLS", "x")
	if _, err := config.Load(path, config.TemporalOnly()); err == nil || !strings.Contains(err.Error(), "temporal.tls: the environment variable DEALSYNC_TEMPORAL_TLS is set") {
		t.Errorf("Load TemporalOnly = %v, want DEALSYNC_TEMPORAL_TLS refused", err)
	}
}

// A list written as one value (`schemes: v3`, not `[v3]`) is read as the
// list of its comma-separated parts; when one is wrong, the problem is
// the list's, not an item's the file does not have (schemes[0]): the
// item's problem first, then how the value was read, counting the parts
// as written. A list written as one is reported at its items. A mapping
// file that cannot be read, given as one value, is reported as one in a
// list is: the one value is right, the file is not.
func TestAListWrittenAsOneValue(t *testing.T) {
	load := func(schemes string) error {
		t.Helper()
		_, err := config.Load(writeFile(t, `
targets:
  erp: {type: test-target, base_url: "https://erp.example.com", schemes: `+schemes+`}
`))
		return err
	}
	for schemes, want := range map[string]string{
		`v3`:         "targets.erp.schemes: must be one of: v1, v2 (written as one value, it is read as a list of one)",
		`"v1, v3"`:   "targets.erp.schemes: part 2 must be one of: v1, v2 (written as one value, it is read as the list of its comma-separated parts)",
		`"v1,,v3"`:   "targets.erp.schemes: part 3 must be one of: v1, v2 (written as one value, it is read as the list of its comma-separated parts)",
		`", v3, v1"`: "targets.erp.schemes: part 2 must be one of: v1, v2 (written as one value, it is read as the list of its comma-separated parts)",
		`[v1, v3]`:   "targets.erp.schemes[1]: must be one of: v1, v2",
		`[v3]`:       "targets.erp.schemes[0]: must be one of: v1, v2",
	} {
		if err := load(schemes); err == nil || !strings.Contains(err.Error(), "\n  "+want) || strings.Count(err.Error(), "\n") != 1 {
			t.Errorf("schemes: %s: %v\nwant the one problem %q", schemes, err, want)
		}
	}
	// One value that is right is taken, as a list of one.
	if err := load("v1"); err != nil {
		t.Errorf("schemes: v1: %v", err)
	}
	// A mapping file given as one value that is not there, or does not
	// parse: the problem is the file's, at its item, as in a list.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("name: bad\ninvoice: {memo: [\n"), 0o644)
	for file, want := range map[string]string{
		"nosuch.yaml": "\n  mappings.files[0]: " + filepath.Join(dir, "nosuch.yaml") + ": cannot read",
		"bad.yaml":    "\n  mappings.files[0]: " + filepath.Join(dir, "bad.yaml") + ":",
	} {
		path := filepath.Join(dir, "dealsync.yaml")
		os.WriteFile(path, []byte("mappings: {files: "+file+"}\n"), 0o644)
		_, err := config.Load(path)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "written as one value") {
			t.Errorf("mappings.files: %s: %v\nwant %q, and nothing of the one value", file, err, want)
		}
	}
}

func TestEnvOverridesFileList(t *testing.T) {
	t.Setenv("DEALSYNC_LOG_LEVEL", "WARN") // any case, as the logger reads it
	t.Setenv("DEALSYNC_LOG_FORMAT", "JSON")
	path := writeFile(t, `
targets:
  erp: {type: test-target, base_url: "https://erp.example.com", headers: [X-File]}
connections:
  shop:
    source: {type: test-source, secret: s}
    target: erp
    trigger: {won_stages: [won]}
`)
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP_TRIGGER_WON_STAGES", "closed,done")
	t.Setenv("DEALSYNC_TARGETS_ERP_HEADERS", "X-A, X-B")
	cfg := mustLoad(t, path)
	equal(t, "log.level", cfg.Log.Level, "warn")
	equal(t, "log.format", cfg.Log.Format, "json")
	equal(t, "connections.shop.trigger.won_stages", cfg.Connections["shop"].Trigger.WonStages, []string{"closed", "done"})
	equal(t, "targets.erp.headers", cfg.Targets["erp"].Spec.(*testTarget).Headers, []string{"X-A", "X-B"})
}

func TestEveryProblemAtOnce(t *testing.T) {
	const leaked = "sk_live_SHOULD_NEVER_BE_PRINTED"
	t.Setenv("DEALSYNC_TEST_SURELY_UNSET", "")
	os.Unsetenv("DEALSYNC_TEST_SURELY_UNSET")
	path := writeFile(t, `
log:
  level: verbose
intake:
  listn: 127.0.0.1:8080
  max_body_bytes: 10
  max_inflight_bytes: -5
  start_timeout: "5 mins"
  public_base_url: ftp://example.com
workflow:
  activity_timeout: 30
  target_mismatch_grace: 0s
  retry:
    backoff_coefficient: 0.5
    maximum_interval: 100ms
    maximum_attempts: 4294967297
sandbox:
  error_rate: 0.7
  rate_limit_rate: 0.6
  lost_response_rate: 1.5
dev:
  retention: 30m
  allowed_hosts: [mylaptop.local, "[::1]", "http://mylaptop.local:8233"]
mappings:
  reload_interval: 3000000h # over Go's 292 years
temporal:
  address: "no-port"
  tls:
    cert_file: `+filepath.Join(t.TempDir(), "missing.pem")+`
targets:
  erp:
    type: test-target
    base_url: not-a-url
    timeout: soon
    tokne: `+leaked+`
  odd:
    type: carrier-pigeon
    wings: 2
  api:
    type: http
    base_url: https://erp.example.com
    idempotency_header: Idempotency-Key
    customers_path: /customers
    invoices_path: /invoices
    customer_lookup: first
connections:
  shop:
    source:
      type: test-source
      secret: env:DEALSYNC_TEST_SURELY_UNSET
      limit: 11
    target: missing
    settle_time: 24h
    trigger:
      won_stages: []
  crm:
    source:
      type: hubspot
      secret: `+leaked+`
    target: erp
  -bad:
    source:
      type: test-source
      secret: ok
      limit: `+leaked+`
    target: erp
    color: blue
`)
	_, err := config.Load(path)
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load: got %T %v, want *config.Error", err, err)
	}
	equal(t, "Error.File", cerr.File, path)

	want := map[string]string{
		"log.level":                           "must be one of: debug, info, warn, error",
		"intake.listn":                        "unknown key (did you mean listen?)",
		"intake.max_body_bytes":               "must be at least 1024",
		"intake.max_inflight_bytes":           "must be at least 0",
		"intake.start_timeout":                "invalid duration",
		"intake.public_base_url":              "http",
		"workflow.activity_timeout":           "needs a unit",
		"workflow.target_mismatch_grace":      "must be more than 0",
		"workflow.retry.backoff_coefficient":  "must be at least 1",
		"workflow.retry.maximum_attempts":     "must be at most 2147483647", // Temporal's int32: it wrapped to 1
		"workflow.retry.maximum_interval":     "must not be less than workflow.retry.initial_interval",
		"sandbox.rate_limit_rate":             "must not exceed 1",
		"sandbox.lost_response_rate":          "must be at most 1",
		"dev.retention":                       "must be at least 1h",
		"dev.allowed_hosts[2]":                "must be a host name or an IP address, without a port",
		"mappings.reload_interval":            "out of range: a duration is at most 2562047h",
		"temporal.address":                    "host:port",
		"temporal.tls.cert_file":              "existing file",
		"temporal.tls.key_file":               "is required when cert_file is set",
		"targets.erp.base_url":                "http",
		"targets.erp.timeout":                 "invalid duration",
		"targets.erp.tokne":                   "unknown key (did you mean token?)",
		"targets.odd.type":                    `unknown target type "carrier-pigeon" (registered target types: http, test-target)`,
		"targets.api.customer_lookup":         "must be one of: before_create, on_conflict, or unset", // omitempty
		"connections.shop.source.secret":      "environment variable DEALSYNC_TEST_SURELY_UNSET is not set",
		"connections.shop.source.limit":       "must be at most 10",
		"connections.shop.target":             `target "missing" is not defined under targets (defined: api, erp, odd)`,
		"connections.shop.trigger.won_stages": "must have at least 1 entry",
		"connections.shop.settle_time":        "must be less than workflow.run_timeout (24h): every run would time out before invoicing",
		"connections.crm.source.type":         `unknown source type "hubspot" (registered source types: generic, test-org, test-per-account, test-source)`,
		"connections.-bad":                    "connection name must match",
		"connections.-bad.color":              "unknown key (known keys: account_targets,",
		"connections.-bad.source.limit":       "must be a whole number",
	}
	got := map[string]string{}
	for _, p := range cerr.Problems {
		if prev, dup := got[p.Key]; dup {
			t.Errorf("two problems at %s: %q and %q", p.Key, prev, p.Message)
		}
		got[p.Key] = p.Message
	}
	for key, frag := range want {
		msg, ok := got[key]
		if !ok {
			t.Errorf("no problem reported at %s (want one containing %q)", key, frag)
			continue
		}
		if !strings.Contains(msg, frag) {
			t.Errorf("%s: message %q does not contain %q", key, msg, frag)
		}
	}
	// TemporalOnly (runs list) reports the problems of the settings it
	// reads, and none of the sections it does not use.
	_, terr := config.Load(path, config.TemporalOnly())
	var tcerr *config.Error
	if !errors.As(terr, &tcerr) {
		t.Fatalf("Load TemporalOnly: got %T %v, want *config.Error", terr, terr)
	}
	for _, p := range tcerr.Problems {
		top, _, _ := strings.Cut(p.Key, ".")
		if !slices.Contains([]string{"log", "dev", "temporal"}, top) {
			t.Errorf("TemporalOnly reports %s: %s", p.Key, p.Message)
		}
	}
	for _, key := range []string{"log.level", "dev.retention", "temporal.address", "temporal.tls.key_file"} {
		if !slices.ContainsFunc(tcerr.Problems, func(p config.Problem) bool { return p.Key == key }) {
			t.Errorf("TemporalOnly does not report %s", key)
		}
	}
	// A value that must be set does not say "or unset".
	if msg := got["log.level"]; strings.Contains(msg, "unset") {
		t.Errorf("log.level: %q offers to leave it unset", msg)
	}
	for key, msg := range got {
		if _, ok := want[key]; !ok {
			t.Errorf("unexpected problem %s: %s", key, msg)
		}
	}

	text := err.Error()
	if strings.Contains(text, leaked) {
		t.Errorf("error message contains a secret value:\n%s", text)
	}
	lines := strings.Split(text, "\n")
	if !strings.Contains(lines[0], path) || !strings.Contains(lines[0], fmt.Sprintf("%d problems", len(want))) {
		t.Errorf("first line %q should name the file and count the problems", lines[0])
	}
	body := lines[1:]
	equal(t, "number of problem lines", len(body), len(want))
	var keys []string
	for _, l := range body {
		k, _, _ := strings.Cut(strings.TrimSpace(l), ": ")
		keys = append(keys, k)
	}
	if !slices.IsSorted(keys) {
		t.Errorf("problem lines not sorted by key:\n%s", strings.Join(body, "\n"))
	}
	if !strings.Contains(text, "\n  intake.listn: unknown key (did you mean listen?)\n") {
		t.Errorf("want one `key: message` line per problem, got:\n%s", text)
	}
}

func TestSecretNeverInErrors(t *testing.T) {
	// A secret resolved from a file that does not exist, and literal
	// secrets next to other mistakes: the messages explain, never reveal.
	const value = "whsec_top_secret_value"
	path := writeFile(t, `
temporal:
  api_key: file:/nonexistent/dealsync/api-key
targets:
  erp: {type: test-target, base_url: "https://erp", token: `+value+`, timeout: `+value+`}
connections:
  shop:
    source: {type: test-source, secret: `+value+`, account: [`+value+`]}
    target: erp
`)
	_, err := config.Load(path)
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load: got %v, want *config.Error", err)
	}
	if strings.Contains(err.Error(), value) {
		t.Fatalf("error message contains the secret:\n%s", err)
	}
	for _, key := range []string{"temporal.api_key", "targets.erp.timeout", "connections.shop.source.account"} {
		if !cerr.Has(key) {
			t.Errorf("no problem at %s:\n%s", key, err)
		}
	}
	if !strings.Contains(err.Error(), "temporal.api_key: secret file:/nonexistent/dealsync/api-key cannot be resolved") {
		t.Errorf("api_key problem should say how the secret is given and why it fails:\n%s", err)
	}
}

func TestDevDefaults(t *testing.T) {
	plain := mustLoad(t, "")
	if len(plain.Connections) != 0 || len(plain.Targets) != 0 {
		t.Fatalf("without WithDevDefaults: connections %v, targets %v; want none", plain.Connections, plain.Targets)
	}

	cfg := mustLoad(t, "", config.WithDevDefaults())
	equal(t, "targets", sortedKeys(cfg.Targets), []string{"sandbox"})
	equal(t, "connections", sortedKeys(cfg.Connections), []string{"demo"})

	sandbox := cfg.Targets["sandbox"]
	equal(t, "targets.sandbox.type", sandbox.Type, "http")
	equal(t, "targets.sandbox.options.base_url", sandbox.Options["base_url"], any("http://127.0.0.1:8090"))
	equal(t, "targets.sandbox.base_url", sandbox.Spec.(*httpStandIn).BaseURL, "http://127.0.0.1:8090")
	equal(t, "targets.sandbox.customer_lookup", sandbox.Spec.(*httpStandIn).CustomerLookup, "on_conflict")

	demo := cfg.Connections["demo"]
	equal(t, "connections.demo.source.type", demo.Source.Type, "generic")
	equal(t, "connections.demo.target", demo.Target, "sandbox")
	equal(t, "connections.demo.trigger.won_stages", demo.Trigger.WonStages, config.DefaultWonStages)
	equal(t, "connections.demo.source.secret", reveal(t, demo.Source.Spec.(*genericStandIn).Secret), config.DevSecret)

	equal(t, "temporal.address", cfg.Temporal.Address, "127.0.0.1:7233")

	equal(t, "dev temporal warnings", cfg.DevTemporalWarnings(), []string(nil))

	// Commands run with --dev dial the dev server's frontend port.
	t.Setenv("DEALSYNC_DEV_FRONTEND_PORT", "7300")
	equal(t, "temporal.address (dev.frontend_port 7300)", mustLoad(t, "", config.WithDevDefaults()).Temporal.Address, "127.0.0.1:7300")
	os.Unsetenv("DEALSYNC_DEV_FRONTEND_PORT")

	// The sandbox target follows dev.sandbox_listen; env overrides the demo.
	t.Setenv("DEALSYNC_DEV_SANDBOX_LISTEN", ":9999")
	t.Setenv("DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET", "env:DEMO_SECRET_FOR_TEST")
	t.Setenv("DEMO_SECRET_FOR_TEST", "from-the-environment")
	cfg = mustLoad(t, "", config.WithDevDefaults())
	equal(t, "targets.sandbox.base_url", cfg.Targets["sandbox"].Spec.(*httpStandIn).BaseURL, "http://127.0.0.1:9999")
	equal(t, "connections.demo.source.secret", reveal(t, cfg.Connections["demo"].Source.Spec.(*genericStandIn).Secret), "from-the-environment")
}

func TestDevDefaultsAndFileEntries(t *testing.T) {
	// A file that defines its own `demo` connection and `sandbox` target
	// (with their own types) gets none of the built-in keys mixed in.
	path := writeFile(t, `
targets:
  sandbox: {type: test-target, base_url: "https://erp.example.com"}
connections:
  demo:
    source: {type: test-source, secret: mine}
    target: sandbox
`)
	cfg := mustLoad(t, path, config.WithDevDefaults())
	equal(t, "targets.sandbox.type", cfg.Targets["sandbox"].Type, "test-target")
	equal(t, "connections.demo.source.type", cfg.Connections["demo"].Source.Type, "test-source")
	equal(t, "connections.demo.source.secret", reveal(t, cfg.Connections["demo"].Source.Spec.(*testSource).Secret), "mine")

	// Without its own type, a file entry overrides single built-in keys.
	t.Setenv("MY_DEMO_SECRET", "from-my-env")
	path = writeFile(t, `
connections:
  demo:
    source: {secret: env:MY_DEMO_SECRET}
    trigger: {won_stages: [done]}
`)
	cfg = mustLoad(t, path, config.WithDevDefaults())
	demo := cfg.Connections["demo"]
	equal(t, "connections.demo.source.type", demo.Source.Type, "generic")
	equal(t, "connections.demo.target", demo.Target, "sandbox")
	equal(t, "connections.demo.trigger.won_stages", demo.Trigger.WonStages, []string{"done"})
	equal(t, "connections.demo.source.secret", reveal(t, demo.Source.Spec.(*genericStandIn).Secret), "from-my-env")
	equal(t, "targets.sandbox.type", cfg.Targets["sandbox"].Type, "http")
}

func TestSecretsMaskedWhenPrinted(t *testing.T) {
	const (
		apiKey = "tk-literal-key"
		shop   = "shop-literal-secret"
		other  = "other-literal-secret"
		token  = "erp-token-literal"
	)
	path := writeFile(t, strings.Replace(fileYAML, "    timeout: 3s\n", "    timeout: 3s\n    token: "+token+"\n", 1))
	cfg := mustLoad(t, path)
	equal(t, "targets.erp.token", reveal(t, cfg.Targets["erp"].Spec.(*testTarget).Token), token)

	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprintf("%v", cfg),
		fmt.Sprintf("%+v", cfg),
		fmt.Sprintf("%+v", *cfg),
		fmt.Sprintf("%#v", cfg),
		fmt.Sprintf("%s", cfg.Connections["shop"].Source),
		cfg.Targets["erp"].String(),
		string(js),
	} {
		for _, s := range []string{apiKey, shop, other, token} {
			if strings.Contains(out, s) {
				t.Errorf("printed config contains secret %q:\n%s", s, out)
			}
		}
	}
	// The non-secret parts are still there.
	out := fmt.Sprintf("%+v", cfg)
	for _, s := range []string{"temporal.internal:7233", "Type:test-source", "Account:acme", "https://erp.example.com", "********"} {
		if !strings.Contains(out, s) {
			t.Errorf("%%+v output lacks %q:\n%s", s, out)
		}
	}
}

func TestExampleFile(t *testing.T) {
	// Loaded with the generic/http stand-ins registered above (same key
	// names as the real connector packages), so this checks the example's
	// structure, its values and that every key is known.
	const example = "../examples/dealsync.yaml"
	cfg := mustLoad(t, example)
	def := mustLoad(t, "")
	// Every scalar section of the example restates the defaults.
	equal(t, "log", cfg.Log, def.Log)
	equal(t, "temporal", cfg.Temporal, def.Temporal)
	equal(t, "intake", cfg.Intake, def.Intake)
	equal(t, "workflow", cfg.Workflow, def.Workflow)
	equal(t, "worker", cfg.Worker, def.Worker)
	equal(t, "dev", cfg.Dev, def.Dev)
	equal(t, "sandbox", cfg.Sandbox, def.Sandbox)

	demo := cfg.Connections["demo"]
	equal(t, "connections.demo.target", demo.Target, "sandbox")
	equal(t, "connections.demo.source.secret", reveal(t, demo.Source.Spec.(*genericStandIn).Secret), config.DevSecret)
	equal(t, "connections.demo.trigger.won_stages", demo.Trigger.WonStages, config.DefaultWonStages)
	equal(t, "targets.sandbox", cfg.Targets["sandbox"].Spec, any(&httpStandIn{
		BaseURL:           "http://127.0.0.1:8090",
		IdempotencyHeader: "Idempotency-Key",
		CustomersPath:     "/customers",
		CustomerLookup:    "before_create",
		InvoicesPath:      "/invoices",
		Timeout:           10 * time.Second,
	}))

	// The same file under `dealsync dev` is also valid.
	mustLoad(t, example, config.WithDevDefaults())

	// The documented env overrides of keys that are present work.
	t.Setenv("DEALSYNC_TARGETS_SANDBOX_AUTH_VALUE", "env:ERP_TOKEN_FOR_TEST")
	t.Setenv("ERP_TOKEN_FOR_TEST", "tok")
	cfg = mustLoad(t, example)
	equal(t, "targets.sandbox.auth_value", reveal(t, cfg.Targets["sandbox"].Spec.(*httpStandIn).AuthValue), "tok")
}

func TestUnreadableFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
	var cerr *config.Error
	if errors.As(err, &cerr) {
		t.Errorf("a missing file should be a plain error, got *config.Error %v", err)
	}

	_, err = config.Load(writeFile(t, "intake: [unclosed"))
	if err == nil {
		t.Fatal("Load of invalid YAML succeeded")
	}
}

func TestWrongShapes(t *testing.T) {
	path := writeFile(t, `
intake: 3
log: {level: [debug]}
connections:
  shop: 5
  crm: {source: just-a-string, target: erp}
`)
	_, err := config.Load(path)
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load: got %v, want *config.Error", err)
	}
	want := []config.Problem{
		{Key: "connections.crm.source", Message: "must be a mapping of keys"},
		{Key: "connections.crm.target", Message: `target "erp" is not defined under targets (defined: none)`},
		{Key: "connections.shop", Message: "must be a mapping of keys"},
		{Key: "intake", Message: "must be a mapping of keys"},
		{Key: "log.level", Message: "must be a string, not a list"},
	}
	equal(t, "problems", cerr.Problems, want)
}

// Keys neither the file nor the built-in defaults mention are overridden by
// the environment too: connection keys and the source's and target's own.
func TestEnvOverridesKeysNotInTheFile(t *testing.T) {
	t.Setenv("DEALSYNC_CONNECTIONS_DEMO_SETTLE_TIME", "7s")
	t.Setenv("DEALSYNC_CONNECTIONS_DEMO_MAPPING", "default")
	t.Setenv("DEALSYNC_TARGETS_SANDBOX_TIMEOUT", "42s")
	cfg := mustLoad(t, "", config.WithDevDefaults())
	equal(t, "connections.demo.settle_time", cfg.Connections["demo"].SettleTime, 7*time.Second)
	equal(t, "connections.demo.mapping", cfg.Connections["demo"].Mapping, "default")
	equal(t, "targets.sandbox.timeout", cfg.Targets["sandbox"].Spec.(*httpStandIn).Timeout, 42*time.Second)
}

// An unquoted number in another base (0200 is octal 128 to YAML, 0x1F is
// 31) is refused wherever it is, and an unquoted boolean where text is
// wanted (it would be "1"): the text written would be lost, and an account
// code or a stage id would silently be another. Decimals still read as
// their digits.
func TestUnquotedNumbersInAnotherBase(t *testing.T) {
	path := writeFile(t, `
targets:
  erp: {type: test-target, base_url: "https://erp.example"}
connections:
  shop:
    source: {type: test-source, secret: "s", account: 0200}
    target: erp
    trigger: {won_stages: [0x1F, 456, true, "0123"]}
`)
	_, err := config.Load(path)
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load: got %v, want *config.Error", err)
	}
	for key, want := range map[string]string{
		"connections.shop.source.account":        "an unquoted number in another base",
		"connections.shop.trigger.won_stages[0]": "an unquoted number in another base",
		"connections.shop.trigger.won_stages[2]": "read as a boolean, not as the text written: write it in quotes",
	} {
		if !strings.Contains(err.Error(), key+": "+want) {
			t.Errorf("want %q at %s:\n%s", want, key, err)
		}
	}
	for _, fine := range []string{"won_stages[1]", "won_stages[3]"} {
		if strings.Contains(err.Error(), fine) {
			t.Errorf("a decimal or a quoted value is refused at %s:\n%s", fine, err)
		}
	}
}

// A value YAML reads as a number where the config wants text may not be
// the text written (0123456 is octal, long digit strings become floats):
// a secret must be quoted, and a float never becomes a string. Whole
// numbers (an account id) still read as their digits, and the environment,
// whose values are text, is not affected.
func TestUnquotedNumbersWhereTextIsWanted(t *testing.T) {
	path := writeFile(t, `
targets:
  erp: {type: test-target, base_url: 12.50, token: 0123456}
connections:
  shop:
    source: {type: test-source, secret: 12345678901234567890123, account: 1234567}
    target: erp
`)
	_, err := config.Load(path)
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load: got %v, want *config.Error", err)
	}
	for key, want := range map[string]string{
		"targets.erp.token":              "a secret must be written in quotes",
		"connections.shop.source.secret": "a secret must be written in quotes",
		"targets.erp.base_url":           "read as a number, not as the text written: write it in quotes",
	} {
		if !cerr.Has(key) || !strings.Contains(err.Error(), key+": "+want) {
			t.Errorf("want %q at %s:\n%s", want, key, err)
		}
	}
	for _, leaked := range []string{"42798", "0123456", "1.2345678901234568e+22"} {
		if strings.Contains(err.Error(), leaked) {
			t.Errorf("the message shows a secret's value %s:\n%s", leaked, err)
		}
	}
	if cerr.Has("connections.shop.source.account") {
		t.Errorf("a whole number where text is wanted is its digits:\n%s", err)
	}

	quoted := writeFile(t, `
targets:
  erp: {type: test-target, base_url: "https://erp.example", token: "0123456"}
connections:
  shop:
    source: {type: test-source, secret: "0123456", account: 1234567}
    target: erp
`)
	t.Setenv("DEALSYNC_TARGETS_ERP_TOKEN", "0777")
	cfg := mustLoad(t, quoted)
	src := cfg.Connections["shop"].Source.Spec.(*testSource)
	if v, err := src.Secret.Reveal(); err != nil || v != "0123456" || src.Account != "1234567" {
		t.Errorf("quoted secret %q (%v), account %q", v, err, src.Account)
	}
	if v, err := cfg.Targets["erp"].Spec.(*testTarget).Token.Reveal(); err != nil || v != "0777" {
		t.Errorf("secret from the environment %q (%v), want 0777", v, err)
	}
}

// An ERP call ends StepMargin (2 s) before its step, and a write is not
// sent with less than a second of its own: a shorter activity_timeout
// would send none.
func TestActivityTimeoutLeavesRoomForACall(t *testing.T) {
	_, err := config.Load(writeFile(t, "workflow:\n  activity_timeout: 3s\n"))
	var cerr *config.Error
	if !errors.As(err, &cerr) || !strings.Contains(err.Error(), "workflow.activity_timeout: must be at least 5s") {
		t.Fatalf("activity_timeout 3s: %v", err)
	}
	mustLoad(t, writeFile(t, "workflow:\n  activity_timeout: 5s\n"))
}

// A section left empty in the file (its lines commented out: YAML reads
// null) still takes the environment's overrides of the keys under it, as a
// section that is not written does; a connection's empty trigger too.
func TestEmptySectionsTakeEnvironmentOverrides(t *testing.T) {
	path := writeFile(t, `
intake:
  # listen: 127.0.0.1:8080
metrics:
targets:
  erp: {type: test-target, base_url: "https://erp.example"}
connections:
  shop:
    source: {type: test-source, secret: "s"}
    target: erp
    trigger:
`)
	t.Setenv("DEALSYNC_INTAKE_LISTEN", "0.0.0.0:9000")
	t.Setenv("DEALSYNC_METRICS_LISTEN", "0.0.0.0:9090")
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP_TRIGGER_WON_STAGES", "deal_won")
	cfg := mustLoad(t, path)
	equal(t, "intake.listen", cfg.Intake.Listen, "0.0.0.0:9000")
	equal(t, "metrics.listen", cfg.Metrics.Listen, "0.0.0.0:9090")
	equal(t, "connections.shop.trigger.won_stages", strings.Join(cfg.Connections["shop"].Trigger.WonStages, ","), "deal_won")
}

// With the dev defaults, a file whose connections: and targets: headers
// are left empty (their entries commented out) gets the built-in demo
// connection and sandbox target whole, as a file without them does.
func TestDevDefaultsUnderEmptyHeaders(t *testing.T) {
	path := writeFile(t, "targets:\n  # erp: …\nconnections:\n  # demo: …\n")
	cfg := mustLoad(t, path, config.WithDevDefaults())
	if len(cfg.Connections["demo"].Trigger.WonStages) == 0 || cfg.Targets["sandbox"].Type == "" {
		t.Errorf("demo %+v, sandbox %+v", cfg.Connections["demo"], cfg.Targets["sandbox"])
	}
}

// Temporal addresses the SDK dials: a host:port (a container name with an
// underscore too), or one behind a gRPC resolver scheme (dns:/// balances
// over every address of the name); anything else is refused.
func TestTemporalAddressForms(t *testing.T) {
	for addr, ok := range map[string]bool{
		"temporal:7233": true, "temporal_frontend:7233": true, "dns:///temporal-frontend:7233": true,
		"dns://8.8.8.8/temporal.example:7233": true, "passthrough:///10.0.0.1:7233": true,
		"temporal": false, "dns:///temporal": false, "http://temporal:7233": false, "dns:temporal:7233": false,
	} {
		t.Setenv("DEALSYNC_TEMPORAL_ADDRESS", addr)
		_, err := config.Load("", config.WithDevDefaults())
		var cerr *config.Error
		if refused := errors.As(err, &cerr) && cerr.Has("temporal.address"); refused == ok {
			t.Errorf("%q: %v", addr, err)
		}
	}
}

// SameHostPort compares the parsed address (it once compared the port as
// a string suffix, so a production ERP on the sandbox's port was taken
// for the sandbox): the bench and dev use it to tell the sandbox target.
func TestSameHostPortComparesTheParsedAddress(t *testing.T) {
	for _, c := range []struct {
		baseURL, listen string
		want            bool
	}{
		{"http://127.0.0.1:8090", "127.0.0.1:8090", true},
		{"http://127.0.0.1:8090/", "127.0.0.1:8090", true},
		{"http://localhost:8090", "127.0.0.1:8090", true},
		{"http://127.0.0.1:8090", "0.0.0.0:8090", true},
		{"http://127.0.0.1:8090", ":8090", true},
		{"http://erp.example.com:8090", "127.0.0.1:8090", false},
		{"https://erp.example.com:8090/api", "127.0.0.1:8090", false},
		{"http://10.0.0.5:8090", "127.0.0.1:8090", false},
		{"http://127.0.0.1:18090", "127.0.0.1:8090", false},
		{"http://127.0.0.1:8090?x=:8090", "127.0.0.1:18090", false},
		{"http://127.0.0.1", "127.0.0.1:80", true},
		{"http://127.0.0.1:8090", "[::]:8090", true},
		{"http://localhost:8090/api", "127.0.0.1:8090", true},
		{"http://127.0.0.1:8090", "127.0.0.1:28090", false},
		{"not a url", "127.0.0.1:8090", false},
	} {
		if got := config.SameHostPort(c.baseURL, c.listen); got != c.want {
			t.Errorf("SameHostPort(%q, %q) = %v, want %v", c.baseURL, c.listen, got, c.want)
		}
	}
}

// A server listening on every interface is reached on any address of
// this machine: a loopback alias (127.0.0.2, ::1) or an address of one of
// its interfaces (a LAN address, which a base_url may name to reach dev's
// sandbox), not on another machine's; a server listening on one address
// only on that one (and on localhost for the loopback's).
func TestSameHostPortOfAServerOnEveryInterface(t *testing.T) {
	lan := func() []net.IP {
		return []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("192.168.1.5"), net.ParseIP("fd00::5")}
	}
	for _, c := range []struct {
		baseURL, listen string
		want            bool
	}{
		{"http://192.168.1.5:8090", "0.0.0.0:8090", true},
		{"http://192.168.1.5:8090/api", ":8090", true},
		{"http://[fd00::5]:8090", "[::]:8090", true},
		{"http://127.0.0.2:8090", "0.0.0.0:8090", true},
		{"http://[::1]:8090", ":8090", true},
		{"http://localhost:8090", "[::]:8090", true},
		{"http://192.168.1.6:8090", "0.0.0.0:8090", false}, // another machine
		{"http://192.168.1.5:8091", "0.0.0.0:8090", false}, // another port
		{"http://erp.example.com:8090", "0.0.0.0:8090", false},
		{"http://0.0.0.0:8090", "0.0.0.0:8090", false},
		// Listening on one address: only that one reaches it.
		{"http://192.168.1.5:8090", "127.0.0.1:8090", false},
		{"http://127.0.0.2:8090", "127.0.0.1:8090", false},
		{"http://127.0.0.1:8090", "192.168.1.5:8090", false},
		{"http://192.168.1.5:8090", "192.168.1.5:8090", true},
	} {
		if got := config.SameHostPortWith(c.baseURL, c.listen, lan); got != c.want {
			t.Errorf("SameHostPort(%q, %q) on a machine at 192.168.1.5 = %v, want %v", c.baseURL, c.listen, got, c.want)
		}
	}
	// This machine's own interfaces, read: an address of one that is not
	// loopback (when it has one) reaches a server on every interface.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && !ipnet.IP.IsLoopback() && !ipnet.IP.IsLinkLocalUnicast() {
			base := "http://" + net.JoinHostPort(ipnet.IP.String(), "19104")
			if !config.SameHostPort(base, "0.0.0.0:19104") || !config.IsLocal(ipnet.IP.String()) || config.SameHostPort(base, "127.0.0.1:19104") {
				t.Errorf("%s, an address of this machine: not taken for it", base)
			}
			return
		}
	}
	t.Log("this machine has no interface address but loopback: only the given addresses were tried")
}

// The addresses of this machine's interfaces are read once for a few
// seconds, not on each SameHostPort or IsLocal (a check asks for every
// target): asked again within that time, the addresses read are given;
// asked later, or after a clock set back, they are read again. A read
// that fails gives none, and is not read again at once either.
func TestInterfaceAddressesAreReadOnceForAFewSeconds(t *testing.T) {
	reads := 0
	addrs := [][]net.Addr{
		{&net.IPNet{IP: net.ParseIP("192.168.1.5"), Mask: net.CIDRMask(24, 32)}},
		{&net.IPAddr{IP: net.ParseIP("10.0.0.7")}},
	}
	read := func() ([]net.Addr, error) {
		reads++
		if reads > len(addrs) {
			return nil, errors.New("no interfaces")
		}
		return addrs[reads-1], nil
	}
	c := new(config.AddrCache)
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for _, step := range []struct {
		at    time.Time
		want  string
		reads int
	}{
		{t0, "192.168.1.5", 1},
		{t0.Add(time.Second), "192.168.1.5", 1},
		{t0.Add(config.InterfaceIPsLife - 1), "192.168.1.5", 1},
		{t0.Add(config.InterfaceIPsLife), "10.0.0.7", 2},
		{t0.Add(config.InterfaceIPsLife + time.Second), "10.0.0.7", 2},
		{t0, "", 3}, // the clock set back
		{t0.Add(time.Second), "", 3},
	} {
		var got []string
		for _, ip := range config.CachedIPs(c, step.at, read) {
			got = append(got, ip.String())
		}
		if strings.Join(got, " ") != step.want || reads != step.reads {
			t.Errorf("at %s: %q after %d reads; want %q after %d", step.at.Format(time.TimeOnly), got, reads, step.want, step.reads)
		}
	}
}

// Under the dev defaults Temporal is dev's embedded server,
// 127.0.0.1:<dev.frontend_port>, where `dealsync dev` serves whatever
// temporal.address says: a command run with --dev never dials another
// server (examples/dealsync.yaml's 127.0.0.1:7233 with the dev ports moved
// by DEALSYNC_DEV_FRONTEND_PORT reached another developer's dev server).
// A temporal.address (file or environment) that says otherwise, and TLS
// or an API key (the embedded server speaks plaintext), are replaced and
// named in a warning with the setting that wins; one that names the same
// server (localhost) is not. Without the dev defaults nothing changes.
func TestDevDefaultsUseTheEmbeddedFrontend(t *testing.T) {
	t.Setenv("DEALSYNC_DEV_FRONTEND_PORT", "17233")
	file := writeFile(t, "temporal: {address: 127.0.0.1:7233}\n")

	cfg := mustLoad(t, file, config.WithDevDefaults())
	equal(t, "temporal.address (file 127.0.0.1:7233, dev.frontend_port 17233)", cfg.Temporal.Address, "127.0.0.1:17233")
	if w := cfg.DevTemporalWarnings(); len(w) != 1 || !containsAll(w[0], "temporal.address is 127.0.0.1:7233 (set in "+file+")",
		"127.0.0.1:17233", "dev.frontend_port", "DEALSYNC_DEV_FRONTEND_PORT", "leave temporal.address out of "+file) {
		t.Errorf("warnings %q, want one naming both settings and the file", w)
	}
	plain := mustLoad(t, file)
	equal(t, "temporal.address without the dev defaults", plain.Temporal.Address, "127.0.0.1:7233")
	equal(t, "warnings without the dev defaults", plain.DevTemporalWarnings(), []string(nil))

	t.Setenv("DEALSYNC_TEMPORAL_ADDRESS", "temporal.example.com:7233")
	t.Setenv("DEALSYNC_TEMPORAL_API_KEY", "tk-from-the-shell")
	cfg = mustLoad(t, file, config.WithDevDefaults())
	equal(t, "temporal.address (env)", cfg.Temporal.Address, "127.0.0.1:17233")
	equal(t, "temporal.api_key (env) dropped", cfg.Temporal.APIKey.IsZero(), true)
	if w := cfg.DevTemporalWarnings(); len(w) != 2 ||
		!containsAll(w[0], "temporal.example.com:7233 (set by DEALSYNC_TEMPORAL_ADDRESS)", "127.0.0.1:17233", "DEALSYNC_DEV_FRONTEND_PORT", "unset DEALSYNC_TEMPORAL_ADDRESS") ||
		!containsAll(w[1], "temporal.api_key (set by DEALSYNC_TEMPORAL_API_KEY)", "plaintext") || strings.Contains(w[1], "tk-from-the-shell") {
		t.Errorf("warnings %q, want the address and the key named, not the key's value", w)
	}
	os.Unsetenv("DEALSYNC_TEMPORAL_API_KEY")

	// The same server, spelt otherwise: used as dev's, no warning.
	t.Setenv("DEALSYNC_TEMPORAL_ADDRESS", "localhost:17233")
	cfg = mustLoad(t, file, config.WithDevDefaults())
	equal(t, "temporal.address (localhost)", cfg.Temporal.Address, "127.0.0.1:17233")
	equal(t, "warnings (localhost)", cfg.DevTemporalWarnings(), []string(nil))
	os.Unsetenv("DEALSYNC_TEMPORAL_ADDRESS")

	// The example leaves temporal.address to its default, which follows
	// dev.frontend_port: no warning.
	cfg = mustLoad(t, "../examples/dealsync.yaml", config.WithDevDefaults())
	equal(t, "examples/dealsync.yaml temporal.address", cfg.Temporal.Address, "127.0.0.1:17233")
	equal(t, "examples/dealsync.yaml warnings", cfg.DevTemporalWarnings(), []string(nil))
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// A config written for dealsync dev (its connection's target "sandbox",
// which dev defines) loaded without dev's defaults says where that target
// comes from; with them it loads.
func TestSandboxTargetWithoutDevSaysWhereItComesFrom(t *testing.T) {
	path := writeFile(t, `
connections:
  acme:
    source: {type: generic, secret: x}
    target: sandbox
`)
	_, err := config.Load(path)
	var cerr *config.Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || cerr.Problems[0].Key != "connections.acme.target" ||
		!strings.Contains(cerr.Problems[0].Message, "the target dealsync dev defines itself") || !strings.Contains(cerr.Problems[0].Message, "`dealsync config check --dev`") {
		t.Fatalf("without dev's defaults: %v", err)
	}
	if _, err := config.Load(path, config.WithDevDefaults()); err != nil {
		t.Fatalf("with dev's defaults: %v", err)
	}
}

// A config YAML cannot read for a key indented unlike its siblings names
// that key and its line, beside YAML's message (which names the line
// where the enclosing mapping starts).
func TestMisindentedKeyIsNamed(t *testing.T) {
	path := writeFile(t, "log: {level: info}\nconnections:\n  acme:\n    source: {type: generic, secret: x}\n   target: sandbox\n")
	_, err := config.Load(path)
	if err == nil || !strings.Contains(err.Error(), "did not find expected key") ||
		!strings.Contains(err.Error(), "line 5: key target is indented 3 spaces, neither as its siblings nor as their parent: indent it as the keys beside it") {
		t.Fatalf("Load: %v", err)
	}
}

// The misindented key leads the message, before YAML's own (whose line is
// another), and it is the key out of line with its siblings: the first of
// its block here, not the key after it, where YAML stopped.
func TestMisindentedKeyLeadsTheMessage(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"log:\n  level: info\nconnections:\n  acme:\n    target: sandbox\n   mapping: acme\n",
			": line 6: key mapping is indented 3 spaces, neither as its siblings nor as their parent: indent it as the keys beside it (YAML: line 3: did not find expected key)"},
		{"log:\n  level: info\nconnections:\n  shop:\n    target: sandbox\n    source:\n     type: generic\n      secret: x\n",
			": line 7: key type is indented 5 spaces, not 6 as the key after it: indent it as the keys beside it (YAML: line 8: mapping values are not allowed in this context)"},
		// A block merged with `<<: &anchor`: the keys beside << are its
		// siblings, and the misindented one is named, not a correct one
		// after the merged block.
		{"targets:\n  erp:\n    <<: &erp\n      type: http\n      timeout: 30s\n    lookup_invoices: false\n    base_url: \"http://127.0.0.1:9\"\n     auth_header: X-Key\n",
			": line 8: key auth_header is indented 5 spaces, deeper than the key above it, base_url, whose value is on the same line as it, so YAML reads this line as more of that value: indent it as the keys beside it (YAML: line 2: did not find expected key)"},
	} {
		path := writeFile(t, tc.yaml)
		_, err := config.Load(path)
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "config: reading "+path+": line ") {
			t.Errorf("Load: %v\nwant it to end %q", err, tc.want)
		}
		var pe viper.ConfigParseError
		if !errors.As(err, &pe) {
			t.Errorf("Load: %v, want it to wrap viper's parse error", err)
		}
	}
}

// WithoutSecrets (mapping lint, mapping test on a deal file): a secret
// this shell does not have is no problem but is listed; anything else
// wrong still is one.
func TestWithoutSecretsListsTheUnresolvedOnes(t *testing.T) {
	t.Setenv("DEALSYNC_TEST_UNSET_TOKEN", "")
	os.Unsetenv("DEALSYNC_TEST_UNSET_TOKEN")
	t.Setenv("DEALSYNC_TEST_SET_SECRET", "whsec_c2hvcC1zZWNyZXQtZm9yLWEtdGVzdC0zMmJ5dGVz")
	yaml := `
targets:
  erp: {type: http, base_url: "https://erp.example.com", auth_value: env:DEALSYNC_TEST_UNSET_TOKEN}
connections:
  shop:
    source: {type: generic, secret: env:DEALSYNC_TEST_SET_SECRET}
    target: erp
`
	path := writeFile(t, yaml)
	if _, err := config.Load(path); err == nil || !strings.Contains(err.Error(), "targets.erp.auth_value: secret env:DEALSYNC_TEST_UNSET_TOKEN cannot be resolved") {
		t.Fatalf("Load without WithoutSecrets: %v; want the unresolved secret as a problem", err)
	}
	cfg, err := config.Load(path, config.WithoutSecrets())
	if err != nil {
		t.Fatalf("Load with WithoutSecrets: %v", err)
	}
	got := cfg.UnresolvedSecrets()
	if len(got) != 1 || got[0].Key != "targets.erp.auth_value" || !strings.Contains(got[0].Message, "DEALSYNC_TEST_UNSET_TOKEN is not set") {
		t.Errorf("UnresolvedSecrets = %+v; want only targets.erp.auth_value, saying the variable is not set", got)
	}
	if full := mustLoad(t, writeFile(t, strings.Replace(yaml, "env:DEALSYNC_TEST_UNSET_TOKEN", "env:DEALSYNC_TEST_SET_SECRET", 1)), config.WithoutSecrets()); len(full.UnresolvedSecrets()) != 0 {
		t.Errorf("a config whose secrets resolve lists %+v", full.UnresolvedSecrets())
	}

	// Other problems are problems still.
	bad := writeFile(t, strings.Replace(yaml, `base_url: "https://erp.example.com"`, `base_url: "not a url"`, 1))
	if _, err := config.Load(bad, config.WithoutSecrets()); err == nil || !strings.Contains(err.Error(), "targets.erp.base_url") {
		t.Errorf("a bad base_url with WithoutSecrets: %v; want it refused", err)
	}
}

// Two keys that differ only in case are one key given twice (the config
// reads keys whatever their case; which one was used was not said: a
// Listen of 0.0.0.0 silently won); a fraction where a whole number is
// wanted was cut (2.7 attempts were 2), and a number where true or false
// is wanted taken as true. Each is refused, naming the key; a whole
// number written 3.0 is 3.
func TestCaseVariantKeysFractionsAndNumbersForBooleansAreRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dealsync.yaml")
	if err := os.WriteFile(path, []byte(`
intake: {listen: "127.0.0.1:19770", Listen: "0.0.0.0:19771"}
workflow:
  retry: {maximum_attempts: 2.7}
targets:
  erp: {type: http, base_url: "https://erp.example.com", lookup_invoices: 1}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load: %v", err)
	}
	got := map[string]string{}
	for _, p := range cerr.Problems {
		got[p.Key] = p.Message
	}
	for key, frag := range map[string]string{
		"intake.listen":                   "is given twice, as listen and Listen: keys are read whatever their case",
		"workflow.retry.maximum_attempts": "must be a whole number",
		"targets.erp.lookup_invoices":     "must be true or false",
	} {
		if !strings.Contains(got[key], frag) {
			t.Errorf("%s: %q, want it to say %q (all: %v)", key, got[key], frag, got)
		}
	}
	if err := os.WriteFile(path, []byte("workflow:\n  retry: {maximum_attempts: 1e20}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err == nil || !strings.Contains(err.Error(), "workflow.retry.maximum_attempts: must be a whole number of a usable size") {
		t.Errorf("1e20 attempts: %v", err)
	}
	if err := os.WriteFile(path, []byte("workflow:\n  retry: {maximum_attempts: 3.0}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := config.Load(path); err != nil || cfg.Workflow.Retry.MaximumAttempts != 3 {
		t.Errorf("3.0 attempts: %v", err)
	}
}

// intake.public_base_url is what the intake puts /webhooks/<connection>
// after for the signatures that cover the URL: one with user info, a
// query or a fragment, or a port out of range, is refused without being
// shown (user info is a credential).
func TestPublicBaseURLTakesNoQueryOrUserInfo(t *testing.T) {
	for raw, want := range map[string]string{
		"https://u:SENTINEL@hooks.example.com/": "without user info, a query or a fragment",
		"https://hooks.example.com/?k=SENTINEL": "without user info, a query or a fragment",
		"https://hooks.example.com/#SENTINEL":   "without user info, a query or a fragment",
		"https://hooks.example.com/#":           "without user info, a query or a fragment",
		"https://hooks.example.com/?":           "without user info, a query or a fragment",
		"https://hooks.example.com:99999/":      "has port 99999, which is not a port",
		"https://hooks.example.com/dealsync":    "",
	} {
		t.Setenv("DEALSYNC_INTAKE_PUBLIC_BASE_URL", raw)
		_, err := config.Load("")
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", raw, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), "intake.public_base_url: ") || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "SENTINEL")):
			t.Errorf("%s: %v, want it refused saying %q", raw, err, want)
		}
	}
}

// The config file is YAML whatever its name: dealsync.conf loads (viper
// refused an extension it does not know), JSON is read as the YAML it is,
// with the YAML checks (a connection name in upper case is refused in
// both), and TOML is not read in its own format past them.
func TestTheConfigFileIsYAMLWhateverItsName(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if cfg, err := config.Load(write("dealsync.conf", "intake:\n  listen: 127.0.0.1:19771\n")); err != nil || cfg.Intake.Listen != "127.0.0.1:19771" {
		t.Errorf("dealsync.conf: %v", err)
	}
	// JSON is read as JSON (not all of it is YAML: a \/ escape), with the
	// checks of the text.
	if cfg, err := config.Load(write("c.json", `{"intake": {"public_base_url": "https:\/\/hooks.example.com\/x"}}`)); err != nil || cfg.Intake.PublicBaseURL != "https://hooks.example.com/x" {
		t.Errorf("JSON with a \\/ escape: %v", err)
	}
	if _, err := config.Load(write("d.json", `{"connections": {"ACME": {"source": {"type": "test-source", "secret": "s"}, "target": "erp"}}}`)); err == nil || !strings.Contains(err.Error(), "ACME") || !strings.Contains(err.Error(), "lower") {
		t.Errorf("JSON with an upper-case connection name: %v", err)
	}
	// TOML was read as TOML, past the checks of the YAML text.
	if _, err := config.Load(write("c.toml", "[intake]\nlisten = \"127.0.0.1:19772\"\n")); err == nil || !strings.Contains(err.Error(), "yaml") {
		t.Errorf("TOML: %v, want it read as YAML and refused", err)
	}
}

// Files given by a relative path are read from the working directory,
// not from the config file's (as mapping files are): each is warned of,
// naming its key and that directory; an absolute path is not.
func TestRelativeFilePathsAreWarnedOf(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, f := range []string{"ca.pem", "shop.secret"} {
		if err := os.WriteFile(f, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "dealsync.yaml")
	abs := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, []byte(`
temporal:
  tls: {ca_file: ca.pem}
targets:
  erp: {type: http, base_url: "https://erp.example.com", lookup_invoices: true}
connections:
  shop:
    source: {type: test-source, secret: "file:shop.secret"}
    target: erp
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(cfg.RelativePathWarnings(), "\n")
	for _, want := range []string{
		"temporal.tls.ca_file is the relative path ca.pem, read from the working directory (" + dir + "), not from the config file's",
		"connections.shop.source.secret is the relative path shop.secret",
	} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings:\n%s\nlack %q", w, want)
		}
	}
	// A path starting with ~ says that ~ is not expanded.
	if err := os.MkdirAll(filepath.Join(dir, "~"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "~", "s"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP_SOURCE_SECRET", "file:~/s")
	if cfg, err := config.Load(path); err != nil || !strings.Contains(strings.Join(cfg.RelativePathWarnings(), "\n"), "connections.shop.source.secret is ~/s, and ~ is not expanded here") {
		t.Errorf("a ~ path: %v", err)
	}
	t.Setenv("DEALSYNC_TEMPORAL_TLS_CA_FILE", abs)
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP_SOURCE_SECRET", "file:"+filepath.Join(dir, "shop.secret"))
	if cfg, err := config.Load(path); err != nil {
		t.Errorf("absolute paths: %v", err)
	} else if w := cfg.RelativePathWarnings(); len(w) != 0 {
		t.Errorf("absolute paths: %q", w)
	}
}

// The Temporal namespace and task queue are names: blanks around them are
// dropped, and one of blanks only is missing.
func TestNamespaceAndTaskQueueAreTrimmed(t *testing.T) {
	t.Setenv("DEALSYNC_TEMPORAL_TASK_QUEUE", " h7q ")
	cfg, err := config.Load("")
	if err != nil || cfg.Temporal.TaskQueue != "h7q" {
		t.Fatalf("task queue %q, %v", cfg.Temporal.TaskQueue, err)
	}
	t.Setenv("DEALSYNC_TEMPORAL_NAMESPACE", "  ")
	if _, err := config.Load(""); err == nil || !strings.Contains(err.Error(), "temporal.namespace: is required") {
		t.Errorf("a namespace of blanks: %v", err)
	}
}

// metrics.listen on the intake's own address is refused (the process
// could not open both); another port, or the same port on another host,
// is taken.
func TestMetricsListenIsNotTheIntakes(t *testing.T) {
	t.Setenv("DEALSYNC_INTAKE_LISTEN", "127.0.0.1:19780")
	for listen, refused := range map[string]bool{"127.0.0.1:19780": true, "0.0.0.0:19780": true, ":19780": true, "127.0.0.1:19781": false, "127.0.0.2:19780": false, "localhost:19780": true, "LocalHost:19780": true, "127.0.0.1:019780": true, "[::ffff:127.0.0.1]:19780": true, "[0:0:0:0:0:0:0:0]:19780": true, "[::1]:19780": false} {
		t.Setenv("DEALSYNC_METRICS_LISTEN", listen)
		_, err := config.Load("")
		if got := err != nil && strings.Contains(err.Error(), "metrics.listen: is on intake.listen's address (127.0.0.1:19780)"); got != refused {
			t.Errorf("%s: %v, want refused %v", listen, err, refused)
		}
	}
}

// A problem of a value set by an environment variable names it: the
// message said "in dealsync.yaml", whose file may not have the key.
func TestAProblemOfAnEnvironmentValueNamesTheVariable(t *testing.T) {
	t.Setenv("DEALSYNC_INTAKE_MAX_BODY_BYTES", "12")
	_, err := config.Load("")
	if err == nil || !strings.Contains(err.Error(), "intake.max_body_bytes: must be at least 1024 (set by DEALSYNC_INTAKE_MAX_BODY_BYTES)") {
		t.Errorf("%v", err)
	}
}

// A problem of a key whose name has a - names the variable that set it,
// the - spelling (which wins), not the _ spelling another name may share.
func TestTheSetByVariableOfANameWithAHyphen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dealsync.yaml")
	if err := os.WriteFile(path, []byte(`
targets:
  erp: {type: http, base_url: "https://erp.example.com", lookup_invoices: true}
connections:
  hubspot-eu:
    source: {type: test-source, secret: s}
    target: erp
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Only the _ spelling (the one a shell exports) set: it is named.
	t.Setenv("DEALSYNC_CONNECTIONS_HUBSPOT_EU_TARGET", "nope")
	_, err := config.Load(path)
	if err == nil || !strings.Contains(err.Error(), "(set by DEALSYNC_CONNECTIONS_HUBSPOT_EU_TARGET)") {
		t.Errorf("the _ spelling: %v", err)
	}
	// Both set: the - spelling wins, and is the one named.
	t.Setenv("DEALSYNC_CONNECTIONS_HUBSPOT-EU_TARGET", "nope")
	t.Setenv("DEALSYNC_CONNECTIONS_HUBSPOT_EU_TARGET", "erp")
	_, err = config.Load(path)
	if err == nil || !strings.Contains(err.Error(), `target "nope" is not defined`) ||
		!strings.Contains(err.Error(), "(set by DEALSYNC_CONNECTIONS_HUBSPOT-EU_TARGET)") {
		t.Errorf("both spellings: %v", err)
	}
}

// Timings that work against each other are warned of, not refused; the
// defaults and sound settings give no warning.
func TestTimingWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{name: "defaults"},
		{name: "sound", env: map[string]string{"DEALSYNC_WORKFLOW_RUN_TIMEOUT": "10m", "DEALSYNC_WORKFLOW_ACTIVITY_TIMEOUT": "1m", "DEALSYNC_WORKFLOW_RETRY_MAXIMUM_INTERVAL": "1m"}},
		{name: "step as long as the run", env: map[string]string{"DEALSYNC_WORKFLOW_RUN_TIMEOUT": "30s"},
			want: []string{"workflow.activity_timeout (30s) is not less than workflow.run_timeout (30s)", "workflow.retry.maximum_interval (1m) is not less than workflow.run_timeout (30s)"}},
		{name: "back-off past the run", env: map[string]string{"DEALSYNC_WORKFLOW_RUN_TIMEOUT": "5m", "DEALSYNC_WORKFLOW_RETRY_MAXIMUM_INTERVAL": "10m"},
			want: []string{"workflow.retry.maximum_interval (10m) is not less than workflow.run_timeout (5m)"}},
		// Waits that never grow to the run's length: no warning.
		{name: "a coefficient of 1", env: map[string]string{"DEALSYNC_WORKFLOW_RUN_TIMEOUT": "1m", "DEALSYNC_WORKFLOW_ACTIVITY_TIMEOUT": "10s", "DEALSYNC_WORKFLOW_RETRY_BACKOFF_COEFFICIENT": "1"}},
		{name: "three attempts", env: map[string]string{"DEALSYNC_WORKFLOW_RUN_TIMEOUT": "1m", "DEALSYNC_WORKFLOW_ACTIVITY_TIMEOUT": "10s", "DEALSYNC_WORKFLOW_RETRY_MAXIMUM_ATTEMPTS": "3"}},
		{name: "ten attempts", env: map[string]string{"DEALSYNC_WORKFLOW_RUN_TIMEOUT": "1m", "DEALSYNC_WORKFLOW_ACTIVITY_TIMEOUT": "10s", "DEALSYNC_WORKFLOW_RETRY_MAXIMUM_ATTEMPTS": "10"},
			want: []string{"workflow.retry.maximum_interval (1m) is not less than workflow.run_timeout (1m)"}},
		{name: "no retry at all", env: map[string]string{"DEALSYNC_WORKFLOW_RUN_TIMEOUT": "1m", "DEALSYNC_WORKFLOW_ACTIVITY_TIMEOUT": "10s", "DEALSYNC_WORKFLOW_RETRY_INITIAL_INTERVAL": "2m", "DEALSYNC_WORKFLOW_RETRY_MAXIMUM_INTERVAL": "5m"},
			want: []string{"workflow.retry.initial_interval (2m) is not less than workflow.run_timeout (1m): a failed call is never tried again"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := config.Load("")
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.TimingWarnings()
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %q, want %d", got, len(tc.want))
			}
			for i, want := range tc.want {
				if !strings.HasPrefix(got[i], want) {
					t.Errorf("warning %d: %q, want it to start %q", i, got[i], want)
				}
			}
		})
	}
}

// A variable that names a section or an entry, not a key, is refused:
// viper took it for the whole section's value and dropped every key under
// it (connection shop silently vanished).
func TestEnvNamingASectionIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dealsync.yaml")
	if err := os.WriteFile(path, []byte(`
targets:
  erp: {type: http, base_url: "https://erp.example.com"}
connections:
  shop:
    source: {type: test-source, secret: "0123456789abcdef0123456789abcdef"}
    target: erp
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err != nil {
		t.Fatalf("without the variable: %v", err)
	}
	for _, tc := range []struct{ name, section, example string }{
		{"DEALSYNC_CONNECTIONS_SHOP", "connections.shop", "DEALSYNC_CONNECTIONS_SHOP_"},
		{"DEALSYNC_INTAKE", "intake", "DEALSYNC_INTAKE_"},
		{"DEALSYNC_CONNECTIONS", "connections", "DEALSYNC_CONNECTIONS_SHOP_"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.name, "x")
			_, err := config.Load(path)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *config.Error", err)
			}
			msg := err.Error()
			for _, want := range []string{tc.section + ": the environment variable " + tc.name + " is set", "such as " + tc.example, "unset " + tc.name} {
				if !strings.Contains(msg, want) {
					t.Errorf("error:\n%s\nlacks %q", msg, want)
				}
			}
		})
	}
	// Empty is unset, as everywhere in the config.
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP", "")
	if _, err := config.Load(path); err != nil {
		t.Errorf("an empty variable: %v", err)
	}
}

// A secret written as a list or a mapping is named as such: decoded as
// the secret's own type, a list was "a mapping of keys" and a mapping an
// empty secret ("is required").
func TestASecretOfTheWrongYAMLType(t *testing.T) {
	for value, want := range map[string]string{
		"[a, b]":     "must be a string (a secret, env:NAME or file:PATH), not a list",
		"{value: x}": "must be a string (a secret, env:NAME or file:PATH), not a mapping of keys",
	} {
		_, err := config.Load(writeFile(t, `
targets:
  erp: {type: http, base_url: "https://erp.example.com"}
connections:
  shop:
    source: {type: test-source, secret: `+value+`}
    target: erp
`))
		var ce *config.Error
		if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Key != "connections.shop.source.secret" || ce.Problems[0].Message != want {
			t.Errorf("secret %s: %v, want the one problem %q", value, err, want)
		}
	}
}

// A file dealsync writes (a token_file) in a directory this process cannot
// write is warned of, naming the directory: every call to that ERP would
// fail LocalFileUnavailable. One whose directory is yet to be made is
// judged by the directory it would be made in.
func TestUnwritableTokenFileIsWarnedOf(t *testing.T) {
	dir := t.TempDir()
	load := func(tokenFile string) []string {
		t.Helper()
		cfg, err := config.Load(writeFile(t, `
targets:
  erp: {type: test-target, base_url: "https://erp.example.com", token_file: "`+tokenFile+`"}
`))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.UnwritableFileWarnings()
	}
	if w := load(filepath.Join(dir, "tokens", "erp.json")); len(w) != 0 {
		t.Errorf("a writable directory: %q", w)
	}
	// A file where the directory should be: no one can write there.
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{filepath.Join(file, "erp.json"): file + ": not a directory", filepath.Join(file, "sub", "erp.json"): file + ": not a directory"}
	if os.Geteuid() != 0 { // root writes any directory
		locked := filepath.Join(dir, "locked")
		if err := os.Mkdir(locked, 0o500); err != nil {
			t.Fatal(err)
		}
		cases[filepath.Join(locked, "erp.json")] = locked + ": "
		cases[filepath.Join(locked, "sub", "erp.json")] = locked + ": "
	}
	for path, why := range cases {
		w := load(path)
		if len(w) != 1 || !strings.HasPrefix(w[0], "targets.erp.token_file is "+path+", in a directory this process cannot write ("+why) ||
			!strings.Contains(w[0], "LocalFileUnavailable") {
			t.Errorf("%s: %q", path, w)
		}
	}
}

// The underscore spelling of a hyphenated entry's variable is refused as
// the hyphenated one is; a variable that is one entry's key and another
// entry's name says the names collide; a misspelt variable is never
// pointed at another entry's key.
func TestEnvSectionsCollisionsAndHints(t *testing.T) {
	path := writeFile(t, `
targets:
  erp: {type: http, base_url: "https://erp.example.com"}
connections:
  hubspot-eu:
    source: {type: test-source, secret: "0123456789abcdef0123456789abcdef"}
    target: erp
  shop:
    source: {type: test-source, secret: "0123456789abcdef0123456789abcdef"}
    target: erp
  shop_target:
    source: {type: test-source, secret: "0123456789abcdef0123456789abcdef"}
    target: erp
`)
	refused := func(name, want string) {
		t.Helper()
		t.Setenv(name, "x")
		defer os.Unsetenv(name)
		if _, err := config.Load(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
	refused("DEALSYNC_CONNECTIONS_HUBSPOT_EU", "connections.hubspot-eu: the environment variable DEALSYNC_CONNECTIONS_HUBSPOT_EU is set, which names all of connections.hubspot-eu, not a key")
	refused("DEALSYNC_CONNECTIONS_SHOP_TARGET", "connections.shop_target: the environment variable DEALSYNC_CONNECTIONS_SHOP_TARGET is set, which is the variable of connections.shop.target and names all of connections.shop_target as well")

	// No hint across entries: US is no typo of EU, nor erp2 of erp.
	t.Setenv("DEALSYNC_CONNECTIONS_HUBSPOT_US_TARGET", "erp")
	t.Setenv("DEALSYNC_TARGETS_ERP2_TIMEOUT", "5s")
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP_TARGT", "erp")
	t.Setenv("DEALSYNC_CONECTIONS_SHOP_LINGER", "1m")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(cfg.IgnoredEnvWarnings(), "\n")
	for _, want := range []string{
		"DEALSYNC_CONNECTIONS_HUBSPOT_US_TARGET sets no config key and is ignored: is it misspelt",
		"DEALSYNC_TARGETS_ERP2_TIMEOUT sets no config key and is ignored: is it misspelt",
		"DEALSYNC_CONNECTIONS_SHOP_TARGT sets no config key and is ignored: did you mean DEALSYNC_CONNECTIONS_SHOP_TARGET?",
		"DEALSYNC_CONECTIONS_SHOP_LINGER sets no config key and is ignored: did you mean DEALSYNC_CONNECTIONS_SHOP_LINGER?",
	} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings:\n%s\nlack %q", w, want)
		}
	}
}

// A value in braces whose keys have no text for a value ({X}) is refused,
// naming it: YAML reads it as a mapping, and the config dropped it (an
// account of a CRM source vanished). A null written as such (YAML's null,
// JSON's) and an empty {} are meant, and load.
func TestKeylessBracesAreRefused(t *testing.T) {
	_, err := config.Load(writeFile(t, `
targets:
  erp: {type: http, base_url: "https://erp.example.com"}
connections:
  shop:
    source: {type: test-source, secret: {whsec_abc}}
    target: erp
`))
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Key != "connections.shop.source.secret" ||
		!strings.HasPrefix(ce.Problems[0].Message, "is written in braces, which YAML reads as a mapping of keys without values") ||
		strings.Contains(err.Error(), "whsec_abc") {
		t.Fatalf("a secret in braces: %v", err)
	}
	for name, text := range map[string]string{
		"dealsync.yaml": "metrics: {listen: null}\nlog: {level: ~}\nmappings: {}\n",
		"dealsync.json": `{"metrics": {"listen": null}, "mappings": {}}`,
	} {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(path); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The underscore spelling of a hyphenated entry that is also another
// entry's key (connections shop and shop-target) sets that key: the
// config reads only the hyphenated spelling of a whole section.
func TestUnderscoreSpellingOfAnEntryThatIsAKey(t *testing.T) {
	path := writeFile(t, `
targets:
  erp: {type: http, base_url: "https://erp.example.com"}
  erp2: {type: http, base_url: "https://erp2.example.com"}
connections:
  shop:
    source: {type: test-source, secret: "0123456789abcdef0123456789abcdef"}
    target: erp
  shop-target:
    source: {type: test-source, secret: "0123456789abcdef0123456789abcdef"}
    target: erp
`)
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP_TARGET", "erp2")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Connections["shop"].Target; got != "erp2" || len(cfg.Connections) != 2 {
		t.Errorf("shop's target %q, %d connections; want erp2 and both", got, len(cfg.Connections))
	}
}

// The longest retry wait is computed, not counted: a coefficient a hair
// over 1 would have taken for ever to reach the maximum.
func TestTimingWarningOfATinyCoefficientEnds(t *testing.T) {
	t.Setenv("DEALSYNC_WORKFLOW_RETRY_BACKOFF_COEFFICIENT", "1.0000000000000002")
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.TimingWarnings(); len(w) != 0 {
		t.Errorf("warnings %q", w)
	}
}

// worker.deployment (worker versioning) is off by default, set by the file
// or the environment, and both or neither, as Temporal takes them.
func TestWorkerDeployment(t *testing.T) {
	def := mustLoad(t, "")
	equal(t, "default", def.Worker.Deployment, config.Deployment{})
	equal(t, "default versioned", def.Worker.Deployment.Versioned(), false)

	t.Setenv("DEALSYNC_WORKER_DEPLOYMENT_NAME", "dealsync")
	t.Setenv("DEALSYNC_WORKER_DEPLOYMENT_BUILD_ID", "v1.4.0")
	cfg := mustLoad(t, "")
	equal(t, "from the environment", cfg.Worker.Deployment, config.Deployment{Name: "dealsync", BuildID: "v1.4.0"})
	equal(t, "versioned", cfg.Worker.Deployment.Versioned(), true)

	for _, c := range []struct {
		yaml string
		want []config.Problem
	}{
		{"worker: {deployment: {name: dealsync}}", []config.Problem{{Key: "worker.deployment.build_id", Message: "is required when worker.deployment.name is set (the build of this release: another for each release)"}}},
		{"worker: {deployment: {build_id: v1}}", []config.Problem{{Key: "worker.deployment.name", Message: "is required when worker.deployment.build_id is set"}}},
		{"worker: {deployment: {name: deal.sync, build_id: v1}}", []config.Problem{{Key: "worker.deployment.name", Message: `must not contain "." or ":" (Temporal refuses them)`}}},
		{"worker: {deployment: {name: __dealsync, build_id: __v1}}", []config.Problem{
			{Key: "worker.deployment.build_id", Message: `must not start with "__" (Temporal refuses it)`},
			{Key: "worker.deployment.name", Message: `must not start with "__" (Temporal refuses it)`},
		}},
		{"worker: {deployment: {name: " + strings.Repeat("d", 481) + ", build_id: " + strings.Repeat("b", 480) + "}}", []config.Problem{
			{Key: "worker.deployment.name", Message: "is 481 bytes long: at most 480 (Temporal refuses longer ones with its default limit.maxIDLength)"},
		}},
	} {
		t.Setenv("DEALSYNC_WORKER_DEPLOYMENT_NAME", "")
		t.Setenv("DEALSYNC_WORKER_DEPLOYMENT_BUILD_ID", "")
		os.Unsetenv("DEALSYNC_WORKER_DEPLOYMENT_NAME")
		os.Unsetenv("DEALSYNC_WORKER_DEPLOYMENT_BUILD_ID")
		_, err := config.Load(writeFile(t, c.yaml))
		var cerr *config.Error
		if !errors.As(err, &cerr) {
			t.Fatalf("%s: got %v, want *config.Error", c.yaml, err)
		}
		equal(t, c.yaml, cerr.Problems, c.want)
	}
}

// log.replica names the process (each replica its own, from the
// environment most often); a name with a control character, which would
// break a log line, is refused.
func TestLogReplica(t *testing.T) {
	path := writeFile(t, fileYAML)
	equal(t, "log.replica by default", mustLoad(t, path).Log.Replica, "")
	t.Setenv("DEALSYNC_LOG_REPLICA", "intake-2")
	equal(t, "log.replica", mustLoad(t, path).Log.Replica, "intake-2")
	t.Setenv("DEALSYNC_LOG_REPLICA", "intake\n2")
	_, err := config.Load(path)
	var ce *config.Error
	if !errors.As(err, &ce) || !ce.Has("log.replica") || !strings.Contains(err.Error(), "printable ASCII") {
		t.Errorf("Load = %v, want log.replica refused as not printable", err)
	}
}

func TestEncryptionSettings(t *testing.T) {
	good := "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=" // 32 bytes of 1
	t.Setenv("TEST_ENC_K1", good)
	cfg := mustLoad(t, writeFile(t, "temporal:\n  encryption:\n    key_id: k1\n    keys:\n      k1: env:TEST_ENC_K1\n      k0: env:TEST_ENC_K1\n"))
	e := cfg.Temporal.Encryption
	if !e.On() || e.KeyID != "k1" || len(e.Keys) != 2 || reveal(t, e.Keys["k1"]) != good {
		t.Fatalf("encryption %+v", e)
	}
	if off := mustLoad(t, ""); off.Temporal.Encryption.On() || off.Temporal.Encryption.CodecEndpoint {
		t.Fatalf("encryption on by default: %+v", off.Temporal.Encryption)
	}

	t.Setenv("TEST_ENC_SHORT", "AQEBAQ==")
	_, err := config.Load(writeFile(t, "temporal:\n  encryption:\n    key_id: k2\n    codec_endpoint: true\n    keys:\n      k1: env:TEST_ENC_SHORT\n"))
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("load: %v, want a config error", err)
	}
	want := map[string]string{
		"temporal.encryption.key_id":         `key "k2" is not defined under temporal.encryption.keys (defined: k1)`,
		"temporal.encryption.keys.k1":        "is 4 bytes, not the 32 of an AES-256 key",
		"temporal.encryption.codec_endpoint": "metrics.listen, which is not set",
	}
	for _, p := range ce.Problems {
		if w, ok := want[p.Key]; ok && strings.Contains(p.Message, w) {
			delete(want, p.Key)
		}
	}
	if len(want) > 0 {
		t.Fatalf("problems %v lack %v", ce.Problems, want)
	}
	if strings.Contains(err.Error(), "AQEBAQ") {
		t.Fatalf("the key is in the error: %v", err)
	}
}

// The codec endpoint compares a page's Origin header with codec_origins
// exactly: a value no browser sends is refused rather than never matched.
func TestEncryptionCodecOriginsAreOrigins(t *testing.T) {
	t.Setenv("TEST_ENC_K1", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")
	head := "metrics:\n  listen: 127.0.0.1:9090\ntemporal:\n  encryption:\n    key_id: k1\n    codec_endpoint: true\n    keys:\n      k1: env:TEST_ENC_K1\n    codec_origins:\n"
	mustLoad(t, writeFile(t, head+"      - https://temporal.example.com\n      - http://127.0.0.1:8233\n"))
	for _, bad := range []string{"https://temporal.example.com/", "https://temporal.example.com/ui", "https://Temporal.example.com", "https://temporal.example.com:443", "temporal.example.com"} {
		_, err := config.Load(writeFile(t, head+"      - https://ok.example\n      - "+bad+"\n"))
		var ce *config.Error
		if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Key != "temporal.encryption.codec_origins[1]" {
			t.Errorf("codec_origins %q: %v, want one problem at temporal.encryption.codec_origins[1]", bad, err)
		}
	}
}
