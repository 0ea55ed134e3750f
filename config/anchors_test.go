package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/config"
)

const anchorTargets = `
targets:
  sandbox: &erp {type: http, base_url: "http://127.0.0.1:9", lookup_invoices: false}
  other:
    <<: *erp
    timeout: 7s
`

// A top-level key that starts with x- holds YAML anchors (docker
// compose's convention) and is otherwise ignored; the blocks it anchors
// merge where they are used, the keys written beside << winning. It was
// "x-defaults: unknown key".
func TestExtensionKeysHoldAnchors(t *testing.T) {
	path := writeFile(t, `
x-defaults: &defaults
  settle_time: 5s
  linger: 15m
  trigger: {won_stages: [won, closedwon]}
X-Sources:
  shop: &shop {type: generic, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
`+anchorTargets+`
connections:
  shop:
    <<: *defaults
    target: sandbox
    source: *shop
  shop2:
    <<: *defaults
    linger: 1m
    target: other
    source: *shop
`)
	cfg := mustLoad(t, path)
	a, b := cfg.Connections["shop"], cfg.Connections["shop2"]
	if a.SettleTime != 5*time.Second || a.Linger != 15*time.Minute || !slices.Equal(a.Trigger.WonStages, []string{"won", "closedwon"}) {
		t.Errorf("shop: settle %v, linger %v, won stages %v: want the merged block's", a.SettleTime, a.Linger, a.Trigger.WonStages)
	}
	if b.SettleTime != 5*time.Second || b.Linger != time.Minute {
		t.Errorf("shop2: settle %v, linger %v: want 5s merged and 1m written beside <<", b.SettleTime, b.Linger)
	}
	if len(cfg.Connections) != 2 || len(cfg.Targets) != 2 {
		t.Errorf("connections %d, targets %d: the x- blocks must add none", len(cfg.Connections), len(cfg.Targets))
	}
}

// A top-level key the config does not have whose value holds an anchor
// was most likely written to hold anchors: its problem says to name it
// x-…. Another unknown top-level key's does not.
func TestUnknownTopLevelKeyWithAnchorsHintsAtExtensionKeys(t *testing.T) {
	path := writeFile(t, `
defaults: &defaults
  settle_time: 5s
logs: {level: info}
`+anchorTargets+`
connections:
  shop:
    <<: *defaults
    target: sandbox
    source: {type: generic, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
`)
	_, err := config.Load(path)
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) != 2 {
		t.Fatalf("Load: %v, want two problems", err)
	}
	got := map[string]string{}
	for _, p := range ce.Problems {
		got[p.Key] = p.Message
	}
	if msg := got["defaults"]; !strings.HasPrefix(msg, "unknown key") ||
		!strings.HasSuffix(msg, "; a top-level block that holds YAML anchors goes under a key that starts with x- (x-defaults): the config ignores those keys") {
		t.Errorf("defaults: %q", msg)
	}
	if msg := got["logs"]; msg != "unknown key (did you mean log?)" {
		t.Errorf("logs: %q, want no hint at x- (it holds no anchor)", msg)
	}
}

