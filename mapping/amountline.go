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
// builtin (map, filter, count, sum, reduce, ...) over deal.line_items
// (or what is taken from them, as filter(deal.line_items, …)), which
// runs once per line item: never here. A closure over anything else
// (map([1], …), map(deal.raw["x"], …)) runs here, so it is no guard.
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
// &&, || or ??, or the body of the closure of a builtin over the deal's
// line items (map(deal.line_items, {...}), count(deal.line_items, ... >
// 1)), which runs only for the line items there are. The closure of a
// builtin over another collection (map([1], ...), map(deal.raw["x"],
// ...)) is no guard of a division by their number: it runs whether the
// deal has line items or not.
func guardedIn(root, node ast.Node) bool {
	lets := letValues(root)
	found := false
	walkAll(root, func(n ast.Node) {
		var branches []ast.Node
		switch x := n.(type) {
		case *ast.ConditionalNode:
			branches = []ast.Node{x.Exp1, x.Exp2}
		case *ast.BinaryNode:
			if x.Operator == "&&" || x.Operator == "||" || x.Operator == "??" || x.Operator == "and" || x.Operator == "or" {
				branches = []ast.Node{x.Right}
			}
		case *ast.BuiltinNode:
			if len(x.Arguments) > 0 && ofDealLineItems(x.Arguments[0], lets) {
				for _, a := range x.Arguments[1:] {
					if pr, ok := a.(*ast.PredicateNode); ok {
						branches = append(branches, pr.Node)
					}
				}
				if x.Map != nil {
					branches = append(branches, x.Map)
				}
			}
		}
		for _, b := range branches {
			walkAll(b, func(y ast.Node) {
				found = found || y == node
			})
		}
	})
	return found
}

// takesElements are the builtins whose result holds elements of their
// first argument (or one per element, map's): empty when it is.
var takesElements = map[string]bool{
	"filter": true, "map": true, "sortBy": true, "sort": true, "reverse": true, "uniq": true, "take": true,
}

// ofDealLineItems says whether n, the collection of a builtin, is the
// deal's line items, or taken from them (filter(deal.line_items, …),
// map, sortBy, take, a slice, ...; a let variable of either; read with
// ?. too): a closure over it runs only when the deal has line items.
func ofDealLineItems(n ast.Node, lets map[string]ast.Node) bool {
	for depth := 0; depth <= maxNeverDecimalDepth; depth++ {
		switch x := n.(type) {
		case *ast.MemberNode:
			return isDealLineItems(x)
		case *ast.ChainNode:
			// deal?.line_items
			n = x.Node
		case *ast.SliceNode:
			// deal.line_items[1:], empty when they are
			n = x.Node
		case *ast.BuiltinNode:
			if !takesElements[x.Name] || len(x.Arguments) == 0 {
				return false
			}
			n = x.Arguments[0]
		case *ast.IdentifierNode:
			v, ok := lets[x.Value]
			if !ok {
				return false
			}
			n = v
		default:
			return false
		}
	}
	return false
}
