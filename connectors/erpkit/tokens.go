// Package erpkit holds what the ERP connectors (xero, quickbooks, netsuite)
// share: durable OAuth 2.0 token storage with refresh-token rotation (also
// used by the pipedrive CRM source, whose tokens must survive a restart), a
// durable CRM company → ERP customer link store, the derivation of
// vendor-legal idempotency values from dealsync's step keys, and an HTTP
// client that refreshes once on a 401 and turns every other non-2xx answer
// into a *connectors.APIError. Like every connector package it knows
// nothing of Temporal.
package erpkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/secret"
)

// ErrNoToken is returned by TokenStore.Load when nothing was stored yet.
var ErrNoToken = errors.New("no token stored")

// TokenStore keeps a connection's OAuth token (access token, expiry and the
// current refresh token) durably. Save must not return before the token is
// on stable storage: vendors that rotate refresh tokens (Xero, QuickBooks)
// invalidate the previous one, so a token that is lost after being issued
// strands the connection until someone re-authorizes it.
type TokenStore interface {
	Load(ctx context.Context) (*oauth2.Token, error)
	Save(ctx context.Context, tok *oauth2.Token) error
}

// Locker is implemented by stores that several processes may share: the
// refresh happens under the lock, so two workers never spend the same
// refresh token (the second would get invalid_grant).
type Locker interface {
	Lock(ctx context.Context) (unlock func(), err error)
}

// FileTokenStore keeps the token as JSON in one file (mode 0600). Save
// writes a temporary file in the same directory, fsyncs it, renames it over
// the old one and fsyncs the directory, so the file always holds either the
// old or the new token, whole. Lock takes an advisory flock(2) on PATH.lock
// (a no-op where flock is unavailable).
type FileTokenStore struct {
	Path string
	// ExtraKeys are fields of the token answer beyond the standard ones to
	// keep with the token (Pipedrive's api_domain), read back with
	// oauth2.Token.Extra.
	ExtraKeys []string
	mu        sync.Mutex
}

var _ TokenStore = (*FileTokenStore)(nil)
var _ Locker = (*FileTokenStore)(nil)

// storedToken is the file format: oauth2.Token's own JSON fields.
type storedToken struct {
	AccessToken  string         `json:"access_token"`
	TokenType    string         `json:"token_type,omitempty"`
	RefreshToken string         `json:"refresh_token"`
	Expiry       time.Time      `json:"expiry,omitempty"`
	Extra        map[string]any `json:"extra,omitempty"`
	SavedAt      time.Time      `json:"saved_at"`
}

// Load reads the stored token; ErrNoToken when the file does not exist.
func (s *FileTokenStore) Load(ctx context.Context) (*oauth2.Token, error) {
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoToken
	}
	if err != nil {
		return nil, s.fail(err)
	}
	var st storedToken
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, s.fail(fmt.Errorf("not a token file: %w", err))
	}
	if st.RefreshToken == "" && st.AccessToken == "" {
		return nil, ErrNoToken
	}
	tok := &oauth2.Token{AccessToken: st.AccessToken, TokenType: st.TokenType, RefreshToken: st.RefreshToken, Expiry: st.Expiry}
	if len(st.Extra) > 0 {
		tok = tok.WithExtra(st.Extra)
	}
	return tok, nil
}

// Save replaces the stored token atomically and durably.
func (s *FileTokenStore) Save(ctx context.Context, tok *oauth2.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := storedToken{
		AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken,
		Expiry: tok.Expiry, SavedAt: time.Now().UTC(),
	}
	for _, k := range s.ExtraKeys {
		if v := tok.Extra(k); v != nil {
			if st.Extra == nil {
				st.Extra = map[string]any{}
			}
			st.Extra[k] = v
		}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(s.Path, b, 0o600); err != nil {
		return s.fail(err)
	}
	return nil
}

// Lock serialises refreshes across processes sharing the file.
func (s *FileTokenStore) Lock(ctx context.Context) (func(), error) {
	unlock, err := lockFile(ctx, s.Path+".lock")
	if err != nil {
		return nil, s.fail(err)
	}
	return unlock, nil
}

func (s *FileTokenStore) fail(err error) error {
	return &connectors.LocalFileError{What: "token store", Path: s.Path, Err: err}
}

// WriteFileAtomic replaces path with data: temp file in the same directory,
// fsync, rename, fsync of the directory.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		_ = d.Close()
		if err != nil {
			return fmt.Errorf("syncing %s: %w", dir, err)
		}
	}
	return nil
}

