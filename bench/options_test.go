package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors/httptarget"
	"github.com/dealsync/dealsync/connectors/sandbox"
)

func validOptions() Options {
	return Options{N: 10, Concurrency: 2, NonTriggerShare: 0.1, Timeout: time.Minute, Settle: time.Second, Retries: 3}
}

// Input checks: -n 0 and -c 0 became the defaults silently, --non-trigger
// below -1 panicked in makeEvents, and negative --retries made no attempt.
func TestCheckRefusesWhatARunCannotHonour(t *testing.T) {
	if err := (&Options{N: 10, Concurrency: 2, Timeout: time.Minute, Settle: time.Second}).Check(); err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
	for _, c := range []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.N = 0 }, "--deals must be positive"},
		{func(o *Options) { o.N = -5 }, "--deals must be positive"},
		{func(o *Options) { o.Concurrency = 0 }, "--concurrency must be positive"},
		{func(o *Options) { o.NonTriggerShare = -1.5 }, "--non-trigger must not be negative"},
		{func(o *Options) { o.NonTriggerShare = -0.5 }, "--non-trigger must not be negative"},
		{func(o *Options) { o.Retries = -1 }, "--retries must not be negative"},
		{func(o *Options) { o.Timeout = 0 }, "--timeout must be positive"},
		{func(o *Options) { o.Settle = -time.Second }, "--settle must be positive"},
		{func(o *Options) { o.Rate = -1 }, "--rate must not be negative"},
		{func(o *Options) { o.ErrorRate = 1.5 }, "--error-rate must be between 0 and 1"},
		{func(o *Options) { o.Rounds = -1 }, "--rounds must not be negative"},
		{func(o *Options) { o.BaselineN = -1 }, "--baseline-n must not be negative"},
		{func(o *Options) { o.HistorySample = -1 }, "--history-sample must not be negative"},
		{func(o *Options) { o.Baselines = []string{"locals"} }, `unknown baseline variant "locals"`},
	} {
		o := validOptions()
		c.change(&o)
		if err := o.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
	// Every problem at once.
	o := validOptions()
	o.N, o.Retries = 0, -1
	if err := o.Check(); err == nil || !strings.Contains(err.Error(), "--deals") || !strings.Contains(err.Error(), "--retries") {
		t.Errorf("both problems: %v", err)
	}
}

// devConfig is the dev config plus a production target and connections to
// it, as an operator's config file would add them.
func devConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load("", config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Targets["erp"] = config.Component{Type: "http", Spec: &httptarget.Config{BaseURL: "https://erp.example.com:8090"}}
	cfg.Targets["books"] = config.Component{Type: "quickbooks", Spec: struct{}{}}
	cfg.Connections["prod"] = config.Connection{Target: "erp"}
	cfg.Connections["books"] = config.Connection{Target: "books"}
	cfg.Connections["mixed"] = config.Connection{Target: "sandbox", AccountTargets: map[string]string{"42": "erp"}}
	return cfg
}

// Review item 7: nothing checked that the connection's invoices go to the
// bench's own sandbox: a production config would create real invoices.
func TestCheckSandboxTargetRefusesAnyOtherTarget(t *testing.T) {
	cfg := devConfig(t)
	if err := checkSandboxTarget(cfg, "demo"); err != nil {
		t.Fatalf("demo refused: %v", err)
	}
	for conn, want := range map[string]string{
		"prod":    `target "erp"`,
		"books":   `target "books" (type quickbooks)`,
		"mixed":   `target "erp"`,
		"nowhere": `no connection "nowhere"`,
	} {
		if err := checkSandboxTarget(cfg, conn); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("connection %s: want %q, got %v", conn, want, err)
		}
	}
}

