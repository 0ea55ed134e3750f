package generic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/jsonpos"
	"github.com/dealsync/dealsync/model"
)

// MaxBatch is the most events one delivery may carry.
const MaxBatch = 100

// maxProblems caps how many field problems one error lists.
const maxProblems = 10

// maxExponent bounds the decimal exponent of amounts and quantities, so that
// a value like 1e9999 cannot make later arithmetic or formatting explode.
const maxExponent = 64

// maxIntegerDigits bounds the digits before the decimal point of amounts
// and quantities (a value under 10^30): "1" and 400 zeros has exponent 0
// but is no amount, and as a float (the Amount search attribute) it is
// infinite, which a run cannot be started with.
const maxIntegerDigits = 30

// ParseEvents parses a generic body (one event object or an array of at most
// MaxBatch) without verifying anything. webhookID is the delivery's
// webhook-id, used for events without an event_id ("" if there is none).
// Errors wrap connectors.ErrMalformed.
func ParseEvents(body []byte, webhookID string) ([]model.DealEvent, error) {
	// A byte order mark, which some senders put before JSON, is read past
	// (RFC 8259 lets a parser ignore it); the signature covers it as sent.
	body = jsonpos.WithoutBOM(body)
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: empty body: want a JSON event object or an array of them", connectors.ErrMalformed)
	}
	if msg := connectors.NotUTF8("the body", body); msg != "" {
		return nil, fmt.Errorf("%w: %s", connectors.ErrMalformed, msg)
	}

	var elems []json.RawMessage
	batch := false
	switch trimmed[0] {
	case '[':
		batch = true
		if err := json.Unmarshal(body, &elems); err != nil {
			return nil, jsonError(body, err)
		}
		if len(elems) == 0 {
			return nil, fmt.Errorf("%w: empty array: no events", connectors.ErrMalformed)
		}
		if len(elems) > MaxBatch {
			return nil, fmt.Errorf("%w: %d events in one delivery, at most %d allowed", connectors.ErrMalformed, len(elems), MaxBatch)
		}
	case '{':
		var one json.RawMessage
		if err := json.Unmarshal(body, &one); err != nil {
			return nil, jsonError(body, err)
		}
		elems = []json.RawMessage{one}
	default:
		var v json.RawMessage
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, jsonError(body, err)
		}
		return nil, fmt.Errorf("%w: body is a JSON %s: want an event object or an array of them", connectors.ErrMalformed, kindOf(v))
	}

	p := &problems{}
	events := make([]model.DealEvent, 0, len(elems))
	seen := make(map[string]int, len(elems))
	for i, raw := range elems {
		base := ""
		if batch {
			base = "[" + strconv.Itoa(i) + "]"
		}
		ev := p.event(base, raw)
		if ev.EventID == "" {
			if webhookID == "" {
				p.add(join(base, "event_id"), "is required (and the delivery has no webhook-id header)")
			} else {
				ev.EventID = webhookID
				if i > 0 {
					ev.EventID += "#" + strconv.Itoa(i)
				}
				// Held to the limit of an event_id in the body: the id
				// goes where that one goes.
				if len(ev.EventID) > maxIdent {
					p.add(join(base, "event_id"), fmt.Sprintf("is missing, and the id made of the webhook-id header (%s) is %d bytes long; at most %d: send an event_id or a shorter webhook-id",
						connectors.QuoteShort(ev.EventID), len(ev.EventID), maxIdent))
					ev.EventID = ""
				} else {
					// A header value may hold a tab or bytes that are not
					// UTF-8, which an event_id in the body may not.
					before := len(p.list) + p.extra
					p.text(join(base, "event_id")+" (missing: the id made of the webhook-id header)", ev.EventID, false, true)
					if len(p.list)+p.extra > before {
						ev.EventID = ""
					}
				}
			}
		}
		if ev.EventID != "" {
			if j, dup := seen[ev.EventID]; dup {
				// The same event listed twice (a sender's batching) is one
				// event; another event under a used id is malformed.
				if bytes.Equal(bytes.TrimSpace(raw), bytes.TrimSpace(elems[j])) {
					continue
				}
				p.add(join(base, "event_id"), fmt.Sprintf("%s repeats the id of [%d] with another event", connectors.QuoteShort(ev.EventID), j))
			} else {
				seen[ev.EventID] = i
			}
		}
		events = append(events, ev)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return events, nil
}