// RefreshingSource is an oauth2.TokenSource for the refresh-token grant
// with rotation. Every token the vendor issues is saved to the store
// before it is handed out, so no request ever uses a token whose refresh
// token is not yet durable. It is safe for concurrent use.
type RefreshingSource struct {
	// Config is the vendor's OAuth client (ClientID, ClientSecret,
	// Endpoint.TokenURL); AuthStyle should be set explicitly.
	Config *oauth2.Config
	Store  TokenStore
	// Seed is the refresh token from the consent flow, used only while the
	// store holds nothing.
	Seed string
	// HTTPClient makes the token requests (nil: http.DefaultClient).
	HTTPClient *http.Client
	// Service and Connection name the vendor and the connection in errors.
	Service, Connection string
	// Target says that the grant is an ERP target's: the errors' advice
	// names the target's settings (client_id, client_secret,
	// refresh_token, token_file), not the connection's, whose errors name
	// the CRM connection the run belongs to.
	Target bool
	// Keys name the grant's settings in that advice by their config keys
	// (targets.<name>.client_id, connections.<name>.source.accounts.<id>.oauth.client_id);
	// zero: as the target's (Target), or by their names alone.
	Keys connectors.Keys
	// Message, if set, picks the message of the token endpoint's error
	// answer (for vendors whose errors are not RFC 6749's); the default
	// reads error and error_description.
	Message func(*oauth2.RetrieveError) string
	// Refreshed, if set, is told of each token the endpoint issued, once
	// it is saved, with the answer's extra fields (oauth2.Token.Extra):
	// for a vendor that says when the refresh token expires. It runs with
	// the source's locks held: keep it short (a log line).
	Refreshed func(*oauth2.Token)

	mu      sync.Mutex
	tok     *oauth2.Token
	pending *oauth2.Token // issued by the vendor but not yet saved
}

// RefreshGrant is a connection's refresh-token grant as its config gives
// it; NewRefreshingSource resolves its secrets once.
type RefreshGrant struct {
	// Service and Connection name the vendor and the connection in errors.
	Service, Connection string
	// Target says that the grant is an ERP target's (RefreshingSource).
	Target bool
	// Keys name its settings in advice (RefreshingSource).
	Keys connectors.Keys
	// Key prefixes configuration errors ("xero: ",
	// "pipedrive source: accounts.1.oauth.").
	Key          string
	ClientID     string
	ClientSecret secret.Secret
	// RefreshToken from the consent flow (optional once Store holds one).
	RefreshToken secret.Secret
	TokenURL     string
	Store        TokenStore
	HTTPClient   *http.Client
	// Message, if set, reads the token endpoint's error answers.
	Message func(*oauth2.RetrieveError) string
	// Refreshed, if set, is told of each token issued (RefreshingSource).
	Refreshed func(*oauth2.Token)
}

// NewRefreshingSource makes the token source of g, with the client
// credentials sent as HTTP Basic authentication.
func NewRefreshingSource(g RefreshGrant) (*RefreshingSource, error) {
	clientSecret, err := g.ClientSecret.Reveal()
	if err != nil {
		return nil, fmt.Errorf("%sclient_secret (%s): %w", g.Key, g.ClientSecret.Describe(), err)
	}
	seed := ""
	if !g.RefreshToken.IsZero() {
		if seed, err = g.RefreshToken.Reveal(); err != nil {
			return nil, fmt.Errorf("%srefresh_token (%s): %w", g.Key, g.RefreshToken.Describe(), err)
		}
	}
	return &RefreshingSource{
		Config: &oauth2.Config{ClientID: g.ClientID, ClientSecret: clientSecret,
			Endpoint: oauth2.Endpoint{TokenURL: g.TokenURL, AuthStyle: oauth2.AuthStyleInHeader}},
		Store: g.Store, Seed: seed, HTTPClient: g.HTTPClient,
		Service: g.Service, Connection: g.Connection, Target: g.Target, Keys: g.Keys, Message: g.Message, Refreshed: g.Refreshed,
	}, nil
}

// expiryDelta: a token this close to its expiry is refreshed first.
const expiryDelta = 60 * time.Second

func usable(t *oauth2.Token) bool {
	return t != nil && t.AccessToken != "" && !t.Expiry.IsZero() && time.Until(t.Expiry) > expiryDelta
}

