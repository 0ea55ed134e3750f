// Package testconfig gives a test a dealsync config written from its YAML
// text: the file dealsync.yaml in a folder of the test's, loaded and its
// connections built as serve and worker do, the test failing where a step
// fails. A test that asserts a config error writes the file with Write and
// calls config.Load or connections.Build itself.
package testconfig

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
)

// Write writes yaml as dealsync.yaml in dir (a new temporary folder of t's
// when dir is "") and returns the file's path. Relative paths in the
// config (mapping files, key files) are read from dir.
func Write(t testing.TB, dir, yaml string) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "dealsync.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Build writes yaml as Write does, loads it with opts and builds its
// connections with env.
func Build(t testing.TB, dir, yaml string, env connectors.Env, opts ...config.Option) (*config.Config, *connections.Set) {
	t.Helper()
	cfg, err := config.Load(Write(t, dir, yaml), opts...)
	if err != nil {
		t.Fatal(err)
	}
	set, err := connections.Build(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, set
}
