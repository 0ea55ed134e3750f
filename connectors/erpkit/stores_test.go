package erpkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// The token endpoint's refusals say what to do. invalid_grant: the
// refresh token in token_file is dead, and since the configured
// refresh_token only seeds a missing file, the message names the file and
// both ways to put a new token to use; each of them works. invalid_client:
// the app's credentials, not the refresh token, are at fault.
func TestRefusedRefreshSaysWhatToDo(t *testing.T) {
	ctx := context.Background()
	valid := "RT-new"
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if id, secret, _ := r.BasicAuth(); id != "app" || secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client","error_description":"client authentication failed"}`)
			return
		}
		if r.FormValue("refresh_token") != valid {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		io.WriteString(w, `{"access_token":"AT","refresh_token":"`+valid+`","expires_in":3600,"token_type":"bearer"}`)
	}))
	defer endpoint.Close()
	newSource := func(t *testing.T, store TokenStore, clientSecret, seed string) *RefreshingSource {
		t.Helper()
		return &RefreshingSource{Config: &oauth2.Config{ClientID: "app", ClientSecret: clientSecret,
			Endpoint: oauth2.Endpoint{TokenURL: endpoint.URL, AuthStyle: oauth2.AuthStyleInHeader}},
			Store: store, Seed: seed, Service: "vendor", Connection: "vendor org 42"}
	}
	refused := func(t *testing.T, err error, want, not []string) {
		t.Helper()
		if cl, _ := connectors.Classify(err); cl != connectors.Unauthorized {
			t.Fatalf("err = %v (class %v), want Unauthorized", err, cl)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("message %q lacks %q", err, w)
			}
		}
		for _, n := range not {
			if strings.Contains(err.Error(), n) {
				t.Errorf("message %q says %q", err, n)
			}
		}
	}
	dead := func(t *testing.T) string { // a token file whose refresh token the vendor refuses
		t.Helper()
		path := filepath.Join(t.TempDir(), "vendor.token.json")
		if err := (&FileTokenStore{Path: path}).Save(ctx, &oauth2.Token{RefreshToken: "RT-dead"}); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// "HTTP 400": the status the endpoint answered (invalid_grant), not a
	// 401 it did not send.
	reauthorize := []string{"vendor refresh token: HTTP 400", "vendor org 42", "invalid_grant", "authorize the connection again", `{"refresh_token":"<new token>"}`, "delete", "restart the workers", "a new refresh_token alone is not read"}

	t.Run("invalid_grant, new token written into the file", func(t *testing.T) {
		path := dead(t)
		src := newSource(t, &FileTokenStore{Path: path}, "s3cret", valid) // a new refresh_token is configured: not read
		_, err := src.Token(ctx)
		refused(t, err, append(reauthorize, "token_file "+path), nil)
		if err := os.WriteFile(path, []byte(`{"refresh_token":"`+valid+`"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if tok, err := src.Token(ctx); err != nil || tok.AccessToken != "AT" {
			t.Fatalf("after writing the new token into the file: %v, %v", tok, err)
		}
	})
	t.Run("invalid_grant, file deleted and worker restarted", func(t *testing.T) {
		path := dead(t)
		if _, err := newSource(t, &FileTokenStore{Path: path}, "s3cret", valid).Token(ctx); err == nil {
			t.Fatal("the dead token in the file was accepted")
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		restarted := newSource(t, &FileTokenStore{Path: path}, "s3cret", valid)
		if tok, err := restarted.Token(ctx); err != nil || tok.AccessToken != "AT" {
			t.Fatalf("after deleting the file and restarting: %v, %v", tok, err)
		}
	})
	t.Run("a stored token without a refresh token", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "vendor.token.json")
		if err := os.WriteFile(path, []byte(`{"access_token":"AT-old"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := newSource(t, &FileTokenStore{Path: path}, "s3cret", valid).Token(ctx)
		refused(t, err, []string{"has no refresh token", "token_file " + path, `{"refresh_token":"<new token>"}`, "restart the workers"}, nil)
	})
	t.Run("invalid_client", func(t *testing.T) {
		_, err := newSource(t, &FileTokenStore{Path: dead(t)}, "old-secret", valid).Token(ctx)
		refused(t, err, []string{"vendor org 42", "invalid_client: client authentication failed", "client_id and client_secret", "does not help"},
			[]string{"rejected the refresh token", "write the new refresh token"})
	})
	t.Run("invalid_grant, a store that is not a file", func(t *testing.T) {
		_, err := newSource(t, &memStore{tok: &oauth2.Token{RefreshToken: "RT-dead"}}, "s3cret", valid).Token(ctx)
		refused(t, err, []string{"authorize the connection again", "token store"}, []string{"token_file"})
	})
	// An ERP target's grant: its step's failure names the run's CRM
	// connection, so the advice names the target's settings, where the
	// fix is, and never "the connection".
	target := func(t *testing.T, store TokenStore, clientSecret, seed string) *RefreshingSource {
		src := newSource(t, store, clientSecret, seed)
		src.Target = true
		return src
	}
	t.Run("an ERP target's invalid_client", func(t *testing.T) {
		_, err := target(t, &FileTokenStore{Path: dead(t)}, "old-secret", valid).Token(ctx)
		refused(t, err, []string{"vendor org 42", "check the target's client_id and client_secret", "does not help"},
			[]string{"connection"})
	})
	t.Run("an ERP target's invalid_grant", func(t *testing.T) {
		path := dead(t)
		_, err := target(t, &FileTokenStore{Path: path}, "s3cret", valid).Token(ctx)
		refused(t, err, []string{"vendor org 42", "run the authorization-code flow again with the target's client_id",
			"the target's token_file " + path, "with the target's refresh_token set to the new token"}, []string{"connection"})
		_, err = target(t, &memStore{tok: &oauth2.Token{RefreshToken: "RT-dead"}}, "s3cret", valid).Token(ctx)
		refused(t, err, []string{"the target's client_id", "the target's token store"}, []string{"connection"})
	})
	// Built from a config, the advice names the settings by their config
	// keys, where an engineer edits them: the target's, or those of a
	// CRM source's account.
	t.Run("config keys", func(t *testing.T) {
		src := target(t, &FileTokenStore{Path: dead(t)}, "old-secret", valid)
		src.Keys = connectors.TargetKeys("targets.books")
		_, err := src.Token(ctx)
		refused(t, err, []string{"check targets.books.client_id and targets.books.client_secret against the app"}, []string{"the target's", "connection"})
		path := dead(t)
		src = target(t, &FileTokenStore{Path: path}, "s3cret", valid)
		src.Keys = connectors.TargetKeys("targets.books")
		_, err = src.Token(ctx)
		refused(t, err, []string{"run the authorization-code flow again with targets.books.client_id", "into targets.books.token_file " + path,
			"with targets.books.refresh_token set to the new token"}, []string{"the target's", "connection"})
		src = newSource(t, &FileTokenStore{Path: dead(t)}, "old-secret", valid)
		src.Keys = connectors.SourceKeys("connections.pd.source").Under("accounts.42.oauth")
		_, err = src.Token(ctx)
		refused(t, err, []string{"check connections.pd.source.accounts.42.oauth.client_id and connections.pd.source.accounts.42.oauth.client_secret against the app"}, nil)
	})
	t.Run("an ERP target without a token", func(t *testing.T) {
		_, err := target(t, &memStore{}, "s3cret", "").Token(ctx)
		if err == nil || !strings.Contains(err.Error(), "run the authorization-code flow first with the target's client_id") || strings.Contains(err.Error(), "connection") {
			t.Errorf("no token: %v", err)
		}
	})
}

// A token endpoint's refusal that is not of the grant or the client (a 400
// invalid_request or unsupported_grant_type, a proxy's 403 page) is
// reported as the endpoint said it, not as a refresh token to authorize
// again, which would not help: a 400 is a refusal, a 403 still a
// credentials class (the operator looks), neither tells to re-authorize.
func TestOtherTokenEndpointRefusalsAreNotAReauthorization(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		class  connectors.Class
		says   string
	}{
		{http.StatusBadRequest, `{"error":"invalid_request","error_description":"missing grant_type"}`, connectors.Permanent, "invalid_request: missing grant_type"},
		{http.StatusBadRequest, `{"error":"unsupported_grant_type"}`, connectors.Permanent, "unsupported_grant_type"},
		{http.StatusForbidden, `<html>Request blocked</html>`, connectors.Unauthorized, "Request blocked"},
	} {
		endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(c.body, "{") {
				w.Header().Set("Content-Type", "application/json")
			}
			w.WriteHeader(c.status)
			io.WriteString(w, c.body)
		}))
		src := &RefreshingSource{Config: &oauth2.Config{ClientID: "app", ClientSecret: "s3cret",
			Endpoint: oauth2.Endpoint{TokenURL: endpoint.URL, AuthStyle: oauth2.AuthStyleInHeader}},
			Store: &memStore{tok: &oauth2.Token{RefreshToken: "RT-1"}}, Service: "vendor", Connection: "vendor org 42"}
		_, err := src.Token(context.Background())
		endpoint.Close()
		if cl, _ := connectors.Classify(err); cl != c.class || !strings.Contains(fmt.Sprint(err), c.says) || strings.Contains(fmt.Sprint(err), "authorize the connection again") {
			t.Errorf("%d %s: %v (class %v), want class %v saying %q, not to authorize again", c.status, c.body, err, cl, c.class, c.says)
		}
	}
}

