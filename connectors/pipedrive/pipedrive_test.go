package pipedrive

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/sharedfiles"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

// The real change.deal delivery of ../shared/webhooks (trimmed there),
// inlined; the status did not change (stage 427 -> 428).
const changeStage = `{
  "data": {
    "custom_fields": {
      "ba4ef52ee7f02f22ba933da067b00d9c9ec807ea": { "currency": "BRL", "type": "monetary", "value": 13 },
      "145c0d27deafcc3bf3298867ee88db1d770050da": null
    },
    "expected_close_date": "2025-12-23", "first_won_time": "2026-01-14T17:08:04Z", "id": 213973,
    "org_id": 5063, "owner_id": 12597982, "person_id": 176578, "pipeline_id": 50, "probability": 1,
    "stage_change_time": "2026-01-14T18:16:56Z", "stage_id": 428, "status": "open", "title": "TESTEMORANGO001",
    "update_time": "2026-01-14T18:16:56Z", "value": 112, "won_time": null, "is_archived": false, "archive_time": null
  },
  "previous": { "stage_id": 427 },
  "meta": {
    "action": "change", "company_id": "6083095", "correlation_id": "bc60674a-2e3d-404c-a268-42945daf16fc",
    "entity_id": "213973", "entity": "deal", "id": "6ba407fc-006d-4556-9804-8298e584a288", "is_bulk_edit": false,
    "timestamp": "2026-01-14T18:16:56.057Z", "type": "general", "user_id": "12941358", "version": "2.0",
    "webhook_id": "1828483", "webhook_owner_id": "16219013", "change_source": "app",
    "permitted_user_ids": ["9251590", "12597982", "12941358", "16219013"], "attempt": 1, "host": "seazone-fd92b9.pipedrive.com"
  }
}`

// The same deal marked won: previous carries the old status.
var wonNow = strings.NewReplacer(`"status": "open"`, `"status": "won"`, `"previous": { "stage_id": 427 }`, `"previous": { "status": "open", "won_time": null }`,
	`"id": "6ba407fc-006d-4556-9804-8298e584a288"`, `"id": "7c1e0000-0000-4000-8000-000000000001"`).Replace(changeStage)

