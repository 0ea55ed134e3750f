// Package dealfile reads the deal event files of dry runs (`dealsync
// mapping test --deal`) and golden cases (mapping.RunGolden) as a run would
// see the event: a generic source's body through the generic source's own
// parser, or a deal event in dealsync's own shape (`--fetch --save`).
package dealfile

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/internal/jsonpos"
	"github.com/dealsync/dealsync/model"
)

// DryRunWebhookID stands for the webhook-id of a delivery when Read
// reads a generic source body without event_id: the id the generic source
// gives such an event is its delivery's webhook-id.
const DryRunWebhookID = "dry-run"

// Read reads one deal event from a JSON file, as a run would see it.
// The file is in one of two shapes:
//
//   - dealsync's event shape (model.DealEvent, as `mapping test --fetch
//     --save` writes it) when it has a field that only this shape has:
//     `account` or `thin` beside `deal`, or `raw` or `close_time` in
//     `deal` (IsEventShape). It is read strictly: an unknown field is an
//     error.
//   - otherwise, the body of a generic source delivery (what `dealsync
//     webhook send` posts), read by the generic source's own parser, as
//     the intake reads it: every deal field is kept in deal.raw, a
//     close_date with a time sets close_time, an event without event_id
//     gets DryRunWebhookID. The body must hold one event.
func Read(path string) (model.DealEvent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return model.DealEvent{}, err
	}
	// A byte order mark, which some editors write before JSON, is read
	// past, as the generic source does (a file of dealsync's event shape
	// with one was read as a generic body, its account and fields lost).
	data = jsonpos.WithoutBOM(data)
	if IsEventShape(data) {
		var ev model.DealEvent
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			// encoding/json names the field of a value of the wrong JSON
			// type, not one whose own decoding refuses it (a date, a
			// decimal, a moment): that one is named here.
			var syntax *json.SyntaxError
			var typ *json.UnmarshalTypeError
			if field := fieldPath(data, reflect.TypeFor[model.DealEvent](), ""); field != "" && !errors.As(err, &syntax) && !errors.As(err, &typ) &&
				!strings.HasPrefix(err.Error(), "json: ") {
				err = fmt.Errorf("%s: %w", field, err)
			}
			if at, ok := jsonpos.Of(data, err); ok {
				err = fmt.Errorf("%s: %w", at, err)
			}
			if strings.Contains(err.Error(), `unknown field "has_tax_rate"`) {
				// A mapping reads item.has_tax_rate; a deal file states
				// the rate, or leaves it out.
				err = fmt.Errorf("%w (item.has_tax_rate is not written in a deal file: it is true where the line item has a tax_rate, so leave it out, and tax_rate out where the CRM states no rate)", err)
			}
			return model.DealEvent{}, fmt.Errorf("%s: not a deal event in dealsync's event shape (it has account, thin, deal.raw or deal.close_time): %w", path, err)
		}
		return ev, nil
	}
	events, err := generic.ParseEvents(data, DryRunWebhookID)
	if err != nil {
		if vendor := vendorWebhook(data); vendor != "" {
			return model.DealEvent{}, fmt.Errorf("%s: %s", path, vendor)
		}
		if input := runInput(data); input != "" {
			return model.DealEvent{}, fmt.Errorf("%s: %s", path, input)
		}
		return model.DealEvent{}, fmt.Errorf("%s: not a deal event of the generic source: %w", path, err)
	}
	if len(events) != 1 {
		return model.DealEvent{}, fmt.Errorf("%s: a delivery of %d events; a deal file holds one", path, len(events))
	}
	return events[0], nil
}

