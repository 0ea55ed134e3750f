package erpkit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dealsync/dealsync/connectors"
)

// A token or link file that cannot be read or written is the worker
// host's problem, typed as such (activities retry it as
// LocalFileUnavailable, not as the ERP's outage) and naming the file.
func TestStoreFailuresAreLocalFileErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	notADir := filepath.Join(dir, "plain")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "damaged.json")
	if err := os.WriteFile(damaged, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(name string, err error, what, path string) {
		t.Helper()
		var lf *connectors.LocalFileError
		if !errors.As(err, &lf) || lf.What != what || lf.Path != path || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want a %s error naming %s", name, err, what, path)
		}
	}
	under := filepath.Join(notADir, "links.json") // a path under a regular file
	_, _, err := (&FileLinkStore{Path: under}).Get(ctx, "k")
	check("link read", err, "link store", under)
	check("link write", (&FileLinkStore{Path: under}).Put(ctx, "k", "v"), "link store", under)
	_, _, err = (&FileLinkStore{Path: damaged}).Get(ctx, "k")
	check("damaged link file", err, "link store", damaged)

	tokens := filepath.Join(notADir, "token.json")
	_, err = (&FileTokenStore{Path: tokens}).Load(ctx)
	check("token read", err, "token store", tokens)
	check("token write", (&FileTokenStore{Path: tokens}).Save(ctx, &oauth2.Token{RefreshToken: "r"}), "token store", tokens)
	_, err = (&FileTokenStore{Path: tokens}).Lock(ctx)
	check("token lock", err, "token store", tokens)
	_, err = (&FileTokenStore{Path: damaged}).Load(ctx)
	check("damaged token file", err, "token store", damaged)

	// A store that does not exist yet is empty, not an error.
	if _, ok, err := (&FileLinkStore{Path: filepath.Join(dir, "new.json")}).Get(ctx, "k"); ok || err != nil {
		t.Errorf("new link store: %v %v", ok, err)
	}
}

// A token or link file whose directory does not exist yet is created with
// it, lock file included (the lock used to be opened first, and failed).
func TestStoresInADirectoryNotMadeYet(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "var", "lib", "dealsync")
	links := &FileLinkStore{Path: filepath.Join(dir, "links.json")}
	if err := links.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("link put: %v", err)
	}
	if got, ok, err := links.Get(ctx, "k"); err != nil || !ok || got != "v" {
		t.Fatalf("link get: %q %v %v", got, ok, err)
	}
	tokens := &FileTokenStore{Path: filepath.Join(dir, "tokens", "token.json")}
	unlock, err := tokens.Lock(ctx)
	if err != nil {
		t.Fatalf("token lock: %v", err)
	}
	unlock()
}

// Waiting for the lock another holder has ends with the caller's context.
func TestLockWaitsNoLongerThanTheContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.json")
	store := &FileTokenStore{Path: path}
	unlock, err := store.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		// Another open file description: flock(2) conflicts with it even
		// within one process.
		u, err := store.Lock(ctx)
		if u != nil {
			u()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the context's deadline", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the lock was waited for past the context's deadline")
	}
}
