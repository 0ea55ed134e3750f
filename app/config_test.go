package app

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/connectors/httptarget"
)

// The shipped example config loads with the real connectors (the config
// package's own tests use stand-ins) and every documented default is the
// connector's own.
func TestExampleConfigWithTheRealConnectors(t *testing.T) {
	t.Setenv("DEALSYNC_TARGETS_SANDBOX_AUTH_VALUE", "Bearer from-env")
	cfg, err := config.Load("../examples/dealsync.yaml")
	if err != nil {
		t.Fatal(err)
	}
	target, ok := cfg.Targets["sandbox"].Spec.(*httptarget.Config)
	if !ok {
		t.Fatalf("targets.sandbox spec is %T", cfg.Targets["sandbox"].Spec)
	}
	want := httptarget.DefaultConfig()
	// auth_header is documented commented out: its documented value must
	// be the default.
	example, err := os.ReadFile("../examples/dealsync.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if documented := "# auth_header: " + want.AuthHeader + "\n"; !strings.Contains(string(example), documented) {
		t.Errorf("the example does not document auth_header's default as %q", documented)
	}
	if target.BaseURL != "http://127.0.0.1:8090" || target.IdempotencyHeader != want.IdempotencyHeader ||
		target.CustomersPath != want.CustomersPath || target.CustomerLookup != want.CustomerLookup || target.InvoicesPath != want.InvoicesPath ||
		target.Timeout != want.Timeout || target.AuthHeader != want.AuthHeader {
		t.Fatalf("targets.sandbox = %+v, want the http target's defaults %+v", target, want)
	}
	if v, err := target.AuthValue.Reveal(); err != nil || v != "Bearer from-env" {
		t.Fatalf("auth_value from the environment (not in the file): %v", err)
	}
	source, ok := cfg.Connections["demo"].Source.Spec.(*generic.Config)
	if !ok || source.Tolerance != 5*time.Minute {
		t.Fatalf("connections.demo.source = %#v", cfg.Connections["demo"].Source.Spec)
	}
	set, err := BuildConnections(cfg, NewLogger(cfg.Log, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := set.Get("demo"); !ok || c.Mapper.Name() != "default" {
		t.Fatalf("demo connection not built: %+v", c)
	}
}

// A HubSpot connection without intake.public_base_url: the intake says at
// start that a proxy would make every delivery fail its signature check;
// with the public URL set, or for another source, it says nothing.
func TestIntakeWarnsOfHubSpotWithoutPublicURL(t *testing.T) {
	for _, c := range []struct {
		name, public string
		want         bool
	}{{"no public URL", "", true}, {"public URL", "https://hooks.example.com", false}} {
		t.Run(c.name, func(t *testing.T) {
			yaml := `
connections:
  hs:
    target: sandbox
    trigger: {won_stages: [closedwon]}
    source:
      type: hubspot
      client_secret: hs-secret
      base_url: http://127.0.0.1:9
      accounts:
        "62515": {access_token: pat-na1-62515}
`
			if c.public != "" {
				yaml = "intake:\n  public_base_url: " + c.public + "\n" + yaml
			}
			f := filepath.Join(t.TempDir(), "dealsync.yaml")
			if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(f, config.WithDevDefaults())
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			set, err := BuildConnections(cfg, logger)
			if err != nil {
				t.Fatal(err)
			}
			IntakeHandler(cfg, set, nil, logger)
			got := strings.Contains(logs.String(), "public_base_url is not set") && strings.Contains(logs.String(), "connection=hs")
			if got != c.want || strings.Contains(logs.String(), "connection=demo") {
				t.Errorf("warning logged: %v, want %v:\n%s", got, c.want, logs.String())
			}
		})
	}
}

// The JSON log writes durations as the text log does ("5s"), not as
// integer nanoseconds; other values are left alone.
func TestJSONLogWritesDurationsAsText(t *testing.T) {
	var b strings.Builder
	NewLogger(config.Log{Level: "info", Format: "json"}, &b).Info("draining", "for", 5*time.Second, "count", 3)
	if out := b.String(); !strings.Contains(out, `"for":"5s"`) || !strings.Contains(out, `"count":3`) {
		t.Errorf("JSON log line: %s", out)
	}
}

// Every line of the process logger names the process, in both formats:
// log.replica, or <pid>@<hostname>@; and the Temporal client's identity,
// which the Web UI shows as the Identity of the events the process
// caused, is the same string.
func TestEveryLogLineNamesTheReplicaAsTemporalDoes(t *testing.T) {
	host, _ := os.Hostname()
	byDefault := fmt.Sprintf("%d@%s@", os.Getpid(), host)
	for _, c := range []struct {
		log  config.Log
		want string
	}{
		{config.Log{Level: "info", Format: "text"}, "replica=" + byDefault + " "},
		{config.Log{Level: "info", Format: "json"}, `"replica":"` + byDefault + `"`},
		{config.Log{Level: "info", Format: "text", Replica: "intake-2"}, "replica=intake-2 "},
		{config.Log{Level: "info", Format: "json", Replica: "worker-eu-1"}, `"replica":"worker-eu-1"`},
	} {
		var b strings.Builder
		logger := NewLogger(c.log, &b)
		logger.Info("one")
		logger.With("component", "temporal-client").Warn("two", "k", 1)
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		if len(lines) != 2 {
			t.Fatalf("%+v: %d lines: %s", c.log, len(lines), b.String())
		}
		for _, l := range lines {
			if !strings.Contains(l+" ", c.want) {
				t.Errorf("%+v: line %s lacks %s", c.log, l, c.want)
			}
		}
		cfg := &config.Config{Log: c.log, Temporal: config.Temporal{Address: "127.0.0.1:7233", Namespace: "default"}}
		opts, err := ClientOptions(cfg, logger)
		if err != nil {
			t.Fatal(err)
		}
		if want := ReplicaName(c.log); opts.Identity != want || !strings.Contains(c.want, want) {
			t.Errorf("%+v: client identity %q, want %q as logged", c.log, opts.Identity, want)
		}
	}
}