// A typo in an anchored block that two connections merge is reported
// once, where it is written (its path in the file, the merge key as <<,
// and its line), naming the key as written and where the block is used;
// it was reported at each connection, at paths the file does not have,
// without a line (the journey's c-typo.yaml).
func TestTypoInAMergedAnchorIsReportedOnceWhereWritten(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"anchored beside its first use", anchorTargets + `
connections:
  pipedrive:
    <<: &defaults
      Settle_Tim: 5s
      linger: 15m
    target: sandbox
    source: {type: generic, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
  hubspot:
    <<: *defaults
    target: other
    source: {type: generic, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
`, "connections.pipedrive.<<.Settle_Tim: unknown key (did you mean settle_time?); written at line 11, " +
			"in the block anchored &defaults, which connections.hubspot and connections.pipedrive merge"},
		{"under an x- key, merged in a list", `
x-defaults: &defaults
  settle_tim: 5s
x-more: &more {linger: 1m}
` + anchorTargets + `
connections:
  shop:
    <<: [*more, *defaults]
    target: sandbox
    source: {type: generic, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
`, "x-defaults.settle_tim: unknown key (did you mean settle_time?); written at line 3, in the block anchored &defaults, which connections.shop merges"},
		{"an aliased value", anchorTargets + `
connections:
  shop:
    target: sandbox
    source: &src {type: generic, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", secrett: x}
  shop2:
    target: sandbox
    source: *src
`, "connections.shop.source.secrett: unknown key (did you mean secret?); written at line 11, " +
			"in the value anchored &src, used at connections.shop.source and connections.shop2.source"},
		{"a target's option in a merged block", `
x-erp: &erp {type: http, base_url: "http://127.0.0.1:9", lookup_invoices: false, timeoutt: 3s}
targets:
  a: {<<: *erp}
  b:
    <<: *erp
connections:
  shop:
    target: a
    source: {type: generic, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
`, "x-erp.timeoutt: unknown key (did you mean timeout?); written at line 2, in the block anchored &erp, which targets.a and targets.b merge"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Load(writeFile(t, c.yaml))
			var ce *config.Error
			if !errors.As(err, &ce) || len(ce.Problems) != 1 {
				t.Fatalf("Load: %v, want one problem", err)
			}
			if got := ce.Problems[0].String(); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

// A problem of a key written once and used once stays where it is, and
// one under an x- key that no one uses is none.
func TestUnknownKeysOutsideAnchorsStayWhereTheyAre(t *testing.T) {
	_, err := config.Load(writeFile(t, `
x-unused: {settle_tim: 1s}
`+anchorTargets+`
connections:
  shop:
    settle_tim: 1s
    target: sandbox
    source: {type: generic, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
`))
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].String() != "connections.shop.settle_tim: unknown key (did you mean settle_time?)" {
		t.Fatalf("Load: %v", err)
	}
}

// TemporalOnly (runs list) leaves the connections unchecked: a typo in
// an anchored block under x- that only connections merge is not its
// problem, though the problem is reported at the x- key where it is
// written.
func TestTemporalOnlySkipsATypoOfAnAnchorOnlyConnectionsUse(t *testing.T) {
	path := writeFile(t, `
x-defaults: &defaults
  settle_tim: 5s
`+anchorTargets+`
connections:
  shop:
    <<: *defaults
    target: sandbox
    source: {type: generic, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
`)
	cfg, err := config.Load(path, config.TemporalOnly())
	if err != nil {
		t.Fatalf("Load TemporalOnly: %v", err)
	}
	if s := cfg.Skipped(); len(s) != 1 || s[0].Key != "x-defaults.settle_tim" {
		t.Errorf("skipped %v, want the typo at x-defaults.settle_tim", s)
	}
}

// The variables of an x- block's keys set nothing (the block's values
// are merged where the file uses them): they are listed as ignored, not
// taken for keys, and one naming the block is no "section set" problem.
func TestVariablesOfExtensionKeysAreIgnored(t *testing.T) {
	t.Setenv("DEALSYNC_X_DEFAULTS_LINGER", "1m")
	t.Setenv("DEALSYNC_X-DEFAULTS", "x")
	path := writeFile(t, `
x-defaults: &defaults
  linger: 15m
`+anchorTargets+`
connections:
  shop:
    <<: *defaults
    target: sandbox
    source: {type: generic, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
`)
	cfg := mustLoad(t, path)
	if cfg.Connections["shop"].Linger != 15*time.Minute {
		t.Errorf("linger %v, want the file's 15m", cfg.Connections["shop"].Linger)
	}
	for _, name := range []string{"DEALSYNC_X_DEFAULTS_LINGER", "DEALSYNC_X-DEFAULTS"} {
		if !slices.Contains(cfg.IgnoredEnv(), name) {
			t.Errorf("ignored variables %v, want %s among them", cfg.IgnoredEnv(), name)
		}
	}
}

