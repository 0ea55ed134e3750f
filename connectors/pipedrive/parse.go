package pipedrive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
	"github.com/dealsync/dealsync/model"
)

// Delivery is a webhooks v2 body.
type Delivery struct {
	Meta     Meta            `json:"meta"`
	Data     json.RawMessage `json:"data"`
	Previous json.RawMessage `json:"previous"`
}

// Meta is the webhooks v2 meta block. Ids are strings in real deliveries and
// numbers in some examples: Ident accepts both.
type Meta struct {
	Action        string `json:"action"`
	Entity        string `json:"entity"`
	EntityID      Ident  `json:"entity_id"`
	ID            Ident  `json:"id"`
	CorrelationID Ident  `json:"correlation_id"`
	CompanyID     Ident  `json:"company_id"`
	UserID        Ident  `json:"user_id"`
	WebhookID     Ident  `json:"webhook_id"`
	Version       Ident  `json:"version"`
	Timestamp     Ident  `json:"timestamp"`
	ChangeSource  string `json:"change_source"`
	IsBulkEdit    bool   `json:"is_bulk_edit"`
	Attempt       Ident  `json:"attempt"`
	// MergedFromID and MergedToID are set on the deliveries of a merge:
	// the deal merged away is deleted (a delete with merged_to_id, the
	// deal it went into), and the deal it went into changes (with
	// merged_from_id, the deal merged away).
	MergedFromID Ident `json:"merged_from_id"`
	MergedToID   Ident `json:"merged_to_id"`
}

// Ident is an id-like value given as a JSON string or number, kept as
// written.
type Ident string

// UnmarshalJSON accepts a string, a number or null.
func (i *Ident) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*i = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*i = Ident(strings.TrimSpace(s))
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*i = Ident(n)
	default:
		return errors.New("want a string or a number")
	}
	return nil
}

// dealState is the part of data/previous Parse reads.
type dealState struct {
	ID         Ident   `json:"id"`
	Status     *string `json:"status"`
	StageID    Ident   `json:"stage_id"`
	PipelineID Ident   `json:"pipeline_id"`
	// IsArchived and ArchiveTime: webhooks v2 carry them in data, as API
	// v2 answers them.
	IsArchived  *bool   `json:"is_archived"`
	ArchiveTime *string `json:"archive_time"`
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: pipedrive: "+format, append([]any{connectors.ErrMalformed}, args...)...)
}

// v1Delivery says whether body is a delivery of Pipedrive's webhooks v1
// ({v, event, meta: {v, action, object}, current, previous}), and what
// its event is (`event "updated.deal"`, or `meta.v 1` without one).
func v1Delivery(body []byte) (string, bool) {
	var v1 struct {
		Event string `json:"event"`
		Meta  struct {
			V json.RawMessage `json:"v"`
		} `json:"meta"`
		Current json.RawMessage `json:"current"`
	}
	if json.Unmarshal(body, &v1) != nil || (len(v1.Meta.V) == 0 && v1.Current == nil) {
		return "", false
	}
	if v1.Event != "" {
		return fmt.Sprintf("event %q", v1.Event), true
	}
	if len(v1.Meta.V) > 0 {
		return "meta.v " + string(v1.Meta.V), true
	}
	return "current and previous", true
}

