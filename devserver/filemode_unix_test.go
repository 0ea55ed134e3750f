//go:build unix

package devserver

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The SQLite databases of a data dir that existed already, readable by
// every user (0755), are made readable by their owner only, and so are
// those an earlier release left readable by every user: they hold the
// runs, deals' payloads among them.
func TestDatabasesAreReadableByTheirOwnerOnly(t *testing.T) {
	old := syscall.Umask(0o022) // the common umask, whatever the test's
	t.Cleanup(func() { syscall.Umask(old) })
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	o := Options{DatabaseFile: filepath.Join(dir, "temporal.db"), Namespace: "default", Logger: slog.New(slog.DiscardHandler)}
	check := func(when string) {
		t.Helper()
		files, err := filepath.Glob(filepath.Join(dir, "temporal*"))
		if err != nil || len(files) < 2 {
			t.Fatalf("%s: files %v (%v); want the database and the visibility database", when, files, err)
		}
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if mode := fi.Mode().Perm(); mode&0o077 != 0 {
				t.Errorf("%s: %s has mode %v; want no access but its owner's", when, filepath.Base(f), mode)
			}
		}
	}
	if _, _, err := o.sqlConfigs(); err != nil {
		t.Fatal(err)
	}
	check("a new database in an existing dir")

	// A data dir of an earlier release, its files readable by all.
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chmod(path, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.sqlConfigs(); err != nil {
		t.Fatal(err)
	}
	check("an earlier release's database")
}

// A database file whose mode cannot be changed (another user's, in a
// shared data dir; a filesystem without Unix modes) does not stop the
// server: it starts on it as before, and the warning names the file.
func TestADatabaseWhoseModeCannotBeChangedIsWarnedOf(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chmod = os.Chmod })
	chmod = func(name string, mode os.FileMode) error {
		return &os.PathError{Op: "chmod", Path: name, Err: syscall.EPERM}
	}
	var logs strings.Builder
	o := Options{DatabaseFile: filepath.Join(dir, "temporal.db"), Namespace: "default", Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if _, _, err := o.sqlConfigs(); err != nil {
		t.Fatalf("a database whose mode cannot be changed: %v, want the server to start on it", err)
	}
	for _, f := range []string{"temporal.db", "temporal-visibility.db"} {
		if !strings.Contains(logs.String(), "cannot make a database file readable by its owner only") || !strings.Contains(logs.String(), filepath.Join(dir, f)) {
			t.Errorf("the log does not warn of %s:\n%s", f, logs.String())
		}
	}
}
