// Package config loads, defaults and validates dealsync's configuration:
// a YAML file (optional), built-in defaults and DEALSYNC_* environment
// overrides, merged by viper, decoded with mapstructure and checked with
// go-playground/validator. Source and target blocks are decoded into the
// config struct their connector type registered (see package connectors).
//
// Every problem found is reported at once, as a *Error listing each dotted
// key path as written in the YAML file. Secrets (secret.Secret) are never
// part of an error message or of the printed configuration.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/viper"

	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/secret"
)

// EnvPrefix prefixes every environment override: intake.listen is
// overridden by DEALSYNC_INTAKE_LISTEN, connections.demo.source.secret by
// DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET. A `-` in the key path is written
// `_` (connections.hubspot-eu.source.secret ←
// DEALSYNC_CONNECTIONS_HUBSPOT_EU_SOURCE_SECRET) or kept as is.
const EnvPrefix = "DEALSYNC"

// DevSecret is the webhook signing secret of the built-in `demo` connection
// that WithDevDefaults adds. It is PUBLIC (it is in the source code and the
// docs) and exists only so that `dealsync dev` works out of the box: never
// use it for a connection reachable from outside your machine.
const DevSecret = "whsec_ZGVhbHN5bmMtZGV2LXNlY3JldC1ub3QtZm9yLXByb2Q="

// DefaultWonStages are the deal stages that start a sync when a connection
// does not list its own trigger.won_stages: they include the stage each
// CRM source reports a won deal as (HubSpot `closedwon`, Salesforce
// `Closed Won`, Pipedrive `won`; compared ignoring case).
var DefaultWonStages = []string{"closed_won", "closedwon", "closed won", "won"}

// Config is dealsync's whole configuration.
type Config struct {
	Log      Log      `mapstructure:"log"`
	Temporal Temporal `mapstructure:"temporal"`
	Intake   Intake   `mapstructure:"intake"`
	Workflow Workflow `mapstructure:"workflow"`
	Worker   Worker   `mapstructure:"worker"`
	Dev      Dev      `mapstructure:"dev"`
	Sandbox  Sandbox  `mapstructure:"sandbox"`
	Metrics  Metrics  `mapstructure:"metrics"`
	// Mappings says where the mapping files are (see docs/mappings.md).
	Mappings Mappings `mapstructure:"mappings"`
	// Targets are the ERP targets by name; connections refer to them.
	// Names are lower-case (viper lower-cases keys; see checkNameCase).
	Targets map[string]Component `mapstructure:"targets" validate:"dive"`
	// Connections are the CRM→ERP connections by name. The name appears in
	// the webhook URL (/webhooks/<name>) and in workflow IDs; it is
	// lower-case.
	Connections map[string]Connection `mapstructure:"connections" validate:"dive"`
	// devEntries are the entries WithDevDefaults added ("connections.demo",
	// "targets.sandbox"): not in the file, see IsDevDefault.
	devEntries map[string]bool
	// devReplaced: see DevTemporalWarnings; devConflict: see
	// DevAddressConflict.
	devReplaced []string
	devConflict error
	// devFrontend: see DialsDev.
	devFrontend bool
	// ignoredEnv: see IgnoredEnv; envHints are the variables of known keys
	// they look like typos of, by name.
	ignoredEnv []string
	envHints   map[string]string
	// relative: see RelativePathWarnings.
	relative []relativePath
	// skipped: see Skipped.
	skipped []Problem
	// unresolved: see UnresolvedSecrets.
	unresolved []Problem
	// given: see Given.
	given map[string]bool
	// keyVars: see KeyVar.
	keyVars map[string]string
}

// IgnoredEnv lists the DEALSYNC_* environment variables that set no key of
// this config and that no env: secret reference names: most often a
// misspelt key (DEALSYNC_INTAKE_LISTN), or a key of a connection or target
// the file does not have (the environment only overrides keys of entries
// the file, or `dealsync dev`, defines). It lists too the variables the
// config does not read, with another prefix, that are a key's variable but
// for a letter or two or the case of their letters (DEALSYN_INTAKE_LISTEN,
// dealsync_intake_listen): IgnoredEnvWarnings names that key's.
// DEALSYNC_TEST_* and DEALSYNC_RECORD_HISTORIES, which the tests read, are
// not listed. Sorted.
func (c *Config) IgnoredEnv() []string { return c.ignoredEnv }

// IgnoredEnvWarnings are the warnings of IgnoredEnv, each naming the
// variable of a key it looks like a typo of, if any.
func (c *Config) IgnoredEnvWarnings() []string {
	out := make([]string, len(c.ignoredEnv))
	for i, name := range c.ignoredEnv {
		out[i] = IgnoredEnvWarning(name, c.envHints[name])
	}
	return out
}

// RelativePathWarnings say which files of the config (a token_file, a
// link_file, the Temporal client's TLS files, a file: secret) are given by
// a relative path: read from the working directory, not from the config
// file's (as mapping files are), so a process started in another directory
// reads another file (another worker's token_file: another refresh token,
// and the ERP's invalid_grant).
func (c *Config) RelativePathWarnings() []string {
	wd, err := os.Getwd()
	if err != nil {
		wd = "?"
	}
	out := make([]string, len(c.relative))
	for i, r := range c.relative {
		key, path := r.key, r.path
		if strings.HasPrefix(path, "~") {
			// No shell reads it: ~ is a directory of that name.
			out[i] = fmt.Sprintf("%s is %s, and ~ is not expanded here (a directory named ~ in the working directory, %s, is read or made): give the full path", key, path, wd)
			continue
		}
		out[i] = fmt.Sprintf("%s is the relative path %s, read from the working directory (%s), not from the config file's: "+
			"a process started in another directory reads another file; give an absolute path", key, path, wd)
	}
	return out
}

