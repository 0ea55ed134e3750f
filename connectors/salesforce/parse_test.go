package salesforce

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/sharedfiles"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

// The two real captures of ../shared/webhooks, inlined.
const captured = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5w000004qGTOEA2</OrganizationId>
   <ActionId>04k5w000000TSwMAAW</ActionId>
   <SessionId>...</SessionId>
   <EnterpriseUrl>...</EnterpriseUrl>
   <PartnerUrl>...</PartnerUrl>
   <Notification>
    <Id>04l5w00005286hAAAQ</Id>
    <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0065w000023STAmAAO</sf:Id>
     <sf:AccountId>0015w00002BFDeLAAX</sf:AccountId>
     <sf:Amount>45000.0</sf:Amount>
     <sf:CloseDate>2020-07-11</sf:CloseDate>
     <sf:ContactId>0035w000035gg9GAAQ</sf:ContactId>
     <sf:CreatedById>0055w00000BhqR0AAJ</sf:CreatedById>
     <sf:CreatedDate>2020-05-08T13:40:22.000Z</sf:CreatedDate>
     <sf:FiscalQuarter>3</sf:FiscalQuarter>
     <sf:FiscalYear>2020</sf:FiscalYear>
     <sf:Follow_Up__c>false</sf:Follow_Up__c>
     <sf:HasOpenActivity>false</sf:HasOpenActivity>
     <sf:HasOpportunityLineItem>false</sf:HasOpportunityLineItem>
     <sf:HasOverdueTask>false</sf:HasOverdueTask>
     <sf:IsClosed>false</sf:IsClosed>
     <sf:IsDeleted>false</sf:IsDeleted>
     <sf:IsWon>false</sf:IsWon>
     <sf:LastModifiedById>0055w00000BhqR0AAJ</sf:LastModifiedById>
     <sf:LastModifiedDate>2020-05-09T03:04:32.000Z</sf:LastModifiedDate>
     <sf:LastReferencedDate>2020-05-09T03:06:37.000Z</sf:LastReferencedDate>
     <sf:LastViewedDate>2020-05-09T03:06:37.000Z</sf:LastViewedDate>
     <sf:LeadSource>External Referral</sf:LeadSource>
     <sf:Name>Backpackers, Inc. (Sample)</sf:Name>
     <sf:OwnerId>0055w00000BhqR0AAJ</sf:OwnerId>
     <sf:Probability>80.0</sf:Probability>
     <sf:StageName>Negotiation/Review</sf:StageName>
     <sf:SystemModstamp>2020-05-09T03:04:32.000Z</sf:SystemModstamp>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body> 
</soapenv:Envelope>
`

const minified = `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>00D7F00000107XsUAI</OrganizationId><ActionId>04k7F0000008V3hQAE</ActionId><SessionId xsi:nil="true"/><EnterpriseUrl>https://ap5.salesforce.com/services/Soap/c/47.0/00D7F00000107Xs</EnterpriseUrl><PartnerUrl>https://ap5.salesforce.com/services/Soap/u/47.0/00D7F00000107Xs</PartnerUrl><Notification><Id>04l7F000008aeAyQAI</Id><sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>0067F000003pmdWQAQ</sf:Id><sf:AccountId>0017F000007ydJmQAI</sf:AccountId><sf:Amount>120000.0</sf:Amount><sf:CloseDate>2017-04-03</sf:CloseDate><sf:LeadSource>Phone Inquiry</sf:LeadSource><sf:Name>Express Logistics SLA</sf:Name><sf:StageName>Perception Analysis</sf:StageName></sObject></Notification></notifications></soapenv:Body></soapenv:Envelope>`

const (
	orgA = "00D5w000004qGTOEA2"
	orgB = "00D7F00000107XsUAI"
)

func testSource(t testing.TB, mutate func(*Config)) *Source {
	t.Helper()
	return testSourceIn(t, connectors.Env{}, mutate)
}

