package erpkit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
