package generic

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

// issueExample is the event of the issue that introduced the generic source.
const issueExample = `{"event_id":"evt_1","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"D-1001","name":"Acme annual","stage":"closed_won","previous_stage":"negotiation","amount":"12000.00","currency":"EUR","close_date":"2026-11-20","owner":"jane","company":{"id":"C-1","name":"Acme GmbH","email":"ap@acme.example","tax_id":"DE123","address":{"line1":"...","city":"...","postal_code":"...","country":"DE"}},"line_items":[{"sku":"PRO-1Y","description":"Pro plan, 1 year","quantity":"1","unit_price":"12000.00","discount":"0","discount_percent":"0"}]}}`

func newTestSource(t testing.TB) *Source {
	t.Helper()
	s, err := New(Config{Secret: secret.New(vecSecret)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signedWebhook is a delivery of body signed with the vector secret at ts.
func signedWebhook(t testing.TB, msgID string, ts time.Time, body string) *connectors.Webhook {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://sync.example.com/webhooks/generic", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if err := SignRequest(req, vecSecret, msgID, ts, []byte(body)); err != nil {
		t.Fatal(err)
	}
	return &connectors.Webhook{Method: req.Method, URL: req.URL.String(), Header: req.Header, Body: []byte(body), Received: ts}
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func wantMalformed(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if !errors.Is(err, connectors.ErrMalformed) {
		t.Fatalf("err = %v, want an error wrapping ErrMalformed", err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("err = %q, want it to contain %q", err, f)
		}
	}
}

func TestRegistered(t *testing.T) {
	spec, ok := connectors.LookupSource("generic")
	if !ok {
		t.Fatal(`source "generic" is not registered`)
	}
	if spec.Summary == "" {
		t.Error("empty Summary")
	}
	cfg, ok := spec.NewConfig().(*Config)
	if !ok {
		t.Fatalf("NewConfig() is %T, want *Config", spec.NewConfig())
	}
	if cfg.Tolerance != 5*time.Minute || !cfg.Secret.IsZero() {
		t.Fatalf("NewConfig() = %+v, want tolerance 5m and no secret", cfg)
	}

	cfg.Secret = secret.New(vecSecret)
	src, err := spec.Build(cfg, connectors.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := src.(*Source); !ok {
		t.Fatalf("Build returned %T, want *Source", src)
	}
	if _, ok := src.(connectors.Acknowledger); ok {
		t.Error("the generic source must not implement Acknowledger")
	}
	w := signedWebhook(t, vecMsgID, vecTime, vecBody)
	if err := src.Verify(w); err != nil {
		t.Fatalf("built source Verify: %v", err)
	}

	// Build failures are returned as a nil Source, never a typed nil.
	if src, err := spec.Build("nope", connectors.Env{}); err == nil || src != nil {
		t.Errorf("Build(string) = %v, %v", src, err)
	}
}

func TestNewErrorsDoNotLeakTheSecret(t *testing.T) {
	const notBase64 = "whsec_this-is-not-base64!!"
	t.Setenv("DEALSYNC_GENERIC_TEST_SECRET", notBase64)
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "secret is required"},
		{Config{Secret: secret.New(notBase64)}, "not a Standard Webhooks secret"},
		{Config{Secret: secret.New("env:DEALSYNC_GENERIC_TEST_SECRET")}, "env:DEALSYNC_GENERIC_TEST_SECRET"},
		{Config{Secret: secret.New("env:DEALSYNC_GENERIC_TEST_UNSET")}, "DEALSYNC_GENERIC_TEST_UNSET is not set"},
		{Config{Secret: secret.New(vecSecret), Tolerance: -time.Second}, "negative"},
	}
	for _, c := range cases {
		s, err := New(c.cfg)
		if err == nil || s != nil {
			t.Errorf("New(%v) = %v, %v; want an error", c.cfg, s, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%v) = %q, want it to contain %q", c.cfg, err, c.want)
		}
		if strings.Contains(err.Error(), "this-is-not-base64") || strings.Contains(err.Error(), strings.TrimPrefix(vecSecret, "whsec_")) {
			t.Errorf("New error %q contains the secret", err)
		}
	}
}

// A secret shorter than Standard Webhooks' 24 bytes (a typed password
// read as base64) is valid but warned about.
func TestShortSecretsAreWarnedAbout(t *testing.T) {
	short, err := New(Config{Secret: secret.New("whsec_AA=="), PreviousSecret: secret.New("hunter22")})
	if err != nil {
		t.Fatal(err)
	}
	if w := short.ConfigWarnings(); len(w) != 2 || !strings.Contains(w[0], "secret is 1 bytes") || !strings.Contains(w[1], "previous_secret is 6 bytes") {
		t.Fatalf("warnings %q", w)
	}
	if w := newTestSource(t).ConfigWarnings(); len(w) != 0 {
		t.Fatalf("the spec's own secret: %q", w)
	}
}

func TestSourceVerify(t *testing.T) {
	s := newTestSource(t)
	if s.Tolerance() != DefaultTolerance {
		t.Fatalf("Tolerance() = %v, want the default", s.Tolerance())
	}
	w := signedWebhook(t, vecMsgID, vecTime, vecBody)
	if got := w.Header.Get("webhook-signature"); got != vecSig {
		t.Fatalf("test setup: signature %q, want the published %q", got, vecSig)
	}
	if err := s.Verify(w); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	// Received is the clock: six minutes later the delivery is stale.
	w.Received = vecTime.Add(6 * time.Minute)
	if err := s.Verify(w); !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "timestamp too old") {
		t.Fatalf("Verify(stale) = %v", err)
	}
	// Without Received, Now is used.
	w.Received = time.Time{}
	s.Now = func() time.Time { return vecTime.Add(-6 * time.Minute) }
	if err := s.Verify(w); !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "timestamp too new") {
		t.Fatalf("Verify(future, Now) = %v", err)
	}
	s.Now = func() time.Time { return vecTime.Add(time.Minute) }
	if err := s.Verify(w); err != nil {
		t.Fatalf("Verify(Now) = %v", err)
	}
	// Without either, the wall clock rejects a 2021 timestamp.
	s.Now = nil
	if err := s.Verify(w); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Fatalf("Verify(wall clock) = %v", err)
	}

	// The configured tolerance is used.
	wide, err := New(Config{Secret: secret.New(vecSecret), Tolerance: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	w.Received = vecTime.Add(6 * time.Minute)
	if err := wide.Verify(w); err != nil {
		t.Fatalf("Verify with tolerance 10m: %v", err)
	}

	// A different secret rejects.
	other, err := New(Config{Secret: secret.New("whsec_" + strings.Repeat("QUJD", 8))})
	if err != nil {
		t.Fatal(err)
	}
	w.Received = vecTime
	if err := other.Verify(w); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Fatalf("Verify(other secret) = %v", err)
	}
	if err := s.Verify(nil); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Fatalf("Verify(nil) = %v", err)
	}

	// While the secret is rotated, the one being retired still signs, and
	// the delivery says so; a stale one is refused all the same.
	rotating, err := New(Config{Secret: secret.New("whsec_" + strings.Repeat("QUJD", 8)), PreviousSecret: secret.New(vecSecret)})
	if err != nil {
		t.Fatal(err)
	}
	w.Received, w.PreviousSecret = vecTime, false
	if err := rotating.Verify(w); err != nil || !w.PreviousSecret {
		t.Fatalf("Verify(previous secret) = %v, PreviousSecret %v; want accepted and marked", err, w.PreviousSecret)
	}
	w.Received, w.PreviousSecret = vecTime.Add(6*time.Minute), false
	if err := rotating.Verify(w); !errors.Is(err, connectors.ErrUnauthorized) || w.PreviousSecret {
		t.Fatalf("Verify(previous secret, stale) = %v", err)
	}
	if _, err := New(Config{Secret: secret.New(vecSecret), PreviousSecret: secret.New("whsec_this-is-not-base64!")}); err == nil || !strings.Contains(err.Error(), "previous_secret") {
		t.Fatalf("a previous_secret that is not one: %v", err)
	}
}

