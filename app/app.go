// Package app wires dealsync's parts into runnable processes: the intake
// server (`dealsync serve`), the worker (`dealsync worker`) and the
// all-in-one development stack (`dealsync dev`), from one config.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	_ "github.com/dealsync/dealsync/connectors/all" // register every connector
	"github.com/dealsync/dealsync/intake"
	"github.com/dealsync/dealsync/internal/localcalls"
	"github.com/dealsync/dealsync/internal/refusal"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/metrics"
	"github.com/dealsync/dealsync/payloadcodec"
	"github.com/dealsync/dealsync/workflows"
)

// ReplicaName names this process: log.replica, or <pid>@<hostname>@, the
// Temporal SDK's default identity of a client. It is the replica
// attribute of every line of NewLogger's logger and the identity of
// ClientOptions' client, which the Web UI shows as the Identity of the
// events a worker or an intake caused (a workflow or activity task
// completed, a run started or signalled): the same string in both.
func ReplicaName(c config.Log) string {
	if c.Replica != "" {
		return c.Replica
	}
	host, err := os.Hostname()
	if err != nil {
		host = "Unknown" // as the SDK says
	}
	return fmt.Sprintf("%d@%s@", os.Getpid(), host)
}

// CommandIdentity is the Temporal client identity of a command that logs
// nothing and ends (`dealsync runs retry`, command its path): ReplicaName,
// then the command, `<pid>@<hostname>@dealsync runs retry` or
// `worker-eu-1@dealsync runs retry`. Run where a long-running process's
// log.replica is set (its container), the command would otherwise pass,
// in the Web UI, for that process, whose log says nothing of it.
func CommandIdentity(c config.Log, command string) string {
	name := ReplicaName(c)
	if !strings.HasSuffix(name, "@") {
		name += "@"
	}
	return name + command
}

// NewLogger builds the process logger from the config's log section;
// each of its lines names the process (replica=, ReplicaName).
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	return newHandlerLogger(c, w).With("replica", ReplicaName(c))
}

func newHandlerLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.Format, "json") {
		// A duration as the text handler writes it ("5s"), not as JSON's
		// integer nanoseconds (5000000000), which no reader of a log
		// takes for five seconds.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// usesTLS says whether the connection to t's frontend is TLS: any TLS
// setting, or an API key (sent only over TLS), with every setting given;
// tls.enabled may be left at false.
func usesTLS(t config.Temporal) bool {
	return t.TLS.Enabled || t.TLS.CAFile != "" || t.TLS.CertFile != "" || t.TLS.ServerName != "" || !t.APIKey.IsZero()
}

// quietActivityErrors is the SDK's logger with its "Activity error." line,
// which it writes at error for every failed attempt of a step run as an
// activity (external_calls: activity), at debug: each attempt has the
// worker's own line, `step attempt failed` at warn (or `step failed: the
// run ends` at error), naming the step, the connection, the deal and the
// error's type, as with local calls; at error, every retried blip of an
// ERP fired an alert meant for runs that fail.
//
// It also writes the SDK's "Workflow panic" line at debug, without its
// stack trace, when the panic is a connection guard's refusal of the run
// (refusal.Is: the worker lacks the run's connection and fails its
// workflow task so that another worker takes it), which the guard logs
// itself at warn, once per run: at error with a stack, every refusal read
// like a crash. A real panic stays at error, with its stack.
type quietActivityErrors struct{ sdklog.Logger }

func (l quietActivityErrors) Error(msg string, keyvals ...any) {
	switch {
	case msg == "Activity error." && stepFailure(keyvals):
		l.Logger.Debug(msg, keyvals...)
		return
	case msg == "Workflow panic" && guardRefusal(keyvals):
		l.Logger.Debug("workflow task refused: this worker lacks the run's connection", withoutStack(keyvals)...)
		return
	}
	l.Logger.Error(msg, keyvals...)
}

// guardRefusal says whether the SDK's keyvals of a "Workflow panic" line
// carry, as their RunID and Error, a connection guard's refusal of the run
// (refusal.Is).
func guardRefusal(keyvals []any) bool {
	var run string
	var err error
	for i := 0; i+1 < len(keyvals); i += 2 {
		switch k, _ := keyvals[i].(string); k {
		case "RunID":
			run, _ = keyvals[i+1].(string)
		case "Error":
			err, _ = keyvals[i+1].(error)
		}
	}
	return run != "" && refusal.Is(run, err)
}

// withoutStack is keyvals without their StackTrace.
func withoutStack(keyvals []any) []any {
	out := make([]any, 0, len(keyvals))
	for i := 0; i+1 < len(keyvals); i += 2 {
		if k, _ := keyvals[i].(string); k != "StackTrace" {
			out = append(out, keyvals[i], keyvals[i+1])
		}
	}
	return out
}

// stepFailure says whether the SDK's keyvals carry, as their Error, a
// step's own failure (an ApplicationError, which the worker logs itself);
// an input the activity could not decode, or a result it could not
// encode, never reached the step, and stays an error.
func stepFailure(keyvals []any) bool {
	for i := 0; i+1 < len(keyvals); i += 2 {
		if k, ok := keyvals[i].(string); ok && k == "Error" {
			err, ok := keyvals[i+1].(error)
			var appErr *temporal.ApplicationError
			return ok && errors.As(err, &appErr)
		}
	}
	return false
}

// Warn writes the SDK's "[TMPRL1104] … Workflow task duration exceeded 5
// seconds" at info, once per run, as dealsync's own line, when the task
// was held by the run's local calls (localcalls.HeldTask: a call failed,
// and its retries' back-offs run in the task, or took long), and at
// debug for the run's later tasks: with external_calls: local, every run
// whose ERP or CRM is down has such tasks, and each outage warned once
// per run. A long task without a local call of its run stays a warning
// (a slow worker, a huge history); a deadlock is the SDK's TMPRL1101
// panic, which this leaves alone.
func (l quietActivityErrors) Warn(msg string, keyvals ...any) {
	if strings.HasPrefix(msg, "[TMPRL1104]") {
		var run string
		var took time.Duration
		for i := 0; i+1 < len(keyvals); i += 2 {
			switch k, _ := keyvals[i].(string); k {
			case "RunID":
				run, _ = keyvals[i+1].(string)
			case "WorkflowTaskDuration":
				took, _ = keyvals[i+1].(time.Duration)
			}
		}
		if held, first := localcalls.HeldTask(run, took, time.Now()); held {
			if first {
				l.Logger.Info("workflow task held by its run's local calls being retried (workflow.external_calls: local): expected while an ERP or CRM call fails, "+
					"not a deadlock; each attempt has its step attempt failed line; the run's later long tasks are logged at debug", keyvals...)
			} else {
				l.Logger.Debug(msg, keyvals...)
			}
			return
		}
	}
	l.Logger.Warn(msg, keyvals...)
}

func (l quietActivityErrors) With(keyvals ...any) sdklog.Logger {
	return quietActivityErrors{sdklog.With(l.Logger, keyvals...)}
}

// ClientOptions are the Temporal client options of the config: address,
// namespace, TLS or mTLS, API key, compression; plus the interceptor the
// intake needs, and the SDK's metrics when metrics.listen is set.
func ClientOptions(cfg *config.Config, logger *slog.Logger) (client.Options, error) {
	c := cfg.Temporal
	opts := client.Options{
		HostPort:  c.Address,
		Namespace: c.Namespace,
		Identity:  ReplicaName(cfg.Log),
		Logger:    quietActivityErrors{sdklog.NewStructuredLogger(logger.With("component", "temporal-client"))},
		ConnectionOptions: client.ConnectionOptions{
			DialOptions: []grpc.DialOption{intake.StartProbeInterceptor()},
		},
	}
	if cfg.Metrics.Listen != "" {
		opts.MetricsHandler = metrics.TemporalSDK()
	}
	if c.Compression == "none" {
		opts.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	}
	if usesTLS(c) {
		tc := &tls.Config{ServerName: c.TLS.ServerName, MinVersion: tls.VersionTLS12}
		if c.TLS.CAFile != "" {
			pem, err := os.ReadFile(c.TLS.CAFile)
			if err != nil {
				return opts, fmt.Errorf("temporal.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return opts, errors.New("temporal.tls.ca_file: no PEM certificate found")
			}
			tc.RootCAs = pool
		}
		if c.TLS.CertFile != "" {
			// Loaded again when the files change (a rotated certificate),
			// for the next connection.
			certs, err := newCertReloader(c.TLS.CertFile, c.TLS.KeyFile)
			if err != nil {
				return opts, fmt.Errorf("temporal.tls.cert_file/key_file: %w", err)
			}
			tc.GetClientCertificate = certs.GetClientCertificate
		}
		opts.ConnectionOptions.TLS = tc
	}
	codec, err := PayloadCodec(cfg)
	if err != nil {
		return opts, err
	}
	if codec != nil {
		// On the connection, not in a data converter: the run list and
		// retry read histories and memos raw, and see them decoded too.
		opts.ConnectionOptions.DialOptions = append(opts.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(codec.Interceptor()))
	}
	if !c.APIKey.IsZero() {
		key, err := c.APIKey.Reveal()
		if err != nil {
			return opts, fmt.Errorf("temporal.api_key: %w", err)
		}
		// Read again every minute: a key rotated in its file is used
		// without a restart.
		opts.Credentials = client.NewAPIKeyDynamicCredentials(apiKeySource(c.APIKey, key))
	}
	return opts, nil
}

// PayloadCodec is the payload codec of temporal.encryption; nil when it
// is off (no keys).
func PayloadCodec(cfg *config.Config) (*payloadcodec.Codec, error) {
	e := cfg.Temporal.Encryption
	if !e.On() {
		return nil, nil
	}
	keys := make(map[string][]byte, len(e.Keys))
	for id, s := range e.Keys {
		v, err := s.Reveal()
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", payloadcodec.KeysSetting, id, err)
		}
		if keys[id], err = config.EncryptionKey(v); err != nil {
			return nil, fmt.Errorf("%s.%s: secret %s %v", payloadcodec.KeysSetting, id, s.Describe(), err)
		}
	}
	return payloadcodec.New(e.KeyID, keys)
}

// Starter is the intake's Temporal starter for the config.
func Starter(cfg *config.Config, c client.Client, eager bool) *intake.TemporalStarter {
	r := cfg.Workflow.Retry
	return &intake.TemporalStarter{
		Client:    c,
		TaskQueue: cfg.Temporal.TaskQueue,
		Retry: workflows.RetryPolicy{
			InitialInterval:    r.InitialInterval,
			BackoffCoefficient: r.BackoffCoefficient,
			MaximumInterval:    r.MaximumInterval,
			MaximumAttempts:    int32(r.MaximumAttempts),
		},
		ActivityTimeout: cfg.Workflow.ActivityTimeout,
		RunTimeout:      cfg.Workflow.RunTimeout,
		EagerStart:      eager,
		LocalCalls:      cfg.Workflow.ExternalCalls == "local",
		// Without the CLI's flags (TemporalCLIFlags): /readyz answers on
		// the webhooks' port, and would show the frontend's address and
		// TLS files to anyone.
		Check:     searchAttributeReadiness(c, cfg.Temporal.Namespace),
		Namespace: namespaceReadiness(c, cfg.Temporal.Namespace),
		Store:     intake.StoreProbe(c),
	}
}

// BuildConnections instantiates the config's connections.
func BuildConnections(cfg *config.Config, logger *slog.Logger) (*connections.Set, error) {
	for _, w := range EnvWarnings(cfg) {
		logger.Warn(w)
	}
	return connections.Build(cfg, connectors.Env{HTTPClient: connectorClient(cfg), Logger: logger})
}

// UnbuiltConnectionsError is a config whose connections cannot be built:
// it passed the config's checks, but a source or target refused what it
// was given (a base_url with the API's path, a private_key that is no
// PEM key). It is the config's to fix, so it reads as the config's
// errors do: "invalid configuration in FILE", the problems below.
type UnbuiltConnectionsError struct {
	// File is the config file ("" when there was none).
	File string
	Err  error
}

func (e *UnbuiltConnectionsError) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration")
	if e.File != "" {
		fmt.Fprintf(&b, " in %s", e.File)
	}
	b.WriteString(" (a source or target cannot be built from it):")
	for _, line := range strings.Split(e.Err.Error(), "\n") {
		b.WriteString("\n  ")
		b.WriteString(line)
	}
	return b.String()
}