// DecodeDelivery reads a webhooks v2 body. Errors wrap connectors.ErrMalformed.
func DecodeDelivery(body []byte) (*Delivery, error) {
	trimmed := bytes.TrimSpace(body)
	if msg := connectors.Gzipped("the body", body); msg != "" {
		return nil, malformed("%s", msg)
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, malformed("body is not a JSON object: want a webhooks v2 delivery {meta, data, previous}")
	}
	if msg := connectors.NotUTF8("the body", body); msg != "" {
		return nil, malformed("%s", msg)
	}
	var d Delivery
	if err := json.Unmarshal(body, &d); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, malformed("field %s: JSON %s where a %s was expected", te.Field, te.Value, te.Type)
		}
		return nil, malformed("not JSON: %v", err)
	}
	if d.Meta.Action == "" || d.Meta.Entity == "" {
		if event, ok := v1Delivery(body); ok {
			return nil, malformed("a webhooks v1 delivery (%s), and only webhooks v2 are supported: in Pipedrive, create the webhook again with version 2.0 "+
				"(POST /v1/webhooks with \"version\": \"2.0\", the same HTTP auth), then delete this one (docs/connectors/crm.md, pipedrive)", event)
		}
		return nil, malformed("no meta.action or meta.entity: not a webhooks v2 delivery (create the webhook with version 2.0)")
	}
	if v := string(d.Meta.Version); v != "" && !strings.HasPrefix(v, "2") {
		return nil, malformed("meta.version %q: only webhooks v2 are supported", v)
	}
	return &d, nil
}