// TimingWarnings say which timings of the workflow section work against
// each other without being invalid: a step's timeout or the retries'
// back-off as long as the whole run, whose run then times out where it
// would have retried (a run that times out is started again by `runs
// retry --timed-out`, not by itself).
func (c *Config) TimingWarnings() []string {
	w := c.Workflow
	if w.RunTimeout <= 0 {
		return nil
	}
	var out []string
	if w.ActivityTimeout >= w.RunTimeout {
		out = append(out, fmt.Sprintf("workflow.activity_timeout (%s) is not less than workflow.run_timeout (%s): one slow ERP or CRM call can use up the whole run, which then times out instead of trying the call again (give run_timeout several times activity_timeout)",
			wording.Duration(w.ActivityTimeout), wording.Duration(w.RunTimeout)))
	}
	switch r := w.Retry; {
	case r.MaximumAttempts == 1:
		// No retry: no wait.
	case r.InitialInterval >= w.RunTimeout:
		out = append(out, fmt.Sprintf("workflow.retry.initial_interval (%s) is not less than workflow.run_timeout (%s): a failed call is never tried again, since the run times out before its first retry",
			wording.Duration(r.InitialInterval), wording.Duration(w.RunTimeout)))
	case longestWait(r) >= w.RunTimeout:
		out = append(out, fmt.Sprintf("workflow.retry.maximum_interval (%s) is not less than workflow.run_timeout (%s): while an ERP or CRM is down, the waits between attempts grow past what is left of the run, which times out after its last attempt instead of trying again when the vendor is back",
			wording.Duration(r.MaximumInterval), wording.Duration(w.RunTimeout)))
	}
	return out
}

// UnwritableFileWarnings say which files dealsync writes (a target's
// token_file or link_file) are in a directory this process cannot write
// (a read-only mount, another user's directory): a worker's calls to that
// ERP lock and save its rotating tokens, or its customer links, there, and
// would fail LocalFileUnavailable, retried, until it can. An intake
// (serve) does not write them.
func (c *Config) UnwritableFileWarnings() []string {
	var out []string
	for _, f := range writtenFiles(c) {
		if dir, err := unwritableDir(f.path); dir != "" {
			out = append(out, fmt.Sprintf("%s is %s, in a directory this process cannot write (%s: %v): a worker locks and saves the rotating OAuth tokens (or an ERP's customer links) there, and its calls to that ERP or CRM would fail LocalFileUnavailable, retried, until it can (an intake, serve, does not write it)",
				f.key, f.path, dir, err))
		}
	}
	return out
}

// longestWait is the longest wait between two attempts r gives: the
// initial interval grown by the coefficient at each retry, up to the
// maximum interval, over maximum_attempts (0: unlimited).
func longestWait(r RetryPolicy) time.Duration {
	if r.BackoffCoefficient <= 1 || r.MaximumInterval <= r.InitialInterval {
		return min(r.InitialInterval, r.MaximumInterval)
	}
	// The growths it takes to reach the maximum; attempts give
	// attempts-1 waits, the last grown attempts-2 times.
	growths := math.Log(float64(r.MaximumInterval)/float64(r.InitialInterval)) / math.Log(r.BackoffCoefficient)
	if r.MaximumAttempts == 0 || float64(r.MaximumAttempts-2) >= growths {
		return r.MaximumInterval
	}
	return time.Duration(float64(r.InitialInterval) * math.Pow(r.BackoffCoefficient, float64(r.MaximumAttempts-2)))
}

// Skipped are the problems of a config loaded with TemporalOnly in the
// sections it does not check, which a full load would report: for the
// command to name as warnings (a misplaced key may be one it needed).
func (c *Config) Skipped() []Problem { return c.skipped }

// Given reports whether the file or the environment gives key (a dotted
// path such as "targets.erp.lookup_invoices"), as opposed to a default:
// for a warning about a setting whose default is a choice the config
// should make on purpose.
func (c *Config) Given(key string) bool { return c.given[strings.ToLower(key)] }

// KeyVar is the environment variable that can set key (a dotted path such
// as "targets.books.client_id"), as EnvVar spells it, for advice to name
// beside the key; "" when no variable can set it: the environment sets
// only the keys the config knows, so a key in a map of data (a CRM's
// `accounts`) that the file does not write has none.
func (c *Config) KeyVar(key string) string { return c.keyVars[strings.ToLower(key)] }

// UnresolvedSecrets are the secrets of a config loaded with WithoutSecrets
// that do not resolve here (an env: variable not set, a file: not there),
// each as the problem a full load would report: for the command to say
// what it could not do without them. Sorted by key.
func (c *Config) UnresolvedSecrets() []Problem { return c.unresolved }

