package mapping

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/model"
)

// File is a compiled mapping file: a Mapper whose every expression was
// parsed and type-checked when it was loaded. It is immutable and safe for
// concurrent use.
type File struct {
	name          string
	file          string
	hash          string
	tolerance     decimal.Decimal
	rounding      string         // rounding: how round_to and round_currency round a half (roundHalfUp, roundHalfEven)
	zone          *time.Location // time_zone; nil: CRM dates as read
	defaults      DefaultsEnv
	lookups       map[string]*lookupTable
	trigger       compiled
	customTrigger bool
	header        []compiled
	lines         []compiled
	lineSkip      compiled // lines.skip: leaves an item's line out when true (no prog: none left out)
	amountLine    []compiled
	source        []byte // the file's content, for Snapshot
	warnings      []Problem
}

// Snapshot implements Snapshotter: the file's name, path, hash and content.
func (m *File) Snapshot() *Snapshot {
	return &Snapshot{Name: m.name, Hash: m.hash, Path: m.file, Source: m.source}
}

// Name implements Mapper.
func (m *File) Name() string { return m.name }

// Hash implements Mapper: the content hash of the file.
func (m *File) Hash() string { return m.hash }

// Tolerance implements Mapper: the file's `tolerance`.
func (m *File) Tolerance() decimal.Decimal { return m.tolerance }

// Path is the file the mapping was loaded from.
func (m *File) Path() string { return m.file }

// Map implements Mapper. A failing expression is a *Error naming the
// mapping, the field, the expression and the value.
func (m *File) Map(ev model.DealEvent) (model.Invoice, error) {
	inv, _, err := m.mapEvent(ev)
	return inv, err
}

// SkippedLine is a line item of the deal that lines.skip left out of the
// invoice.
type SkippedLine struct {
	// Index is the item's 0-based index in deal.line_items, as a line's
	// errors name it (lines[2]).
	Index       int    `json:"index"`
	SKU         string `json:"sku,omitempty"`
	Description string `json:"description,omitempty"`
	// Reason says why: the skip expression, true for the item.
	Reason string `json:"reason"`
}

// String is "lines[1] (sku FREE): lines.skip is true (item.quantity == 0)".
func (s SkippedLine) String() string {
	what := ""
	switch {
	case s.SKU != "":
		what = fmt.Sprintf(" (sku %s)", s.SKU)
	case s.Description != "":
		what = fmt.Sprintf(" (%q)", s.Description)
	}
	return fmt.Sprintf("lines[%d]%s: %s", s.Index, what, s.Reason)
}

// SkippedLines lists the line items of ev that m's lines.skip leaves out
// of the invoice, as Apply maps ev (a run does not say; `mapping test`
// shows them). nil when m is no mapping file or has no lines.skip, when
// none is left out, or when the mapping fails (its error says so), but
// for a mapping that fails because lines.skip left out every line item:
// those are listed (the error gives only their count).
func SkippedLines(m Mapper, ev model.DealEvent) []SkippedLine {
	f, ok := m.(*File)
	if !ok || f.lineSkip.prog == nil {
		return nil
	}
	_, skipped, _ := f.mapEvent(asRunReads(ev)) // on an error, skipped is nil but for that one
	return skipped
}

