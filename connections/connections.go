// Package connections builds the live connections (source, trigger,
// mapping, target) from a validated config and hands them to the intake and
// to the activities.
package connections

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/httptarget"
	"github.com/dealsync/dealsync/mapping"
)

// Defaults for sources whose events are thin and must be fetched.
const (
	DefaultFetchSettleTime = 5 * time.Second
	DefaultFetchLinger     = 15 * time.Minute
)

// Connection is one configured CRM → ERP pipe. A *Connection is an
// immutable snapshot: when the mapping files are reloaded, the Set hands
// out new Connections, so Trigger and Mapper always belong to the same
// mapping version.
type Connection struct {
	Name       string
	SourceType string
	Source     connectors.Source
	// Trigger decides which events start a run: the connection's mapping's
	// trigger over its won stages.
	Trigger mapping.Trigger
	// MappingName is the connection's mapping as configured ("" = default).
	MappingName string
	WonStages   []string
	Mapper      mapping.Mapper
	TargetName  string
	Target      connectors.Target
	// TargetIdentity is where Target's calls go
	// (connectors.IdentifyTarget): the intake pins it in the run's input.
	TargetIdentity connectors.TargetIdentity
	// AccountTargets routes CRM accounts to their own ERP targets, each
	// with its name.
	AccountTargets map[string]activities.NamedTarget
	// Fetcher and WriteBacker are the source's CRM API side, when it has one.
	Fetcher     connectors.DealFetcher
	WriteBacker connectors.WriteBacker
	// SettleTime and Linger shape the run (see config.Connection).
	SettleTime time.Duration
	Linger     time.Duration
}

// Listens says whether the runs of this connection take later events of
// their deal (during the settle time, or while they linger): then the
// intake delivers the events that do not trigger a run to the deal's
// running run.
func (c *Connection) Listens() bool { return c.SettleTime > 0 || c.Linger > 0 }

// AccountKey is the configured key of the CRM account typed as typed
// (Salesforce's 15 or 18 characters, any letter case), as the source keys
// its events and account_targets are looked up: the source's own reading
// (connectors.AccountKeyer), else the configured account of that name
// ignoring case. An account the connection does not serve is an error
// naming the ones it does; a source without accounts takes typed as is.
func (c *Connection) AccountKey(typed string) (string, error) {
	al, ok := c.Source.(connectors.AccountLister)
	if !ok {
		return typed, nil
	}
	if k, ok := c.Source.(connectors.AccountKeyer); ok {
		if key, found := k.AccountKey(typed); found {
			return key, nil
		}
	}
	configured := al.Accounts()
	slices.Sort(configured)
	if i := slices.IndexFunc(configured, func(a string) bool { return strings.EqualFold(a, strings.TrimSpace(typed)) }); i >= 0 {
		return configured[i], nil
	}
	return "", fmt.Errorf("connection %q serves no account %q (its accounts: %s)", c.Name, typed, strings.Join(configured, ", "))
}

// Set is every connection of a config, by name. It is safe for concurrent
// use; when the config has mapping files and a reload interval, Get and
// Resolve pick up changed mapping files (for new runs) at most once per
// interval, keeping the previous version when the new one does not load.
type Set struct {
	cur    atomic.Pointer[map[string]*Connection]
	store  *mapping.Store // nil: no mapping files
	reload bool

	mu      sync.Mutex                  // serialises rebuilds
	builtOn atomic.Pointer[mapping.Set] // the mapping set cur was built from
}

