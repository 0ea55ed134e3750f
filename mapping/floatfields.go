package mapping

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	yaml "go.yaml.in/yaml/v3"
)

// checkJSONNumberFields refuses a decimal field (quantity, unit_price,
// discount, tax_rate) whose expression gives what fromJSON reads, or what
// +, -, * and / make of it: expr types it as known only at run time, so
// the field's type check lets it through, but it is never a decimal or a
// whole number (a JSON number is a float, and arithmetic on one a float;
// a JSON text stays a text), so it failed every run that evaluated it
// ("expression gave float64, but this field needs a decimal"). A value
// that may be a decimal for some deals (a conditional of such a number
// and a decimal) is left to the run, as before. Where the expression's
// type is known at load to be a float (3 / 2, 2 ** 3), the type check
// refuses it.
func (p *parser) checkJSONNumberFields(n *yaml.Node, key, src string, root ast.Node) {
	value := root
	for {
		if d, ok := value.(*ast.VariableDeclaratorNode); ok {
			value = d.Expr
			continue
		}
		break
	}
	lets := letValues(root)
	if !neverDecimal(value, lets, 0) {
		return
	}
	from, ok := startOf(value)
	if !ok {
		from = 0
	}
	text := nodeText([]rune(src), value)
	if utf8.RuneCountInString(text) > maxShownText {
		text = "x"
	}
	what := "a float"
	walkAll(root, func(node ast.Node) {
		if b, ok := node.(*ast.BuiltinNode); ok && b.Name == "fromJSON" {
			what = "what fromJSON reads (a JSON number is a float, and +, -, * and / on one give a float; a JSON text stays a text)"
		}
	})
	line, col := position(src, from)
	p.exprProblem(n, key, src, line, col, fmt.Sprintf("expression gives %s, never a decimal, so every run that maps this field would fail: "+
		"money never goes through floats; convert it exactly, dec(string(%s)), and round it where it needs to (round_to, round_currency)", what, text))
}

// maxNeverDecimalDepth bounds neverDecimal's descent through let variables.
const maxNeverDecimalDepth = 50

// neverDecimal says whether the value of n, of a type known only as the
// expression runs, is never a decimal or a whole number: what fromJSON
// reads (the call, a member or index of what it reads, a let variable
// holding it), a float, and +, -, *, / with one of those as an operand
// (a float, a text or an error, whatever the other), a unary minus of
// one, expr's own mean and median (of floats), and a conditional or ??
// whose every side is one.
func neverDecimal(n ast.Node, lets map[string]ast.Node, depth int) bool {
	if depth > maxNeverDecimalDepth {
		return false
	}
	if t := n.Type(); t != nil && t.Kind() == reflect.Float64 {
		return true
	}
	switch x := n.(type) {
	case *ast.BuiltinNode:
		// mean and median left to expr (decimalAggregates) are of floats,
		// and give one.
		return x.Name == "fromJSON" || x.Name == "mean" || x.Name == "median"
	case *ast.MemberNode:
		return fromJSONValue(x.Node, lets, depth+1)
	case *ast.ChainNode:
		return neverDecimal(x.Node, lets, depth+1)
	case *ast.IdentifierNode:
		v, ok := lets[x.Value]
		return ok && neverDecimal(v, lets, depth+1)
	case *ast.UnaryNode:
		return (x.Operator == "-" || x.Operator == "+") && neverDecimal(x.Node, lets, depth+1)
	case *ast.ConditionalNode:
		return neverDecimal(x.Exp1, lets, depth+1) && neverDecimal(x.Exp2, lets, depth+1)
	case *ast.BinaryNode:
		switch x.Operator {
		case "??":
			return neverDecimal(x.Left, lets, depth+1) && neverDecimal(x.Right, lets, depth+1)
		case "+", "-", "*", "/":
			return neverDecimal(x.Left, lets, depth+1) || neverDecimal(x.Right, lets, depth+1)
		}
	case *ast.CallNode:
		if isCallOf(x, numDiv) && len(x.Arguments) == 2 {
			return neverDecimal(x.Arguments[0], lets, depth+1) || neverDecimal(x.Arguments[1], lets, depth+1)
		}
		if op, ok := jsonOperatorOf(x); ok && len(x.Arguments) == 2 {
			if _, comparison := jsonComparisons[op]; comparison {
				return false
			}
			return neverDecimal(x.Arguments[0], lets, depth+1) || neverDecimal(x.Arguments[1], lets, depth+1)
		}
	case *ast.SequenceNode:
		return len(x.Nodes) > 0 && neverDecimal(x.Nodes[len(x.Nodes)-1], lets, depth+1)
	}
	return false
}