// mapEvent is Map, and the line items lines.skip left out: none on an
// error, but for that of lines.skip leaving out every one.
func (m *File) mapEvent(ev model.DealEvent) (model.Invoice, []SkippedLine, error) {
	var skipped []SkippedLine
	env := &Env{Deal: newDealEnv(ev.Deal, m.zone), Event: newEventEnv(ev, m.zone), Defaults: m.defaults}
	var machine vm.VM
	ie := &env.Invoice
	for i := range m.header {
		c := &m.header[i]
		v, err := m.eval(&machine, c, env, c.spec.key)
		if err != nil {
			return model.Invoice{}, nil, err
		}
		setHeader(ie, c.spec.key, v)
	}
	if ie.Currency == "" {
		ie.Currency = m.defaults.Currency
	}
	inv := model.Invoice{
		Reference:    ie.Reference,
		SourceDealID: ev.Deal.ID,
		Customer: model.Customer{
			ExternalID: ie.Customer.ExternalID, Name: ie.Customer.Name, Email: ie.Customer.Email,
			TaxID: ie.Customer.TaxID, Address: model.Address(ie.Customer.Address),
		},
		IssueDate: ie.IssueDate,
		DueDate:   ie.DueDate,
		Memo:      ie.Memo,
	}
	if ie.Currency != "" {
		cur, err := model.ParseCurrency(ie.Currency)
		if err != nil {
			return model.Invoice{}, nil, &Error{Mapping: m.name, Field: "currency", Expression: oneLine(m.header[fieldIndex(m.header, "currency")].src),
				Value: ie.Currency, Message: err.Error()}
		}
		inv.Currency = cur
	}
	if len(ev.Deal.LineItems) > 0 {
		le := &LineEnv{Env: *env}
		inv.Lines = make([]model.InvoiceLine, 0, len(ev.Deal.LineItems))
		for i := range ev.Deal.LineItems {
			le.Item, le.Index = env.Deal.LineItems[i], i
			section := fmt.Sprintf("lines[%d]", i) // the item's index, skipped items counted
			if m.lineSkip.prog != nil {
				skip, err := m.eval(&machine, &m.lineSkip, le, section+".skip")
				if err != nil {
					return model.Invoice{}, nil, err
				}
				if skip.(bool) {
					li := ev.Deal.LineItems[i]
					skipped = append(skipped, SkippedLine{Index: i, SKU: li.SKU, Description: li.Description,
						Reason: "lines.skip is true (" + oneLine(m.lineSkip.src) + ")"})
					continue
				}
			}
			inv.Lines = append(inv.Lines, model.InvoiceLine{})
			if err := m.mapLine(&machine, m.lines, le, section, &inv.Lines[len(inv.Lines)-1]); err != nil {
				return model.Invoice{}, nil, err
			}
		}
		if len(inv.Lines) == 0 {
			return model.Invoice{}, skipped, &Error{Mapping: m.name, Field: "lines.skip", Expression: oneLine(m.lineSkip.src),
				Message: fmt.Sprintf("leaves out every one of the deal's %d line items: an invoice needs a line (skip fewer, or bill the deal elsewhere)", len(ev.Deal.LineItems))}
		}
	} else if ev.Deal.Amount.Valid {
		inv.Lines = make([]model.InvoiceLine, 1)
		if err := m.mapLine(&machine, m.amountLine, env, "amount_line", &inv.Lines[0]); err != nil {
			return model.Invoice{}, nil, err
		}
	}
	return inv, skipped, nil
}

func fieldIndex(cs []compiled, key string) int {
	for i := range cs {
		if cs[i].spec.key == key {
			return i
		}
	}
	return 0
}

// mapLine evaluates one line's fields; section names it in errors
// ("lines[2]", or "amount_line" for the one line of a deal without items).
func (m *File) mapLine(machine *vm.VM, cs []compiled, env any, section string, l *model.InvoiceLine) error {
	for j := range cs {
		c := &cs[j]
		v, err := m.eval(machine, c, env, section+"."+c.spec.key)
		if err != nil {
			return err
		}
		switch c.spec.key {
		case "item_code":
			l.ItemCode = v.(string)
		case "description":
			l.Description = v.(string)
		case "quantity":
			l.Quantity = v.(decimal.Decimal)
		case "unit_price":
			l.UnitPrice = v.(decimal.Decimal)
		case "discount":
			l.Discount = v.(decimal.Decimal)
		case "account_code":
			l.AccountCode = v.(string)
		case "tax_code":
			l.TaxCode = v.(string)
		case "tax_rate":
			l.TaxRate = v.(decimal.Decimal)
		}
	}
	if l.AccountCode == "" {
		l.AccountCode = m.defaults.AccountCode
	}
	if l.TaxCode == "" {
		l.TaxCode = m.defaults.TaxCode
	}
	return nil
}

