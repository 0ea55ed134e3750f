// Package testpg gives a test the PostgreSQL server of the tests that run
// Temporal on PostgreSQL, as a production cluster does: the address
// DEALSYNC_TEST_POSTGRES_ADDR (default 127.0.0.1:5432, where CI has one),
// the user DEALSYNC_TEST_POSTGRES_USER (default postgres) and the password
// DEALSYNC_TEST_POSTGRES_PASSWORD. A test skips when nothing answers there.
package testpg

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dealsync/dealsync/devserver"
)

// Postgres is the server's settings, with two databases of the test's own
// to create (the store's and visibility's, which the test drops with Drop
// once its Temporal server stopped). It skips t when nothing answers on
// the server's address.
func Postgres(t testing.TB) *devserver.Postgres {
	t.Helper()
	pg := &devserver.Postgres{
		Addr:     envOr("DEALSYNC_TEST_POSTGRES_ADDR", "127.0.0.1:5432"),
		User:     envOr("DEALSYNC_TEST_POSTGRES_USER", "postgres"),
		Password: os.Getenv("DEALSYNC_TEST_POSTGRES_PASSWORD"),
	}
	if !devserver.PostgresReachable(pg.Addr) {
		t.Skipf("no PostgreSQL server on %s", pg.Addr)
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	pg.Database, pg.VisibilityDatabase = "dealsync_test_"+suffix, "dealsync_test_"+suffix+"_visibility"
	return pg
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
