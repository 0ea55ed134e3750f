package hubspot

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/sharedfiles"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

func parse(t *testing.T, s *Source, body string) []model.DealEvent {
	t.Helper()
	evs, err := s.Parse(&connectors.Webhook{Method: "POST", URL: oursURI, Body: []byte(body)})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return evs
}

func TestParseDefaultPipelineClosedWon(t *testing.T) {
	evs := parse(t, testSource(t, nil), constructedClosedwon)
	if len(evs) != 1 {
		t.Fatalf("got %d events", len(evs))
	}
	ev := evs[0]
	want := model.DealEvent{EventID: "1718190532", Account: "62515", Thin: true,
		OccurredAt: time.Date(2024, 5, 28, 12, 40, 0, 0, time.UTC),
		Deal:       model.Deal{ID: "1234567890", Stage: "closedwon"}}
	if ev.EventID != want.EventID || ev.Account != want.Account || !ev.Thin || !ev.OccurredAt.Equal(want.OccurredAt) ||
		ev.Deal.ID != want.Deal.ID || ev.Deal.Stage != want.Deal.Stage || ev.Deal.PreviousStage != "" {
		t.Fatalf("got %+v\nwant %+v", ev, want)
	}
	if got := string(ev.Deal.Raw["dealstage"]); got != `"closedwon"` {
		t.Errorf("Raw[dealstage] = %s", got)
	}
	if got := string(ev.Deal.Raw["subscriptionType"]); got != `"deal.propertyChange"` {
		t.Errorf("Raw[subscriptionType] = %s", got)
	}
}

func TestParseCustomPipelineStageID(t *testing.T) {
	const uuid = "1f4f1ec1-8174-49f3-a112-4eaa4748e38e"
	// Not configured as won: the stage id comes through as sent.
	evs := parse(t, testSource(t, nil), capturedDealstage)
	if len(evs) != 1 || evs[0].Deal.Stage != uuid || evs[0].Deal.ID != "697680835" || evs[0].Account != "5799819" || evs[0].EventID != "802835955" {
		t.Fatalf("got %+v", evs)
	}
	// Configured on the account: reported as closedwon, id kept in Raw.
	s := testSource(t, func(c *Config) {
		a := c.Accounts["5799819"]
		a.WonStages = []string{uuid, "12345678"}
		c.Accounts["5799819"] = a
	})
	evs = parse(t, s, capturedDealstage)
	if evs[0].Deal.Stage != StageWon || string(evs[0].Deal.Raw["dealstage"]) != `"`+uuid+`"` {
		t.Fatalf("got stage %q raw %s", evs[0].Deal.Stage, evs[0].Deal.Raw["dealstage"])
	}
	// Another portal does not inherit that account's stage set.
	other := strings.Replace(capturedDealstage, `"portalId":5799819`, `"portalId":62515`, 1)
	if evs := parse(t, s, other); evs[0].Deal.Stage != uuid {
		t.Fatalf("portal 62515 got stage %q", evs[0].Deal.Stage)
	}
	// Numeric stage ids of custom pipelines, set for the whole connection.
	s = testSource(t, func(c *Config) { c.WonStages = []string{"98765432"} })
	num := strings.Replace(constructedClosedwon, `"propertyValue":"closedwon"`, `"propertyValue":"98765432"`, 1)
	if evs := parse(t, s, num); evs[0].Deal.Stage != StageWon {
		t.Fatalf("numeric won stage: got %q", evs[0].Deal.Stage)
	}
	// The default pipeline's closedwon still counts when won_stages is set.
	if evs := parse(t, s, constructedClosedwon); evs[0].Deal.Stage != StageWon {
		t.Fatalf("closedwon with won_stages set: got %q", evs[0].Deal.Stage)
	}
}

func TestParseSharedSamples(t *testing.T) {
	s := testSource(t, nil)
	for file, want := range map[string]string{
		"hubspot-deal-propertychange-dealstage.captured.json":    capturedDealstage,
		"hubspot-deal-propertychange-closedwon.constructed.json": constructedClosedwon,
	} {
		body := sharedfiles.Webhook(t, file)
		if string(body) != want {
			t.Fatalf("%s differs from the inlined copy", file)
		}
		evs, err := s.Parse(&connectors.Webhook{Body: body})
		if err != nil || len(evs) != 1 || !evs[0].Thin {
			t.Errorf("%s: %v %+v", file, err, evs)
		}
	}
	// The v1 docs body is a contact event: no deal events, no error.
	evs, err := s.Parse(&connectors.Webhook{Body: sharedfiles.Webhook(t, "hubspot-v1-docs-body.json")})
	if err != nil || len(evs) != 0 {
		t.Fatalf("contact.creation: got %v, %+v", err, evs)
	}
}