func (e *UnbuiltConnectionsError) Unwrap() error { return e.Err }

// BuildConnectionsOf is BuildConnections of the config read from file,
// whose error (an *UnbuiltConnectionsError) names it.
func BuildConnectionsOf(cfg *config.Config, file string, logger *slog.Logger) (*connections.Set, error) {
	set, err := BuildConnections(cfg, logger)
	if err != nil {
		return nil, &UnbuiltConnectionsError{File: file, Err: err}
	}
	return set, nil
}

// connectorClient is the HTTP client of the connectors' calls.
func connectorClient(cfg *config.Config) *http.Client {
	// Keep connections to each ERP/CRM host alive across concurrent runs:
	// the default of 2 idle connections per host makes a busy worker open
	// (and close) a TCP connection for most calls.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = 256
	transport.MaxIdleConnsPerHost = 64
	// The client's own timeout is a backstop for calls without a deadline
	// (a step's calls end with the step): never shorter than a step, or a
	// call the activity_timeout allows would be cut and retried for ever.
	return &http.Client{Timeout: max(60*time.Second, cfg.Workflow.ActivityTimeout), Transport: transport}
}

// Activities returns the activities bound to a connection set, reading
// earlier runs with the worker's Temporal client.
func Activities(set *connections.Set, runs activities.RunReader) *activities.Activities {
	return &activities.Activities{Connections: set, Runs: runs}
}

