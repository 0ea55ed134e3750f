package mapping

import (
	"fmt"
	"strings"

	"github.com/expr-lang/expr/ast"
	yaml "go.yaml.in/yaml/v3"
)

// checkNilComparisons refuses x == nil and x != nil (nil on either side)
// where x is never nil, for the reason checkNilCoalescing refuses x ?? y:
// a text the deal does not have is "", a date unset, an amount 0, never
// nil. `deal.company.email != nil ? deal.company.email : deal.company.name`
// is always its first branch (the name came out "" for a company without
// an email), and a `skip: item.sku == nil` never skipped; both loaded. The
// message says what to compare with instead: "" for a text, is_set() for
// a date, 0 for a number. A value that may be nil (nilable: first(),
// find(), get(), a let variable, a list) is compared with nil as before.
func (p *parser) checkNilComparisons(n *yaml.Node, key, src string, root ast.Node) {
	declared := map[string]bool{}
	negated := map[ast.Node]bool{} // a _dec_equal that is a != (under not)
	walkAll(root, func(node ast.Node) {
		switch x := node.(type) {
		case *ast.VariableDeclaratorNode:
			declared[x.Name] = true
		case *ast.UnaryNode:
			if x.Operator == "not" && isCallOf(x.Node, "_dec_equal") {
				negated[x.Node] = true
			}
		}
	})
	lets := func(name string) bool { return declared[name] }
	runes := []rune(src)
	walkAll(root, func(node ast.Node) {
		// x == nil, or the call a comparison that may meet a decimal
		// becomes (decimalEquality), nil being of no known type.
		var left, right ast.Node
		var op string
		var at ast.Node = node
		switch x := node.(type) {
		case *ast.BinaryNode:
			left, right, op = x.Left, x.Right, x.Operator
		case *ast.CallNode:
			if !isCallOf(x, "_dec_equal") || len(x.Arguments) != 2 || negated[x] {
				return
			}
			left, right, op = x.Arguments[0], x.Arguments[1], "=="
		case *ast.UnaryNode:
			if x.Operator != "not" || !isCallOf(x.Node, "_dec_equal") {
				return
			}
			call := x.Node.(*ast.CallNode)
			if len(call.Arguments) != 2 {
				return
			}
			left, right, op = call.Arguments[0], call.Arguments[1], "!="
		default:
			return
		}
		if op != "==" && op != "!=" {
			return
		}
		value := left
		if _, isNil := left.(*ast.NilNode); isNil {
			value = right
		} else if _, isNil := right.(*ast.NilNode); !isNil {
			return
		}
		if _, isNil := value.(*ast.NilNode); isNil || value.Type() == nil || nilable(value, lets) {
			return
		}
		text := nodeText(runes, value)
		always := "always false"
		if op == "!=" {
			always = "always true"
		}
		var what, fix string
		switch value.Type() {
		case stringType:
			what = `a text, "" where the deal has none`
			fix = fmt.Sprintf(`compare with "" instead: %s %s ""`, text, op)
		case dateType, momentType:
			what = "a date, unset where the deal has none"
			if value.Type() == momentType {
				what = "a moment, unset where the deal has none"
			}
			test := "is_set(" + text + ")"
			if op == "==" {
				test = "!" + test
			}
			fix = "test it with is_set() instead: " + test
		case decimalType, intType:
			what = "a decimal, 0 where the deal has none"
			if value.Type() == intType {
				what = "a whole number"
			}
			fix = fmt.Sprintf("compare with 0 instead, if that is what is meant: %s %s 0", text, op)
		case boolType:
			what = "a bool"
			fix = "test the bool itself"
		default:
			what = typeNames.Replace(value.Type().String())
			fix = "test the value with a comparison of its own type"
		}
		line, col := position(src, at.Location().From)
		msg := fmt.Sprintf("%s nil is %s here: %s is never nil (%s); %s", op, always, text, what, fix)
		if strings.Contains(text, "raw?.") {
			// deal.raw?.x: nil for a deal without any raw field only.
			msg = fmt.Sprintf("%s nil here tells only whether the deal has any raw field (%s is nil for a deal without any, else %s); %s", op, text, what, fix)
		}
		p.exprProblem(n, key, src, line, col, msg)
	})
}
