package app

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
)

// A target that looks invoices up by reference (Xero's check_reference,
// the http target's lookup_invoices) with a mapping whose reference does
// not read deal.id: a second deal of the customer would be given the
// first one's invoice. Warnings name the connection, the target, the
// expression and both ways out; with the look-up off, a reference that
// reads deal.id, the built-in or no reference, they say nothing.
func TestWarningsOfAReferenceNotUniquePerDeal(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeIn(t, dir, name, content) }
	files := []string{
		write("company.yaml", "name: company\ninvoice:\n  reference: deal.company.name\n"),
		write("prefixed.yaml", "name: prefixed\ninvoice:\n  reference: '\"DS-\" + deal.id'\n"),
		write("noref.yaml", "name: noref\ninvoice:\n  memo: deal.name\n"),
		write("unmapped.yaml", "name: unmapped\ninvoice:\n  reference: \"\"\n"),
	}
	yaml := fmt.Sprintf(`
mappings: {files: [%s], reload_interval: 0}
targets:
  books: {type: xero, tenant_id: 0a5d2d8c-1f1e-4c4b-9d6e-3f2a1b0c9d8e, client_id: abc, client_secret: s, token_file: %q}
  books-unchecked: {type: xero, tenant_id: 0a5d2d8c-1f1e-4c4b-9d6e-3f2a1b0c9d8e, client_id: abc, client_secret: s, token_file: %q, check_reference: false}
  books-too: {type: xero, tenant_id: 0a5d2d8c-1f1e-4c4b-9d6e-3f2a1b0c9d8e, client_id: abc, client_secret: s, token_file: %q}
  erp: {type: http, base_url: "https://erp.example.com/api", lookup_invoices: true}
  erp-plain: {type: http, base_url: "https://erp.example.com/api"}
connections:
`, strings.Join(files, ", "), filepath.Join(dir, "t1.json"), filepath.Join(dir, "t2.json"), filepath.Join(dir, "t3.json"))
	yaml += genericConn("xero-company", "books", "company") +
		genericConn("xero-unchecked", "books-unchecked", "company") +
		genericConn("xero-prefixed", "books", "prefixed") +
		genericConn("xero-builtin", "books", "") +
		genericConn("xero-noref", "books", "noref") +
		genericConn("xero-unmapped", "books", "unmapped") +
		genericConn("http-company", "erp", "company") +
		genericConn("http-plain", "erp-plain", "company") +
		genericConn("http-prefixed", "erp", "prefixed") + `
  routed:
    target: erp-plain
    mapping: company
    account_targets: {"6083095": books, "15747575": erp-plain}
    trigger: {won_stages: [won]}
    source:
      type: pipedrive
      webhook_user: dealsync
      webhook_password: correct-horse
      accounts:
        "6083095": {api_token: t}
        "15747575": {api_token: t}
  routed-too:
    target: books-too # a target of its own: one company on two connections into one target is refused
    mapping: company
    account_targets: {"6083095": books-too}
    trigger: {won_stages: [won]}
    source:
      type: pipedrive
      webhook_user: dealsync
      webhook_password: correct-horse
      accounts:
        "6083095": {api_token: t}
`
	cfg, set := loadAndBuild(t, write("dealsync.yaml", yaml))
	const marker = "does not read deal.id"
	want := map[string][]string{
		"xero-company": {"connection xero-company: target books looks for an existing invoice by its reference", "(check_reference)",
			"mapping \"company\" sets invoice.reference to `deal.company.name`", "the first deal's invoice", "no invoice of its own",
			"include deal.id", "set check_reference: false on target books", "a second invoice"},
		"http-company": {"connection http-company: target erp looks", "(lookup_invoices)", "`deal.company.name`", "set lookup_invoices: false on target erp"},
		"routed":       {"connection routed: target books (account_targets 6083095) looks", "(check_reference)", "set check_reference: false on target books"},
		"routed-too":   {"connection routed-too: target books-too (and account_targets 6083095) looks"},
	}
	if n := len(set.Names()); n != 11 {
		t.Fatalf("%d connections, want 11: %v", n, set.Names())
	}
	for _, name := range set.Names() {
		c, _ := set.Get(name)
		var got []string
		for _, w := range Warnings(cfg, c) {
			if strings.Contains(w, marker) {
				got = append(got, w)
			}
		}
		checkOneWarning(t, name, got, want[name])
	}
}