// AbsConfigPath is path, the config file a worker was started with,
// made absolute (its working directory may not be the reader's of the
// messages that name it); "" stays "".
func AbsConfigPath(path string) string {
	if path == "" {
		return ""
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// Warnings are what may keep a valid connection from invoicing: its CRM
// signs the URL it calls (HubSpot) and intake.public_base_url, which says
// that URL, is not set; its won stages miss the stage its source reports
// won deals as; its source's own (connectors.ConfigWarner: a short secret);
// a target that looks invoices up by reference with a mapping whose
// reference does not read deal.id (referenceWarnings); a target that
// numbers its own invoices in the reference's field with a mapping whose
// reference is the bare deal id (numberedReferenceWarnings). The
// warnings of its mapping file are not among them: MappingWarnings gives
// them once for all the connections that use the mapping.
func Warnings(cfg *config.Config, c *connections.Connection) []string {
	var out []string
	if c.SourceType == "hubspot" && cfg.Intake.PublicBaseURL == "" {
		out = append(out, "HubSpot signs the URL it calls, and intake.public_base_url is not set: behind a proxy or a load balancer its signatures will not match (every delivery refused with 401)")
	}
	if w := c.WonStageWarning(); w != "" {
		out = append(out, w)
	}
	if cw, ok := c.Source.(connectors.ConfigWarner); ok {
		out = append(out, cw.ConfigWarnings()...)
	}
	out = append(out, referenceWarnings(cfg, c)...)
	out = append(out, unsaidLookupWarnings(cfg, c)...)
	out = append(out, numberedReferenceWarnings(cfg, c)...)
	out = append(out, ThinTriggerWarnings(c)...)
	out = append(out, rawFieldWarnings(c)...)
	out = append(out, companyFieldWarnings(c)...)
	return append(out, grossLineWarnings(cfg, c)...)
}

// MappingWarning is a warning of a mapping file (mapping.File.Warnings: a
// time_zone that reads otherwise than it counts, a tax rate written as a
// fraction), with its place in the file and the connections that use
// the mapping.
type MappingWarning struct {
	Mapping     string
	Connections []string
	Warning     mapping.Problem
}

func (w MappingWarning) String() string {
	used := "connection "
	if len(w.Connections) > 1 {
		used = "connections "
	}
	return fmt.Sprintf("mapping %q (%s%s): %s", w.Mapping, used, strings.Join(w.Connections, ", "), w.Warning.String())
}

// MappingWarnings are the warnings of the mapping files of set's
// connections, each once, however many connections use its mapping
// (they are named): config check and the start print them.
func MappingWarnings(set *connections.Set) []MappingWarning {
	type warner interface {
		mapping.Mapper
		Warnings() []mapping.Problem
	}
	users := map[string][]string{}
	files := map[string]warner{}
	var names []string
	for _, name := range set.Names() {
		c, ok := set.Get(name)
		if !ok {
			continue
		}
		f, ok := c.Mapper.(warner)
		if !ok {
			continue
		}
		// One file per mapping name in a set; its hash tells two apart
		// all the same.
		k := f.Name() + "\x00" + f.Hash()
		if _, seen := files[k]; !seen {
			files[k] = f
			names = append(names, k)
		}
		users[k] = append(users[k], name)
	}
	slices.Sort(names)
	var out []MappingWarning
	for _, k := range names {
		for _, w := range files[k].Warnings() {
			out = append(out, MappingWarning{Mapping: files[k].Name(), Connections: users[k], Warning: w})
		}
	}
	return out
}

// rawFieldWarnings name each key of deal.raw the connection's mapping file
// reads by a literal that its source does not read (connectors.RawFielder:
// a Salesforce or HubSpot fetch selects its fields, Pipedrive's keeps a
// few ids and its custom fields): such a key is "" for every deal,
// which a mapping cannot tell from an empty field, so a lookup of it fails
// each run with an unhelpful "no entry for \"\"", or a memo silently
// loses it.
func rawFieldWarnings(c *connections.Connection) []string {
	f, ok := c.Mapper.(*mapping.File)
	if !ok {
		return nil
	}
	rf, ok := c.Source.(connectors.RawFielder)
	if !ok {
		return nil
	}
	set := rf.RawFields()
	var out []string
	for _, key := range f.RawKeysRead() {
		if slices.Contains(set.Exact, key) || slices.ContainsFunc(set.AnyCase, func(h string) bool { return strings.EqualFold(h, key) }) {
			continue
		}
		msg := fmt.Sprintf("connection %s: mapping %q reads deal.raw[%q], which its %s source does not read: it is \"\" for every deal; ",
			c.Name, f.Name(), key, c.SourceType)
		if set.Setting != "" {
			msg += fmt.Sprintf("add %s to connections.%s.source.%s", key, c.Name, set.Setting)
		} else {
			msg += "its deal.raw has " + strings.Join(set.Exact, ", ") + " only"
		}
		if set.Advice != "" {
			msg += " (" + set.Advice + ")"
		}
		out = append(out, msg)
	}
	return out
}

// companyFieldWarnings name each field of deal.company the connection's
// mapping (a file, or the built-in one, which copies the company's email
// and tax id) reads that its source leaves empty for want of a setting
// (connectors.CompanyFielder: HubSpot, Salesforce and Pipedrive have no
// standard company email or tax id): it is "" for every deal, and an
// invoice goes out without the customer's tax id, silently.
func companyFieldWarnings(c *connections.Connection) []string {
	f, ok := c.Mapper.(interface {
		mapping.Mapper
		InvoiceDealReads() []string
	})
	if !ok {
		return nil
	}
	which := fmt.Sprintf("mapping %q", f.Name())
	if _, builtin := f.(mapping.Default); builtin {
		which = `the built-in mapping (mapping: "")`
	}
	cf, ok := c.Source.(connectors.CompanyFielder)
	if !ok {
		return nil
	}
	unset := cf.UnsetCompanyFields()
	// A read by the default expression of a field the file does not
	// write (customer.email's) is not in the file: the warning says
	// where it comes from.
	var defaults map[string][]string
	if d, ok := f.(interface{ DefaultDealReads() map[string][]string }); ok {
		defaults = d.DefaultDealReads()
	}
	var out []string
	for _, path := range f.InvoiceDealReads() {
		field, ok := strings.CutPrefix(path, "deal.company.")
		if setting, unread := unset[field]; ok && unread {
			read := path
			if keys := defaults[path]; len(keys) > 0 {
				read += fmt.Sprintf(" (in the default expression of %s, which the mapping does not write)", strings.Join(keys, " and "))
			}
			out = append(out, fmt.Sprintf("connection %s: %s reads %s, which its %s source leaves empty: it is \"\" for every deal; set connections.%s.source.%s to the field the CRM keeps it in",
				c.Name, which, read, c.SourceType, c.Name, setting))
		}
	}
	return out
}

// grossLineWarnings name each target of the connection that takes line
// amounts as tax-inclusive (connectors.GrossLineAmounts) while its source
// gives lines net of tax (connectors.NetOfTaxLines): every taxed line is
// then billed short by its tax, and the totals agree, so nothing else says
// so.
func grossLineWarnings(cfg *config.Config, c *connections.Connection) []string {
	if n, ok := c.Source.(connectors.NetOfTaxLines); !ok || !n.LinesNetOfTax() {
		return nil
	}
	var out []string
	for _, t := range connectionTargets(cfg, c) {
		g, ok := t.target.(connectors.GrossLineAmounts)
		if !ok {
			continue
		}
		if on, setting := g.LineAmountsIncludeTax(); on {
			out = append(out, fmt.Sprintf("connection %s: %s takes line amounts as including their tax (%s), and its %s source gives lines net of tax (a product priced inclusive of tax is read net of it): "+
				"every taxed line would be billed short by its tax, with totals that agree; use the target's default (Exclusive), unless the CRM's prices are gross and carry no tax of their own",
				c.Name, t.which, setting, c.SourceType))
		}
	}
	return out
}

// referenceWarnings name each target of the connection (its target and
// those of its account_targets) that looks for an existing invoice by the
// invoice's reference before creating one (connectors.InvoiceReferenceLookup)
// while the connection's mapping sets invoice.reference to an expression
// that does not read deal.id: a reference that is not unique per deal
// (the company's name, a PO number shared by a customer's deals) makes a
// second deal take the first deal's invoice, silently. The built-in
// reference is deal.id; an unmapped one is never looked up.
func referenceWarnings(cfg *config.Config, c *connections.Connection) []string {
	f, ok := c.Mapper.(*mapping.File)
	if !ok {
		return nil
	}
	ref := f.ReferenceExpression()
	if ref == "" || f.ReferenceReadsDealID() {
		return nil
	}
	var out []string
	for _, t := range connectionTargets(cfg, c) {
		l, ok := t.target.(connectors.InvoiceReferenceLookup)
		if !ok {
			continue
		}
		on, setting := l.LooksUpInvoicesByReference()
		if !on {
			continue
		}
		out = append(out, fmt.Sprintf("connection %s: %s looks for an existing invoice by its reference before creating one (%s), and mapping %q sets invoice.reference to `%s`, which does not read deal.id: "+
			"a second deal with the same reference and customer is taken for a re-run of the first, its run completes as replayed with the first deal's invoice, and it gets no invoice of its own; "+
			"make the reference unique per deal (include deal.id, e.g. `\"DS-\" + deal.id`), or set %s: false on target %s, accepting that a re-run after the ERP has forgotten the idempotency key may then create a second invoice",
			c.Name, t.which, setting, f.Name(), ref, setting, t.name))
	}
	return out
}

// unsaidLookupWarnings name each http target of the connection whose
// config does not say lookup_invoices, either way: it is off by default,
// so that a deal's invoice is made once rests on the API keeping the
// Idempotency-Key and answering a key sent again with the first answer.
// An API that ignores the key makes a second invoice when an invoice POST
// got no answer (a timeout, a worker killed mid-call) and the step sends
// it again. Saying either value is the answer: true for an API that lists
// invoices by reference, false for one that keeps its keys. The built-in
// sandbox of dealsync dev keeps them.
func unsaidLookupWarnings(cfg *config.Config, c *connections.Connection) []string {
	var out []string
	for _, t := range connectionTargets(cfg, c) {
		tc, ok := cfg.Targets[t.name]
		if !ok || tc.Type != "http" || cfg.IsDevDefault("targets", t.name) {
			continue
		}
		if cfg.Given("targets." + t.name + ".lookup_invoices") {
			continue
		}
		out = append(out, fmt.Sprintf("connection %s: %s (http) does not say lookup_invoices, which is off, so that each deal gets one invoice rests on the API keeping the Idempotency-Key: "+
			"an API that ignores it makes a second invoice when an invoice POST gets no answer (a timeout, a worker stopped mid-call) and the step sends it again; "+
			"set lookup_invoices: true on target %s if the API lists invoices by reference (GET invoices_path?reference=…), or lookup_invoices: false if it keeps its keys and replays the first answer",
			c.Name, t.which, t.name))
	}
	return out
}

// numberedReferenceWarnings name each target of the connection whose ERP
// numbers its own invoices in the reference's field
// (connectors.SelfNumberedReference) while the connection's mapping makes
// the reference the bare deal id (the built-in mapping does): a deal whose
// id is one of the ERP's own numbers gets its invoice refused.
func numberedReferenceWarnings(cfg *config.Config, c *connections.Connection) []string {
	// Salesforce's ids (18 letters and digits) are never one of the ERP's
	// numbers.
	if !mapping.ReferenceIsDealID(c.Mapper) || c.SourceType == "salesforce" {
		return nil
	}
	var out []string
	for _, t := range connectionTargets(cfg, c) {
		n, ok := t.target.(connectors.SelfNumberedReference)
		if !ok {
			continue
		}
		field := n.ReferenceNumberField()
		out = append(out, fmt.Sprintf("connection %s: %s keeps invoice.reference in %s, which the ERP numbers its own invoices in (1001, 1002, …), and mapping %q makes the reference the bare deal id: "+
			"a deal whose id is a number the ERP has used has its invoice refused as a duplicate %s; map invoice.reference to a value the ERP's numbers cannot take, e.g. `\"DS-\" + deal.id`",
			c.Name, t.which, field, c.Mapper.Name(), field))
	}
	return out
}

// connectionTarget is one of the ERP targets a connection invoices.
type connectionTarget struct {
	name   string
	target connectors.Target
	// which says it in a warning: "target NAME", with the accounts that
	// account_targets route to it.
	which string
}

// connectionTargets are the targets of the connection: its own, then
// those of its account_targets, each once.
func connectionTargets(cfg *config.Config, c *connections.Connection) []connectionTarget {
	var names []string                // targets in the order found
	accounts := map[string][]string{} // target → the accounts routed to it by account_targets
	targets := map[string]connectors.Target{}
	add := func(name, account string, t connectors.Target) {
		if _, seen := targets[name]; !seen {
			names = append(names, name)
			targets[name] = t
		}
		if account != "" {
			accounts[name] = append(accounts[name], account)
		}
	}
	add(c.TargetName, "", c.Target)
	if cc, ok := cfg.Connections[c.Name]; ok {
		for _, account := range slices.Sorted(maps.Keys(cc.AccountTargets)) {
			key, err := c.AccountKey(account)
			if t, routed := c.AccountTargets[key]; err == nil && routed {
				add(cc.AccountTargets[account], account, t.Target)
			}
		}
	}
	out := make([]connectionTarget, 0, len(names))
	for _, name := range names {
		which := fmt.Sprintf("target %s", name)
		if a := accounts[name]; len(a) > 0 && name == c.TargetName {
			which += fmt.Sprintf(" (and account_targets %s)", strings.Join(a, ", "))
		} else if len(a) > 0 {
			which += fmt.Sprintf(" (account_targets %s)", strings.Join(a, ", "))
		}
		out = append(out, connectionTarget{name: name, target: targets[name], which: which})
	}
	return out
}

// EnvWarnings say which DEALSYNC_* environment variables set nothing
// (config.Config.IgnoredEnv), that the config defines no connection,
// which of its timings work against each other
// (config.Config.TimingWarnings), which files it writes are in a
// directory this process cannot write (config.Config.UnwritableFileWarnings),
// which two connections list one CRM account and invoice it into one
// target (config.Config.SharedAccountWarnings), and which files it gives
// by a path relative to the working directory
// (config.Config.RelativePathWarnings).
func EnvWarnings(cfg *config.Config) []string {
	var out []string
	out = append(out, cfg.IgnoredEnvWarnings()...)
	if len(cfg.Connections) == 0 {
		// An empty file, or a config map not mounted: serve and worker
		// started, ready, and did nothing.
		out = append(out, "the config defines no connection: the intake answers 404 to every webhook and the worker has nothing to run (an empty config file, or one not mounted?)")
	}
	out = append(out, cfg.TimingWarnings()...)
	out = append(out, cfg.UnwritableFileWarnings()...)
	out = append(out, cfg.SharedAccountWarnings()...)
	return append(out, cfg.RelativePathWarnings()...)
}

// SharedWarning is a warning of one or more connections.
type SharedWarning struct {
	Connections []string
	Msg         string
}

// GroupWarnings joins the warnings of the connections (their names in
// order, each with its Warnings) that say the same thing of several into
// one, naming them all: "connection shop: target erp (http) does not say
// …" and the same of shop2 become "connections shop, shop2: target erp
// (http) does not say …". A warning of one connection stays as it is.
// The warnings keep the order in which each first appears.
func GroupWarnings(names []string, warnings map[string][]string) []SharedWarning {
	var out []SharedWarning
	at := map[string]int{}
	prefixed := map[string]bool{}
	for _, name := range names {
		for _, w := range warnings[name] {
			rest, ok := strings.CutPrefix(w, "connection "+name+": ")
			key := fmt.Sprintf("%t\x00%s", ok, rest)
			if i, seen := at[key]; seen {
				if !slices.Contains(out[i].Connections, name) {
					out[i].Connections = append(out[i].Connections, name)
				}
				continue
			}
			at[key] = len(out)
			prefixed[key] = ok
			out = append(out, SharedWarning{Connections: []string{name}, Msg: w})
		}
	}
	for key, i := range at {
		if len(out[i].Connections) > 1 && prefixed[key] {
			_, rest, _ := strings.Cut(key, "\x00")
			out[i].Msg = "connections " + strings.Join(out[i].Connections, ", ") + ": " + rest
		}
	}
	return out
}

// logWarnings logs the Warnings of the set's connections, one line for a
// warning several share (GroupWarnings), with the connection ("connection"),
// or the connections, comma-separated ("connections").
func logWarnings(cfg *config.Config, set *connections.Set, logger *slog.Logger) {
	names := set.Names()
	warnings := map[string][]string{}
	for _, name := range names {
		if c, ok := set.Get(name); ok {
			warnings[name] = Warnings(cfg, c)
		}
	}
	for _, w := range GroupWarnings(names, warnings) {
		if len(w.Connections) == 1 {
			logger.Warn(w.Msg, "connection", w.Connections[0])
		} else {
			logger.Warn(w.Msg, "connections", strings.Join(w.Connections, ","))
		}
	}
}

// IntakeHandler is the HTTP intake for the config. It logs the Warnings
// of each connection, a warning several share once (logWarnings), and
// the MappingWarnings, each once.
func IntakeHandler(cfg *config.Config, set *connections.Set, starter intake.Starter, logger *slog.Logger) *intake.Handler {
	logWarnings(cfg, set, logger)
	for _, w := range MappingWarnings(set) {
		logger.Warn(w.String(), "mapping", w.Mapping, "connections", strings.Join(w.Connections, ","))
	}
	if ts, ok := starter.(*intake.TemporalStarter); ok && ts.Logger == nil {
		ts.Logger = logger.With("component", "intake")
	}
	return intake.New(intake.Options{
		Connections:      set,
		Starter:          starter,
		Logger:           logger.With("component", "intake"),
		MaxBodyBytes:     cfg.Intake.MaxBodyBytes,
		MaxInFlightBytes: cfg.Intake.MaxInFlightBytes,
		PublicBaseURL:    cfg.Intake.PublicBaseURL,
		StartTimeout:     cfg.Intake.StartTimeout,
	})
}

// CodecPath is where the codec endpoint of the Temporal Web UI is served
// (temporal.encryption.codec_endpoint): POST /codec/decode, /codec/encode.
const CodecPath = "/codec"

// ServeMetrics serves GET /metrics on cfg's metrics.listen until ctx ends,
// a worker's health checks when health is not nil, and the Web UI's codec
// endpoint at CodecPath with temporal.encryption.codec_endpoint; without
// metrics.listen it does nothing. It returns once listening, with the address
// (for logs and banners).
func ServeMetrics(ctx context.Context, cfg *config.Config, logger *slog.Logger, health *WorkerHealth) (string, error) {
	if cfg.Metrics.Listen == "" {
		return "", nil
	}
	l, err := ListenOn("metrics", "metrics.listen", cfg.Metrics.Listen)
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler())
	if health != nil {
		health.mount(mux)
	}
	if e := cfg.Temporal.Encryption; e.CodecEndpoint {
		codec, err := PayloadCodec(cfg)
		if err != nil {
			l.Close()
			return "", err
		}
		mux.Handle(CodecPath+"/", codec.Handler(CodecPath, e.CodecOrigins))
		logger.Info("serving the Web UI's payload codec endpoint (temporal.encryption.codec_endpoint): it decrypts for whoever reaches metrics.listen",
			"url", "http://"+config.DialAddr(l.Addr().String())+CodecPath, "origins", e.CodecOrigins)
	}
	go func() {
		if err := Serve(ctx, l, mux); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "error", err)
		}
	}()
	return l.Addr().String(), nil
}