func setHeader(ie *InvoiceEnv, key string, v any) {
	switch key {
	case "reference":
		ie.Reference = v.(string)
	case "customer.external_id":
		ie.Customer.ExternalID = v.(string)
	case "customer.name":
		ie.Customer.Name = v.(string)
	case "customer.email":
		ie.Customer.Email = v.(string)
	case "customer.tax_id":
		ie.Customer.TaxID = v.(string)
	case "customer.address.line1":
		ie.Customer.Address.Line1 = v.(string)
	case "customer.address.line2":
		ie.Customer.Address.Line2 = v.(string)
	case "customer.address.city":
		ie.Customer.Address.City = v.(string)
	case "customer.address.region":
		ie.Customer.Address.Region = v.(string)
	case "customer.address.postal_code":
		ie.Customer.Address.PostalCode = v.(string)
	case "customer.address.country":
		ie.Customer.Address.Country = v.(string)
	case "currency":
		ie.Currency = strings.ToUpper(strings.TrimSpace(v.(string)))
	case "issue_date":
		ie.IssueDate = v.(model.Date)
	case "due_date":
		ie.DueDate = v.(model.Date)
	case "memo":
		ie.Memo = v.(string)
	}
}

// zero values of each kind, for unmapped fields.
func (k kind) zero() any {
	switch k {
	case kDecimal:
		return decimal.Zero
	case kDate:
		return model.Date{}
	case kBool:
		return false
	}
	return ""
}

// eval runs one compiled expression and converts its result to the field's
// type; field is the invoice field path used in errors.
func (m *File) eval(machine *vm.VM, c *compiled, env any, field string) (any, error) {
	if c.prog == nil {
		return c.spec.kind.zero(), nil
	}
	out, err := machine.Run(c.prog, env)
	if err != nil {
		me := &Error{Mapping: m.name, Field: field, Expression: oneLine(c.src), Message: m.runtimeMessage(c, err)}
		var miss *lookupMiss
		if errors.As(err, &miss) {
			me.Value = miss.Key
		}
		return nil, me
	}
	v, ok := c.spec.kind.convert(out)
	if !ok && holdsFunc(out) {
		// Not its value, which would print as a memory address.
		return nil, &Error{Mapping: m.name, Field: field, Expression: oneLine(c.src), Message: errFuncResult.Error()}
	}
	if !ok {
		msg := fmt.Sprintf("expression gave %T, but this field needs %s", out, c.spec.kind)
		if f, isFloat := out.(float64); isFloat && c.spec.kind == kDecimal {
			// A float a snapshot's conditional or map literal gave (the
			// load refuses those now), or one computed at run time.
			msg += fmt.Sprintf(": money never goes through floats, write dec(%q) for a number written in the file (a conditional's branch, a map's value), dec(string(x)) for one read with fromJSON", floatText(f))
		}
		return nil, &Error{Mapping: m.name, Field: field, Expression: oneLine(c.src), Value: fmt.Sprint(out), Message: msg}
	}
	return v, nil
}