// ignoredEnv finds IgnoredEnv among environ (os.Environ's form), with
// the variable of a known key each one looks like a typo of (one or two
// letters added, dropped, changed or swapped), when there is one.
func ignoredEnv(v *viper.Viper, settings map[string]any, environ []string) ([]string, map[string]string) {
	known := map[string]bool{}
	var keyVars []string
	for _, key := range v.AllKeys() {
		if extensionKey(key) {
			continue // x-…: the file's anchors, which no variable changes where they are used
		}
		known[autoEnvVar(key)] = true
		known[EnvVar(key)] = true // bindUnderscoreSpellings
		keyVars = append(keyVars, key)
	}
	slices.Sort(keyVars)
	var refer func(any)
	refer = func(x any) {
		switch x := x.(type) {
		case string:
			if name, ok := strings.CutPrefix(strings.TrimSpace(x), "env:"); ok {
				known[name] = true
			}
		case map[string]any:
			for _, y := range x {
				refer(y)
			}
		case []any:
			for _, y := range x {
				refer(y)
			}
		}
	}
	refer(settings)
	// closest is the variable of a known key that name looks like a
	// typo of (one or two letters added, dropped, changed or swapped,
	// the case of letters aside), "" for none.
	closest := func(name string) string {
		upper := strings.ToUpper(name)
		best, bestDist := "", 3
		for _, key := range keyVars {
			// An entry's name, an account's id, is data: a typo is in
			// the key's own words, never in another entry's name (the
			// hint would put one connection's secret on another).
			if !namesData(upper, key) {
				continue
			}
			kv := EnvVar(key)
			if len(upper) < len(kv)-2 || len(upper) > len(kv)+2 {
				continue // more than two letters apart
			}
			if d := wording.TypoDistance(upper, kv); d < bestDist {
				best, bestDist = kv, d
			}
		}
		return best
	}
	var out []string
	var hints map[string]string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if known[name] || strings.HasPrefix(name, EnvPrefix+"_TEST_") || name == EnvPrefix+"_RECORD_HISTORIES" {
			continue
		}
		best := ""
		if !strings.HasPrefix(name, EnvPrefix+"_") {
			// A variable the config does not read at all: listed only
			// when it is a key's variable but for a typo, in its prefix
			// (DEALSYN_INTAKE_LISTEN, DEALSNYC_…) or anywhere, or the
			// case of its letters (dealsync_intake_listen), never for
			// a variable of another program.
			if best = closest(name); best == "" {
				continue
			}
		} else {
			best = closest(name)
		}
		out = append(out, name)
		if best != "" {
			if hints == nil {
				hints = map[string]string{}
			}
			hints[name] = best
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return out, hints
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is the address of a separate HTTP server answering GET
	// /metrics (webhooks, run steps, Go runtime, process). Empty: none.
	Listen string `mapstructure:"listen" validate:"omitempty,hostport"`
}

// Log configures the process log.
type Log struct {
	Level  string `mapstructure:"level" validate:"oneof=debug info warn error"`
	Format string `mapstructure:"format" validate:"oneof=text json"`
	// Replica names this process on each of its log lines (replica=)
	// and as its Temporal client's identity, the Web UI's Identity of
	// the events it caused. "": <pid>@<hostname>@, the SDK's default
	// identity.
	Replica string `mapstructure:"replica" validate:"printascii,max=200"`
}

// Temporal says how to reach the Temporal frontend.
type Temporal struct {
	Address   string        `mapstructure:"address" validate:"required,grpctarget"`
	Namespace string        `mapstructure:"namespace" validate:"required"`
	TaskQueue string        `mapstructure:"task_queue" validate:"required"`
	APIKey    secret.Secret `mapstructure:"api_key"`
	TLS       TLS           `mapstructure:"tls"`
	// Compression of the gRPC requests to the frontend: "gzip" (the SDK's
	// default: less traffic to a remote cluster) or "none" (less CPU on
	// both ends; `dealsync dev` always uses none for its embedded server).
	Compression string `mapstructure:"compression" validate:"oneof=gzip none"`
	// Encryption of the payloads dealsync stores in Temporal (off unless
	// keys are given): see Encryption.
	Encryption Encryption `mapstructure:"encryption"`
}

// Encryption configures the AES-256-GCM encryption of the payloads
// (workflow and activity inputs and results, signals, memos) every
// dealsync client and worker sends to Temporal (package payloadcodec). Off
// when Keys is empty (the default). Search attributes, workflow IDs and
// failure messages stay plaintext.
type Encryption struct {
	// KeyID is the key new payloads are encrypted with: one of Keys.
	// Empty with Keys given: nothing new is encrypted, and payloads
	// encrypted earlier are still decrypted (to turn encryption off).
	KeyID string `mapstructure:"key_id"`
	// Keys are the keys by id, each 32 bytes in standard base64, given as
	// other secrets are (env:NAME, file:PATH or, not advised, literally).
	// A payload is decrypted with the key its metadata names, so an old
	// key is kept here until no run that used it is left.
	Keys map[string]secret.Secret `mapstructure:"keys"`
	// CodecEndpoint serves POST /codec/decode and /codec/encode for the
	// Temporal Web UI's codec server setting on metrics.listen (`serve`,
	// `worker`): it hands out plaintext to whoever reaches it, so it is
	// off unless set, and metrics.listen must not be reachable but by
	// operators. `dealsync dev` always serves one for its own UI.
	CodecEndpoint bool `mapstructure:"codec_endpoint"`
	// CodecOrigins are the Web UI origins (https://temporal.example.com)
	// whose pages may call the codec endpoint (CORS); a page of another
	// origin is refused. Each is compared with the Origin header exactly,
	// so it is given as browsers send it: lower case, no path or final
	// slash, no default port.
	CodecOrigins []string `mapstructure:"codec_origins" validate:"dive,http_url"`
}

// On reports whether payload encryption is configured (keys given).
func (e Encryption) On() bool { return len(e.Keys) > 0 }

// TLS configures the client side of the Temporal connection.
type TLS struct {
	Enabled    bool   `mapstructure:"enabled"`
	CAFile     string `mapstructure:"ca_file" validate:"omitempty,file"`
	CertFile   string `mapstructure:"cert_file" validate:"omitempty,file"`
	KeyFile    string `mapstructure:"key_file" validate:"omitempty,file"`
	ServerName string `mapstructure:"server_name"`
}

// Intake configures the webhook HTTP server.
type Intake struct {
	Listen       string `mapstructure:"listen" validate:"required,hostport"`
	MaxBodyBytes int64  `mapstructure:"max_body_bytes" validate:"min=1024"`
	// MaxInFlightBytes bounds the webhook bodies one intake holds at once
	// (the buffers they are read into: intake.Options): past it, 503 with
	// Retry-After, so a flood of large or slow bodies cannot exhaust the
	// memory. Less than max_body_bytes is taken as that.
	MaxInFlightBytes int64 `mapstructure:"max_inflight_bytes" validate:"gte=0"`
	// PublicBaseURL is the URL the CRMs call, used by signatures that
	// cover the URL. Empty: the request's own URL.
	PublicBaseURL string `mapstructure:"public_base_url" validate:"omitempty,http_url"`
	// StartTimeout is how long the intake waits for Temporal to accept a
	// workflow start before answering 503; the starts of a delivery of many
	// deals take at most three times that in all (after at most one more
	// for a CRM read some sources make first).
	StartTimeout time.Duration `mapstructure:"start_timeout" validate:"gt=0"`
	// DrainDelay is how long a stopping `dealsync serve` keeps taking
	// webhooks while its GET /readyz already fails, so that its load
	// balancer stops sending to it before it stops listening. `dealsync
	// dev` does not wait.
	DrainDelay time.Duration `mapstructure:"drain_delay" validate:"gte=0"`
}

// Workflow configures the sync workflow.
type Workflow struct {
	Retry RetryPolicy `mapstructure:"retry"`
	// ActivityTimeout is the start-to-close timeout of one ERP call: at
	// least 5 s, since a call ends 2 s before its step does and a write
	// is not sent with less than a second of its own (connectors.StepMargin).
	ActivityTimeout time.Duration `mapstructure:"activity_timeout" validate:"gte=5s"`
	// RunTimeout bounds a whole run; a run that cannot finish within it times
	// out (runs retry --timed-out starts it again).
	RunTimeout time.Duration `mapstructure:"run_timeout" validate:"gt=0"`
	// ExternalCalls says how the calls to ERPs and CRMs run: "local" (local
	// activities: executed by the worker that runs the workflow, recorded as
	// markers, retried with the same policy, long back-offs become server
	// timers; about three times the throughput) or "activity" (regular
	// activities: each call is its own task any worker can pick up).
	ExternalCalls string `mapstructure:"external_calls" validate:"oneof=local activity"`
	// TargetMismatchGrace is how long a worker retries a run's ERP step
	// that it refuses because its config sends the run's connection to
	// another ERP target than the run was started for (ERPTargetMismatch):
	// long enough for a rolling config change to reach every worker, or
	// another worker to take the step; past it, counted from the step's
	// first attempt, the refusal is not retried and the run fails, for
	// `dealsync runs retry` to start it again for the target configured
	// then. Each worker reads its own.
	TargetMismatchGrace time.Duration `mapstructure:"target_mismatch_grace" validate:"gt=0"`
}

// Worker configures `dealsync worker`.
type Worker struct {
	// Deployment opts the worker into Temporal's worker versioning.
	Deployment Deployment `mapstructure:"deployment"`
}

// Deployment is the Temporal worker deployment, and the build of it, a
// worker polls as (worker versioning): each run stays on the build that
// started it (pinned), and new runs go to the deployment's current build,
// which the operator sets (docs/operations.md, rolling upgrades). Both
// empty (the default): an unversioned worker. `dealsync dev` ignores it.
type Deployment struct {
	// Name of the deployment: the same for every build of one
	// installation's workers of the task queue.
	Name string `mapstructure:"name"`
	// BuildID of this release of the worker (its version, an image tag):
	// another for each release.
	BuildID string `mapstructure:"build_id"`
}

// Versioned reports whether d opts into worker versioning.
func (d Deployment) Versioned() bool { return d.Name != "" }

// RetryPolicy is the activity retry policy. MaximumAttempts 0 = unlimited.
type RetryPolicy struct {
	InitialInterval    time.Duration `mapstructure:"initial_interval" validate:"gt=0"`
	BackoffCoefficient float64       `mapstructure:"backoff_coefficient" validate:"gte=1"`
	MaximumInterval    time.Duration `mapstructure:"maximum_interval" validate:"gt=0"`
	MaximumAttempts    int           `mapstructure:"maximum_attempts" validate:"gte=0,lte=2147483647"`
}

// Dev configures `dealsync dev` (embedded Temporal, sandbox ERP).
type Dev struct {
	DataDir       string        `mapstructure:"data_dir" validate:"required"`
	FrontendPort  int           `mapstructure:"frontend_port" validate:"min=1,max=65535"`
	UIPort        int           `mapstructure:"ui_port" validate:"min=1,max=65535"`
	SandboxListen string        `mapstructure:"sandbox_listen" validate:"required,hostport"`
	Retention     time.Duration `mapstructure:"retention" validate:"gte=1h"`
	// AllowedHosts are the host names (or IP addresses) besides
	// localhost, 127.0.0.1 and [::1] under which dev's Web UI, its codec
	// endpoint and its sandbox ERP answer a request (its Host header):
	// any other is refused with 403, so that a web page that rebinds its
	// own name to 127.0.0.1 reaches none of them (internal/hostcheck).
	AllowedHosts []string `mapstructure:"allowed_hosts" validate:"dive,host"`
}

// Sandbox configures fault injection of the sandbox ERP.
type Sandbox struct {
	// ErrorRate is the share of requests answered with a 503 (0..1).
	ErrorRate float64 `mapstructure:"error_rate" validate:"min=0,max=1"`
	// RateLimitRate is the share answered with a 429 (0..1); the sum with
	// ErrorRate must not exceed 1.
	RateLimitRate float64 `mapstructure:"rate_limit_rate" validate:"min=0,max=1"`
	// RetryAfter is the Retry-After of the 429 and 503 answers.
	RetryAfter time.Duration `mapstructure:"retry_after" validate:"gte=0"`
	// Latency holds every faultable answer: the request is processed at
	// once and its answer sent Latency later (dropped if the client has
	// given up by then, the work done).
	Latency time.Duration `mapstructure:"latency" validate:"gte=0"`
	// LostResponseRate is the share of POSTs that are processed (the
	// customer or invoice created, its idempotency key stored) but
	// answered 502, as when a proxy loses the answer (0..1).
	LostResponseRate float64 `mapstructure:"lost_response_rate" validate:"min=0,max=1"`
}

// Mappings configures the mapping files connections refer to by name.
type Mappings struct {
	// Files are mapping files; relative paths are relative to the
	// directory of the config file.
	Files []string `mapstructure:"files" validate:"dive,required"`
	// Dir is a directory whose *.yaml and *.yml files are all mapping
	// files (relative to the config file's directory).
	Dir string `mapstructure:"dir"`
	// ReloadInterval is how often the files are checked for changes; a
	// changed set applies to new runs. 0 disables reloading.
	ReloadInterval time.Duration `mapstructure:"reload_interval" validate:"gte=0"`

	// Sources are Files and Dir resolved against the config file's
	// directory (set by Load).
	Sources mapping.Sources `mapstructure:"-" validate:"-" json:"-"`
	// Loaded are the compiled mappings (set by a successful Load).
	Loaded *mapping.Set `mapstructure:"-" validate:"-" json:"-"`
}

// Component is a source or target block: `type` plus type-specific keys.
//
// After a successful Load, Spec holds the pointer returned by the registered
// type's NewConfig(), with Options decoded into it and validated; pass it to
// the spec's Build. Options keeps the raw keys (other than type) as merged
// from file, defaults and environment; they may contain secrets in clear,
// so Component masks them when formatted or marshalled.
type Component struct {
	Type    string         `mapstructure:"type" validate:"required"`
	Options map[string]any `mapstructure:",remain" validate:"-"`
	Spec    any            `mapstructure:"-" validate:"-"`
}

// Connection ties a CRM source to an ERP target.
type Connection struct {
	Source Component `mapstructure:"source"`
	// Target names an entry of Config.Targets, in any letter case (Load
	// lower-cases it, as it does the names under targets).
	Target  string  `mapstructure:"target" validate:"required"`
	Trigger Trigger `mapstructure:"trigger"`
	// Mapping names the mapping to use: a mapping file's name, or empty
	// (or "default") for the built-in mapping.
	Mapping string `mapstructure:"mapping"`
	// AccountTargets routes the events of one CRM account (HubSpot portal
	// id, Salesforce org id, Pipedrive company id) to its own ERP target, so
	// one deployment serves several companies. Accounts not listed use
	// Target; the source itself rejects accounts it is not configured for.
	// Its target names are lower-cased like Target.
	AccountTargets map[string]string `mapstructure:"account_targets"`
	// SettleTime is how long a run waits for more events of the same deal
	// before it reads the deal and invoices its final state (CRMs send a
	// stage, an amount and a close date as separate events). 0 means the
	// source's default: 5s for sources whose events must be fetched, none
	// for the generic source. With a settle time or a linger, the intake
	// also delivers the generic source's events that do not trigger a run
	// to the deal's running run.
	SettleTime time.Duration `mapstructure:"settle_time" validate:"gte=0"`
	// Linger keeps an invoiced run open this long to notice later changes of
	// the deal (ChangedAfterInvoice) without invoicing it twice. 0 means the
	// source's default: 15m for sources whose events must be fetched, none
	// for the generic source.
	Linger time.Duration `mapstructure:"linger" validate:"gte=0"`
}

// Trigger says which deal events start a sync.
type Trigger struct {
	// WonStages are the deal stages (compared case-insensitively by the
	// intake) that count as closed-won.
	WonStages []string `mapstructure:"won_stages" validate:"min=1,dive,required"`
}

// Option changes how Load works.
type Option func(*options)

type options struct {
	dev          bool
	noMappings   bool
	temporalOnly bool
	noSecrets    bool
}

// TemporalOnly loads the config for a command that only reads the runs of
// Temporal (`dealsync runs list`): what it needs, temporal.*, dev.* and
// log.*, is loaded and validated as always, but a problem in the sections
// it does not use (targets, connections, mappings, intake, sandbox,
// metrics, workflow) is not one, and mapping files are not compiled (as
// WithoutMappings). So a mapping file being edited, a secret this shell
// does not have, a connection's typo or a variable that names one of those
// sections (DEALSYNC_CONNECTIONS_SHOP, DEALSYNC_INTAKE) does not keep an
// operator from the run list; they are listed by Skipped. A variable that
// names a section it reads (DEALSYNC_TEMPORAL_TLS) is refused as always. A
// Config loaded so must not be built into connections.
func TemporalOnly() Option {
	return func(o *options) { o.temporalOnly, o.noMappings = true, true }
}

// unusedByTemporalOnly are the top-level sections TemporalOnly leaves
// unchecked.
var unusedByTemporalOnly = []string{"targets", "connections", "mappings", "intake", "sandbox", "metrics", "workflow"}

// WithoutMappings loads the config without compiling its mapping files:
// Mappings.Sources is resolved (and mappings.dir checked to be a
// directory), but Mappings.Loaded stays nil, and neither a mapping file
// that does not compile nor a connection naming a mapping that no file
// defines is a problem. Everything else is loaded and validated as
// without it. It is for commands that need the connections' sources and
// not their mappings (`dealsync webhook send`), so that a mapping file
// being edited does not stop them; a Config loaded so cannot be built
// into connections whose mapping is a file's.
func WithoutMappings() Option { return func(o *options) { o.noMappings = true } }

// WithoutSecrets loads the config without requiring its secrets: a
// secret that does not resolve here (an env: variable this shell does not
// have, a file: that is not there) is not a problem but is listed by
// UnresolvedSecrets. Everything else is loaded and validated as without
// it. It is for the commands that never send anything (`mapping lint`,
// `mapping test` on a deal file), so that they run where the secrets are
// not at hand, as in most CI jobs. Building a connection or a target
// whose secret is unresolved fails as it would at run time, naming it.
func WithoutSecrets() Option { return func(o *options) { o.noSecrets = true } }

// WithDevDefaults adds the built-in `sandbox` target (type http, base_url
// pointing at dev.sandbox_listen) and the `demo` connection (generic source
// signed with DevSecret, target sandbox). They are defaults: the file and
// the environment may override single keys (e.g. only
// connections.demo.source.secret), and a file entry that sets its own
// `type` (targets.sandbox.type, connections.demo.source.type) replaces the
// built-in one wholesale. `dealsync dev` uses it, and the commands run
// with --dev.
//
// The Temporal frontend is not a default but set: it is the embedded
// server of `dealsync dev`, 127.0.0.1:<dev.frontend_port>, plaintext and
// without a key, whatever temporal.address, temporal.tls and
// temporal.api_key the file or the environment give (dev serves there and
// ignores them; a command run with --dev that dialled them would act on
// another server than the one dev serves, another developer's dev server
// say). What was set and replaced is told by DevTemporalWarnings.
func WithDevDefaults() Option { return func(o *options) { o.dev = true } }

// Load reads the YAML file at path ("" = no file: defaults and environment
// only), applies DEALSYNC_* environment overrides and validates the result.
// A file that cannot be read or parsed is a plain error; a configuration
// that is not valid is a *Error listing every problem.
func Load(path string, opts ...Option) (*Config, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}

	v := viper.New()
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	setDefaults(v)

	if path != "" {
		v.SetConfigFile(path)
		// YAML whatever the file's name (dealsync.conf, a mounted
		// config with no extension): viper would refuse an extension it
		// does not know, and read .toml or .properties in their own
		// formats, past the checks made on the YAML text. A .json file is
		// read as JSON: not all JSON is YAML (a \/ escape, a surrogate
		// pair), and the checks of the text read it as YAML when it is.
		v.SetConfigType("yaml")
		if strings.EqualFold(filepath.Ext(path), ".json") {
			v.SetConfigType("json")
		}
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config: reading %s: %w", path, misindented(path, err))
		}
		if err := dropNulls(v, path); err != nil {
			return nil, fmt.Errorf("config: reading %s: %w", path, err)
		}
	}
	if o.dev {
		setDevDefaults(v)
	}
	// Per-connection defaults, now that the connection names are known.
	for _, name := range connectionNames(v) {
		v.SetDefault("connections."+name+".trigger.won_stages", append([]string(nil), DefaultWonStages...))
	}
	bindEntryKeys(v)
	bindUnderscoreSpellings(v)
	var skip func(key string) bool
	if o.temporalOnly {
		skip = func(key string) bool {
			top, _, _ := strings.Cut(key, ".")
			return slices.Contains(unusedByTemporalOnly, top)
		}
	}
	// A variable that names a section drops its keys: refused, but under
	// TemporalOnly in a section it does not read, where it is one more
	// problem the command names as a warning (as a connection's typo).
	sectionVars := sectionsSetByEnv(v)
	var skippedVars []Problem
	if skip != nil {
		sectionVars = slices.DeleteFunc(sectionVars, func(p Problem) bool {
			if skip(p.Key) {
				skippedVars = append(skippedVars, p)
				return true
			}
			return false
		})
	}
	if len(sectionVars) > 0 {
		return nil, &Error{File: path, Problems: sectionVars}
	}

	// AllSettings calls Get for every known key (file or default), which is
	// where AutomaticEnv is consulted: environment values win over both.
	settings := v.AllSettings()
	cfg, err := build(settings, path, o, skip)
	var ce *Error
	if err == nil {
		if len(skippedVars) > 0 {
			// The keys such a variable dropped are missing for it: it
			// is the problem to name, not each of them.
			cfg.skipped = slices.DeleteFunc(cfg.skipped, func(p Problem) bool {
				return slices.ContainsFunc(skippedVars, func(sv Problem) bool {
					return strings.HasPrefix(p.Key, sv.Key+".") || strings.HasPrefix(p.Key, sv.Key+"[")
				})
			})
			cfg.skipped = append(skippedVars, cfg.skipped...)
			sortProblems(cfg.skipped)
		}
		cfg.ignoredEnv, cfg.envHints = ignoredEnv(v, settings, os.Environ())
		cfg.given = givenKeys(v)
		cfg.keyVars = keyVars(v)
		cfg.relative = relativePaths(cfg)
	} else if errors.As(err, &ce) {
		ce.IgnoredEnv, ce.envHints = ignoredEnv(v, settings, os.Environ())
		// A problem of a value the environment set is not the file's:
		// it names the variable (the file may not have the key at all).
		for i, p := range ce.Problems {
			if p.Key == "" || strings.ContainsAny(p.Key, "[]") {
				continue
			}
			if name := envSetting(p.Key); name != "" {
				ce.Problems[i].Message += " (set by " + name + ")"
			}
		}
	}
	if err == nil && o.dev {
		cfg.devEntries = map[string]bool{}
		if !v.InConfig("targets.sandbox.type") {
			cfg.devEntries["targets.sandbox"] = true
		}
		if !v.InConfig("connections.demo.source.type") {
			cfg.devEntries["connections.demo"] = true
		}
		cfg.useDevFrontend(path, v.InConfig)
	}
	return cfg, err
}