// checkOneWarning checks the warnings got of connection name: none when
// the words wanted are none, else one that holds each of them.
func checkOneWarning(t *testing.T, name string, got, want []string) {
	t.Helper()
	if want == nil {
		if len(got) > 0 {
			t.Errorf("%s: warned %q", name, got)
		}
		return
	}
	if len(got) != 1 {
		t.Errorf("%s: %d warnings, want 1: %q", name, len(got), got)
		return
	}
	for _, w := range want {
		if !strings.Contains(got[0], w) {
			t.Errorf("%s: warning lacks %q:\n%s", name, w, got[0])
		}
	}
}

// A QuickBooks target keeps the reference in DocNumber, which QuickBooks
// numbers its own invoices in (1001, 1002, …): a mapping whose reference
// is the bare deal id (the built-in's, `deal.id`, `string(deal.id)`) is
// warned about, naming the connection, the target and the way out; a
// reference that only contains the id, another target, or a Salesforce
// source (its ids are never numbers) is not.
func TestWarningsOfABareDealIDInASelfNumberedField(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeIn(t, dir, name, content) }
	files := []string{
		write("bare.yaml", "name: bare\ninvoice:\n  reference: deal.id\n"),
		write("stringed.yaml", "name: stringed\ninvoice:\n  reference: string(deal.id)\n"),
		write("prefixed.yaml", "name: prefixed\ninvoice:\n  reference: '\"DS-\" + deal.id'\n"),
	}
	yaml := fmt.Sprintf(`
mappings: {files: [%s], reload_interval: 0}
targets:
  qbo: {type: quickbooks, realm_id: "9130350", client_id: abc, client_secret: s, token_file: %q, link_file: %q}
  erp: {type: http, base_url: "https://erp.example.com/api"}
connections:
`, strings.Join(files, ", "), filepath.Join(dir, "t.json"), filepath.Join(dir, "links.json"))
	yaml += genericConn("qbo-builtin", "qbo", "") + genericConn("qbo-bare", "qbo", "bare") + genericConn("qbo-stringed", "qbo", "stringed") +
		genericConn("qbo-prefixed", "qbo", "prefixed") + genericConn("http-bare", "erp", "bare") + `
  qbo-salesforce:
    target: qbo
    trigger: {won_stages: [Closed Won]}
    source:
      type: salesforce
      endpoint_token: tok
      accounts:
        "00D5w000004qGTOEA2": {instance_url: "https://a.my.salesforce.com", client_id: c, client_secret: s}
`
	cfg, set := loadAndBuild(t, write("dealsync.yaml", yaml))
	warned := map[string]bool{"qbo-builtin": true, "qbo-bare": true, "qbo-stringed": true}
	if n := len(set.Names()); n != 6 {
		t.Fatalf("%d connections built, want the 6 of the config: %v", n, set.Names())
	}
	for _, name := range set.Names() {
		c, _ := set.Get(name)
		var got []string
		for _, w := range Warnings(cfg, c) {
			if strings.Contains(w, "numbers its own invoices") {
				got = append(got, w)
			}
		}
		var want []string
		if warned[name] {
			want = []string{"connection " + name + ": target qbo keeps invoice.reference in DocNumber", "bare deal id", "duplicate DocNumber", `"DS-" + deal.id`}
		}
		checkOneWarning(t, name, got, want)
	}
}

