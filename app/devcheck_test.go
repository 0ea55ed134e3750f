package app

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/secret"
)

// A connection signed with the public dev secret (examples/dealsync.yaml's
// demo) is refused on an intake other machines reach, naming the
// connection and the key to set, and a warning on loopback; the built-in
// demo connection of `dealsync dev` is only a note there. Any spelling of
// the secret (bare base64, unpadded, through env:) counts; another secret
// does not.
func TestCheckDevSecret(t *testing.T) {
	for _, c := range []struct {
		listen string
		refuse bool
	}{
		{"127.0.0.1:18080", false},
		{"localhost:18080", false},
		{"[::1]:18080", false},
		{"0.0.0.0:18080", true},
		{":18080", true},
		{"[::]:18080", true},
		{"192.168.1.10:18080", true},
		{"dealsync.example.com:18080", true},
	} {
		t.Run(c.listen, func(t *testing.T) {
			t.Setenv("DEALSYNC_INTAKE_LISTEN", c.listen)
			cfg, err := config.Load("../examples/dealsync.yaml")
			if err != nil {
				t.Fatal(err)
			}
			notices, err := CheckDevSecret(cfg)
			if c.refuse {
				if err == nil || len(notices) != 0 {
					t.Fatalf("refusal %v, notices %v; want a refusal only", err, notices)
				}
				for _, want := range []string{"connection demo", "public dev secret", "intake.listen is " + c.listen,
					"connections.demo.source.secret (env DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET)", "refuse to start"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("the refusal does not say %q: %v", want, err)
					}
				}
				return
			}
			if err != nil || len(notices) != 1 || notices[0].Level != slog.LevelWarn ||
				!strings.Contains(notices[0].Msg, "connection demo") || !strings.Contains(notices[0].Msg, "DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET") {
				t.Fatalf("refusal %v, notices %+v; want one warning naming the connection and the key", err, notices)
			}
		})
	}

	devCfg := func(t *testing.T, yaml string) *config.Config {
		t.Helper()
		t.Setenv("DEALSYNC_INTAKE_LISTEN", "127.0.0.1:18080")
		return devConfig(t, "dev: {data_dir: %s}\n"+yaml)
	}
	t.Run("built-in demo", func(t *testing.T) {
		notices, err := CheckDevSecret(devCfg(t, ""))
		if err != nil || len(notices) != 1 || notices[0].Level != slog.LevelInfo || !strings.Contains(notices[0].Msg, "built-in connection demo") {
			t.Fatalf("refusal %v, notices %+v; want one note", err, notices)
		}
	})
	t.Run("spellings", func(t *testing.T) {
		bare := strings.TrimPrefix(config.DevSecret, "whsec_")
		t.Setenv("SHOP_SECRET_FOR_TEST", strings.TrimRight(bare, "="))
		notices, err := CheckDevSecret(devCfg(t, `
connections:
  demo:
    source: {type: generic, secret: "whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM="}
  bare:
    source: {type: generic, secret: "`+bare+`"}
    target: sandbox
  shop:
    source: {type: generic, secret: "env:SHOP_SECRET_FOR_TEST"}
    target: sandbox
  rotating:
    source: {type: generic, secret: "whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM=", previous_secret: "`+config.DevSecret+`"}
    target: sandbox
`))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range notices {
			got = append(got, n.Msg)
		}
		all := strings.Join(got, "\n")
		// One warning names them all, and each key to set.
		for _, want := range []string{"connections bare, rotating, shop take webhooks signed with dealsync's public dev secret", "connections.bare.source.secret", "connections.shop.source.secret",
			"connections.rotating.source.previous_secret (env DEALSYNC_CONNECTIONS_ROTATING_SOURCE_PREVIOUS_SECRET)", "to secrets of your own, e.g. DEALSYNC_CONNECTIONS_BARE_SOURCE_SECRET=env:NAME"} {
			if !strings.Contains(all, want) {
				t.Errorf("the warnings do not say %q:\n%s", want, all)
			}
		}
		if len(notices) != 1 || strings.Contains(all, "demo") || strings.Contains(all, "rotating.source.secret") {
			t.Errorf("want 1 warning, none for another secret:\n%s", all)
		}
	})
	t.Run("one connection", func(t *testing.T) {
		notices, err := CheckDevSecret(devCfg(t, `
connections:
  shop:
    source: {type: generic, secret: "`+config.DevSecret+`"}
    target: sandbox
`))
		if err != nil || len(notices) != 2 || notices[1].Level != slog.LevelWarn ||
			!strings.HasPrefix(notices[1].Msg, "connection shop takes webhooks signed with dealsync's public dev secret") ||
			!strings.HasSuffix(notices[1].Msg, "set connections.shop.source.secret (env DEALSYNC_CONNECTIONS_SHOP_SOURCE_SECRET) to a secret of your own, e.g. DEALSYNC_CONNECTIONS_SHOP_SOURCE_SECRET=env:NAME with NAME holding a new one") {
			t.Errorf("refusal %v, notices %+v; want the demo's note and shop's warning", err, notices)
		}
	})
}

