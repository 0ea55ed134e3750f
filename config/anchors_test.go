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

// A list written as one value in a merged block is reported at the list,
// as one written in the entry is (not at an item the file lacks).
func TestAListWrittenAsOneValueInAMergedBlock(t *testing.T) {
	_, err := config.Load(writeFile(t, `
x-erp: &erp {type: test-target, base_url: "https://erp.example.com", schemes: v3}
targets:
  erp: {<<: *erp}
`))
	want := "targets.erp.schemes: must be one of: v1, v2 (written as one value, it is read as a list of one)"
	if err == nil || !strings.Contains(err.Error(), "\n  "+want) || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("Load: %v\nwant the one problem %q", err, want)
	}
}
