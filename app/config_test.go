package app

import (
	"io"
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
	if target.BaseURL != "http://127.0.0.1:8090" || target.IdempotencyHeader != want.IdempotencyHeader ||
		target.CustomersPath != want.CustomersPath || target.InvoicesPath != want.InvoicesPath ||
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