// Timeouts of the servers Serve runs. A request must arrive whole within
// readTimeout: webhook bodies are read before their signature can be
// checked, so a client trickling one in would otherwise hold its
// connection, goroutine and buffer for as long as it likes.
var (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// Serve runs an HTTP server on l until ctx ends, then drains it.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	return serve(ctx, l, h, nil, 10*time.Second)
}

// ReadinessInterval is how often an intake (ServeIntake) and a worker
// (WorkerHealth.Watch) check the Temporal frontend on their own, so that
// its outages are logged when they start and end whether or not anything
// probes /readyz; a probe's check stands for one of these.
// At or below 0 it is taken as defaultReadinessInterval (readinessInterval).
var ReadinessInterval = defaultReadinessInterval

const defaultReadinessInterval = 5 * time.Second

// readinessInterval is ReadinessInterval, or its default when it is at or
// below 0 (Watch would check without pause).
func readinessInterval() time.Duration {
	if ReadinessInterval <= 0 {
		return defaultReadinessInterval
	}
	return ReadinessInterval
}

// ServeIntake serves the webhook intake on l until ctx ends, watching its
// readiness meanwhile (intake.Handler.Watch, every ReadinessInterval),
// then stops the way a replica behind a load balancer should: GET /readyz
// fails at once while webhooks are still taken for drainDelay (the
// balancer's time to notice and send no more), then the listener closes
// and the webhooks in hand get as long as one may take to finish. Any cut
// off anyway was not acknowledged, so its CRM delivers it again.
func ServeIntake(ctx context.Context, l net.Listener, h *intake.Handler, drainDelay time.Duration, logger *slog.Logger) error {
	return serveIntake(ctx, l, h, drainDelay, h.MaxHandlerTime()+shutdownMargin, logger)
}

// serveIntake is ServeIntake waiting at most closeWait for the webhooks
// in hand once it closes.
func serveIntake(ctx context.Context, l net.Listener, h *intake.Handler, drainDelay, closeWait time.Duration, logger *slog.Logger) error {
	go h.Watch(ctx, readinessInterval())
	err := serve(ctx, l, h, func() {
		h.Drain()
		if drainDelay > 0 {
			logger.Info("intake draining: /readyz fails, webhooks are still taken", "for", drainDelay)
			drainSleep(drainDelay)
		}
		logger.Info("intake closing: no new webhooks; waiting for those in hand", "for_at_most", closeWait)
	}, closeWait)
	if err == nil {
		logger.Info("intake stopped")
	}
	return err
}

// drainSleep waits out the drain delay (tests hold it).
var drainSleep = time.Sleep

// shutdownMargin is what a stopping server adds to the longest request it
// waits for (writing the answer, a slow client).
const shutdownMargin = 5 * time.Second

func serve(ctx context.Context, l net.Listener, h http.Handler, beforeShutdown func(), shutdownTimeout time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, IdleTimeout: idleTimeout}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		if beforeShutdown != nil {
			beforeShutdown()
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}
