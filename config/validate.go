package config

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode"

	"github.com/go-playground/validator/v10"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/secret"
)

// connectionName is what a connection may be called: it appears in webhook
// URLs and workflow IDs.
var connectionName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

var hostnameRE = regexp.MustCompile(`^([a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)*\.?$`)

// validate is shared by the config structs and the connectors' specs.
var validate = newValidator()

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _ := tagName(f)
		if name == "-" {
			return ""
		}
		return name
	})
	// hostport: host:port with a port in 1..65535 and a host that is
	// empty (all interfaces), an IP or a DNS name (underscores allowed, as
	// in container service names).
	if err := v.RegisterValidation("hostport", func(fl validator.FieldLevel) bool {
		return validHostPort(fl.Field().String())
	}); err != nil {
		panic(err)
	}
	// host: a DNS name or an IP address (an IPv6 one in brackets or not),
	// without a port or a scheme.
	if err := v.RegisterValidation("host", func(fl validator.FieldLevel) bool {
		h := fl.Field().String()
		return net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")) != nil || hostnameRE.MatchString(h)
	}); err != nil {
		panic(err)
	}
	// grpctarget: a hostport, or one behind a gRPC resolver scheme, as the
	// Temporal SDK dials it (dns:///frontend:7233 resolves every address of
	// the name and balances over them; passthrough:///host:port).
	if err := v.RegisterValidation("grpctarget", func(fl validator.FieldLevel) bool {
		addr := fl.Field().String()
		for _, scheme := range []string{"dns:", "passthrough:"} {
			if rest, ok := strings.CutPrefix(addr, scheme+"//"); ok {
				_, addr, ok = strings.Cut(rest, "/") // an authority (a DNS server) may come first
				if !ok {
					return false
				}
				break
			}
		}
		return validHostPort(addr)
	}); err != nil {
		panic(err)
	}
	// sqlident: a column name that can be put in a query as is (letters,
	// digits and underscores, starting with a letter), such as NetSuite's
	// custom fields custentity_vat_no.
	if err := v.RegisterValidation("sqlident", func(fl validator.FieldLevel) bool {
		return sqlIdent.MatchString(fl.Field().String())
	}); err != nil {
		panic(err)
	}
	// pipedrive_field_key: a custom field's API key as Pipedrive gives it, 40 hex
	// digits (a field's name, which engineers write instead, is refused
	// by every write-back).
	if err := v.RegisterValidation("pipedrive_field_key", func(fl validator.FieldLevel) bool {
		return fieldKey.MatchString(fl.Field().String())
	}); err != nil {
		panic(err)
	}
	// https_or_loopback: an https:// URL, or an http:// one to this
	// machine's loopback (localhost, 127.0.0.0/8, ::1): for a URL that
	// is sent what must not cross a network in clear (a signed invoice).
	// Whether it is a URL at all is the url tag's.
	if err := v.RegisterValidation("https_or_loopback", func(fl validator.FieldLevel) bool {
		u, err := url.Parse(fl.Field().String())
		if err != nil {
			return true // the url tag says so
		}
		switch strings.ToLower(u.Scheme) {
		case "https":
			return true
		case "http":
			return IsLoopback(u.Hostname())
		}
		return false
	}); err != nil {
		panic(err)
	}
	return v
}

var (
	sqlIdent = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	fieldKey = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)
)