// A list written as one value in a merged block is reported at the list
// as written, as one written in the entry is (not at an item the file
// lacks), with where the block is used.
func TestAListWrittenAsOneValueInAMergedBlock(t *testing.T) {
	_, err := config.Load(writeFile(t, `
x-erp: &erp {type: test-target, base_url: "https://erp.example.com", schemes: v3}
targets:
  erp: {<<: *erp}
`))
	want := "x-erp.schemes: must be one of: v1, v2 (written as one value, it is read as a list of one); written at line 2, in the block anchored &erp, which targets.erp merges"
	if err == nil || !strings.Contains(err.Error(), "\n  "+want) || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("Load: %v\nwant the one problem %q", err, want)
	}
}

// anchorConn is the rest of a connection of the anchor tests.
const anchorConn = `    target: sandbox
    source: {type: generic, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
`

// loadProblems loads the config src and returns its problems, as
// written; none when it loads.
func loadProblems(t *testing.T, src string, opts ...config.Option) []string {
	t.Helper()
	_, err := config.Load(writeFile(t, src), opts...)
	if err == nil {
		return nil
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("Load: %v, want a *config.Error", err)
	}
	var out []string
	for _, p := range ce.Problems {
		out = append(out, p.String())
	}
	return out
}

// A merged key that differs only in letter case from one written beside
// << is the same key given twice (the config reads keys in any case, and
// which of the two it used was not said: the merged Linger: 15m won over
// linger: 1m); so are two merged ones. A key of the same text beside <<
// wins over the merged one, as in YAML, and is no problem.
func TestMergedKeysDifferingInCaseAreGivenTwice(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"beside <<", `
x-defaults: &defaults {Linger: 15m, settle_time: 5s}
` + anchorTargets + `
connections:
  shop:
    <<: *defaults
    linger: 1m
` + anchorConn, "connections.shop.linger: is given twice, as Linger (merged, line 2) and linger: keys are read whatever their case, so only one would be used; keep one"},
		{"two merged", `
x-a: &a {Linger: 15m}
x-b: &b {linger: 1m}
` + anchorTargets + `
connections:
  shop:
    <<: [*a, *b]
` + anchorConn, "x-a.Linger: is given twice, as Linger (merged, line 2) and linger (merged, line 3): keys are read whatever their case, so only one would be used; keep one; " +
			"written at line 2, in the block anchored &a, which connections.shop merges"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := loadProblems(t, c.yaml); len(got) != 1 || got[0] != c.want {
				t.Errorf("got %q\nwant %q", got, c.want)
			}
		})
	}
}