// A signature that does not match says what to check (the setting the
// secret is read from, what the signature covers), by the names of the
// settings and headers only: neither secret nor the expected signature,
// which the answer would hand a forger. A refusal for another reason
// (a stale timestamp) says what it says without that advice.
func TestSourceVerifyMismatchSaysWhatToCheck(t *testing.T) {
	other := "whsec_" + strings.Repeat("QUJD", 8)
	src, err := Build(Config{Secret: secret.New(other), Tolerance: DefaultTolerance}, connectors.Env{
		ConfigKey: "connections.shop.source",
		KeyVar: func(key string) string {
			return "DEALSYNC_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(key))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	w := signedWebhook(t, vecMsgID, vecTime, vecBody)
	err = src.Verify(w)
	if !errors.Is(err, connectors.ErrUnauthorized) {
		t.Fatalf("Verify(other secret) = %v", err)
	}
	// The sender is answered the refusal alone (connectors.Terse).
	if got, want := connectors.Terse(err), "unauthorized: no matching signature (1 v1 signature(s) checked)"; got != want {
		t.Errorf("Terse(Verify(other secret)) = %q, want %q", got, want)
	}
	msg := err.Error()
	for _, want := range []string{
		"no matching signature (1 v1 signature(s) checked)",
		"check that the sender signs with the secret in connections.shop.source.secret (or DEALSYNC_CONNECTIONS_SHOP_SOURCE_SECRET)",
		"signs the webhook-id and webhook-timestamp it sends and the body byte for byte as sent",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("Verify(other secret) = %q, want it to contain %q", msg, want)
		}
	}
	key, _ := decodeSecret(other)
	expected := base64.StdEncoding.EncodeToString(computeSignature(key, vecMsgID, vecTime.Unix(), []byte(vecBody)))
	for _, leak := range []string{other, strings.TrimPrefix(other, "whsec_"), vecSecret, strings.TrimPrefix(vecSecret, "whsec_"), expected, strings.TrimPrefix(vecSig, "v1,")} {
		if strings.Contains(msg, leak) {
			t.Errorf("Verify(other secret) = %q: it contains %q", msg, leak)
		}
	}

	// svix- headers are named as sent; a previous secret is named too.
	rotating, err := New(Config{Secret: secret.New(other), PreviousSecret: secret.New("whsec_" + strings.Repeat("REVG", 8))})
	if err != nil {
		t.Fatal(err)
	}
	svix := http.Header{}
	for _, h := range [][2]string{{"webhook-id", "svix-id"}, {"webhook-timestamp", "svix-timestamp"}, {"webhook-signature", "svix-signature"}} {
		svix.Set(h[1], w.Header.Get(h[0]))
	}
	err = rotating.Verify(&connectors.Webhook{Header: svix, Body: []byte(vecBody), Received: vecTime})
	if want := "signs with the secret in the source's secret or the source's previous_secret, and signs the svix-id and svix-timestamp it sends"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Verify(svix, rotating) = %v, want it to contain %q", err, want)
	}

	// A signature header without a v1 signature compared none: the
	// secret is not what to check.
	nov1 := w.Header.Clone()
	nov1.Set("webhook-signature", "v1a,"+strings.TrimPrefix(vecSig, "v1,"))
	err = src.Verify(&connectors.Webhook{Header: nov1, Body: []byte(vecBody), Received: vecTime})
	if err == nil || !strings.Contains(err.Error(), "webhook-signature has no v1 signature (each is written v1,<base64>)") || strings.Contains(err.Error(), "check that") {
		t.Errorf("Verify(no v1) = %v, want its refusal alone", err)
	}

	// A stale delivery is refused for its time, without the advice.
	w.Received = vecTime.Add(6 * time.Minute)
	if err := src.Verify(w); err == nil || !strings.Contains(err.Error(), "timestamp too old") || strings.Contains(err.Error(), "check that") {
		t.Errorf("Verify(stale) = %v, want the timestamp's refusal alone", err)
	}
}

// issueExampleReceived is when issueExample is delivered: just after its
// occurred_at (one to come is refused).
var issueExampleReceived = time.Date(2026, time.November, 20, 10, 0, 5, 0, time.UTC)

func TestParseIssueExample(t *testing.T) {
	s := newTestSource(t)
	w := signedWebhook(t, "msg_1", issueExampleReceived, issueExample)
	events, err := s.Parse(w)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("%d events, want 1", len(events))
	}
	ev := events[0]
	if ev.EventID != "evt_1" || ev.Account != "" || ev.Thin {
		t.Errorf("event id/account/thin = %q/%q/%v", ev.EventID, ev.Account, ev.Thin)
	}
	if want := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC); !ev.OccurredAt.Equal(want) {
		t.Errorf("OccurredAt = %v, want %v", ev.OccurredAt, want)
	}
	d := ev.Deal
	if d.ID != "D-1001" || d.Name != "Acme annual" || d.Stage != "closed_won" || d.PreviousStage != "negotiation" ||
		d.Currency != "EUR" || d.Owner != "jane" {
		t.Errorf("deal scalars = %+v", d)
	}
	if !d.Amount.Valid || !d.Amount.Decimal.Equal(dec("12000")) || d.Amount.Decimal.StringFixed(2) != "12000.00" {
		t.Errorf("Amount = %+v", d.Amount)
	}
	if d.CloseDate != model.NewDate(2026, time.November, 20) || !d.CloseTime.IsZero() {
		t.Errorf("CloseDate = %v, CloseTime = %v", d.CloseDate, d.CloseTime)
	}
	wantCompany := model.Company{ID: "C-1", Name: "Acme GmbH", Email: "ap@acme.example", TaxID: "DE123",
		Address: model.Address{Line1: "...", City: "...", PostalCode: "...", Country: "DE"}}
	if d.Company != wantCompany {
		t.Errorf("Company = %+v, want %+v", d.Company, wantCompany)
	}
	if len(d.LineItems) != 1 {
		t.Fatalf("%d line items, want 1", len(d.LineItems))
	}
	li := d.LineItems[0]
	if li.SKU != "PRO-1Y" || li.Description != "Pro plan, 1 year" || !li.Quantity.Equal(dec("1")) ||
		!li.UnitPrice.Equal(dec("12000")) || !li.Discount.IsZero() || !li.DiscountPercent.IsZero() {
		t.Errorf("line item = %+v", li)
	}
	for _, k := range []string{"id", "name", "stage", "previous_stage", "amount", "currency", "close_date", "owner", "company", "line_items"} {
		if _, ok := d.Raw[k]; !ok {
			t.Errorf("Raw has no %q", k)
		}
	}
	if string(d.Raw["amount"]) != `"12000.00"` || string(d.Raw["id"]) != `"D-1001"` {
		t.Errorf("Raw amount/id = %s/%s", d.Raw["amount"], d.Raw["id"])
	}
	// The parsed event survives the model's own JSON round trip.
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var back model.DealEvent
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Deal.ID != "D-1001" || !back.Deal.LineItems[0].UnitPrice.Equal(dec("12000")) {
		t.Errorf("round trip = %+v", back)
	}
}