// A token endpoint that redirects is not followed: the refresh token and
// the client secret (in the body) would be posted again wherever it points
// (Go's client re-posts a body on a 307 or 308, to another host too). The
// refusal is permanent and names where it points, without its query.
func TestRefreshFollowsNoRedirect(t *testing.T) {
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		var elsewhere atomic.Int32
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			elsewhere.Add(1)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"AT","refresh_token":"RT-2","expires_in":1800}`)
		}))
		endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/token?key=s3cret", status)
		}))
		src := &RefreshingSource{Config: &oauth2.Config{ClientID: "app", ClientSecret: "s3cret",
			Endpoint: oauth2.Endpoint{TokenURL: endpoint.URL, AuthStyle: oauth2.AuthStyleInParams}},
			Store: &memStore{tok: &oauth2.Token{RefreshToken: "RT-1"}}, Service: "vendor", Connection: "vendor org 42"}
		_, err := src.Token(context.Background())
		endpoint.Close()
		other.Close()
		cl, _ := connectors.Classify(err)
		if elsewhere.Load() != 0 || cl != connectors.Permanent || !strings.Contains(fmt.Sprint(err), "redirect (to "+other.URL+"/token)") || strings.Contains(fmt.Sprint(err), "s3cret") {
			t.Errorf("%d: %v (class %v), %d requests where it pointed; want a permanent refusal naming %s/token, none there", status, err, cl, elsewhere.Load(), other.URL)
		}
	}
}