const (
	hookUser = "dealsync"
	hookPass = "correct horse battery staple"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func testSource(t testing.TB, mutate func(*Config)) *Source {
	t.Helper()
	return testSourceIn(t, connectors.Env{}, mutate)
}

// testSourceIn is testSource built in env (a config key).
func testSourceIn(t testing.TB, env connectors.Env, mutate func(*Config)) *Source {
	t.Helper()
	cfg := DefaultConfig()
	cfg.WebhookUser = hookUser
	cfg.WebhookPassword = secret.New(hookPass)
	cfg.Accounts = map[string]Account{
		"6083095":  {APIToken: secret.New("token-6083095")},
		"15747575": {APIToken: secret.New("token-15747575")},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg, env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func delivery(body, auth string) *connectors.Webhook {
	h := http.Header{}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	return &connectors.Webhook{Method: "POST", URL: "https://sync.example.com/webhooks/pd", Header: h, Body: []byte(body), Received: time.Now()}
}

func TestVerifyBasicAuth(t *testing.T) {
	s := testSource(t, nil)
	if err := s.Verify(delivery(changeStage, basic(hookUser, hookPass))); err != nil {
		t.Fatalf("right credentials: %v", err)
	}
	for name, auth := range map[string]string{
		"missing":         "",
		"wrong password":  basic(hookUser, hookPass+"x"),
		"wrong user":      basic("admin", hookPass),
		"empty password":  basic(hookUser, ""),
		"bearer":          "Bearer " + hookPass,
		"not base64":      "Basic %%%",
		"no colon":        "Basic " + base64.StdEncoding.EncodeToString([]byte(hookUser+hookPass)),
		"password prefix": basic(hookUser, hookPass[:5]),
		"swapped":         basic(hookPass, hookUser),
	} {
		err := s.Verify(delivery(changeStage, auth))
		if !errors.Is(err, connectors.ErrUnauthorized) {
			t.Errorf("%s: got %v", name, err)
		} else if strings.Contains(err.Error(), hookPass) {
			t.Errorf("%s: error leaks the password", name)
		}
	}
	// Scheme name is case-insensitive (RFC 7617).
	if err := s.Verify(delivery(changeStage, "basic "+strings.TrimPrefix(basic(hookUser, hookPass), "Basic "))); err != nil {
		t.Errorf("lower-case scheme: %v", err)
	}
}

// Wrong credentials say where the right ones are set (by the settings'
// names, never a value, sent or configured).
func TestWrongCredentialsSayWhatToCheck(t *testing.T) {
	s := testSourceIn(t, connectors.Env{ConfigKey: "connections.pd.source"}, nil)
	err := s.Verify(delivery(changeStage, basic(hookUser, "guessed-password")))
	want := "wrong webhook user or password: check that the webhook's http_auth_user and http_auth_password in Pipedrive are connections.pd.source.webhook_user and connections.pd.source.webhook_password (or an account's own, under accounts)"
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want it to contain %q", err, want)
	}
	if strings.Contains(err.Error(), hookPass) || strings.Contains(err.Error(), "guessed") {
		t.Fatalf("%v: names a password", err)
	}
	// The sender is answered the refusal alone (connectors.Terse).
	if got, want := connectors.Terse(err), "unauthorized: pipedrive: wrong webhook user or password"; got != want {
		t.Fatalf("Terse = %q, want %q", got, want)
	}
}

func TestVerifyAccountCredentialsAreBound(t *testing.T) {
	s := testSource(t, func(c *Config) {
		c.WebhookUser, c.WebhookPassword = "", secret.Secret{}
		c.Accounts = map[string]Account{
			"6083095":  {APIToken: secret.New("t1"), WebhookUser: "a", WebhookPassword: secret.New("pa")},
			"15747575": {APIToken: secret.New("t2"), WebhookUser: "b", WebhookPassword: secret.New("pb")},
		}
	})
	if err := s.Verify(delivery(changeStage, basic("a", "pa"))); err != nil {
		t.Fatalf("own credentials: %v", err)
	}
	err := s.Verify(delivery(changeStage, basic("b", "pb")))
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "company 15747575") {
		t.Fatalf("company 15747575's credentials on 6083095's delivery: got %v", err)
	}
}

// Companies that share webhook credentials: each one's deliveries are
// accepted, whatever order the credentials are kept in. A body that does
// not say its company is malformed (400), not forged. An empty password
// is refused when the source is built.
func TestVerifySharedCredentials(t *testing.T) {
	s := testSource(t, func(c *Config) {
		c.WebhookUser, c.WebhookPassword = "", secret.Secret{}
		c.Accounts = map[string]Account{
			"6083095":  {APIToken: secret.New("t1"), WebhookUser: "dealsync", WebhookPassword: secret.New("shared")},
			"15747575": {APIToken: secret.New("t2"), WebhookUser: "dealsync", WebhookPassword: secret.New("shared")},
		}
	})
	other := strings.Replace(changeStage, `"company_id": "6083095"`, `"company_id": "15747575"`, 1)
	if other == changeStage {
		t.Fatal("the sample's company_id was not replaced")
	}
	for i := 0; i < 20; i++ { // the credentials come from a map: any order
		for _, body := range []string{changeStage, other} {
			if err := s.Verify(delivery(body, basic("dealsync", "shared"))); err != nil {
				t.Fatalf("a company's delivery with the shared credentials: %v", err)
			}
		}
	}
	for _, body := range []string{`{"meta":{}}`, `not json`} {
		if err := s.Verify(delivery(body, basic("dealsync", "shared"))); !errors.Is(err, connectors.ErrMalformed) {
			t.Errorf("a body that does not say its company (%s): %v, want malformed", body, err)
		}
	}
	stranger := strings.Replace(changeStage, `"company_id": "6083095"`, `"company_id": "777"`, 1)
	if err := s.Verify(delivery(stranger, basic("dealsync", "shared"))); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Errorf("a company no credential is bound to: %v, want unauthorized", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.WebhookUser, cfg.WebhookPassword = "dealsync", secret.New("file:"+empty)
	cfg.Accounts = map[string]Account{"6083095": {APIToken: secret.New("t1")}}
	if _, err := New(cfg, connectors.Env{}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty webhook password: %v, want it refused", err)
	}
}

// A rotation of the source's credentials: while the previous pair is
// configured, deliveries with it are accepted beside those with the new
// pair; once it is removed they are refused. Each pair is one credential:
// the user of one with the password of the other is refused.
func TestVerifyPreviousCredentials(t *testing.T) {
	for name, prevUser := range map[string]string{"new password": "dealsync", "new user and password": "dealsync-old"} {
		during := testSource(t, func(c *Config) {
			c.WebhookUser, c.WebhookPassword = "dealsync", secret.New("new-pass")
			c.PreviousWebhookUser, c.PreviousWebhookPassword = prevUser, secret.New("old-pass")
		})
		after := testSource(t, func(c *Config) {
			c.WebhookUser, c.WebhookPassword = "dealsync", secret.New("new-pass")
		})
		if w := delivery(changeStage, basic(prevUser, "old-pass")); during.Verify(w) != nil || !w.PreviousSecret {
			t.Errorf("%s: the previous credentials during the rotation: %v (previous %v, want true)", name, during.Verify(w), w.PreviousSecret)
		}
		if err := after.Verify(delivery(changeStage, basic(prevUser, "old-pass"))); !errors.Is(err, connectors.ErrUnauthorized) {
			t.Errorf("%s: the previous credentials once removed: %v, want unauthorized", name, err)
		}
		for when, s := range map[string]*Source{"during": during, "after": after} {
			w := delivery(changeStage, basic("dealsync", "new-pass"))
			w.PreviousSecret = true
			if err := s.Verify(w); err != nil || w.PreviousSecret {
				t.Errorf("%s: the new credentials %s the rotation: %v (previous %v, want false)", name, when, err, w.PreviousSecret)
			}
		}
		for _, auth := range []string{basic("dealsync", "other"), basic("dealsync", "old-pass"+"x"), basic("someone", "old-pass")} {
			if err := during.Verify(delivery(changeStage, auth)); !errors.Is(err, connectors.ErrUnauthorized) {
				t.Errorf("%s: credentials of neither pair: %v, want unauthorized", name, err)
			}
		}
	}
	crossed := testSource(t, func(c *Config) {
		c.WebhookUser, c.WebhookPassword = "dealsync-new", secret.New("new-pass")
		c.PreviousWebhookUser, c.PreviousWebhookPassword = "dealsync-old", secret.New("old-pass")
	})
	for _, auth := range []string{basic("dealsync-new", "old-pass"), basic("dealsync-old", "new-pass")} {
		if err := crossed.Verify(delivery(changeStage, auth)); !errors.Is(err, connectors.ErrUnauthorized) {
			t.Errorf("the user of one pair with the password of the other: %v, want unauthorized", err)
		}
	}
}

// A company's previous credentials are bound to it like its current ones,
// and companies that share their previous credentials each get their own
// deliveries through, as with shared current ones.
func TestVerifyPreviousAccountCredentialsAreBound(t *testing.T) {
	accounts := func(prevA, prevB string) func(*Config) {
		return func(c *Config) {
			c.WebhookUser, c.WebhookPassword = "", secret.Secret{}
			a := Account{APIToken: secret.New("t1"), WebhookUser: "a", WebhookPassword: secret.New("new-pa")}
			b := Account{APIToken: secret.New("t2"), WebhookUser: "b", WebhookPassword: secret.New("pb")}
			if prevA != "" {
				a.PreviousWebhookUser, a.PreviousWebhookPassword = "dealsync", secret.New(prevA)
			}
			if prevB != "" {
				b.PreviousWebhookUser, b.PreviousWebhookPassword = "dealsync", secret.New(prevB)
			}
			c.Accounts = map[string]Account{"6083095": a, "15747575": b}
		}
	}
	other := strings.Replace(changeStage, `"company_id": "6083095"`, `"company_id": "15747575"`, 1)
	during := testSource(t, accounts("old-pa", ""))
	if w := delivery(changeStage, basic("dealsync", "old-pa")); during.Verify(w) != nil || !w.PreviousSecret {
		t.Errorf("6083095's delivery with its previous credentials: %v (previous %v)", during.Verify(w), w.PreviousSecret)
	}
	if w := delivery(changeStage, basic("a", "new-pa")); during.Verify(w) != nil || w.PreviousSecret {
		t.Errorf("6083095's delivery with its new credentials: %v (previous %v)", during.Verify(w), w.PreviousSecret)
	}
	err := during.Verify(delivery(other, basic("dealsync", "old-pa")))
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "company 6083095") {
		t.Errorf("15747575's delivery with 6083095's previous credentials: %v, want unauthorized naming the company", err)
	}
	after := testSource(t, accounts("", ""))
	if err := after.Verify(delivery(changeStage, basic("dealsync", "old-pa"))); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Errorf("6083095's previous credentials once removed: %v, want unauthorized", err)
	}

	shared := testSource(t, accounts("old-shared", "old-shared"))
	for i := 0; i < 20; i++ { // the credentials come from a map: any order
		for _, body := range []string{changeStage, other} {
			if err := shared.Verify(delivery(body, basic("dealsync", "old-shared"))); err != nil {
				t.Fatalf("a company's delivery with the shared previous credentials: %v", err)
			}
		}
	}
	stranger := strings.Replace(changeStage, `"company_id": "6083095"`, `"company_id": "777"`, 1)
	if err := shared.Verify(delivery(stranger, basic("dealsync", "old-shared"))); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Errorf("a company no previous credential is bound to: %v, want unauthorized", err)
	}
}