// The same event listed twice in a batch is taken once (a 400 would lose
// the batch's other events, as senders do not resend a 4xx); ids and
// stages are read without the spaces around them.
func TestParseRepeatsAndSpaces(t *testing.T) {
	evs, err := ParseEvents([]byte(`[{"event_id":"e","deal":{"id":"D","stage":"won"}}, {"event_id":"e","deal":{"id":"D","stage":"won"}} ,{"event_id":"f","deal":{"id":" D\n","stage":"won\t","previous_stage":" open"}}]`), "")
	if err != nil || len(evs) != 2 {
		t.Fatalf("%v, %d events; want e once and f", err, len(evs))
	}
	if d := evs[1].Deal; d.ID != "D" || d.Stage != "won" || d.PreviousStage != "open" {
		t.Fatalf("deal %+v: want id, stage and previous stage without the white space around them (a line break or tab there is no control character within)", d)
	}
}

// Invisible characters are refused in ids only: names, e-mail addresses
// and descriptions keep them as sent (a Persian name's zero-width
// non-joiner, an emoji's joiner, a bidi mark in mixed-script text), and
// spaces that show as spaces are kept in ids too. A line separator around
// a trimmed id is white space, trimmed as the others.
func TestParseInvisibleOutsideIDs(t *testing.T) {
	evs, err := ParseEvents([]byte(`{"event_id":"e","deal":{"id":"D\u00a01\u2028","stage":"won\u3000x","name":"Acme\u200b annual \u200f","owner":"jane",`+
		`"company":{"id":"C-1","name":"\u0645\u06cc\u200c\u0631\u0648\u0645","email":"ap@acme.example"},`+
		`"line_items":[{"sku":"S-1","description":"Plan \u202bA\u202c","quantity":1,"unit_price":"1"}]}}`), "")
	if err != nil {
		t.Fatal(err)
	}
	d := evs[0].Deal
	if d.ID != "D\u00a01" || d.Stage != "won\u3000x" || d.Name != "Acme\u200b annual \u200f" || d.Company.Name != "\u0645\u06cc\u200c\u0631\u0648\u0645" || d.LineItems[0].Description != "Plan \u202bA\u202c" {
		t.Errorf("id %+q, stage %+q, name %+q, company %+q, description %+q: want the names kept as sent, the no-break and ideographic spaces kept, the line separator around the id trimmed", d.ID, d.Stage, d.Name, d.Company.Name, d.LineItems[0].Description)
	}
}

