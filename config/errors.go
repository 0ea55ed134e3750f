package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with the configuration.
type Problem struct {
	// Key is the dotted key path as written in the YAML file, e.g.
	// "connections.demo.source.secret" or "intake.max_body_bytes".
	Key string
	// Message says what is wrong. It never contains a secret's value.
	Message string
	// InMappingFile says that the problem is in the text of a mapping
	// file (it does not compile, or defines a name another file does):
	// the mapping's to fix, not the config's. A mapping file or
	// mappings.dir that cannot be read is the config's.
	InMappingFile bool
}

func (p Problem) String() string {
	if p.Key == "" {
		return p.Message
	}
	return p.Key + ": " + p.Message
}

// Error lists every problem found in a configuration.
type Error struct {
	// File is the configuration file ("" when there was none).
	File     string
	Problems []Problem
	// IgnoredEnv are the environment variables that set no key (see
	// Config.IgnoredEnv): the DEALSYNC_* ones, and those whose prefix is
	// misspelt or not in capitals but that are otherwise a key's
	// (DEALSYN_INTAKE_LISTEN, dealsync_intake_listen). A misspelt one
	// often explains a problem (a required key the variable was meant to
	// set), so they are listed after the problems.
	IgnoredEnv []string
	// envHints: see Config.envHints.
	envHints map[string]string
}

// IgnoredEnvWarning says that the environment variable name sets no key;
// closest, when not "", is the variable of a key it looks like a typo of.
func IgnoredEnvWarning(name, closest string) string {
	if closest != "" {
		why := ""
		switch {
		case !strings.HasPrefix(name, EnvPrefix+"_"):
			why = " (only the variables whose names start with " + EnvPrefix + "_, in capitals, are read)"
		case strings.EqualFold(name, closest):
			why = " (variable names are case-sensitive: the config's are in capitals)"
		}
		return fmt.Sprintf("environment variable %s sets no config key and is ignored: did you mean %s?%s", name, closest, why)
	}
	return fmt.Sprintf("environment variable %s sets no config key and is ignored: is it misspelt, does it set a key of a connection or target the config file does not have (the environment only overrides entries the file defines), or a map or a list without a default (such as a source's accounts or legacy_signatures: those are set in the file only)?", name)
}

// Error lists the problems one per line, sorted by key.
func (e *Error) Error() string {
	ps := append([]Problem(nil), e.Problems...)
	sortProblems(ps)
	var b strings.Builder
	b.WriteString("invalid configuration")
	if e.File != "" {
		fmt.Fprintf(&b, " in %s", e.File)
	}
	n := len(ps)
	if n == 1 {
		b.WriteString(" (1 problem):")
	} else {
		fmt.Fprintf(&b, " (%d problems):", n)
	}
	for _, p := range ps {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	for _, name := range e.IgnoredEnv {
		b.WriteString("\nnote: ")
		b.WriteString(IgnoredEnvWarning(name, e.envHints[name]))
	}
	return b.String()
}

// Has reports whether a problem was found at key.
func (e *Error) Has(key string) bool {
	for _, p := range e.Problems {
		if p.Key == key {
			return true
		}
	}
	return false
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Key != ps[j].Key {
			return ps[i].Key < ps[j].Key
		}
		return ps[i].Message < ps[j].Message
	})
}

// problems collects Problems, at most one identical message per key, and
// remembers which keys failed to decode so that validation does not report
// them a second time.
type problems struct {
	list   []Problem
	failed map[string]bool
	// ofFile are the indexes in list of problems at a list's item that
	// are about what the item names (a mapping file that cannot be read
	// or does not compile), not about the item as written: scalarLists
	// leaves them where they are.
	ofFile map[int]bool
}

func (ps *problems) add(key, msg string) {
	ps.addProblem(Problem{Key: key, Message: msg})
}

// addProblem is add of a whole Problem.
func (ps *problems) addProblem(p Problem) {
	ps.addAt(p)
}

// addAt is addProblem, and says at which index of list p is.
func (ps *problems) addAt(p Problem) int {
	for i, q := range ps.list {
		if q.Key == p.Key && q.Message == p.Message {
			return i
		}
	}
	ps.list = append(ps.list, p)
	return len(ps.list) - 1
}

// addOfFile is addProblem of a problem of the file a list's item names
// (see problems.ofFile).
func (ps *problems) addOfFile(p Problem) {
	if ps.ofFile == nil {
		ps.ofFile = map[int]bool{}
	}
	ps.ofFile[ps.addAt(p)] = true
}

// addFailed records a problem that makes the value at key unusable.
func (ps *problems) addFailed(key, msg string) {
	if ps.failed == nil {
		ps.failed = map[string]bool{}
	}
	ps.failed[key] = true
	ps.add(key, msg)
}

// failedUnder reports whether a key under key failed to decode.
func (ps *problems) failedUnder(key string) bool {
	for k := range ps.failed {
		if strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[") {
			return true
		}
	}
	return false
}

// isFailed reports whether key or one of its parents failed to decode.
func (ps *problems) isFailed(key string) bool {
	for k := key; ; {
		if ps.failed[k] {
			return true
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			return false
		}
		k = k[:i]
	}
}