// A connection or target name that a merge key gives its section must be
// lower-case too (it was silently shop): reported at the name as
// written, saying where it is merged.
func TestMergedNamesMustBeLowerCase(t *testing.T) {
	got := loadProblems(t, `
x-conns: &conns
  Shop:
`+anchorConn+`
x-targets: &targets
  ERP: {type: http, base_url: "http://127.0.0.1:9", lookup_invoices: false}
targets:
  <<: *targets
  sandbox: {type: http, base_url: "http://127.0.0.1:9", lookup_invoices: false}
connections: {<<: *conns}
`)
	want := []string{
		`x-conns.Shop: connection name must be lower-case: names are read lower-cased, so this is connection "shop" (webhook URL /webhooks/shop); write it shop; ` +
			"written at line 3, in the block anchored &conns, which connections merges",
		`x-targets.ERP: target name must be lower-case: names are read lower-cased, so this is target "erp"; write it erp (a connection's target and account_targets may name it in any letter case); ` +
			"written at line 8, in the block anchored &targets, which targets merges",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// An unknown top-level key that is a typo of a section is told so, and
// not also to be named x-… though it holds an anchor: hidden under x-,
// the misspelt section would be ignored.
func TestMisspeltSectionWithAnAnchorIsNoExtensionKey(t *testing.T) {
	got := loadProblems(t, `
tagets: {sandbox: &erp {type: http, base_url: "http://127.0.0.1:9", lookup_invoices: false}}
targets: {sandbox: *erp}
connections:
  shop:
`+anchorConn)
	if want := "tagets: unknown key (did you mean targets?)"; len(got) != 1 || got[0] != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The checks of the file's text (numbers in another base, text in
// braces, keys differing in case) check an x- block where it is used, as
// the config reads it: a block that nothing uses is not checked (it is
// ignored), and a problem of one that is used is reported once, where it
// is written, saying where it is used; the braces were three problems
// for a block two connections use.
func TestTextChecksOfExtensionBlocksFollowTheirUses(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []string
	}{
		{"unused", `
x-notes: {zip: 0123, secret: {whsec_x}, Linger: 1m, linger: 2m}
` + anchorTargets + `
connections:
  shop:
` + anchorConn, nil},
		{"number in a merged block", `
x-d: &d {trigger: {won_stages: [won, 0123]}}
` + anchorTargets + `
connections:
  shop:
    <<: *d
` + anchorConn + `  shop2:
    <<: *d
` + anchorConn, []string{"x-d.trigger.won_stages[1]: an unquoted number in another base (YAML reads a leading 0 as octal, 0x as hex, 0o as octal, 0b as binary) " +
			"is not the text written: write it in quotes for the text, or in decimals for the number; written at line 2, in the block anchored &d, which connections.shop and connections.shop2 merge"}},
		{"braces in an aliased block", `
x-src: &src {type: generic, secret: {whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}}
` + anchorTargets + `
connections:
  shop:
    target: sandbox
    source: *src
  shop2:
    target: sandbox
    source: *src
`, []string{"x-src.secret: is written in braces, which YAML reads as a mapping of keys without values, not as text: write text starting with { in quotes, or leave the braces out; " +
			"written at line 2, in the value anchored &src, used at connections.shop.source and connections.shop2.source"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := loadProblems(t, c.yaml); !slices.Equal(got, c.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// TemporalOnly (runs list) skips a problem of the file's text in an x-
// block that only connections use, as it skips one written in a
// connection: it failed on the block's.
func TestTemporalOnlySkipsTextProblemsOfBlocksOnlyConnectionsUse(t *testing.T) {
	for _, block := range []string{
		"x-d: &d {trigger: {won_stages: [0123]}}",
		"x-d: &d {source: {type: generic, secret: {whsec_x}}}",
		"x-d: &d {Linger: 1m, linger: 2m}",
	} {
		cfg, err := config.Load(writeFile(t, "\n"+block+"\n"+anchorTargets+`
connections:
  shop:
    <<: *d
    target: sandbox
`), config.TemporalOnly())
		if err != nil {
			t.Errorf("%s: Load TemporalOnly: %v", block, err)
			continue
		}
		if s := cfg.Skipped(); !slices.ContainsFunc(s, func(p config.Problem) bool { return strings.HasPrefix(p.Key, "x-d.") }) {
			t.Errorf("%s: skipped %v, want the block's problem at x-d", block, s)
		}
	}
}

// An invalid value in an anchored block that two connections merge is
// one problem, where it is written, with its line and where the block is
// used (it was one per connection, at paths the file lacks); one that
// the environment sets is reported where the environment sets it.
func TestInvalidValueOfAMergedBlockIsReportedOnceWhereWritten(t *testing.T) {
	src := `
x-d: &d {linger: zz}
` + anchorTargets + `
connections:
  shop:
    <<: *d
` + anchorConn + `  shop2:
    <<: *d
` + anchorConn
	want := "x-d.linger: invalid duration (use a number with a unit: 500ms, 30s, 5m, 1h30m); written at line 2, in the block anchored &d, which connections.shop and connections.shop2 merge"
	if got := loadProblems(t, src); len(got) != 1 || got[0] != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP_LINGER", "yy")
	got := loadProblems(t, src)
	if len(got) != 2 || !strings.HasPrefix(got[0], "connections.shop.linger: invalid duration") || !strings.HasPrefix(got[1], "x-d.linger: invalid duration") ||
		!strings.HasSuffix(got[1], "which connections.shop2 merges") {
		t.Errorf("got\n%s\nwant the variable's at connections.shop.linger, the file's at x-d.linger used by shop2", strings.Join(got, "\n"))
	}
}

// A merge key whose value is no mapping is YAML's error, which names no
// line: the line and the key are found and named.
func TestMergeOfASingleValueNamesItsLine(t *testing.T) {
	_, err := config.Load(writeFile(t, `
x-d: &d 5
`+anchorTargets+`
connections:
  shop:
    <<: *d
`+anchorConn))
	want := "line 12: connections.shop.<<: a merge key takes a mapping, an alias of one (<<: *name) or a list of them (<<: [*a, *b]), not a single value " +
		"(YAML: map merge requires map or sequence of maps as the value)"
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("Load: %v\nwant it to end %q", err, want)
	}
}

// A key that is the first words of exactly one known key (certificate for
// a NetSuite target's certificate_id) gets it suggested, as a typo does;
// one that starts two (auth: auth_header, auth_value) gets the known keys,
// and a key of fewer than three letters no guess.
func TestUnknownKeyThatStartsAKnownOneSuggestsIt(t *testing.T) {
	for _, c := range []struct{ key, want string }{
		{"idempotency", "unknown key (did you mean idempotency_header?)"},
		{"Lookup", "unknown key (did you mean lookup_invoices?)"},
		{"auth", "unknown key (known keys: "},
		{"invoices", "unknown key (did you mean invoices_path?)"},
	} {
		_, err := config.Load(writeFile(t, `
targets:
  erp: {type: http, base_url: "http://127.0.0.1:9", `+c.key+`: x}
connections:
  shop:
    target: erp
    source: {type: generic, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
`))
		var ce *config.Error
		if !errors.As(err, &ce) || len(ce.Problems) != 1 {
			t.Fatalf("%s: Load: %v, want one problem", c.key, err)
		}
		if p := ce.Problems[0]; p.Key != "targets.erp."+strings.ToLower(c.key) || !strings.HasPrefix(p.Message, c.want) {
			t.Errorf("%s: got %s: %q, want %q…", c.key, p.Key, p.Message, c.want)
		}
	}
	known := []string{"account_id", "certificate_id", "client_id", "id_field"}
	for k, want := range map[string]string{"certificate": "certificate_id", "CERTIFICATE": "certificate_id", "id": "", "certificate_i": "", "client_id_x": ""} {
		if got, ok := config.ShortFor(k, known); got != want || ok != (want != "") {
			t.Errorf("ShortFor(%q) = %q, %v; want %q", k, got, ok, want)
		}
	}
}

// A key with a dot (a Salesforce org written as its URL) is read as keys
// within keys: it is named whole, once, with what accounts: is keyed by,
// not in pieces at paths the file does not have (accounts.https://acme.my:
// unknown key, accounts.https://acme.client_id: is required).
func TestKeyWithADotIsNamedWhole(t *testing.T) {
	for _, c := range []struct{ source, hint string }{
		{"type: salesforce\n      accounts:\n        \"https://Acme.my.salesforce.com\":\n          instance_url: https://acme.my.salesforce.com\n          client_id: x",
			"; accounts: is keyed by Salesforce org id (18 characters, 00D…"},
		{"type: test-org\n      accounts:\n        \"https://Acme.my.salesforce.com\": x",
			"; accounts: is keyed by the CRM's account id"},
	} {
		_, err := config.Load(writeFile(t, anchorTargets+`
connections:
  sf:
    target: sandbox
    source:
      `+c.source+`
`))
		var ce *config.Error
		if !errors.As(err, &ce) {
			t.Fatalf("Load: %v", err)
		}
		want := `connections.sf.source.accounts["https://Acme.my.salesforce.com"]: a key with a dot is read as keys within keys (https://Acme, then my, then salesforce, then com); written at line 14` + c.hint
		found := false
		for _, p := range ce.Problems {
			if strings.Contains(p.Key, "https://acme") {
				t.Errorf("a piece of the key: %s", p)
			}
			found = found || strings.HasPrefix(p.String(), want)
		}
		if !found {
			t.Errorf("got %v, want a problem %q…", ce.Problems, want)
		}
	}
}