// Token returns a usable access token, refreshing (and saving) first when
// needed. A refresh token the vendor rejects is reported as a 401
// *connectors.APIError naming the connection (not retryable).
func (s *RefreshingSource) Token(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending != nil {
		if err := s.savePending(ctx); err != nil {
			return nil, fmt.Errorf("%s: saving the rotated refresh token (kept in memory, retrying): %w", s.Service, err)
		}
	}
	if s.tok == nil {
		tok, err := s.Store.Load(ctx)
		switch {
		case errors.Is(err, ErrNoToken):
			if s.Seed == "" {
				return nil, s.unauthorized("no token stored and no refresh_token configured: " + s.authorize("first"))
			}
			s.tok = &oauth2.Token{RefreshToken: s.Seed}
		case err != nil:
			return nil, err
		default:
			s.tok = tok
		}
	}
	if usable(s.tok) {
		return s.tok, nil
	}
	return s.refresh(ctx)
}

// savePending saves the token a refresh got but could not save, under the
// store's lock, unless another process saved a newer one meanwhile (a
// vendor that lets a spent refresh token be used again for a while gives
// it one): that one is kept and this one dropped, so the newest refresh
// token is never overwritten.
func (s *RefreshingSource) savePending(ctx context.Context) error {
	if l, ok := s.Store.(Locker); ok {
		unlock, err := l.Lock(ctx)
		if err != nil {
			return err
		}
		defer unlock()
	}
	// Only a token read whole can be newer than ours: a file that does
	// not read (damaged while it was being mended, say) is overwritten,
	// as Save would.
	stored, err := s.Store.Load(ctx)
	spent := ""
	if s.tok != nil {
		spent = s.tok.RefreshToken
	}
	if err == nil && stored.RefreshToken != "" && stored.RefreshToken != spent && stored.RefreshToken != s.pending.RefreshToken {
		s.tok, s.pending = stored, nil
		return nil
	}
	if err := s.Store.Save(ctx, s.pending); err != nil {
		return err
	}
	s.tok, s.pending = s.pending, nil
	return nil
}

// Invalidate marks accessToken as rejected (the API answered 401), so the
// next Token refreshes, unless the token was replaced meanwhile.
func (s *RefreshingSource) Invalidate(accessToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.tok.AccessToken == accessToken {
		t := *s.tok
		t.Expiry = time.Unix(1, 0)
		s.tok = &t
	}
}

func (s *RefreshingSource) refresh(ctx context.Context) (*oauth2.Token, error) {
	if l, ok := s.Store.(Locker); ok {
		unlock, err := l.Lock(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: locking the token store: %w", s.Service, err)
		}
		defer unlock()
	}
	// Another process (or an earlier Target of a reloaded config) may have
	// refreshed already: its token is the current one.
	if stored, err := s.Store.Load(ctx); err == nil && stored.RefreshToken != "" && stored.RefreshToken != s.tok.RefreshToken {
		s.tok = stored
		if usable(stored) {
			return stored, nil
		}
	} else if err != nil && !errors.Is(err, ErrNoToken) {
		return nil, err
	}
	if s.tok.RefreshToken == "" {
		return nil, s.unauthorized("the stored token has no refresh token: " + s.reauthorize())
	}
	// No redirect is followed: the refresh token and client secret would
	// be posted again wherever it points.
	octx := context.WithValue(ctx, oauth2.HTTPClient, NoRedirects(s.HTTPClient))
	nt, err := s.Config.TokenSource(octx, &oauth2.Token{RefreshToken: s.tok.RefreshToken}).Token()
	if err != nil {
		return nil, s.refreshError(err)
	}
	if nt.RefreshToken == "" { // no rotation: the old one stays valid
		nt.RefreshToken = s.tok.RefreshToken
	}
	if nt.Expiry.IsZero() {
		nt.Expiry = time.Now().Add(30 * time.Minute)
	}
	// The vendor may have invalidated the old refresh token already: until
	// the new one is saved, another process sharing the store would spend
	// the old one and be refused. Retry a transient failure while holding
	// the lock; after that, keep the token in memory and save it first
	// thing on the next call.
	if err := saveRetrying(ctx, s.Store, nt); err != nil {
		s.pending = nt
		return nil, fmt.Errorf("%s: saving the rotated refresh token (kept in memory, retrying): %w", s.Service, err)
	}
	s.tok = nt
	if s.Refreshed != nil {
		s.Refreshed(nt)
	}
	return nt, nil
}

// saveBackoff are the waits between the attempts to save a new token.
var saveBackoff = []time.Duration{100 * time.Millisecond, 400 * time.Millisecond}

func saveRetrying(ctx context.Context, store TokenStore, tok *oauth2.Token) error {
	err := store.Save(ctx, tok)
	for _, wait := range saveBackoff {
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		err = store.Save(ctx, tok)
	}
	return err
}