// givenKeys are the keys of v that the file or the environment gives (see
// Config.Given): in the file, or a variable set, as AutomaticEnv reads it
// or with the hyphens of entry names as underscores (EnvVar).
func givenKeys(v *viper.Viper) map[string]bool {
	given := map[string]bool{}
	for _, key := range v.AllKeys() {
		if v.InConfig(key) {
			given[key] = true
			continue
		}
		if envSetting(key) != "" {
			given[key] = true
		}
	}
	return given
}

// keyVars are the keys of v by the variable that sets each (see
// Config.KeyVar): EnvVar's spelling, which bindUnderscoreSpellings binds
// for a key with a `-` unless another key shares it (then the spelling
// AutomaticEnv reads, the hyphens kept).
func keyVars(v *viper.Viper) map[string]string {
	keys := v.AllKeys()
	keysPerVar := map[string]int{}
	for _, k := range keys {
		keysPerVar[EnvVar(k)]++
	}
	vars := make(map[string]string, len(keys))
	for _, k := range keys {
		vars[k] = EnvVar(k)
		if keysPerVar[EnvVar(k)] > 1 {
			vars[k] = autoEnvVar(k)
		}
	}
	return vars
}

// DevFrontend is the address of the embedded Temporal frontend of
// `dealsync dev` on port (dev.frontend_port): the server listens on
// 127.0.0.1 only.
func DevFrontend(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// useDevFrontend points the Temporal settings at the embedded server of
// `dealsync dev` (see WithDevDefaults), noting for DevTemporalWarnings the
// settings of the file or the environment that said otherwise. inFile
// reports whether the file sets a key.
func (c *Config) useDevFrontend(path string, inFile func(string) bool) {
	c.devFrontend = true
	// Where a setting came from, and how to stop setting it for dev: the
	// environment wins over the file.
	from := func(key string) (where, fix string) {
		if v, ok := os.LookupEnv(EnvVar(key)); ok && v != "" {
			return "set by " + EnvVar(key), "unset " + EnvVar(key) + " for dev"
		}
		if inFile(key) {
			return "set in " + path, "leave " + key + " out of " + path
		}
		return "set", "leave " + key + " unset"
	}
	dev := DevFrontend(c.Dev.FrontendPort)
	if !sameHostPort(c.Temporal.Address, dev) {
		where, fix := from("temporal.address")
		c.devReplaced = append(c.devReplaced, fmt.Sprintf(
			"temporal.address is %s (%s), but with dealsync dev's defaults (dealsync dev, and commands run with --dev) Temporal is dev's embedded server at %s (dev.frontend_port, env %s): "+
				"temporal.address is not used; %s (its default follows dev.frontend_port); commands run without --dev use %s",
			c.Temporal.Address, where, dev, EnvVar("dev.frontend_port"), fix, c.Temporal.Address))
		c.devConflict = fmt.Errorf("temporal.address is %s (%s), but dev's embedded server is at %s by dev.frontend_port (env %s): "+
			"a command run with --dev cannot tell which of the two is the dev server it should act on, and stops; set %s to the port dealsync dev serves Temporal on "+
			"(its banner's Temporal line) and %s, or run the command without --dev to reach %s",
			c.Temporal.Address, where, dev, EnvVar("dev.frontend_port"), EnvVar("dev.frontend_port"), fix, c.Temporal.Address)
	}
	var unused []string
	if c.Temporal.TLS != (TLS{}) {
		unused = append(unused, "temporal.tls")
	}
	if !c.Temporal.APIKey.IsZero() {
		where, _ := from("temporal.api_key")
		unused = append(unused, "temporal.api_key ("+where+")")
	}
	if len(unused) > 0 {
		c.devReplaced = append(c.devReplaced, fmt.Sprintf(
			"%s: not used with dealsync dev's defaults (dealsync dev, and commands run with --dev): dev's embedded Temporal server at %s speaks plaintext and asks for no key",
			strings.Join(unused, " and "), dev))
	}
	c.Temporal.Address = dev
	c.Temporal.TLS = TLS{}
	c.Temporal.APIKey = secret.Secret{}
}

// DevAddressConflict is, under WithDevDefaults, the refusal of a
// temporal.address (of the file or the environment) that names another
// server than dev's embedded one at 127.0.0.1:<dev.frontend_port>: a
// command run with --dev cannot tell which is the dev server it should act
// on (the address may be dev's, moved by DEALSYNC_DEV_FRONTEND_PORT in
// another shell only). `dealsync dev` itself only warns: it serves on its
// port. Nil when they agree, or without WithDevDefaults.
func (c *Config) DevAddressConflict() error { return c.devConflict }

// DialsDev says whether the Temporal settings are those of `dealsync
// dev`'s embedded server (WithDevDefaults: `dev` and the --dev commands).
func (c *Config) DialsDev() bool { return c.devFrontend }

// DevTemporalWarnings say which Temporal settings of the file or the
// environment WithDevDefaults replaced by the embedded server of `dealsync
// dev` (a temporal.address other than 127.0.0.1:<dev.frontend_port>,
// temporal.tls, temporal.api_key), naming both settings. None without
// WithDevDefaults.
func (c *Config) DevTemporalWarnings() []string { return c.devReplaced }

// sameHostPort reports whether the Temporal addresses a and b (host:port)
// reach the same server: the same port, and the same host, localhost and
// every loopback address counting as one.
func sameHostPort(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return pa == pb && sameHost(ha, hb)
}

// IsDevDefault reports whether the entry (kind "connections" or
// "targets") was added by WithDevDefaults, not written in the file: the
// `demo` connection and the `sandbox` target of `dealsync dev`.
func (c *Config) IsDevDefault(kind, name string) bool {
	return c.devEntries[kind+"."+name]
}

func setDefaults(v *viper.Viper) {
	for k, val := range map[string]any{
		"log.level":   "info",
		"log.format":  "text",
		"log.replica": "",

		"temporal.address":                   DefaultTemporalAddress,
		"temporal.namespace":                 "default",
		"temporal.task_queue":                "dealsync",
		"temporal.api_key":                   "",
		"temporal.tls.enabled":               false,
		"temporal.tls.ca_file":               "",
		"temporal.tls.cert_file":             "",
		"temporal.tls.key_file":              "",
		"temporal.tls.server_name":           "",
		"temporal.compression":               "gzip",
		"temporal.encryption.key_id":         "",
		"temporal.encryption.codec_endpoint": false,
		"temporal.encryption.codec_origins":  []string{},
		"metrics.listen":                     "",
		"intake.listen":                      "127.0.0.1:8080",
		"intake.max_body_bytes":              1 << 20,
		"intake.max_inflight_bytes":          64 << 20,
		"intake.public_base_url":             "",
		"intake.start_timeout":               "5s",
		"intake.drain_delay":                 "5s",
		"workflow.retry.initial_interval":    "1s",
		"workflow.retry.backoff_coefficient": 2.0,
		"workflow.retry.maximum_interval":    "1m",
		"workflow.retry.maximum_attempts":    0,
		"workflow.activity_timeout":          "30s",
		"workflow.external_calls":            "local",
		"workflow.run_timeout":               "24h",
		"workflow.target_mismatch_grace":     "15m",
		"worker.deployment.name":             "",
		"worker.deployment.build_id":         "",

		"dev.data_dir":       "./.dealsync",
		"dev.frontend_port":  7233,
		"dev.ui_port":        8233,
		"dev.sandbox_listen": "127.0.0.1:8090",
		"dev.retention":      "720h",
		"dev.allowed_hosts":  []string{},

		"sandbox.error_rate":         0.0,
		"sandbox.rate_limit_rate":    0.0,
		"sandbox.retry_after":        "1s",
		"sandbox.latency":            "0s",
		"sandbox.lost_response_rate": 0.0,

		"mappings.files":           []string{},
		"mappings.dir":             "",
		"mappings.reload_interval": "2s",
	} {
		v.SetDefault(k, val)
	}
}

// setDevDefaults adds the dev entries as defaults, so that the file and
// the environment can override any of their keys. A file entry that sets
// its own type is taken as a whole: no built-in key is mixed into it.
func setDevDefaults(v *viper.Viper) {
	// The commands that dial Temporal with --dev (runs, deals, config check
	// --temporal) reach the dev server's frontend, on whatever port it has
	// (Load sets it after decoding: see useDevFrontend).
	v.SetDefault("temporal.address", DevFrontend(v.GetInt("dev.frontend_port")))
	if !v.InConfig("targets.sandbox.type") {
		v.SetDefault("targets.sandbox.type", "http")
		v.SetDefault("targets.sandbox.base_url", "http://"+DialAddr(v.GetString("dev.sandbox_listen")))
		// The sandbox refuses a second customer with one external id (409
		// naming the first): create first, one call per new customer.
		v.SetDefault("targets.sandbox.customer_lookup", "on_conflict")
	}
	if !v.InConfig("connections.demo.source.type") {
		v.SetDefault("connections.demo.source.type", "generic")
		v.SetDefault("connections.demo.source.secret", DevSecret)
	}
	v.SetDefault("connections.demo.target", "sandbox")
}

// DefaultTemporalAddress is temporal.address when nothing sets it.
const DefaultTemporalAddress = "127.0.0.1:7233"

// DialAddr turns a listen address into one a client on this machine can
// dial (":8090" and "0.0.0.0:8090" become "127.0.0.1:8090").
func DialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// SameHostPort reports whether baseURL addresses the server listening on
// listen: the same port, and a host that reaches it: the same host, where
// localhost is the loopback address, or, for a listen address on every
// interface ("", 0.0.0.0, ::), any address of this machine (IsLocal: a
// loopback address, 127.0.0.2 too, or one of its interfaces', a LAN
// address). A name other than localhost is not looked up.
func SameHostPort(baseURL, listen string) bool { return reachesListener(baseURL, listen, interfaceIPs) }

// reachesListener is SameHostPort with the addresses of this machine's
// interfaces given by local.
func reachesListener(baseURL, listen string, local func() []net.IP) bool {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return false
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	lhost, lport, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if p1, err1 := strconv.Atoi(port); err1 != nil {
		return false
	} else if p2, err2 := strconv.Atoi(lport); err2 != nil || p1 != p2 {
		return false
	}
	if ip := net.ParseIP(lhost); lhost == "" || (ip != nil && ip.IsUnspecified()) {
		return isLocal(host, local)
	}
	return sameHost(host, lhost)
}

func sameHost(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	ia, ib := net.ParseIP(a), net.ParseIP(b)
	if ia != nil && ib != nil {
		return ia.Equal(ib)
	}
	return IsLoopback(a) && IsLoopback(b)
}

// IsLoopback reports whether host (a name or an IP, as url.URL.Hostname
// gives it) is this machine's loopback: localhost, 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	ip := net.ParseIP(host)
	return strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback())
}

