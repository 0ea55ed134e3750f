// Package connections builds the live connections (source, trigger,
// mapping, target) from a validated config and hands them to the intake and
// to the activities.
package connections

import (
	"errors"
	"fmt"
	"sort"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/mapping"
)

// Connection is one configured CRM → ERP pipe.
type Connection struct {
	Name       string
	SourceType string
	Source     connectors.Source
	Trigger    mapping.StageTrigger
	Mapper     mapping.Mapper
	TargetName string
	Target     connectors.Target
}

// Set is every connection of a config, by name.
type Set struct {
	byName map[string]*Connection
}

// Build instantiates every connection's source and target through the
// connector registry. cfg must have been loaded by config.Load, which has
// decoded and validated each component's Spec.
func Build(cfg *config.Config, env connectors.Env) (*Set, error) {
	targets := map[string]connectors.Target{}
	var errs []error
	for name, tc := range cfg.Targets {
		spec, ok := connectors.LookupTarget(tc.Type)
		if !ok {
			errs = append(errs, fmt.Errorf("targets.%s: unknown type %q", name, tc.Type))
			continue
		}
		t, err := spec.Build(tc.Spec, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("targets.%s: %w", name, err))
			continue
		}
		targets[name] = t
	}
	s := &Set{byName: map[string]*Connection{}}
	for name, cc := range cfg.Connections {
		spec, ok := connectors.LookupSource(cc.Source.Type)
		if !ok {
			errs = append(errs, fmt.Errorf("connections.%s.source: unknown type %q", name, cc.Source.Type))
			continue
		}
		src, err := spec.Build(cc.Source.Spec, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("connections.%s.source: %w", name, err))
			continue
		}
		target, ok := targets[cc.Target]
		if !ok {
			errs = append(errs, fmt.Errorf("connections.%s.target: no usable target %q", name, cc.Target))
			continue
		}
		s.byName[name] = &Connection{
			Name:       name,
			SourceType: cc.Source.Type,
			Source:     src,
			Trigger:    mapping.StageTrigger{WonStages: cc.Trigger.WonStages},
			Mapper:     mapping.Default{PaymentTermsDays: 30},
			TargetName: cc.Target,
			Target:     target,
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// Get returns the named connection.
func (s *Set) Get(name string) (*Connection, bool) {
	c, ok := s.byName[name]
	return c, ok
}

// Names lists the connections, sorted.
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Resolve implements activities.Resolver.
func (s *Set) Resolve(name string) (activities.Connection, bool) {
	c, ok := s.byName[name]
	if !ok {
		return activities.Connection{}, false
	}
	return activities.Connection{Mapper: c.Mapper, Target: c.Target}, true
}