func (s *RefreshingSource) refreshError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		code := re.Response.StatusCode
		if refused, ok := RedirectRefused(re.Response, "the refresh token", "check token_url"); ok {
			return &connectors.APIError{Service: s.Service, Op: "refresh token", StatusCode: code, Message: s.Connection + ": " + refused}
		}
		msg := re.ErrorCode
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		if s.Message != nil {
			msg = s.Message(re)
		}
		if msg == "" {
			msg = Truncate(string(re.Body))
		}
		// invalid_grant / invalid_client (RFC 6749 5.2: a 400, or a 401
		// for the client; Pipedrive answers 401 "unauthorized"): only a
		// person can fix it. Other refusals (a 400 invalid_request or
		// unsupported_grant_type, a proxy's 403 page) are reported as they
		// are, not as a refresh token to authorize again.
		if code == http.StatusUnauthorized || (code == http.StatusBadRequest && (re.ErrorCode == "invalid_grant" || re.ErrorCode == "invalid_client")) {
			if re.ErrorCode == "invalid_client" {
				// The app's credentials, not the refresh token: a new
				// authorization would be refused the same way.
				again := "authorizing the connection again"
				if s.Target {
					again = "authorizing the app again"
				}
				keys := s.keys()
				return s.refused(code, "the token endpoint rejected the app's client credentials ("+msg+"): "+
					"check "+keys.List("client_id", "client_secret")+" against the app in the vendor's developer portal "+
					"(a secret regenerated there, or another app's id, is refused); "+again+" does not help while they are wrong")
			}
			return s.refused(code, "the token endpoint rejected the refresh token ("+msg+"): "+s.reauthorize())
		}
		return &connectors.APIError{Service: s.Service, Op: "refresh token", StatusCode: code,
			Message: s.Connection + ": the token endpoint answered " + msg, RetryAfter: connectors.ParseRetryAfter(re.Response.Header, time.Now())}
	}
	return fmt.Errorf("%s refresh token: %w", s.Service, err) // network: retried
}

// reauthorize says how to give the connection a new refresh token. The
// configured refresh_token (Seed) only seeds a token store that holds
// nothing, so with a token file in place a new refresh_token in the config
// is never read: the message names the file and the two ways to get the
// new token used.
func (s *RefreshingSource) reauthorize() string {
	its, file, key := "its", s.keys().Key("token_file"), s.keys().Key("refresh_token")
	if s.Target {
		its = "the target's"
	}
	f, ok := s.Store.(*FileTokenStore)
	if !ok {
		return s.authorize("again") + ", and put the new refresh token into " + its + " token store"
	}
	return fmt.Sprintf("%s, then either write the new refresh token into %s %s "+
		`as {"refresh_token":"<new token>"} (used from the next call on, no restart needed), `+
		"or delete that file and restart the workers using it with %s set to the new token, which then seeds the file; "+
		"a new refresh_token alone is not read while the file exists", s.authorize("again"), file, f.Path, key)
}

// authorize says to get a refresh token from the vendor's consent flow,
// when ("first", "again"): the connection's authorization, or, for an
// ERP target's grant, the authorization-code flow of the app whose
// client_id the target's settings hold (so that the advice does not read
// as the CRM connection's).
func (s *RefreshingSource) authorize(when string) string {
	if s.Target {
		return "run the authorization-code flow " + when + " with " + s.keys().Key("client_id")
	}
	return "authorize the connection " + when
}

// keys name the grant's settings in advice: s.Keys, or without them the
// target's for an ERP target's (Target), else the settings' names alone.
func (s *RefreshingSource) keys() connectors.Keys {
	if s.Keys.IsZero() && s.Target {
		return connectors.TargetKeys("")
	}
	return s.Keys
}

// refused is the token endpoint's refusal of the credentials, with the
// status it answered (400 for invalid_grant and invalid_client, RFC 6749
// 5.2), classified Unauthorized all the same.
func (s *RefreshingSource) refused(status int, msg string) error {
	return &connectors.APIError{Service: s.Service, Op: "refresh token", StatusCode: status, Credentials: true,
		Message: s.Connection + ": " + msg}
}

// unauthorized is a refusal of the credentials dealsync makes itself, no
// token endpoint having answered (no token to refresh): a 401.
func (s *RefreshingSource) unauthorized(msg string) error {
	return &connectors.APIError{Service: s.Service, Op: "refresh token", StatusCode: http.StatusUnauthorized,
		Message: s.Connection + ": " + msg}
}