// testSourceIn is testSource built in env (a config key).
func testSourceIn(t testing.TB, env connectors.Env, mutate func(*Config)) *Source {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Accounts = map[string]Account{
		// Lower-cased, as the config loader delivers map keys.
		strings.ToLower(orgA): {InstanceURL: "https://a.my.salesforce.com", ClientID: "cid-a", ClientSecret: secret.New("cs-a")},
		orgB:                  {InstanceURL: "https://b.my.salesforce.com", ClientID: "cid-b", ClientSecret: secret.New("cs-b")},
	}
	// Most tests exercise parsing; TestVerifyEndpointToken covers the token.
	cfg.AllowUnauthenticated = true
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg, env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func parse(t *testing.T, s *Source, body string) []model.DealEvent {
	t.Helper()
	evs, err := s.Parse(&connectors.Webhook{Body: []byte(body)})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return evs
}

func TestParseCaptured(t *testing.T) {
	s := testSource(t, nil)
	evs := parse(t, s, captured)
	if len(evs) != 1 {
		t.Fatalf("events: %+v", evs)
	}
	ev := evs[0]
	// Account is the configured key (lower-cased here, as the config loader
	// delivers it), not the payload's spelling: it must match account_targets.
	if ev.EventID != "04l5w00005286hAAAQ" || ev.Account != strings.ToLower(orgA) || !ev.Thin || ev.Deal.ID != "0065w000023STAmAAO" ||
		ev.Deal.Name != "Backpackers, Inc. (Sample)" || ev.Deal.Stage != "Negotiation/Review" || ev.Deal.PreviousStage != "" ||
		ev.OccurredAt.Format("2006-01-02T15:04:05Z") != "2020-05-09T03:04:32Z" {
		t.Fatalf("event: %+v", ev)
	}
	if string(ev.Deal.Raw["Amount"]) != `"45000.0"` || string(ev.Deal.Raw["Follow_Up__c"]) != `"false"` || len(ev.Deal.Raw) != 26 {
		t.Errorf("Raw (%d fields): %v", len(ev.Deal.Raw), ev.Deal.Raw)
	}
	evs = parse(t, s, minified)
	if len(evs) != 1 || evs[0].Account != orgB || evs[0].Deal.ID != "0067F000003pmdWQAQ" || evs[0].EventID != "04l7F000008aeAyQAI" ||
		evs[0].Deal.Stage != "Perception Analysis" || !evs[0].OccurredAt.IsZero() {
		t.Fatalf("minified: %+v", evs)
	}
}

func TestParseSharedSamples(t *testing.T) {
	s := testSource(t, nil)
	for file, want := range map[string]string{
		"salesforce-outbound-opportunity.captured.xml":          "0065w000023STAmAAO",
		"salesforce-outbound-opportunity-minified.captured.xml": "0067F000003pmdWQAQ",
	} {
		evs, err := s.Parse(&connectors.Webhook{Body: sharedfiles.Webhook(t, file)})
		if err != nil || len(evs) != 1 || evs[0].Deal.ID != want {
			t.Errorf("%s: %v %+v", file, err, evs)
		}
	}
	// Our Ack has the same meaning as the documented one.
	var doc, ours struct {
		Ack string `xml:"Body>notificationsResponse>Ack"`
	}
	if err := xml.Unmarshal(sharedfiles.Webhook(t, "salesforce-outbound-ack.xml"), &doc); err != nil || doc.Ack != "true" {
		t.Fatalf("shared ack: %v %q", err, doc.Ack)
	}
	if err := xml.Unmarshal([]byte(AckBody), &ours); err != nil || ours.Ack != doc.Ack {
		t.Fatalf("our ack: %v %q", err, ours.Ack)
	}
}

// batch builds a message of n Opportunity notifications plus extra XML.
func batch(org string, n int, stage func(i int) string, extra string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound">`)
	fmt.Fprintf(&b, `<OrganizationId>%s</OrganizationId><ActionId>04k5w000000TSwMAAW</ActionId><SessionId xsi:nil="true"/>`, org)
	for i := range n {
		fmt.Fprintf(&b, `<Notification><Id>04l5w000052%04dAAQ</Id><sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>0065w000023%04dAAO</sf:Id><sf:Amount>%d.5</sf:Amount><sf:IsWon>false</sf:IsWon><sf:StageName>%s</sf:StageName></sObject></Notification>`, i, i, i, stage(i))
	}
	b.WriteString(extra)
	b.WriteString(`</notifications></soapenv:Body></soapenv:Envelope>`)
	return b.String()
}

func TestParseBatchAndStages(t *testing.T) {
	s := testSource(t, func(c *Config) {
		c.WonStages = []string{"Gewonnen"}
		a := c.Accounts[strings.ToLower(orgA)]
		a.WonStages = []string{"Signed"}
		c.Accounts[strings.ToLower(orgA)] = a
	})
	stages := []string{"Closed Won", "closed won", "Gewonnen", "Signed", "Negotiation/Review"}
	account := `<Notification><Id>04l5w00005289999AQ</Id><sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>0015w00002BFDeLAAX</sf:Id></sObject></Notification>`
	isWon := `<Notification><Id>04l5w00005288888AQ</Id><sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>0065w000023S8888AO</sf:Id><sf:IsWon>true</sf:IsWon><sf:StageName>Unterschrieben</sf:StageName><sf:Description xsi:nil="true"/></sObject></Notification>`
	evs := parse(t, s, batch(orgA, len(stages), func(i int) string { return stages[i] }, account+isWon))
	var got []string
	for _, e := range evs {
		got = append(got, e.Deal.ID+"="+e.Deal.Stage)
	}
	want := []string{"0065w0000230000AAO=Closed Won", "0065w0000230001AAO=Closed Won", "0065w0000230002AAO=Closed Won",
		"0065w0000230003AAO=Closed Won", "0065w0000230004AAO=Negotiation/Review", "0065w000023S8888AO=Closed Won"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stages (Account notification dropped):\n got %v\nwant %v", got, want)
	}
	// The Account notification is left out with its reason.
	w := &connectors.Webhook{Body: []byte(batch(orgA, 0, func(int) string { return "" }, account))}
	if evs, err := s.Parse(w); err != nil || len(evs) != 0 || len(w.Ignored) != 1 || w.Ignored[0].EventID != "04l5w00005289999AQ" ||
		!strings.Contains(w.Ignored[0].Reason, "not an Opportunity (sObject Account)") {
		t.Errorf("an Account notification: %+v, %v, ignored %+v; want it left out, saying why", evs, err, w.Ignored)
	}
	if string(evs[5].Deal.Raw["Description"]) != "null" || string(evs[0].Deal.Raw["StageName"]) != `"Closed Won"` {
		t.Errorf("Raw: %v / %v", evs[5].Deal.Raw, evs[0].Deal.Raw)
	}
	// Org B does not have org A's "Signed".
	evs = parse(t, s, batch(orgB, 1, func(int) string { return "Signed" }, ""))
	if evs[0].Deal.Stage != "Signed" {
		t.Fatalf("org B Signed: %q", evs[0].Deal.Stage)
	}
	// 100 notifications are fine, 101 are not.
	if evs := parse(t, s, batch(orgA, 100, func(int) string { return "Closed Won" }, "")); len(evs) != 100 {
		t.Fatalf("100: got %d", len(evs))
	}
	if _, err := s.Parse(&connectors.Webhook{Body: []byte(batch(orgA, 101, func(int) string { return "x" }, ""))}); !errors.Is(err, connectors.ErrMalformed) {
		t.Fatalf("101: got %v", err)
	}
}

// A notification that cannot be read is left out and reported, and the
// message's other notifications go through (Salesforce would send the
// whole message again for a day, then drop it).
func TestParseLeavesOutAnUnreadableNotification(t *testing.T) {
	s := testSource(t, nil)
	bad := `<Notification><Id>04l5w00005287777AQ</Id><sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>0065w0000'; DROP</sf:Id></sObject></Notification>`
	w := &connectors.Webhook{Body: []byte(batch(orgA, 2, func(int) string { return "Closed Won" }, bad))}
	evs, err := s.Parse(w)
	if err != nil || len(evs) != 2 {
		t.Fatalf("%+v, %v; want the 2 readable notifications", evs, err)
	}
	if len(w.Unreadable) != 1 || !errors.Is(w.Unreadable[0], connectors.ErrMalformed) || !strings.Contains(w.Unreadable[0].Error(), "04l5w00005287777AQ") {
		t.Errorf("unreadable %v, want the bad notification's error", w.Unreadable)
	} else if id := connectors.UnreadableEventID(w.Unreadable[0]); id != "04l5w00005287777AQ" {
		t.Errorf("the unreadable notification's id %q, want its Id, for the answer and the log", id)
	}
}

// Parse sets Dropped and Unreadable on every path, as the Webhook's
// contract says: a Webhook parsed again carries no earlier count into the
// intake's reply or its metrics.
func TestParseResetsCountsOfAWebhookParsedAgain(t *testing.T) {
	s := testSource(t, nil)
	stale := func(body string) *connectors.Webhook {
		return &connectors.Webhook{Body: []byte(body), Dropped: []connectors.IgnoredEvent{{EventID: "an earlier delivery's"}}, Unreadable: []error{errors.New("an earlier delivery's")}}
	}
	w := stale(captured)
	if evs, err := s.Parse(w); err != nil || len(evs) != 1 || w.Dropped != nil || w.Unreadable != nil {
		t.Errorf("readable message: %d events, %v, dropped %v, unreadable %v; want 1 event, none, none", len(evs), err, w.Dropped, w.Unreadable)
	}
	for name, body := range map[string]string{
		"malformed":   captured[:400],
		"unknown org": strings.Replace(captured, orgA, "00Dxx0000000001AAA", 1),
	} {
		w := stale(body)
		if _, err := s.Parse(w); err == nil || w.Dropped != nil || w.Unreadable != nil {
			t.Errorf("%s: %v, dropped %v, unreadable %v; want an error, none, none", name, err, w.Dropped, w.Unreadable)
		}
	}
}

func TestParseOrgIDForms(t *testing.T) {
	s := testSource(t, nil)
	// The 15-character form of a configured 18-character org id.
	if evs := parse(t, s, strings.Replace(minified, orgB, orgB[:15], 1)); evs[0].Account != orgB {
		t.Fatalf("15-char org: %+v", evs)
	}
	for _, org := range []string{"00D5w000004qGTPEA2", "00Dxx0000000001AAA"} {
		_, err := s.Parse(&connectors.Webhook{Body: []byte(strings.Replace(captured, orgA, org, 1))})
		if !errors.Is(err, connectors.ErrUnknownAccount) || !strings.Contains(err.Error(), org) || !strings.Contains(err.Error(), "add it under the source's accounts") {
			t.Errorf("org %s: got %v; want the org named and where to add it", org, err)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	s := testSource(t, nil)
	for name, body := range map[string]string{
		"empty":          "",
		"json":           `{"OrganizationId":"00D5w000004qGTOEA2"}`,
		"truncated":      captured[:400],
		"no envelope":    `<notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>x</OrganizationId></notifications>`,
		"wrong ns":       strings.Replace(captured, "http://soap.sforce.com/2005/09/outbound", "urn:other", 1),
		"no org":         strings.Replace(captured, "<OrganizationId>00D5w000004qGTOEA2</OrganizationId>", "", 1),
		"no notifs":      batch(orgA, 0, nil, ""),
		"no record id":   strings.Replace(captured, "<sf:Id>0065w000023STAmAAO</sf:Id>", "", 1),
		"bad record id":  strings.Replace(captured, "0065w000023STAmAAO", "0065w0000'; DROP", 1),
		"no notif id":    strings.Replace(captured, "<Id>04l5w00005286hAAAQ</Id>", "", 1),
		"latin1 charset": strings.Replace(captured, `encoding="UTF-8"`, `encoding="ISO-8859-1"`, 1),
	} {
		if _, err := s.Parse(&connectors.Webhook{Body: []byte(body)}); !errors.Is(err, connectors.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

// A message in another encoding than UTF-8 (re-encoded on its way) is
// told so, not that it is no SOAP envelope: by its XML declaration, by
// its bytes, or as gzip-compressed.
func TestParseSaysWhatIsWrongWithTheEncoding(t *testing.T) {
	s := testSource(t, nil)
	latin1 := strings.Replace(strings.Replace(captured, `encoding="UTF-8"`, `encoding="ISO-8859-1"`, 1), "</sf:Name>", "\xe9</sf:Name>", 1)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(captured))
	zw.Close()
	for name, c := range map[string]struct{ body, want string }{
		"declared ISO-8859-1":                    {latin1, `the message's XML declaration says encoding "ISO-8859-1": Salesforce's outbound messages are UTF-8, and dealsync reads no other`},
		"declared in single quotes, after a BOM": {"\ufeff" + strings.Replace(captured, `encoding="UTF-8"`, `encoding='windows-1252'`, 1), `says encoding "windows-1252"`},
		"not UTF-8, undeclared":                  {strings.Replace(latin1, ` encoding="ISO-8859-1"`, "", 1), "the message is not UTF-8: byte 0xE9 at byte offset "},
		"gzip":                                   {gz.String(), "the message looks gzip-compressed (it starts with the bytes 1f 8b) and came without a Content-Encoding: send it uncompressed"},
	} {
		_, err := s.Parse(&connectors.Webhook{Body: []byte(c.body)})
		if !errors.Is(err, connectors.ErrMalformed) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "not a SOAP envelope") {
			t.Errorf("%s: %v\nwant %s", name, err, c.want)
		}
	}
	// UTF-8 declared in any case is read.
	if evs, err := s.Parse(&connectors.Webhook{Body: []byte(strings.Replace(captured, `encoding="UTF-8"`, `encoding="utf-8"`, 1))}); err != nil || len(evs) != 1 {
		t.Errorf("utf-8 declared in lower case: %v", err)
	}
}

func TestVerifyEndpointToken(t *testing.T) {
	open := testSource(t, nil)
	if err := open.Verify(&connectors.Webhook{URL: "https://sync.example.com/webhooks/sf", Body: []byte(captured)}); err != nil {
		t.Fatalf("no token configured, allow_unauthenticated: %v", err)
	}
	if _, err := New(Config{Accounts: map[string]Account{"00d": {InstanceURL: "https://a.my.salesforce.com", ClientID: "c", ClientSecret: secret.New("s")}}}, connectors.Env{}); err == nil ||
		!strings.Contains(err.Error(), "endpoint_token is required") {
		t.Fatalf("no token and not allow_unauthenticated: want a config error, got %v", err)
	}
	s := testSource(t, func(c *Config) { c.EndpointToken = secret.New("s3cr3t-t0ken") })
	if err := s.Verify(&connectors.Webhook{URL: "https://sync.example.com/webhooks/sf?token=s3cr3t-t0ken"}); err != nil {
		t.Fatalf("right token: %v", err)
	}
	for _, u := range []string{"https://sync.example.com/webhooks/sf", "https://sync.example.com/webhooks/sf?token=s3cr3t", "https://sync.example.com/webhooks/sf?tok=s3cr3t-t0ken"} {
		err := s.Verify(&connectors.Webhook{URL: u})
		if !errors.Is(err, connectors.ErrUnauthorized) || strings.Contains(err.Error(), "s3cr3t-t0ken") {
			t.Errorf("%s: got %v", u, err)
		}
	}
}

// A wrong endpoint token says where the right one is set (by the
// setting's name, never its value or the token sent).
func TestWrongEndpointTokenSaysWhatToCheck(t *testing.T) {
	env := connectors.Env{ConfigKey: "connections.sf.source", KeyVar: func(key string) string { return "DEALSYNC_X" }}
	s := testSourceIn(t, env, func(c *Config) { c.EndpointToken = secret.New("s3cr3t-t0ken") })
	err := s.Verify(&connectors.Webhook{URL: "https://sync.example.com/webhooks/sf?token=guessed-t0ken"})
	want := "wrong endpoint token: check that the outbound message's endpoint URL carries ?token= with the value of connections.sf.source.endpoint_token (or DEALSYNC_X)"
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want it to contain %q", err, want)
	}
	if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "guessed") {
		t.Fatalf("%v: names a token", err)
	}
	// The sender is answered the refusal alone (connectors.Terse).
	if got, want := connectors.Terse(err), "unauthorized: salesforce: wrong endpoint token"; got != want {
		t.Fatalf("Terse = %q, want %q", got, want)
	}
}

// A rotation of the endpoint token: while previous_endpoint_token is
// configured, deliveries with it are accepted beside those with the new
// endpoint_token; once it is removed they are refused. The org check of
// Parse is the same whichever token admitted the delivery.
func TestVerifyPreviousEndpointToken(t *testing.T) {
	during := testSource(t, func(c *Config) {
		c.AllowUnauthenticated = false
		c.EndpointToken, c.PreviousEndpointToken = secret.New("new-t0ken"), secret.New("old-t0ken")
	})
	after := testSource(t, func(c *Config) {
		c.AllowUnauthenticated = false
		c.EndpointToken = secret.New("new-t0ken")
	})
	const endpoint = "https://sync.example.com/webhooks/sf?token="
	if w := (&connectors.Webhook{URL: endpoint + "old-t0ken"}); during.Verify(w) != nil || !w.PreviousSecret {
		t.Errorf("previous token during the rotation: %v (previous %v, want true)", during.Verify(w), w.PreviousSecret)
	}
	if err := after.Verify(&connectors.Webhook{URL: endpoint + "old-t0ken"}); !errors.Is(err, connectors.ErrUnauthorized) {
		t.Errorf("previous token once removed: %v, want unauthorized", err)
	}
	for name, s := range map[string]*Source{"during": during, "after": after} {
		if w := (&connectors.Webhook{URL: endpoint + "new-t0ken", PreviousSecret: true}); s.Verify(w) != nil || w.PreviousSecret {
			t.Errorf("new token, %s the rotation: %v (previous %v, want false)", name, s.Verify(w), w.PreviousSecret)
		}
		for _, u := range []string{endpoint + "other", endpoint + "old-t0ke", endpoint, "https://sync.example.com/webhooks/sf"} {
			err := s.Verify(&connectors.Webhook{URL: u})
			if !errors.Is(err, connectors.ErrUnauthorized) || strings.Contains(err.Error(), "t0ken") {
				t.Errorf("%s, %s: got %v, want unauthorized without a token in it", name, u, err)
			}
		}
	}
	stranger := strings.Replace(captured, orgA, "00D000000000001AAA", 1)
	if _, err := during.Parse(&connectors.Webhook{URL: endpoint + "old-t0ken", Body: []byte(stranger)}); !errors.Is(err, connectors.ErrUnknownAccount) {
		t.Errorf("an org not configured, with the previous token: %v, want unknown account", err)
	}
}

// An instance_url that is not a URL, or that does not parse, is named
// without the credential it may hold (user info, a query): the error
// reaches stderr and the container's logs.
func TestInstanceURLErrorsShowNoCredential(t *testing.T) {
	for raw, want := range map[string]string{
		"sf:S3cretPass@acme.my.salesforce.com?k=S3cretPass":          `instance_url "sf:" is not a URL`,
		"//sf:S3cretPass@acme.my.salesforce.com/x?k=S3cretPass":      `instance_url "//acme.my.salesforce.com/x" is not a URL`,
		"https://sf:S3cretPass@?k=S3cretPass":                        `instance_url "https:" is not a URL`,
		"https://sf:S3cretPass/x@acme.my.salesforce.com":             "instance_url is not a valid URL",
		"https://acme.my.salesforce.com/%zz?access_token=S3cretPass": "instance_url is not a valid URL",
	} {
		_, err := New(Config{AllowUnauthenticated: true, Accounts: map[string]Account{
			orgA: {InstanceURL: raw, ClientID: "c", ClientSecret: secret.New("s")}}}, connectors.Env{})
		if err == nil || strings.Contains(err.Error(), "S3cret") || !strings.Contains(err.Error(), want) ||
			!strings.Contains(err.Error(), "https://MyDomain.my.salesforce.com") {
			t.Errorf("instance_url %s: %v; want it to say %s and what to write, without the credential", raw, err, want)
		}
	}
}

// An instance_url that already has a path of Salesforce's APIs
// (…/services/data/v62.0, as the REST API's guide writes the base of its
// resources) is refused at load, naming the key and saying to give the
// My Domain URL alone: the source adds /services/data/vXX.X/… and
// /services/oauth2/token itself, and every call would answer 404. A
// proxy's own path prefix is taken.
func TestInstanceURLWithTheAPIPathIsRefused(t *testing.T) {
	for raw, want := range map[string]string{
		"https://acme.my.salesforce.com/services/data/v62.0": `salesforce source: accounts.` + orgA + `.instance_url "https://acme.my.salesforce.com/services/data/v62.0" ` +
			`already has the API path "/services/data/v62.0": dealsync adds /services/data/` + DefaultAPIVersion + `/… and /services/oauth2/token itself; ` +
			`give the host alone, e.g. https://MyDomain.my.salesforce.com`,
		"https://acme.my.salesforce.com/services/oauth2/token": `already has the API path "/services/oauth2/token"`,
		"https://acme.my.salesforce.com/SERVICES/DATA/":        `already has the API path "/SERVICES/DATA/"`,
		"http://127.0.0.1:9/sf/services/data":                  `already has the API path "/services/data"`,
		"https://acme.my.salesforce.com":                       "",
		"https://acme.my.salesforce.com/":                      "",
		"https://gateway.example/services/salesforce":          "",
	} {
		_, err := New(Config{AllowUnauthenticated: true, Accounts: map[string]Account{
			orgA: {InstanceURL: raw, ClientID: "c", ClientSecret: secret.New("s")}}}, connectors.Env{})
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("instance_url %s: %v; want %q", raw, err, want)
		}
	}
}

// A previous_endpoint_token that resolves to nothing is refused like an
// endpoint_token, and one without an endpoint_token beside it is a config
// error; both name the key.
func TestNewRefusesUnusablePreviousEndpointToken(t *testing.T) {
	t.Setenv("DEALSYNC_TEST_SF_EMPTY", "")
	accounts := map[string]Account{orgA: {InstanceURL: "https://a.my.salesforce.com", ClientID: "c", ClientSecret: secret.New("s")}}
	for name, c := range map[string]struct {
		cfg  Config
		want string
	}{
		"empty variable": {Config{EndpointToken: secret.New("new-t0ken"), PreviousEndpointToken: secret.New("env:DEALSYNC_TEST_SF_EMPTY"), Accounts: accounts},
			"salesforce source: previous_endpoint_token (env:DEALSYNC_TEST_SF_EMPTY)"},
		"without endpoint_token": {Config{PreviousEndpointToken: secret.New("old-t0ken"), Accounts: accounts},
			"salesforce source: previous_endpoint_token is set without endpoint_token"},
		"without endpoint_token, unauthenticated allowed": {Config{PreviousEndpointToken: secret.New("old-t0ken"), AllowUnauthenticated: true, Accounts: accounts},
			"salesforce source: previous_endpoint_token is set without endpoint_token"},
	} {
		_, err := New(c.cfg, connectors.Env{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, c.want)
		} else if strings.Contains(err.Error(), "t0ken") {
			t.Errorf("%s: error leaks a token: %v", name, err)
		}
	}
}

func TestAcknowledgeAndRefuse(t *testing.T) {
	s := testSource(t, nil)
	if mt := s.MediaTypes(); len(mt) != 1 || mt[0] != "text/xml" {
		t.Fatalf("MediaTypes = %v", mt)
	}
	rec := httptest.NewRecorder()
	s.Acknowledge(rec, http.StatusAccepted, connectors.Reply{Results: []connectors.EventResult{{EventID: "04l5w00005286hAAAQ"}}})
	var ack struct {
		XMLName xml.Name
		Body    struct {
			Resp struct {
				XMLName xml.Name
				Ack     string `xml:"Ack"`
			} `xml:"notificationsResponse"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(rec.Body.Bytes(), &ack); err != nil {
		t.Fatalf("ack is not XML: %v\n%s", err, rec.Body)
	}
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/xml") || ack.Body.Resp.Ack != "true" ||
		ack.XMLName.Space != "http://schemas.xmlsoap.org/soap/envelope/" || ack.Body.Resp.XMLName.Space != "http://soap.sforce.com/2005/09/outbound" {
		t.Fatalf("ack: %d %q %+v\n%s", rec.Code, rec.Header().Get("Content-Type"), ack, rec.Body)
	}
	for status, code := range map[int]string{403: "soapenv:Client", 503: "soapenv:Server", 500: "soapenv:Server"} {
		rec := httptest.NewRecorder()
		s.Refuse(rec, status, `org 00Dxx <not> configured & "rejected"`)
		var fault struct {
			Code   string `xml:"Body>Fault>faultcode"`
			String string `xml:"Body>Fault>faultstring"`
			Ack    string `xml:"Body>notificationsResponse>Ack"`
		}
		if err := xml.Unmarshal(rec.Body.Bytes(), &fault); err != nil {
			t.Fatalf("fault is not XML: %v\n%s", err, rec.Body)
		}
		if rec.Code != status || fault.Code != code || fault.String != `org 00Dxx <not> configured & "rejected"` || fault.Ack != "" {
			t.Errorf("Refuse(%d): %d %+v", status, rec.Code, fault)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s := testSource(b, func(c *Config) { c.EndpointToken = secret.New("s3cr3t-t0ken") })
	w := &connectors.Webhook{URL: "https://sync.example.com/webhooks/sf?token=s3cr3t-t0ken", Body: []byte(captured)}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Verify(w); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	s := testSource(b, nil)
	w := &connectors.Webhook{Body: []byte(captured)}
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
	w := &connectors.Webhook{Body: []byte(batch(orgA, 100, func(int) string { return "Closed Won" }, ""))}
	b.ReportAllocs()
	b.SetBytes(int64(len(w.Body)))
	for b.Loop() {
		if _, err := s.Parse(w); err != nil {
			b.Fatal(err)
		}
	}
}

// `deals sync --account` takes an org id as Salesforce shows it (18
// characters in mixed case, or 15): the configured key is what the
// webhooks' runs use.
func TestAccountKey(t *testing.T) {
	s := testSource(t, nil)
	for typed, want := range map[string]string{
		orgA:                  strings.ToLower(orgA),
		orgA[:15]:             strings.ToLower(orgA),
		strings.ToLower(orgA): strings.ToLower(orgA),
		orgB:                  orgB,
	} {
		if got, ok := s.AccountKey(typed); !ok || got != want {
			t.Errorf("AccountKey(%q) = %q, %v; want %q", typed, got, ok, want)
		}
	}
	if got, ok := s.AccountKey("00D000000000000AAA"); ok {
		t.Errorf("an org not configured: %q", got)
	}
}

// The endpoint token is put in the outbound message's endpoint URL as is,
// and a query reads + as a space and %xx as an escape: a token from
// `openssl rand -base64 32` (+, / and =) would get 401 on every delivery.
// New refuses such a token, as either token, saying why and how to make
// one, without naming the token; a token of every URL-unreserved character
// is read back from the URL as written.
func TestEndpointTokenMustBeURLSafe(t *testing.T) {
	t.Setenv("DEALSYNC_TEST_SF_BASE64_TOKEN", "q8Zr+4mB/0kT1vXw9yLh3nPa2eSd5fGj6uIo7cVb8xQ=")
	for name, tok := range map[string]string{
		"base64 token with + from a variable": "env:DEALSYNC_TEST_SF_BASE64_TOKEN",
		"plus":                                "s3cr3t+t0ken",
		"percent escape":                      "s3cr3t%2Bt0ken",
		"space":                               "s3cr3t t0ken",
		"ampersand":                           "s3cr3t&t0ken",
		"semicolon":                           "s3cr3t;t0ken",
		"hash":                                "s3cr3t#t0ken",
	} {
		for field, mutate := range map[string]func(*Config){
			"endpoint_token":          func(c *Config) { c.EndpointToken = secret.New(tok) },
			"previous_endpoint_token": func(c *Config) { c.EndpointToken, c.PreviousEndpointToken = secret.New("new-t0ken"), secret.New(tok) },
		} {
			cfg := DefaultConfig()
			cfg.Accounts = map[string]Account{strings.ToLower(orgA): {InstanceURL: "https://a.my.salesforce.com", ClientID: "c", ClientSecret: secret.New("s")}}
			mutate(&cfg)
			_, err := New(cfg, connectors.Env{})
			if err == nil {
				t.Errorf("%s as %s: accepted, want a config error", name, field)
				continue
			}
			for _, want := range []string{"salesforce source: " + field + " (", "does not read back", "openssl rand -hex 32"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s as %s: %v, want it to say %q", name, field, err, want)
				}
			}
			if strings.Contains(err.Error(), "t0ken") || strings.Contains(err.Error(), "q8Zr") {
				t.Errorf("%s as %s: error leaks a token: %v", name, field, err)
			}
		}
	}
	// Tokens that read back, in the URL as is, stay valid (a base64 token
	// without +, say): an upgrade does not refuse tokens that work.
	for _, tok := range []string{
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~",
		"q8Zr4mB/0kT1vXw9yLh3nPa2eSd5fGj6uIo7cVb8xQ==",
		"s3cr3t-t0kén",
	} {
		s := testSource(t, func(c *Config) { c.AllowUnauthenticated, c.EndpointToken = false, secret.New(tok) })
		if err := s.Verify(&connectors.Webhook{URL: "https://sync.example.com/webhooks/sf?token=" + tok}); err != nil {
			t.Errorf("token %q in the URL as is: %v", tok, err)
		}
	}
}

// Org ids match exactly: 18 characters in any letter case, or 15 in their
// exact case (a 15-character id is case-sensitive), turned into the
// 18-character form by Salesforce's checksum. Other lengths, and a
// 15-character id differing only in case, are other orgs.
func TestAccountOrgIDExact(t *testing.T) {
	// The case twin of orgA's 15 characters, 00D5w000004qgto, is another org.
	const twin = "00d5w000004qgtoeaa"
	s := testSource(t, func(c *Config) {
		c.Accounts["00d000000000062eaa"] = Account{InstanceURL: "https://c.my.salesforce.com", ClientID: "c", ClientSecret: secret.New("s")}
		c.Accounts[twin] = Account{InstanceURL: "https://t.my.salesforce.com", ClientID: "t", ClientSecret: secret.New("s")}
	})
	// The suffix, by hand: per 5-character chunk, bit i set when character i
	// is an upper-case letter, indexing "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345".
	for typed, want := range map[string]string{
		// 00D00 D at 2: 4, E; 00000: 0, A; 00062: 0, A.
		"00D000000000062":    "00d000000000062eaa",
		"00D000000000062EAA": "00d000000000062eaa",
		"00d000000000062eaa": "00d000000000062eaa",
		// 00D5w D at 2: 4, E; 00000: 0, A; 4qGTO G, T, O at 2, 3, 4: 4+8+16 = 28, 2.
		"00D5w000004qGTO": strings.ToLower(orgA),
		// 00D5w: E; 00000: A; 4qgto: 0, A.
		"00D5w000004qgto": twin,
		// 00D7F D, F at 2, 4: 4+16 = 20, U; 00000: 0, A; 107Xs X at 3: 8, I.
		"00D7F00000107Xs": orgB,
	} {
		if got, ok := s.AccountKey(typed); !ok || got != want {
			t.Errorf("AccountKey(%q) = %q, %v; want %q", typed, got, ok, want)
		}
	}
	for _, typed := range []string{
		orgA + "zz",       // 20 characters starting with orgA
		orgA[:15] + "xyz", // 18 characters, orgA's 15 with another suffix
		orgA[:15] + "xyzzy",
		orgA[:16], orgA[:17], orgA[:14],
		"00D5w000004qGTo",    // orgA's 15 in another case: suffix M (G, T: 4+8 = 12)
		"00d5w000004qgto",    // lower-cased: 00d5w has no upper-case letter, suffix AAA
		"00D5w000004qGTO!!!", // not an id
	} {
		if got, ok := s.AccountKey(typed); ok {
			t.Errorf("AccountKey(%q) = %q, want no org", typed, got)
		}
		_, err := s.Parse(&connectors.Webhook{Body: []byte(strings.Replace(captured, orgA, typed, 1))})
		if !errors.Is(err, connectors.ErrUnknownAccount) {
			t.Errorf("Parse of org %q: %v, want unknown account", typed, err)
		}
	}
	// A 15-character key arrives lower-cased from the config loader, its
	// case lost: it still serves its org (configs that have one keep
	// working, with the same account key in their runs), matching the
	// first 15 characters ignoring case.
	short := strings.ToLower(orgA[:15])
	s15 := testSource(t, func(c *Config) {
		c.Accounts = map[string]Account{short: {InstanceURL: "https://a.my.salesforce.com", ClientID: "c", ClientSecret: secret.New("s")}}
	})
	for _, typed := range []string{orgA, orgA[:15], strings.ToLower(orgA)} {
		if got, ok := s15.AccountKey(typed); !ok || got != short {
			t.Errorf("15-character key, AccountKey(%q) = %q, %v; want %q", typed, got, ok, short)
		}
	}
	if got, ok := s15.AccountKey(orgA + "zz"); ok {
		t.Errorf("15-character key, AccountKey of 20 characters = %q", got)
	}
}

// A deal id in its 15-character form (a hand-edited capture, an id copied
// from a Classic URL) is the 18-character id of the same opportunity: the
// same run and ERP reference, not a second invoice. A notification of an
// opportunity deleted before it was delivered carries no data: left out,
// the message acknowledged (refused, Salesforce resent it for a day).
func TestParseDealIDFormsAndDeletedOpportunities(t *testing.T) {
	s := testSource(t, nil)
	short := strings.Replace(captured, "<sf:Id>0065w000023STAmAAO</sf:Id>", "<sf:Id>0065w000023STAm</sf:Id>", 1)
	if evs := parse(t, s, short); len(evs) != 1 || evs[0].Deal.ID != "0065w000023STAmAAO" {
		t.Fatalf("a 15-character deal id: %+v, want 0065w000023STAmAAO", evs)
	}
	deleted := `<Notification><Id>04l5w00005286666AQ</Id><sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"/></Notification>` +
		`<Notification><Id>04l5w00005285555AQ</Id><sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id xsi:nil="true"/></sObject></Notification>`
	w := &connectors.Webhook{Body: []byte(batch(orgA, 1, func(int) string { return "Closed Won" }, deleted))}
	evs, err := s.Parse(w)
	if err != nil || len(evs) != 1 || len(w.Unreadable) != 0 {
		t.Fatalf("two deleted opportunities beside a won one: %+v, %v, unreadable %v; want the won one alone", evs, err, w.Unreadable)
	}
	if len(w.Ignored) != 2 || w.Ignored[0].EventID != "04l5w00005286666AQ" || w.Ignored[1].EventID != "04l5w00005285555AQ" || !strings.Contains(w.Ignored[1].Reason, "deleted before the notification was delivered") {
		t.Errorf("ignored %+v, want both deleted opportunities' notifications, saying why", w.Ignored)
	}
	only := &connectors.Webhook{Body: []byte(batch(orgA, 0, func(int) string { return "" }, deleted))}
	if evs, err := s.Parse(only); err != nil || len(evs) != 0 || len(only.Unreadable) != 0 {
		t.Fatalf("only deleted opportunities: %+v, %v, unreadable %v; want nothing, no error (acknowledged)", evs, err, only.Unreadable)
	}
}

// An Opportunity message without IsWon whose stage is not listed as won is
// taken as not won, and the intake's log says so, once per org and stage:
// a won stage of the org's own would otherwise leave its deals uninvoiced
// with nothing but a skipped reason in the acknowledgement.
func TestParseWarnsOfAMessageWithoutIsWon(t *testing.T) {
	var logged bytes.Buffer
	cfg := DefaultConfig()
	cfg.Accounts = map[string]Account{strings.ToLower(orgA): {InstanceURL: "https://a.my.salesforce.com", ClientID: "cid-a", ClientSecret: secret.New("cs-a")}}
	cfg.AllowUnauthenticated = true
	s, err := New(cfg, connectors.Env{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	noIsWon := `<Notification><Id>04l5w00005286666AQ</Id><sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>0065w000023S6666AO</sf:Id><sf:StageName>Won - Signed</sf:StageName></sObject></Notification>`
	for range 2 {
		if evs := parse(t, s, batch(orgA, 0, nil, noIsWon)); evs[0].Deal.Stage == StageWon {
			t.Fatalf("a stage not listed as won, without IsWon: %+v", evs[0].Deal)
		}
	}
	if n := strings.Count(logged.String(), "without IsWon"); n != 1 || !strings.Contains(logged.String(), `stage="Won - Signed"`) ||
		!strings.Contains(logged.String(), "org="+orgA) {
		t.Errorf("want one warning naming the org and stage, got %d: %s", n, logged.String())
	}
	// With IsWon, or in a stage known as won, nothing is said.
	logged.Reset()
	isWonFalse := `<Notification><Id>04l5w00005287777AQ</Id><sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>0065w000023S7777AO</sf:Id><sf:IsWon>false</sf:IsWon><sf:StageName>Prospecting</sf:StageName></sObject></Notification>`
	parse(t, s, batch(orgA, 1, func(int) string { return "Closed Won" }, isWonFalse))
	if logged.Len() != 0 {
		t.Errorf("warned of a message with IsWon or a won stage: %s", logged.String())
	}
}

// An org is one account for config check's warning of two connections
// that list it (connectors.ConfiguredAccounts, AccountMatcher) as the
// source finds it: two 18-character ids are one org when they are equal
// (lower-cased by the config loader, two orgs whose ids differ in case
// only still differ in their last characters), a 15-character id is the
// org of the 18-character ids that begin with it.
func TestSameCRMAccountAsTheSourceFindsAnOrg(t *testing.T) {
	const (
		org   = "00d5w000004qgtoea2" // 00D5w000004qGTOEA2
		other = "00d5w000004qgtoea4" // 00D5w000004QGTOEA4: differs in case only
	)
	var c Config
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{org, org, true},
		{org, " 00D5W000004QGTOEA2", true},
		{org, other, false},
		{org, "00d5w000004qgto", true},
		{"00d5w000004qgto", other, true}, // its case lost: both orgs' 15 characters
		{"00d5w000004qgto", "00d5w000004qgto", true},
		{org, "00d5w000004qgtp", false},
		{org, "00d5w000004qgtpaaa", false},
	} {
		if got := c.SameCRMAccount(tc.a, tc.b); got != tc.want {
			t.Errorf("SameCRMAccount(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := c.SameCRMAccount(tc.b, tc.a); got != tc.want {
			t.Errorf("SameCRMAccount(%q, %q) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
	kind, keys := Config{Accounts: map[string]Account{org: {}, other: {}}}.CRMAccounts()
	if kind != "Salesforce org" || keys[org] == keys[other] {
		t.Errorf("%s %v: want two orgs under two keys", kind, keys)
	}
}

// An 18-character org id whose last 3 characters are not the checksum of
// its first 15 is refused, as Salesforce writes it (mixed case), and,
// lower-cased as the config loader gives it or in capitals, when the
// checksum sets the case of a digit or is no checksum; a right one, in
// any case, and a 15-character id are accepted.
func TestAnOrgIDWithAWrongChecksumIsRefused(t *testing.T) {
	for id, ok := range map[string]bool{
		"00D5w000004qGTOEA2": true, "00d5w000004qgtoea2": true, "00D5W000004QGTOEA2": true, "00D5w000004qGTO": true,
		"00D5w000009zZZZEA2": true,
		"00D5w000004qGTOEA3": false, // another case for the last chunk
		"00D5w000004qGTOAA2": false,
		"00d5w000004qgtoba2": false, // bit 0 set on a digit
		"00d5w000004qgtoe9a": false, // 9 is no checksum character
		"00D5W000004QGTOBA2": false,
	} {
		cfg := DefaultConfig()
		cfg.Accounts = map[string]Account{id: {InstanceURL: "https://a.my.salesforce.com", ClientID: "c", ClientSecret: secret.New("s")}}
		cfg.AllowUnauthenticated = true
		_, err := New(cfg, connectors.Env{})
		if got := err == nil; got != ok || !ok && !strings.Contains(err.Error(), "not the checksum") {
			t.Errorf("%s: %v; want accepted: %v", id, err, ok)
		}
	}
}
