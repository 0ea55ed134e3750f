package mapping

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Set is a loaded, immutable collection of mapping files by name.
type Set struct {
	byName map[string]*File
}

// Get returns the named mapping file.
func (s *Set) Get(name string) (*File, bool) {
	if s == nil {
		return nil, false
	}
	m, ok := s.byName[name]
	return m, ok
}

// Names lists the mappings, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Mapper returns the Mapper called name: DefaultName (or "") is the
// built-in mapping, anything else a mapping file of the set.
func (s *Set) Mapper(name string) (Mapper, bool) {
	if name == "" || name == DefaultName {
		return Builtin, true
	}
	m, ok := s.Get(name)
	if !ok {
		return nil, false
	}
	return m, true
}

// Trigger returns the trigger of the named mapping for won stages.
func (s *Set) Trigger(name string, wonStages []string) (Trigger, bool) {
	if name == "" || name == DefaultName {
		return StageTrigger{WonStages: wonStages}, true
	}
	m, ok := s.Get(name)
	if !ok {
		return nil, false
	}
	return m.Trigger(wonStages), true
}

// Sources says where mapping files are: listed files and every *.yaml and
// *.yml file of a directory (not recursive, not hidden: a name that starts
// with a dot). Paths are used as given.
type Sources struct {
	Files []string
	Dir   string
}

// IsZero reports whether no source is configured.
func (src Sources) IsZero() bool { return len(src.Files) == 0 && src.Dir == "" }

// Paths lists the files, listed files first, then the directory's sorted;
// a file both listed and in the directory (or listed twice) once.
func (src Sources) Paths() ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		key := filepath.Clean(p)
		if abs, err := filepath.Abs(p); err == nil {
			key = abs
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, p)
		}
	}
	for _, f := range src.Files {
		add(f)
	}
	if src.Dir != "" {
		entries, err := os.ReadDir(src.Dir)
		if err != nil {
			return out, err
		}
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			// Hidden files are not mappings: an editor's lock or swap
			// file (.#std.yaml, .std.yaml.swp) beside the one edited.
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && (ext == ".yaml" || ext == ".yml") {
				add(filepath.Join(src.Dir, e.Name()))
			}
		}
	}
	return out, nil
}

// Load reads and compiles every mapping file of src. It returns the set of
// the files that loaded and, when any did not, a *LoadError listing every
// problem of every file (the set is then partial: use it only to report).
func Load(src Sources) (*Set, error) {
	set, _, err := load(src)
	return set, err
}

func load(src Sources) (*Set, [32]byte, error) {
	set := &Set{byName: map[string]*File{}}
	sum := contentSum(src)
	paths, err := src.Paths()
	var problems []Problem
	if err != nil {
		problems = append(problems, Problem{File: src.Dir, Message: err.Error(), Unread: true})
	}
	where := map[string]string{}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			problems = append(problems, Problem{File: path, Message: "cannot read: " + errMessage(err), Unread: true})
			continue
		}
		m, err := Parse(path, data)
		if err != nil {
			var le *LoadError
			if errors.As(err, &le) {
				problems = append(problems, le.Problems...)
			} else {
				problems = append(problems, Problem{File: path, Message: err.Error()})
			}
			continue
		}
		if prev, dup := where[m.name]; dup {
			problems = append(problems, Problem{File: path, Key: "name", Message: fmt.Sprintf("mapping %q is also defined in %s", m.name, prev)})
			continue
		}
		where[m.name] = path
		set.byName[m.name] = m
	}
	if len(problems) > 0 {
		return set, sum, &LoadError{Problems: problems}
	}
	return set, sum, nil
}

