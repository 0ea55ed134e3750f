package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // time_zone names resolve on hosts without a zone database
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/model"
)

// The types below are what mapping expressions see. Field names are the
// snake_case JSON names of the canonical model; money is decimal.Decimal
// (exact) and dates are model.Date, both only handled through the typed
// operators and functions registered in exprOptions, never as floats.

// DealEnv is `deal` in an expression.
type DealEnv struct {
	ID            string `expr:"id"`
	Name          string `expr:"name"`
	Stage         string `expr:"stage"`
	PreviousStage string `expr:"previous_stage"`
	// Amount is the deal amount (0 when the deal has none: see HasAmount).
	Amount    decimal.Decimal `expr:"amount"`
	HasAmount bool            `expr:"has_amount"`
	Currency  string          `expr:"currency"`
	// CloseDate is the close date in the mapping's time_zone when the CRM
	// recorded the moment (model.Deal.CloseDateIn).
	CloseDate model.Date `expr:"close_date"`
	// CloseTime is that moment (unset when the CRM records a date only),
	// for date_in.
	CloseTime Moment        `expr:"close_time"`
	Company   CompanyEnv    `expr:"company"`
	LineItems []LineItemEnv `expr:"line_items"`
	Owner     string        `expr:"owner"`
	// Raw holds the source's own fields: a JSON string as its text, any
	// other JSON value as its JSON text; a missing key gives "".
	Raw map[string]string `expr:"raw"`
}

// CompanyEnv is `deal.company`.
type CompanyEnv struct {
	ID      string     `expr:"id"`
	Name    string     `expr:"name"`
	Email   string     `expr:"email"`
	TaxID   string     `expr:"tax_id"`
	Address AddressEnv `expr:"address"`
}

// AddressEnv is `deal.company.address` and `invoice.customer.address`.
type AddressEnv struct {
	Line1      string `expr:"line1"`
	Line2      string `expr:"line2"`
	City       string `expr:"city"`
	Region     string `expr:"region"`
	PostalCode string `expr:"postal_code"`
	Country    string `expr:"country"`
}

// LineItemEnv is one element of `deal.line_items`, and `item` in the
// expressions of `invoice.lines`.
type LineItemEnv struct {
	SKU             string          `expr:"sku"`
	Description     string          `expr:"description"`
	Quantity        decimal.Decimal `expr:"quantity"`
	UnitPrice       decimal.Decimal `expr:"unit_price"`
	Discount        decimal.Decimal `expr:"discount"`
	DiscountPercent decimal.Decimal `expr:"discount_percent"`
	TaxRate         decimal.Decimal `expr:"tax_rate"`     // the CRM's rate in percent; 0 when it states none (see HasTaxRate)
	HasTaxRate      bool            `expr:"has_tax_rate"` // the CRM states the line's tax rate
}

// EventEnv is `event`.
type EventEnv struct {
	ID         string     `expr:"id"`
	Account    string     `expr:"account"`
	OccurredOn model.Date `expr:"occurred_on"` // date of occurred_at in the mapping's time_zone (UTC)
	OccurredAt Moment     `expr:"occurred_at"` // the event's moment, for date_in
}

// DefaultsEnv is `defaults`: the mapping file's defaults section.
type DefaultsEnv struct {
	Currency         string          `expr:"currency"`
	PaymentTermsDays int             `expr:"payment_terms_days"`
	AccountCode      string          `expr:"account_code"`
	TaxCode          string          `expr:"tax_code"`
	TaxRate          decimal.Decimal `expr:"tax_rate"`
	ItemCode         string          `expr:"item_code"`
}

// InvoiceEnv is `invoice`: the header fields mapped so far. They are
// evaluated in this order: reference, customer, currency, issue_date,
// due_date, memo, then the lines; an expression sees the fields before it.
type InvoiceEnv struct {
	Reference string      `expr:"reference"`
	Customer  CustomerEnv `expr:"customer"`
	Currency  string      `expr:"currency"`
	IssueDate model.Date  `expr:"issue_date"`
	DueDate   model.Date  `expr:"due_date"`
	Memo      string      `expr:"memo"`
}

// CustomerEnv is `invoice.customer`.
type CustomerEnv struct {
	ExternalID string     `expr:"external_id"`
	Name       string     `expr:"name"`
	Email      string     `expr:"email"`
	TaxID      string     `expr:"tax_id"`
	Address    AddressEnv `expr:"address"`
}

// Env is the environment of the invoice header expressions.
type Env struct {
	Deal     DealEnv     `expr:"deal"`
	Event    EventEnv    `expr:"event"`
	Defaults DefaultsEnv `expr:"defaults"`
	Invoice  InvoiceEnv  `expr:"invoice"`
}

// LineEnv is the environment of the `invoice.lines` expressions: Env plus
// the deal line item being mapped and its 0-based index.
type LineEnv struct {
	Env
	Item  LineItemEnv `expr:"item"`
	Index int         `expr:"index"`
}

// TriggerEnv is the environment of the trigger expression.
type TriggerEnv struct {
	Deal  DealEnv  `expr:"deal"`
	Event EventEnv `expr:"event"`
	// WonStages are the connection's won stages, as configured.
	WonStages []string `expr:"won_stages"`
	// IsWon reports whether a stage is one of WonStages (ignoring case).
	IsWon func(stage string) bool `expr:"is_won"`
}