// IsEventShape reports whether data, a JSON deal event, is in dealsync's
// event shape rather than the generic source's: whether it is an object
// with `account` or `thin`, or whose `deal` has `raw` or `close_time`,
// fields that the generic source does not read (it would keep the deal's
// in deal.raw and ignore the event's).
func IsEventShape(data []byte) bool {
	var event map[string]json.RawMessage
	if json.Unmarshal(data, &event) != nil {
		return false
	}
	if _, ok := event["account"]; ok {
		return true
	}
	if _, ok := event["thin"]; ok {
		return true
	}
	var deal map[string]json.RawMessage
	if json.Unmarshal(event["deal"], &deal) != nil {
		return false
	}
	_, raw := deal["raw"]
	_, closeTime := deal["close_time"]
	return raw || closeTime
}

// unmarshalerType is json.Unmarshaler's type.
var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// fieldPath is the JSON path ("deal.close_date", "deal.line_items[0].quantity")
// of the value of data that does not decode as a value of type t does, the
// first in t's order; path is data's own. It is path when data itself is
// that value (a value decoding itself, or no object or list), "" for a
// top level that decodes.
func fieldPath(data []byte, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return path
	}
	fails := func(v []byte, t reflect.Type) bool { return json.Unmarshal(v, reflect.New(t).Interface()) != nil }
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return path
		}
		keys := slices.Sorted(maps.Keys(obj))
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			for _, k := range keys {
				// encoding/json matches a key to a field regardless of case.
				if strings.EqualFold(k, name) && fails(obj[k], f.Type) {
					return fieldPath(obj[k], f.Type, joinPath(path, k))
				}
			}
		}
	case reflect.Slice, reflect.Array:
		var list []json.RawMessage
		if json.Unmarshal(data, &list) != nil {
			return path
		}
		for i, v := range list {
			if fails(v, t.Elem()) {
				return fieldPath(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case reflect.Map:
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return path
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if fails(obj[k], t.Elem()) {
				return fieldPath(obj[k], t.Elem(), joinPath(path, k))
			}
		}
	}
	return path
}

func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// vendorWebhook says what data is and what to do instead when it is the
// body of a CRM's own webhook, which a deal file cannot be (it tells
// little more than which deal changed, and in the CRM's words): a
// Pipedrive webhook (an object with meta and data) or a HubSpot one (a
// list of events with portalId or subscriptionType). "" otherwise.
func vendorWebhook(data []byte) string {
	const fetch = "test the mapping on the deal as a run reads it from the CRM, and save it as a deal file: " +
		"dealsync mapping test --connection NAME --fetch %s --save FILE"
	var pipedrive struct {
		Meta *struct {
			Version   json.RawMessage `json:"version"`
			V         json.RawMessage `json:"v"`
			Entity    string          `json:"entity"`
			Object    string          `json:"object"`
			EntityID  json.RawMessage `json:"entity_id"`
			ID        json.RawMessage `json:"id"`
			CompanyID json.RawMessage `json:"company_id"`
		} `json:"meta"`
		Data    json.RawMessage `json:"data"`
		Current json.RawMessage `json:"current"`
	}
	if json.Unmarshal(data, &pipedrive) == nil && pipedrive.Meta != nil && (pipedrive.Data != nil || pipedrive.Current != nil) {
		m := pipedrive.Meta
		what := "a Pipedrive webhook body (meta and data), not a deal event"
		if len(m.Version) > 0 {
			what = fmt.Sprintf("a Pipedrive webhook body (meta.version %s), not a deal event", jsonText(m.Version))
		}
		id := "DEAL_ID"
		if m.Entity == "deal" || m.Object == "deal" {
			if v := jsonText(m.EntityID); v != "" {
				id = v
			} else if v := jsonText(m.ID); v != "" && len(m.V) > 0 {
				id = v // v1: meta.id is the deal's
			}
		}
		msg := what + "; " + fmt.Sprintf(fetch, id)
		if c := jsonText(m.CompanyID); c != "" {
			msg += fmt.Sprintf(" (with --account %s when the connection serves several companies)", c)
		}
		return msg
	}
	if bytes.Contains(data, []byte("soap.sforce.com/2005/09/outbound")) {
		// A Salesforce outbound message (SOAP): its org and first record.
		var env struct {
			Notifications struct {
				OrganizationID string `xml:"OrganizationId"`
				Notification   []struct {
					SObject struct {
						ID string `xml:"Id"`
					} `xml:"sObject"`
				} `xml:"Notification"`
			} `xml:"Body>notifications"`
		}
		id, org := "OPPORTUNITY_ID", ""
		if xml.Unmarshal(data, &env) == nil {
			org = strings.TrimSpace(env.Notifications.OrganizationID)
			if n := env.Notifications.Notification; len(n) > 0 && strings.TrimSpace(n[0].SObject.ID) != "" {
				id = strings.TrimSpace(n[0].SObject.ID)
			}
		}
		msg := "a Salesforce outbound message (SOAP), not a deal event; " + fmt.Sprintf(fetch, id)
		if org != "" {
			msg += fmt.Sprintf(" (with --account %s when the connection serves several orgs)", org)
		}
		return msg
	}
	var hubspot []struct {
		PortalID         json.RawMessage `json:"portalId"`
		SubscriptionType string          `json:"subscriptionType"`
		ObjectID         json.RawMessage `json:"objectId"`
	}
	if json.Unmarshal(data, &hubspot) == nil {
		id, portal := "DEAL_ID", ""
		found := false
		for _, e := range hubspot {
			if e.PortalID == nil && e.SubscriptionType == "" {
				continue
			}
			if !found && portal == "" {
				portal = jsonText(e.PortalID)
			}
			found = true
			if strings.HasPrefix(e.SubscriptionType, "deal.") && jsonText(e.ObjectID) != "" {
				id, portal = jsonText(e.ObjectID), jsonText(e.PortalID)
				break
			}
		}
		if found {
			msg := "a HubSpot webhook body (events with portalId and subscriptionType), not a deal event; " + fmt.Sprintf(fetch, id)
			if portal != "" {
				msg += fmt.Sprintf(" (with --account %s when the connection serves several portals)", portal)
			}
			return msg
		}
	}
	return ""
}