// runtimeMessage is expr's message for an error of c at run time without
// its source snippet (the expression is reported separately) and without
// expr's position in the expression ("(1:46)", which reads as a position
// in the file): the position in the mapping file instead, "(at
// FILE:LINE:COLUMN)", as a load error gives it, where the file holds c
// (not a built-in expression). Go's type names are a mapping's
// (typeNames: decimal.Decimal is a decimal).
func (m *File) runtimeMessage(c *compiled, err error) string {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return typeNames.Replace(firstLine(err.Error()))
	}
	msg := typeNames.Replace(firstLine(fe.Message))
	var miss *lookupMiss
	if errors.As(err, &miss) {
		msg = miss.Error() // without expr's decoration
	}
	at := fe.From
	if d, ok := c.divisors[fe.From]; ok && (errors.Is(err, errDivZero) || strings.Contains(msg, "integer divide by zero")) {
		// Which divisor was 0, where: the operator's position alone left
		// an expression with several divisions to guess.
		msg = fmt.Sprintf("division by zero: the divisor `%s` is 0 for this deal; guard it, as in x == 0 ? 0 : y / x", d.text)
		at = d.from
	}
	if strings.HasPrefix(msg, "reflect: call of reflect.Value.Index on map Value") {
		// expr's list functions (map, filter, find, all, …) given an
		// object: Go's words for it name no value a mapping has.
		msg = "a list was needed, and the value is an object (a JSON object read with fromJSON, say): map, filter, find and the like take a list; read the object's values by their keys (x[\"key\"])"
	}
	if m := textJoinRE.FindStringSubmatch(msg); m != nil {
		msg += textJoinHint(m[1] + m[2])
	}
	if c.node == nil {
		return msg
	}
	line, col := position(c.src, at)
	line, col = filePosition(strings.Split(string(m.source), "\n"), c.node, c.src, line, col)
	if col > 0 {
		return fmt.Sprintf("%s (at %s:%d:%d)", msg, m.file, line, col)
	}
	return fmt.Sprintf("%s (at %s:%d)", msg, m.file, line)
}

// textJoinRE is expr's message for text joined with + to a value that
// is no text, which the type check lets through where the value's type
// shows only as the run reads it ("PO " + fromJSON(x)["po"] of a number).
var textJoinRE = regexp.MustCompile(`^invalid operation: (?:string \+ (.+)|(.+) \+ string)$`)

// textJoinHint says what to write for text joined with a value of kind
// other (float64, <nil>, bool, int, a map or a list of fromJSON).
func textJoinHint(other string) string {
	switch {
	case other == "float64" || other == "int" || other == "bool":
		return ": the value beside the text is a number or a yes/no here (a value read with fromJSON has the type its JSON gives, known only as the run reads it); join its text, string(x), as in \"PO \" + string(fromJSON(deal.raw[\"cf\"])[\"po\"])"
	case other == "<nil>":
		return ": the value beside the text is nothing here (a key the JSON lacks, a JSON null, what find() or ?. did not find); join string(x), which is \"\" for nothing, or give a fallback with ??"
	case strings.HasPrefix(other, "map[") || strings.HasPrefix(other, "[]"):
		return ": the value beside the text is an object or a list here (read with fromJSON): pick the part to write, as in x[\"value\"]"
	}
	return ""
}

// firstLine is msg's first line, trimmed.
func firstLine(msg string) string {
	if i := strings.Index(msg, "\n"); i >= 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}

// Trigger returns the trigger of this mapping for a connection whose won
// stages are wonStages.
func (m *File) Trigger(wonStages []string) Trigger {
	if !m.customTrigger {
		return StageTrigger{WonStages: wonStages}
	}
	return fileTrigger{m: m, won: wonStages}
}

// TriggerExpression is the trigger's source text.
func (m *File) TriggerExpression() string { return m.trigger.src }

type fileTrigger struct {
	m   *File
	won []string
}

func (t fileTrigger) Evaluate(ev model.DealEvent) (bool, string, error) {
	env := &TriggerEnv{
		Deal: newDealEnv(ev.Deal, t.m.zone), Event: newEventEnv(ev, t.m.zone), WonStages: t.won,
		IsWon: func(s string) bool { return isWon(t.won, s) },
	}
	var machine vm.VM
	v, err := t.m.eval(&machine, &t.m.trigger, env, "trigger")
	if err != nil {
		return false, "", fmt.Errorf("deal %s: %w", ev.Deal.ID, err)
	}
	if !v.(bool) {
		return false, fmt.Sprintf("trigger of mapping %q is false (stage %q, previous stage %q): %s",
			t.m.name, ev.Deal.Stage, ev.Deal.PreviousStage, oneLine(t.m.trigger.src)), nil
	}
	return true, "", nil
}

func isWon(won []string, s string) bool {
	if s == "" {
		return false
	}
	for _, w := range won {
		if strings.EqualFold(w, s) {
			return true
		}
	}
	return false
}