// Stages and owners are words, not keys: a Persian stage or name written
// with a zero-width non-joiner, an emoji sequence with a joiner, a bidi
// mark are taken as sent (a batch with one such owner was refused whole).
// The format characters that show, such as the Arabic number sign U+0600,
// are taken in ids too.
func TestParseInvisibleInStagesAndOwners(t *testing.T) {
	const (
		won    = "\u0628\u0631\u0646\u062f\u0647\u200c\u0634\u062f\u0647" // برنده‌شده
		owner  = "\u0639\u0644\u06cc\u200c\u0631\u0636\u0627"             // علی‌رضا
		emoji  = "\U0001f9d1\u200d\U0001f4bc Won"                         // 🧑‍💼 Won
		number = "\u0600\u0661\u0662"                                     // ؀١٢
	)
	body, _ := json.Marshal([]map[string]any{
		{"event_id": "a", "deal": map[string]any{"id": "D-1", "stage": won, "previous_stage": "open\u200f", "owner": owner}},
		{"event_id": "b", "deal": map[string]any{"id": "D-2", "stage": emoji, "previous_stage": emoji, "owner": "Ana\u200d"}},
		{"event_id": "c" + number, "deal": map[string]any{"id": number, "stage": "won", "company": map[string]any{"id": "C" + number},
			"line_items": []any{map[string]any{"sku": "S\u06dd1\U000110bd", "quantity": 1, "unit_price": "1"}}}},
	})
	evs, err := ParseEvents(body, "")
	if err != nil || len(evs) != 3 {
		t.Fatalf("%d events, %v; want the three taken", len(evs), err)
	}
	if d := evs[0].Deal; d.Stage != won || d.Owner != owner || d.PreviousStage != "open\u200f" {
		t.Errorf("stage %+q, previous %+q, owner %+q: want them as sent", d.Stage, d.PreviousStage, d.Owner)
	}
	if d := evs[1].Deal; d.Stage != emoji || d.PreviousStage != emoji || d.Owner != "Ana\u200d" {
		t.Errorf("stage %+q, previous %+q, owner %+q: want them as sent", d.Stage, d.PreviousStage, d.Owner)
	}
	if e := evs[2]; e.EventID != "c"+number || e.Deal.ID != number || e.Deal.Company.ID != "C"+number || e.Deal.LineItems[0].SKU != "S\u06dd1\U000110bd" {
		t.Errorf("event %+q, deal %+q, company %+q, sku %+q: want the number signs kept", e.EventID, e.Deal.ID, e.Deal.Company.ID, e.Deal.LineItems[0].SKU)
	}
	// The header's id is a key too.
	if _, err := ParseEvents([]byte(`{"deal":{"id":"D-1","stage":"won"}}`), "msg\u200b1"); !errors.Is(err, connectors.ErrMalformed) {
		t.Errorf("webhook-id with U+200B: %v, want malformed", err)
	}
}

