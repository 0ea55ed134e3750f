// Package sharedfiles finds, for tests, the vendors' material kept beside
// the repository in ../shared (API specs, webhook formats and samples).
// Tests skip when that folder is absent; a file missing from a folder that
// is there fails them, since it means a wrong name, not a missing setup.
// The files are read in place, never copied into the repository.
package sharedfiles

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Dir is ../shared/sub beside the repository's root (the folder with
// go.mod above the working directory). The test skips when it is absent.
func Dir(t testing.TB, sub string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("no working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (go.mod) not found above the working directory")
		}
		dir = parent
	}
	shared := filepath.Join(filepath.Dir(dir), "shared", sub)
	switch _, err := os.Stat(shared); {
	case errors.Is(err, fs.ErrNotExist):
		t.Skipf("shared material not available: %s", shared)
	case err != nil:
		t.Fatal(err)
	}
	return shared
}

// Path is the file rel of ../shared/sub; it must exist when the folder does.
func Path(t testing.TB, sub, rel string) string {
	t.Helper()
	p := filepath.Join(Dir(t, sub), rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return p
}

// Webhook reads the webhook sample name of ../shared/webhooks.
func Webhook(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(Path(t, "webhooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
