package mapping

import (
	"reflect"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/vm/runtime"
	"github.com/shopspring/decimal"
)

// expr compares values its checker cannot type (a ternary of a decimal
// and 0, a value from a list literal) by their representation, and so
// does `in`: 12000.00 and 12000 are two decimals that differ there. A
// deal's decimals keep the digits the CRM sent in a dry run, and lose
// their trailing zeros in a run (its input has been through JSON), so
// `deal.amount in [dec("12000")]` was false in `mapping test` and true in
// the run. decimalEquality gives ==, != and in to decimalEqual wherever a
// decimal may meet a number, which compares decimals (and whole numbers
// with them) by value and anything else as expr does.
type decimalEquality struct{}

func (decimalEquality) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok {
		return
	}
	l, r := b.Left.Nature(), b.Right.Nature()
	switch b.Operator {
	case "==", "!=":
		// Both sides may hold numbers, and one may hold a decimal: known
		// types that cannot meet (a decimal and a string) stay expr's, so
		// the load still refuses them.
		if !numberLike(l) || !numberLike(r) || (!mayBeDecimal(l) && !mayBeDecimal(r)) {
			return
		}
		var call ast.Node = &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_dec_equal"}, Arguments: []ast.Node{b.Left, b.Right}}
		if b.Operator == "!=" {
			call = &ast.UnaryNode{Operator: "not", Node: call}
		}
		ast.Patch(node, call)
	case "in":
		// A list whose elements may be decimals or whole numbers (or are of
		// unknown type); one known to hold other things (floats, strings)
		// stays expr's, so the load still refuses a decimal in it.
		if !mayBeDecimal(l) || (r.Type != nil && !r.IsArray() && r.Kind != reflect.Interface) ||
			(r.IsArray() && r.Ref != nil && !numberLike(r.Ref)) {
			return
		}
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_dec_in"}, Arguments: []ast.Node{b.Left, b.Right}})
	}
}

func unknownType(n *nature.Nature) bool { return n.Type == nil || n.Type.Kind() == reflect.Interface }

func mayBeDecimal(n *nature.Nature) bool { return unknownType(n) || n.Type == decimalType }

// numberLike: a decimal, a whole number, or unknown. A float is not: a
// decimal compared with one stays the load error it is.
func numberLike(n *nature.Nature) bool {
	return mayBeDecimal(n) || (n.Type != nil && n.Type.Kind() == reflect.Int)
}

// decimalEqual compares a and b by value when one is a decimal and the
// other a decimal, a whole number or a float read from JSON, and as
// expr's == otherwise.
func decimalEqual(a, b any) bool {
	da, aDec := a.(decimal.Decimal)
	db, bDec := b.(decimal.Decimal)
	switch {
	case aDec && bDec:
		return da.Equal(db)
	case aDec:
		if n, ok := b.(int); ok {
			return da.Equal(decimal.NewFromInt(int64(n)))
		}
		if f, ok := b.(float64); ok {
			return equalsFloat(da, f)
		}
	case bDec:
		if n, ok := a.(int); ok {
			return db.Equal(decimal.NewFromInt(int64(n)))
		}
		if f, ok := a.(float64); ok {
			return equalsFloat(db, f)
		}
	}
	return runtime.Equal(a, b)
}

// equalsFloat compares d with a float read from JSON (fromJSON) by the
// float's text, as string() writes it: the number the JSON said (one a
// float does not hold exactly is read as its text). expr's == compared
// them by type, and was false for 7 and 7 (a tax code chosen by it was
// the other one, silently).
func equalsFloat(d decimal.Decimal, f float64) bool {
	fd, err := decimal.NewFromString(floatText(f))
	return err == nil && d.Equal(fd)
}

// decimalIn is `needle in list` with decimalEqual; on a map or anything
// else, expr's in.
func decimalIn(needle, list any) bool {
	v := reflect.ValueOf(list)
	if list == nil || (v.Kind() != reflect.Slice && v.Kind() != reflect.Array) {
		return runtime.In(needle, list)
	}
	for i := range v.Len() {
		if e := v.Index(i); e.IsValid() && decimalEqual(e.Interface(), needle) {
			return true
		}
	}
	return false
}

// equalityOptions are decimalEquality and its functions.
func equalityOptions() []expr.Option {
	return []expr.Option{
		expr.Patch(decimalEquality{}),
		expr.Function("_dec_equal", func(p ...any) (any, error) { return decimalEqual(p[0], p[1]), nil }, new(func(any, any) bool)),
		expr.Function("_dec_in", func(p ...any) (any, error) { return decimalIn(p[0], p[1]), nil }, new(func(any, any) bool)),
	}
}
