package mapping

import (
	"fmt"
	"sync"
)

// Snapshot is a mapping file's exact content as a run started with it. It
// travels in the run's input (and so its history), so the run maps with
// that version from start to end, even after the file changed, a worker
// restarted or another worker with another version picked the step up.
type Snapshot struct {
	Name   string `json:"name"`
	Hash   string `json:"hash"`
	Path   string `json:"path"`
	Source []byte `json:"source"`
}

// Snapshotter is implemented by mappers defined by a file. The built-in
// mapping is versioned by dealsync's code and needs no snapshot.
type Snapshotter interface {
	Snapshot() *Snapshot
}

// compiledSnapshots caches compiled snapshots by hash: a version is
// compiled once per process, however many runs use it.
var compiledSnapshots sync.Map // hash → *File

// FromSnapshot compiles (once per process) the mapping of a snapshot.
func FromSnapshot(s *Snapshot) (Mapper, error) {
	if m, ok := compiledSnapshots.Load(s.Hash); ok {
		return m.(*File), nil
	}
	if got := HashOf(s.Source); got != s.Hash {
		return nil, fmt.Errorf("mapping %q snapshot: content hash %s does not match %s", s.Name, got, s.Hash)
	}
	// A run's version is compiled as it was accepted when the run
	// started: checks added to Parse since (the size bound, the
	// re-check of call arguments) do not fail runs already under way.
	f, err := parse(s.Path, s.Source, false)
	if err != nil {
		return nil, fmt.Errorf("mapping %q (hash %s) no longer compiles: %w", s.Name, s.Hash, err)
	}
	compiledSnapshots.Store(s.Hash, f)
	return f, nil
}
