package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// `dealsync bench`'s help says 2 for a usage error: an incomplete external
// target, ERP faults with an external target and a --connection the config
// does not have (or one that does not invoice the sandbox ERP) were found
// by the run, once begun, and exited 1. They are refused before anything
// starts (no stack, no Temporal server, nothing sent), with the message
// and a pointer to the help.
func TestBenchUsageErrorsExit2(t *testing.T) {
	prod := writeConfig(t, `
targets:
  erp: {type: http, base_url: "https://erp.example.com/api"}
connections:
  shop:
    source: {type: generic, secret: whsec_c2hvcC1zZWNyZXQ=}
    target: erp
`)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--intake-url", "http://127.0.0.1:18180"}, "an external target needs both --intake-url and --sandbox-url"},
		{[]string{"--sandbox-url", "http://127.0.0.1:18190"}, "an external target needs both --intake-url and --sandbox-url"},
		{[]string{"--intake-url", "http://127.0.0.1:18180", "--sandbox-url", "http://127.0.0.1:18190", "--error-rate", "0.1"}, "--error-rate and --rate-limit-rate inject ERP faults only into the in-process stack"},
		{[]string{"--intake-url", "http://127.0.0.1:18180", "--sandbox-url", "http://127.0.0.1:18190", "--rate-limit-rate", "0.1"}, "--error-rate and --rate-limit-rate inject ERP faults only into the in-process stack"},
		{[]string{"--connection", "nope", "-n", "5"}, `the config has no connection "nope" (--connection)`},
		{[]string{"--config", prod, "--connection", "shop", "-n", "5"}, `connection "shop" sends its invoices to target "erp"`},
	} {
		// Bounded, should a regression start the run after all.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		args := append([]string{"bench", "--timeout", "10s"}, c.args...)
		err := run(ctx, args...)
		cancel()
		if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "dealsync bench --help") {
			t.Errorf("%v: exit %d, error %v; want exit 2 and %q", c.args, exitCode(err), err, c.want)
		}
	}
	// Every problem at once, the flags' and the connection's.
	err := run(context.Background(), "bench", "--connection", "nope", "-n", "0")
	if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), "--deals must be positive") || !strings.Contains(err.Error(), `no connection "nope"`) {
		t.Errorf("-n 0 --connection nope: exit %d, error %v; want exit 2 naming both", exitCode(err), err)
	}
}
