package app

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// ThinTriggerWarnings name a connection whose source's webhooks are thin
// (connectors.WebhookShaper: HubSpot, Pipedrive, Salesforce send little
// more than the deal's id and stage, and the run reads the deal from the
// CRM after its settle time) and whose mapping's trigger reads fields of
// the deal such a webhook does not carry (`deal.amount > 100`): the
// trigger sees them empty on every webhook, so a won deal it should take
// is answered 200 "skipped" and never invoiced, silently. The fields a
// thin webhook carries are the deal's id, stage, previous stage and raw
// fields (the keys the source lists, connectors.WebhookRawKeyser: a
// Pipedrive deal's custom fields are the run's to read, and fromJSON of
// one fails the trigger), and those the source's WebhookShaper keeps of a
// deal (Salesforce's outbound messages carry the name).
func ThinTriggerWarnings(c *connections.Connection) []string {
	shaper, ok := c.Source.(connectors.WebhookShaper)
	if !ok {
		return nil
	}
	f, ok := c.Mapper.(*mapping.File)
	if !ok {
		return nil
	}
	carried := thinFields(shaper)
	// The raw keys a webhook carries, where the source says (nil: any).
	var rawKeys []string
	if k, ok := shaper.(connectors.WebhookRawKeyser); ok {
		rawKeys = k.WebhookRawKeys()
	}
	var missing []string
	for _, path := range f.TriggerDealReads() {
		field, _, _ := strings.Cut(strings.TrimPrefix(path, "deal."), ".")
		if path == "deal" || !carried[field] {
			missing = append(missing, path)
		}
	}
	for _, key := range f.TriggerRawKeysRead() {
		if rawKeys != nil && !slices.Contains(rawKeys, key) {
			// A key of the deal the run reads from the CRM (a Pipedrive
			// custom field, a HubSpot property the fetch adds): "" on
			// every webhook, and fromJSON of it fails the trigger. (A
			// key with a dot in it, "Owner.Email", is named whole.)
			missing = append(missing, fmt.Sprintf("deal.raw[%q]", key))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("connection %s: the trigger of mapping %q, `%s`, reads %s, which the %s source's webhooks do not carry: they are thin (%s only; "+
		"the run reads the whole deal from the CRM after the trigger has started it), so the trigger sees %s empty (0, \"\", no line items) on every webhook "+
		"and a won deal it should take is answered 200 \"skipped\" and never invoiced, silently; keep the trigger to those fields "+
		"(`dealsync mapping test --connection %s --fetch DEAL_ID` judges it on what a webhook of that deal carries)",
		c.Name, f.Name(), oneLine(f.TriggerExpression()), strings.Join(missing, ", "), c.SourceType, carriedWords(carried, rawKeys), pronoun(missing), c.Name)}
}

// thinFields are the fields of `deal` (as a mapping names them) a thin
// webhook of the source carries: id, stage, previous_stage and raw always
// (the intake's stage fields and the source's own), and those the
// source's WebhookDeal keeps of a deal that has every field set.
func thinFields(shaper connectors.WebhookShaper) map[string]bool {
	carried := map[string]bool{"id": true, "stage": true, "previous_stage": true, "raw": true}
	full := model.Deal{
		ID: "1", Name: "n", Stage: "s", PreviousStage: "p",
		Amount: decimal.NewNullDecimal(decimal.NewFromInt(1)), Currency: "EUR",
		CloseDate: model.NewDate(2026, 1, 1), CloseTime: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC),
		Company:   model.Company{ID: "c", Name: "n", Email: "e", TaxID: "t", Address: model.Address{Line1: "l", Country: "DE"}},
		LineItems: []model.LineItem{{SKU: "s", Quantity: decimal.NewFromInt(1)}},
		Owner:     "o",
	}
	d := shaper.WebhookDeal(full)
	set := map[string]bool{
		"name":       d.Name != "",
		"amount":     d.Amount.Valid,
		"has_amount": d.Amount.Valid,
		"currency":   d.Currency != "",
		"close_date": !d.CloseDate.IsZero(),
		"close_time": !d.CloseTime.IsZero(),
		"company":    d.Company != (model.Company{}),
		"line_items": len(d.LineItems) > 0,
		"owner":      d.Owner != "",
	}
	for field, kept := range set {
		if kept {
			carried[field] = true
		}
	}
	return carried
}

// carriedWords lists the carried fields as a trigger reads them, and
// the raw keys (nil: any).
func carriedWords(carried map[string]bool, rawKeys []string) string {
	words := []string{"deal.id", "deal.stage", "deal.previous_stage"}
	for _, f := range []string{"name", "amount", "has_amount", "currency", "close_date", "close_time", "company", "line_items", "owner"} {
		if carried[f] {
			words = append(words, "deal."+f)
		}
	}
	if rawKeys == nil {
		return strings.Join(words, ", ") + " and deal.raw"
	}
	return strings.Join(words, ", ") + " and deal.raw's " + strings.Join(rawKeys, ", ")
}

func pronoun(paths []string) string {
	if len(paths) == 1 {
		return "it"
	}
	return "them"
}

// oneLine is an expression on one line, for a message.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
