//go:build !unix

package erpkit

// lockFile is a no-op where flock(2) is unavailable: run one worker per
// connection there.
func lockFile(path string) (func(), error) { return func() {}, nil }
