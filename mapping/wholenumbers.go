package mapping

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
)

// wholeNumbers has int() of a text, or of a value whose type shows only
// as the expression runs, take it through _int: expr's int() of a text
// that is not a whole number fails with "invalid operation: int(net 30)",
// the value unquoted and what was wanted unsaid (and of a decimal with
// "invalid operation: int(decimal.Decimal)"). _int says `int: "net 30" is
// not a whole number`, as dec() says `dec: "net 30" is not a decimal
// number`, and reads a whole number written with blanks around it
// (" 30"), as dec() does; numbers are expr's int()'s. It runs for a run's
// snapshot too: it changes no type, and a text int() read before it still
// reads the same.
type wholeNumbers struct{}

func (wholeNumbers) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BuiltinNode)
	if !ok || b.Name != "int" || len(b.Arguments) != 1 {
		return
	}
	if t := b.Arguments[0].Type(); t != nil && t.Kind() != reflect.String && t.Kind() != reflect.Interface && t.Kind() != reflect.Float64 {
		return // a whole number: expr's int()
	}
	call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_int"}, Arguments: b.Arguments}
	call.SetType(intType)
	ast.Patch(node, call)
}

// wholeNumber is int(v): a text as a whole number, blanks around it
// aside; a number as expr's int() gives it.
func wholeNumber(v any) (any, error) {
	switch x := v.(type) {
	case string:
		if err := wholeNumberLiteral(x); err != nil {
			return nil, fmt.Errorf("int: %w", err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(x))
		return n, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) >= 1<<63 {
			// It was the smallest whole number, -9223372036854775808.
			return nil, fmt.Errorf("int: %s is no whole number a mapping can use", floatText(x))
		}
		return builtin.Int(x), nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32:
		return builtin.Int(x), nil
	}
	return nil, fmt.Errorf("int: %s (%v) is not a whole number or a text that writes one", kindName(v), v)
}

// wholeNumberLiteral checks a string given to int() as int reads it.
func wholeNumberLiteral(s string) error {
	if _, err := strconv.Atoi(strings.TrimSpace(s)); err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	return nil
}

// wholeNumberOptions are wholeNumbers and _int.
func wholeNumberOptions() []expr.Option {
	return []expr.Option{
		expr.Patch(wholeNumbers{}),
		expr.Function("_int", func(p ...any) (any, error) { return wholeNumber(p[0]) }, new(func(any) int)),
	}
}