// build decodes the merged settings and checks everything, collecting
// every problem. The mapping files are compiled unless o.noMappings (see
// WithoutMappings); the secrets are resolved unless o.noSecrets (see
// WithoutSecrets).
func build(settings map[string]any, file string, o options, skip func(key string) bool) (*Config, error) {
	ps := &problems{}
	cfg := &Config{}

	checkKeys(settings, reflect.TypeOf(cfg), "", ps)
	// The file as written (the settings have lost its text), read once.
	doc := readYAML(file)
	if doc != nil {
		hintExtensionKeys(doc, ps)
		checkNameCase(doc, ps)
		checkKeyCase(doc, ps)
		walkNumbers(doc, ps)
		walkKeylessFlowMaps(doc, ps)
	}
	// The named entries are decoded one by one, and kept even when partly
	// wrong, so that the checks below still see (and report on) them.
	top := make(map[string]any, len(settings))
	for k, v := range settings {
		if k != "targets" && k != "connections" {
			top[k] = v
		}
	}
	decode(top, cfg, "", ps)
	cfg.Targets = decodeEntries[Component](settings["targets"], "targets", ps)
	cfg.Connections = decodeEntries[Connection](settings["connections"], "connections", ps)
	lowerTargetRefs(cfg)
	// Read in any case, as the logger reads them (LOG_LEVEL=DEBUG).
	cfg.Log.Level, cfg.Log.Format = strings.ToLower(strings.TrimSpace(cfg.Log.Level)), strings.ToLower(strings.TrimSpace(cfg.Log.Format))
	// A blank around a name is never part of it (a namespace of "  " is
	// none, and then required).
	cfg.Temporal.Namespace, cfg.Temporal.TaskQueue = strings.TrimSpace(cfg.Temporal.Namespace), strings.TrimSpace(cfg.Temporal.TaskQueue)
	validateStruct(cfg, "", ps)
	crossCheck(cfg, ps)

	for name, t := range cfg.Targets {
		t.Spec = component(t, "target", "targets."+name, ps)
		cfg.Targets[name] = t
	}
	for name, c := range cfg.Connections {
		c.Source.Spec = component(c.Source, "source", "connections."+name+".source", ps)
		cfg.Connections[name] = c
	}
	loadMappings(cfg, file, ps, !o.noMappings)
	checkSharedIDs(cfg, ps)
	checkSharedGrants(cfg, ps)
	checkPublicBaseURL(cfg, ps)
	checkMetricsListen(cfg, ps)
	checkEncryption(cfg, ps)

	var unresolved []Problem
	walkSecrets(reflect.ValueOf(cfg), "", func(key string, s secret.Secret) {
		if s.IsZero() || ps.isFailed(key) || (skip != nil && skip(key)) {
			return
		}
		if err := s.Check(); err != nil {
			p := Problem{Key: key, Message: fmt.Sprintf("secret %s cannot be resolved: %v", s.Describe(), err)}
			if o.noSecrets {
				unresolved = append(unresolved, p)
			} else {
				ps.add(p.Key, p.Message)
			}
		}
	})

	checkEncryptionKeys(cfg, ps, skip)

	var uses map[string][]string // of a key of an anchored block: the keys it is used at
	if doc != nil {
		scalarLists(doc, ps)
		uses = anchoredProblems(doc, ps)
		// A key with a dot, named whole, after anchoredProblems, which
		// traces keys by their dots; its pieces' problems are dropped.
		for _, piece := range checkDottedKeys(doc, ps) {
			ps.list = slices.DeleteFunc(ps.list, func(p Problem) bool {
				return p.Key == piece || strings.HasPrefix(p.Key, piece+".") || strings.HasPrefix(p.Key, piece+"[")
			})
		}
	}

	var skipped []Problem
	if skip != nil {
		skipProblem := func(p Problem) bool {
			if at, ok := uses[p.Key]; ok {
				return !slices.ContainsFunc(at, func(k string) bool { return !skip(k) })
			}
			return skip(p.Key)
		}
		ps.list = slices.DeleteFunc(ps.list, func(p Problem) bool {
			if skipProblem(p) {
				skipped = append(skipped, p)
				return true
			}
			return false
		})
	}
	if len(ps.list) > 0 {
		sortProblems(ps.list)
		return nil, &Error{File: file, Problems: ps.list}
	}
	sortProblems(skipped)
	cfg.skipped = skipped
	sortProblems(unresolved)
	cfg.unresolved = unresolved
	return cfg, nil
}

// decodeEntries decodes a mapping of names to T entry by entry.
func decodeEntries[T any](raw any, key string, ps *problems) map[string]T {
	if raw == nil {
		return nil
	}
	m, ok := asMap(raw)
	if !ok {
		ps.addFailed(key, "must be a mapping of names to entries")
		return nil
	}
	out := make(map[string]T, len(m))
	for name, v := range m {
		var e T
		decode(v, &e, key+"."+name, ps)
		out[name] = e
	}
	return out
}

// validateStruct runs the validator on s (a pointer to a struct) and
// reports each failure at prefix + its key path, except for keys that
// already failed to decode.
func validateStruct(s any, prefix string, ps *problems) {
	err := validate.Struct(s)
	if err == nil {
		return
	}
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) {
		ps.add(prefix, err.Error())
		return
	}
	t := reflect.TypeOf(s)
	for _, fe := range ves {
		ns := fe.Namespace()
		// Drop the root struct's type name: "Config.intake.listen".
		if i := strings.IndexAny(ns, ".["); i >= 0 {
			ns = strings.TrimPrefix(ns[i:], ".")
		} else {
			ns = ""
		}
		key := joinKey(prefix, keyPath(t, ns))
		if ps.isFailed(key) {
			continue
		}
		if strings.HasPrefix(fe.Tag(), "required") || fe.Tag() == "min" {
			// A key under it that failed to decode left it empty or
			// without a field: that key's problem is the one to mend
			// ("accounts: must have at least 1 entry" beside a secret
			// written as a list in one of its accounts).
			if ps.failedUnder(key) {
				continue
			}
		}
		msg := fieldMessage(fe)
		if fe.Tag() == "oneof" && optionalField(t, ns) {
			msg += ", or unset"
		}
		ps.add(key, msg)
	}
}

// optionalField reports whether the field at ns (a validator namespace
// below t, in config keys) may be left unset (validate:"omitempty,…"),
// so that a message listing its values says so too.
func optionalField(t reflect.Type, ns string) bool {
	var f reflect.StructField
	found := false
	for _, tok := range strings.FieldsFunc(ns, func(r rune) bool { return r == '.' || r == '[' || r == ']' }) {
		t = deref(t)
		switch t.Kind() {
		case reflect.Struct:
			sf, ok := fieldByKey(t, tok)
			if !ok {
				return false
			}
			f, found, t = sf, true, sf.Type
		case reflect.Slice, reflect.Array, reflect.Map:
			// An element's own rules (dive) are not the field's.
			t, found = t.Elem(), false
		default:
			return false
		}
	}
	return found && strings.HasPrefix(f.Tag.Get("validate"), "omitempty")
}

