package mapping

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	exprparser "github.com/expr-lang/expr/parser"
)

// callArgRE is expr's message for an argument of a type no overload of a
// function takes (which ends in a space). The type it names is that of
// the last overload tried: "int" for percent's percentage, which takes a
// decimal too, and "decimal" for dec, which takes a text.
var callArgRE = regexp.MustCompile(`^cannot use (\S+) as argument \(type \S+\) to call (\w+)\s*$`)

// callArgTakes says what each argument of dealsync's overloaded
// functions takes, by function and argument index.
var callArgTakes = map[string][]string{
	"dec":     {"dec(x) takes a text, a whole number or a decimal"},
	"percent": {"percent(x, p) takes a decimal x", "percent(x, p) takes a whole number or a decimal p"},
}

// callArgMessage is expr's message msg about an argument of a type a
// function does not take, at from (in characters) in src, saying what
// dealsync's function takes and what to write instead; other messages
// as they are, without expr's trailing space.
func callArgMessage(msg, src string, from int) string {
	m := callArgRE.FindStringSubmatch(msg)
	if m == nil {
		return strings.TrimRight(msg, " ")
	}
	got, fn := m[1], m[2]
	takes, ok := callArgTakes[fn]
	if !ok {
		return strings.TrimRight(msg, " ")
	}
	tree, err := exprparser.Parse(src)
	if err != nil {
		return strings.TrimRight(msg, " ")
	}
	runes := []rune(src)
	index, written, digits := -1, "", ""
	walkAll(tree.Node, func(node ast.Node) {
		call, ok := node.(*ast.CallNode)
		if !ok || index >= 0 {
			return
		}
		if id, ok := call.Callee.(*ast.IdentifierNode); !ok || id.Value != fn {
			return
		}
		for i, a := range call.Arguments {
			if loc := a.Location(); loc.From == from {
				index = i
				if f, ok := a.(*ast.FloatNode); ok {
					digits = strconv.FormatFloat(f.Value, 'f', -1, 64)
					written = digits
					if loc.From >= 0 && loc.From < loc.To && loc.To <= len(runes) {
						written = string(runes[loc.From:loc.To])
					}
					if plainDecimalRE.MatchString(written) {
						digits = written
					}
				}
			}
		}
	})
	if index < 0 || index >= len(takes) {
		return strings.TrimRight(msg, " ")
	}
	out := fmt.Sprintf("%s, not %s", takes[index], typeNames.Replace(got))
	switch {
	case got == "float64" && written != "" && fn == "dec":
		out += fmt.Sprintf(`: money never goes through floats, write dec(%q) instead of dec(%s)`, digits, written)
	case got == "float64" && written != "":
		out += fmt.Sprintf(`: money never goes through floats, write dec(%q) instead of %s`, digits, written)
	case got == "float64":
		out += `: money never goes through floats; compute with decimals, e.g. dec("19.5") for 19.5`
	case got == "string" && fn != "dec":
		out += ": convert with dec(...)"
	}
	return out
}