// writeIn writes content to the file name in dir and returns its path.
func writeIn(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// genericConn is the YAML of a generic connection invoicing target with
// mapping.
func genericConn(name, target, mapping string) string {
	return fmt.Sprintf("  %s:\n    source: {type: generic, secret: whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM=}\n    target: %s\n    mapping: %q\n    trigger: {won_stages: [won]}\n", name, target, mapping)
}

// A Xero target with line_amount_types Inclusive takes unit amounts as
// gross, and a Pipedrive source gives lines net of tax: the connection
// that joins them (its target or an account_targets one) is warned about,
// naming the setting; Exclusive, or a source whose lines are as the CRM
// prices them, is not.
func TestWarningsOfNetLinesBilledAsGross(t *testing.T) {
	dir := t.TempDir()
	xero := func(name, amounts string) string {
		return fmt.Sprintf("  %s: {type: xero, tenant_id: 0a5d2d8c-1f1e-4c4b-9d6e-3f2a1b0c9d8e, client_id: c, client_secret: s, refresh_token: r, token_file: %q, line_amount_types: %s}\n",
			name, filepath.Join(dir, "xero-token.json"), amounts)
	}
	pipedrive := func(name, target, routed string) string {
		return fmt.Sprintf(`  %s:
    target: %s
    account_targets: {"6083095": %s}
    trigger: {won_stages: [won]}
    source: {type: pipedrive, webhook_user: dealsync, webhook_password: correct-horse, accounts: {"6083095": {api_token: t}}}
`, name, target, routed)
	}
	// A target each for the company: one company on two connections
	// into one target is refused.
	yaml := "targets:\n" + xero("gross", "Inclusive") + xero("gross-too", "Inclusive") + xero("net", "Exclusive") + xero("net-too", "Exclusive") + "connections:\n" +
		pipedrive("pd-gross", "gross", "gross") + pipedrive("pd-routed", "net", "gross-too") + pipedrive("pd-net", "net-too", "net-too") +
		genericConn("generic-gross", "gross", "")
	cfg, set := loadAndBuild(t, writeIn(t, dir, "dealsync.yaml", yaml))
	want := map[string]string{"pd-gross": "target gross (and account_targets 6083095)", "pd-routed": "target gross-too (account_targets 6083095)"}
	if n := len(set.Names()); n != 4 {
		t.Fatalf("%d connections built, want the 4 of the config: %v", n, set.Names())
	}
	for _, name := range set.Names() {
		c, _ := set.Get(name)
		var got []string
		for _, w := range Warnings(cfg, c) {
			if strings.Contains(w, "net of tax") {
				got = append(got, w)
			}
		}
		which, warned := want[name]
		switch {
		case !warned && len(got) > 0:
			t.Errorf("%s: warned %q", name, got)
		case warned && (len(got) != 1 || !strings.Contains(got[0], which) || !strings.Contains(got[0], "line_amount_types: Inclusive") ||
			!strings.Contains(got[0], "billed short by its tax")):
			t.Errorf("%s: %q; want one warning naming %s and the setting", name, got, which)
		}
	}
}

// loadAndBuild loads the config at path and builds its connections, as
// serve and worker do, failing the test when either fails.
func loadAndBuild(t *testing.T, path string) (*config.Config, *connections.Set) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	set, err := BuildConnections(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, set
}

// An http target whose config does not say lookup_invoices (off by
// default) is warned about: each deal's one invoice then rests on the API
// keeping its Idempotency-Key. Either value said, in the file or the
// environment, is the answer; dev's built-in sandbox (which keeps its
// keys) is not warned about.
func TestWarningsOfAnHTTPTargetThatDoesNotSayLookupInvoices(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DEALSYNC_TARGETS_BY_ENV_LOOKUP_INVOICES", "false")
	yaml := `
targets:
  unsaid: {type: http, base_url: "https://erp.example.com/api"}
  keeps-keys: {type: http, base_url: "https://erp.example.com/api", lookup_invoices: false}
  looks-up: {type: http, base_url: "https://erp.example.com/api", lookup_invoices: true}
  by-env: {type: http, base_url: "https://erp.example.com/api"}
connections:
` + genericConn("unsaid", "unsaid", "") + genericConn("keeps-keys", "keeps-keys", "") + genericConn("looks-up", "looks-up", "") + genericConn("by-env", "by-env", "")
	cfg, set := loadAndBuild(t, writeIn(t, dir, "dealsync.yaml", yaml))
	if n := len(set.Names()); n != 4 {
		t.Fatalf("%d connections built, want 4: %v", n, set.Names())
	}
	for _, name := range set.Names() {
		c, _ := set.Get(name)
		var got []string
		for _, w := range Warnings(cfg, c) {
			if strings.Contains(w, "does not say lookup_invoices") {
				got = append(got, w)
			}
		}
		switch {
		case name != "unsaid" && len(got) > 0:
			t.Errorf("%s: warned %q", name, got)
		case name == "unsaid" && (len(got) != 1 || !strings.Contains(got[0], "connection unsaid: target unsaid (http)") ||
			!strings.Contains(got[0], "lookup_invoices: true on target unsaid") || !strings.Contains(got[0], "lookup_invoices: false if it keeps its keys")):
			t.Errorf("%s: %q; want one warning naming the target and both answers", name, got)
		}
	}

	// dev's built-in sandbox target keeps its keys: not warned about.
	dev, err := config.Load("", config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	devSet, err := BuildConnections(dev, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	demo, _ := devSet.Get("demo")
	for _, w := range Warnings(dev, demo) {
		if strings.Contains(w, "lookup_invoices") {
			t.Errorf("dev's demo connection: warned %q", w)
		}
	}
}

// The warnings of a mapping file (a time_zone that reads otherwise than
// it counts) are given once, with their place in the file, naming the
// connections that use the mapping, not once per connection: config
// check and the start print them.
func TestWarningsOfTheMappingFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeIn(t, dir, name, content) }
	tz := write("tz.yaml", "name: tz\ntime_zone: EST\n")
	berlin := write("berlin.yaml", "name: berlin\ntime_zone: Europe/Berlin\n")
	yaml := fmt.Sprintf("mappings: {files: [%s, %s], reload_interval: 0}\ntargets:\n  erp: {type: http, base_url: \"https://erp.example.com/api\"}\nconnections:\n", tz, berlin) +
		genericConn("shop", "erp", "tz") + genericConn("other", "erp", "berlin") + genericConn("outlet", "erp", "tz")
	cfg, set := loadAndBuild(t, write("dealsync.yaml", yaml))
	var got []string
	for _, w := range MappingWarnings(set) {
		got = append(got, w.String())
	}
	want := fmt.Sprintf(`mapping "tz" (connections outlet, shop): %s:2:12: time_zone: "EST" is a legacy zone name: UTC-05:00 all year, without daylight saving`, tz)
	if len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Errorf("mapping warnings:\n%s\nwant one: %q", strings.Join(got, "\n"), want)
	}
	for _, name := range []string{"shop", "other", "outlet"} {
		c, _ := set.Get(name)
		if got := strings.Join(Warnings(cfg, c), "\n"); strings.Contains(got, "time_zone") {
			t.Errorf("warnings of connection %s repeat the mapping's:\n%s", name, got)
		}
	}
}

