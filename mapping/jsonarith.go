package mapping

import (
	"errors"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/vm/runtime"
	"github.com/shopspring/decimal"
)

// jsonArithmetic computes with the numbers read with fromJSON (a CRM's
// custom fields), which expr gives as binary floats, as the numbers their
// text says: expr computed fromJSON(x)["rate"] * 3 with a rate of 0.145
// as 0.43499999999999994 (0.43 once rounded, where 0.44 is due) and
// 0.1 + 0.2 as 0.30000000000000004 (so `<= 0.3` was false).
//
// Each +, -, *, / whose operands are floats, whole numbers or of a type
// known only as the expression runs, one of them the latter, goes through
// _json_<op> (jsonArith). Types do not change: floats give a float (a
// JSON number holds about 16 digits; money is converted with
// dec(string(x))), two whole numbers and anything else (a decimal, text)
// are expr's, with expr's results and errors, and the call is typed as
// expr types the operator, so the patches that read types before it
// (decimalEquality, wholeNumbers, the aggregates) judge as they did.
// Comparisons need nothing: a float compares as the number it writes.
//
// It runs after the operator patches, repeatedly: an operand they have
// yet to type (-(a * b), a decimal) may look unknown for a pass, and a
// call whose operands no longer qualify is turned back into its operator.
// It runs for a run's snapshot too: it changes no type.
type jsonArithmetic struct{ applied bool }

// jsonOperators are the operators jsonArithmetic takes, by the function
// each becomes.
var jsonOperators = map[string]string{
	"+": "_json_add", "-": "_json_sub", "*": "_json_mul", "/": "_json_div",
}

func (p *jsonArithmetic) Visit(node *ast.Node) {
	switch x := (*node).(type) {
	case *ast.BinaryNode:
		if !jsonTakes(x.Operator, x.Left, x.Right) {
			return
		}
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: jsonFunction(x.Operator, x.Left, x.Right)}, Arguments: []ast.Node{x.Left, x.Right}})
		p.applied = true
	case *ast.CallNode:
		op, ok := jsonOperatorOf(x)
		if !ok || len(x.Arguments) != 2 {
			return
		}
		l, r := x.Arguments[0], x.Arguments[1]
		switch fn := jsonFunction(op, l, r); {
		case !jsonTakes(op, l, r):
			ast.Patch(node, &ast.BinaryNode{Operator: op, Left: l, Right: r})
		case fn != x.Callee.(*ast.IdentifierNode).Value:
			// An operand typed since (a quotient patched in the same
			// walk is typed only by the next check).
			ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: x.Arguments})
		default:
			return
		}
		p.applied = true
	}
}

// jsonComparisons are the orderings jsonArithmetic takes, by the
// function each becomes: a number read with fromJSON against a decimal
// too (`deal.amount >= fromJSON(x)["threshold"]` was "mismatched types
// decimal and unknown" at load, where == compared them by value).
var jsonComparisons = map[string]string{"<": "_json_lt", "<=": "_json_le", ">": "_json_gt", ">=": "_json_ge"}

// jsonTakes says whether op on l and r is jsonArithmetic's: arithmetic on
// jsonOperands, an ordering of a value of unknown type and a number.
func jsonTakes(op string, l, r ast.Node) bool {
	if _, ok := jsonComparisons[op]; ok {
		ln, rn := l.Nature(), r.Nature()
		if ln.Nil || rn.Nil {
			return false // a literal nil: expr's load error, as before
		}
		return (unknownType(ln) || unknownType(rn)) && (floatOrUnknown(ln) || ln.Type == decimalType) && (floatOrUnknown(rn) || rn.Type == decimalType)
	}
	_, ok := jsonOperators[op]
	return ok && jsonOperands(l, r)
}

// jsonFunction is the function for op on l and r, typed as expr types
// op on them: an ordering is a boolean, a quotient a float; a sum,
// difference or product is unknown beside a value of unknown type, and a
// float where both are known (a quotient and a number).
func jsonFunction(op string, l, r ast.Node) string {
	if fn, ok := jsonComparisons[op]; ok {
		return fn
	}
	fn := jsonOperators[op]
	if op != "/" && !unknownType(l.Nature()) && !unknownType(r.Nature()) {
		fn += floatResult
	}
	return fn
}

// Reset and ShouldRepeat make expr run jsonArithmetic with the operator
// patches, until none of them changes the tree.
func (p *jsonArithmetic) Reset()             { p.applied = false }
func (p *jsonArithmetic) ShouldRepeat() bool { return p.applied }

// jsonOperands says whether an operator on l and r is jsonArithmetic's:
// each a float, a whole number or unknown, one of them unknown or
// computed by it (a quotient is a float: `x / 100 * 3`).
func jsonOperands(l, r ast.Node) bool {
	ln, rn := l.Nature(), r.Nature()
	fromJSON := unknownType(ln) || unknownType(rn) || isJSONArith(l) || isJSONArith(r)
	return fromJSON && floatOrUnknown(ln) && floatOrUnknown(rn)
}

// isJSONArith says whether n is a call of _json_<op>.
func isJSONArith(n ast.Node) bool {
	c, ok := n.(*ast.CallNode)
	if !ok {
		return false
	}
	_, ok = jsonOperatorOf(c)
	return ok
}

func floatOrUnknown(n *nature.Nature) bool {
	if unknownType(n) {
		return true
	}
	k := n.Type.Kind()
	return k == reflect.Int || k == reflect.Float64
}