// fromJSONValue says whether n is what fromJSON reads, or a part of it.
func fromJSONValue(n ast.Node, lets map[string]ast.Node, depth int) bool {
	if depth > maxNeverDecimalDepth {
		return false
	}
	switch x := n.(type) {
	case *ast.BuiltinNode:
		return x.Name == "fromJSON"
	case *ast.MemberNode:
		return fromJSONValue(x.Node, lets, depth+1)
	case *ast.ChainNode:
		return fromJSONValue(x.Node, lets, depth+1)
	case *ast.IdentifierNode:
		v, ok := lets[x.Value]
		return ok && fromJSONValue(v, lets, depth+1)
	}
	return false
}

// checkFloatLiterals refuses, for a decimal field, a float written in
// the file that can be the field's value through a conditional's
// branches, either side of ??, a map or list literal's values indexed
// (`{"DE": 19, "CH": 8.1}[country]`; with a key or index written in the
// file, only the entry it reads), a let variable or a let's body: the
// expression's type shows only as it runs, so it loaded, and the deals
// that took the float failed ("expression gave float64"), the others
// mapped. Each such literal is a problem at its position, with the
// advice a bare float gets (dec("8.1")). It reads the tree before expr
// folds its constants (a map of literals is one constant then).
func (p *parser) checkFloatLiterals(n *yaml.Node, key, src string, opts []expr.Option) {
	tree, _, err := parseChecked(src, opts)
	if err != nil {
		return
	}
	runes := []rune(src)
	floatLiteralsReaching(tree.Node, letValues(tree.Node), func(f ast.Node) {
		line, col := position(src, floatFrom(f))
		p.exprProblem(n, key, src, line, col, floatWords(f)+" can be this field's value, which needs a decimal: the deals that take it would fail the run"+floatAdvice(runes, f))
	})
}

// decimalArgs are the functions that take a decimal, by the arguments
// that are one (round_to's places is a whole number).
var decimalArgs = map[string][]int{
	"percent": {0, 1}, "round_to": {0}, "round_currency": {0}, "min_dec": {0, 1}, "max_dec": {0, 1},
}

// checkFloatArgLiterals refuses, in any field, a float written in the
// file that can be a decimal argument of percent, round_to,
// round_currency, min_dec or max_dec through a conditional's branches,
// ??, an indexed map or list literal or a let, as checkFloatLiterals
// does for a decimal field's value: `percent(x, c ? 2.5 : dec("3"))`
// loaded and computed with the float for the deals that took it, where
// percent(x, 2.5) is a load error.
func (p *parser) checkFloatArgLiterals(n *yaml.Node, key, src string, opts []expr.Option) {
	tree, _, err := parseChecked(src, opts)
	if err != nil {
		return
	}
	runes := []rune(src)
	lets := letValues(tree.Node)
	seen := map[ast.Node]bool{}
	walkAll(tree.Node, func(node ast.Node) {
		c, ok := node.(*ast.CallNode)
		if !ok {
			return
		}
		id, ok := c.Callee.(*ast.IdentifierNode)
		if !ok {
			return
		}
		for _, i := range decimalArgs[id.Value] {
			if i >= len(c.Arguments) {
				continue
			}
			floatLiteralsReaching(c.Arguments[i], lets, func(f ast.Node) {
				if seen[f] {
					return
				}
				seen[f] = true
				line, col := position(src, floatFrom(f))
				p.exprProblem(n, key, src, line, col, fmt.Sprintf("%s can be %s's argument, which takes a decimal: the deals that take it would fail the run", floatWords(f), id.Value)+floatAdvice(runes, f))
			})
		}
	})
}

