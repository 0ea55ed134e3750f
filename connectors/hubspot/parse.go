package hubspot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
	"github.com/dealsync/dealsync/model"
)

// Event is one element of a HubSpot webhook delivery. Ids are JSON numbers
// that may exceed 2^31 (and, for ids, 2^53): they are kept as json.Number.
type Event struct {
	EventID          json.Number     `json:"eventId"`
	SubscriptionID   json.Number     `json:"subscriptionId"`
	PortalID         json.Number     `json:"portalId"`
	AppID            json.Number     `json:"appId"`
	OccurredAt       json.Number     `json:"occurredAt"`
	SubscriptionType string          `json:"subscriptionType"`
	AttemptNumber    json.Number     `json:"attemptNumber"`
	ObjectID         json.Number     `json:"objectId"`
	ObjectTypeID     string          `json:"objectTypeId"`
	PropertyName     string          `json:"propertyName"`
	PropertyValue    json.RawMessage `json:"propertyValue"`
	ChangeSource     string          `json:"changeSource"`
	SourceID         string          `json:"sourceId"`
	// A merge's deals: the one given priority, the ones merged into it and
	// the deal HubSpot made of them, when it made one.
	PrimaryObjectID json.Number   `json:"primaryObjectId"`
	MergedObjectIDs []json.Number `json:"mergedObjectIds"`
	NewObjectID     json.Number   `json:"newObjectId"`
}

// DealObjectTypeID is the object type id of deals in object.* subscriptions.
const DealObjectTypeID = "0-3"

// IsDeal reports whether the event is about a deal's own state: not an
// association change (which links a deal to another object and names
// both by fromObjectId and toObjectId, not objectId).
func (e *Event) IsDeal() bool {
	typ := e.SubscriptionType
	switch {
	case strings.HasSuffix(typ, ".associationChange"):
		return false
	case strings.HasPrefix(typ, "deal."):
		return true
	case strings.HasPrefix(typ, "object."):
		return e.ObjectTypeID == DealObjectTypeID
	}
	return false
}

// IsRestore reports whether the event is a deal restored from HubSpot's
// recycling bin (deal.restore, or object.restore of a deal): it keeps its
// id and sends no stage change.
func (e *Event) IsRestore() bool {
	return strings.HasSuffix(e.SubscriptionType, ".restore")
}

// IsMerge reports whether the event is a merge of deals (deal.merge, or
// object.merge of deals).
func (e *Event) IsMerge() bool {
	return strings.HasSuffix(e.SubscriptionType, ".merge")
}

// IsStageChange reports whether the event is a change of the deal stage.
func (e *Event) IsStageChange() bool {
	return strings.HasSuffix(e.SubscriptionType, ".propertyChange") && e.PropertyName == "dealstage"
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: hubspot: "+format, append([]any{connectors.ErrMalformed}, args...)...)
}

// Parse turns a verified delivery into its deal events, in body order
// (events about other objects and unknown subscription types are dropped;
// see the package doc). Events of a portal that is not configured are
// dropped (logged, counted in w.Dropped); a delivery with no event of a
// configured portal fails with an error wrapping
// connectors.ErrUnknownAccount. An event that cannot be read (an eventId
// or objectId that is not an integer, a field of the wrong JSON type) is
// left out and reported in w.Unreadable while the others go through:
// HubSpot may not send a delivery answered 400 again (its pages have said
// so of 400–405, later that any 4xx is retried), and would send the same
// bytes if it did. A body that is not a batch of HubSpot events, or
// none of whose events can be read, wraps connectors.ErrMalformed.
func (s *Source) Parse(w *connectors.Webhook) ([]model.DealEvent, error) {
	if w == nil {
		return nil, malformed("no delivery")
	}
	// Set on every path: a Webhook given again carries no earlier count.
	w.Dropped, w.Unreadable, w.Ignored = nil, nil, nil
	items, err := decodeBatch(w.Body)
	if err != nil {
		return nil, err
	}
	out := make([]model.DealEvent, 0, len(items))
	var unknown error // the first event of a portal that is not configured
	for i, item := range items {
		e, err := decodeEvent(i, item)
		if err != nil {
			w.Unreadable = append(w.Unreadable, err)
			continue
		}
		portal := e.PortalID.String()
		acc, err := s.account(portal)
		if err != nil {
			// A public app's batch can mix portals: the events of a portal
			// the config does not list are dropped, not the whole batch
			// (which HubSpot would retry until it gave up, losing the
			// other portals' events too).
			if unknown == nil {
				unknown = fmt.Errorf("event [%d] (eventId %s): %w", i, e.EventID, err)
			}
			drop := connectors.IgnoredEvent{EventID: e.EventID.String(),
				Reason: fmt.Sprintf("dropped: HubSpot portal %s is not among the connection's accounts, so its events start no run", portal)}
			if e.IsDeal() {
				drop.DealID = e.ObjectID.String()
			}
			w.Dropped = append(w.Dropped, drop)
			continue
		}
		if !e.IsDeal() {
			w.Ignored = append(w.Ignored, connectors.IgnoredEvent{EventID: e.EventID.String(),
				Reason: fmt.Sprintf("not about a deal's state (subscriptionType %q): nothing to invoice", e.SubscriptionType)})
			continue
		}
		if s.writeBackProperty(&e) {
			w.Ignored = append(w.Ignored, connectors.IgnoredEvent{EventID: e.EventID.String(), DealID: e.ObjectID.String(),
				Reason: fmt.Sprintf("dealsync's own write-back of %s (changeSource %s)", e.PropertyName, e.ChangeSource)})
			continue
		}
		ev, err := s.dealEvent(w.LogOf(s.log), i, &e, acc)
		if err != nil {
			w.Unreadable = append(w.Unreadable, &connectors.UnreadableEvent{EventID: e.EventID.String(), Err: err})
			continue
		}
		out = append(out, ev)
	}
	switch {
	case len(w.Unreadable) > 0 && len(w.Dropped)+len(w.Unreadable) == len(items):
		// Nothing readable of a listed portal, but events that cannot be
		// read (which may be ours): malformed, not "not our account".
		err := w.UnreadableError("events")
		if len(w.Dropped) > 0 {
			err = fmt.Errorf("%w; the %d other events are of portals the connection does not list", err, len(w.Dropped))
		}
		w.Dropped = nil
		return nil, err
	case len(w.Dropped) == len(items):
		w.Dropped = nil
		return nil, unknown // nothing of ours: 403, the operator's signal
	}
	if log := w.LogOf(s.log); len(w.Dropped) > 0 && log != nil {
		log.Warn("hubspot: events of portals the connection does not list dropped", "events", len(w.Dropped), "first", unknown.Error())
	}
	return out, nil
}