func errMessage(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Store holds the current mapping set and reloads it from its sources for
// new runs. A reload that fails (a file does not compile, or a mapping a
// connection needs disappeared) keeps the previous set and logs every
// problem. Runs are unaffected either way: each records the mapping
// version it used (see activities.MapDeal).
type Store struct {
	src      Sources
	required []string
	logger   *slog.Logger
	interval time.Duration

	cur atomic.Pointer[Set]

	mu        sync.Mutex // serialises reloads
	lastCheck time.Time
	lastSum   [32]byte // content of the last attempted load
	failing   bool     // the last reload failed: the next success says so
}

// StoreOptions configure a Store.
type StoreOptions struct {
	// Required are mapping names that must exist in every accepted set
	// (the ones connections use).
	Required []string
	// Interval is the least time between two checks of the files by
	// MaybeReload; 0 checks on every call.
	Interval time.Duration
	Logger   *slog.Logger
}

// NewStore loads src. It fails, with a *LoadError, when any file does not
// load or a required mapping is missing.
func NewStore(src Sources, o StoreOptions) (*Store, error) {
	// Each name once: several connections using one mapping that
	// disappeared is one problem.
	required := slices.Compact(slices.Sorted(slices.Values(o.Required)))
	s := &Store{src: src, required: required, logger: o.Logger, interval: o.Interval}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	set, sum, err := s.loadChecked()
	if err != nil {
		return nil, err
	}
	s.cur.Store(set)
	s.lastSum, s.lastCheck = sum, time.Now()
	return s, nil
}

// Current is the set new runs use.
func (s *Store) Current() *Set { return s.cur.Load() }

func (s *Store) loadChecked() (*Set, [32]byte, error) {
	set, sum, err := load(s.src)
	if err != nil {
		return set, sum, err
	}
	var missing []Problem
	for _, name := range s.required {
		if _, ok := set.Mapper(name); !ok {
			missing = append(missing, Problem{File: strings.Join(mustPaths(s.src), ", "),
				Message: fmt.Sprintf("mapping %q is used by a connection but no longer defined", name)})
		}
	}
	if len(missing) > 0 {
		return set, sum, &LoadError{Problems: missing}
	}
	return set, sum, nil
}

func mustPaths(src Sources) []string {
	p, _ := src.Paths()
	if len(p) == 0 && src.Dir != "" {
		return []string{src.Dir}
	}
	return p
}

// Reload reads the files again. On success the new set is current for new
// runs; on failure the previous one stays, every problem is logged and the
// *LoadError returned.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked()
}

func (s *Store) reloadLocked() error {
	set, sum, err := s.loadChecked()
	s.lastSum, s.lastCheck = sum, time.Now()
	if err != nil {
		var le *LoadError
		if errors.As(err, &le) {
			for _, p := range le.Problems {
				s.logger.Error("mapping reload failed: keeping the previous mappings", "problem", p.String())
			}
		} else {
			s.logger.Error("mapping reload failed: keeping the previous mappings", "error", err.Error())
		}
		s.failing = true
		return err
	}
	if s.failing {
		// The fix of a failed edit is confirmed, even when it restores
		// the mappings in use (no "mapping loaded" line follows then).
		s.failing = false
		s.logger.Info("mappings reloaded: the problems of the last reload are gone", "mappings", strings.Join(set.Names(), ", "))
	}
	old := s.cur.Swap(set)
	for _, name := range set.Names() {
		m, _ := set.Get(name)
		if prev, ok := old.Get(name); !ok || prev.Hash() != m.Hash() {
			s.logger.Info("mapping loaded", "mapping", name, "hash", m.Hash(), "file", m.Path())
			for _, w := range m.Warnings() {
				s.logger.Warn(w.String(), "mapping", name)
			}
		}
	}
	return nil
}

// MaybeReload reloads when the interval has passed since the last check
// and the files' content differs from what was last loaded (successfully
// or not: a broken edit is reported once, not at every check). It never
// blocks on a reload in progress. It reports whether a new set became
// current.
func (s *Store) MaybeReload() bool {
	if !s.mu.TryLock() {
		return false
	}
	defer s.mu.Unlock()
	if s.interval > 0 && time.Since(s.lastCheck) < s.interval {
		return false
	}
	s.lastCheck = time.Now()
	if contentSum(s.src) == s.lastSum {
		return false
	}
	before := s.cur.Load()
	_ = s.reloadLocked()
	return s.cur.Load() != before
}

// contentSum hashes the files' paths and content (or read errors), as a
// cheap change check that does not compile anything.
func contentSum(src Sources) [32]byte {
	h := sha256.New()
	paths, err := src.Paths()
	if err != nil {
		fmt.Fprintf(h, "dir error %v\x00", err)
	}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(h, "%s\x00error %v\x00", path, err)
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(data))
		h.Write(data)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}