// A body compressed with gzip and sent without a Content-Encoding (which
// the intake refuses) is told so, not that its text is in another
// encoding than UTF-8.
func TestParseGzippedBody(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"event_id":"e","deal":{"id":"D-1","stage":"won"}}`))
	zw.Close()
	_, err := ParseEvents(gz.Bytes(), "msg_1")
	wantMalformed(t, err, "the body looks gzip-compressed (it starts with the bytes 1f 8b) and came without a Content-Encoding: send it uncompressed (a Content-Encoding is refused")
	if strings.Contains(err.Error(), "ISO-8859-1") {
		t.Errorf("%v: suggests another encoding", err)
	}
}

func TestParseBatch(t *testing.T) {
	body := `[
  {"event_id":"evt_a","deal":{"id":"D-1","stage":"closed_won","amount":100}},
  {"event_id":"evt_b","deal":{"id":"D-2","stage":"negotiation","currency":"usd"}},
  {"event_id":"evt_c","deal":{"id":"D-3","stage":"closed_lost","line_items":[]}}
]`
	events, err := ParseEvents([]byte(body), "msg_batch")
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("%d events, want 3", len(events))
	}
	for i, want := range []struct{ event, deal, stage string }{
		{"evt_a", "D-1", "closed_won"}, {"evt_b", "D-2", "negotiation"}, {"evt_c", "D-3", "closed_lost"},
	} {
		ev := events[i]
		if ev.EventID != want.event || ev.Deal.ID != want.deal || ev.Deal.Stage != want.stage {
			t.Errorf("event %d = %s %s %s, want %+v", i, ev.EventID, ev.Deal.ID, ev.Deal.Stage, want)
		}
		if !ev.OccurredAt.IsZero() {
			t.Errorf("event %d OccurredAt = %v, want zero (absent)", i, ev.OccurredAt)
		}
	}
	if !events[0].Deal.Amount.Valid || !events[0].Deal.Amount.Decimal.Equal(dec("100")) {
		t.Errorf("amount = %+v", events[0].Deal.Amount)
	}
	// Currency is passed through as given; none is fine too.
	if events[1].Deal.Currency != "usd" || events[0].Deal.Currency != "" || events[1].Deal.Amount.Valid {
		t.Errorf("currency/amount pass-through: %q %q %+v", events[1].Deal.Currency, events[0].Deal.Currency, events[1].Deal.Amount)
	}
}

func TestParseExactDecimals(t *testing.T) {
	body := `{"event_id":"e","deal":{"id":"D","stage":"won",
	  "amount": 12345678901234567.89,
	  "line_items":[
	    {"description":"a","quantity":3,"unit_price":0.1,"discount":0.30000000000000004},
	    {"description":"b","quantity":"1.5","unit_price":0.2,"discount_percent":12.5,"tax_rate":"7.50"},
	    {"description":"c","quantity":1e3,"unit_price":"12000.00","discount":"","tax_rate":0}
	  ]}}`
	events, err := ParseEvents([]byte(body), "")
	if err != nil {
		t.Fatal(err)
	}
	d := events[0].Deal
	if got := d.Amount.Decimal.String(); got != "12345678901234567.89" {
		t.Errorf("amount = %s, want the exact digits 12345678901234567.89", got)
	}
	a, b, c := d.LineItems[0], d.LineItems[1], d.LineItems[2]
	if sum := a.UnitPrice.Add(b.UnitPrice); !sum.Equal(dec("0.3")) {
		t.Errorf("0.1 + 0.2 = %s, want exactly 0.3", sum)
	}
	if got := a.Discount.String(); got != "0.30000000000000004" {
		t.Errorf("discount = %s, want the digits as sent", got)
	}
	if !a.Quantity.Equal(dec("3")) || !b.Quantity.Equal(dec("1.5")) || !b.DiscountPercent.Equal(dec("12.5")) {
		t.Errorf("quantities = %s %s, percent %s", a.Quantity, b.Quantity, b.DiscountPercent)
	}
	if !c.Quantity.Equal(dec("1000")) || c.UnitPrice.String() != "12000" || c.UnitPrice.Exponent() != -2 || !c.Discount.IsZero() {
		t.Errorf("line c = %+v (exp %d)", c, c.UnitPrice.Exponent())
	}
	// tax_rate: stated (0 included) or not.
	if a.TaxRate.Valid || !b.TaxRate.Valid || !b.TaxRate.Decimal.Equal(dec("7.5")) || !c.TaxRate.Valid || !c.TaxRate.Decimal.IsZero() {
		t.Errorf("tax rates = %v %v %v, want unset, 7.5 and 0", a.TaxRate, b.TaxRate, c.TaxRate)
	}
}

func TestParseRequiredFields(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{"event_id":"e","deal":{"stage":"won"}}`, "deal.id: is required"},
		{`{"event_id":"e","deal":{"id":"","stage":"won"}}`, "deal.id: is required"},
		{`{"event_id":"e","deal":{"id":"D"}}`, "deal.stage: is required"},
		{`{"event_id":"e","deal":{"id":"D","stage":"  "}}`, "deal.stage: is required"},
		{`{"event_id":"e"}`, "deal: is required"},
		{`{"event_id":"e","deal":null}`, "deal: is required"},
		{`{"event_id":"e","deal":"D-1"}`, "deal: want an object, got string"},
		{`[{"event_id":"a","deal":{"id":"D","stage":"won"}},{"event_id":"b","deal":{"stage":"won"}}]`, "[1].deal.id: is required"},
		{`[{"event_id":"a","deal":{"id":"D","stage":"won"}},"x"]`, "[1]: want an object, got string"},
		{`[null]`, "[0]: want an event object, got null"},
		// Ids go into workflow ids and search attributes, which Temporal
		// bounds: too long is the sender's 400, not a 500 on every retry.
		{`{"event_id":"e","deal":{"id":"` + strings.Repeat("9", 300) + `","stage":"won"}}`, "deal.id: is 300 bytes long; at most 255"},
		{`{"event_id":"` + strings.Repeat("e", 256) + `","deal":{"id":"D","stage":"won"}}`, "event_id: is 256 bytes long; at most 255"},
		{`{"event_id":"e","deal":{"id":"D-1\nD-2","stage":"won"}}`, "deal.id: holds the control character U+000A: ids, stages and SKUs are printable text"},
		{`{"event_id":"e","deal":{"id":"D-1","stage":"w\u0000on"}}`, "deal.stage: holds the control character U+0000"},
		{`{"event_id":"e","deal":{"id":"D-1","stage":"won","company":{"id":"C\u007f1"}}}`, "deal.company.id: holds the control character U+007F"},
		{`{"event_id":"e","deal":{"id":"D-1","stage":"won","company":{"id":"C1\n"}}}`, "deal.company.id: holds the control character U+000A"},
		{`{"event_id":"e","deal":{"id":"D-1","stage":"won","line_items":[{"sku":"SKU-1\t","quantity":1,"unit_price":"1"}]}}`, "deal.line_items[0].sku: holds the control character U+0009"},
		{`{"event_id":"e","deal":{"id":"SUR-\ud800","stage":"won"}}`, "deal.id: holds U+FFFD, the replacement character, or bytes that are not UTF-8 (what a lone UTF-16 surrogate escape such as \\ud800 decodes to)"},
		{`{"event_id":"e","deal":{"id":"D-1","stage":"won","company":{"id":"K-M\udbffller"}}}`, "deal.company.id: holds U+FFFD"},
		// Invisible characters: "M-50" and "M-50\u200b" would be two deals
		// (and customers, and invoices) that look the same.
		{`{"event_id":"e","deal":{"id":"M-50\u200b","stage":"won"}}`, "deal.id: holds U+200B, an invisible format character (a zero-width space or joiner, a byte order mark, a bidi control, a soft hyphen): ids and SKUs are printable text"},
		{`{"event_id":"e","deal":{"id":"\ufeffM-50","stage":"won"}}`, "deal.id: holds U+FEFF, an invisible format character"},
		{`{"event_id":"e","deal":{"id":"M-27\u202eX","stage":"won"}}`, "deal.id: holds U+202E, an invisible format character"},
		{`{"event_id":"e","deal":{"id":"D-1","stage":"won","company":{"id":"C-1\u200d"}}}`, "deal.company.id: holds U+200D, an invisible format character"},
		{`{"event_id":"e","deal":{"id":"D-1","stage":"won","line_items":[{"sku":"S\u2066-1","quantity":1,"unit_price":"1"}]}}`, "deal.line_items[0].sku: holds U+2066, an invisible format character"},
		{`{"event_id":"\ufeffe","deal":{"id":"D-1","stage":"won"}}`, "event_id: holds U+FEFF, an invisible format character"},
		{`{"event_id":"e","deal":{"id":"D-1","stage":"won","company":{"id":"C\u200b-1"}}}`, "deal.company.id: holds U+200B, an invisible format character"},
		{`{"event_id":"e","deal":{"id":"\u0600M\u200b-50","stage":"won"}}`, "deal.id: holds U+200B, an invisible format character"},
		{`{"event_id":"e","deal":{"id":"D-1","stage":"won","line_items":[{"sku":"SKU\u00ad1","quantity":1,"unit_price":"1"}]}}`, "deal.line_items[0].sku: holds U+00AD, an invisible format character"},
		{`{"event_id":"e\u2028f","deal":{"id":"D-1","stage":"won"}}`, "event_id: holds U+2028, a line or paragraph separator: ids and SKUs are printable text"},
		{`{"event_id":"e","deal":{"id":"D-1","stage":"won","company":{"id":"C-1\u2029"}}}`, "deal.company.id: holds U+2029, a line or paragraph separator"},
		{"{\"event_id\":\"e\",\"deal\":{\"id\":\"Zo\xeb-7\",\"stage\":\"won\"}}", "the body is not UTF-8: byte 0xEB at byte offset 32 (line 1, column 33) is not"},
		{"[\n{\"event_id\":\"e\",\"deal\":{\"id\":\"D\",\"stage\":\"won\",\n\"company\":{\"id\":\"K-M\xfcller\"}}}]", "byte 0xFC at byte offset 70 (line 3, column 21)"},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","currency":"` + strings.Repeat("E", 17) + `"}}`, "deal.currency: " + `"EEEEEEEEEEEEEEEEE" is not a currency code`},
	}
	for _, c := range cases {
		_, err := ParseEvents([]byte(c.body), "msg_1")
		t.Run(c.want, func(t *testing.T) { wantMalformed(t, err, c.want) })
	}
	// Both problems are named at once.
	_, err := ParseEvents([]byte(`{"deal":{"name":"x"}}`), "msg_1")
	wantMalformed(t, err, "deal.id: is required", "deal.stage: is required")
}

