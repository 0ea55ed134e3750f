package mapping

import (
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
)

// unknownOperandPrefix starts builtinHint's hint for a decimal beside a
// value whose type shows only as the run reads it ("mismatched types
// decimal and unknown"), which unknownOperandHint makes fit the value.
const unknownOperandPrefix = "; "

// reduceAccumulatorHint is the hint for a decimal beside reduce's #acc.
const reduceAccumulatorHint = "; #acc, reduce's accumulator, has a type that shows only as the run reads it, so a decimal is not computed with it as written: " +
	"convert it with dec(#acc), and start it with a decimal (or a whole number), as in reduce(deal.line_items, dec(#acc) + .quantity * .unit_price, dec(0)); " +
	"to add values up, sum(deal.line_items, .quantity * .unit_price) says it shorter"

// reduceResultHint is the hint for a decimal beside what reduce gives.
const reduceResultHint = "; reduce gives what its step gives, here a value whose type shows only as the run reads it (#acc, its accumulator, is one, whatever reduce starts it with), " +
	"so a decimal is not computed with it as written: make the step give a decimal, with dec(#acc), as in reduce(deal.line_items, dec(#acc) + .quantity * .unit_price, dec(0)); " +
	"to add values up, sum(deal.line_items, .quantity * .unit_price) says it shorter"

// fromJSONNumberHint is the hint for a decimal beside what fromJSON reads.
const fromJSONNumberHint = "; a number read with fromJSON is a float, which money is not computed with: write dec(string(x)) for it"

// unknownOperandHint is the hint for expr's "mismatched types" of the
// operator at offset from in src (compiled with opts), a decimal beside a
// value whose type shows only as the run reads it, naming what that value
// is, also through a let variable: reduce's accumulator (#acc) or its
// result, a number read with fromJSON, a conditional or a ?? whose sides
// differ, a value read from a list or a map of values of any type (get,
// first, x[k]). "" when it is none of those (or the operator is not
// found): the caller keeps the general hint.
func unknownOperandHint(src string, opts []expr.Option, from int) string {
	tree, _, _ := parseChecked(src, opts)
	if tree == nil {
		return ""
	}
	var op *ast.BinaryNode
	walkAll(tree.Node, func(node ast.Node) {
		if b, ok := node.(*ast.BinaryNode); ok && b.Location().From == from && op == nil {
			op = b
		}
	})
	if op == nil {
		return ""
	}
	lets := letValues(tree.Node)
	runes := []rune(src)
	if (op.Operator == "**" || op.Operator == "^") && op.Left.Type() == decimalType && unknownType(op.Right.Nature()) {
		// The exponent of a decimal's power: dec(string(x)), the
		// conversion of a number read with fromJSON, would make it a
		// decimal, which is no exponent either.
		return fmt.Sprintf("; the exponent of a decimal's power is a whole number, and %s has a type that shows only as the run reads it: convert it, int(%s) (not dec(string(x)): a decimal exponent is refused too)",
			"`"+shortText(oneLine(nodeText(runes, op.Right)))+"`", nodeText(runes, op.Right))
	}
	for _, side := range []ast.Node{op.Left, op.Right} {
		if !unknownType(side.Nature()) {
			continue
		}
		if h := unknownValueHint(runes, side, lets); h != "" {
			return h
		}
	}
	return ""
}

// unknownValueHint is unknownOperandHint's hint for the operand n, of a
// type known only as the run reads it; "" when none fits.
func unknownValueHint(src []rune, n ast.Node, lets map[string]ast.Node) string {
	if fromJSONValue(n, lets, 0) || neverDecimal(n, lets, 0) {
		return fromJSONNumberHint
	}
	v := letValue(n, lets)
	if readsAccumulator(v) {
		return reduceAccumulatorHint
	}
	switch x := v.(type) {
	case *ast.ConditionalNode:
		if h := twoTypesHint(src, "the conditional", "both branches", x.Exp1, x.Exp2); h != "" {
			return h
		}
	case *ast.BinaryNode:
		if x.Operator == "??" {
			if h := twoTypesHint(src, "the ??", "both its sides", x.Left, x.Right); h != "" {
				return h
			}
		}
	case *ast.BuiltinNode:
		switch x.Name {
		case "reduce":
			return reduceResultHint
		case "get", "first", "last", "find", "findLast":
			return elementHint(src, n)
		}
	case *ast.MemberNode:
		return elementHint(src, n)
	case *ast.ChainNode:
		if _, ok := x.Node.(*ast.MemberNode); ok {
			return elementHint(src, n)
		}
	}
	return ""
}

