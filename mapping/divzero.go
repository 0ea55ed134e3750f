package mapping

import (
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/shopspring/decimal"
	yaml "go.yaml.in/yaml/v3"
)

// checkZeroDivisors refuses a division, or a remainder, by a literal zero
// (`deal.amount / 0`, `x / dec("0.00")`, `n % 0`): it would fail every
// run with "division by zero" (a whole-number division gives +Inf, no
// better), so it is a load error, where lint and
// `mapping test` show it. A divisor that is zero only for some deals is
// the run's error, with the file's position.
func (p *parser) checkZeroDivisors(n *yaml.Node, key, src string, root ast.Node) {
	ast.Walk(&root, visitor(func(node ast.Node) {
		var divisor ast.Node
		switch x := node.(type) {
		case *ast.BinaryNode:
			if x.Operator == "/" || x.Operator == "%" {
				divisor = x.Right
			}
		case *ast.CallNode:
			if (isCallOf(x, "_dec_div") || isCallOf(x, "_json_div")) && len(x.Arguments) == 2 {
				divisor = x.Arguments[1]
			}
		}
		if divisor == nil || !literalZero(divisor) {
			return
		}
		from, ok := startOf(divisor)
		if !ok {
			from = node.Location().From
		}
		line, col := position(src, from)
		p.exprProblem(n, key, src, line, col, "division by zero: the divisor is always 0, so every run would fail (or, for whole numbers, give +Inf); divide by a value that is not 0, or guard it, as in x == 0 ? 0 : y / x")
	}))
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
	ast.Walk(&root, visitor(func(node ast.Node) {
		var d ast.Node
		switch x := node.(type) {
		case *ast.BinaryNode:
			if x.Operator == "/" || x.Operator == "%" {
				d = x.Right
			}
		case *ast.CallNode:
			if (isCallOf(x, "_dec_div") || isCallOf(x, "_json_div")) && len(x.Arguments) == 2 {
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
	}))
	return out
}