// fieldMessage words a validator failure. It never includes the value.
func fieldMessage(fe validator.FieldError) string {
	p := fe.Param()
	k := fe.Kind()
	size := func(cmp string) string {
		switch k {
		case reflect.String:
			if p == "1" {
				return fmt.Sprintf("must be %s 1 character long", cmp)
			}
			return fmt.Sprintf("must be %s %s characters long", cmp, p)
		case reflect.Slice, reflect.Array, reflect.Map:
			if p == "1" {
				return fmt.Sprintf("must have %s 1 entry", cmp)
			}
			return fmt.Sprintf("must have %s %s entries", cmp, p)
		}
		return fmt.Sprintf("must be %s %s", cmp, p)
	}
	switch fe.Tag() {
	case "required":
		return "is required"
	case "required_with":
		return "is required when " + snakeCase(p) + " is set"
	case "oneof":
		return "must be one of: " + strings.Join(strings.Fields(p), ", ")
	case "min", "gte":
		return size("at least")
	case "max", "lte":
		return size("at most")
	case "gt":
		return size("more than")
	case "lt":
		return size("less than")
	case "len":
		return size("exactly")
	case "hostport":
		return "must be host:port (e.g. 127.0.0.1:8080)"
	case "host":
		return "must be a host name or an IP address, without a port or a scheme (e.g. mylaptop.local)"
	case "grpctarget":
		return "must be host:port (e.g. temporal:7233), or one behind dns:/// or passthrough:///"
	case "number":
		return "must be digits (a record's or a company's id)"
	case "uuid":
		return "must be a UUID (8-4-4-4-12 hex digits), such as the id the vendor's API gives, not a name"
	case "pipedrive_field_key":
		return "must be a custom field's API key, 40 hex digits (Company settings → Data fields → the field → API key, or the field's field_code in GET /api/v2/dealFields), not its name"
	case "sqlident":
		return "must be a column name: letters, digits and underscores, starting with a letter (e.g. custentity_vat_no)"
	case "https_or_loopback":
		return "must be an https:// URL, or http:// to this machine's loopback only (localhost, 127.0.0.1, ::1): what is sent there would cross the network in clear"
	case "http_url":
		return "must be an absolute http:// or https:// URL"
	case "url":
		return "must be an absolute URL"
	case "file":
		if v, ok := fe.Value().(string); ok && v != "" && !filepath.IsAbs(v) {
			wd, _ := os.Getwd()
			return "must name an existing file (a relative path is read from the working directory, " + wd + ", not from the config file's)"
		}
		return "must name an existing file"
	case "dir":
		return "must name an existing directory"
	case "printascii":
		return "must be printable ASCII characters (no control characters, no line breaks)"
	}
	if p != "" {
		return fmt.Sprintf("fails the %s=%s check", fe.Tag(), p)
	}
	return fmt.Sprintf("fails the %s check", fe.Tag())
}