// Build instantiates every connection's source and target through the
// connector registry. cfg must have been loaded by config.Load, which has
// decoded and validated each component's Spec.
func Build(cfg *config.Config, env connectors.Env) (*Set, error) {
	targets := map[string]connectors.Target{}
	identities := map[string]connectors.TargetIdentity{}
	var errs []error
	// In the order of their names, so that the errors come in one order.
	for _, name := range slices.Sorted(maps.Keys(cfg.Targets)) {
		tc := cfg.Targets[name]
		spec, ok := connectors.LookupTarget(tc.Type)
		if !ok {
			errs = append(errs, fmt.Errorf("targets.%s: unknown type %q", name, tc.Type))
			continue
		}
		tenv := env
		tenv.ConfigKey = "targets." + name
		tenv.KeyVar = cfg.KeyVar
		t, err := spec.Build(tc.Spec, tenv)
		if err != nil {
			errs = append(errs, fmt.Errorf("targets.%s: %w", name, err))
			continue
		}
		targets[name] = t
		identities[name] = identifyTarget(cfg, name, tc, t)
	}
	s := &Set{}
	var mappings *mapping.Set
	if !cfg.Mappings.Sources.IsZero() {
		var required []string
		for _, name := range slices.Sorted(maps.Keys(cfg.Connections)) {
			required = append(required, cfg.Connections[name].Mapping)
		}
		logger := env.Logger
		if logger == nil {
			logger = slog.Default()
		}
		store, err := mapping.NewStore(cfg.Mappings.Sources, mapping.StoreOptions{
			Required: required, Interval: cfg.Mappings.ReloadInterval, Logger: logger.With("component", "mappings"),
		})
		if err != nil {
			return nil, fmt.Errorf("mappings: %w", err)
		}
		s.store, s.reload = store, cfg.Mappings.ReloadInterval > 0
		mappings = store.Current()
	}
	byName := map[string]*Connection{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Connections)) {
		cc := cfg.Connections[name]
		spec, ok := connectors.LookupSource(cc.Source.Type)
		if !ok {
			errs = append(errs, fmt.Errorf("connections.%s.source: unknown type %q", name, cc.Source.Type))
			continue
		}
		senv := env
		senv.ConfigKey = "connections." + name + ".source"
		senv.KeyVar = cfg.KeyVar
		// What a source logs names its connection (the intake gives a
		// delivery's lines its own logger: connectors.Webhook.Log).
		senv.Logger = env.Log().With("connection", name)
		src, err := spec.Build(cc.Source.Spec, senv)
		if err != nil {
			errs = append(errs, fmt.Errorf("connections.%s.source: %w", name, err))
			continue
		}
		target, ok := targets[cc.Target]
		if !ok {
			errs = append(errs, fmt.Errorf("connections.%s.target: no usable target %q", name, cc.Target))
			continue
		}
		c := &Connection{
			Name:           name,
			SourceType:     cc.Source.Type,
			Source:         src,
			MappingName:    cc.Mapping,
			WonStages:      cc.Trigger.WonStages,
			TargetName:     cc.Target,
			Target:         target,
			TargetIdentity: identities[cc.Target],
			SettleTime:     cc.SettleTime,
			Linger:         cc.Linger,
		}
		c.Fetcher, _ = src.(connectors.DealFetcher)
		c.WriteBacker, _ = src.(connectors.WriteBacker)
		if sw, ok := src.(connectors.WriteBackSwitch); ok && !sw.WritesBack() {
			// No write-back field configured: no write-back step, so that
			// `runs retry --writeback --completed` tells its runs apart
			// once fields are set.
			c.WriteBacker = nil
		}
		if c.Fetcher != nil {
			if c.SettleTime == 0 {
				c.SettleTime = DefaultFetchSettleTime
			}
			if c.Linger == 0 {
				c.Linger = DefaultFetchLinger
			}
		}
		// An account is routed by the key its events carry: one the source
		// does not serve (a typo) would send nothing there, and that
		// account's invoices to the connection's own target, another
		// company's books.
		accounts := slices.Sorted(maps.Keys(cc.AccountTargets))
		if _, lists := src.(connectors.AccountLister); !lists && len(accounts) > 0 {
			// Its events carry no account: nothing would ever be routed.
			errs = append(errs, fmt.Errorf("connections.%s.account_targets: a %s source serves no CRM accounts (its events name none), so every invoice would go to target %s: "+
				"make a connection per sender instead, each with its own target", name, cc.Source.Type, cc.Target))
			accounts = nil
		}
		routed := map[string]string{} // key → account as written
		for _, account := range accounts {
			tn := cc.AccountTargets[account]
			t, ok := targets[tn]
			if !ok {
				errs = append(errs, fmt.Errorf("connections.%s.account_targets.%s: no usable target %q", name, account, tn))
				continue
			}
			key, err := c.AccountKey(account)
			if err != nil {
				errs = append(errs, fmt.Errorf("connections.%s.account_targets.%s: %w", name, account, err))
				continue
			}
			if other, dup := routed[key]; dup && cc.AccountTargets[other] != tn {
				errs = append(errs, fmt.Errorf("connections.%s.account_targets: %s and %s are one account (%s), routed to two targets", name, other, account, key))
				continue
			}
			routed[key] = account
			if c.AccountTargets == nil {
				c.AccountTargets = map[string]activities.NamedTarget{}
			}
			c.AccountTargets[key] = activities.NamedTarget{Name: tn, Target: t, Identity: identities[tn]}
		}
		if err := bind(c, mappings); err != nil {
			errs = append(errs, fmt.Errorf("connections.%s.mapping: %w", name, err))
			continue
		}
		byName[name] = c
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.cur.Store(&byName)
	s.builtOn.Store(mappings)
	return s, nil
}

// WonStageWarning says, when c's source reports every won deal as one
// stage (connectors.WonStageReporter) that c's won stages do not list,
// that won deals will not be invoiced: the stage trigger does not fire on
// them, and a run that reads the deal ends it as not won. "" otherwise. A
// list of other stages can be meant (a stage before the deal is closed,
// or a mapping's own trigger), so it is a warning, not an error.
func (c *Connection) WonStageWarning() string {
	r, ok := c.Source.(connectors.WonStageReporter)
	if !ok || slices.ContainsFunc(c.WonStages, func(s string) bool { return strings.EqualFold(s, r.WonStage()) }) {
		return ""
	}
	return fmt.Sprintf("the %s source reports every won deal as stage %q, which trigger.won_stages %v does not list: won deals will not be invoiced (add %q unless the stages listed are the ones meant)",
		c.SourceType, r.WonStage(), c.WonStages, r.WonStage())
}

