package mapping

import (
	"strings"

	"github.com/expr-lang/expr/ast"
)

// amountLineKey begins the keys of amount_line's fields.
const amountLineKey = "invoice.amount_line."

// noLineItemsDivisor says whether divisor, a divisor in the expression
// root of the field key, is the number of the deal's line items in
// amount_line, which maps only a deal without line items: there it is
// always 0, so every deal that uses it fails with "division by zero"
// (`unit_price: round_to(deal.amount / len(deal.line_items), 2)`).
// Written as len(deal.line_items), as dec() of it, or as a let variable
// of it; not a division in a conditional's branch, on the right of &&,
// || or ??, which a guard may keep from running, or in the closure of a
// builtin (map, filter, count, sum, reduce, ...), which runs once per
// element: over deal.line_items, never here.
func noLineItemsDivisor(key string, root, division, divisor ast.Node) bool {
	if !strings.HasPrefix(key, amountLineKey) || guardedIn(root, division) {
		return false
	}
	lets := letValues(root)
	for depth := 0; depth <= maxNeverDecimalDepth; depth++ {
		switch x := divisor.(type) {
		case *ast.BuiltinNode:
			return x.Name == "len" && len(x.Arguments) == 1 && isDealLineItems(x.Arguments[0])
		case *ast.CallNode:
			if !isCallOf(x, "dec") || len(x.Arguments) != 1 {
				return false
			}
			divisor = x.Arguments[0]
		case *ast.IdentifierNode:
			v, ok := lets[x.Value]
			if !ok {
				return false
			}
			divisor = v
		default:
			return false
		}
	}
	return false
}

// isDealLineItems says whether n reads deal.line_items.
func isDealLineItems(n ast.Node) bool {
	m, ok := n.(*ast.MemberNode)
	if !ok {
		return false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	prop, isString := m.Property.(*ast.StringNode)
	return ok && isString && id.Value == "deal" && prop.Value == "line_items"
}

// guardedIn says whether node is in a part of root that a condition may
// keep from being evaluated: a conditional's branch, the right side of
// &&, || or ??, or the body of a builtin's closure (map(xs, {...}),
// count(xs, ... > 1)), which runs only for the elements there are.
func guardedIn(root, node ast.Node) bool {
	found := false
	ast.Walk(&root, visitor(func(n ast.Node) {
		var branches []ast.Node
		switch x := n.(type) {
		case *ast.ConditionalNode:
			branches = []ast.Node{x.Exp1, x.Exp2}
		case *ast.BinaryNode:
			if x.Operator == "&&" || x.Operator == "||" || x.Operator == "??" || x.Operator == "and" || x.Operator == "or" {
				branches = []ast.Node{x.Right}
			}
		case *ast.PredicateNode:
			branches = []ast.Node{x.Node}
		}
		for _, b := range branches {
			ast.Walk(&b, visitor(func(y ast.Node) {
				found = found || y == node
			}))
		}
	}))
	return found
}