// A burst as HubSpot sends it: several properties of one deal, other
// objects, generic object.* subscriptions, and ids beyond 2^53.
const burst = `[
 {"eventId":100,"subscriptionId":1,"portalId":62515,"appId":9,"occurredAt":1716900000001,"subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":1234567890,"propertyName":"amount","propertyValue":"12000.50","changeSource":"CRM_UI"},
 {"eventId":101,"subscriptionId":1,"portalId":62515,"appId":9,"occurredAt":1716900000002,"subscriptionType":"deal.propertyChange","attemptNumber":1,"objectId":1234567890,"propertyName":"dealstage","propertyValue":"closedwon","changeSource":"CRM_UI"},
 {"eventId":102,"subscriptionId":2,"portalId":62515,"appId":9,"occurredAt":1716900000003,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":77,"changeSource":"CRM"},
 {"eventId":103,"subscriptionId":3,"portalId":62515,"appId":9,"occurredAt":1716900000004,"subscriptionType":"deal.creation","attemptNumber":0,"objectId":99000000001,"changeSource":"CRM"},
 {"eventId":104,"subscriptionId":4,"portalId":62515,"appId":9,"occurredAt":1716900000005,"subscriptionType":"object.propertyChange","objectTypeId":"0-3","attemptNumber":0,"objectId":9007199254740993,"propertyName":"dealstage","propertyValue":"closedwon","changeSource":"API"},
 {"eventId":105,"subscriptionId":5,"portalId":62515,"appId":9,"occurredAt":1716900000006,"subscriptionType":"object.propertyChange","objectTypeId":"0-1","attemptNumber":0,"objectId":5,"propertyName":"email","propertyValue":"a@b.c"},
 {"eventId":106,"subscriptionId":6,"portalId":62515,"appId":9,"occurredAt":1716900000007,"subscriptionType":"conversation.newMessage","attemptNumber":0,"objectId":6},
 {"eventId":9223372036854775807,"subscriptionId":7,"portalId":62515,"appId":9,"occurredAt":1716900000008,"subscriptionType":"deal.deletion","attemptNumber":0,"objectId":1234567891}
]`

func TestParseBatchWithUnknownTypes(t *testing.T) {
	evs := parse(t, testSource(t, nil), burst)
	type row struct{ id, deal, stage string }
	var got []row
	for _, e := range evs {
		got = append(got, row{e.EventID, e.Deal.ID, e.Deal.Stage})
		if !e.Thin || e.Account != "62515" {
			t.Errorf("event %s: thin=%v account=%q", e.EventID, e.Thin, e.Account)
		}
	}
	want := []row{
		{"100", "1234567890", ""},
		{"101", "1234567890", "closedwon"},
		{"103", "99000000001", ""},
		{"104", "9007199254740993", "closedwon"}, // beyond 2^53, digit for digit
		{"9223372036854775807", "1234567891", ""},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events:\n got %v\nwant %v", got, want)
	}
	if string(evs[0].Deal.Raw["propertyName"]) != `"amount"` || string(evs[0].Deal.Raw["propertyValue"]) != `"12000.50"` {
		t.Errorf("amount change Raw = %v", evs[0].Deal.Raw)
	}
}

func TestParseLargePortalID(t *testing.T) {
	const big = "4294967297" // > 2^32
	s := testSource(t, func(c *Config) { c.Accounts[big] = Account{AccessToken: secret.New("pat")} })
	body := strings.Replace(constructedClosedwon, `"portalId":62515`, `"portalId":`+big, 1)
	if evs := parse(t, s, body); evs[0].Account != big {
		t.Fatalf("Account = %q", evs[0].Account)
	}
}