func TestParseBadValues(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{"event_id":"e","deal":{"id":"D","stage":"won","line_items":[{"quantity":"abc"}]}}`,
			`deal.line_items[0].quantity: "abc" is not a decimal`},
		{`[{"event_id":"a","deal":{"id":"D","stage":"won"}},{"event_id":"b","deal":{"id":"D","stage":"won","amount":true}}]`,
			`[1].deal.amount: true is not a decimal`},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","amount":"1,200.00"}}`, `deal.amount: "1,200.00" is not a decimal`},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","amount":"NaN"}}`, `deal.amount: "NaN" is not a decimal`},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","amount":{"value":1}}}`, `deal.amount: {"value":1} is not a decimal`},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","amount":1e999}}`, `deal.amount: 1e999 is out of range`},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","amount":"1` + strings.Repeat("0", 400) + `"}}`, `deal.amount: "1` + strings.Repeat("0", 39) + `"... is out of range`},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","amount":1e30}}`, `deal.amount: 1e30 is out of range`},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","line_items":[{},{"unit_price":"12,5"}]}}`,
			`deal.line_items[1].unit_price: "12,5" is not a decimal`},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","line_items":{"sku":"x"}}}`, `deal.line_items: want an array, got object`},
		{`{"event_id":"e","occurred_at":"20 Nov 2026","deal":{"id":"D","stage":"won"}}`, `occurred_at: "20 Nov 2026" is not an RFC 3339 timestamp`},
		{`{"event_id":"e","occurred_at":1763632800,"deal":{"id":"D","stage":"won"}}`, `occurred_at: want a string, got number`},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","close_date":"20.11.2026"}}`, `deal.close_date: "20.11.2026" is not a date`},
		{`{"event_id":"e","deal":{"id":"D","stage":{"id":3}}}`, `deal.stage: want a string or a number, got object`},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","name":42}}`, `deal.name: want a string, got number`},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","company":{"address":{"country":["DE"]}}}}`, `deal.company.address.country: want a string, got array`},
		{`{"event_id":["e"],"deal":{"id":"D","stage":"won"}}`, `event_id: want a string or a number, got array`},
		{`[{"event_id":"e","deal":{"id":"D","stage":"won"}},{"event_id":"e","deal":{"id":"D","stage":"lost"}}]`, `[1].event_id: "e" repeats the id of [0] with another event`},
		// Discount parts that cancel out (20 off and -10 %, -60 and 150 %)
		// billed differently by the built-in mapping and a mapping file.
		{`{"event_id":"e","deal":{"id":"D","stage":"won","line_items":[{"quantity":"1","unit_price":"100","discount":"20","discount_percent":"-10"}]}}`,
			`deal.line_items[0].discount_percent: must be between 0 and 100`},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","line_items":[{"quantity":"1","unit_price":"100","discount":"-60","discount_percent":"150"}]}}`,
			`deal.line_items[0].discount: must not be negative`},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","line_items":[{"quantity":"1","unit_price":"100","discount_percent":"100.5"}]}}`,
			`deal.line_items[0].discount_percent: must be between 0 and 100`},
		{`{"event_id":"e","deal":{"id":"D","stage":"won","line_items":[{"quantity":"1","unit_price":"100","tax_rate":"-19"}]}}`,
			`deal.line_items[0].tax_rate: must not be negative`},
	}
	for _, c := range cases {
		_, err := ParseEvents([]byte(c.body), "msg_1")
		t.Run(c.want, func(t *testing.T) { wantMalformed(t, err, c.want) })
	}
}

func TestParseNotJSON(t *testing.T) {
	cases := []struct{ body, want string }{
		{``, "empty body"},
		{" \n\t", "empty body"},
		{`not json`, "not JSON: invalid character 'o' in literal null (expecting 'u') at byte offset 2 (line 1, column 2)"},
		{`{"event_id":"e",`, "not JSON: unexpected end of JSON input at byte offset 16"},
		{"{\n  \"a\": 1,\n  \"b\" 2\n}", "(line 3, column 7)"},
		{`{"event_id":"e","deal":{"id":"D","stage":"won"}} trailing`, "not JSON: invalid character 't' after top-level value"},
		{`[{"event_id":"e"`, "not JSON: unexpected end of JSON input"},
		{`42`, "body is a JSON number"},
		{`"{}"`, "body is a JSON string"},
		{`[]`, "empty array"},
	}
	for _, c := range cases {
		_, err := ParseEvents([]byte(c.body), "msg_1")
		t.Run(c.body, func(t *testing.T) { wantMalformed(t, err, c.want) })
	}
	// Through the Source, too.
	s := newTestSource(t)
	_, err := s.Parse(&connectors.Webhook{Body: []byte("<xml/>")})
	wantMalformed(t, err, "not JSON")
	_, err = s.Parse(nil)
	wantMalformed(t, err)
}

