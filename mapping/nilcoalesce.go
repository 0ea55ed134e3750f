package mapping

import (
	"fmt"
	"reflect"
	"strings"
	"unicode"

	"github.com/expr-lang/expr/ast"
	yaml "go.yaml.in/yaml/v3"
)

// checkNilCoalescing refuses a `??` whose left side is never nil: ?? gives
// its right side only when the left is nil, and the values a mapping reads
// are not: a text the deal does not have is "" (deal.company.name, a raw
// field deal.raw["po"]), a date unset, an amount 0. `deal.company.name ??
// deal.name` gave "" for every deal without a company, never the deal's
// name, and loaded. ?? does fall back where expr gives nil: first(),
// last(), find() and findLast() of a list without such an element, get()
// of a map without the key, what ?. reads from those, a list the deal does
// not have (deal.line_items); those load as before. In a chain (a ?? b ??
// c), the first operand that is never nil is named: the ?? after it never
// falls back. Where the operands are texts or dates, the message gives
// coalesce of them, which takes the first that is not blank (or set).
func (p *parser) checkNilCoalescing(n *yaml.Node, key, src string, root ast.Node) {
	declared := map[string]bool{}
	lets := func(name string) bool { return declared[name] }
	inner := map[ast.Node]bool{} // a ?? that is the left side of another
	var chains []*ast.BinaryNode
	walkAll(root, func(node ast.Node) {
		switch x := node.(type) {
		case *ast.VariableDeclaratorNode:
			declared[x.Name] = true
		case *ast.BinaryNode:
			if x.Operator != "??" {
				return
			}
			chains = append(chains, x)
			if l, ok := x.Left.(*ast.BinaryNode); ok && l.Operator == "??" {
				inner[l] = true
			}
		}
	})
	runes := []rune(src)
	for _, outer := range chains {
		if inner[outer] {
			continue
		}
		// The operands of a ?? b ?? c, which expr reads as (a ?? b) ?? c,
		// and the ?? after each but the last.
		var operands []ast.Node
		var ops []*ast.BinaryNode
		for b := outer; ; {
			operands = append([]ast.Node{b.Right}, operands...)
			ops = append([]*ast.BinaryNode{b}, ops...)
			l, ok := b.Left.(*ast.BinaryNode)
			if !ok || l.Operator != "??" {
				operands = append([]ast.Node{b.Left}, operands...)
				break
			}
			b = l
		}
		for i, op := range ops {
			left := operands[i]
			if nilable(left, lets) {
				continue
			}
			what := typeNames.Replace(left.Type().String())
			switch left.Type() {
			case stringType:
				what = `a text, "" where the deal has none`
			case dateType:
				what = "a date, unset where the deal has none"
			case decimalType:
				what = "a decimal, 0 where the deal has none"
			case intType:
				what = "a whole number"
			case boolType:
				what = "a bool"
			}
			texts := make([]string, len(operands))
			same := true
			for j, o := range operands {
				texts[j] = nodeText(runes, o)
				same = same && o.Type() == left.Type()
			}
			fix := "test the value with a condition instead (c ? a : b)"
			switch {
			case same && left.Type() == stringType:
				fix = fmt.Sprintf("write coalesce(%s), which gives the first of them that is not blank", strings.Join(texts, ", "))
			case same && left.Type() == dateType:
				fix = fmt.Sprintf("write coalesce(%s), which gives the first of them that is set", strings.Join(texts, ", "))
			}
			line, col := position(src, op.Location().From)
			msg := fmt.Sprintf("?? never falls back here: %s is never nil (%s), and ?? gives its right side only for nil; %s", texts[i], what, fix)
			if strings.Contains(texts[i], "?.") {
				// deal.raw?.x: nil for a deal without any raw field only.
				msg = fmt.Sprintf("?? falls back here only for a deal without any raw field: %s is %s, and ?? gives its right side only for nil; %s", texts[i], what, fix)
			}
			p.exprProblem(n, key, src, line, col, msg)
			break
		}
	}
}

// nilable says whether the value of n may be nil as the expression runs:
// it may unless its type is one that is never nil (a text, a number, a
// bool, a date, a decimal: no list, map or value of unknown type) and it
// is read from the deal, the event, the defaults, the invoice or the item,
// written as a literal, or computed by an operator or a function that
// gives such a value. A value of a let variable (lets says which names
// are), of first(),
// last(), find(), findLast() or get(), or read with ?. from one that may
// be nil, may be. A map of the environment (deal.raw) is taken as never
// nil: a key it does not have reads "" (with ?. too, unless the deal has
// no raw field at all).
func nilable(n ast.Node, lets func(name string) bool) bool {
	kindNilable := true
	if t := n.Type(); t != nil {
		switch t.Kind() {
		case reflect.Interface, reflect.Map, reflect.Slice, reflect.Array, reflect.Pointer, reflect.Func, reflect.Chan, reflect.UnsafePointer:
		default:
			kindNilable = false
		}
	}
	switch x := n.(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.UnaryNode:
		return kindNilable
	case *ast.ConstantNode:
		return x.Value == nil || kindNilable
	case *ast.IdentifierNode:
		return lets(x.Value) || kindNilable
	case *ast.PointerNode:
		return kindNilable // an element of a list of such values
	case *ast.MemberNode:
		if nilable(x.Node, lets) && !environmentMap(x.Node, lets) {
			return true
		}
		return kindNilable
	case *ast.ChainNode:
		return nilable(x.Node, lets)
	case *ast.CallNode:
		// The mapping's functions give values of their declared types.
		_, ok := x.Callee.(*ast.IdentifierNode)
		return !ok || kindNilable
	case *ast.BuiltinNode:
		return !neverNilBuiltins[x.Name] || kindNilable
	case *ast.ConditionalNode:
		return nilable(x.Exp1, lets) || nilable(x.Exp2, lets)
	case *ast.BinaryNode:
		if x.Operator == "??" {
			return nilable(x.Left, lets) && nilable(x.Right, lets)
		}
		return kindNilable
	case *ast.VariableDeclaratorNode:
		return nilable(x.Expr, func(name string) bool { return name == x.Name || lets(name) })
	}
	return true
}