// jsonOperatorOf is the operator behind a call of _json_<op>.
func jsonOperatorOf(c *ast.CallNode) (string, bool) {
	id, ok := c.Callee.(*ast.IdentifierNode)
	if !ok {
		return "", false
	}
	for op, fn := range jsonComparisons {
		if fn == id.Value {
			return op, true
		}
	}
	name := strings.TrimSuffix(id.Value, floatResult)
	for op, fn := range jsonOperators {
		if fn == name {
			return op, true
		}
	}
	return "", false
}

// floatResult ends the name of the _json_<op> typed as giving a float
// (_json_mulf), where an operand is known to be one; a quotient is
// always one (_json_div).
const floatResult = "f"

// jsonOperandsOf are a and b as the decimals they write, when both are
// floats or whole numbers and every float is a number (not NaN or ±Inf).
func jsonOperandsOf(a, b any) (da, db decimal.Decimal, ok bool) {
	da, aok := writtenNumber(a)
	db, bok := writtenNumber(b)
	return da, db, aok && bok
}

// writtenNumber is a whole number, a decimal, or a float by its shortest
// text.
func writtenNumber(v any) (decimal.Decimal, bool) {
	switch x := v.(type) {
	case decimal.Decimal:
		return x, true
	case int:
		return decimal.NewFromInt(int64(x)), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return decimal.Decimal{}, false
		}
		d, err := decimal.NewFromString(floatText(x))
		return d, err == nil
	}
	return decimal.Decimal{}, false
}

// quotientDigits are the significant digits a quotient is computed to
// before it becomes a float (which holds about 16).
const quotientDigits = 18

// jsonArith is a op b (+, -, *, /) of floats and whole numbers: of the
// float expr computes and the float nearest the result of the numbers a
// and b write, the one with the shorter text (that nearest the written
// numbers' result on a tie). 0.145 * 3 is 0.435, not expr's
// 0.43499999999999994; 2 / 3 * 3 stays expr's 2, where the written
// numbers' result, of 0.6666666666666666 * 3, is 1.9999999999999998.
// Dividing by zero is "division by zero", as for decimals. Anything else
// is expr's a op b.
func jsonArith(op string, a, b any) (any, error) {
	var computed any
	switch op {
	case "+":
		computed = runtime.Add(a, b)
	case "-":
		computed = runtime.Subtract(a, b)
	case "*":
		computed = runtime.Multiply(a, b)
	default:
		computed = runtime.Divide(a, b)
	}
	got, isFloat := computed.(float64)
	da, db, ok := jsonOperandsOf(a, b)
	if ok && op == "/" && db.IsZero() {
		// As for decimals: +Inf or NaN went on into triggers, skip
		// rules and texts ("+Inf"), and int() made it -9223372036854775808.
		return nil, errDivZero
	}
	if !isFloat || !ok {
		return computed, nil
	}
	var d decimal.Decimal
	switch op {
	case "+":
		d = da.Add(db)
	case "-":
		d = da.Sub(db)
	case "*":
		d = da.Mul(db)
	default:
		// To quotientDigits significant digits, wherever the point is
		// (Div stops 16 places after it: 1e-20 / 2 would be 0).
		d = da.DivRound(db, quotientDigits-(wholeDigits(da)-wholeDigits(db)))
	}
	if math.IsInf(got, 0) || math.IsNaN(got) {
		// Past a float's range (1e308 / 1e-308): +Inf went on into
		// triggers and texts, and int() made it the smallest whole number.
		return nil, errors.New("the result is past the range of a number read with fromJSON (a float): compute with dec(string(x))")
	}
	written, _ := d.Float64()
	if significantDigits(written) <= significantDigits(got) {
		return written, nil
	}
	return got, nil
}

// significantDigits are the digits of f's shortest text.
func significantDigits(f float64) int {
	mantissa, _, _ := strings.Cut(strconv.FormatFloat(f, 'e', -1, 64), "e")
	return len(strings.TrimLeft(strings.Replace(mantissa, ".", "", 1), "-"))
}

// jsonCompare is a op b (<, <=, >, >=): of the numbers a and b write
// (a float by its shortest text, a decimal, a whole number), or expr's.
func jsonCompare(op string, a, b any) bool {
	da, db, ok := jsonOperandsOf(a, b)
	if !ok {
		switch op {
		case "<":
			return runtime.Less(a, b)
		case "<=":
			return runtime.LessOrEqual(a, b)
		case ">":
			return runtime.More(a, b)
		}
		return runtime.MoreOrEqual(a, b)
	}
	c := da.Cmp(db)
	switch op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0
}

// wholeDigits is where d's first digit is: the digits before the point
// (0.145: 0, 12.5: 2), less the zeros after it (0.001: -2).
func wholeDigits(d decimal.Decimal) int32 {
	return int32(len(new(big.Int).Abs(d.Coefficient()).String())) + d.Exponent()
}

// jsonArithmeticOptions are jsonArithmetic and its functions, each typed
// as expr types its operator on such operands. They come after the
// operator patches (baseOptions).
func jsonArithmeticOptions() []expr.Option {
	opts := []expr.Option{expr.Patch(&jsonArithmetic{})}
	for op, fn := range jsonComparisons {
		opts = append(opts, expr.Function(fn, func(p ...any) (any, error) { return jsonCompare(op, p[0], p[1]), nil }, new(func(any, any) bool)))
	}
	for op, fn := range jsonOperators {
		switch op {
		case "/":
			opts = append(opts, expr.Function(fn, func(p ...any) (any, error) { return jsonArith(op, p[0], p[1]) }, new(func(any, any) float64)))
		default:
			opts = append(opts,
				expr.Function(fn, func(p ...any) (any, error) { return jsonArith(op, p[0], p[1]) }, new(func(any, any) any)),
				expr.Function(fn+floatResult, func(p ...any) (any, error) { return jsonArith(op, p[0], p[1]) }, new(func(any, any) float64)))
		}
	}
	return opts
}
