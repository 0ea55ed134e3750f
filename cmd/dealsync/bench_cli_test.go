package main

import (
	"context"
	"fmt"
	"path/filepath"
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
	// The sandbox ERP, with a mapping whose invoice.reference is "DS-" +
	// deal.id: the bench, which finds invoices by reference = deal id,
	// reported all of them lost.
	mappings, err := filepath.Abs("../../examples/mappings")
	if err != nil {
		t.Fatal(err)
	}
	mapped := writeConfig(t, fmt.Sprintf(`
mappings: {dir: %q}
connections:
  mapped:
    source: {type: generic, secret: whsec_c2hvcC1zZWNyZXQ=}
    target: sandbox
    mapping: generic-standard
`, mappings))
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
		{[]string{"--config", mapped, "--connection", "mapped", "-n", "5", "--rounds", "1", "--baseline", "none", "--settle", "10s", "--keep"},
			`connection "mapped" uses mapping "generic-standard", which makes the invoice of bench deal`},
		{[]string{"--config", mapped, "--connection", "mapped", "-n", "5"}, "needs invoice.reference to be the deal id"},
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
	err = run(context.Background(), "bench", "--connection", "nope", "-n", "0")
	if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), "--deals must be positive") || !strings.Contains(err.Error(), `no connection "nope"`) {
		t.Errorf("-n 0 --connection nope: exit %d, error %v; want exit 2 naming both", exitCode(err), err)
	}
}

// In process, bench signed its deliveries with the public dev secret
// whatever the config gave the connection: with
// DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET set, every delivery was refused
// with 401 (UNDELIVERED, exit 4). Without --secret it signs with the
// connection's own secret, and the run passes.
func TestBenchSignsWithTheConnectionsSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the in-process stack")
	}
	t.Setenv("DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET", "whsec_YmVuY2gtc2lnbnMtd2l0aC10aGUtY29ubmVjdGlvbnMtc2VjcmV0")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := run(ctx, "bench", "-n", "2", "--non-trigger", "0", "--rounds", "1", "--baseline", "none",
		"--history-sample", "0", "--settle", "20s", "--timeout", "2m", "--json")
	if err != nil {
		t.Fatalf("bench with the demo connection's own secret: exit %d, %v; want 0 (pass)", exitCode(err), err)
	}
}