// floatLiteralsReaching calls found with each float written in the
// file that can be the value of root, and each power of whole numbers
// (2 ** 3, a float in expr): through a conditional's branches,
// either side of ??, a map or list literal indexed (only the entry a key
// or index written in the file reads), a let variable or a let's body.
func floatLiteralsReaching(root ast.Node, lets map[string]ast.Node, found func(ast.Node)) {
	seen := map[ast.Node]bool{}
	var reach func(node ast.Node, depth int)
	reach = func(node ast.Node, depth int) {
		if depth > maxNeverDecimalDepth {
			return
		}
		if wholePower(node) {
			if !seen[node] {
				seen[node] = true
				found(node)
			}
			return
		}
		switch x := node.(type) {
		case *ast.FloatNode:
			if seen[x] {
				return
			}
			seen[x] = true
			found(x)
		case *ast.UnaryNode:
			if x.Operator == "-" || x.Operator == "+" {
				reach(x.Node, depth+1)
			}
		case *ast.MemberNode:
			switch c := x.Node.(type) {
			case *ast.MapNode:
				k, constant := x.Property.(*ast.StringNode)
				for _, pair := range c.Pairs {
					pn, ok := pair.(*ast.PairNode)
					if !ok {
						continue
					}
					if constant {
						if pk, ok := pn.Key.(*ast.StringNode); ok && pk.Value != k.Value {
							continue // an entry the key written in the file does not read
						}
					}
					reach(pn.Value, depth+1)
				}
			case *ast.ArrayNode:
				i, constant := constantIndex(x.Property)
				if constant && i < 0 {
					i += len(c.Nodes)
				}
				for j, e := range c.Nodes {
					if constant && j != i {
						continue
					}
					reach(e, depth+1)
				}
			}
		case *ast.CallNode:
			if isCallOf(x, jsonDecArg) && len(x.Arguments) == 1 {
				reach(x.Arguments[0], depth+1) // jsonDecArgs' patch
			}
		default:
			for _, v := range valueSources(x, lets) {
				reach(v, depth+1)
			}
		}
	}
	reach(root, 0)
}

// constantIndex is the list index written in the file at n (2, -1).
func constantIndex(n ast.Node) (int, bool) {
	switch x := n.(type) {
	case *ast.IntegerNode:
		return x.Value, true
	case *ast.UnaryNode:
		if i, ok := x.Node.(*ast.IntegerNode); ok && x.Operator == "-" {
			return -i.Value, true
		}
	}
	return 0, false
}

// wholePower says whether n is ** or ^ of two whole numbers, which expr
// computes with floats and types a float (2 ** 3 is 8.0).
func wholePower(n ast.Node) bool {
	b, ok := n.(*ast.BinaryNode)
	return ok && (b.Operator == "**" || b.Operator == "^") && b.Left.Type() == intType && b.Right.Type() == intType
}

// floatFrom is where the float f (a literal, or a power of whole
// numbers) starts in its expression.
func floatFrom(f ast.Node) int {
	if from, ok := startOf(f); ok {
		return from
	}
	return f.Location().From
}

// floatWords names the float f in a problem: a literal, or a power of
// whole numbers.
func floatWords(f ast.Node) string {
	if _, ok := f.(*ast.FloatNode); ok {
		return "a float written in the file"
	}
	return "a power of whole numbers, which expr computes as a float,"
}

// floatAdvice is floatLiteralAdvice for a float literal, and for a power
// of whole numbers its base as a decimal: dec(2) ** 3 for 2 ** 3, which
// is computed exactly (decimalPower).
func floatAdvice(src []rune, f ast.Node) string {
	if l, ok := f.(*ast.FloatNode); ok {
		return floatLiteralAdvice(src, l)
	}
	b := f.(*ast.BinaryNode)
	base, left, right := nodeText(src, b.Left), operandText(src, b.Left), operandText(src, b.Right)
	return fmt.Sprintf(": money never goes through floats, write dec(%s) %s %s instead of %s %s %s, which is computed exactly",
		base, b.Operator, right, left, b.Operator, right)
}

