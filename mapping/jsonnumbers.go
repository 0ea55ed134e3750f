package mapping

import (
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/shopspring/decimal"
)

// exactJSONNumbers has fromJSON(s) read s through _exact_numbers first:
// expr's fromJSON gives every JSON number as a float, which holds about
// 16 digits, so 12345678.123456789 became 12345678.12345679 on its way to
// an invoice, silently. _exact_numbers gives a number a float does not
// hold as written as its text instead (a JSON string), which string(),
// dec() and coalesce() take exactly, and arithmetic refuses; the numbers a
// float holds are read as before, and a mapping that does not read such
// a number is not affected by it. It runs for a run's snapshot too: it
// changes no type.
type exactJSONNumbers struct{}

func (exactJSONNumbers) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BuiltinNode)
	if !ok || b.Name != "fromJSON" || len(b.Arguments) != 1 || isCallOf(b.Arguments[0], "_exact_numbers") {
		return
	}
	arg := b.Arguments[0]
	call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_exact_numbers"}, Arguments: []ast.Node{arg}}
	call.SetType(stringType)
	call.SetLocation(arg.Location())
	b.Arguments[0] = call
}

// exactNumbers returns the JSON text s with every number a float does not
// hold as written turned into a string of its text; s itself when there
// is none (nearly always), or when s is no JSON (for fromJSON to say what
// is wrong with it).
func exactNumbers(s string) string {
	if !hasInexactNumber(s) {
		return s
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return s
	}
	if _, err := dec.Token(); err != io.EOF {
		return s // more after the value: fromJSON's to refuse
	}
	b, err := json.Marshal(exactOrText(v))
	if err != nil {
		return s
	}
	return string(b)
}

// hasInexactNumber says whether the JSON text s has a number a float does
// not hold as written.
func hasInexactNumber(s string) bool {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return false // the end, or no JSON
		}
		if n, ok := tok.(json.Number); ok && !floatHolds(n) {
			return true
		}
	}
}

// floatHolds says whether a float read from n has n's value: its
// shortest text is n's number (1e2 and 100 are one).
func floatHolds(n json.Number) bool {
	written, err := decimal.NewFromString(string(n))
	if err != nil {
		return true // not a number decimal reads: left to fromJSON
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return err == nil && decimal.NewFromFloat(f).Equal(written)
}

// exactOrText is v (decoded with UseNumber) with each number a float
// holds as that float, and each other as its text.
func exactOrText(v any) any {
	switch x := v.(type) {
	case json.Number:
		if floatHolds(x) {
			f, _ := strconv.ParseFloat(string(x), 64)
			return f
		}
		return string(x)
	case map[string]any:
		for k, e := range x {
			x[k] = exactOrText(e)
		}
	case []any:
		for i, e := range x {
			x[i] = exactOrText(e)
		}
	}
	return v
}

// exactNumberOptions are exactJSONNumbers and _exact_numbers.
func exactNumberOptions() []expr.Option {
	return []expr.Option{
		expr.Patch(exactJSONNumbers{}),
		expr.Function("_exact_numbers", func(p ...any) (any, error) {
			s := p[0].(string)
			if strings.TrimSpace(s) == "" {
				// JSON's own "unexpected end of JSON input" said nothing
				// of why: a field the CRM did not send reads as "".
				return nil, errors.New("fromJSON() was given empty text: the field read is missing or empty for this deal (a deal.raw key the CRM did not send?); " +
					"guard it, as in x != \"\" ? fromJSON(x)[\"k\"] : \"\"")
			}
			return exactNumbers(s), nil
		}, new(func(string) string)),
	}
}
