package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"reflect"
	"slices"
	"strings"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/secret"
)

// Notice is something a process says about its config at start, at a
// level: `config check` prints the same text.
type Notice struct {
	Level slog.Level
	Msg   string
}

// LogNotices logs each notice at its level.
func LogNotices(logger *slog.Logger, notices []Notice) {
	for _, n := range notices {
		logger.Log(context.Background(), n.Level, n.Msg)
	}
}

// CheckDevConfig is what `dealsync dev` checks of its config before it
// takes a webhook, and `config check --dev` checks without binding a port
// (sandboxAddr is then dev.sandbox_listen; dev passes the address its
// sandbox ERP listens on): the Temporal settings dev does not use
// (config.Config.DevTemporalWarnings) and worker.deployment, the connections signed with the
// public dev secret (CheckDevSecret, where dev's built-in demo connection
// is only a note) and a `sandbox` target that is not dev's sandbox ERP
// (CheckSandboxTarget). A non-nil error is a refusal, every reason joined.
func CheckDevConfig(cfg *config.Config, sandboxAddr string) ([]Notice, error) {
	var notices []Notice
	for _, w := range cfg.DevTemporalWarnings() {
		notices = append(notices, Notice{slog.LevelWarn, w})
	}
	if d := cfg.Worker.Deployment; d.Versioned() {
		notices = append(notices, Notice{slog.LevelWarn, fmt.Sprintf(
			"worker.deployment (%s, build %s) is not used by dealsync dev: its worker is unversioned, on its own embedded server (only dealsync worker polls as a build)", d.Name, d.BuildID)})
	}
	secretNotices, secretErr := CheckDevSecret(cfg)
	notices = append(notices, secretNotices...)
	warning, sandboxErr := CheckSandboxTarget(cfg, sandboxAddr)
	if warning != "" {
		notices = append(notices, Notice{slog.LevelWarn, warning})
	}
	return notices, errors.Join(secretErr, sandboxErr)
}

// DevPortClash refuses a dev config two of whose listeners share a port
// (intake.listen, dev.sandbox_listen, metrics.listen, and the embedded
// server's frontend and Web UI on 127.0.0.1, at frontendPort and uiPort
// when above 0): dev would fail to bind the second, after it had made its
// data dir and opened the sandbox's journal, naming only the address.
func DevPortClash(cfg *config.Config, frontendPort, uiPort int) error {
	type listen struct{ key, addr string }
	ls := []listen{{"intake.listen", cfg.Intake.Listen}, {"dev.sandbox_listen", cfg.Dev.SandboxListen}}
	if cfg.Metrics.Listen != "" {
		ls = append(ls, listen{"metrics.listen", cfg.Metrics.Listen})
	}
	if frontendPort > 0 {
		ls = append(ls, listen{"dev.frontend_port", config.DevFrontend(frontendPort)})
	}
	if uiPort > 0 {
		ls = append(ls, listen{"dev.ui_port", config.DevFrontend(uiPort)})
	}
	var clashes []error
	for i := range ls {
		for _, b := range ls[i+1:] {
			if config.ListenClash(ls[i].addr, b.addr) {
				clashes = append(clashes, fmt.Errorf("%s (%s) and %s (%s) are on one port: dealsync dev listens on each; give one another port", ls[i].key, ls[i].addr, b.key, b.addr))
			}
		}
	}
	return errors.Join(clashes...)
}