// IsLocal reports whether host (as url.URL.Hostname gives it) is this
// machine: its loopback (IsLoopback), or an address of one of its network
// interfaces (net.InterfaceAddrs: a LAN address). A name other than
// localhost is not looked up.
func IsLocal(host string) bool { return isLocal(host, interfaceIPs) }

// isLocal is IsLocal with the addresses of this machine's interfaces
// given by local.
func isLocal(host string, local func() []net.IP) bool {
	if IsLoopback(host) {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		return false
	}
	return slices.ContainsFunc(local(), ip.Equal)
}

// interfaceIPs are the addresses of this machine's network interfaces;
// none when they cannot be read. They are read once for a few seconds
// (interfaceIPsLife), not on every SameHostPort or IsLocal: a check
// (dev's start, a config's targets) asks for each target.
func interfaceIPs() []net.IP { return localIPs.get(time.Now(), net.InterfaceAddrs) }

// interfaceIPsLife is how long interfaceIPs keeps the addresses it read:
// a few seconds, so that a machine whose addresses change (a new lease, a
// VPN) is soon seen as it is.
const interfaceIPsLife = 5 * time.Second

var localIPs addrCache

// addrCache keeps the addresses read, when read.
type addrCache struct {
	mu   sync.Mutex
	read time.Time // zero: never
	ips  []net.IP
}

