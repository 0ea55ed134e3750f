package salesforce

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
)

// Namespaces of an outbound message.
const (
	nsOutbound = "http://soap.sforce.com/2005/09/outbound"
)

// Message is the content of an outbound message's SOAP body.
type Message struct {
	OrganizationID string         `xml:"OrganizationId"`
	ActionID       string         `xml:"ActionId"`
	EnterpriseURL  string         `xml:"EnterpriseUrl"`
	PartnerURL     string         `xml:"PartnerUrl"`
	Notifications  []Notification `xml:"Notification"`
}

// Notification is one record of a message.
type Notification struct {
	ID      string  `xml:"Id"`
	SObject SObject `xml:"sObject"`
}

// SObject is the record with the fields selected in the outbound message.
type SObject struct {
	Type   string  `xml:"http://www.w3.org/2001/XMLSchema-instance type,attr"`
	Fields []Field `xml:",any"`
}

// Field is one sf: element.
type Field struct {
	XMLName xml.Name
	Nil     string `xml:"http://www.w3.org/2001/XMLSchema-instance nil,attr"`
	Value   string `xml:",chardata"`
}

// Get returns a field's value and whether it is present and not nil.
func (o *SObject) Get(name string) (string, bool) {
	for _, f := range o.Fields {
		if f.XMLName.Local == name {
			if f.Nil == "true" {
				return "", false
			}
			return strings.TrimSpace(f.Value), true
		}
	}
	return "", false
}

// hasData says whether a field of the record has a value: a notification
// of a record deleted before it was delivered has none.
func (o *SObject) hasData() bool {
	for _, f := range o.Fields {
		if f.Nil != "true" && strings.TrimSpace(f.Value) != "" {
			return true
		}
	}
	return false
}

// TypeName is the sObject type without its prefix ("Opportunity").
func (o *SObject) TypeName() string {
	t := o.Type
	if i := strings.LastIndexByte(t, ':'); i >= 0 {
		t = t[i+1:]
	}
	return t
}