// newDealEnv is `deal` for a mapping whose time_zone is zone (nil: none).
func newDealEnv(d model.Deal, zone *time.Location) DealEnv {
	e := DealEnv{
		ID: d.ID, Name: d.Name, Stage: d.Stage, PreviousStage: d.PreviousStage,
		Amount: d.Amount.Decimal, HasAmount: d.Amount.Valid, Currency: d.Currency,
		CloseDate: d.CloseDateIn(zone), CloseTime: momentOf(d.CloseTime, zone), Owner: d.Owner,
		Company: CompanyEnv{
			ID: d.Company.ID, Name: d.Company.Name, Email: d.Company.Email, TaxID: d.Company.TaxID,
			Address: addressEnv(d.Company.Address),
		},
	}
	if !d.Amount.Valid {
		e.Amount = decimal.Zero
	}
	if len(d.LineItems) > 0 {
		e.LineItems = make([]LineItemEnv, len(d.LineItems))
		for i, li := range d.LineItems {
			e.LineItems[i] = lineItemEnv(li)
		}
	}
	if len(d.Raw) > 0 {
		e.Raw = make(map[string]string, len(d.Raw))
		for k, v := range d.Raw {
			e.Raw[k] = rawText(v)
		}
	}
	return e
}

func lineItemEnv(li model.LineItem) LineItemEnv {
	return LineItemEnv{
		SKU: li.SKU, Description: li.Description, Quantity: li.Quantity, UnitPrice: li.UnitPrice,
		Discount: li.Discount, DiscountPercent: li.DiscountPercent,
		TaxRate: li.TaxRate.Decimal, HasTaxRate: li.TaxRate.Valid,
	}
}

func addressEnv(a model.Address) AddressEnv {
	return AddressEnv(a)
}

// rawText is a raw field as expressions see it: a JSON string's text, ""
// for null, and any other value as compact JSON without HTML escapes. A
// run's deal has been through Temporal's JSON payloads, which compact an
// object or array and write & < > as \u0026 \u003c \u003e; a dry run's
// has the bytes the CRM sent (or a saved file's, indented). Both read the
// same text so: a mapping behaves in the run as in its dry run.
func rawText(v json.RawMessage) string {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s
	}
	t := strings.TrimSpace(string(v))
	if t == "null" {
		return ""
	}
	var b bytes.Buffer
	if json.Compact(&b, []byte(t)) != nil {
		return t
	}
	return unescapeHTML(b.Bytes())
}

// unescapeHTML writes back the characters json.Marshal escapes for HTML
// (& < > U+2028 U+2029) in compact JSON, leaving every other escape.
func unescapeHTML(src []byte) string {
	if !bytes.Contains(src, []byte(`\u`)) {
		return string(src)
	}
	out := make([]byte, 0, len(src))
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != '\\' || i+1 >= len(src) {
			out = append(out, c)
			continue
		}
		if src[i+1] == 'u' && i+6 <= len(src) {
			var r rune
			switch strings.ToLower(string(src[i+2 : i+6])) {
			case "0026":
				r = '&'
			case "003c":
				r = '<'
			case "003e":
				r = '>'
			case "2028":
				r = '\u2028'
			case "2029":
				r = '\u2029'
			}
			if r != 0 {
				out = utf8.AppendRune(out, r)
				i += 5
				continue
			}
		}
		out = append(out, c, src[i+1]) // another escape, kept as it is
		i++
	}
	return string(out)
}

// newEventEnv is `event` for a mapping whose time_zone is zone (nil: UTC).
func newEventEnv(ev model.DealEvent, zone *time.Location) EventEnv {
	e := EventEnv{ID: ev.EventID, Account: ev.Account, OccurredAt: momentOf(ev.OccurredAt, zone)}
	if !ev.OccurredAt.IsZero() {
		e.OccurredOn = model.DateIn(ev.OccurredAt, zone)
	}
	return e
}

// Moment is a point in time as expressions see it: something to date in a
// zone with date_in, to test with is_set, or to print with string(), and
// nothing else (a host's local zone or clock never enters a mapping).
type Moment struct {
	t time.Time
	// zone is the mapping's time_zone (nil: none), the same in every
	// moment of an evaluation: what date() dates a timestamp in
	// (zonedDates). It is never printed (String), and two moments of a
	// mapping compare by their instants alone.
	zone *time.Location
}

// String is the moment in RFC 3339 in UTC ("2026-11-30T23:30:00Z", with
// fractional seconds only when the source gave them), "" when it is unset:
// what string(deal.close_time) gives, the same on every host.
func (m Moment) String() string {
	if m.t.IsZero() {
		return ""
	}
	return m.t.UTC().Format(time.RFC3339Nano)
}

// momentOf is t as a Moment of a mapping whose time_zone is zone (nil:
// none): in UTC, without a monotonic reading, so that what an expression
// can see of it (printed, compared) is the instant alone, never the
// offset it was sent with or the host's zone. An unset moment carries the
// zone too.
func momentOf(t time.Time, zone *time.Location) Moment {
	if t.IsZero() {
		return Moment{zone: zone}
	}
	return Moment{t: t.UTC().Round(0), zone: zone}
}