// jsonError reports a JSON decoding failure with its position.
func jsonError(body []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := jsonpos.Position(body, se.Offset)
		return fmt.Errorf("%w: not JSON: %s at byte offset %d (line %d, column %d)",
			connectors.ErrMalformed, se.Error(), se.Offset, line, col)
	}
	return fmt.Errorf("%w: not JSON: %v", connectors.ErrMalformed, err)
}

// problems collects field errors so that one reply names all of them.
type problems struct {
	list  []string
	extra int
}

func (p *problems) add(field, msg string) {
	if len(p.list) >= maxProblems {
		p.extra++
		return
	}
	if field == "" {
		p.list = append(p.list, msg)
		return
	}
	p.list = append(p.list, field+": "+msg)
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	msg := strings.Join(p.list, "; ")
	if p.extra > 0 {
		msg += fmt.Sprintf("; and %d more", p.extra)
	}
	return fmt.Errorf("%w: %s", connectors.ErrMalformed, msg)
}

func join(base, field string) string {
	if base == "" {
		return field
	}
	return base + "." + field
}

// kindOf names the JSON type of a valid raw value.
func kindOf(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func isNull(raw json.RawMessage) bool {
	return raw == nil || kindOf(raw) == "null"
}

// object decodes raw into a field map. Absent or null gives nil, false
// without a problem; any other non-object is a problem.
func (p *problems) object(path string, raw json.RawMessage) (map[string]json.RawMessage, bool) {
	if isNull(raw) {
		return nil, false
	}
	if k := kindOf(raw); k != "object" {
		p.add(path, "want an object, got "+k)
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil { // cannot fail: raw is a valid object
		p.add(path, err.Error())
		return nil, false
	}
	return m, true
}

// str reads a JSON string (null or absent: "").
func (p *problems) str(path string, raw json.RawMessage) string {
	if isNull(raw) {
		return ""
	}
	if k := kindOf(raw); k != "string" {
		p.add(path, "want a string, got "+k)
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.add(path, err.Error())
	}
	return s
}

// maxIdent bounds an id-like value (ids, stages, SKUs): ids end up in
// workflow ids and search attributes, which Temporal refuses beyond 1,000
// bytes and 2 KiB; refused there, a delivery would get 500 on every retry
// instead of its 400.
const maxIdent = 255

// maxCurrency bounds deal.currency (a search attribute): an ISO 4217 code
// is 3 letters; the mapping checks the code itself.
const maxCurrency = 16

// ident reads an id-like value: a JSON string, or a JSON number kept exactly
// as written, at most maxIdent bytes, of text (p.text; trimmed says the
// caller trims the white space around it, key that the value tells deals,
// customers or events apart).
func (p *problems) ident(path string, raw json.RawMessage, trimmed, key bool) string {
	if isNull(raw) {
		return ""
	}
	var s string
	switch k := kindOf(raw); k {
	case "string":
		s = p.str(path, raw)
	case "number":
		s = string(bytes.TrimSpace(raw))
	default:
		p.add(path, "want a string or a number, got "+k)
		return ""
	}
	if len(s) > maxIdent {
		p.add(path, fmt.Sprintf("is %d bytes long; at most %d", len(s), maxIdent))
	}
	p.text(path, s, trimmed, key)
	return s
}

// text refuses an id-like value s that two different values could share
// or that no one can type: a control character (a line break, a NUL), or
// U+FFFD (what JSON decoding makes of a lone surrogate escape such as
// "\ud800", or a header of bytes that are not UTF-8). An id travels into
// workflow ids, search attributes, the ERP's reference and log lines,
// where such a character is refused (every retry of the delivery failing
// alike) or makes two ids of what looks like one. White space around a
// value that is trimmed (trimmed: event_id, deal.id, the stages) is let
// through, as it always was; around one kept as sent (a company id, an
// owner, a SKU), a line break or tab is refused too.
//
// A key (key: event_id, deal.id, company.id, a SKU: the values by which
// two events, deals, customers or products are told apart) may not hold
// an invisible character either (invisible: a format character such as a
// zero-width space, a byte order mark or a bidi control, or a line or
// paragraph separator), with which "M-50" and "M-50\u200b" would be two
// deals, customers and invoices that look the same everywhere they are
// shown. Stages and owners are words, matched against the configuration
// or only shown, and keep them: a Persian stage or name is written with a
// zero-width non-joiner (U+200C), an emoji sequence with a joiner
// (U+200D). Spaces other than U+0020 (a no-break space, an ideographic
// space) are kept in keys too: they show as spaces, and are typed (French
// and CJK typography).
func (p *problems) text(path, s string, trimmed, key bool) {
	inner := s
	if trimmed {
		inner = strings.TrimSpace(s)
	}
	if i := strings.IndexFunc(inner, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(inner[i:])
		p.add(path, fmt.Sprintf("holds the control character %U: ids, stages and SKUs are printable text", r))
	} else if !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError) {
		p.add(path, "holds U+FFFD, the replacement character, or bytes that are not UTF-8 (what a lone UTF-16 surrogate escape such as \\ud800 decodes to): ids, stages and SKUs are text that two different values cannot share")
	} else if i := strings.IndexFunc(inner, invisible); key && i >= 0 {
		r, _ := utf8.DecodeRuneInString(inner[i:])
		what := "an invisible format character (a zero-width space or joiner, a byte order mark, a bidi control, a soft hyphen)"
		if !unicode.Is(unicode.Cf, r) {
			what = "a line or paragraph separator"
		}
		p.add(path, fmt.Sprintf("holds %U, %s: ids and SKUs are printable text; with it, an id looks like the id without it and would be another deal, customer or invoice", r, what))
	}
}

// invisible says whether r is a character a key may not hold although it
// is no control character: a format character (Unicode's Cf: U+200B zero
// width space, U+200C/U+200D zero width (non-)joiner, U+FEFF byte order
// mark, the bidi controls U+202A–U+202E and U+2066–U+2069, U+00AD soft
// hyphen, …), shown as nothing, or a line or paragraph separator (U+2028,
// U+2029), a line break. The format characters that show (Unicode's
// prepended concatenation marks: U+0600–U+0605 such as the Arabic number
// sign, U+06DD, U+070F, U+0890–U+0891, U+08E2, U+110BD, U+110CD) are
// written in numbers and are no more invisible than a digit.
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) && !unicode.Is(unicode.Prepended_Concatenation_Mark, r)
}