type envelope struct {
	XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
	Body    struct {
		Notifications *Message `xml:"http://soap.sforce.com/2005/09/outbound notifications"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

// xmlDeclaration reads the encoding an XML declaration names, at the
// start of a message (after a byte order mark).
var xmlDeclaration = regexp.MustCompile(`\A(?:\x{FEFF})?\s*<\?xml\s[^>]*?\bencoding\s*=\s*["']([^"']*)["']`)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: salesforce: "+format, append([]any{connectors.ErrMalformed}, args...)...)
}

// DecodeMessage reads an outbound message: a SOAP 1.1 envelope whose body
// is `notifications` with 1 to MaxBatch Notification elements. Errors wrap
// connectors.ErrMalformed.
func DecodeMessage(body []byte) (*Message, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, malformed("empty body: want a SOAP outbound message")
	}
	// Outbound messages are UTF-8: a message in another encoding was
	// re-encoded on its way (a proxy, a hand-made test), and is told so
	// rather than that it is no SOAP envelope.
	if m := xmlDeclaration.FindSubmatch(body); m != nil && !strings.EqualFold(string(m[1]), "utf-8") {
		return nil, malformed("the message's XML declaration says encoding %q: Salesforce's outbound messages are UTF-8, and dealsync reads no other "+
			"(is something between Salesforce and dealsync re-encoding them?)", m[1])
	}
	if msg := connectors.NotUTF8Because("the message", body, "Salesforce's outbound messages are UTF-8, and dealsync reads no other "+
		"(is something between Salesforce and dealsync re-encoding them, into ISO-8859-1 for one?)"); msg != "" {
		return nil, malformed("%s", msg)
	}
	var env envelope
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	// Outbound messages are UTF-8; accept a declared "UTF-8" in any case only.
	d.CharsetReader = func(charset string, r io.Reader) (io.Reader, error) {
		if strings.EqualFold(charset, "utf-8") {
			return r, nil
		}
		return nil, fmt.Errorf("encoding %q: Salesforce's outbound messages are UTF-8, and dealsync reads no other", charset)
	}
	if err := d.Decode(&env); err != nil {
		return nil, malformed("not a SOAP envelope (dealsync takes Salesforce's outbound messages, SOAP XML; Change Data Capture and Pub/Sub events are not pushed to a URL): %v", err)
	}
	m := env.Body.Notifications
	if m == nil {
		return nil, malformed("the SOAP body has no notifications element of %s", nsOutbound)
	}
	switch n := len(m.Notifications); {
	case n == 0:
		return nil, malformed("no Notification")
	case n > MaxBatch:
		return nil, malformed("%d notifications in one message, at most %d allowed", n, MaxBatch)
	}
	if strings.TrimSpace(m.OrganizationID) == "" {
		return nil, malformed("OrganizationId is missing")
	}
	return m, nil
}

// Parse turns a message into its Opportunity events, in order. An org that
// is not configured fails the message with connectors.ErrUnknownAccount.
// A notification that cannot be read (no Id, an sf:Id that is not a record
// id) is left out and reported in w.Unreadable while the others go
// through: Salesforce would send the same message again for a day, then
// drop it with the notifications that could be read. A message none of
// whose Opportunity notifications can be read wraps
// connectors.ErrMalformed.
func (s *Source) Parse(w *connectors.Webhook) ([]model.DealEvent, error) {
	if w == nil {
		return nil, malformed("no delivery")
	}
	// Set on every path: nothing is dropped (an org that is not configured
	// fails the whole message), and a Webhook given again carries no
	// earlier count.
	w.Dropped, w.Unreadable, w.Ignored = nil, nil, nil
	m, err := DecodeMessage(w.Body)
	if err != nil {
		return nil, err
	}
	org := strings.TrimSpace(m.OrganizationID)
	acc, err := s.account(org)
	if err != nil {
		return nil, err
	}
	out := make([]model.DealEvent, 0, len(m.Notifications))
	for i := range m.Notifications {
		n := &m.Notifications[i]
		if n.SObject.TypeName() != "Opportunity" {
			w.Ignored = append(w.Ignored, connectors.IgnoredEvent{EventID: strings.TrimSpace(n.ID),
				Reason: fmt.Sprintf("not an Opportunity (sObject %s): nothing to invoice", n.SObject.TypeName())})
			continue
		}
		nid := strings.TrimSpace(n.ID)
		if nid == "" {
			w.Unreadable = append(w.Unreadable, malformed("Notification[%d] has no Id", i))
			continue
		}
		id, _ := n.SObject.Get("Id")
		if !n.SObject.hasData() {
			// Salesforce: "if the record is deleted before the notification
			// is delivered, the notification contains no data". Nothing to
			// invoice, and refusing it would have Salesforce resend the
			// message for a day: left out, the message acknowledged.
			if safe, ok := caseSafeID(id); ok {
				id = safe // as the run's deal id would be
			}
			w.Ignored = append(w.Ignored, connectors.IgnoredEvent{EventID: nid, DealID: id,
				Reason: "the Opportunity was deleted before the notification was delivered (no data): nothing to invoice"})
			continue
		}
		id, ok := caseSafeID(id)
		if !ok {
			id, _ = n.SObject.Get("Id")
			w.Unreadable = append(w.Unreadable, &connectors.UnreadableEvent{EventID: nid, Err: malformed("Notification[%d] (%s): sf:Id %q is not a record id", i, nid, id)})
			continue
		}
		// Account is the org's key in the configuration (not the payload's
		// spelling), so that it matches account_targets and FetchDeal.
		ev := model.DealEvent{EventID: nid, Account: acc.id, Thin: true, Deal: model.Deal{ID: id}}
		ev.Deal.Name, _ = n.SObject.Get("Name")
		stage, _ := n.SObject.Get("StageName")
		isWon, hasIsWon := n.SObject.Get("IsWon")
		if isWon == "true" || s.wonStages[strings.ToLower(stage)] || acc.wonStages[strings.ToLower(stage)] {
			stage = StageWon
		} else if !hasIsWon {
			s.warnNoIsWon(w.LogOf(s.log), org, stage)
		}
		ev.Deal.Stage = stage
		for _, name := range []string{"LastModifiedDate", "SystemModstamp"} {
			if v, ok := n.SObject.Get(name); ok {
				if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
					ev.OccurredAt = t.UTC()
					break
				}
			}
		}
		raw := make(map[string]json.RawMessage, len(n.SObject.Fields))
		for _, f := range n.SObject.Fields {
			if f.Nil == "true" {
				raw[f.XMLName.Local] = json.RawMessage("null")
				continue
			}
			b, _ := json.Marshal(strings.TrimSpace(f.Value))
			raw[f.XMLName.Local] = b
		}
		ev.Deal.Raw = raw
		out = append(out, ev)
	}
	if len(out) == 0 && len(w.Unreadable) > 0 {
		return nil, w.UnreadableError("notifications")
	}
	return out, nil
}

// warnNoIsWon warns, once per org and StageName, of an Opportunity
// message without IsWon whose stage dealsync does not know as won: a won
// stage of the org's own (renamed from Closed Won, or a second one) is
// then taken as not won and the deal is not invoiced, which the 200 and
// its skipped reason alone would not make anyone notice.
func (s *Source) warnNoIsWon(log *slog.Logger, org, stage string) {
	if _, seen := s.noIsWon.LoadOrStore(org+"\x00"+stage, true); seen {
		return
	}
	log.Warn("salesforce: an Opportunity outbound message without IsWon, in a stage not listed as won, is taken as not won: "+
		"if that stage means won in this org, add IsWon to the outbound message's fields (Setup > Outbound Messages) or the stage to won_stages; "+
		"warned once per org and stage",
		"org", org, "stage", stage)
}

// AckBody is the reply Salesforce needs to consider a message delivered.
const AckBody = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
  <soapenv:Body>
    <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">
      <Ack>true</Ack>
    </notificationsResponse>
  </soapenv:Body>
</soapenv:Envelope>
`

// Acknowledge answers a delivery whose events were all durably recorded
// (or needed no run) with <Ack>true</Ack>, HTTP 200.
func (s *Source) Acknowledge(w http.ResponseWriter, _ int, _ connectors.Reply) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(AckBody))
}

// Refuse answers with a SOAP 1.1 fault (soapenv:Client for 4xx,
// soapenv:Server otherwise) and the intake's status, so that Salesforce
// retries the message later.
func (s *Source) Refuse(w http.ResponseWriter, status int, message string) {
	code := "soapenv:Server"
	if status >= 400 && status < 500 {
		code = "soapenv:Client"
	}
	if status < 400 {
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
  <soapenv:Body>
    <soapenv:Fault>
      <faultcode>%s</faultcode>
      <faultstring>%s</faultstring>
    </soapenv:Fault>
  </soapenv:Body>
</soapenv:Envelope>
`, code, html.EscapeString(message))
}

// parseRSAKey reads a PEM (PKCS#1 or PKCS#8) or DER RSA private key.
func parseRSAKey(b []byte) (*rsa.PrivateKey, error) {
	if block, _ := pem.Decode(b); block != nil {
		b = block.Bytes
	}
	if k, err := x509.ParsePKCS8PrivateKey(b); err == nil {
		if rk, ok := k.(*rsa.PrivateKey); ok {
			return rk, nil
		}
		return nil, errors.New("not an RSA key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(b); err == nil {
		return k, nil
	}
	return nil, errors.New("not a PEM or DER RSA private key")
}
