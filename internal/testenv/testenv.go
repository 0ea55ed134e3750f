// Package testenv clears the DEALSYNC_* environment for tests: a test
// binary that imports it (for its side effect) loads configs as the tests
// wrote them, whatever the developer's shell exports (README's
// DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET, a DEALSYNC_LOG_LEVEL), so `go
// test ./...` passes on any machine. DEALSYNC_RECORD_HISTORIES, which asks
// the end-to-end tests to record, is kept.
package testenv

import (
	"os"
	"strings"
)

func init() {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "DEALSYNC_") && name != "DEALSYNC_RECORD_HISTORIES" {
			_ = os.Unsetenv(name)
		}
	}
}