// CheckDevSecret is what `dealsync serve` and `dealsync dev` check before
// they listen, and `config check` too: a connection that takes deliveries
// signed with config.DevSecret, which is public (README, examples), takes
// them from anyone who can reach its intake. When intake.listen is not a
// loopback address (0.0.0.0, ::, a LAN address, a host name other than
// localhost) that is a refusal naming each such connection and the key to
// set; on loopback, a warning for each (a note, Info, for the built-in
// demo connection of `dealsync dev`, which exists for that very use).
func CheckDevSecret(cfg *config.Config) ([]Notice, error) {
	exposed := !listensOnLoopback(cfg.Intake.Listen)
	var notices []Notice
	var refusals []error
	// The warnings of the connections other than dev's demo: one notice
	// naming them all (GroupWarnings does the same for Warnings).
	var warned, warnedKeys []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Connections)) {
		keys := devSecretKeys("connections."+name+".source", reflect.ValueOf(cfg.Connections[name].Source.Spec))
		if len(keys) == 0 {
			continue
		}
		var set []string
		for _, k := range keys {
			set = append(set, fmt.Sprintf("%s (env %s)", k, config.EnvVar(k)))
		}
		fix := fmt.Sprintf("set %s to a secret of your own, e.g. %s=env:NAME with NAME holding a new one",
			strings.Join(set, " and "), config.EnvVar(keys[0]))
		what := fmt.Sprintf("connection %s takes webhooks signed with %s", name, devSecretWhat)
		if exposed {
			refusals = append(refusals, fmt.Errorf("%s, and intake.listen is %s, not a loopback address: dealsync serve and dealsync dev refuse to start; %s, or listen on 127.0.0.1 (%s)",
				what, cfg.Intake.Listen, fix, config.EnvVar("intake.listen")))
			continue
		}
		if !cfg.IsDevDefault("connections", name) {
			warned = append(warned, name)
			warnedKeys = append(warnedKeys, set...)
			continue
		}
		notices = append(notices, Notice{slog.LevelInfo, "built-in " + loopbackDevSecret(what, cfg.Intake.Listen, fix)})
	}
	switch len(warned) {
	case 0:
	case 1:
		notices = append(notices, Notice{slog.LevelWarn, loopbackDevSecret(
			fmt.Sprintf("connection %s takes webhooks signed with %s", warned[0], devSecretWhat), cfg.Intake.Listen,
			fmt.Sprintf("set %s to a secret of your own, e.g. %s=env:NAME with NAME holding a new one", strings.Join(warnedKeys, " and "), config.EnvVar(firstKey(warnedKeys))))})
	default:
		notices = append(notices, Notice{slog.LevelWarn, loopbackDevSecret(
			fmt.Sprintf("connections %s take webhooks signed with %s", strings.Join(warned, ", "), devSecretWhat), cfg.Intake.Listen,
			fmt.Sprintf("set %s to secrets of your own, e.g. %s=env:NAME with NAME holding a new one", strings.Join(warnedKeys, ", "), config.EnvVar(firstKey(warnedKeys))))})
	}
	return notices, errors.Join(refusals...)
}

const devSecretWhat = "dealsync's public dev secret (config.DevSecret, published in the README and examples/dealsync.yaml: anyone can sign with it)"

// loopbackDevSecret is CheckDevSecret's warning of connections (what)
// that take the public dev secret on a loopback intake.listen, with the fix.
func loopbackDevSecret(what, listen, fix string) string {
	return fmt.Sprintf("%s; accepted because intake.listen (%s) is a loopback address. Before the intake is reachable from elsewhere (dealsync serve and dealsync dev refuse the public secret on any other address), %s",
		what, listen, fix)
}

// firstKey is the config key of the first of CheckDevSecret's "KEY (env
// VAR)" entries.
func firstKey(entries []string) string {
	k, _, _ := strings.Cut(entries[0], " (env ")
	return k
}

// listensOnLoopback reports whether the listen address (host:port) is on
// this machine only: an empty host, 0.0.0.0 and :: are every interface.
func listensOnLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	return err == nil && host != "" && config.IsLoopback(host)
}

var secretType = reflect.TypeOf(secret.Secret{})

// devSecretKeys lists the keys under prefix of the secrets of a decoded
// source config (mapstructure-tagged, maps of accounts included) that
// hold config.DevSecret. A secret that cannot be resolved is not one.
func devSecretKeys(prefix string, v reflect.Value) []string {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return nil // no spec
	}
	if v.Type() == secretType {
		if isDevSecret(v.Interface().(secret.Secret)) {
			return []string{prefix}
		}
		return nil
	}
	var out []string
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
			if !f.IsExported() || tag == "-" {
				continue
			}
			key := prefix
			if tag != "" {
				key += "." + tag
			}
			out = append(out, devSecretKeys(key, v.Field(i))...)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			out = append(out, devSecretKeys(fmt.Sprintf("%s.%d", prefix, i), v.Index(i))...)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return nil
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			out = append(out, devSecretKeys(prefix+"."+k.String(), v.MapIndex(k))...)
		}
	}
	return out
}

// isDevSecret reports whether s resolves to config.DevSecret, in any of
// the spellings a Standard Webhooks secret takes (with or without whsec_
// and the base64 padding).
func isDevSecret(s secret.Secret) bool {
	if s.IsZero() {
		return false
	}
	v, err := s.Reveal()
	if err != nil {
		return false
	}
	norm := func(s string) string {
		return strings.TrimRight(strings.TrimPrefix(strings.TrimSpace(s), "whsec_"), "=")
	}
	return norm(v) == norm(config.DevSecret)
}
