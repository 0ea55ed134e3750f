package mapping

import (
	"fmt"
	"reflect"
	"strconv"
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
	ast.Walk(&root, visitor(func(node ast.Node) {
		if b, ok := node.(*ast.BuiltinNode); ok && b.Name == "fromJSON" {
			what = "what fromJSON reads (a JSON number is a float, and +, -, * and / on one give a float; a JSON text stays a text)"
		}
	}))
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
	floatLiteralsReaching(tree.Node, letValues(tree.Node), func(f *ast.FloatNode) {
		line, col := position(src, f.Location().From)
		p.exprProblem(n, key, src, line, col, "a float written in the file can be this field's value, which needs a decimal: the deals that take it would fail the run"+floatLiteralAdvice(runes, f))
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
	seen := map[*ast.FloatNode]bool{}
	ast.Walk(&tree.Node, visitor(func(node ast.Node) {
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
			floatLiteralsReaching(c.Arguments[i], lets, func(f *ast.FloatNode) {
				if seen[f] {
					return
				}
				seen[f] = true
				line, col := position(src, f.Location().From)
				p.exprProblem(n, key, src, line, col, fmt.Sprintf("a float written in the file can be %s's argument, which takes a decimal: the deals that take it would fail the run", id.Value)+floatLiteralAdvice(runes, f))
			})
		}
	}))
}

// floatLiteralsReaching calls found with each float written in the
// file that can be the value of root: through a conditional's branches,
// either side of ??, a map or list literal indexed (only the entry a key
// or index written in the file reads), a let variable or a let's body.
func floatLiteralsReaching(root ast.Node, lets map[string]ast.Node, found func(*ast.FloatNode)) {
	seen := map[*ast.FloatNode]bool{}
	var reach func(node ast.Node, depth int)
	reach = func(node ast.Node, depth int) {
		if depth > maxNeverDecimalDepth {
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
		case *ast.ConditionalNode:
			reach(x.Exp1, depth+1)
			reach(x.Exp2, depth+1)
		case *ast.BinaryNode:
			if x.Operator == "??" {
				reach(x.Left, depth+1)
				reach(x.Right, depth+1)
			}
		case *ast.ChainNode:
			reach(x.Node, depth+1)
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
		case *ast.VariableDeclaratorNode:
			reach(x.Expr, depth+1)
		case *ast.SequenceNode:
			if len(x.Nodes) > 0 {
				reach(x.Nodes[len(x.Nodes)-1], depth+1)
			}
		case *ast.IdentifierNode:
			if v, ok := lets[x.Value]; ok {
				reach(v, depth+1)
			}
		case *ast.CallNode:
			if isCallOf(x, jsonDecArg) && len(x.Arguments) == 1 {
				reach(x.Arguments[0], depth+1) // jsonDecArgs' patch
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