// operandText is the text of the operand n of an operator, in
// parentheses where it is an operation itself.
func operandText(src []rune, n ast.Node) string {
	switch n.(type) {
	case *ast.BinaryNode, *ast.UnaryNode, *ast.ConditionalNode:
		return "(" + nodeText(src, n) + ")"
	}
	return nodeText(src, n)
}

// floatLiteralAdvice is what to write instead of the float literal f of
// the expression src: dec of its digits as written (dec("1.5") for 1.5,
// dec("1000") for 1e3).
func floatLiteralAdvice(src []rune, f *ast.FloatNode) string {
	loc := f.Location()
	written := strconv.FormatFloat(f.Value, 'f', -1, 64)
	if loc.From >= 0 && loc.From < loc.To && loc.To <= len(src) {
		written = string(src[loc.From:loc.To])
	}
	digits := written
	if !plainDecimalRE.MatchString(digits) {
		digits = strconv.FormatFloat(f.Value, 'f', -1, 64)
	}
	return fmt.Sprintf(`: money never goes through floats, write dec(%q) instead of %s`, digits, written)
}

// checkLaunderedFloats refuses, in any field, a float known at load to
// be one (a float literal, arithmetic on one, a division or a power of
// whole numbers) that string() writes and dec() reads: string() writes
// the float's binary approximation, which dec() takes as it is, so
// dec(string(0.07 * 100)) was 7.000000000000001, silently, where
// dec(0.07 * 100) is refused. It reaches dec() through a conditional's
// branches, ??, trim(), a let variable or a let's body; a number read
// with fromJSON (dec(string(x)), the way to convert one) and arithmetic
// on it (computed as the number its text says: jsonArithmetic) are not
// such floats, and dec(string(n)) of a whole number is exact.
func (p *parser) checkLaunderedFloats(n *yaml.Node, key, src string, opts []expr.Option) {
	tree, _, err := parseChecked(src, opts)
	if err != nil {
		return
	}
	runes := []rune(src)
	lets := letValues(tree.Node)
	seen := map[ast.Node]bool{}
	walkAll(tree.Node, func(node ast.Node) {
		c, ok := node.(*ast.CallNode)
		if !ok || !isCallOf(c, "dec") || len(c.Arguments) != 1 {
			return
		}
		textsReaching(c.Arguments[0], lets, func(s *ast.BuiltinNode) {
			arg := s.Arguments[0]
			if isCallOf(arg, "_nil_text") || isCallOf(arg, "_no_func") {
				arg = arg.(*ast.CallNode).Arguments[0]
			}
			if seen[arg] || !staticFloat(arg, lets) {
				return
			}
			seen[arg] = true
			from, ok := startOf(s)
			if !ok {
				from = s.Location().From
			}
			line, col := position(src, from)
			written := nodeText(runes, arg)
			advice := `: money never goes through floats; compute with decimals, e.g. dec("19.5") for 19.5`
			if f, ok := arg.(*ast.FloatNode); ok {
				advice = floatLiteralAdvice(runes, f)
				advice = strings.Replace(advice, "instead of "+written, "instead of dec(string("+written+"))", 1)
			} else if h, _, ok := floatHint(written, opts); ok {
				advice = h
			} else if floatPowerIn(arg, lets, 0) {
				advice = ": ** and ^ compute with floats on a number read with fromJSON; convert the number first and raise the decimal, exactly: dec(string(x)) ** 2"
			}
			p.exprProblem(n, key, src, line, col, fmt.Sprintf("%s is a float, and string() writes a float's binary approximation, which dec() reads as it is (dec(string(0.07 * 100)) is 7.000000000000001)%s",
				written, advice))
		})
	})
}

