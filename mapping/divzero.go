package mapping

import (
	"reflect"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
	"github.com/shopspring/decimal"
	yaml "go.yaml.in/yaml/v3"
)

// checkZeroDivisors refuses a division, or a remainder, by a literal zero
// (`deal.amount / 0`, `x / dec("0.00")`, `n % 0`), or in amount_line by
// the number of line items (noLineItemsDivisor): it would fail every
// run with "division by zero", so it is a load error, where lint and
// `mapping test` show it. A divisor that is zero only for some deals is
// the run's error, with the file's position.
func (p *parser) checkZeroDivisors(n *yaml.Node, key, src string, root ast.Node) {
	walkAll(root, func(node ast.Node) {
		var divisor ast.Node
		switch x := node.(type) {
		case *ast.BinaryNode:
			if x.Operator == "/" || x.Operator == "%" {
				divisor = x.Right
			}
		case *ast.CallNode:
			if (isCallOf(x, "_dec_div") || isCallOf(x, "_json_div") || isCallOf(x, numDiv)) && len(x.Arguments) == 2 {
				divisor = x.Arguments[1]
			}
		}
		if divisor == nil {
			return
		}
		noItems := noLineItemsDivisor(key, root, node, divisor)
		if !noItems && !literalZero(divisor) {
			return
		}
		from, ok := startOf(divisor)
		if !ok {
			from = node.Location().From
		}
		line, col := position(src, from)
		if noItems {
			p.exprProblem(n, key, src, line, col, "division by zero: amount_line is the one line of a deal without line items, so len(deal.line_items) is always 0 here and "+
				"every deal it maps would fail; its unit_price is the deal's whole amount (deal.amount, with quantity 1), and a division among the line items belongs under invoice.lines")
			return
		}
		p.exprProblem(n, key, src, line, col, "division by zero: the divisor is always 0, so every run would fail; divide by a value that is not 0, or guard it, as in x == 0 ? 0 : y / x")
	})
}

// literalZero reports whether n is a zero written in the expression: 0,
// 0.0, dec(0) or dec("0.00"), or a constant expr folded to zero.
func literalZero(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.IntegerNode:
		return x.Value == 0
	case *ast.FloatNode:
		return x.Value == 0
	case *ast.ConstantNode:
		switch v := x.Value.(type) {
		case int:
			return v == 0
		case float64:
			return v == 0
		case decimal.Decimal:
			return v.IsZero()
		}
	case *ast.CallNode:
		if !isCallOf(x, "dec") || len(x.Arguments) != 1 {
			return false
		}
		if s, ok := x.Arguments[0].(*ast.StringNode); ok {
			d, err := decimal.NewFromString(strings.TrimSpace(s.Value))
			return err == nil && d.IsZero()
		}
		return literalZero(x.Arguments[0])
	}
	return false
}

// divisor is a division's divisor as the expression writes it (without
// parentheses around all of it; its start and "…" when longer than
// maxShownText), and where that text starts (a rune offset in the
// expression).
type divisor struct {
	text string
	from int
}

// divisorsOf are the divisors of the divisions and remainders of the
// compiled expression root (of source src), by the position of their
// operator, where a run-time error of the division is reported; nil for
// none.
func divisorsOf(src string, root ast.Node) map[int]divisor {
	var out map[int]divisor
	runes := []rune(src)
	walkAll(root, func(node ast.Node) {
		var d ast.Node
		switch x := node.(type) {
		case *ast.BinaryNode:
			if x.Operator == "/" || x.Operator == "%" {
				d = x.Right
			}
		case *ast.CallNode:
			if (isCallOf(x, "_dec_div") || isCallOf(x, "_json_div") || isCallOf(x, numDiv)) && len(x.Arguments) == 2 {
				d = x.Arguments[1]
			}
		}
		if d == nil {
			return
		}
		from, to, ok := nodeSpan(runes, d)
		if !ok {
			return
		}
		if out == nil {
			out = map[int]divisor{}
		}
		out[node.Location().From] = divisor{text: shortText(oneLine(string(runes[from:to]))), from: from}
	})
	return out
}

// numberDivision has a division of whole numbers or floats (types known
// at load) go through _num_div, which fails with "division by zero" when
// the divisor is 0, as a decimal's or a number read with fromJSON's
// does: expr gave +Inf or NaN, silently (`string(int(a) / int(b))` wrote
// "+Inf", `x / n >= 5 ? …` chose a branch by it, int() of it was the
// smallest whole number). A divisor written as a number other than 0
// stays expr's operator (its constants are folded). A division that
// jsonArithmetic takes (an operand read with fromJSON, or computed from
// one) is left to it, and a _num_div whose operand became one is turned
// back into its operator for it. It runs with the operator patches,
// repeatedly, and changes no type (a quotient is a float): it runs for a
// run's snapshot too.
type numberDivision struct{ applied bool }

// numDiv is numberDivision's function.
const numDiv = "_num_div"

func (p *numberDivision) Visit(node *ast.Node) {
	switch x := (*node).(type) {
	case *ast.BinaryNode:
		if x.Operator != "/" || !knownNumber(x.Left) || !knownNumber(x.Right) || jsonOperands(x.Left, x.Right) || nonzeroLiteral(x.Right) {
			return
		}
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: numDiv}, Arguments: []ast.Node{x.Left, x.Right}})
		p.applied = true
	case *ast.CallNode:
		if !isCallOf(x, numDiv) || len(x.Arguments) != 2 || !jsonOperands(x.Arguments[0], x.Arguments[1]) {
			return
		}
		ast.Patch(node, &ast.BinaryNode{Operator: "/", Left: x.Arguments[0], Right: x.Arguments[1]})
		p.applied = true
	}
}

// Reset and ShouldRepeat make expr run numberDivision with the operator
// patches, until none of them changes the tree.
func (p *numberDivision) Reset()             { p.applied = false }
func (p *numberDivision) ShouldRepeat() bool { return p.applied }

// knownNumber says whether n is typed, at load, as a whole number or a
// float.
func knownNumber(n ast.Node) bool {
	nt := n.Nature()
	if unknownType(nt) {
		return false
	}
	k := nt.Type.Kind()
	return k == reflect.Int || k == reflect.Float64
}

// nonzeroLiteral says whether n is a number written in the expression
// other than 0 (2, 0.5, -3).
func nonzeroLiteral(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.IntegerNode:
		return x.Value != 0
	case *ast.FloatNode:
		return x.Value != 0
	case *ast.UnaryNode:
		return (x.Operator == "-" || x.Operator == "+") && nonzeroLiteral(x.Node)
	}
	return false
}

// numberDivide is a / b of whole numbers or floats, as expr divides them
// (a float), or errDivZero where b is 0.
func numberDivide(a, b any) (any, error) {
	switch d := b.(type) {
	case int:
		if d == 0 {
			return nil, errDivZero
		}
	case float64:
		if d == 0 {
			return nil, errDivZero
		}
	}
	return runtime.Divide(a, b), nil
}

// numberDivisionOptions are numberDivision and _num_div.
func numberDivisionOptions() []expr.Option {
	return []expr.Option{
		expr.Patch(&numberDivision{}),
		expr.Function(numDiv, func(p ...any) (any, error) { return numberDivide(p[0], p[1]) }, new(func(any, any) float64)),
	}
}
