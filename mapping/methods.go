package mapping

import (
	"fmt"
	"reflect"

	"github.com/expr-lang/expr/ast"
	yaml "go.yaml.in/yaml/v3"
)

// checkMethods reports every method of a value an expression reaches:
// expr lets an expression call the Go methods of the values it sees
// (deal.amount.InexactFloat64(), deal.close_date.Time().Local()), which
// would bring floats and the host's time zone into a mapping. Only the
// functions of the language are callable: a call of a member (x.m()), a
// method taken as a value (x.m), and a call of a variable (let f = …;
// f()) are refused, with the function to use instead where there is one.
// A name read from a value whose type shows only as the expression runs
// is refused only where it is called (x.Time(), as every call of a
// member): uncalled, it is the key of a map more often than a method
// (fromJSON(deal.raw["meta"])["Time"]); where it is a method, the run
// fails on the function rather than write its address (funcs.go).
func (p *parser) checkMethods(n *yaml.Node, key, src string, root ast.Node) {
	vars := map[string]bool{}
	walkAll(root, func(node ast.Node) {
		if v, ok := node.(*ast.VariableDeclaratorNode); ok {
			vars[v.Name] = true
		}
	})
	at := map[int]bool{} // one problem per position: x.m() is a call and a member
	report := func(where ast.Node, msg string) {
		from := where.Location().From
		if at[from] {
			return
		}
		at[from] = true
		line, col := position(src, from)
		p.exprProblem(n, key, src, line, col, msg)
	}
	walkAll(root, func(node ast.Node) {
		switch x := node.(type) {
		case *ast.CallNode:
			switch c := x.Callee.(type) {
			case *ast.IdentifierNode:
				if vars[c.Value] {
					report(x, fmt.Sprintf("%s is a variable: only the mapping language's functions can be called", c.Value))
				}
			case *ast.MemberNode:
				if id, ok := c.Node.(*ast.IdentifierNode); ok && id.Value == "$env" {
					return // $env.is_won(…): a function of the environment
				}
				if !afterMethod(c) {
					report(memberName(c), methodMessage(c))
				}
			default:
				report(x, "only the mapping language's functions can be called")
			}
		case *ast.MemberNode:
			if x.Nature().Method && !afterMethod(x) {
				report(memberName(x), methodMessage(x))
			}
		}
	})
}

// afterMethod says whether m is a member of what a method call gives
// (the Local of x.Time().Local()): that call is the one reported.
func afterMethod(m *ast.MemberNode) bool {
	call, ok := m.Node.(*ast.CallNode)
	if !ok {
		return false
	}
	callee, ok := call.Callee.(*ast.MemberNode)
	if !ok {
		return false
	}
	id, env := callee.Node.(*ast.IdentifierNode)
	return !env || id.Value != "$env"
}

// memberName is where the problem of a member access is shown: its name.
func memberName(m *ast.MemberNode) ast.Node {
	if m.Property.Location().From > m.Node.Location().From {
		return m.Property
	}
	return m
}

// methodMessage says that the member m is a method that a mapping cannot
// use, and what to write instead.
func methodMessage(m *ast.MemberNode) string {
	name := "it"
	if s, ok := m.Property.(*ast.StringNode); ok {
		name = s.Value
	}
	msg := name + " is a method of a value, and a mapping can only call its language's functions"
	typ := m.Node.Type()
	var instead string
	switch {
	case typ == decimalType:
		instead = decimalMethods[name]
	case typ == dateType:
		instead = dateMethods[name]
	case typ == momentType:
		instead = momentMethods[name]
	}
	if instead == "" {
		// The value's type shows only as the expression runs.
		for _, table := range []map[string]string{decimalMethods, dateMethods, momentMethods} {
			if s := table[name]; s != "" {
				instead = s
				break
			}
		}
	}
	if instead != "" {
		msg += ": " + instead
	}
	return msg
}

var (
	roundInstead = "write round_to(x, places) or round_currency(x, currency) (half away from zero)"
	cmpInstead   = "compare with == != < <= > >= (decimals compare by value)"
	noFloats     = "money never goes through floats or integers: compute with the decimal itself (+ - * /, round_to)"
)

// decimalMethods: what to write instead of a method of a decimal.
var decimalMethods = map[string]string{
	"Round": roundInstead, "RoundBank": roundInstead, "RoundCash": roundInstead, "RoundCeil": roundInstead,
	"RoundDown": roundInstead, "RoundFloor": roundInstead, "RoundUp": roundInstead, "Truncate": roundInstead,
	"Floor": roundInstead, "Ceil": roundInstead,
	"String": "write string(x)", "StringFixed": "write string(round_to(x, places))",
	"StringFixedBank": "write string(round_to(x, places))", "StringFixedCash": "write string(round_to(x, places))",
	"Add": "write x + y", "Sub": "write x - y", "Mul": "write x * y", "Div": "write x / y", "DivRound": "write round_to(x / y, places)",
	"Neg": "write -x", "Abs": "write max_dec(x, -x)", "Shift": `write x * dec("10") or x / 10`,
	"Equal": cmpInstead, "Equals": cmpInstead, "Cmp": cmpInstead, "Compare": cmpInstead,
	"LessThan": cmpInstead, "LessThanOrEqual": cmpInstead, "GreaterThan": cmpInstead, "GreaterThanOrEqual": cmpInstead,
	"IsZero": "write x == 0", "IsPositive": "write x > 0", "IsNegative": "write x < 0", "Sign": cmpInstead,
	"InexactFloat64": noFloats, "Float64": noFloats, "IntPart": noFloats, "BigInt": noFloats, "BigFloat": noFloats, "Rat": noFloats,
}

// dateMethods: what to write instead of a method of a date.
var dateMethods = map[string]string{
	"AddDays": "write add_days(d, n)",
	"String":  "write string(d)",
	"IsZero":  "write !is_set(d)",
	"Before":  "compare string(a) < string(b) (dates print as YYYY-MM-DD, which order as text)",
	"Time":    "a date is a calendar date, without a time or a zone: use add_days, end_of_month, string; date_in(m, zone) dates a moment",
}

// momentMethods: what to write instead of a method of a moment.
var momentMethods = map[string]string{
	"String": "write string(m)",
}

var momentType = reflect.TypeFor[Moment]()