// textsReaching calls found with each string() call whose text can be the
// value of root: root itself, a conditional's branches, either side of
// ??, trim()'s argument, a let variable or a let's body.
func textsReaching(root ast.Node, lets map[string]ast.Node, found func(*ast.BuiltinNode)) {
	var reach func(node ast.Node, depth int)
	reach = func(node ast.Node, depth int) {
		if depth > maxNeverDecimalDepth {
			return
		}
		switch x := node.(type) {
		case *ast.BuiltinNode:
			switch {
			case x.Name == "string" && len(x.Arguments) == 1:
				found(x)
			case x.Name == "trim" && len(x.Arguments) >= 1:
				reach(x.Arguments[0], depth+1)
			}
		default:
			for _, v := range valueSources(x, lets) {
				reach(v, depth+1)
			}
		}
	}
	reach(root, 0)
}

// valueSources are the nodes whose value n passes on as it is: a
// conditional's branches, either side of ??, a chain's node, a let's
// body (the value of the expression after it), the last of a sequence,
// and a let variable's value. None for other nodes.
func valueSources(n ast.Node, lets map[string]ast.Node) []ast.Node {
	switch x := n.(type) {
	case *ast.ConditionalNode:
		return []ast.Node{x.Exp1, x.Exp2}
	case *ast.BinaryNode:
		if x.Operator == "??" {
			return []ast.Node{x.Left, x.Right}
		}
	case *ast.ChainNode:
		return []ast.Node{x.Node}
	case *ast.VariableDeclaratorNode:
		return []ast.Node{x.Expr}
	case *ast.SequenceNode:
		if len(x.Nodes) > 0 {
			return []ast.Node{x.Nodes[len(x.Nodes)-1]}
		}
	case *ast.IdentifierNode:
		if v, ok := lets[x.Value]; ok {
			return []ast.Node{v}
		}
	}
	return nil
}

// staticFloat says whether n is a float known at load to be one: typed a
// float, and computed from nothing fromJSON reads (its numbers, and
// arithmetic on them, are computed as the numbers their text says).
func staticFloat(n ast.Node, lets map[string]ast.Node) bool {
	if t := n.Type(); t == nil || t.Kind() != reflect.Float64 {
		return false
	}
	var fromJSON func(node ast.Node, depth int) bool
	fromJSON = func(node ast.Node, depth int) bool {
		if depth > maxNeverDecimalDepth {
			return true // unsure: left to the run
		}
		found := false
		walkAll(node, func(x ast.Node) {
			switch y := x.(type) {
			case *ast.BuiltinNode:
				found = found || y.Name == "fromJSON"
			case *ast.CallNode:
				found = found || isJSONArith(y)
			case *ast.IdentifierNode:
				if v, ok := lets[y.Value]; ok && !found {
					found = fromJSON(v, depth+1)
				}
			}
		})
		return found
	}
	return floatPowerIn(n, lets, 0) || !fromJSON(n, 0)
}

// floatPowerIn says whether the value of n is computed through ** or ^
// of numbers (a decimal's are decimalPower's calls): expr computes it
// with floats whatever its operands, a number read with fromJSON too
// (fromJSON(x)["rate"] ** 2 is 0.004900000000000001 for 0.07), which
// jsonArithmetic leaves to it. Through arithmetic, a conditional's
// branches, ?? and a let variable.
func floatPowerIn(n ast.Node, lets map[string]ast.Node, depth int) bool {
	if depth > maxNeverDecimalDepth {
		return false
	}
	switch x := n.(type) {
	case *ast.BinaryNode:
		switch x.Operator {
		case "**", "^":
			return true
		case "+", "-", "*", "/", "%", "??":
			return floatPowerIn(x.Left, lets, depth+1) || floatPowerIn(x.Right, lets, depth+1)
		}
	case *ast.UnaryNode:
		return floatPowerIn(x.Node, lets, depth+1)
	case *ast.ConditionalNode:
		return floatPowerIn(x.Exp1, lets, depth+1) || floatPowerIn(x.Exp2, lets, depth+1)
	case *ast.CallNode:
		if isJSONArith(x) || isCallOf(x, numDiv) {
			for _, a := range x.Arguments {
				if floatPowerIn(a, lets, depth+1) {
					return true
				}
			}
		}
	case *ast.ChainNode:
		return floatPowerIn(x.Node, lets, depth+1)
	case *ast.IdentifierNode:
		if v, ok := lets[x.Value]; ok {
			return floatPowerIn(v, lets, depth+1)
		}
	}
	return false
}