// DecodeEvents reads a delivery body: a JSON array of 1 to MaxBatch event
// objects, each with an integer eventId and portalId. Errors wrap
// connectors.ErrMalformed.
func DecodeEvents(body []byte) ([]Event, error) {
	items, err := decodeBatch(body)
	if err != nil {
		return nil, err
	}
	evs := make([]Event, len(items))
	for i, item := range items {
		if evs[i], err = decodeEvent(i, item); err != nil {
			return nil, err
		}
	}
	return evs, nil
}

// decodeBatch reads a delivery body as a JSON array of 1 to MaxBatch
// elements, each kept undecoded.
func decodeBatch(body []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, malformed("empty body: want a JSON array of events")
	}
	if msg := connectors.Gzipped("the body", body); msg != "" {
		return nil, malformed("%s", msg)
	}
	if trimmed[0] != '[' {
		return nil, malformed("body is not a JSON array: HubSpot sends an array of events")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, malformed("not JSON: %v", err)
	}
	switch {
	case len(items) == 0:
		return nil, malformed("empty array: no events")
	case len(items) > MaxBatch:
		return nil, malformed("%d events in one delivery, at most %d allowed", len(items), MaxBatch)
	}
	return items, nil
}

// decodeEvent reads element i of a batch: an event object with an integer
// eventId and portalId.
func decodeEvent(i int, item json.RawMessage) (Event, error) {
	var e Event
	if err := json.Unmarshal(item, &e); err != nil {
		// The event's id, when it can be read, so that the reply and the
		// log name the event left out.
		at := fmt.Sprintf("[%d]", i)
		var id struct {
			EventID json.Number `json:"eventId"`
		}
		eventID := ""
		if json.Unmarshal(item, &id) == nil && connectors.IsIntegerID(id.EventID.String()) {
			eventID = id.EventID.String()
			at = fmt.Sprintf("[%d] (eventId %s)", i, eventID)
		}
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field == "":
			err = malformed("%s: JSON %s where an event object was expected", at, te.Value)
		case errors.As(err, &te):
			err = malformed("%s.%s: JSON %s where a %s was expected", at, te.Field, te.Value, te.Type)
		default:
			err = malformed("%s: not an event object: %v", at, err)
		}
		if eventID != "" {
			err = &connectors.UnreadableEvent{EventID: eventID, Err: err}
		}
		return Event{}, err
	}
	if !connectors.IsIntegerID(e.EventID.String()) {
		return Event{}, malformed("[%d].eventId: want a non-negative 64-bit integer, got %s", i, connectors.QuoteShort(e.EventID.String()))
	}
	// From here the event's id names it in the reply and the log.
	unreadable := func(format string, args ...any) error {
		return &connectors.UnreadableEvent{EventID: e.EventID.String(), Err: malformed(format, args...)}
	}
	if !connectors.IsIntegerID(e.PortalID.String()) {
		return Event{}, unreadable("[%d].portalId: want a non-negative 64-bit integer, got %s", i, connectors.QuoteShort(e.PortalID.String()))
	}
	// Text that is not UTF-8 is read with U+FFFD in its place: the event
	// is left out, and the batch's others go through.
	if msg := connectors.NotUTF8(fmt.Sprintf("event [%d]", i), item); msg != "" {
		return Event{}, unreadable("%s", msg)
	}
	return e, nil
}