// Two Salesforce orgs whose 18-character ids differ in case only are two
// accounts: connections of one each, into one target, are not warned of;
// a connection listing the 15 characters they share (its case lost to the
// config loader) is, with each, as the source would take either org's
// messages on it.
func TestSharedAccountWarningsTellSalesforceOrgsApart(t *testing.T) {
	sf := func(name, org string) string {
		return fmt.Sprintf("  %s:\n    target: erp\n    trigger: {won_stages: [won]}\n    source: {type: salesforce, endpoint_token: tok-%s, accounts: {%q: {instance_url: \"https://a.my.salesforce.com\", client_id: c, client_secret: s}}}\n", name, name, org)
	}
	yaml := "targets:\n  erp: {type: http, base_url: \"https://erp.example.com/api\"}\nconnections:\n" +
		sf("sf-a", "00D5w000004qGTOEA2") + sf("sf-b", "00D5w000004QGTOEA4")
	cfg, _ := loadAndBuild(t, writeIn(t, t.TempDir(), "dealsync.yaml", yaml))
	if ws := cfg.SharedAccountWarnings(); len(ws) != 0 {
		t.Errorf("two orgs: warnings %q, want none", ws)
	}
	cfg, _ = loadAndBuild(t, writeIn(t, t.TempDir(), "dealsync.yaml", yaml+sf("sf-c", "00D5w000004qGTO")))
	ws := cfg.SharedAccountWarnings()
	if len(ws) != 2 || !strings.HasPrefix(ws[0], "connections.sf-c.target: connections sf-a and sf-c both list Salesforce org 00d5w000004qgto ") ||
		!strings.HasPrefix(ws[1], "connections.sf-c.target: connections sf-b and sf-c both list Salesforce org 00d5w000004qgto ") {
		t.Errorf("a 15-character id of both: warnings %q, want one with each", ws)
	}
}
