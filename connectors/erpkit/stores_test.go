package erpkit

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
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

// memStore is a token store in memory whose next saves can be made to fail.
type memStore struct {
	tok       *oauth2.Token
	failSaves int
	damaged   bool // Load fails until a Save
}

func (m *memStore) Load(context.Context) (*oauth2.Token, error) {
	if m.damaged {
		return nil, errors.New("not a token file")
	}
	if m.tok == nil {
		return nil, ErrNoToken
	}
	t := *m.tok
	return &t, nil
}

func (m *memStore) Save(_ context.Context, tok *oauth2.Token) error {
	if m.failSaves > 0 {
		m.failSaves--
		return errors.New("disk full")
	}
	t := *tok
	m.tok, m.damaged = &t, false
	return nil
}

// A rotated refresh token this process could not save is saved later, but
// not over a newer one another process saved meanwhile (the vendor let it
// spend the same old token again): the newest refresh token is kept.
func TestPendingTokenDoesNotOverwriteANewerOne(t *testing.T) {
	old := saveBackoff
	saveBackoff = nil
	t.Cleanup(func() { saveBackoff = old })
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"AT-2","refresh_token":"RT-2","expires_in":3600,"token_type":"bearer"}`)
	}))
	defer endpoint.Close()
	store := &memStore{tok: &oauth2.Token{RefreshToken: "RT-1"}, failSaves: 1}
	src := &RefreshingSource{Config: &oauth2.Config{Endpoint: oauth2.Endpoint{TokenURL: endpoint.URL}}, Store: store, Service: "vendor"}
	ctx := context.Background()
	if _, err := src.Token(ctx); err == nil {
		t.Fatal("the save failed, yet the token was handed out")
	}
	// Another process refreshes with RT-1 too, and saves RT-3.
	store.tok = &oauth2.Token{AccessToken: "AT-3", RefreshToken: "RT-3", Expiry: time.Now().Add(time.Hour)}
	tok, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if store.tok.RefreshToken != "RT-3" || tok.AccessToken != "AT-3" {
		t.Fatalf("store holds %s, token %s: the newer refresh token was overwritten", store.tok.RefreshToken, tok.AccessToken)
	}

	// A store that does not read (damaged while being mended) does not
	// keep the pending token from being saved over it.
	store3 := &memStore{tok: &oauth2.Token{RefreshToken: "RT-1"}, failSaves: 1}
	src3 := &RefreshingSource{Config: &oauth2.Config{Endpoint: oauth2.Endpoint{TokenURL: endpoint.URL}}, Store: store3, Service: "vendor"}
	_, _ = src3.Token(ctx)
	store3.damaged = true
	if tok, err := src3.Token(ctx); err != nil || store3.tok.RefreshToken != "RT-2" || tok.AccessToken != "AT-2" {
		t.Fatalf("pending save over a damaged file: %v, store %s", err, store3.tok.RefreshToken)
	}

	// Without another process, the pending token is saved.
	store2 := &memStore{tok: &oauth2.Token{RefreshToken: "RT-1"}, failSaves: 1}
	src2 := &RefreshingSource{Config: &oauth2.Config{Endpoint: oauth2.Endpoint{TokenURL: endpoint.URL}}, Store: store2, Service: "vendor"}
	_, _ = src2.Token(ctx)
	if tok, err := src2.Token(ctx); err != nil || store2.tok.RefreshToken != "RT-2" || tok.AccessToken != "AT-2" {
		t.Fatalf("pending save: %v, store %s", err, store2.tok.RefreshToken)
	}
}