func (s *Source) dealEvent(log *slog.Logger, i int, e *Event, acc *account) (model.DealEvent, error) {
	id := e.ObjectID.String()
	if !connectors.IsIntegerID(id) {
		return model.DealEvent{}, malformed("[%d].objectId: want the deal id (a 64-bit integer), got %s", i, connectors.QuoteShort(id))
	}
	ev := model.DealEvent{
		EventID: e.EventID.String(),
		Account: e.PortalID.String(),
		Thin:    true,
		Deal:    model.Deal{ID: id},
	}
	if ms := e.OccurredAt.String(); ms != "" {
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil {
			return model.DealEvent{}, malformed("[%d].occurredAt: want Unix milliseconds, got %q", i, ms)
		}
		ev.OccurredAt = time.UnixMilli(n).UTC()
	}
	raw := map[string]json.RawMessage{
		"subscriptionType": crmkit.JSONString(e.SubscriptionType),
	}
	if e.PropertyName != "" {
		raw["propertyName"] = crmkit.JSONString(e.PropertyName)
		if len(e.PropertyValue) > 0 {
			raw["propertyValue"] = e.PropertyValue
		}
	}
	if e.ChangeSource != "" {
		raw["changeSource"] = crmkit.JSONString(e.ChangeSource)
	}
	switch {
	case e.IsRestore():
		// A deal restored from the recycling bin sends no stage change, yet
		// may be won: deleted while its run settled (which then ended
		// DealNotWon), or before a win reached dealsync. It is taken as
		// possibly won, as Resolve takes a stage it cannot judge: its run
		// reads the deal and invoices it only if it is won (else it ends
		// DealNotWon, SyncStatus skipped); a deal invoiced already meets its
		// completed run, a duplicate.
		raw["restored"] = json.RawMessage("true")
		ev.Deal.Stage = StageWon
	case e.IsMerge():
		merged(log, e, raw)
	}
	if e.IsStageChange() {
		stage, err := valueString(e.PropertyValue)
		if err != nil {
			return model.DealEvent{}, malformed("[%d].propertyValue: %v", i, err)
		}
		raw["dealstage"] = crmkit.JSONString(stage)
		if s.wonStages[stage] || acc.wonStages[stage] {
			stage = StageWon
		}
		ev.Deal.Stage = stage
	}
	ev.Deal.Raw = raw
	return ev, nil
}

// valueString reads propertyValue: a string, or a number kept as written.
func valueString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return strings.TrimSpace(s), nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return string(raw), nil
	}
	return "", errors.New("want a string")
}

// writeBackProperty says whether e is dealsync's own write-back, seen by
// a portal subscribed to every deal property: a change of a write-back
// property made through the API (changeSource INTEGRATION or API), not a
// change of the deal an operator should look at. Taken as one, it marked
// every invoiced deal ChangedAfterInvoice. A person's edit of those
// properties (CRM_UI) still is an event.
func (s *Source) writeBackProperty(e *Event) bool {
	p := e.PropertyName
	if p == "" || e.IsStageChange() || !(strings.EqualFold(e.ChangeSource, "INTEGRATION") || strings.EqualFold(e.ChangeSource, "API")) {
		return false
	}
	w := s.write
	return strings.EqualFold(p, w.InvoiceIDProperty) || strings.EqualFold(p, w.InvoiceNumberProperty) ||
		strings.EqualFold(p, w.InvoiceURLProperty) || strings.EqualFold(p, w.StatusProperty)
}

// merged keeps a merge's deals in raw and says what the merge needs: it
// starts no run. HubSpot makes a new deal of the deals merged (or keeps the
// primary one), and only its webhooks say whether that deal is won. Were a
// merge to start one, a deal made of two already invoiced would bill their
// sale again; so an operator decides (`dealsync deals sync`).
func merged(log *slog.Logger, e *Event, raw map[string]json.RawMessage) {
	ids := make([]string, 0, len(e.MergedObjectIDs))
	for _, id := range e.MergedObjectIDs {
		ids = append(ids, id.String())
	}
	into := e.NewObjectID.String()
	if into == "" {
		into = e.PrimaryObjectID.String()
	}
	if into != "" {
		raw["merged_into"] = crmkit.JSONString(into)
	}
	if len(ids) > 0 {
		b, _ := json.Marshal(ids)
		raw["merged_ids"] = b
	}
	if log != nil {
		log.Warn("hubspot: deals were merged; a merge starts no run. If the deal they made is won and not invoiced, "+
			"start its run with `dealsync deals sync`; if a merged deal was invoiced already, mind that invoicing the new deal bills that sale again",
			"portal", e.PortalID.String(), "event_id", e.EventID.String(), "deal_id", e.ObjectID.String(),
			"merged_into", into, "merged_ids", ids)
	}
}
