package mapping

import (
	"errors"
	"math"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
)

// floatArithmetic has each operand of an arithmetic operator that reads a
// value of fromJSON go through _no_float, which refuses a float: expr would compute with it in
// binary floating point (0.145 * 3 gave 0.43499999999999994, rounded to
// 0.43 where 0.44 was due), where a mapping's amounts are decimals. A
// number so read is converted first, dec(string(x)), and then computes
// exactly. Like funcGuard, it changes no type: a run's snapshot compiles
// as before, and only a run that would have computed in floats fails.
type floatArithmetic struct{}

func (floatArithmetic) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		switch n.Operator {
		case "+", "-", "*", "/", "%", "**", "^":
		default:
			return
		}
		guardFloat(&n.Left, n.Operator)
		guardFloat(&n.Right, n.Operator)
	case *ast.UnaryNode:
		if n.Operator == "-" || n.Operator == "+" {
			guardFloat(&n.Node, n.Operator)
		}
	}
}

// guardFloat wraps the operand at side in _no_float when it reads a value
// of fromJSON (fromJSON(x), fromJSON(x)["k"], fromJSON(x).a[0]): the one
// source of floats at run time. Operands of other unknown types are left
// as they are: the decimal patches type many of them later (a unary
// minus, an item of a sorted list), and a float literal of the mapping
// is the load's to judge.
func guardFloat(side *ast.Node, operator string) {
	if isCallOf(*side, "_no_float") || !readsFromJSON(*side) {
		return
	}
	wrap := &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_no_float"}, Arguments: []ast.Node{*side, &ast.StringNode{Value: operator}}}
	wrap.SetLocation((*side).Location())
	*side = wrap
}

// readsFromJSON says whether n is a call of fromJSON, or a member or an
// index of one.
func readsFromJSON(n ast.Node) bool {
	for {
		switch x := n.(type) {
		case *ast.BuiltinNode:
			return x.Name == "fromJSON"
		case *ast.MemberNode:
			n = x.Node
		case *ast.ChainNode:
			n = x.Node
		default:
			return false
		}
	}
}

// errFloatArithmetic words _no_float's refusal.
func errFloatArithmetic(operator string, f float64) error {
	if operator == "+" && !math.IsNaN(f) {
		return errors.New("a number read with fromJSON (" + floatText(f) + ") is an operand of +: to join it to text write string(x), " +
			"for a sum write dec(string(x)) (it is a binary float, and arithmetic on it would not be exact)")
	}
	return errors.New("a number read with fromJSON (" + floatText(f) + ") is an operand of " + operator +
		": write dec(string(x)) to compute with it (it is a binary float, and arithmetic on it would not be exact: 0.145 * 3 gives 0.43499999999999994)")
}

// floatOptions are floatArithmetic and _no_float(value, operator): the
// value, unless it is a float.
func floatOptions() []expr.Option {
	return []expr.Option{
		expr.Patch(floatArithmetic{}),
		expr.Function("_no_float", func(p ...any) (any, error) {
			if f, ok := p[0].(float64); ok {
				return nil, errFloatArithmetic(p[1].(string), f)
			}
			return p[0], nil
		}, new(func(any, string) any)),
	}
}