// The combinations Run refused once begun (the CLI exited 1 for them, not
// 2): Check refuses them with the flags, and the connection too when the
// in-process stack's config is given.
func TestCheckRefusesCombinationsAndTheConnection(t *testing.T) {
	cfg := devConfig(t)
	for _, c := range []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.IntakeURL = "http://127.0.0.1:8080" }, "needs both --intake-url and --sandbox-url"},
		{func(o *Options) { o.SandboxURL = "http://127.0.0.1:8090" }, "needs both --intake-url and --sandbox-url"},
		{func(o *Options) {
			o.IntakeURL, o.SandboxURL, o.ErrorRate = "http://127.0.0.1:8080", "http://127.0.0.1:8090", 0.05
		}, "--error-rate and --rate-limit-rate inject ERP faults only into the in-process stack"},
		{func(o *Options) {
			o.IntakeURL, o.SandboxURL, o.RateLimitRate = "http://127.0.0.1:8080", "http://127.0.0.1:8090", 0.05
		}, "--error-rate and --rate-limit-rate inject ERP faults only into the in-process stack"},
		{func(o *Options) { o.Config, o.Connection = cfg, "nowhere" }, `no connection "nowhere"`},
		// Ignored by the in-process stack: a forgotten --intake-url.
		{func(o *Options) { o.PID = 4242 }, "--pid and --temporal-address describe an external target"},
		{func(o *Options) { o.TemporalAddress = "127.0.0.1:7233" }, "--pid and --temporal-address describe an external target"},
		{func(o *Options) { o.Config, o.Connection = cfg, "prod" }, `target "erp"`},
	} {
		o := validOptions()
		c.change(&o)
		if err := o.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
	for _, o := range []Options{
		{Config: cfg},                     // the default connection, demo
		{Config: cfg, Connection: "demo"}, // the sandbox ERP's
		{IntakeURL: "http://127.0.0.1:8080", SandboxURL: "http://127.0.0.1:8090"},
		{Config: cfg, ErrorRate: 0.05, RateLimitRate: 0.05}, // in-process faults
	} {
		v := validOptions()
		o.N, o.Concurrency, o.NonTriggerShare, o.Timeout, o.Settle, o.Retries = v.N, v.Concurrency, v.NonTriggerShare, v.Timeout, v.Settle, v.Retries
		if err := o.Check(); err != nil {
			t.Errorf("valid options refused: %v", err)
		}
	}
}

// Review item 7: the in-process stack kept metrics.listen, whose fixed
// port collides with a running dealsync's.
func TestStackConfigLeavesMetricsOutAndRedirectsOnlyTheSandbox(t *testing.T) {
	cfg := devConfig(t)
	cfg.Metrics.Listen = "127.0.0.1:9090"
	got := stackConfig(cfg, t.TempDir(), "127.0.0.1:45678")
	if got.Metrics.Listen != "" {
		t.Errorf("metrics.listen %q", got.Metrics.Listen)
	}
	if cfg.Metrics.Listen != "127.0.0.1:9090" {
		t.Errorf("the base config was changed")
	}
	if u := got.Targets["sandbox"].Spec.(*httptarget.Config).BaseURL; u != "http://127.0.0.1:45678" {
		t.Errorf("sandbox target %s", u)
	}
	if u := got.Targets["erp"].Spec.(*httptarget.Config).BaseURL; u != "https://erp.example.com:8090" {
		t.Errorf("a production target on the sandbox's port was redirected: %s", u)
	}
	if err := checkSandboxTarget(got, "demo"); err != nil {
		t.Errorf("the stack's own config: %v", err)
	}
}

// The bench's --error-rate and --rate-limit-rate are added to the sandbox
// faults the config sets (sandbox.latency, sandbox.lost_response_rate),
// which stay: they were replaced, and the bench ran without them.
func TestBenchRatesKeepTheConfiguredFaults(t *testing.T) {
	got := withRates(sandbox.Faults{Latency: 20 * time.Millisecond, LostResponseRate: 0.1, ErrorRate: 0.5},
		Options{ErrorRate: 0.05, RateLimitRate: 0.02, RetryAfter: time.Second})
	want := sandbox.Faults{Latency: 20 * time.Millisecond, LostResponseRate: 0.1, ErrorRate: 0.05, RateLimitRate: 0.02, RetryAfter: time.Second}
	if got.Latency != want.Latency || got.LostResponseRate != want.LostResponseRate || got.ErrorRate != want.ErrorRate ||
		got.RateLimitRate != want.RateLimitRate || got.RetryAfter != want.RetryAfter {
		t.Errorf("faults %+v, want %+v", got, want)
	}
}