func batchOf(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"event_id":"evt_%d","deal":{"id":"D-%d","stage":"closed_won","amount":"%d.50"}}`, i, i, i)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func TestParseBatchLimit(t *testing.T) {
	events, err := ParseEvents(batchOf(MaxBatch), "")
	if err != nil {
		t.Fatalf("%d events: %v", MaxBatch, err)
	}
	if len(events) != 100 || events[99].EventID != "evt_99" || events[99].Deal.Amount.Decimal.String() != "99.5" {
		t.Fatalf("got %d events, last %+v", len(events), events[len(events)-1])
	}
	_, err = ParseEvents(batchOf(MaxBatch+1), "")
	wantMalformed(t, err, "101 events in one delivery, at most 100 allowed")
}

func TestParseEventIDFallback(t *testing.T) {
	s := newTestSource(t)
	single := `{"deal":{"id":"D-1","stage":"closed_won"}}`
	events, err := s.Parse(signedWebhook(t, "msg_abc", vecTime, single))
	if err != nil {
		t.Fatal(err)
	}
	if events[0].EventID != "msg_abc" {
		t.Errorf("single event id = %q, want the webhook-id", events[0].EventID)
	}

	batch := `[{"deal":{"id":"D-1","stage":"won"}},{"event_id":"evt_own","deal":{"id":"D-2","stage":"won"}},{"event_id":"","deal":{"id":"D-3","stage":"won"}}]`
	events, err = s.Parse(signedWebhook(t, "msg_abc", vecTime, batch))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ev := range events {
		ids = append(ids, ev.EventID)
	}
	if got, want := strings.Join(ids, " "), "msg_abc evt_own msg_abc#2"; got != want {
		t.Errorf("event ids = %s, want %s", got, want)
	}
	// The same delivery retried gives the same ids.
	again, err := s.Parse(signedWebhook(t, "msg_abc", vecTime.Add(time.Minute), batch))
	if err != nil || again[2].EventID != "msg_abc#2" {
		t.Errorf("retry ids = %+v, %v", again, err)
	}

	// svix-id stands in as well.
	h := http.Header{}
	h.Set("svix-id", "msg_svix")
	events, err = s.Parse(&connectors.Webhook{Header: h, Body: []byte(single)})
	if err != nil || events[0].EventID != "msg_svix" {
		t.Errorf("svix fallback = %+v, %v", events, err)
	}

	// Numeric event ids keep their digits.
	events, err = ParseEvents([]byte(`{"event_id":98765432109876543210,"deal":{"id":12345678901,"stage":3}}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if ev := events[0]; ev.EventID != "98765432109876543210" || ev.Deal.ID != "12345678901" || ev.Deal.Stage != "3" {
		t.Errorf("numeric ids = %q %q %q", ev.EventID, ev.Deal.ID, ev.Deal.Stage)
	}

	// No event_id and no webhook-id: nothing to deduplicate on.
	_, err = s.Parse(&connectors.Webhook{Header: http.Header{}, Body: []byte(single)})
	wantMalformed(t, err, "event_id: is required")
}

func TestParseExtraFields(t *testing.T) {
	body := `{"event_id":"evt_x","schema":"dealsync.v1","source":{"crm":"in-house"},
	  "deal":{"id":"D-9","stage":"closed_won","hubspot_owner":{"id":17,"email":"x@example.com"},
	    "custom_po_number":"PO-4711","probability":0.95,
	    "company":{"id":"C-9","industry":"robots","address":{"country":"AT","planet":"earth"}},
	    "line_items":[{"sku":"X","quantity":"2","unit_price":"5","tax_code":"S"}]}}`
	events, err := ParseEvents([]byte(body), "")
	if err != nil {
		t.Fatal(err)
	}
	d := events[0].Deal
	if d.ID != "D-9" || d.Company.ID != "C-9" || d.Company.Address.Country != "AT" || len(d.LineItems) != 1 ||
		!d.LineItems[0].Quantity.Equal(dec("2")) {
		t.Errorf("deal = %+v", d)
	}
	for k, want := range map[string]string{
		"hubspot_owner":    `{"id":17,"email":"x@example.com"}`,
		"custom_po_number": `"PO-4711"`,
		"probability":      `0.95`,
		"stage":            `"closed_won"`,
	} {
		if got := string(d.Raw[k]); got != want {
			t.Errorf("Raw[%q] = %s, want %s", k, got, want)
		}
	}
	if !strings.Contains(string(d.Raw["company"]), `"industry":"robots"`) {
		t.Errorf("Raw company = %s", d.Raw["company"])
	}
	if len(d.Raw) != 7 {
		t.Errorf("Raw has %d keys, want the 7 top-level deal keys: %v", len(d.Raw), d.Raw)
	}
	// Raw does not alias the body.
	b := []byte(body)
	events, _ = ParseEvents(b, "")
	for i := range b {
		b[i] = ' '
	}
	if got := string(events[0].Deal.Raw["custom_po_number"]); got != `"PO-4711"` {
		t.Errorf("Raw changed with the body: %q", got)
	}
}