// snakeCase turns a Go field name into its config key:
// PreviousClientSecret → previous_client_secret (for the required_with
// fields, whose names have no acronyms: APIToken would not come out right).
func snakeCase(name string) string {
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// crossCheck checks what involves more than one field.
func crossCheck(cfg *Config, ps *problems) {
	tls := cfg.Temporal.TLS
	if tls.CertFile != "" && tls.KeyFile == "" {
		ps.add("temporal.tls.key_file", "is required when cert_file is set")
	}
	if tls.KeyFile != "" && tls.CertFile == "" {
		ps.add("temporal.tls.cert_file", "is required when key_file is set")
	}

	checkDeployment(cfg.Worker.Deployment, ps)

	r := cfg.Workflow.Retry
	if r.MaximumInterval > 0 && r.InitialInterval > 0 && r.MaximumInterval < r.InitialInterval &&
		!ps.isFailed("workflow.retry.maximum_interval") && !ps.isFailed("workflow.retry.initial_interval") {
		ps.add("workflow.retry.maximum_interval", "must not be less than workflow.retry.initial_interval")
	}

	s := cfg.Sandbox
	if s.ErrorRate >= 0 && s.RateLimitRate >= 0 && s.ErrorRate+s.RateLimitRate > 1 &&
		!ps.isFailed("sandbox.error_rate") && !ps.isFailed("sandbox.rate_limit_rate") {
		ps.add("sandbox.rate_limit_rate", "error_rate + rate_limit_rate must not exceed 1")
	}

	checkEnvSpellings("connections", cfg.Connections, ps)
	checkEnvSpellings("targets", cfg.Targets, ps)
	for name, c := range cfg.Connections {
		key := "connections." + name
		if !connectionName.MatchString(name) {
			ps.add(key, "connection name must match "+connectionName.String()+
				" (lower-case letters, digits, _ and -: it appears in URLs and workflow IDs)")
		}
		if rt := cfg.Workflow.RunTimeout; rt > 0 && c.SettleTime >= rt && !ps.isFailed(key+".settle_time") {
			ps.add(key+".settle_time", fmt.Sprintf("must be less than workflow.run_timeout (%s): every run would time out before invoicing", wording.Duration(rt)))
		}
		for account, target := range c.AccountTargets {
			if _, ok := cfg.Targets[target]; !ok {
				ps.add(key+".account_targets."+account, fmt.Sprintf("target %q is not defined under targets (defined: %s)",
					target, wording.ListOrNone(sortedNames(cfg.Targets))))
			}
		}
		if c.Target == "" {
			continue // reported as required
		}
		if _, ok := cfg.Targets[c.Target]; !ok {
			msg := fmt.Sprintf("target %q is not defined under targets (defined: %s)", c.Target, wording.ListOrNone(sortedNames(cfg.Targets)))
			if c.Target == "sandbox" {
				// dealsync dev defines it; a check of a dev config without
				// --dev, or serve and worker, do not.
				msg += `: "sandbox" is the target dealsync dev defines itself (its sandbox ERP); check a config for dev with ` + "`dealsync config check --dev`" + ` and run it with ` + "`dealsync dev`" + `, or define a sandbox target (type http, base_url of a dealsync sandbox) for the other commands`
			}
			ps.add(key+".target", msg)
		}
	}
}

// loadMappings resolves the mapping sources and, when compile is set,
// compiles every mapping file (each problem is reported at the key that
// names its file, with the file's position) and checks the connections'
// mapping names.
func loadMappings(cfg *Config, file string, ps *problems, compile bool) {
	mc := &cfg.Mappings
	base := "."
	if file != "" {
		base = filepath.Dir(file)
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	src := mapping.Sources{Dir: abs(mc.Dir)}
	keyOf := map[string]string{}
	fileIndex := map[string]int{}
	for i, f := range mc.Files {
		p := abs(f)
		src.Files = append(src.Files, p)
		keyOf[p] = fmt.Sprintf("mappings.files[%d]", i)
		fileIndex[p] = i
	}
	mc.Sources = src
	if src.Dir != "" && !ps.isFailed("mappings.dir") {
		if st, err := os.Stat(src.Dir); err != nil || !st.IsDir() {
			msg := "must name an existing directory"
			if errors.Is(err, fs.ErrNotExist) {
				msg += relativeHint(mc.Dir, file, false)
			}
			ps.addFailed("mappings.dir", msg)
			src.Dir = ""
		}
	}
	if !compile {
		return
	}
	set, err := mapping.Load(src)
	var le *mapping.LoadError
	switch {
	case errors.As(err, &le):
		for _, p := range le.Problems {
			key, ok := keyOf[p.File]
			if !ok {
				key = "mappings.dir"
			}
			msg := p.String()
			if i, listed := fileIndex[p.File]; listed && p.Unread {
				if _, err := os.Stat(p.File); errors.Is(err, fs.ErrNotExist) {
					msg += relativeHint(mc.Files[i], file, true)
				}
			}
			ps.addOfFile(Problem{Key: key, Message: msg, InMappingFile: !p.Unread})
		}
	case err != nil:
		ps.add("mappings", err.Error())
	default:
		mc.Loaded = set
	}
	for name, c := range cfg.Connections {
		if _, ok := set.Mapper(c.Mapping); ok {
			continue
		}
		msg := fmt.Sprintf("mapping %q is not defined (defined: %s)", c.Mapping,
			wording.ListOrNone(append([]string{mapping.DefaultName}, set.Names()...)))
		if err != nil {
			msg += "; some mapping files did not load, see mappings"
		}
		ps.add("connections."+name+".mapping", msg)
	}
}

// relativeHint says, for a mapping path (mappings.dir, an entry of
// mappings.files) that does not exist, which directory a relative one was
// read from: the config file's (configFile's), or the working directory
// when there is no file (the environment alone gives the key); "" for an
// absolute path. It says that the path is not read from the working
// directory unless that is the config file's. named says that the
// message names the path read already.
func relativeHint(path, configFile string, named bool) string {
	if path == "" || filepath.IsAbs(path) {
		return ""
	}
	if configFile == "" {
		wd, err := os.Getwd()
		if err != nil {
			wd = "?"
		}
		return fmt.Sprintf(": the relative path %s is read from the working directory, %s, as there is no config file: give an absolute path", path, wd)
	}
	base, err := filepath.Abs(filepath.Dir(configFile))
	if err != nil {
		base = filepath.Dir(configFile)
	}
	notWD := ", not from the working directory"
	if sameDir(base, ".") {
		notWD = "" // the working directory is the config file's
	}
	missing := ", and " + filepath.Join(base, path) + " does not exist"
	if named {
		missing = ""
	}
	return fmt.Sprintf(": the relative path %s is read from the config file's directory, %s%s%s: give a path relative to %s, or an absolute one",
		path, base, notWD, missing, base)
}

// sameDir reports whether the directories a and b are one (through
// symbolic links too); false when either cannot be read.
func sameDir(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

// checkSharedIDs refuses a connection whose source numbers deals and
// companies per account (connectors.IDsPerAccount) when two of its accounts
// invoice into one target under a mapping whose ERP keys do not tell them
// apart: the ERP targets match invoices and customers by the invoice
// reference and the customer's external id, which are the deal's and the
// company's ids unless the mapping puts event.account into both, so deal 1
// of one account would be taken for deal 1 of the other, and its invoice
// reported as the second deal's. Two such connections whose accounts
// differ and meet in one target are refused the same way (the same
// account in two connections is one numbering: its deals are its deals).
func checkSharedIDs(cfg *Config, ps *problems) {
	type user struct{ conn, typ, account, which, via string }
	byTarget := map[string][]user{}
	for _, name := range sortedNames(cfg.Connections) {
		c := cfg.Connections[name]
		src, ok := c.Source.Spec.(connectors.IDsPerAccount)
		if !ok {
			continue
		}
		which := "the built-in mapping"
		if c.Mapping != "" && c.Mapping != mapping.DefaultName {
			f, ok := cfg.Mappings.Loaded.Get(c.Mapping)
			if !ok || f.KeysReadAccount() {
				continue // an unknown mapping is reported on its own
			}
			which = fmt.Sprintf("mapping %q, whose invoice.reference and invoice.customer.external_id do not both read event.account", c.Mapping)
		}
		accounts := src.AccountsWithOwnIDs()
		sort.Strings(accounts)
		for _, account := range accounts {
			target, via := c.Target, "connections."+name+".target"
			if t, ok := c.AccountTargets[account]; ok {
				target, via = t, "connections."+name+".account_targets."+account
			}
			byTarget[target] = append(byTarget[target], user{conn: name, typ: c.Source.Type, account: account, which: which, via: via})
		}
	}
	for _, target := range sortedNames(byTarget) {
		users := byTarget[target]
		conns := map[string][]string{} // connection → its accounts here
		which := map[string]string{}   // connection → its mapping, in words
		accounts := map[string]bool{}
		for _, u := range users {
			conns[u.conn] = append(conns[u.conn], u.account)
			which[u.conn] = u.which
			accounts[u.typ+"/"+u.account] = true
		}
		if len(accounts) < 2 {
			continue
		}
		if len(conns) == 1 {
			name := users[0].conn
			c := cfg.Connections[name]
			ps.add("connections."+name+".account_targets", fmt.Sprintf(
				"accounts %s of this %s source invoice into target %q with %s; the ERP targets match invoices and customers "+
					"by those keys, the deal's and the company's ids, which %s numbers per account, so deal 1 of one account would be "+
					"taken for deal 1 of another. Give each account its own target under account_targets, or use a mapping "+
					"whose invoice.reference and invoice.customer.external_id include event.account; "+keepOneAccountBare,
				strings.Join(conns[name], ", "), c.Source.Type, target, users[0].which, c.Source.Type))
			continue
		}
		var parts []string
		for _, name := range sortedNames(conns) {
			parts = append(parts, fmt.Sprintf("%s (account %s, %s)", name, strings.Join(conns[name], ", "), which[name]))
		}
		ps.add(users[0].via, fmt.Sprintf(
			"connections %s invoice into target %q, and their sources number deals and companies per account; "+
				"the ERP targets match invoices and customers by the deal's and the company's ids, so deal 1 of one account "+
				"would be taken for deal 1 of another. Give each its own target, or use mappings whose invoice.reference and "+
				"invoice.customer.external_id include event.account; "+keepOneAccountBare,
			strings.Join(parts, "; "), target))
	}
}

// SharedAccountWarnings name each two connections that list one CRM
// account (connectors.ConfiguredAccounts: a HubSpot portal, a Salesforce
// org, a Pipedrive company) and invoice it into one target. Each
// connection starts runs of its own (invoice/<connection>/<account>/<deal>,
// whose idempotency keys are their own too), so a deal whose webhooks
// reach both and that both trigger on (two apps of one portal, two
// webhooks of one company) is invoiced twice in that target. It is a
// warning, not an error: connections of one account whose triggers never
// take the same deal (one per pipeline, with won stages of their own)
// invoice each deal once. Into targets of their own, they are two ERPs'
// invoices. A generic connection names no account: two of them with one
// secret may be two senders of different deals, which the config cannot
// tell from one sender posting to both.
func (cfg *Config) SharedAccountWarnings() []string {
	type use struct {
		conn, account, key string
		second             bool // found under an earlier connection
	}
	type pair struct{ first, second, target string }
	type shared struct {
		kind, via string
		accounts  [][2]string // as the first and the second connection write them
	}
	uses := map[[2]string][]use{} // source type, target → the accounts of the connections before
	pairs := map[pair]*shared{}
	for _, name := range sortedNames(cfg.Connections) {
		c := cfg.Connections[name]
		src, ok := c.Source.Spec.(connectors.ConfiguredAccounts)
		if !ok {
			continue
		}
		same := func(a, b use) bool { return a.key == b.key }
		if m, ok := src.(connectors.AccountMatcher); ok {
			same = func(a, b use) bool { return m.SameCRMAccount(a.account, b.account) }
		}
		kind, keys := src.CRMAccounts()
		for _, account := range sortedNames(keys) {
			target, via := c.Target, "connections."+name+".target"
			if t, ok := c.AccountTargets[account]; ok {
				target, via = t, "connections."+name+".account_targets."+account
			}
			k := [2]string{c.Source.Type, target}
			u := use{conn: name, account: account, key: keys[account]}
			// Each connection before this one that lists it first (one
			// account written twice in one connection is not two; a
			// third connection of it is named with the first only). A
			// Salesforce org's 15 characters may be the start of two orgs'
			// ids, each on a connection of its own: named with both.
			seen := map[string]bool{}
			for _, prev := range uses[k] {
				if prev.conn == name || prev.second || seen[prev.conn] || !same(prev, u) {
					continue
				}
				seen[prev.conn], u.second = true, true
				p := pair{prev.conn, name, target}
				if pairs[p] == nil {
					pairs[p] = &shared{kind: kind, via: via}
				}
				pairs[p].accounts = append(pairs[p].accounts, [2]string{prev.account, account})
			}
			uses[k] = append(uses[k], u)
		}
	}
	order := slices.SortedFunc(maps.Keys(pairs), func(a, b pair) int {
		return cmp.Or(cmp.Compare(a.second, b.second), cmp.Compare(a.first, b.first), cmp.Compare(a.target, b.target))
	})
	var out []string
	for _, p := range order {
		sh := pairs[p]
		var names []string
		for _, a := range sh.accounts {
			names = append(names, a[1])
		}
		what, it := sh.kind+" "+names[0], "it"
		if len(names) > 1 {
			what, it = sh.kind+"s "+strings.Join(names, ", "), "them"
		}
		out = append(out, fmt.Sprintf(
			"%s: connections %s and %s both list %s and invoice %s into target %q; each connection starts runs of its own for a deal "+
				"(invoice/%s/%s/<deal> and invoice/%s/%s/<deal>, with idempotency keys of their own), so a deal whose webhooks reach both "+
				"and that both trigger on is invoiced twice. Connections whose triggers never take the same deal (a pipeline each, "+
				"won stages of their own) are fine as they are. Otherwise list each account on one connection only, or give each "+
				"connection its own target; merging the two into one changes the workflow ids of their runs (invoice/<connection>/…), "+
				"so a deal invoiced under the name removed is no longer seen as a duplicate by the connection kept: an event of it "+
				"that the kept connection triggers on invoices it again",
			sh.via, p.first, p.second, what, it, p.target, p.first, sh.accounts[0][0], p.second, sh.accounts[0][1]))
	}
	return out
}

// rotatingGrant is implemented by the config of a target whose OAuth
// refresh token rotates on every refresh (Xero): the client id, the
// refresh token from the consent flow that seeds the token file, and the
// token file.
type rotatingGrant interface {
	RotatingGrant() (clientID string, refreshToken secret.Secret, tokenFile string)
}

// checkEncryption checks temporal.encryption: key_id names one of keys,
// and the codec endpoint has a server to be served on.
func checkEncryption(cfg *Config, ps *problems) {
	e := cfg.Temporal.Encryption
	if e.KeyID != "" && !ps.isFailed("temporal.encryption.keys") {
		if _, ok := e.Keys[e.KeyID]; !ok {
			ps.add("temporal.encryption.key_id", fmt.Sprintf("key %q is not defined under temporal.encryption.keys (defined: %s)",
				e.KeyID, wording.ListOrNone(sortedNames(e.Keys))))
		}
	}
	if e.CodecEndpoint && !e.On() {
		ps.add("temporal.encryption.codec_endpoint", "is set, but temporal.encryption.keys is empty: nothing to decode")
	}
	if e.CodecEndpoint && cfg.Metrics.Listen == "" {
		ps.add("temporal.encryption.codec_endpoint", "is served on metrics.listen, which is not set: give metrics.listen an address only operators reach")
	}
	for i, o := range e.CodecOrigins {
		key := fmt.Sprintf("temporal.encryption.codec_origins[%d]", i)
		if ps.isFailed(key) {
			continue
		}
		if msg := notAnOrigin(o); msg != "" {
			ps.add(key, msg)
		}
	}
}

// notAnOrigin says why o is not an origin as a browser sends it in its
// Origin header (scheme://host[:port], nothing after), which the codec
// endpoint compares codec_origins with exactly; "" when it is one, or
// not an http(s) URL at all (which the field's validate tag refuses).
func notAnOrigin(o string) string {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "" // not an http(s) URL: its validate tag says so
	}
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#") {
		return fmt.Sprintf("%q is not an origin: a browser sends %s (no path, not even a final /), and no other value ever matches", o, u.Scheme+"://"+u.Host)
	}
	if p := u.Port(); (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") {
		return fmt.Sprintf("%q is not an origin as a browser sends it: without its scheme's default port, %s", o, u.Scheme+"://"+u.Hostname())
	}
	if o != strings.ToLower(o) {
		return fmt.Sprintf("%q is not an origin as a browser sends it: give it in lower case, %s", o, strings.ToLower(o))
	}
	return ""
}

// checkEncryptionKeys checks that each key of temporal.encryption.keys
// that resolves is 32 bytes in standard base64 (an unresolved one is
// named by the secrets' check already).
func checkEncryptionKeys(cfg *Config, ps *problems, skip func(key string) bool) {
	for id, s := range cfg.Temporal.Encryption.Keys {
		key := "temporal.encryption.keys." + id
		if ps.isFailed(key) || (skip != nil && skip(key)) {
			continue
		}
		v, err := s.Reveal()
		if err != nil || v == "" {
			continue
		}
		if _, err := EncryptionKey(v); err != nil {
			ps.add(key, fmt.Sprintf("secret %s %v", s.Describe(), err))
		}
	}
}

// EncryptionKey decodes a key of temporal.encryption.keys: 32 bytes (an
// AES-256 key) in standard base64, as `openssl rand -base64 32` prints.
func EncryptionKey(v string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil {
		return nil, errors.New("is not standard base64 (make one with: openssl rand -base64 32)")
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("is %d bytes, not the 32 of an AES-256 key (make one with: openssl rand -base64 32)", len(b))
	}
	return b, nil
}

// checkMetricsListen refuses a metrics.listen on the intake's own address
// (the same port, on the same host or on all of them): the process could
// not open both, and serve's message blamed "another dealsync".
func checkMetricsListen(cfg *Config, ps *problems) {
	m, in := cfg.Metrics.Listen, cfg.Intake.Listen
	if m == "" || ps.isFailed("metrics.listen") || ps.isFailed("intake.listen") {
		return
	}
	if ListenClash(m, in) {
		ps.add("metrics.listen", fmt.Sprintf("is on intake.listen's address (%s): give the metrics server a port of its own", in))
	}
}

// ListenClash says whether two listen addresses (host:port) could not
// both be opened: the same port, on the same host or on all of them, as
// Go listens: "localhost" on 127.0.0.1, an address however it is written
// (::ffff:127.0.0.1 is 127.0.0.1, a port 08080 is 8080), "", 0.0.0.0 and
// :: on all. Port 0 (any free port) never clashes.
func ListenClash(a, b string) bool {
	ah, aps, err1 := net.SplitHostPort(a)
	bh, bps, err2 := net.SplitHostPort(b)
	ap, err3 := strconv.Atoi(aps)
	bp, err4 := strconv.Atoi(bps)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || ap != bp || ap == 0 {
		return false
	}
	canon := func(h string) (string, bool) {
		if strings.EqualFold(h, "localhost") {
			return "127.0.0.1", false
		}
		if h == "" {
			return "", true
		}
		if ip := net.ParseIP(h); ip != nil {
			return ip.String(), ip.IsUnspecified()
		}
		return strings.ToLower(h), false
	}
	ac, aAll := canon(ah)
	bc, bAll := canon(bh)
	return ac == bc || aAll || bAll
}

// checkPublicBaseURL refuses an intake.public_base_url the intake cannot
// put a webhook's path after: with user info, a query or a fragment (the
// URL signed became …/?k=X/webhooks/demo, and every HubSpot delivery was
// refused), or a port out of range. Its value is not shown: user info is
// a credential.
func checkPublicBaseURL(cfg *Config, ps *problems) {
	raw := cfg.Intake.PublicBaseURL
	if raw == "" || ps.isFailed("intake.public_base_url") {
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		return // the http_url check's
	}
	if u.User != nil || strings.ContainsAny(raw, "?#") {
		ps.add("intake.public_base_url", "must be scheme://host[:port][/path], without user info, a query or a fragment: the intake adds /webhooks/<connection> to it")
		return
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			ps.add("intake.public_base_url", fmt.Sprintf("has port %s, which is not a port (1 to 65535)", p))
		}
	}
}