// get is the addresses read at most interfaceIPsLife before now, or
// read again (by read).
func (c *addrCache) get(now time.Time, read func() ([]net.Addr, error)) []net.IP {
	c.mu.Lock()
	defer c.mu.Unlock()
	if age := now.Sub(c.read); !c.read.IsZero() && age >= 0 && age < interfaceIPsLife {
		return c.ips
	}
	c.ips, c.read = nil, now
	addrs, err := read()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		switch a := a.(type) {
		case *net.IPNet:
			c.ips = append(c.ips, a.IP)
		case *net.IPAddr:
			c.ips = append(c.ips, a.IP)
		}
	}
	return c.ips
}

// connectionNames lists the connections known from file and defaults.
func connectionNames(v *viper.Viper) []string {
	seen := map[string]bool{}
	for _, k := range v.AllKeys() {
		parts := strings.SplitN(k, ".", 3)
		if len(parts) >= 2 && parts[0] == "connections" {
			seen[parts[1]] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Format prints the component without its raw options (which may hold
// secrets): the decoded Spec when there is one (its secret.Secret fields
// mask themselves), else only the option names.
func (c Component) Format(f fmt.State, verb rune) {
	var spec any = c.Spec
	if spec == nil {
		spec = c.optionNames()
	}
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprintf(f, "config.Component{Type:%q, Spec:%#v}", c.Type, spec)
	case verb == 'v' && f.Flag('+'):
		fmt.Fprintf(f, "{Type:%s Spec:%+v}", c.Type, spec)
	default:
		fmt.Fprintf(f, "{%s %v}", c.Type, spec)
	}
}

// String is the %v form (see Format).
func (c Component) String() string { return fmt.Sprintf("%v", c) }

// MarshalJSON writes the type and the decoded Spec, never the raw options.
func (c Component) MarshalJSON() ([]byte, error) {
	out := map[string]any{"type": c.Type}
	if c.Spec != nil {
		out["spec"] = c.Spec
	} else if len(c.Options) > 0 {
		out["options"] = c.optionNames()
	}
	return json.Marshal(out)
}

func (c Component) optionNames() []string {
	names := make([]string, 0, len(c.Options))
	for k := range c.Options {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