func TestParseUnknownAccount(t *testing.T) {
	s := testSource(t, func(c *Config) { delete(c.Accounts, "5799819") })
	// A batch that mixes portals keeps the events of the configured one
	// (62515) and drops the other's (5799819): refusing the batch would
	// lose both once HubSpot stops retrying.
	mixed := "[" + strings.Trim(constructedClosedwon, "[]") + "," + strings.Trim(capturedDealstage, "[]") + "]"
	hook := &connectors.Webhook{Body: []byte(mixed)}
	evs, err := s.Parse(hook)
	if err != nil || len(evs) != 1 || evs[0].Account != "62515" || len(hook.Dropped) != 1 {
		t.Fatalf("mixed batch: %+v, %v, %v dropped; want the configured portal's event only, 1 dropped", evs, err, hook.Dropped)
	}
	// Each dropped event says which it is and why, for the intake's answer.
	var other Event
	if err := json.Unmarshal([]byte(strings.Trim(capturedDealstage, "[] \n")), &other); err != nil {
		t.Fatal(err)
	}
	want := connectors.IgnoredEvent{EventID: other.EventID.String(), DealID: other.ObjectID.String(),
		Reason: "dropped: HubSpot portal 5799819 is not among the connection's accounts, so its events start no run"}
	if hook.Dropped[0] != want {
		t.Errorf("dropped %+v, want %+v", hook.Dropped[0], want)
	}
	// Parsed again, the counts are set anew, also when the body is refused.
	hook.Body = []byte("not a batch")
	if _, err := s.Parse(hook); !errors.Is(err, connectors.ErrMalformed) || len(hook.Dropped) != 0 {
		t.Fatalf("the same Webhook with a malformed body: %v, %v dropped; want ErrMalformed, 0 dropped", err, hook.Dropped)
	}
	// A batch with no event of a configured portal is refused (403).
	_, err = s.Parse(&connectors.Webhook{Body: []byte(capturedDealstage)})
	if !errors.Is(err, connectors.ErrUnknownAccount) || !strings.Contains(err.Error(), "5799819") {
		t.Fatalf("only an unknown portal: got %v", err)
	}
	// Also for events that would be dropped: the portal is not ours.
	contact := `[{"eventId":1,"portalId":111,"subscriptionType":"contact.creation","objectId":1}]`
	if _, err := s.Parse(&connectors.Webhook{Body: []byte(contact)}); !errors.Is(err, connectors.ErrUnknownAccount) {
		t.Fatalf("contact event of unknown portal: got %v", err)
	}
}