// A previous password that resolves to nothing is refused like a
// webhook_password, a previous user without a password (or the other way
// round) is refused, and so is a previous pair without a current one;
// every error names the key.
func TestNewRefusesUnusablePreviousCredentials(t *testing.T) {
	t.Setenv("DEALSYNC_TEST_PD_EMPTY", "")
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	token := map[string]Account{"6083095": {APIToken: secret.New("t1")}}
	current := func(a Account) map[string]Account {
		a.APIToken, a.WebhookUser, a.WebhookPassword = secret.New("t1"), "a", secret.New("new-pa")
		return map[string]Account{"6083095": a}
	}
	for name, c := range map[string]struct {
		cfg  Config
		want string
	}{
		"empty variable": {Config{WebhookUser: "u", WebhookPassword: secret.New("new-pass"), PreviousWebhookUser: "u",
			PreviousWebhookPassword: secret.New("env:DEALSYNC_TEST_PD_EMPTY"), Accounts: token}, "pipedrive source: previous_webhook_password (env:DEALSYNC_TEST_PD_EMPTY)"},
		"empty file": {Config{WebhookUser: "u", WebhookPassword: secret.New("new-pass"), PreviousWebhookUser: "u",
			PreviousWebhookPassword: secret.New("file:" + empty), Accounts: token}, "pipedrive source: previous_webhook_password (file:"},
		"user without password": {Config{WebhookUser: "u", WebhookPassword: secret.New("new-pass"), PreviousWebhookUser: "u", Accounts: token},
			"pipedrive source: previous_webhook_user and previous_webhook_password go together"},
		"password without user": {Config{WebhookUser: "u", WebhookPassword: secret.New("new-pass"), PreviousWebhookPassword: secret.New("old-pass"), Accounts: token},
			"pipedrive source: previous_webhook_user and previous_webhook_password go together"},
		"without current": {Config{PreviousWebhookUser: "u", PreviousWebhookPassword: secret.New("old-pass"), Accounts: current(Account{})},
			"pipedrive source: previous_webhook_user/previous_webhook_password are set without webhook_user/webhook_password"},
		"account's empty variable": {Config{Accounts: current(Account{PreviousWebhookUser: "a", PreviousWebhookPassword: secret.New("env:DEALSYNC_TEST_PD_EMPTY")})},
			"pipedrive source: accounts.6083095.previous_webhook_password (env:DEALSYNC_TEST_PD_EMPTY)"},
		"account's without current": {Config{WebhookUser: "u", WebhookPassword: secret.New("new-pass"),
			Accounts: map[string]Account{"6083095": {APIToken: secret.New("t1"), PreviousWebhookUser: "a", PreviousWebhookPassword: secret.New("old-pass")}}},
			"pipedrive source: accounts.6083095.previous_webhook_user/previous_webhook_password are set without webhook_user/webhook_password"},
	} {
		_, err := New(c.cfg, connectors.Env{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, c.want)
		} else if strings.Contains(err.Error(), "new-pa") || strings.Contains(err.Error(), "old-pa") {
			t.Errorf("%s: error leaks a password: %v", name, err)
		}
	}
}