// dec reads an exact decimal from a JSON string or number. Absent, null and
// "" give ok == false without a problem.
func (p *problems) dec(path string, raw json.RawMessage) (d decimal.Decimal, ok bool) {
	if isNull(raw) {
		return decimal.Zero, false
	}
	var text, shown string
	switch k := kindOf(raw); k {
	case "string":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			p.add(path, err.Error())
			return decimal.Zero, false
		}
		text = strings.TrimSpace(s)
		if text == "" {
			return decimal.Zero, false
		}
		shown = connectors.QuoteShort(s)
	case "number":
		text = string(bytes.TrimSpace(raw))
		shown = text
		if len(shown) > 40 {
			shown = shown[:40] + "..."
		}
	default:
		shown = string(bytes.TrimSpace(raw))
		if len(shown) > 40 {
			shown = shown[:40] + "..."
		}
		p.add(path, shown+" is not a decimal")
		return decimal.Zero, false
	}
	d, err := decimal.NewFromString(text)
	if err != nil {
		p.add(path, shown+" is not a decimal")
		return decimal.Zero, false
	}
	if e := d.Exponent(); e > maxExponent || e < -maxExponent || d.NumDigits()+int(e) > maxIntegerDigits {
		p.add(path, shown+" is out of range")
		return decimal.Zero, false
	}
	return d, true
}

// event decodes one event object; problems are recorded in p.
func (p *problems) event(base string, raw json.RawMessage) model.DealEvent {
	var ev model.DealEvent
	m, ok := p.object(base, raw)
	if !ok {
		if isNull(raw) {
			p.add(base, "want an event object, got null")
		}
		return ev
	}
	ev.EventID = strings.TrimSpace(p.ident(join(base, "event_id"), m["event_id"], true, true))
	if s := p.str(join(base, "occurred_at"), m["occurred_at"]); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			p.add(join(base, "occurred_at"), connectors.QuoteShort(s)+" is not an RFC 3339 timestamp")
		} else {
			ev.OccurredAt = t
		}
	}
	dealPath := join(base, "deal")
	if isNull(m["deal"]) {
		p.add(dealPath, "is required")
		return ev
	}
	ev.Deal = p.deal(dealPath, m["deal"])
	return ev
}