// checkSharedGrants refuses targets that come from one authorisation (one
// type, client_id and refresh_token, by value) but keep their tokens in
// different token_files: the vendor rotates the refresh token, so the
// first of them to refresh spends the one they share and the others are
// refused (invalid_grant) from then on. One token_file serves them all,
// under its lock. Secrets that do not resolve are reported on their own.
func checkSharedGrants(cfg *Config, ps *problems) {
	type first struct{ target, file string }
	seen := map[[32]byte]first{}
	for _, name := range sortedNames(cfg.Targets) {
		t := cfg.Targets[name]
		g, ok := t.Spec.(rotatingGrant)
		if !ok {
			continue
		}
		clientID, seed, file := g.RotatingGrant()
		token, err := seed.Reveal()
		if clientID == "" || token == "" || file == "" || err != nil {
			continue
		}
		key := sha256.Sum256([]byte(t.Type + "\x00" + clientID + "\x00" + token)) // the token itself is not kept
		f, ok := seen[key]
		switch {
		case !ok:
			seen[key] = first{name, file}
		case absPath(f.file) != absPath(file):
			ps.add("targets."+name+".token_file", fmt.Sprintf(
				"targets %q and %q (type %s) come from one authorisation (the same client_id and refresh_token) but keep their tokens in different token_files (%s, %s); "+
					"the refresh token rotates on every refresh, so the first of them to refresh spends it and the other is refused (invalid_grant) from then on: "+
					"share one token_file between them (dealsync refreshes under its lock), %s",
				f.target, name, t.Type, f.file, file, f.file))
		}
	}
}