func TestParseTransitions(t *testing.T) {
	s := testSource(t, nil)
	trigger := mapping.StageTrigger{WonStages: []string{StatusWon}}
	cases := []struct {
		name, body, stage, prev string
		triggers                bool
	}{
		{"stage change, still open", changeStage, "open", "open", false},
		{"open -> won", wonNow, "won", "open", true},
		{"won deal, other field changed", strings.Replace(changeStage, `"status": "open"`, `"status": "won"`, 1), "won", "won", false},
		{"created won", strings.Replace(strings.Replace(changeStage, `"status": "open"`, `"status": "won"`, 1), `"previous": { "stage_id": 427 }`, `"previous": null`, 1), "won", "", true},
		{"won -> lost", strings.Replace(wonNow, `"status": "won"`, `"status": "lost"`, 1), "lost", "open", false},
		{"reopened", strings.Replace(changeStage, `"previous": { "stage_id": 427 }`, `"previous": { "status": "won" }`, 1), "open", "won", false},
	}
	for _, c := range cases {
		evs, err := s.Parse(delivery(c.body, ""))
		if err != nil || len(evs) != 1 {
			t.Fatalf("%s: %v %+v", c.name, err, evs)
		}
		d := evs[0].Deal
		if d.Stage != c.stage || d.PreviousStage != c.prev {
			t.Errorf("%s: stage %q previous %q, want %q %q", c.name, d.Stage, d.PreviousStage, c.stage, c.prev)
		}
		if ok, why, err := trigger.Evaluate(evs[0]); ok != c.triggers || err != nil {
			t.Errorf("%s: trigger %v (%s, %v), want %v", c.name, ok, why, err, c.triggers)
		}
	}
}

