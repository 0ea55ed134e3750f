package app

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/internal/localcalls"
	"github.com/dealsync/dealsync/internal/refusal"
	"github.com/dealsync/dealsync/internal/testlog"
	"github.com/dealsync/dealsync/secret"
)

// The connectors' HTTP client times a call out no sooner than a step may
// last (workflow.activity_timeout), and after a minute at the least: a
// backstop shorter than the step cut calls the step allowed, which were
// then retried for ever. It keeps connections to a host alive.
func TestConnectorClientTimeoutIsNeverShorterThanAStep(t *testing.T) {
	for _, c := range []struct{ step, want time.Duration }{
		{10 * time.Second, time.Minute},
		{time.Minute, time.Minute},
		{5 * time.Minute, 5 * time.Minute},
	} {
		cfg := &config.Config{}
		cfg.Workflow.ActivityTimeout = c.step
		hc := connectorClient(cfg)
		if hc.Timeout != c.want {
			t.Errorf("activity_timeout %v: client timeout %v, want %v", c.step, hc.Timeout, c.want)
		}
		if tr, ok := hc.Transport.(*http.Transport); !ok {
			t.Errorf("activity_timeout %v: transport %T, want an *http.Transport", c.step, hc.Transport)
		} else if tr.MaxIdleConnsPerHost != 64 {
			t.Errorf("activity_timeout %v: %d idle connections per host, want 64", c.step, tr.MaxIdleConnsPerHost)
		}
	}
}

// An API key means TLS, and the TLS settings given apply with it even when
// tls.enabled is left false: a server name set for a private endpoint
// (Temporal Cloud over PrivateLink) is the one verified. A server name
// alone means TLS too; no TLS setting and no key, none.
func TestClientOptionsTLSWithAnAPIKey(t *testing.T) {
	for _, c := range []struct {
		name       string
		apiKey     string
		serverName string
		wantTLS    bool
	}{
		{"api key and server name", "k", "ns.acct.tmprl.cloud", true},
		{"api key alone", "k", "", true},
		{"server name alone", "", "ns.acct.tmprl.cloud", true},
		{"neither", "", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := &config.Config{}
			cfg.Temporal.Address, cfg.Temporal.Namespace = "127.0.0.1:7233", "default"
			cfg.Temporal.TLS.ServerName = c.serverName
			if c.apiKey != "" {
				cfg.Temporal.APIKey = secret.New(c.apiKey)
			}
			opts, err := ClientOptions(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			tc := opts.ConnectionOptions.TLS
			if (tc != nil) != c.wantTLS {
				t.Fatalf("TLS %v, want %v", tc != nil, c.wantTLS)
			}
			if tc != nil && tc.ServerName != c.serverName {
				t.Errorf("TLS server name %q, want %q", tc.ServerName, c.serverName)
			}
			if (opts.Credentials != nil) != (c.apiKey != "") {
				t.Errorf("credentials %v with api key %q", opts.Credentials != nil, c.apiKey)
			}
		})
	}
}

// The SDK's "Activity error." line of every failed attempt of a step run
// as an activity goes to debug (the worker logs its own line per
// attempt, at warn, or at error when it ends the run); the SDK's other
// errors stay errors, also through With.
func TestSDKActivityErrorsAreDebug(t *testing.T) {
	var buf testlog.Buffer
	l := quietActivityErrors{sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))}
	sdklog.With(l, "WorkflowID", "invoice/demo/D-1").Error("Activity error.", "Attempt", 2, "Error", temporal.NewApplicationError("503", "ERPUnavailable"))
	l.Error("Failed to poll for task.")
	// An input the activity could not decode never reached the step:
	// nothing else logs it.
	l.Error("Activity error.", "Attempt", 1, "Error", errors.New("unable to decode the activity function input payload"))
	out := buf.String()
	if !strings.Contains(out, `level=DEBUG msg="Activity error." WorkflowID=invoice/demo/D-1 Attempt=2`) ||
		!strings.Contains(out, `level=ERROR msg="Failed to poll for task."`) ||
		!strings.Contains(out, `level=ERROR msg="Activity error." Attempt=1 Error="unable to decode`) {
		t.Errorf("log:\n%s", out)
	}
}