// dateText is what date() read in a file taken into use now (strict): the
// date, and the moment when the text was an RFC 3339 timestamp (but
// exactly midnight UTC: a date), for _date_zoned to date in the mapping's
// time_zone. Expressions never see
// it: zonedDates makes every date(x) _date_zoned(date(x), …), a date.
type dateText struct {
	d model.Date
	t time.Time // zero for a date without a time
}

// zonedDates dates the timestamps date() reads in the mapping's
// time_zone, as deal.close_date is dated: date(x) becomes
// _date_zoned(date(x), $env.event.occurred_at), the moment standing for
// the mapping's zone, which every moment of an evaluation carries
// (momentOf); the call date(x) stays as written, so that the load checks
// of its argument see it. Only in a file taken into use now: a run's
// snapshot (strict false) keeps date() as it was when the run started,
// the timestamp's date in its own offset.
type zonedDates struct{}

func (zonedDates) Visit(node *ast.Node) {
	c, ok := (*node).(*ast.CallNode)
	if !ok || !isCallOf(c, "date") || len(c.Arguments) != 1 {
		return
	}
	loc := c.Location()
	env := &ast.IdentifierNode{Value: "$env"}
	event := &ast.MemberNode{Node: env, Property: &ast.StringNode{Value: "event"}}
	at := &ast.MemberNode{Node: event, Property: &ast.StringNode{Value: "occurred_at"}}
	wrap := &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_date_zoned"}, Arguments: []ast.Node{c, at}}
	for _, n := range []ast.Node{env, event, event.Property, at, at.Property, wrap.Callee} {
		n.SetLocation(loc)
	}
	ast.Patch(node, wrap)
}

// dateOptions are date() and, for a file taken into use now (strict),
// zonedDates with _date_zoned (see zonedDates).
func dateOptions(strict bool) []expr.Option {
	if !strict {
		return []expr.Option{function("date", func(p ...any) (any, error) {
			return model.ParseDate(p[0].(string))
		}, new(func(string) model.Date))}
	}
	return []expr.Option{
		expr.Patch(zonedDates{}),
		function("date", func(p ...any) (any, error) {
			s := p[0].(string)
			d, err := model.ParseDate(s)
			if err != nil {
				return nil, err
			}
			v := dateText{d: d}
			// Exactly midnight UTC is a date sent as a timestamp (what
			// JavaScript's toISOString() makes of one, HubSpot's date
			// properties), as the sources read close_date.
			if t, err := time.Parse(time.RFC3339, s); err == nil {
				if _, offset := t.Zone(); offset != 0 || !t.Equal(t.Truncate(24*time.Hour)) {
					v.t = t
				}
			}
			return v, nil
		}, new(func(string) dateText)),
		function("_date_zoned", func(p ...any) (any, error) {
			v, m := p[0].(dateText), p[1].(Moment)
			if v.t.IsZero() || m.zone == nil {
				return v.d, nil // a date, or no time_zone: the timestamp's own date
			}
			return model.DateIn(v.t, m.zone), nil
		}, new(func(dateText, Moment) model.Date)),
	}
}