func TestParseRealChangeDelivery(t *testing.T) {
	s := testSource(t, nil)
	evs, err := s.Parse(delivery(changeStage, ""))
	if err != nil {
		t.Fatal(err)
	}
	ev := evs[0]
	if ev.EventID != "6ba407fc-006d-4556-9804-8298e584a288" || ev.Account != "6083095" || !ev.Thin || ev.Deal.ID != "213973" ||
		!ev.OccurredAt.Equal(time.Date(2026, 1, 14, 18, 16, 56, 57e6, time.UTC)) {
		t.Fatalf("event: %+v", ev)
	}
	if string(ev.Deal.Raw["stage_id"]) != "428" || string(ev.Deal.Raw["previous_stage_id"]) != "427" || string(ev.Deal.Raw["pipeline_id"]) != "50" {
		t.Errorf("Raw: %v", ev.Deal.Raw)
	}
}

func TestParseSharedSamples(t *testing.T) {
	s := testSource(t, nil)
	evs, err := s.Parse(delivery(string(sharedfiles.Webhook(t, "pipedrive-v2-change-deal-stage.captured-trimmed.json")), ""))
	if err != nil || len(evs) != 1 || evs[0].Deal.ID != "213973" || evs[0].Deal.Stage != "open" || evs[0].Deal.PreviousStage != "open" ||
		evs[0].EventID != "6ba407fc-006d-4556-9804-8298e584a288" || evs[0].Account != "6083095" {
		t.Fatalf("change sample: %v %+v", err, evs)
	}
	evs, err = s.Parse(delivery(string(sharedfiles.Webhook(t, "pipedrive-v2-create-deal.captured.json")), ""))
	if err != nil || len(evs) != 1 || evs[0].Deal.ID != "178" || evs[0].Deal.Stage != "open" || evs[0].Deal.PreviousStage != "" ||
		evs[0].Account != "15747575" || evs[0].EventID != "8818e477-972e-4ddb-8d8e-cb61a933db4e" {
		t.Fatalf("create sample: %v %+v", err, evs)
	}
}