func TestParseMalformed(t *testing.T) {
	s := testSource(t, nil)
	many := "[" + strings.Repeat(strings.Trim(constructedClosedwon, "[]")+",", 100) + strings.Trim(constructedClosedwon, "[]") + "]"
	for name, body := range map[string]string{
		"empty":            "",
		"object":           strings.Trim(constructedClosedwon, "[]"),
		"not json":         "[{",
		"empty array":      "[]",
		"101 events":       many,
		"eventId string":   `[{"eventId":"abc","portalId":62515,"subscriptionType":"deal.creation","objectId":1}]`,
		"no portalId":      `[{"eventId":1,"subscriptionType":"deal.creation","objectId":1}]`,
		"no objectId":      `[{"eventId":1,"portalId":62515,"subscriptionType":"deal.creation"}]`,
		"negative eventId": `[{"eventId":-1,"portalId":62515,"subscriptionType":"deal.creation","objectId":1}]`,
		"stage an object":  `[{"eventId":1,"portalId":62515,"subscriptionType":"deal.propertyChange","objectId":1,"propertyName":"dealstage","propertyValue":{}}]`,
		"element a string": `["x"]`,
		"not UTF-8":        "[{\"eventId\":1,\"portalId\":62515,\"subscriptionType\":\"deal.propertyChange\",\"objectId\":1,\"propertyName\":\"dealstage\",\"propertyValue\":\"closed\xffwon\"}]",
	} {
		if _, err := s.Parse(&connectors.Webhook{Body: []byte(body)}); !errors.Is(err, connectors.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	// Compressed without a Content-Encoding: said so, not "not JSON".
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(constructedClosedwon))
	zw.Close()
	if _, err := s.Parse(&connectors.Webhook{Body: gz.Bytes()}); !errors.Is(err, connectors.ErrMalformed) ||
		!strings.Contains(err.Error(), "the body looks gzip-compressed (it starts with the bytes 1f 8b) and came without a Content-Encoding: send it uncompressed") {
		t.Errorf("gzip: %v", err)
	}
	// 100 events is fine.
	hundred := "[" + strings.Repeat(strings.Trim(constructedClosedwon, "[]")+",", 99) + strings.Trim(constructedClosedwon, "[]") + "]"
	if evs := parse(t, s, hundred); len(evs) != 100 {
		t.Fatalf("100 events: got %d", len(evs))
	}
}

// One event of a batch that cannot be read is left out and reported, and
// the batch's other events go through: HubSpot does not send a delivery
// answered 400 again, and its won deal would be lost with the bad event.
func TestParseLeavesOutAnUnreadableEventOfABatch(t *testing.T) {
	s := testSource(t, nil)
	good := strings.Trim(constructedClosedwon, "[]")
	for name, bad := range map[string]string{
		"no objectId":     `{"eventId":2,"portalId":62515,"subscriptionType":"deal.creation"}`,
		"eventId string":  `{"eventId":"abc","portalId":62515,"subscriptionType":"deal.creation","objectId":1}`,
		"objectId object": `{"eventId":3,"portalId":62515,"subscriptionType":"deal.creation","objectId":{}}`,
		"stage an object": `{"eventId":4,"portalId":62515,"subscriptionType":"deal.propertyChange","objectId":1,"propertyName":"dealstage","propertyValue":{}}`,
		"a string":        `"x"`,
		// An id no HubSpot object has: its workflow ID would be longer
		// than Temporal takes, and the delivery answered 500 for ever.
		"objectId too long": `{"eventId":5,"portalId":62515,"subscriptionType":"deal.creation","objectId":` + strings.Repeat("9", 1200) + `}`,
		"eventId too long":  `{"eventId":` + strings.Repeat("9", 20) + `,"portalId":62515,"subscriptionType":"deal.creation","objectId":1}`,
		"portalId too long": `{"eventId":6,"portalId":` + strings.Repeat("9", 20) + `,"subscriptionType":"deal.creation","objectId":1}`,
		// Text that is not UTF-8, in an event of another object: that
		// event is left out, not the batch (its won deal would be lost).
		"not UTF-8": "{\"eventId\":7,\"portalId\":62515,\"subscriptionType\":\"contact.propertyChange\",\"objectId\":5,\"propertyName\":\"firstname\",\"propertyValue\":\"Zo\xeb\"}",
	} {
		w := &connectors.Webhook{Body: []byte("[" + bad + "," + good + "]")}
		evs, err := s.Parse(w)
		if err != nil || len(evs) != 1 || evs[0].Deal.Stage != StageWon {
			t.Errorf("%s: %+v, %v; want the good event", name, evs, err)
		}
		if len(w.Unreadable) != 1 || !errors.Is(w.Unreadable[0], connectors.ErrMalformed) || !strings.Contains(w.Unreadable[0].Error(), "[0]") {
			t.Errorf("%s: unreadable %v, want the first event's error", name, w.Unreadable)
			continue
		}
		// Its eventId, when it could be read, for the reply and the log.
		want := map[string]string{"no objectId": "2", "objectId object": "3", "stage an object": "4", "objectId too long": "5", "portalId too long": "6", "not UTF-8": "7"}[name]
		if got := connectors.UnreadableEventID(w.Unreadable[0]); got != want {
			t.Errorf("%s: the unreadable event's id %q, want %q", name, got, want)
		}
	}
	// An event that cannot be read is named by its eventId when that can
	// be read, as the reply and the log then say which event was left out.
	w := &connectors.Webhook{Body: []byte(`[{"eventId":9003,"portalId":62515,"subscriptionType":"deal.creation","objectId":"zz"},` + good + `]`)}
	if _, err := s.Parse(w); err != nil || len(w.Unreadable) != 1 || !strings.Contains(w.Unreadable[0].Error(), "[0] (eventId 9003)") {
		t.Errorf("unreadable objectId: %v, unreadable %v; want it named by its eventId", err, w.Unreadable)
	}
	// A bad event beside events of an unlisted portal only: malformed (the
	// bad one may be ours), not "unknown portal".
	w = &connectors.Webhook{Body: []byte(`[{"eventId":2,"portalId":62515,"subscriptionType":"deal.creation"},` +
		`{"eventId":3,"portalId":999,"subscriptionType":"deal.creation","objectId":1}]`)}
	if _, err := s.Parse(w); !errors.Is(err, connectors.ErrMalformed) || errors.Is(err, connectors.ErrUnknownAccount) || len(w.Dropped) != 0 {
		t.Errorf("unreadable and unlisted: %v (dropped %v); want ErrMalformed", err, w.Dropped)
	}
	// Two bad events and nothing else: the delivery is malformed.
	w = &connectors.Webhook{Body: []byte(`[{"eventId":2,"portalId":62515,"subscriptionType":"deal.creation"},"x"]`)}
	if _, err := s.Parse(w); !errors.Is(err, connectors.ErrMalformed) || !strings.Contains(err.Error(), "and 1 more") || w.Unreadable != nil {
		t.Errorf("nothing readable: %v, unreadable %v; want ErrMalformed", err, w.Unreadable)
	}
}

func BenchmarkParse(b *testing.B) {
	s := testSource(b, nil)
	w := &connectors.Webhook{Body: []byte(burst)}
	b.ReportAllocs()
	b.SetBytes(int64(len(w.Body)))
	for b.Loop() {
		if _, err := s.Parse(w); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseBatch100(b *testing.B) {
	s := testSource(b, nil)
	one := strings.Trim(constructedClosedwon, "[]")
	w := &connectors.Webhook{Body: []byte("[" + strings.Repeat(one+",", 99) + one + "]")}
	b.ReportAllocs()
	b.SetBytes(int64(len(w.Body)))
	for b.Loop() {
		if _, err := s.Parse(w); err != nil {
			b.Fatal(err)
		}
	}
}

// A portal subscribed to every deal property sees dealsync's own
// write-back as property changes: they are no events (a lingering run
// took each as a change of the invoiced deal). Other properties still are.
func TestParseSkipsTheWriteBackProperties(t *testing.T) {
	s := testSource(t, nil)
	ev := func(id, source, property, value string) string {
		return fmt.Sprintf(`{"eventId":%s,"subscriptionId":1,"portalId":62515,"appId":1,"occurredAt":1716900000000,
"subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":1234567890,"changeSource":%q,
"propertyName":%q,"propertyValue":%q}`, id, source, property, value)
	}
	body := "[" + strings.Join([]string{
		ev("1", "INTEGRATION", s.write.InvoiceIDProperty, "INV-1"),
		ev("2", "INTEGRATION", s.write.InvoiceNumberProperty, "SBX-1"),
		ev("3", "API", strings.ToUpper(s.write.InvoiceURLProperty), "https://erp.example/INV-1"),
		ev("4", "INTEGRATION", s.write.StatusProperty, "synced"),
		ev("5", "INTEGRATION", "amount", "120"),
		ev("6", "CRM_UI", s.write.InvoiceIDProperty, ""), // a person cleared it
	}, ",") + "]"
	var got []string
	w := &connectors.Webhook{Body: []byte(body)}
	evs, err := s.Parse(w)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		got = append(got, e.EventID)
	}
	if strings.Join(got, ",") != "5,6" {
		t.Fatalf("events %v, want the amount change (5) and the person's edit (6)", got)
	}
	// Each echo is left out with its reason, for the intake's answer.
	var ignored []string
	for _, ig := range w.Ignored {
		if ig.DealID == "1234567890" && strings.Contains(ig.Reason, "dealsync's own write-back") {
			ignored = append(ignored, ig.EventID)
		}
	}
	if strings.Join(ignored, ",") != "1,2,3,4" {
		t.Errorf("ignored %+v, want events 1-4 as dealsync's own write-back of deal 1234567890", w.Ignored)
	}
}

// An association change (a line item linked to a deal) names its objects
// by fromObjectId and toObjectId, without objectId: it is dropped, and the
// won deal of the same batch goes through; refusing the batch would lose
// it (HubSpot may not send a 4xx delivery again).
func TestParseDropsAssociationChanges(t *testing.T) {
	body := `[
 {"eventId":201,"subscriptionId":1,"portalId":62515,"appId":9,"occurredAt":1716900000001,"subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":1234567890,"propertyName":"dealstage","propertyValue":"closedwon","changeSource":"CRM_UI"},
 {"eventId":202,"subscriptionId":2,"portalId":62515,"appId":9,"occurredAt":1716900000002,"subscriptionType":"deal.associationChange","attemptNumber":0,"fromObjectId":1234567890,"toObjectId":999,"associationType":"DEAL_TO_LINE_ITEM","associationRemoved":false,"isPrimaryAssociation":false}
]`
	w := &connectors.Webhook{Body: []byte(body)}
	evs, err := testSource(t, nil).Parse(w)
	if err != nil || len(evs) != 1 || evs[0].EventID != "201" || evs[0].Deal.Stage != "closedwon" {
		t.Fatalf("events %+v (%v), want the won deal alone", evs, err)
	}
	if len(w.Ignored) != 1 || w.Ignored[0].EventID != "202" || !strings.Contains(w.Ignored[0].Reason, `(subscriptionType "deal.associationChange")`) {
		t.Errorf("ignored %+v, want event 202 with its subscription type", w.Ignored)
	}
}

// A fetched deal as a webhook says it: the fields of a stage change, as
// Parse reads them from one, and none of the deal's properties.
func TestWebhookDealIsAStageChange(t *testing.T) {
	s := testSource(t, nil)
	evs := parse(t, s, constructedClosedwon)
	got := s.WebhookDeal(model.Deal{ID: evs[0].Deal.ID, Name: "Renewal", Stage: StageWon,
		Raw: map[string]json.RawMessage{"dealstage": json.RawMessage(`"closedwon"`), "amount": json.RawMessage(`"480.00"`)}})
	if got.ID != evs[0].Deal.ID || got.Stage != evs[0].Deal.Stage || got.Name != "" {
		t.Errorf("deal %+v, want as parsed %+v", got, evs[0].Deal)
	}
	for k, v := range got.Raw {
		if string(evs[0].Deal.Raw[k]) != string(v) {
			t.Errorf("raw %s = %s, a webhook's is %s", k, v, evs[0].Deal.Raw[k])
		}
	}
	if _, ok := got.Raw["amount"]; ok || len(got.Raw) != 4 {
		t.Errorf("raw %s, want the event's four fields", got.Raw)
	}
}

// A deal restored from the recycling bin sends no stage change: it is
// taken as possibly won, so its run reads it and invoices it if it is won.
// A merge starts no run: it keeps its deals in Raw and is logged for an
// operator, since the deal it made may repeat an invoiced sale.
func TestParseRestoreAndMerge(t *testing.T) {
	body := `[
 {"eventId":301,"subscriptionId":1,"portalId":62515,"appId":9,"occurredAt":1716900000001,"subscriptionType":"deal.restore","attemptNumber":0,"objectId":111,"changeSource":"CRM_UI"},
 {"eventId":302,"subscriptionId":2,"portalId":62515,"appId":9,"occurredAt":1716900000002,"subscriptionType":"object.restore","objectTypeId":"0-3","attemptNumber":0,"objectId":112},
 {"eventId":303,"subscriptionId":3,"portalId":62515,"appId":9,"occurredAt":1716900000003,"subscriptionType":"deal.merge","attemptNumber":0,"objectId":113,"primaryObjectId":113,"mergedObjectIds":[114],"newObjectId":115,"numberOfPropertiesMoved":4},
 {"eventId":304,"subscriptionId":4,"portalId":62515,"appId":9,"occurredAt":1716900000004,"subscriptionType":"object.restore","objectTypeId":"0-1","attemptNumber":0,"objectId":116}
]`
	var logs strings.Builder
	s := testSource(t, nil)
	s.log = slog.New(slog.NewTextHandler(&logs, nil))
	w := &connectors.Webhook{Body: []byte(body)}
	evs, err := s.Parse(w)
	if err != nil || len(evs) != 3 {
		t.Fatalf("events %+v (%v), want the two restores and the merge (the contact's restore ignored)", evs, err)
	}
	for _, ev := range evs[:2] {
		if ev.Deal.Stage != StageWon || string(ev.Deal.Raw["restored"]) != "true" || !ev.Thin {
			t.Errorf("restore %s: stage %q raw %s, want possibly won (%s) and marked restored", ev.EventID, ev.Deal.Stage, ev.Deal.Raw, StageWon)
		}
	}
	if evs[0].Deal.ID != "111" || evs[1].Deal.ID != "112" {
		t.Errorf("restored deals %s, %s, want 111, 112", evs[0].Deal.ID, evs[1].Deal.ID)
	}
	m := evs[2]
	if m.Deal.Stage != "" || string(m.Deal.Raw["merged_into"]) != `"115"` || string(m.Deal.Raw["merged_ids"]) != `["114"]` {
		t.Errorf("merge: stage %q raw %s, want no stage and its deals", m.Deal.Stage, m.Deal.Raw)
	}
	if got := logs.String(); !strings.Contains(got, "a merge starts no run") || !strings.Contains(got, "merged_into=115") ||
		!strings.Contains(got, "dealsync deals sync") {
		t.Errorf("log %q, want the merge and what to do", got)
	}
	// Without newObjectId, the deal kept is the primary one.
	noNew := strings.Replace(body, `,"newObjectId":115`, "", 1)
	evs, err = s.Parse(&connectors.Webhook{Body: []byte(noNew)})
	if err != nil || string(evs[2].Deal.Raw["merged_into"]) != `"113"` {
		t.Errorf("merge without newObjectId: raw %s (%v), want merged into the primary 113", evs[2].Deal.Raw, err)
	}
}
