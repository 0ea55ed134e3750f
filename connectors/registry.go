package connectors

import (
	"fmt"
	"sort"
	"sync"

	"github.com/dealsync/dealsync/model"
)

// SourceSpec describes a source type to the registry.
type SourceSpec struct {
	Name    string
	Summary string
	// NewConfig returns a pointer to a fresh, defaulted config struct. Its
	// fields carry `mapstructure` names and go-playground `validate` tags;
	// the config package decodes a connection's `source:` block into it.
	NewConfig func() any
	// Build makes a Source from a decoded, validated config.
	Build func(cfg any, env Env) (Source, error)
	// WebhookDeal, set for a source whose webhooks are thin (its runs read
	// the deal from the CRM), is a deal read from the CRM as a webhook
	// event of it carries it (the WebhookShaper of its built sources):
	// for a dry run that judges the trigger as the intake would without
	// building the source, whose credentials may not be at hand. Nil for a
	// source whose webhooks carry whole deals. See RegisterWebhookDeal.
	WebhookDeal func(model.Deal) model.Deal
}

// TargetSpec describes a target type to the registry.
type TargetSpec struct {
	Name      string
	Summary   string
	NewConfig func() any
	Build     func(cfg any, env Env) (Target, error)
}

// IDsPerAccount is implemented by the config of a source whose CRM
// numbers deals and companies per account, so that two of its accounts use
// the same ids (Pipedrive counts both from 1 in every company).
// AccountsWithOwnIDs lists the accounts the config names.
type IDsPerAccount interface {
	AccountsWithOwnIDs() []string
}

// ConfiguredAccounts is implemented by the config of a source whose
// events name the CRM account they come from (a HubSpot portal, a
// Salesforce org, a Pipedrive company). CRMAccounts says what an account
// is ("HubSpot portal") and maps each account the config names, as it
// writes it, to a key that is one for every spelling of one account (a
// Salesforce org's 15- and 18-character ids): `config check` warns of two
// connections that list one account and invoice it into one target.
type ConfiguredAccounts interface {
	CRMAccounts() (kind string, keys map[string]string)
}

// ConfigProblem is a problem a connector's config check finds: Key is
// the key under the source's or target's block ("account_id"), Message
// what is wrong, as a config problem words it.
type ConfigProblem struct {
	Key, Message string
}

// ConfigChecker is implemented by the config of a source or target whose
// values have rules the validate tags cannot say (the form of a NetSuite
// account id): CheckConfig runs after the tags' checks, on a decoded
// config, and its problems are the config's (`config check` exits 2,
// naming the key), not found only when the connector is built or called.
type ConfigChecker interface {
	CheckConfig() []ConfigProblem
}

// AccountMatcher is implemented by the config of a source (Salesforce)
// whose accounts' spellings are not one key each: a 15-character org id
// names every org whose 18-character id begins with it. SameCRMAccount
// says whether two accounts, as the configs write them, are one; without
// it, two accounts are one when their CRMAccounts keys are equal.
type AccountMatcher interface {
	SameCRMAccount(a, b string) bool
}

var (
	mu      sync.RWMutex
	sources = map[string]SourceSpec{}
	targets = map[string]TargetSpec{}
)

// RegisterSource makes a source type available by name. Connector packages
// call it from init; registering a name twice panics.
func RegisterSource(s SourceSpec) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := sources[s.Name]; dup {
		panic(fmt.Sprintf("connectors: source %q registered twice", s.Name))
	}
	sources[s.Name] = s
}

// RegisterWebhookDeal sets the WebhookDeal of the source type name,
// which must be registered already (in the same init, after it).
func RegisterWebhookDeal(name string, webhookDeal func(model.Deal) model.Deal) {
	mu.Lock()
	defer mu.Unlock()
	s, ok := sources[name]
	if !ok {
		panic(fmt.Sprintf("connectors: WebhookDeal of source %q, which is not registered", name))
	}
	s.WebhookDeal = webhookDeal
	sources[name] = s
}

// RegisterTarget makes a target type available by name.
func RegisterTarget(t TargetSpec) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := targets[t.Name]; dup {
		panic(fmt.Sprintf("connectors: target %q registered twice", t.Name))
	}
	targets[t.Name] = t
}

// LookupSource finds a registered source type.
func LookupSource(name string) (SourceSpec, bool) {
	mu.RLock()
	defer mu.RUnlock()
	s, ok := sources[name]
	return s, ok
}

// LookupTarget finds a registered target type.
func LookupTarget(name string) (TargetSpec, bool) {
	mu.RLock()
	defer mu.RUnlock()
	t, ok := targets[name]
	return t, ok
}

// SourceNames lists the registered source types, sorted.
func SourceNames() []string {
	mu.RLock()
	defer mu.RUnlock()
	return sortedKeys(sources)
}

// TargetNames lists the registered target types, sorted.
func TargetNames() []string {
	mu.RLock()
	defer mu.RUnlock()
	return sortedKeys(targets)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// RegisterSourceType registers a source type whose config struct is C:
// the config package decodes a connection's `source:` block into a copy of
// defaults() and build receives it. It saves every connector the same
// type switch.
func RegisterSourceType[C any, S Source](name, summary string, defaults func() C, build func(C, Env) (S, error)) {
	RegisterSource(SourceSpec{
		Name:      name,
		Summary:   summary,
		NewConfig: func() any { c := defaults(); return &c },
		Build: func(cfg any, env Env) (Source, error) {
			c, err := configOf[C](name, cfg)
			if err != nil {
				return nil, err
			}
			s, err := build(*c, env)
			if err != nil {
				return nil, err // not a typed nil in an interface
			}
			return s, nil
		},
	})
}

// RegisterTargetType registers a target type whose config struct is C.
func RegisterTargetType[C any, T Target](name, summary string, defaults func() C, build func(C, Env) (T, error)) {
	RegisterTarget(TargetSpec{
		Name:      name,
		Summary:   summary,
		NewConfig: func() any { c := defaults(); return &c },
		Build: func(cfg any, env Env) (Target, error) {
			c, err := configOf[C](name, cfg)
			if err != nil {
				return nil, err
			}
			t, err := build(*c, env)
			if err != nil {
				return nil, err
			}
			return t, nil
		},
	})
}

func configOf[C any](name string, cfg any) (*C, error) {
	switch v := cfg.(type) {
	case *C:
		if v != nil {
			return v, nil
		}
	case C:
		return &v, nil
	}
	return nil, fmt.Errorf("%s: config is %T, want %T", name, cfg, new(C))
}