// runInput says what to do instead when data is a run's input, as the
// Web UI shows it on the run's page and copies it (connection, event,
// retry, …), which a failed run's message invites one to save as the deal
// file: its event is the deal event, in dealsync's event shape, that the
// run started with, or, for a CRM that sends thin webhooks, that webhook,
// whose deal is read by --fetch. "" when data is no such input.
func runInput(data []byte) string {
	var input struct {
		Connection string `json:"connection"`
		Event      *struct {
			Account string `json:"account"`
			Thin    bool   `json:"thin"`
			Deal    *struct {
				ID string `json:"id"`
			} `json:"deal"`
		} `json:"event"`
	}
	if json.Unmarshal(data, &input) != nil || input.Event == nil || input.Event.Deal == nil {
		return ""
	}
	// A run's input has no deal of its own: a body with one is a deal
	// event, with a field named event among its others, whose own error
	// is the one to say.
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return ""
	}
	if _, ok := top["deal"]; ok {
		return ""
	}
	const what = "a run's input (connection, event, …, as the Web UI shows it), not a deal event; "
	if input.Event.Thin {
		id := input.Event.Deal.ID
		if id == "" {
			id = "DEAL_ID"
		}
		conn := input.Connection
		if conn == "" {
			conn = "NAME"
		}
		msg := what + "its event is the CRM's thin webhook, not the deal: read the deal from the CRM as the run did, and save it as a deal file: " +
			fmt.Sprintf("dealsync mapping test --connection %s --fetch %s --save FILE", conn, id)
		if input.Event.Account != "" {
			msg += " --account " + input.Event.Account
		}
		return msg
	}
	return what + `its "event" is the deal event the run started with: save that object alone as the deal file (jq .event INPUT.json > FILE)`
}

// jsonText is a JSON string's or number's text; "" for anything else.
func jsonText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String()
	}
	return ""
}