func (p *problems) deal(path string, raw json.RawMessage) model.Deal {
	var d model.Deal
	m, ok := p.object(path, raw)
	if !ok {
		return d
	}
	f := func(name string) string { return path + "." + name }

	// Ids and stages are compared and keyed as sent: " D-1" would be
	// another deal's run, "won " no won stage. Spaces around them are a
	// sender's, not part of them.
	d.ID = strings.TrimSpace(p.ident(f("id"), m["id"], true, true))
	if d.ID == "" {
		p.add(f("id"), "is required")
	}
	d.Name = p.str(f("name"), m["name"])
	d.Stage = strings.TrimSpace(p.ident(f("stage"), m["stage"], true, false))
	if d.Stage == "" {
		p.add(f("stage"), "is required")
	}
	d.PreviousStage = strings.TrimSpace(p.ident(f("previous_stage"), m["previous_stage"], true, false))
	if amount, ok := p.dec(f("amount"), m["amount"]); ok {
		d.Amount = decimal.NewNullDecimal(amount)
	}
	d.Currency = p.str(f("currency"), m["currency"])
	if len(d.Currency) > maxCurrency {
		p.add(f("currency"), fmt.Sprintf("%s is not a currency code", connectors.QuoteShort(d.Currency)))
	}
	if s := p.str(f("close_date"), m["close_date"]); s != "" {
		date, err := model.ParseDate(s)
		if err != nil {
			p.add(f("close_date"), err.Error())
		} else {
			d.CloseDate = date
			// A timestamp is the moment the deal closed: a connection's
			// time_zone dates it (model.Deal.CloseDateIn).
			// Exactly midnight UTC is a date sent as a timestamp (what
			// JavaScript's toISOString() makes of one), as HubSpot's are.
			if t, err := time.Parse(time.RFC3339, s); err == nil {
				if _, offset := t.Zone(); offset != 0 || !t.Equal(t.Truncate(24*time.Hour)) {
					d.CloseTime = t
				}
			}
		}
	}
	d.Owner = p.ident(f("owner"), m["owner"], false, false)
	d.Company = p.company(f("company"), m["company"])
	d.LineItems = p.lineItems(f("line_items"), m["line_items"])
	d.Raw = m
	return d
}

func (p *problems) company(path string, raw json.RawMessage) model.Company {
	var c model.Company
	m, ok := p.object(path, raw)
	if !ok {
		return c
	}
	f := func(name string) string { return path + "." + name }
	c.ID = p.ident(f("id"), m["id"], false, true)
	c.Name = p.str(f("name"), m["name"])
	c.Email = p.str(f("email"), m["email"])
	c.TaxID = p.str(f("tax_id"), m["tax_id"])
	if a, ok := p.object(f("address"), m["address"]); ok {
		g := func(name string) string { return f("address") + "." + name }
		c.Address = model.Address{
			Line1:      p.str(g("line1"), a["line1"]),
			Line2:      p.str(g("line2"), a["line2"]),
			City:       p.str(g("city"), a["city"]),
			Region:     p.str(g("region"), a["region"]),
			PostalCode: p.str(g("postal_code"), a["postal_code"]),
			Country:    p.str(g("country"), a["country"]),
		}
	}
	return c
}

func (p *problems) lineItems(path string, raw json.RawMessage) []model.LineItem {
	if isNull(raw) {
		return nil
	}
	if k := kindOf(raw); k != "array" {
		p.add(path, "want an array, got "+k)
		return nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		p.add(path, err.Error())
		return nil
	}
	if len(elems) == 0 {
		return nil
	}
	items := make([]model.LineItem, 0, len(elems))
	for i, e := range elems {
		ip := path + "[" + strconv.Itoa(i) + "]"
		m, ok := p.object(ip, e)
		if !ok {
			if isNull(e) {
				p.add(ip, "want an object, got null")
			}
			continue
		}
		f := func(name string) string { return ip + "." + name }
		var li model.LineItem
		li.SKU = p.ident(f("sku"), m["sku"], false, true)
		li.Description = p.str(f("description"), m["description"])
		li.Quantity, _ = p.dec(f("quantity"), m["quantity"])
		li.UnitPrice, _ = p.dec(f("unit_price"), m["unit_price"])
		li.Discount, _ = p.dec(f("discount"), m["discount"])
		li.DiscountPercent, _ = p.dec(f("discount_percent"), m["discount_percent"])
		if rate, ok := p.dec(f("tax_rate"), m["tax_rate"]); ok {
			li.TaxRate = decimal.NewNullDecimal(rate)
			if rate.IsNegative() {
				p.add(f("tax_rate"), "must not be negative")
			}
		}
		// Parts that cancel out (20 off and -10 %) are not a discount.
		if li.Discount.IsNegative() {
			p.add(f("discount"), "must not be negative")
		}
		if li.DiscountPercent.IsNegative() || li.DiscountPercent.GreaterThan(decimal.NewFromInt(100)) {
			p.add(f("discount_percent"), "must be between 0 and 100")
		}
		items = append(items, li)
	}
	return items
}