// absPath is path as the processes open it (relative to the working
// directory), for comparing two paths.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}

// keepOneAccountBare ends the refusals of checkSharedIDs: the migration
// that does not make existing invoices again.
const keepOneAccountBare = "a deployment that already invoices one account keeps that account's keys bare, " +
	"or its invoices are no longer found and are made again (docs/connectors/crm.md, \"What every CRM source does\")"

// component looks up c's type and decodes and validates its options into
// the type's config struct, which it returns (nil when it cannot).
func component(c Component, kind, key string, ps *problems) any {
	if c.Type == "" {
		return nil // reported as required
	}
	var (
		newConfig func() any
		names     []string
		found     bool
	)
	if kind == "source" {
		spec, ok := connectors.LookupSource(c.Type)
		newConfig, found, names = spec.NewConfig, ok, connectors.SourceNames()
	} else {
		spec, ok := connectors.LookupTarget(c.Type)
		newConfig, found, names = spec.NewConfig, ok, connectors.TargetNames()
	}
	if !found {
		ps.addFailed(key+".type", fmt.Sprintf("unknown %s type %q (registered %s types: %s)",
			kind, c.Type, kind, wording.ListOrNone(names)))
		return nil
	}
	if newConfig == nil {
		for k := range c.Options {
			ps.add(joinKey(key, k), "unknown key")
		}
		return nil
	}
	cfg := newConfig()
	if rv := reflect.ValueOf(cfg); !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() {
		ps.add(key+".type", fmt.Sprintf("%s type %q: NewConfig must return a non-nil pointer", kind, c.Type))
		return nil
	}
	opts := c.Options
	if opts == nil {
		opts = map[string]any{}
	}
	checkKeys(opts, reflect.TypeOf(cfg), key, ps)
	decode(opts, cfg, key, ps)
	if deref(reflect.TypeOf(cfg)).Kind() == reflect.Struct {
		validateStruct(cfg, key, ps)
	}
	if cc, ok := cfg.(connectors.ConfigChecker); ok {
		for _, p := range cc.CheckConfig() {
			if k := joinKey(key, p.Key); !ps.isFailed(k) {
				ps.add(k, p.Message)
			}
		}
	}
	return cfg
}