func TestParseSkipsAndRejects(t *testing.T) {
	s := testSource(t, nil)
	person := strings.Replace(changeStage, `"entity": "deal"`, `"entity": "person"`, 1)
	deleted := strings.Replace(strings.Replace(changeStage, `"action": "change"`, `"action": "delete"`, 1), `"data": {`, `"data": null, "x": {`, 1)
	// Each is left out with its reason (the intake answers it).
	for _, c := range []struct{ name, body, deal, reason string }{
		{"person", person, "", `not a deal (meta.entity "person")`},
		{"deleted deal", deleted, "213973", "the deal was deleted"},
	} {
		w := delivery(c.body, "")
		evs, err := s.Parse(w)
		if err != nil || len(evs) != 0 {
			t.Errorf("%s: got %v %+v, want no events and no error", c.name, err, evs)
		}
		if len(w.Ignored) != 1 || w.Ignored[0].EventID != "6ba407fc-006d-4556-9804-8298e584a288" || w.Ignored[0].DealID != c.deal || !strings.Contains(w.Ignored[0].Reason, c.reason) {
			t.Errorf("%s: ignored %+v, want the event of deal %q, saying %q", c.name, w.Ignored, c.deal, c.reason)
		}
	}
	unknown := strings.Replace(changeStage, `"company_id": "6083095"`, `"company_id": "999"`, 1)
	if _, err := s.Parse(delivery(unknown, "")); !errors.Is(err, connectors.ErrUnknownAccount) || !strings.Contains(err.Error(), "999") {
		t.Errorf("unknown company: got %v", err)
	}
	for name, body := range map[string]string{
		"array":       "[" + changeStage + "]",
		"empty":       "",
		"no meta":     `{"data":{"id":1,"status":"won"}}`,
		"v1":          strings.Replace(changeStage, `"version": "2.0"`, `"version": "1.0"`, 1),
		"v1 shape":    `{"v":1,"matches_filters":{"current":[]},"meta":{"v":1,"action":"updated","object":"deal","id":213973,"company_id":6083095},"current":{"id":213973,"status":"won"},"previous":{"status":"open"},"event":"updated.deal"}`,
		"no company":  strings.Replace(changeStage, `"company_id": "6083095",`, ``, 1),
		"bad id":      strings.Replace(changeStage, `"entity_id": "213973"`, `"entity_id": "21x"`, 1),
		"bad time":    strings.Replace(changeStage, `"2026-01-14T18:16:56.057Z"`, `"yesterday"`, 1),
		"status num":  strings.Replace(changeStage, `"status": "open"`, `"status": 1`, 1),
		"meta object": strings.Replace(changeStage, `"company_id": "6083095"`, `"company_id": {}`, 1),
		// "0801" would be another workflow, and another run, for deal
		// 801; an id no deal has would make a workflow ID too long.
		"leading zero": strings.Replace(changeStage, `"entity_id": "213973"`, `"entity_id": "0213973"`, 1),
		"id too long":  strings.Replace(changeStage, `"entity_id": "213973"`, `"entity_id": "`+strings.Repeat("9", 1200)+`"`, 1),
		"not UTF-8":    strings.Replace(changeStage, `"status": "open"`, "\"status\": \"op\xffen\"", 1),
	} {
		if _, err := s.Parse(delivery(body, "")); !errors.Is(err, connectors.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	// A webhooks v1 delivery is named as one, with what to do.
	v1 := `{"v":1,"matches_filters":{"current":[]},"meta":{"v":1,"action":"updated","object":"deal","id":213973,"company_id":6083095},"current":{"id":213973,"status":"won"},"previous":{"status":"open"},"event":"updated.deal"}`
	if _, err := s.Parse(delivery(v1, "")); !errors.Is(err, connectors.ErrMalformed) ||
		!strings.Contains(err.Error(), `a webhooks v1 delivery (event "updated.deal"), and only webhooks v2 are supported: in Pipedrive, create the webhook again with version 2.0`) {
		t.Errorf("v1: %v", err)
	}
	if _, err := s.Parse(delivery(`{"data":{"id":1,"status":"won"}}`, "")); err == nil || strings.Contains(err.Error(), "v1") {
		t.Errorf("no meta, not v1: %v", err)
	}
	// Compressed without a Content-Encoding: said so, not "not a JSON
	// object".
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(changeStage))
	zw.Close()
	if _, err := s.Parse(delivery(gz.String(), "")); !errors.Is(err, connectors.ErrMalformed) ||
		!strings.Contains(err.Error(), "the body looks gzip-compressed (it starts with the bytes 1f 8b) and came without a Content-Encoding: send it uncompressed") {
		t.Errorf("gzip: %v", err)
	}
}

func TestParseNumericMetaAndFallbackID(t *testing.T) {
	s := testSource(t, nil)
	body := strings.NewReplacer(`"company_id": "6083095"`, `"company_id": 6083095`, `"entity_id": "213973"`, `"entity_id": 213973`,
		`"id": "6ba407fc-006d-4556-9804-8298e584a288", `, ``, `"timestamp": "2026-01-14T18:16:56.057Z"`, `"timestamp": 1768414616`).Replace(changeStage)
	evs, err := s.Parse(delivery(body, ""))
	if err != nil {
		t.Fatal(err)
	}
	ev := evs[0]
	if ev.Account != "6083095" || ev.Deal.ID != "213973" || ev.EventID != "bc60674a-2e3d-404c-a268-42945daf16fc#213973" ||
		!ev.OccurredAt.Equal(time.Unix(1768414616, 0)) {
		t.Fatalf("got %+v", ev)
	}
}

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no accounts":       {WebhookUser: "u", WebhookPassword: secret.New("p")},
		"no webhook creds":  {Accounts: map[string]Account{"1": {APIToken: secret.New("t")}}},
		"user without pass": {WebhookUser: "u", Accounts: map[string]Account{"1": {APIToken: secret.New("t")}}},
		"no api creds":      {WebhookUser: "u", WebhookPassword: secret.New("p"), Accounts: map[string]Account{"1": {}}},
		"token and oauth": {WebhookUser: "u", WebhookPassword: secret.New("p"), Accounts: map[string]Account{"1": {APIToken: secret.New("t"),
			OAuth: &OAuth{ClientID: "c", ClientSecret: secret.New("s"), RefreshToken: secret.New("r")}}}},
		"oauth without token_file": {WebhookUser: "u", WebhookPassword: secret.New("p"), Accounts: map[string]Account{"1": {
			OAuth: &OAuth{ClientID: "c", ClientSecret: secret.New("s"), RefreshToken: secret.New("r")}}}},
	} {
		if _, err := New(cfg, connectors.Env{}); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// A base_url (the source's, or an account's) that already has Pipedrive's
// API path (…/api/v2, the server URL of Pipedrive's own OpenAPI spec) is
// refused at load, naming the key and saying to give the host alone: the
// source adds /api/v2/… itself, and every call went to /api/v2/api/v2/…,
// answered 404, which each check then blamed on something else. A proxy's
// own path prefix is taken, and the value is shown without credentials.
func TestBaseURLWithTheAPIPathIsRefused(t *testing.T) {
	for raw, want := range map[string]string{
		"http://127.0.0.1:9/api/v2": `base_url "http://127.0.0.1:9/api/v2" already has the API path "/api/v2": ` +
			`dealsync adds /api/v2/… itself; give the host alone, e.g. https://api.pipedrive.com (or the company's own https://<company>.pipedrive.com)`,
		"https://acme.pipedrive.com/api/v1/":                         `already has the API path "/api/v1/"`,
		"https://api.pipedrive.com/API/V2/deals":                     `already has the API path "/API/V2/deals"`,
		"https://u:S3cret@api.pipedrive.com/api/v2?api_token=S3cret": `base_url "https://api.pipedrive.com/api/v2" already has the API path "/api/v2"`,
		"https://api.pipedrive.com":                                  "",
		"https://acme.pipedrive.com/":                                "",
		"https://gateway.example/pipedrive":                          "",
		"https://gateway.example/api/pipedrive":                      "",
	} {
		for _, account := range []bool{false, true} {
			cfg := DefaultConfig()
			cfg.WebhookUser, cfg.WebhookPassword = hookUser, secret.New(hookPass)
			a := Account{APIToken: secret.New("token-6083095")}
			key := "pipedrive source: base_url"
			if account {
				a.BaseURL, key = raw, "pipedrive source: accounts.6083095.base_url"
			} else {
				cfg.BaseURL = raw
			}
			cfg.Accounts = map[string]Account{"6083095": a}
			_, err := New(cfg, connectors.Env{})
			if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), key+" ")) {
				t.Errorf("%s %s: %v; want %q", key, raw, err, want)
			}
			if err != nil && strings.Contains(err.Error(), "S3cret") {
				t.Errorf("%s %s: the error shows the credential: %v", key, raw, err)
			}
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s := testSource(b, nil)
	w := delivery(changeStage, basic(hookUser, hookPass))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Verify(w); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	s := testSource(b, nil)
	w := delivery(wonNow, "")
	b.ReportAllocs()
	b.SetBytes(int64(len(w.Body)))
	var evs []model.DealEvent
	for b.Loop() {
		var err error
		if evs, err = s.Parse(w); err != nil {
			b.Fatal(err)
		}
	}
	if evs[0].Deal.Stage != "won" {
		b.Fatal(evs)
	}
}