// CompanyOf reads a delivery's meta.company_id (Verify binds account
// credentials with it) without parsing the rest.
func CompanyOf(body []byte) (string, error) {
	var d struct {
		Meta struct {
			CompanyID Ident `json:"company_id"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return "", err
	}
	return string(d.Meta.CompanyID), nil
}

// Parse turns a verified delivery into at most one deal event (see the
// package doc). A company that is not configured gives an error wrapping
// connectors.ErrUnknownAccount.
func (s *Source) Parse(w *connectors.Webhook) ([]model.DealEvent, error) {
	if w == nil {
		return nil, malformed("no delivery")
	}
	w.Ignored = nil
	d, err := DecodeDelivery(w.Body)
	if err != nil {
		return nil, err
	}
	m := &d.Meta
	company := string(m.CompanyID)
	if company == "" {
		return nil, malformed("meta.company_id is missing")
	}
	if _, err := s.account(company); err != nil {
		return nil, err
	}
	var why string
	switch {
	case m.Entity != "deal":
		why = fmt.Sprintf("not a deal (meta.entity %q): nothing to invoice", m.Entity)
	case m.Action == "delete":
		why = "the deal was deleted: nothing to invoice"
	case isNull(d.Data):
		why = "no deal data (data is null): nothing to invoice"
	case s.ownWriteBack(m, d.Previous):
		why = "dealsync's own write-back (change_source api)"
	}
	if why != "" {
		id := string(m.ID)
		if id == "" && m.CorrelationID != "" {
			id = string(m.CorrelationID) + "#" + string(m.EntityID) // as a kept event's id is made
		}
		ig := connectors.IgnoredEvent{EventID: id, Reason: why}
		if m.Entity == "deal" {
			ig.DealID = string(m.EntityID)
		}
		w.Ignored = append(w.Ignored, ig)
		return nil, nil
	}
	var cur dealState
	if err := json.Unmarshal(d.Data, &cur); err != nil {
		return nil, malformed("data: %v", err)
	}
	var prev *dealState
	if !isNull(d.Previous) {
		prev = &dealState{}
		if err := json.Unmarshal(d.Previous, prev); err != nil {
			return nil, malformed("previous: %v", err)
		}
	}
	dealID, field := string(m.EntityID), "meta.entity_id"
	if dealID == "" {
		dealID, field = string(cur.ID), "data.id"
	}
	if !connectors.IsIntegerID(dealID) {
		return nil, malformed("%s: want the deal id (a 64-bit integer without leading zeros), got %s", field, connectors.QuoteShort(dealID))
	}
	eventID := string(m.ID)
	if eventID == "" {
		if m.CorrelationID == "" {
			return nil, malformed("meta.id and meta.correlation_id are missing: no event id")
		}
		eventID = string(m.CorrelationID) + "#" + dealID
	}
	ev := model.DealEvent{EventID: eventID, Account: company, Thin: true, Deal: model.Deal{ID: dealID}}
	if ts := string(m.Timestamp); ts != "" {
		t, err := parseTimestamp(ts)
		if err != nil {
			return nil, malformed("meta.timestamp: %v", err)
		}
		ev.OccurredAt = t
	}
	if cur.Status != nil {
		ev.Deal.Stage = strings.TrimSpace(*cur.Status)
	}
	if prev != nil {
		if prev.Status != nil {
			ev.Deal.PreviousStage = strings.TrimSpace(*prev.Status)
		} else {
			ev.Deal.PreviousStage = ev.Deal.Stage // the status did not change
		}
	}
	raw := stageRaw(cur.StageID, cur.PipelineID)
	raw["action"] = crmkit.JSONString(m.Action)
	// Whether the deal is archived (Pipedrive's API no longer edits
	// archived deals, so their write-back fails: see WriteBack), for a
	// trigger to test and an operator to see.
	archiveRaw(raw, cur.IsArchived, cur.ArchiveTime)
	if prev != nil && prev.StageID != "" {
		raw["previous_stage_id"] = identRaw(prev.StageID)
	}
	// A merge's change of the deal that survives it. The deal merged away
	// was deleted (its delivery is dropped above, and a run of it reads it
	// as deleted); dealsync does not join the two deals' runs, so the id is
	// kept for a trigger to test and an operator to see, who checks the
	// surviving deal's invoice against what the other deal was billed.
	if m.MergedFromID != "" {
		raw["merged_from_id"] = identRaw(m.MergedFromID)
	}
	if m.MergedToID != "" {
		raw["merged_to_id"] = identRaw(m.MergedToID)
	}
	ev.Deal.Raw = raw
	return []model.DealEvent{ev}, nil
}

// parseTimestamp reads an ISO-8601 time (real deliveries) or Unix seconds
// or milliseconds (the guide's "10 character timestamp").
func parseTimestamp(s string) (time.Time, error) {
	if connectors.IsDigits(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, err
		}
		if len(s) > 11 {
			return time.UnixMilli(n).UTC(), nil
		}
		return time.Unix(n, 0).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02 15:04:05", s); err == nil {
		return t, nil
	}
	// ISO 8601 with the offset written without a colon (+0000).
	if t, err := time.Parse("2006-01-02T15:04:05.999999999Z0700", s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a timestamp", s)
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// ownWriteBack says whether a change delivery is the echo of dealsync's own
// write-back: made through the API (change_source "api") and changing
// nothing but the write-back custom fields (and the update time). Such a
// delivery is not a change of the deal an operator should look at: taken
// as one, it marked every invoiced deal ChangedAfterInvoice.
func (s *Source) ownWriteBack(m *Meta, previous json.RawMessage) bool {
	if m.ChangeSource != "api" || m.Action != "change" || isNull(previous) {
		return false
	}
	w := s.write
	ours := func(f string) bool {
		return f != "" && slices.Contains([]string{w.InvoiceIDField, w.InvoiceNumberField, w.InvoiceURLField, w.StatusField}, f)
	}
	var changed map[string]json.RawMessage
	if json.Unmarshal(previous, &changed) != nil {
		return false
	}
	fields := 0
	for k, v := range changed {
		switch k {
		case "update_time":
		case "custom_fields":
			var custom map[string]json.RawMessage
			if json.Unmarshal(v, &custom) != nil {
				return false
			}
			for f := range custom {
				if !ours(f) {
					return false
				}
				fields++
			}
		default:
			return false
		}
	}
	return fields > 0
}

// stageRaw is the deal's stage and pipeline ids as a webhook's event
// carries them in Deal.Raw (and `deals sync` hands the trigger).
func stageRaw(stageID, pipelineID Ident) map[string]json.RawMessage {
	raw := map[string]json.RawMessage{}
	if stageID != "" {
		raw["stage_id"] = identRaw(stageID)
	}
	if pipelineID != "" {
		raw["pipeline_id"] = identRaw(pipelineID)
	}
	return raw
}

// identRaw is an id as JSON: a number when it is digits, else a string.
func identRaw(id Ident) json.RawMessage {
	if connectors.IsDigits(string(id)) {
		return json.RawMessage(id)
	}
	return crmkit.JSONString(string(id))
}
