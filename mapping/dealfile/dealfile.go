// Package dealfile reads the deal event files of dry runs (`dealsync
// mapping test --deal`) and golden cases (mapping.RunGolden) as a run would
// see the event: a generic source's body through the generic source's own
// parser, or a deal event in dealsync's own shape (`--fetch --save`).
package dealfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/dealsync/dealsync/connectors/generic"
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
	if IsEventShape(data) {
		var ev model.DealEvent
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			return model.DealEvent{}, fmt.Errorf("%s: not a deal event in dealsync's event shape (it has account, thin, deal.raw or deal.close_time): %w", path, err)
		}
		return ev, nil
	}
	events, err := generic.ParseEvents(data, DryRunWebhookID)
	if err != nil {
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