func BenchmarkVerify(b *testing.B) {
	s := newTestSource(b)
	w := signedWebhook(b, "msg_bench", vecTime, issueExample)
	b.ReportAllocs()
	b.SetBytes(int64(len(w.Body)))
	for b.Loop() {
		if err := s.Verify(w); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	s := newTestSource(b)
	w := signedWebhook(b, "msg_bench", issueExampleReceived, issueExample)
	b.ReportAllocs()
	b.SetBytes(int64(len(w.Body)))
	for b.Loop() {
		events, err := s.Parse(w)
		if err != nil || len(events) != 1 {
			b.Fatal(len(events), err)
		}
	}
}

// A close_date sent as a timestamp is the moment the deal closed: its date
// in the sender's offset, and the moment for a mapping's time_zone.
func TestParseCloseTimestamp(t *testing.T) {
	body := `{"event_id":"e","deal":{"id":"D","stage":"won","close_date":"2026-12-01T08:30:00+09:00"}}`
	events, err := ParseEvents([]byte(body), "")
	if err != nil {
		t.Fatal(err)
	}
	d := events[0].Deal
	if d.CloseDate != model.NewDate(2026, time.December, 1) || !d.CloseTime.Equal(time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC)) {
		t.Errorf("CloseDate %s, CloseTime %v", d.CloseDate, d.CloseTime)
	}
	// Midnight UTC is a date written as a timestamp: no moment.
	events, err = ParseEvents([]byte(`{"event_id":"e","deal":{"id":"D","stage":"won","close_date":"2026-12-01T00:00:00.000Z"}}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if d := events[0].Deal; d.CloseDate != model.NewDate(2026, time.December, 1) || !d.CloseTime.IsZero() {
		t.Errorf("midnight UTC: CloseDate %s, CloseTime %v", d.CloseDate, d.CloseTime)
	}
}

// An event_id taken from the webhook-id header is held to the limit of
// one in the body (maxIdent bytes): a longer one is refused as malformed
// (400), naming the event, not taken into a workflow id or search
// attribute that Temporal refuses on every retry.
func TestParseEventIDFallbackIsHeldToTheIdentLimit(t *testing.T) {
	s := newTestSource(t)
	single := `{"deal":{"id":"D-1","stage":"won"}}`
	_, err := s.Parse(signedWebhook(t, strings.Repeat("m", maxIdent+1), vecTime, single))
	wantMalformed(t, err, "event_id: is missing, and the id made of the webhook-id header", "is 256 bytes long; at most 255")
	if err != nil && strings.Contains(err.Error(), strings.Repeat("m", 41)) {
		t.Errorf("the error quotes the whole header: %v", err)
	}

	// At the limit it is taken; in a batch, the "#<index>" it gains counts.
	id := strings.Repeat("m", maxIdent)
	events, err := s.Parse(signedWebhook(t, id, vecTime, single))
	if err != nil || len(events) != 1 || events[0].EventID != id {
		t.Fatalf("a webhook-id of %d bytes: %v", maxIdent, err)
	}
	batch := `[{"deal":{"id":"D-1","stage":"won"}},{"deal":{"id":"D-2","stage":"won"}},{"event_id":"own","deal":{"id":"D-3","stage":"won"}}]`
	_, err = ParseEvents([]byte(batch), strings.Repeat("m", maxIdent-1))
	wantMalformed(t, err, "[1].event_id: is missing, and the id made of the webhook-id header", "is 256 bytes long; at most 255")
	if strings.Contains(err.Error(), "[0].event_id") {
		t.Errorf("the first event's id (the header, %d bytes) is within the limit: %v", maxIdent-1, err)
	}
}

// A body that starts with a byte order mark is read past it (RFC 8259
// lets a parser ignore one), its signature verified over the bytes as
// sent; a mark elsewhere is not JSON.
func TestParseReadsPastAByteOrderMark(t *testing.T) {
	s := newTestSource(t)
	w := signedWebhook(t, "msg_1", issueExampleReceived, "\xef\xbb\xbf"+issueExample)
	if err := s.Verify(w); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	events, err := s.Parse(w)
	if err != nil || len(events) != 1 || events[0].Deal.ID != "D-1001" {
		t.Fatalf("with a byte order mark: %+v, %v", events, err)
	}
	if _, err := ParseEvents([]byte(" \xef\xbb\xbf"+issueExample), "msg_1"); !errors.Is(err, connectors.ErrMalformed) {
		t.Errorf("a mark after a blank: %v, want malformed", err)
	}
}

// An event_id made of the webhook-id header is held to what an event_id
// in the body may hold: a tab or bytes that are not UTF-8 in the header
// are refused, naming where the id came from.
func TestParseEventIDFallbackIsText(t *testing.T) {
	body := []byte(`{"deal":{"id":"D-1","stage":"won"}}`)
	for _, id := range []string{"msg\t1", "msg_\xff1"} {
		_, err := ParseEvents(body, id)
		wantMalformed(t, err, "event_id (missing: the id made of the webhook-id header): holds")
	}
	if evs, err := ParseEvents(body, "msg_1"); err != nil || len(evs) != 1 || evs[0].EventID != "msg_1" {
		t.Errorf("webhook-id msg_1: %+v, %v", evs, err)
	}
}

// An event whose occurred_at is ahead of the receiver's clock by more
// than the signature's tolerance is refused (400), naming it: by that
// time it would outrank every later event of its deal, a real loss too.
// One within the tolerance, and one in the past, are taken.
func TestParseRefusesAnOccurredAtToCome(t *testing.T) {
	s := newTestSource(t)
	at := func(id string, d time.Duration) string {
		return fmt.Sprintf(`{"event_id":%q,"occurred_at":%q,"deal":{"id":"D-1","stage":"won"}}`, id, vecTime.Add(d).UTC().Format(time.RFC3339))
	}
	body := "[" + at("past", -48*time.Hour) + "," + at("skewed", 4*time.Minute) + "]"
	if evs, err := s.Parse(signedWebhook(t, "msg_1", vecTime, body)); err != nil || len(evs) != 2 {
		t.Fatalf("occurred_at in the past and 4 minutes ahead: %d events, %v; want both taken", len(evs), err)
	}
	body = "[" + at("past", -time.Hour) + "," + at("ahead", 90*time.Minute) + "]"
	_, err := s.Parse(signedWebhook(t, "msg_2", vecTime, body))
	wantMalformed(t, err, `event "ahead": occurred_at: `+vecTime.Add(90*time.Minute).UTC().Format(time.RFC3339)+" is 1h30m ahead of this server's clock, more than the 5m the signature allows")
	if err != nil && strings.Contains(err.Error(), `"past"`) {
		t.Errorf("the event of the past is named too: %v", err)
	}
}
