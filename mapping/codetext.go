package mapping

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	exprparser "github.com/expr-lang/expr/parser"
)

// A text field's value written without quotes is an expression, so a code
// such as 0400, 4000-10 or DE-VAT19 is read as a number, arithmetic or
// names. The hints here say to quote the whole value as a text, not to
// convert it: string(0400) gives "400" and string(4000-10) "3990".

// numberTextHint is the hint for a text field whose expression src gives
// a number and is made of number literals only (arithmetic of them
// included): to write the value as a text. ok is false otherwise (an
// expression that reads the deal is converted with string(...)).
func numberTextHint(src string) (hint string, ok bool) {
	text := strings.TrimSpace(src)
	tree, err := exprparser.Parse(text)
	if err != nil || !onlyNumberLiterals(tree.Node) {
		return "", false
	}
	hint = fmt.Sprintf(`: for the text %s, write it in quotes inside the YAML value: '"%s"'`, text, text)
	if v, err := expr.Eval(text, nil); err == nil && fmt.Sprint(v) != text {
		hint += fmt.Sprintf(` (string(%s) gives the number, "%v")`, text, v)
	}
	return hint, true
}

// onlyNumberLiterals is whether n is a number literal, or arithmetic or a
// sign of them.
func onlyNumberLiterals(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		return true
	case *ast.UnaryNode:
		return (x.Operator == "-" || x.Operator == "+") && onlyNumberLiterals(x.Node)
	case *ast.BinaryNode:
		switch x.Operator {
		case "+", "-", "*", "/", "%", "**", "^":
			return onlyNumberLiterals(x.Left) && onlyNumberLiterals(x.Right)
		}
	}
	return false
}

var (
	// codeRE is a value that looks like a code: letters and digits,
	// joined by - . / _ (DE-VAT19, MISC-1, PRO.ANNUAL).
	codeRE = regexp.MustCompile(`^[A-Za-z0-9]+(?:[-./_][A-Za-z0-9]+)*$`)
	// pathRE is a value that reads as names, as deal.company.name does:
	// lower case, joined by dots.
	pathRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*$`)
)

// codeText is src, trimmed, if it looks like a code written without
// quotes rather than an expression; "" otherwise.
func codeText(src string) string {
	text := strings.TrimSpace(src)
	if !codeRE.MatchString(text) || pathRE.MatchString(text) {
		return ""
	}
	return text
}
