package mapping

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/shopspring/decimal"
)

// exactJSONNumbers has fromJSON(s) read s through _exact_numbers first:
// expr's fromJSON gives every JSON number as a float, which holds about
// 16 digits, so 12345678.123456789 became 12345678.12345679 on its way to
// an invoice, silently. _exact_numbers fails the run on a number a float
// does not hold as written, naming it; the numbers a float holds are read
// as before. It runs for a run's snapshot too: it changes no type.
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

// maxJSONNumbers bounds the numbers _exact_numbers checks in one text: a
// CRM's custom fields hold tens.
const maxJSONNumbers = 100000

// exactNumbers returns s when every number of the JSON text s is held by
// a float as written; a text that is not JSON is returned as it is, for
// fromJSON to say what is wrong with it.
func exactNumbers(s string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	for n := 0; n < maxJSONNumbers; {
		tok, err := dec.Token()
		if err != nil {
			return s, nil // the end, or no JSON: fromJSON's to say
		}
		num, ok := tok.(json.Number)
		if !ok {
			continue
		}
		n++
		written, err := decimal.NewFromString(string(num))
		if err != nil {
			return s, nil
		}
		f, err := strconv.ParseFloat(string(num), 64)
		if err != nil {
			return s, nil // out of range: fromJSON says so
		}
		if read := decimal.NewFromFloat(f); !read.Equal(written) {
			return "", fmt.Errorf("fromJSON: the number %s has more digits than a mapping's JSON numbers hold (it would be read as %s): "+
				"have the CRM send it as text (a text field, or the number in quotes), which dec() reads exactly", num, read)
		}
	}
	return s, nil
}

// exactNumberOptions are exactJSONNumbers and _exact_numbers.
func exactNumberOptions() []expr.Option {
	return []expr.Option{
		expr.Patch(exactJSONNumbers{}),
		expr.Function("_exact_numbers", func(p ...any) (any, error) { return exactNumbers(p[0].(string)) }, new(func(string) string)),
	}
}