// Journey: a worker lacking a run's connection logged `ERROR "Workflow
// panic"` with a stack trace at every refusal (64 for 40 runs): the
// guard's panic fails the workflow task so that another worker takes the
// run, by design, and read like a crash. The SDK's line of a refusal the
// guard noted goes to debug without its stack (the guard says it at
// warn, once per run); a real panic, or another run's, stays an error
// with its stack.
func TestGuardRefusalIsNoCrash(t *testing.T) {
	var buf testlog.Buffer
	l := quietActivityErrors{sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))}
	msg := `connection "shop" is not configured on this worker: its workflow task fails here so that a worker of the task queue that has the connection takes the run`
	refusal.Note("run-refused", msg)
	panicLine := func(run string, err error) {
		sdklog.With(l, "Namespace", "default").Error("Workflow panic", "WorkflowType", "InvoiceDeal", "WorkflowID", "invoice/shop/D-1",
			"RunID", run, "Attempt", 2, "Error", err, "StackTrace", "goroutine 1 [running]:\nmain.main()")
	}
	panicLine("run-refused", errors.New(msg))
	panicLine("run-other", errors.New(msg))                                   // not noted for this run
	panicLine("run-refused", errors.New("runtime error: index out of range")) // a real panic of a refused run
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("log:\n%s", out)
	}
	if !strings.Contains(lines[0], `level=DEBUG msg="workflow task refused: this worker lacks the run's connection" Namespace=default`) ||
		!strings.Contains(lines[0], "RunID=run-refused Attempt=2") || strings.Contains(lines[0], "StackTrace") {
		t.Errorf("a guard's refusal: %s", lines[0])
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, `level=ERROR msg="Workflow panic"`) || !strings.Contains(l, "StackTrace=") {
			t.Errorf("a panic that is not the guard's refusal of its run: %s", l)
		}
	}
}

// Journey: with the ERP down, every run logged the SDK's `[TMPRL1104] …
// Workflow task duration exceeded 5 seconds.` at warn: its local calls'
// retries (and their back-offs) run inside its workflow task, which the
// SDK heartbeats after 8 s. A long task of a run whose local call failed
// during it is said once per run at info, as dealsync's own line, and at
// debug after that; a long task without one (a slow worker) stays a
// warning.
func TestLongWorkflowTaskOfLocalCallRetriesIsNoWarning(t *testing.T) {
	var buf testlog.Buffer
	l := quietActivityErrors{sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))}
	long := func(run string) {
		sdklog.With(l, "Namespace", "default").Warn("[TMPRL1104] "+run+":4:1 Workflow task duration exceeded 5 seconds.",
			"WorkflowType", "InvoiceDeal", "WorkflowID", "invoice/demo/"+run, "RunID", run, "Attempt", 1, "EventID", 4, "WorkflowTaskDuration", 8*time.Second)
	}
	localcalls.Ran("run-retrying", time.Now())
	long("run-retrying")
	long("run-retrying")
	long("run-slow") // no local call of its own during the task
	localcalls.Ran("run-earlier", time.Now().Add(-time.Minute))
	long("run-earlier") // its local call ended before the task began
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("log:\n%s", buf.String())
	}
	if !strings.Contains(lines[0], `level=INFO msg="workflow task held by its run's local calls being retried (workflow.external_calls: local): expected while an ERP or CRM call fails, not a deadlock;`) ||
		!strings.Contains(lines[0], "Namespace=default") || !strings.Contains(lines[0], "RunID=run-retrying") || !strings.Contains(lines[0], "WorkflowTaskDuration=8s") {
		t.Errorf("the run's first long task: %s", lines[0])
	}
	if !strings.Contains(lines[1], `level=DEBUG msg="[TMPRL1104] run-retrying:4:1`) {
		t.Errorf("the run's second long task: %s", lines[1])
	}
	for _, line := range lines[2:] {
		if !strings.Contains(line, `level=WARN msg="[TMPRL1104]`) {
			t.Errorf("a long task its local calls did not hold: %s", line)
		}
	}
}