// Pipedrive numbers deals and organizations per company: its config says
// so, and lists its companies, for the config check that refuses two
// companies in one ERP under the built-in mapping.
func TestConfigSaysIDsArePerCompany(t *testing.T) {
	var cfg any = &Config{Accounts: map[string]Account{"7654321": {}, "15747575": {}}}
	per, ok := cfg.(connectors.IDsPerAccount)
	if !ok {
		t.Fatal("Config does not implement connectors.IDsPerAccount")
	}
	if got := strings.Join(per.AccountsWithOwnIDs(), ","); got != "15747575,7654321" {
		t.Errorf("accounts %s, want 15747575,7654321", got)
	}
}

// A delivery counts as the previous credentials' only when no current
// credential admits it: a company whose own current credentials are the
// source's old pair is not mistaken for a webhook still using the old one.
func TestPreviousCredentialsOnlyWhenNoCurrentOneAdmits(t *testing.T) {
	s := testSource(t, func(c *Config) {
		c.WebhookUser, c.WebhookPassword = "dealsync", secret.New("new-pass")
		c.PreviousWebhookUser, c.PreviousWebhookPassword = "dealsync", secret.New("old-pass")
		c.Accounts = map[string]Account{
			"6083095":  {APIToken: secret.New("t1"), WebhookUser: "dealsync", WebhookPassword: secret.New("old-pass")},
			"15747575": {APIToken: secret.New("t2")},
		}
	})
	other := strings.Replace(changeStage, `"company_id": "6083095"`, `"company_id": "15747575"`, 1)
	if w := delivery(changeStage, basic("dealsync", "old-pass")); s.Verify(w) != nil || w.PreviousSecret {
		t.Errorf("6083095's delivery with its own current credentials: %v (previous %v, want false)", s.Verify(w), w.PreviousSecret)
	}
	w := delivery(other, basic("dealsync", "old-pass"))
	if s.Verify(w) != nil || !w.PreviousSecret {
		t.Errorf("15747575's delivery, admitted by the previous pair only: %v (previous %v, want true)", s.Verify(w), w.PreviousSecret)
	}
	w.Header.Set("Authorization", basic("dealsync", "wrong"))
	if err := s.Verify(w); err == nil || w.PreviousSecret {
		t.Errorf("a refused delivery: %v (previous %v, want false)", err, w.PreviousSecret)
	}
}