// walkSecrets calls fn for every secret.Secret in v, with its key path.
func walkSecrets(v reflect.Value, path string, fn func(key string, s secret.Secret)) {
	walkConfig(v, path, func(key string, v reflect.Value) bool {
		if v.Type() != secretType {
			return false
		}
		fn(key, v.Interface().(secret.Secret))
		return true
	})
}

// walkConfig calls visit for every value in v, with its key path, and
// descends into those it returns false for. A Component's Spec is walked
// at the component's own path; its raw Options are not (they were decoded
// into Spec).
func walkConfig(v reflect.Value, path string, visit func(key string, v reflect.Value) (done bool)) {
	if !v.IsValid() || visit(path, v) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkConfig(v.Elem(), path, visit)
		}
	case reflect.Struct:
		if v.Type() == componentType {
			walkConfig(v.FieldByName("Spec"), path, visit)
			return
		}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts := tagName(f)
			switch {
			case name == "-" || hasOpt(opts, "remain"):
			case hasOpt(opts, "squash"):
				walkConfig(v.Field(i), path, visit)
			default:
				walkConfig(v.Field(i), joinKey(path, name), visit)
			}
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			walkConfig(v.MapIndex(k), joinKey(path, fmt.Sprint(k.Interface())), visit)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walkConfig(v.Index(i), path+"["+strconv.Itoa(i)+"]", visit)
		}
	}
}

