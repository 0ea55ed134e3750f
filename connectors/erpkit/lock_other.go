//go:build !unix

package erpkit

import "context"

// lockFile is a no-op where flock(2) is unavailable: run one worker per
// connection there.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