// elementHint is the hint for a decimal beside n, a value read from a
// list or a map whose values may be of any type (written in the mapping,
// as [dec(1), "a"] or {"a": dec(1)}): dec() converts a decimal, a whole
// number or a number's text.
func elementHint(src []rune, n ast.Node) string {
	return fmt.Sprintf("; %s is read from a list or a map whose values may be of any type, so its type shows only as the run reads it, and a decimal is not computed with it as written: "+
		"convert it, dec(%s) (of a decimal, a whole number or a number's text)", "`"+shortText(oneLine(nodeText(src, n)))+"`", expressionText(src, n))
}

// twoTypesHint is the hint for a decimal beside what (a conditional, a
// ??) whose sides a and b are of two types known at load; dec() of the
// one that is no decimal is given where it makes one of it (a whole
// number, a number written as text or as a float). "" when a type of
// either is not known.
func twoTypesHint(src []rune, what, sides string, a, b ast.Node) string {
	ta, tb := a.Type(), b.Type()
	if unknownType(a.Nature()) || unknownType(b.Nature()) || ta == nil || tb == nil {
		return ""
	}
	h := fmt.Sprintf("; %s gives values of two types (%s and %s), so its type shows only as the run reads it: give %s one type", what, typeWord(ta), typeWord(tb), sides)
	other := b
	switch {
	case ta == decimalType:
	case tb == decimalType:
		other = a
	default:
		return h
	}
	if d := asDecimalText(src, other); d != "" {
		h += fmt.Sprintf(", as in %s for %s", d, expressionText(src, other))
	}
	return h
}

// asDecimalText is dec() of n where that makes a decimal of it: a whole
// number, a text written in quotes that is a decimal, a float written as
// digits with a point (dec of its digits); "" otherwise.
func asDecimalText(src []rune, n ast.Node) string {
	text := nodeText(src, n)
	switch x := n.(type) {
	case *ast.FloatNode, *ast.ConstantNode:
		if plainDecimalRE.MatchString(text) {
			return `dec("` + text + `")`
		}
	case *ast.StringNode:
		if decimalLiteral(x.Value) == nil && !strings.ContainsAny(x.Value, `"\`) {
			return `dec("` + x.Value + `")`
		}
		return ""
	}
	if t := n.Type(); t != nil && t.Kind() == reflect.Int {
		return "dec(" + expressionText(src, n) + ")"
	}
	return ""
}

// expressionText is the text that writes n, or x when it is longer than
// maxShownText (as in dec(x)).
func expressionText(src []rune, n ast.Node) string {
	text := oneLine(nodeText(src, n))
	if utf8.RuneCountInString(text) > maxShownText {
		return "x"
	}
	return text
}

// typeWord is the word the mapping's docs give values of type t: decimal,
// int, float, string, bool, date, moment, list, map, line item, ….
func typeWord(t reflect.Type) string {
	switch t {
	case decimalType:
		return "decimal"
	case dateType:
		return "date"
	case momentType:
		return "moment"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map:
		return "map"
	case reflect.Pointer:
		return typeWord(t.Elem())
	case reflect.Func:
		return "function"
	}
	return typeNames.Replace(t.String())
}

// letValue is the value of the let variable n names, followed through
// let variables that name others; n itself when it names none.
func letValue(n ast.Node, lets map[string]ast.Node) ast.Node {
	for range maxNeverDecimalDepth {
		id, ok := n.(*ast.IdentifierNode)
		if !ok {
			return n
		}
		v, ok := lets[id.Value]
		if !ok {
			return n
		}
		n = v
	}
	return n
}

// letValues are the values of the let variables root declares, by name;
// a name declared twice (in two scopes) is left out, as which one a use
// reads is not looked into.
func letValues(root ast.Node) map[string]ast.Node {
	lets := map[string]ast.Node{}
	twice := map[string]bool{}
	walkAll(root, func(node ast.Node) {
		if d, ok := node.(*ast.VariableDeclaratorNode); ok {
			if _, seen := lets[d.Name]; seen {
				twice[d.Name] = true
			}
			lets[d.Name] = d.Value
		}
	})
	for name := range twice {
		delete(lets, name)
	}
	return lets
}

// readsAccumulator says whether n is reduce's accumulator, #acc, or read
// from it (#acc.x, #acc[k]).
func readsAccumulator(n ast.Node) bool {
	for {
		switch x := n.(type) {
		case *ast.PointerNode:
			return x.Name == "acc"
		case *ast.MemberNode:
			n = x.Node
		case *ast.ChainNode:
			n = x.Node
		default:
			return false
		}
	}
}