// `dealsync dev` refuses the public secret on an intake other machines
// reach before it takes a webhook (here: before it binds the intake, whose
// port is taken), and on loopback logs the built-in demo connection's
// note once.
func TestStartDevChecksThePublicSecret(t *testing.T) {
	for _, exposed := range []bool{true, false} {
		cfg := devConfig(t, "dev: {data_dir: %s}\n")
		cfg.Dev.SandboxListen, cfg.Intake.Listen = freeAddr(t), taken(t)
		if exposed {
			_, port, _ := strings.Cut(cfg.Intake.Listen, ":")
			cfg.Intake.Listen = "0.0.0.0:" + port
		}
		var logs bytes.Buffer
		_, err := StartDev(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), DevOptions{InMemory: true})
		switch {
		case exposed && (err == nil || !strings.Contains(err.Error(), "connection demo") || !strings.Contains(err.Error(), "DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET")):
			t.Errorf("exposed: %v, want the public secret refused", err)
		case !exposed && (err == nil || !strings.Contains(err.Error(), "intake.listen") ||
			strings.Count(logs.String(), "public dev secret") != 1 || !strings.Contains(logs.String(), "level=INFO")):
			t.Errorf("loopback: %v, want the note logged once and the start to stop at the intake's port in use:\n%s", err, logs.String())
		}
	}
}

// config check --dev checks a `sandbox` target as dev does, with
// dev.sandbox_listen for the address dev would bind: the same refusal
// (on this machine) or warning (elsewhere), nothing when they agree.
func TestCheckDevConfigChecksTheSandboxTargetAsDevDoes(t *testing.T) {
	listen := freeAddr(t)
	for _, c := range []struct {
		baseURL      string
		refuse, warn bool
	}{
		{"http://127.0.0.1:8090", true, false},
		{"https://erp-sandbox.example.com", false, true},
		{"http://" + listen, false, false},
	} {
		cfg := devConfig(t, "dev: {data_dir: %s}\ntargets:\n  sandbox: {type: http, base_url: \""+c.baseURL+"\"}\n")
		cfg.Dev.SandboxListen = listen
		notices, err := CheckDevConfig(cfg, cfg.Dev.SandboxListen)
		_, devErr := CheckSandboxTarget(cfg, listen)
		if refused := err != nil; refused != c.refuse || (refused && (devErr == nil || !strings.Contains(err.Error(), devErr.Error()))) {
			t.Errorf("%s: refusal %v, want %v (dev's: %v)", c.baseURL, err, c.refuse, devErr)
		}
		warned := false
		for _, n := range notices {
			warned = warned || (n.Level == slog.LevelWarn && strings.Contains(n.Msg, "targets.sandbox.base_url"))
		}
		if warned != c.warn {
			t.Errorf("%s: warned %v, want %v: %+v", c.baseURL, warned, c.warn, notices)
		}
	}
}

// dev (and config check --dev) warns that it does not use
// worker.deployment: its worker is unversioned; nothing without it.
func TestCheckDevConfigSaysWorkerDeploymentIsNotUsed(t *testing.T) {
	for _, versioned := range []bool{false, true} {
		yaml := "dev: {data_dir: %s}\n"
		if versioned {
			yaml += "worker: {deployment: {name: dealsync, build_id: v2}}\n"
		}
		notices, err := CheckDevConfig(devConfig(t, yaml), "")
		if err != nil {
			t.Fatal(err)
		}
		warned := false
		for _, n := range notices {
			warned = warned || (n.Level == slog.LevelWarn && strings.Contains(n.Msg, "worker.deployment (dealsync, build v2) is not used by dealsync dev: its worker is unversioned"))
		}
		if warned != versioned {
			t.Errorf("versioned %v: warned %v: %+v", versioned, warned, notices)
		}
	}
}

// devSecretKeys walks lists as it walks maps, and a missing spec is none.
func TestDevSecretKeysWalksListsAndNoSpec(t *testing.T) {
	type account struct {
		Secret secret.Secret `mapstructure:"secret"`
	}
	spec := struct {
		Accounts []account `mapstructure:"accounts"`
		Nothing  any       `mapstructure:"nothing"`
	}{Accounts: []account{{secret.New("whsec_other")}, {secret.New(config.DevSecret)}}}
	if got := devSecretKeys("connections.x.source", reflect.ValueOf(spec)); strings.Join(got, ",") != "connections.x.source.accounts.1.secret" {
		t.Errorf("got %v", got)
	}
	if got := devSecretKeys("connections.x.source", reflect.ValueOf(nil)); got != nil {
		t.Errorf("no spec: %v", got)
	}
}

// Two of dev's own listeners on one port are refused before anything is
// made, naming both keys; the defaults and distinct ports pass.
func TestDevPortClash(t *testing.T) {
	cfg, err := config.Load("", config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if err := DevPortClash(cfg, cfg.Dev.FrontendPort, cfg.Dev.UIPort); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	clash := *cfg
	clash.Intake.Listen = "localhost:8090" // dev.sandbox_listen's
	clash.Metrics.Listen = "0.0.0.0:7233"  // the frontend's
	err = DevPortClash(&clash, clash.Dev.FrontendPort, clash.Dev.UIPort)
	for _, want := range []string{
		"intake.listen (localhost:8090) and dev.sandbox_listen (127.0.0.1:8090) are on one port",
		"metrics.listen (0.0.0.0:7233) and dev.frontend_port (127.0.0.1:7233) are on one port",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want %q", err, want)
		}
	}
	// A port the options pick free (or leave off) is not compared.
	if err := DevPortClash(&clash, -1, -1); err == nil || strings.Contains(err.Error(), "dev.frontend_port") {
		t.Errorf("free ports: %v", err)
	}
}
