// Package testenv clears the DEALSYNC_* environment for tests: a test
// binary that imports it (for its side effect) loads configs as the tests
// wrote them, whatever the developer's shell exports (README's
// DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET, a DEALSYNC_LOG_LEVEL), so `go
// test ./...` passes on any machine. DEALSYNC_RECORD_HISTORIES, which asks
// the end-to-end tests to record, and the tests' own DEALSYNC_TEST_*
// settings (the PostgreSQL server of the cluster test) are kept.
package testenv

import (
	"os"
	"strings"
)

func init() {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "DEALSYNC_") && name != "DEALSYNC_RECORD_HISTORIES" && !strings.HasPrefix(name, "DEALSYNC_TEST_") {
			_ = os.Unsetenv(name)
		}
	}
}