// zoneNameRE is the shape of IANA zone names: "UTC", "Europe/Paris",
// "America/Argentina/Buenos_Aires", "Etc/GMT+5", "EST5EDT".
var zoneNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$`)

// zones caches the locations date_in has loaded, by name.
var zones sync.Map // name → *time.Location

// zoneNamed is loadZone, cached.
func zoneNamed(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := loadZone(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

// loadZone reads a mapping's time_zone: an IANA name such as
// "Europe/Paris" or "UTC". The zone database is compiled into dealsync
// (time/tzdata), so a name works on hosts without one, too.
func loadZone(name string) (*time.Location, error) {
	if name == "Local" || name == "localtime" {
		return nil, fmt.Errorf("%q depends on the host's clock; name the zone, such as Europe/Paris", name)
	}
	// Only IANA names: not "" (which LoadLocation takes for UTC), not the
	// files some hosts' zone databases add (Factory, posixrules, posix/…,
	// right/…), not a path with "." or "//" in it.
	notZone := fmt.Errorf("%q is not an IANA time zone name (such as Europe/Paris, America/New_York or UTC)", name)
	if !zoneNameRE.MatchString(name) || name == "Factory" || name == "posixrules" ||
		strings.HasPrefix(name, "posix/") || strings.HasPrefix(name, "right/") {
		return nil, notZone
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		if fix, ok := zoneCase(name); ok {
			return nil, fmt.Errorf("%q is not an IANA time zone name: did you mean %s? (the names are case-sensitive)", name, fix)
		}
		return nil, notZone
	}
	return loc, nil
}

// zoneCase is the IANA name that name is written in another case of
// ("europe/paris": Europe/Paris, "utc": UTC), when there is one.
func zoneCase(name string) (string, bool) {
	for _, c := range []string{strings.ToUpper(name), titleZone(name)} {
		if c == name || !zoneNameRE.MatchString(c) {
			continue
		}
		if _, err := time.LoadLocation(c); err == nil {
			return c, true
		}
	}
	return "", false
}

// titleZone is name with each word (after "/", "_" or "-") capitalised
// and the rest in lower case, as most IANA names are (America/New_York).
func titleZone(name string) string {
	b := []byte(strings.ToLower(name))
	for i := range b {
		if i == 0 || b[i-1] == '/' || b[i-1] == '_' || b[i-1] == '-' {
			if b[i] >= 'a' && b[i] <= 'z' {
				b[i] -= 'a' - 'A'
			}
		}
	}
	return string(b)
}

// lookupMiss is the runtime error of a lookup with no entry and a declared
// error.
type lookupMiss struct {
	Table, Key string
}

func (e *lookupMiss) Error() string {
	return fmt.Sprintf("lookup table %q has no entry for %q (the table declares missing keys an error)", e.Table, e.Key)
}

// Types of the typed functions, shared by every compile.
var (
	decT  = decimal.Decimal{}
	dateT = model.Date{}
)

func asDec(v any) decimal.Decimal {
	switch x := v.(type) {
	case decimal.Decimal:
		return x
	case int:
		return decimal.NewFromInt(int64(x))
	}
	panic(fmt.Sprintf(notDecimal+"%T", v)) // a type shown only as it runs: see function
}

// asDecArg is asDec for a function's argument (percent, round_to,
// round_currency, min_dec, max_dec). A number read with fromJSON (a
// float, a CRM's custom field) reaches it as a decimal: the arguments of
// a type known only as the expression runs go through _json_dec_arg
// (jsonDecArgs), which takes it as the number its text says. Any other
// float (a literal in a conditional's branch, a quotient) is refused, as
// a float argument known at load is.
func asDecArg(v any) decimal.Decimal { return asDec(v) }

// jsonDecArg is the function that converts a jsonDecArgs argument.
const jsonDecArg = "_json_dec_arg"

// jsonDecArgs has each argument of percent, round_to, round_currency,
// min_dec and max_dec that takes a decimal and is of a type known only
// as the expression runs go through _json_dec_arg, which gives a float
// (what fromJSON reads) as the number its text says, and anything else
// as it is: they failed every run that read one with "cannot take a
// decimal and a float64". A conditional's branches are taken each on its
// own, so a branch known at load to be a float (10 / 4) is refused as it
// runs; a float written in the file is a load error
// (checkFloatArgLiterals). The call is of unknown type, as its argument
// was.
type jsonDecArgs struct{}

func (jsonDecArgs) Visit(node *ast.Node) {
	c, ok := (*node).(*ast.CallNode)
	if !ok {
		return
	}
	id, ok := c.Callee.(*ast.IdentifierNode)
	if !ok {
		return
	}
	for _, i := range decimalArgs[id.Value] {
		if i < len(c.Arguments) {
			c.Arguments[i] = wrapJSONDecArg(c.Arguments[i], 0)
		}
	}
}

// wrapJSONDecArg is n through _json_dec_arg where n is of unknown type;
// a conditional's branches each.
func wrapJSONDecArg(n ast.Node, depth int) ast.Node {
	if !unknownType(n.Nature()) || isCallOf(n, jsonDecArg) || depth > maxNeverDecimalDepth {
		return n
	}
	if c, ok := n.(*ast.ConditionalNode); ok {
		c.Exp1 = wrapJSONDecArg(c.Exp1, depth+1)
		c.Exp2 = wrapJSONDecArg(c.Exp2, depth+1)
		return c
	}
	call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: jsonDecArg}, Arguments: []ast.Node{n}}
	call.SetLocation(n.Location())
	return call
}

// decArgOp is decOp with asDecArg.
func decArgOp(f func(a, b decimal.Decimal) any) func(params ...any) (any, error) {
	return func(p ...any) (any, error) { return f(asDecArg(p[0]), asDecArg(p[1])), nil }
}

// wholeArg is a function's whole-number argument (add_days' days,
// round_to's places): a whole number, or a number read with fromJSON that
// is one (a Pipedrive payment-terms field, 30); what is no whole number
// is an error saying so. Anything else panics as p[i].(int) did, for
// function to name.
func wholeArg(fn, what string, v any) (int, error) {
	f, ok := v.(float64)
	if !ok {
		return v.(int), nil
	}
	if f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) >= 1<<53 {
		return 0, fmt.Errorf("%s: %s is not a whole number of %s (a number read with fromJSON): round it first, e.g. int(x) truncates", fn, floatText(f), what)
	}
	return int(f), nil
}

// function is expr.Function with the call checked: arguments of other
// types than f takes, which the type check lets through when a type shows
// only as the expression runs (a conditional of a whole number and a
// decimal), are an error naming the function and what it got, instead of
// Go's "interface conversion" message.
func function(name string, f func(p ...any) (any, error), types ...any) expr.Option {
	return expr.Function(name, func(p ...any) (v any, err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			_, assertion := r.(*runtime.TypeAssertionError)
			if msg, ok := r.(string); !assertion && !(ok && strings.HasPrefix(msg, notDecimal)) {
				panic(r)
			}
			shown := name
			if op, ok := operatorOf[name]; ok {
				shown = "the operator " + op
			}
			kinds := make([]string, len(p))
			why := "a value whose type depends on the deal, e.g. a conditional of a whole number and a decimal: make both branches one type, e.g. with dec()"
			for i, a := range p {
				kinds[i] = kindName(a)
				if _, text := a.(string); text {
					// A JSON string read with fromJSON ("12.5"), which
					// the type check lets through: no conditional.
					why = "a text where a number is needed, e.g. a JSON string read with fromJSON: convert it, with dec(x) for a decimal or int(x) for a whole number"
				}
			}
			v, err = nil, fmt.Errorf("%s cannot take %s (%s)", shown, strings.Join(kinds, " and "), why)
		}()
		return f(p...)
	}, types...)
}

// operatorOf names the operators behind the decimal functions.
var operatorOf = map[string]string{"_dec_neg": "-", "_dec_add": "+", "_dec_sub": "-", "_dec_mul": "*", "_dec_div": "/",
	"_dec_pow": "**", "_dec_caret": "^",
	"_dec_eq": "==", "_dec_ne": "!=", "_dec_lt": "<", "_dec_le": "<=", "_dec_gt": ">", "_dec_ge": ">="}

// kindName says what a value is, in a mapping's words.
func kindName(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case decimal.Decimal:
		return "a decimal"
	case int:
		return "a whole number"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case model.Date:
		return "a date"
	case Moment:
		return "a time"
	}
	return fmt.Sprintf("a %T", v)
}

const notDecimal = "not a decimal: "

func decOp(f func(a, b decimal.Decimal) any) func(params ...any) (any, error) {
	return func(p ...any) (any, error) { return f(asDec(p[0]), asDec(p[1])), nil }
}

var decOverloads = []any{
	new(func(decimal.Decimal, decimal.Decimal) decimal.Decimal),
	new(func(decimal.Decimal, int) decimal.Decimal),
	new(func(int, decimal.Decimal) decimal.Decimal),
}

var decCmpOverloads = []any{
	new(func(decimal.Decimal, decimal.Decimal) bool),
	new(func(decimal.Decimal, int) bool),
	new(func(int, decimal.Decimal) bool),
}

var errDivZero = errors.New("division by zero")

// decimalSign gives unary minus (and plus) on a decimal to dealsync, as
// expr.Operator gives it the binary operators: expr's own refuses a
// decimal operand (`x + -item.discount`: "mismatched type decimal"). It
// runs with the operator patches, repeatedly, so an operand they turn
// into a decimal (`-(a * b)`) is seen as one; an operand whose type shows
// only as the expression runs stays expr's, as a binary operator's does.
type decimalSign struct{ applied bool }

func (p *decimalSign) Visit(node *ast.Node) {
	u, ok := (*node).(*ast.UnaryNode)
	if !ok || u.Node.Type() != decimalType {
		return
	}
	switch u.Operator {
	case "-":
		call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_dec_neg"}, Arguments: []ast.Node{u.Node}}
		call.SetType(decimalType)
		ast.Patch(node, call)
	case "+":
		ast.Patch(node, u.Node)
	default:
		return
	}
	p.applied = true
}

// Reset and ShouldRepeat make expr run decimalSign with the operator
// patches, until none of them changes the tree.
func (p *decimalSign) Reset()             { p.applied = false }
func (p *decimalSign) ShouldRepeat() bool { return p.applied }

// decimalPower is op (** or ^) of a decimal and a whole number, computed
// exactly: repeated multiplication, as (1 + rate) ** years is written out
// by hand. expr's own computes it with floats (1.1 ** 3 would be
// 1.3310000000000004), and refused a decimal operand at load; a decimal
// or fractional exponent is still refused there (powerHint). The exponent
// is from 0 to maxPowerExponent: a negative one divides, which is not
// exact (dec(1) / x ** n says so), and a large one makes a number of as
// many digits as the run can hold.
func decimalPower(op string) func(p ...any) (any, error) {
	return func(p ...any) (any, error) {
		x := asDec(p[0])
		n, err := wholeArg("the operator "+op, "times", p[1])
		if err != nil {
			return nil, err
		}
		if n < 0 || n > maxPowerExponent {
			return nil, powerExponentError(op, n, "")
		}
		if d := powerDigits(x, n); d > maxPowerDigits {
			return nil, fmt.Errorf("the operator %s: %s to the power %d would have about %d digits, more than the %d a power may have; round the base first (round_to)", op, abbreviated(x), n, d, maxPowerDigits)
		}
		return decimalPow(x, n), nil
	}
}

// powerExponentError is the error of an exponent of a decimal outside 0
// to maxPowerExponent, at load (a literal) or as the run computes it.
// base is the base's text as the file writes it (powerBase), for the
// advice on a negative exponent to write in; "" (as the run computes it):
// x, said to be the base.
func powerExponentError(op string, n int, base string) error {
	if n < 0 {
		x, what := base, ""
		if base == "" {
			x, what = "x", ", x being the base,"
		}
		inverse := "dec(1) / " + x
		if n != -1 {
			inverse += fmt.Sprintf(" %s %d", op, -n)
		}
		return fmt.Errorf("the operator %s: a decimal to the power %d divides, which is not exact; write %s%s and round it (round_to, round_currency)", op, n, inverse, what)
	}
	return fmt.Errorf("the operator %s: a decimal to the power %d; give an exponent from 0 to %d", op, n, maxPowerExponent)
}

// powerDigits is at most about how many digits x ** n has, written out:
// n times x's (its coefficient's digits and a positive exponent's zeros,
// or the places after the point when they are more). A power of a power
// (((x ** 100) ** 100) ** 100) would otherwise build a number of millions
// of digits, taking the worker's CPU and memory past any step timeout.
func powerDigits(x decimal.Decimal, n int) int {
	if x.IsZero() || n == 0 {
		return 1
	}
	d, e := x.NumDigits(), int(x.Exponent())
	switch {
	case e > 0:
		d += e
	case -e > d:
		d = -e
	}
	return d * n
}

// abbreviated is x as a message shows it: whole when short, else its
// first digits and how many there are.
func abbreviated(x decimal.Decimal) string {
	s := x.String()
	if len(s) <= 24 {
		return s
	}
	return fmt.Sprintf("%s… (%d characters)", s[:16], len(s))
}

// decimalPow is x to the power n (0 ≤ n), exactly, by squaring.
func decimalPow(x decimal.Decimal, n int) decimal.Decimal {
	r := decimal.NewFromInt(1)
	for ; n > 0; n >>= 1 {
		if n&1 == 1 {
			r = r.Mul(x)
		}
		if n > 1 {
			x = x.Mul(x)
		}
	}
	return r
}

// The ways round_to and round_currency round a half: the mapping's
// `rounding`, or their last argument.
const (
	// roundHalfUp rounds a half away from zero (2.345 → 2.35, -2.5 →
	// -3): commercial rounding, what the CRMs and ERPs do, the default.
	roundHalfUp = "half_up"
	// roundHalfEven rounds a half to the even digit (2.345 → 2.34, 2.355
	// → 2.36, -2.5 → -2): banker's rounding, IEEE 754's, which some
	// accounting rules ask for.
	roundHalfEven = "half_even"
)

// roundingModes words the modes, for the messages that list them.
const roundingModes = `half_up (half away from zero: 2.345 → 2.35, -2.5 → -3; the default) or half_even (banker's rounding, to the even digit: 2.345 → 2.34, -2.5 → -2)`

// roundingMode checks a rounding mode written in the file or given to
// round_to or round_currency.
func roundingMode(s string) error {
	if s != roundHalfUp && s != roundHalfEven {
		return fmt.Errorf("%q is no rounding; give %s", s, roundingModes)
	}
	return nil
}

// roundHalf is d rounded to places in mode.
func roundHalf(d decimal.Decimal, places int32, mode string) decimal.Decimal {
	if mode == roundHalfEven {
		return d.RoundBank(places)
	}
	return d.Round(places)
}

// roundingOptions are round_to and round_currency, which round a half as
// the mapping's `rounding` says (mode), or as their last argument does.
func roundingOptions(mode string) []expr.Option {
	modeOf := func(fn string, p []any) (string, error) {
		if len(p) < 3 {
			return mode, nil
		}
		m, ok := p[2].(string)
		if !ok {
			// nil (a field the deal lacks, fromJSON's null) or a
			// number: not "" is no rounding, which reads as a typo.
			what := "nothing (nil)"
			if p[2] != nil {
				what = fmt.Sprintf("a %T, %v", p[2], p[2])
			}
			return "", fmt.Errorf("%s: the rounding mode is %s, not a text; give %s, or leave the argument out for the mapping's rounding", fn, what, roundingModes)
		}
		if err := roundingMode(m); err != nil {
			return "", fmt.Errorf("%s: %w", fn, err)
		}
		return m, nil
	}
	return []expr.Option{
		// round_to(x, places[, mode]): half away from zero, or as mode
		// or the mapping's rounding says.
		function("round_to", func(p ...any) (any, error) {
			places, err := wholeArg("round_to", "places", p[1])
			if err != nil {
				return nil, err
			}
			if places < -maxRoundPlaces || places > maxRoundPlaces {
				// Rounding to a million places makes a number of a
				// million digits: the run would hang, not fail.
				return nil, fmt.Errorf("round_to: %d places; give from %d to %d (a currency's minor units: round_currency)", places, -maxRoundPlaces, maxRoundPlaces)
			}
			m, err := modeOf("round_to", p)
			if err != nil {
				return nil, err
			}
			return roundHalf(asDecArg(p[0]), int32(places), m), nil
		}, new(func(decimal.Decimal, int) decimal.Decimal), new(func(decimal.Decimal, int, string) decimal.Decimal)),
		// round_currency(x, "JPY"[, mode]): to the currency's minor units.
		function("round_currency", func(p ...any) (any, error) {
			cur, err := model.ParseCurrency(p[1].(string))
			if err != nil {
				return nil, err
			}
			m, err := modeOf("round_currency", p)
			if err != nil {
				return nil, err
			}
			return roundHalf(asDecArg(p[0]), cur.MinorUnits(), m), nil
		}, new(func(decimal.Decimal, string) decimal.Decimal), new(func(decimal.Decimal, string, string) decimal.Decimal)),
	}
}

// maxRoundPlaces bounds round_to's places, and maxAddDays add_days' days
// (about 270 years): beyond them a mapping is wrong, and a deal's data
// that reached them would hang the run or write a date of another era.
const (
	maxPowerExponent = 100
	// maxPowerDigits bounds the digits of a power's result (powerDigits):
	// 1.0000001 ** 100 has 701 (counted 800); money never needs more.
	maxPowerDigits = 1000
	maxRoundPlaces = 30
	maxAddDays     = 100000
)

// exponentRE is a number's text with an exponent ("1e100000").
var exponentRE = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$`)

// parseDec is s as dec() reads it: a number, whose exponent (if any) a
// decimal takes; a number whose exponent is past that is said to be out
// of range (it was "not a decimal number").
func parseDec(s string) (decimal.Decimal, error) {
	t := strings.TrimSpace(s)
	d, err := decimal.NewFromString(t)
	switch {
	case err == nil:
		return d, nil
	case exponentRE.MatchString(t):
		return d, fmt.Errorf("%q is out of range: a decimal's exponent goes from -%d to %d (an amount needs far less: check where the number comes from)", s, decimal.MaxDecodeExponent, decimal.MaxDecodeExponent)
	}
	return d, fmt.Errorf("%q is not a decimal number", s)
}

// floatText is a float's decimal text, never in exponent form: expr's
// string() writes 4500012345 as "4.500012345e+09".
func floatText(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// jsonText is the text of a value read from JSON (fromJSON) where a
// mapping wants text: a number in decimal notation (never "4.5e+09"), a
// boolean as true/false. An object or a list is an error of fn naming it.
func jsonText(fn string, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case float64:
		return floatText(x), nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case decimal.Decimal:
		return x.String(), nil
	}
	shown, err := json.Marshal(v)
	if err != nil || len(shown) > 80 {
		shown = []byte(fmt.Sprintf("a %T", v))
	}
	return "", fmt.Errorf("%s() was given %s, which is not text, a number or a date: pick the part to write (a Pipedrive money or address field is an object: its [\"value\"])", fn, shown)
}

// errCoalesceNoArguments is the error of coalesce() without arguments.
var errCoalesceNoArguments = errors.New("coalesce needs at least one value, as in coalesce(deal.currency, defaults.currency)")

// baseOptions are the functions and operators every expression can use;
// strict is the parser's: a run's snapshot (false) keeps mapping as it did
// when the run started (collectionOptions, aggregateOptions).
func baseOptions(strict bool) []expr.Option {
	_ = decT
	_ = dateT
	// date() first: its patch must run before those that read types.
	opts := dateOptions(strict)
	opts = append(opts, []expr.Option{
		// Exact decimal arithmetic and comparison.
		function("_dec_neg", func(p ...any) (any, error) { return asDec(p[0]).Neg(), nil }, new(func(decimal.Decimal) decimal.Decimal)),
		expr.Patch(&decimalSign{}),
		function("_dec_add", decOp(func(a, b decimal.Decimal) any { return a.Add(b) }), decOverloads...),
		function("_dec_sub", decOp(func(a, b decimal.Decimal) any { return a.Sub(b) }), decOverloads...),
		function("_dec_mul", decOp(func(a, b decimal.Decimal) any { return a.Mul(b) }), decOverloads...),
		function("_dec_div", func(p ...any) (any, error) {
			b := asDec(p[1])
			if b.IsZero() {
				return nil, errDivZero
			}
			return asDec(p[0]).Div(b), nil
		}, decOverloads...),
		function("_dec_pow", decimalPower("**"), new(func(decimal.Decimal, int) decimal.Decimal)),
		function("_dec_caret", decimalPower("^"), new(func(decimal.Decimal, int) decimal.Decimal)),
		function("_dec_eq", decOp(func(a, b decimal.Decimal) any { return a.Equal(b) }), decCmpOverloads...),
		function("_dec_ne", decOp(func(a, b decimal.Decimal) any { return !a.Equal(b) }), decCmpOverloads...),
		function("_dec_lt", decOp(func(a, b decimal.Decimal) any { return a.LessThan(b) }), decCmpOverloads...),
		function("_dec_le", decOp(func(a, b decimal.Decimal) any { return a.LessThanOrEqual(b) }), decCmpOverloads...),
		function("_dec_gt", decOp(func(a, b decimal.Decimal) any { return a.GreaterThan(b) }), decCmpOverloads...),
		function("_dec_ge", decOp(func(a, b decimal.Decimal) any { return a.GreaterThanOrEqual(b) }), decCmpOverloads...),
		expr.Operator("+", "_dec_add"),
		expr.Operator("-", "_dec_sub"),
		expr.Operator("*", "_dec_mul"),
		expr.Operator("/", "_dec_div"),
		expr.Operator("**", "_dec_pow"),
		expr.Operator("^", "_dec_caret"),
		expr.Operator("==", "_dec_eq"),
		expr.Operator("!=", "_dec_ne"),
		expr.Operator("<", "_dec_lt"),
		expr.Operator("<=", "_dec_le"),
		expr.Operator(">", "_dec_gt"),
		expr.Operator(">=", "_dec_ge"),

		// dec("12.50") / dec(3): an exact decimal.
		function("dec", func(p ...any) (any, error) {
			switch x := p[0].(type) {
			case int:
				return decimal.NewFromInt(int64(x)), nil
			case decimal.Decimal:
				return x, nil
			case string:
				d, err := parseDec(x)
				if err != nil {
					return nil, fmt.Errorf("dec: %w", err)
				}
				return d, nil
			}
			if f, ok := p[0].(float64); ok {
				// A number of fromJSON: its text is exact (string()).
				return nil, fmt.Errorf("dec: %s is a number of JSON, which dec takes as text: write dec(string(x))", floatText(f))
			}
			return nil, fmt.Errorf("dec: unexpected %T", p[0])
		}, new(func(string) decimal.Decimal), new(func(int) decimal.Decimal), new(func(decimal.Decimal) decimal.Decimal)),
		// percent(x, p) = x × p / 100.
		function("percent", func(p ...any) (any, error) {
			return asDecArg(p[0]).Mul(asDecArg(p[1])).Shift(-2), nil // exactly: Div stops at 16 digits
		}, new(func(decimal.Decimal, decimal.Decimal) decimal.Decimal), new(func(decimal.Decimal, int) decimal.Decimal)),
		function("min_dec", decArgOp(func(a, b decimal.Decimal) any { return decimal.Min(a, b) }), new(func(decimal.Decimal, decimal.Decimal) decimal.Decimal)),
		function("max_dec", decArgOp(func(a, b decimal.Decimal) any { return decimal.Max(a, b) }), new(func(decimal.Decimal, decimal.Decimal) decimal.Decimal)),

		// Dates (date(): dateOptions).
		function("add_days", func(p ...any) (any, error) {
			d := p[0].(model.Date)
			if d.IsZero() {
				return d, nil
			}
			days, err := wholeArg("add_days", "days", p[1])
			if err != nil {
				return nil, err
			}
			if days < -maxAddDays || days > maxAddDays {
				return nil, fmt.Errorf("add_days: %d days from %s; give at most %d either way", days, d, maxAddDays)
			}
			return d.AddDays(days), nil
		}, new(func(model.Date, int) model.Date)),
		function("date_in", func(p ...any) (any, error) {
			m := p[0].(Moment)
			if m.t.IsZero() {
				return model.Date{}, nil
			}
			loc, err := zoneNamed(p[1].(string))
			if err != nil {
				return nil, err
			}
			return model.DateIn(m.t, loc), nil
		}, new(func(Moment, string) model.Date)),
		function("end_of_month", func(p ...any) (any, error) {
			d := p[0].(model.Date)
			if d.IsZero() {
				return d, nil
			}
			t := d.Time()
			return model.DateOf(time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, time.UTC)), nil
		}, new(func(model.Date) model.Date)),
		function("is_set", func(p ...any) (any, error) {
			switch x := p[0].(type) {
			case model.Date:
				return !x.IsZero(), nil
			case Moment:
				return !x.t.IsZero(), nil
			case string:
				return strings.TrimSpace(x) != "", nil
			}
			return p[0] != nil, nil
		}, new(func(model.Date) bool), new(func(Moment) bool), new(func(string) bool)),
		// coalesce(a, b, ...): the first non-blank string / set date.
		// A call without arguments is refused at load (parser.compile);
		// the snapshot of a run started before that check fails here instead.
		function("coalesce", func(p ...any) (any, error) {
			if len(p) == 0 {
				return nil, errCoalesceNoArguments
			}
			for _, v := range p {
				switch x := v.(type) {
				case string:
					if strings.TrimSpace(x) != "" {
						return x, nil
					}
				case model.Date:
					if !x.IsZero() {
						return x, nil
					}
				case nil:
				default:
					// A value whose type shows only as the run reads it
					// (fromJSON of a CRM's custom fields): a number or a
					// yes/no is its text, as string() writes it; an object
					// or a list is no text to write. It was taken for a
					// blank, and the next value written instead. A
					// function is the field's to refuse (File.eval).
					if holdsFunc(x) {
						return x, nil
					}
					return jsonText("coalesce", x)
				}
			}
			if p[len(p)-1] == nil {
				return "", nil
			}
			return p[len(p)-1], nil
		}, new(func(...string) string), new(func(model.Date, ...model.Date) model.Date)),
	}...)
	opts = append(opts, equalityOptions()...)
	opts = append(opts, jsonArithmeticOptions()...)
	opts = append(opts, numberDivisionOptions()...)
	opts = append(opts, collectionOptions(strict)...)
	opts = append(opts, aggregateOptions(strict)...)
	opts = append(opts, wholeNumberOptions()...)
	opts = append(opts, exactNumberOptions()...)
	opts = append(opts, expr.Patch(jsonDecArgs{}), expr.Function(jsonDecArg, func(p ...any) (any, error) {
		if f, ok := p[0].(float64); ok {
			if d, ok := writtenNumber(f); ok {
				return d, nil
			}
		}
		return p[0], nil
	}, new(func(any) any)))
	opts = append(opts, funcOptions()...)
	if strict {
		opts = append(opts, structTextOptions()...)
	}
	return opts
}