// relativePath is a file of the config given by a relative path, at key.
type relativePath struct{ key, path string }

// relativePaths are the config's files given by a relative path (a key
// ending in _file, a file: secret): they are read from the process's
// working directory, not from the config file's.
func relativePaths(cfg *Config) []relativePath {
	var out []relativePath
	walkConfig(reflect.ValueOf(cfg), "", func(key string, v reflect.Value) bool {
		var p string
		switch {
		case v.Type() == secretType:
			p, _ = v.Interface().(secret.Secret).File()
		case v.Kind() == reflect.String && strings.HasSuffix(key, "_file"):
			p = v.String()
		default:
			return false
		}
		if p != "" && !filepath.IsAbs(p) {
			out = append(out, relativePath{key, p})
		}
		return true
	})
	return out
}

// writtenFiles are the config's files that dealsync writes (a target's
// token_file and link_file, a Pipedrive oauth.token_file), by key.
func writtenFiles(cfg *Config) []relativePath {
	var out []relativePath
	walkConfig(reflect.ValueOf(cfg), "", func(key string, v reflect.Value) bool {
		if v.Kind() != reflect.String || !strings.HasSuffix(key, "token_file") && !strings.HasSuffix(key, "link_file") {
			return false
		}
		if p := v.String(); p != "" {
			out = append(out, relativePath{key, p})
		}
		return true
	})
	return out
}

// unwritableDir is the nearest existing directory of path (its own, or
// the ancestor a write would create it in) when this process cannot
// create files in it, with why; "" when it can, or it cannot be told.
func unwritableDir(path string) (string, error) {
	dir := filepath.Dir(path)
	for {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return dir, errors.New("not a directory")
			}
			if err := canWrite(dir); err != nil {
				return dir, err
			}
			return "", nil
		}
		parent := filepath.Dir(dir)
		// ENOTDIR: a file on the way, which the walk up finds.
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) || parent == dir {
			return "", nil
		}
		dir = parent
	}
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return false
	}
	return host == "" || net.ParseIP(host) != nil || hostnameRE.MatchString(host)
}

// checkDeployment checks worker.deployment as Temporal 1.32 does (a name
// with "." or ":", either starting with "__" or longer than
// maxDeploymentField, is refused by the server at the worker's first
// poll: the worker would stop): both or neither.
func checkDeployment(d Deployment, ps *problems) {
	switch {
	case d.Name != "" && d.BuildID == "":
		ps.add("worker.deployment.build_id", "is required when worker.deployment.name is set (the build of this release: another for each release)")
	case d.BuildID != "" && d.Name == "":
		ps.add("worker.deployment.name", "is required when worker.deployment.build_id is set")
	}
	if strings.ContainsAny(d.Name, ".:") {
		ps.add("worker.deployment.name", `must not contain "." or ":" (Temporal refuses them)`)
	}
	if strings.HasPrefix(d.Name, "__") {
		ps.add("worker.deployment.name", `must not start with "__" (Temporal refuses it)`)
	}
	if strings.HasPrefix(d.BuildID, "__") {
		ps.add("worker.deployment.build_id", `must not start with "__" (Temporal refuses it)`)
	}
	// Temporal's limit: (limit.maxIDLength, 1000 by default, less 39) / 2.
	for _, f := range [][2]string{{"worker.deployment.name", d.Name}, {"worker.deployment.build_id", d.BuildID}} {
		if key, v := f[0], f[1]; len(v) > maxDeploymentField {
			ps.add(key, fmt.Sprintf("is %d bytes long: at most %d (Temporal refuses longer ones with its default limit.maxIDLength)", len(v), maxDeploymentField))
		}
	}
}

// maxDeploymentField is the longest deployment name or build ID Temporal
// takes with its default limit.maxIDLength (1000): (1000 - 39) / 2.
const maxDeploymentField = 480