// bind sets c's Mapper and Trigger from the mapping set.
func bind(c *Connection, mappings *mapping.Set) error {
	m, ok := mappings.Mapper(c.MappingName)
	if !ok {
		return fmt.Errorf("mapping %q is not defined", c.MappingName)
	}
	t, _ := mappings.Trigger(c.MappingName, c.WonStages)
	c.Mapper, c.Trigger = m, t
	return nil
}

// refresh picks up reloaded mappings: when the store's current set is not
// the one the connections were built from, every connection is rebound
// and the whole map swapped at once.
func (s *Set) refresh() map[string]*Connection {
	if s.store == nil {
		return *s.cur.Load()
	}
	if s.reload {
		s.store.MaybeReload()
	}
	if s.store.Current() == s.builtOn.Load() {
		return *s.cur.Load() // fast path: cur is stored before builtOn
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := *s.cur.Load()
	mappings := s.store.Current()
	if mappings == s.builtOn.Load() {
		return cur
	}
	next := make(map[string]*Connection, len(cur))
	for name, c := range cur {
		nc := *c
		if err := bind(&nc, mappings); err != nil {
			return cur // the store only accepts sets with every required mapping
		}
		next[name] = &nc
	}
	s.cur.Store(&next)
	s.builtOn.Store(mappings)
	return next
}

// ReloadMappings reads the mapping files again now. On failure the
// previous mappings stay in use and the *mapping.LoadError is returned.
func (s *Set) ReloadMappings() error {
	if s.store == nil {
		return nil
	}
	if err := s.store.Reload(); err != nil {
		return err
	}
	s.refresh()
	return nil
}

// Mappings is the store of the mapping files (nil when the config has none).
func (s *Set) Mappings() *mapping.Store { return s.store }

// Get returns the named connection, as of the current mappings.
func (s *Set) Get(name string) (*Connection, bool) {
	c, ok := s.refresh()[name]
	return c, ok
}

// Names lists the connections, sorted.
func (s *Set) Names() []string {
	cur := *s.cur.Load()
	out := make([]string, 0, len(cur))
	for n := range cur {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Resolve implements activities.Resolver: the connection's target and the
// current version of its mapping (the activity records which one it used).
func (s *Set) Resolve(name string) (activities.Connection, bool) {
	c, ok := s.refresh()[name]
	if !ok {
		return activities.Connection{}, false
	}
	return activities.Connection{
		Mapper: c.Mapper, Target: c.Target, TargetName: c.TargetName, TargetIdentity: c.TargetIdentity, AccountTargets: c.AccountTargets,
		Fetcher: c.Fetcher, WriteBacker: c.WriteBacker,
	}, true
}

// identifyTarget is the identity of target name (connectors.IdentifyTarget).
// dealsync dev's built-in sandbox target (config.WithDevDefaults), while
// its base_url is dev.sandbox_listen's, is dev's own sandbox ERP whatever
// the port: its invoices are in the data dir's journal, which a dev
// restarted on another dev.sandbox_listen (the port was taken) serves
// again, so its runs under way must not be refused for the port. The
// release before this one took only 127.0.0.1 and localhost for a
// sandbox on every interface: a base_url naming another address of this
// machine (a LAN address, 127.0.0.2) it identified by that URL, as any
// http target, and the runs it pinned so still match
// (connectors.TargetIdentity.EarlierFingerprint).
//
// Its InvoiceRetry and LookupSetting are the built target's
// (connectors.InvoiceRetryOf); dev's
// sandbox ERP keeps the idempotency keys, and answers a key sent again
// with the invoice it made: a retry finds it.
func identifyTarget(cfg *config.Config, name string, tc config.Component, t connectors.Target) connectors.TargetIdentity {
	if hc, ok := tc.Spec.(*httptarget.Config); ok && cfg.IsDevDefault("targets", name) && config.SameHostPort(hc.BaseURL, cfg.Dev.SandboxListen) {
		id := connectors.IdentifyTarget(name, tc.Type, devSandbox{})
		id.InvoiceRetry = connectors.InvoiceRetryFinds
		if !config.SameHostPort(hc.BaseURL, config.DialAddr(cfg.Dev.SandboxListen)) {
			byURL := connectors.IdentifyTarget(name, tc.Type, tc.Spec)
			id.EarlierFingerprint = cmp.Or(byURL.EarlierFingerprint, byURL.Fingerprint)
		}
		return id
	}
	id := connectors.IdentifyTarget(name, tc.Type, tc.Spec)
	id.InvoiceRetry, id.LookupSetting = connectors.InvoiceRetryOf(t)
	return id
}

// devSandbox identifies dev's built-in sandbox target by the setting its
// base_url follows.
type devSandbox struct{}

func (devSandbox) IdentifyingSettings() []connectors.Setting {
	return []connectors.Setting{{Key: "base_url", Value: "dev.sandbox_listen"}}
}

// TargetIdentityFor is where the ERP steps of a CRM account's deal call,
// as the activities pick the target (activities.Connection.TargetFor):
// the intake pins it in the run's input.
func (c *Connection) TargetIdentityFor(account string) connectors.TargetIdentity {
	return activities.Connection{TargetIdentity: c.TargetIdentity, AccountTargets: c.AccountTargets}.TargetIdentityFor(account)
}
