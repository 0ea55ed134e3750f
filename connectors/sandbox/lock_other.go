//go:build !unix

package sandbox

import "os"

// lockExclusive is a no-op where flock(2) is unavailable: run one process
// per journal there.
func lockExclusive(*os.File) error { return nil }