// environmentMap says whether n is a map read from the environment
// (deal.raw), without ?. or a let variable on the way.
func environmentMap(n ast.Node, lets func(name string) bool) bool {
	if t := n.Type(); t == nil || t.Kind() != reflect.Map {
		return false
	}
	for {
		switch x := n.(type) {
		case *ast.IdentifierNode:
			return !lets(x.Value)
		case *ast.MemberNode:
			if x.Optional {
				return false
			}
			n = x.Node
		default:
			return false
		}
	}
}

// neverNilBuiltins are expr's built-ins that give a value of their type,
// never nil (first, last, find, findLast, get and the like do).
var neverNilBuiltins = map[string]bool{
	"len": true, "type": true, "abs": true, "ceil": true, "floor": true, "round": true, "int": true, "string": true,
	"trim": true, "trimPrefix": true, "trimSuffix": true, "upper": true, "lower": true, "replace": true, "repeat": true,
	"join": true, "indexOf": true, "lastIndexOf": true, "hasPrefix": true, "hasSuffix": true, "toJSON": true,
	"toBase64": true, "all": true, "none": true, "any": true, "one": true, "findIndex": true, "findLastIndex": true,
	"count": true,
}

// nodeText is the text of src (as runes) that writes n (nodeSpan), or n
// printed when that fails.
func nodeText(src []rune, n ast.Node) string {
	from, to, ok := nodeSpan(src, n)
	if !ok {
		return n.String()
	}
	return string(src[from:to])
}

// nodeSpan is where the text of src (as runes) that writes n starts and
// ends: from the first to the last position of its nodes, widened to the
// brackets and parentheses it opens or closes (expr's positions leave out
// the closing ones) and to a let's keyword, without spaces or parentheses
// around the whole (a divisor (a - 1) is a - 1, as it is for a / (a - 1)
// and a / (c ? a : b) alike). A conditional's own position, the token
// after it, is left out. ok is false when that fails.
func nodeSpan(src []rune, n ast.Node) (from, to int, ok bool) {
	from, to = -1, -1
	walkAll(n, func(node ast.Node) {
		if _, cond := node.(*ast.ConditionalNode); cond {
			return // at the token after its last branch: ")", "," or the end
		}
		loc := node.Location()
		if loc.From == 0 && loc.To == 0 {
			return // a node a patch made
		}
		start := loc.From
		if _, let := node.(*ast.VariableDeclaratorNode); let {
			start = letKeyword(src, start) // at its name
		}
		if !ok || start < from {
			from = start
		}
		if !ok || loc.To > to {
			to = loc.To
		}
		ok = true
	})
	if !ok || from < 0 || to > len(src) || from >= to {
		return 0, 0, false
	}
	for range len(src) {
		open, close := unbalanced(src[from:to])
		switch {
		case open == 0 && close == 0:
			return trimEnclosing(src, from, to)
		case close > 0 && from > 0:
			from--
		case open > 0 && to < len(src):
			to++
		default:
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// letKeyword is where the let that declares the name at offset from in
// src starts, or from when no let is written before it.
func letKeyword(src []rune, from int) int {
	i := from
	for i > 0 && unicode.IsSpace(src[i-1]) {
		i--
	}
	if i >= 3 && string(src[i-3:i]) == "let" && (i == 3 || !isNameRune(src[i-4])) {
		return i - 3
	}
	return from
}

func isNameRune(r rune) bool {
	return r == '_' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// trimEnclosing narrows the balanced span src[from:to] by the spaces and
// the parentheses around all of it: (a - 1) is a - 1, (a) - (b) stays.
func trimEnclosing(src []rune, from, to int) (int, int, bool) {
	for {
		for from < to && unicode.IsSpace(src[from]) {
			from++
		}
		for to > from && unicode.IsSpace(src[to-1]) {
			to--
		}
		if to-from < 2 || src[from] != '(' || src[to-1] != ')' {
			return from, to, from < to
		}
		if open, close := unbalanced(src[from+1 : to-1]); open != 0 || close != 0 {
			return from, to, true // (a) - (b)
		}
		from, to = from+1, to-1
	}
}

// maxShownText is the longest text of an expression a message shows
// whole: a longer one is shortened (shortText), or named x where it is
// part of an expression to write.
const maxShownText = 80

// shortText is s, or its start and "…" when it is longer than
// maxShownText.
func shortText(s string) string {
	r := []rune(s)
	if len(r) <= maxShownText {
		return s
	}
	return strings.TrimSpace(string(r[:maxShownText-1])) + "…"
}

// unbalanced counts the brackets and parentheses s leaves open and those
// it closes without opening them, outside quoted strings.
func unbalanced(s []rune) (open, closed int) {
	var quote rune
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == '\\':
			i++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '(' || c == '[':
			open++
		case c == ')' || c == ']':
			if open > 0 {
				open--
			} else {
				closed++
			}
		}
	}
	if quote != 0 {
		open++ // a string not closed: widen to its quote
	}
	return open, closed
}