// The change delivery that dealsync's own write-back causes (through the
// API, only the write-back fields) is no event: the run lingering after
// the invoice took it as a change of the deal, and every invoiced deal
// said ChangedAfterInvoice. A person's change of those fields, or an API
// change of anything else, still is one.
func TestParseIgnoresTheEchoOfItsWriteBack(t *testing.T) {
	const idField, urlField = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", "b1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
	s := testSource(t, func(c *Config) { c.WriteBack.InvoiceIDField, c.WriteBack.InvoiceURLField = idField, urlField })
	won := strings.Replace(changeStage, `"status": "open"`, `"status": "won"`, 1)
	body := func(source, previous string) string {
		return strings.NewReplacer(`"change_source": "app"`, `"change_source": "`+source+`"`,
			`"previous": { "stage_id": 427 }`, `"previous": `+previous).Replace(won)
	}
	echo := `{ "custom_fields": { "` + idField + `": null, "` + urlField + `": null }, "update_time": "2026-01-14T18:16:50Z" }`
	for _, c := range []struct {
		name, body string
		events     int
	}{
		{"the write-back, through the API", body("api", echo), 0},
		{"the same fields changed in the app", body("app", echo), 1},
		{"an API change of another custom field", body("api", `{ "custom_fields": { "ba4ef52ee7f02f22ba933da067b00d9c9ec807ea": null } }`), 1},
		{"an API change of the write-back field and the value", body("api", `{ "custom_fields": { "`+idField+`": null }, "value": 100 }`), 1},
		{"an API change of the update time only", body("api", `{ "update_time": "2026-01-14T18:16:50Z" }`), 1},
	} {
		w := delivery(c.body, "")
		evs, err := s.Parse(w)
		if err != nil || len(evs) != c.events {
			t.Errorf("%s: %d events (%v), want %d", c.name, len(evs), err, c.events)
		}
		if echoed := c.events == 0; echoed != (len(w.Ignored) == 1 && strings.Contains(w.Ignored[0].Reason, "own write-back")) {
			t.Errorf("%s: ignored %+v", c.name, w.Ignored)
		}
	}
	// Without write-back fields nothing is an echo.
	plain := testSource(t, nil)
	if evs, err := plain.Parse(delivery(body("api", echo), "")); err != nil || len(evs) != 1 {
		t.Errorf("a source without write-back: %d events (%v), want 1", len(evs), err)
	}
}

// A merge sends two deliveries: the deal merged away is deleted (a delete
// with merged_to_id, dropped like every deletion: a run of it reads it as
// deleted), and the deal it went into changes, with merged_from_id, which
// the event keeps in Deal.Raw for triggers and operators (ids as strings
// in real deliveries, numbers in some examples).
func TestParseMergeDeliveries(t *testing.T) {
	s := testSource(t, nil)
	survivor := strings.Replace(wonNow, `"change_source": "app",`, `"change_source": "app", "merged_from_id": "200",`, 1)
	evs, err := s.Parse(delivery(survivor, ""))
	if err != nil || len(evs) != 1 {
		t.Fatalf("the surviving deal's change: %v %+v", err, evs)
	}
	if d := evs[0].Deal; d.ID != "213973" || d.Stage != "won" || string(d.Raw["merged_from_id"]) != "200" || d.Raw["merged_to_id"] != nil {
		t.Errorf("the surviving deal: %+v (raw merged_from_id %s); want merged_from_id 200 in Raw", d, d.Raw["merged_from_id"])
	}
	numeric := strings.Replace(survivor, `"merged_from_id": "200"`, `"merged_from_id": 200`, 1)
	if evs, err := s.Parse(delivery(numeric, "")); err != nil || len(evs) != 1 || string(evs[0].Deal.Raw["merged_from_id"]) != "200" {
		t.Errorf("a numeric merged_from_id: %v %+v", err, evs)
	}
	if evs, err := s.Parse(delivery(changeStage, "")); err != nil || evs[0].Deal.Raw["merged_from_id"] != nil {
		t.Errorf("a change that is no merge: %v, raw %v", err, evs[0].Deal.Raw)
	}

	mergedAway := strings.NewReplacer(`"action": "change"`, `"action": "delete"`, `"data": {`, `"data": null, "was": {`,
		`"change_source": "app",`, `"change_source": "app", "merged_to_id": "300",`).Replace(wonNow)
	if evs, err := s.Parse(delivery(mergedAway, "")); err != nil || len(evs) != 0 {
		t.Errorf("the deal merged away (delete with merged_to_id): %v %+v, want no event", err, evs)
	}
}
