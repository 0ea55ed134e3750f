package mapping

import (
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker/nature"
	yaml "go.yaml.in/yaml/v3"
)

// A method of a value read without a call is a Go function: expr gives
// x.String (a method of a decimal, a date, a moment) as one. Where the
// type of x is known at load, checkMethods refuses it; where it shows only
// as the expression runs ((c ? deal.amount : 0).String), it loads, and
// string() of it was the function's address ("0x4a5b60"), written into
// the invoice. No function value reaches a mapped result or a text:
// string() and toJSON() of a value that may hold one go through _no_func
// (funcGuard), which fails the run on a function, and a field whose
// expression gives one is a mapping error (File.eval), both without the
// address. A value known at load to be a function (string(is_won)) is
// refused at load (checkFuncValues).

// funcValueWords says what a function value in a mapping is and what to
// write instead, for the errors of both.
const funcValueWords = "a function has no value to write (its text is a memory address); " +
	"a method of a value read without a call, such as x.String where the type of x shows only as the expression runs, is one: " +
	"values have no methods in a mapping, write string(x) for a value's text, and call the mapping's functions with their arguments"

// errFuncResult is the error of a field whose expression gave a function.
var errFuncResult = errors.New("expression gave a function, not a value: " + funcValueWords)

// funcGuard has string() and toJSON() of a value that may hold a function
// (of a type known only as the expression runs, or known to be or hold
// one) take it through _no_func, and string() of any other value that may
// be nil (mayBeNil) through _nil_text, which writes nil as "" and is
// string() as before otherwise. It runs for a run's snapshot too: it
// changes no type, so a snapshot compiles as before, and it fails only a
// run that would have written a function's address.
//
// Its walk visits a let's declaration after the expression that uses it:
// there, string() of the let variable (or of a value read from it) is
// guarded again with the names that expression declares taken for let
// variables, whatever the environment's names (let item = find(…) in a
// header field).
type funcGuard struct{}

func (funcGuard) Visit(node *ast.Node) {
	switch x := (*node).(type) {
	case *ast.BuiltinNode:
		guardText(x, noLets)
	case *ast.VariableDeclaratorNode:
		names := map[string]bool{x.Name: true}
		ast.Walk(&x.Expr, visitor(func(n ast.Node) {
			if d, ok := n.(*ast.VariableDeclaratorNode); ok {
				names[d.Name] = true
			}
		}))
		lets := func(name string) bool { return names[name] }
		ast.Walk(&x.Expr, visitor(func(n ast.Node) {
			if b, ok := n.(*ast.BuiltinNode); ok {
				guardText(b, lets)
			}
		}))
	}
}

// noLets is the lets of nilable where no let variable is in scope.
func noLets(string) bool { return false }

// guardText wraps the argument of string() or toJSON() b in _no_func
// where it may hold a function, else that of string() in _nil_text where
// it may be nil (mayBeNil, lets saying which names are let variables).
func guardText(b *ast.BuiltinNode, lets func(name string) bool) {
	if (b.Name != "string" && b.Name != "toJSON") || len(b.Arguments) != 1 {
		return
	}
	arg := b.Arguments[0]
	if isCallOf(arg, "_no_func") || isCallOf(arg, "_nil_text") {
		return
	}
	var wrap *ast.CallNode
	switch {
	case mayHoldFunc(arg.Nature()):
		wrap = &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_no_func"}, Arguments: []ast.Node{arg, &ast.StringNode{Value: b.Name}}}
	case b.Name == "string" && mayBeNil(arg, lets):
		wrap = &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_nil_text"}, Arguments: []ast.Node{arg}}
	default:
		return
	}
	wrap.SetLocation(arg.Location())
	b.Arguments[0] = wrap
}

// mayHoldFunc says whether a value of nature nt may be or hold a function.
func mayHoldFunc(nt *nature.Nature) bool {
	return unknownType(nt) || typeMayHoldFunc(nt.Type)
}

// funcTypes caches typeMayHoldFunc by type.
var funcTypes sync.Map // reflect.Type → bool

// typeMayHoldFunc says whether a value of type t may be a function or hold
// one (in an element, a key, a field, or an interface value, whose type
// shows only as it runs).
func typeMayHoldFunc(t reflect.Type) bool {
	if v, ok := funcTypes.Load(t); ok {
		return v.(bool)
	}
	may := typeHoldsFunc(t, map[reflect.Type]bool{})
	funcTypes.Store(t, may)
	return may
}

func typeHoldsFunc(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false // a recursive type: judged where it started
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Func, reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return typeHoldsFunc(t.Elem(), seen)
	case reflect.Map:
		return typeHoldsFunc(t.Key(), seen) || typeHoldsFunc(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if typeHoldsFunc(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// maxFuncDepth bounds holdsFunc's descent: values an expression makes
// (fromJSON, lists, maps) have no cycles, but nothing is walked forever.
const maxFuncDepth = 100

// holdsFunc says whether v is a function or holds one.
func holdsFunc(v any) bool {
	return v != nil && valueHoldsFunc(reflect.ValueOf(v), 0)
}

func valueHoldsFunc(v reflect.Value, depth int) bool {
	if !v.IsValid() || depth > maxFuncDepth || !typeMayHoldFunc(v.Type()) {
		return false
	}
	switch v.Kind() {
	case reflect.Func:
		return true
	case reflect.Interface, reflect.Pointer:
		return !v.IsNil() && valueHoldsFunc(v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if valueHoldsFunc(v.Index(i), depth+1) {
				return true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if valueHoldsFunc(it.Key(), depth+1) || valueHoldsFunc(it.Value(), depth+1) {
				return true
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if valueHoldsFunc(v.Field(i), depth+1) {
				return true
			}
		}
	}
	return false
}

// mayBeNil says whether the value of n may be nil as the expression runs,
// though its type is one that is not (a text of a line item that find()
// did not find, find(deal.line_items, .sku == "x")?.sku): what nilable
// says (lets saying which names are let variables), and what ?. reads
// (deal.raw?.po of a deal without any raw field).
func mayBeNil(n ast.Node, lets func(name string) bool) bool {
	if nilable(n, lets) {
		return true
	}
	for {
		switch x := n.(type) {
		case *ast.VariableDeclaratorNode:
			n = x.Expr
		case *ast.ChainNode:
			n = x.Node
		case *ast.MemberNode:
			if x.Optional {
				return true
			}
			n = x.Node
		default:
			return false
		}
	}
}

// funcOptions are funcGuard, _no_func(value, builtin) and _nil_text.
// _no_func gives the value, unless it is or holds a function; for
// string() of a value of a type known only as the run reads it, a float
// (fromJSON's number) as its floatText, nothing (a missing key, a JSON
// null, what find() or ?. did not find, a nil pointer) as "", and a JSON
// object an error saying to pick its part. _nil_text(value), for
// string() of a value of a type known at load that may be nil, gives
// nothing (or a nil pointer) as "" and any other value as it is, for
// string() to write as it does (string(1e21) is "1e+21" there too).
func funcOptions() []expr.Option {
	return []expr.Option{
		expr.Patch(funcGuard{}),
		expr.Function("_no_func", func(p ...any) (any, error) {
			if holdsFunc(p[0]) {
				return nil, fmt.Errorf("%s() was given a function, not a value: %s", p[1], funcValueWords)
			}
			if p[1] == "string" {
				switch x := p[0].(type) {
				case float64:
					return floatText(x), nil
				case nil:
					// A key that fromJSON's object lacks, or a JSON null
					// (an empty Pipedrive custom field), or what find(),
					// first() or ?. did not find, whatever its type
					// (find(deal.line_items, .sku == "x")?.sku): blank, as
					// coalesce takes it; it was "<nil>", written into the
					// invoice. (A list or an object the deal lacks is an
					// empty one, written as one: "[]".)
					return "", nil
				case map[string]any:
					// A JSON object (a Pipedrive money field): its part is
					// picked; it was Go's map text. (A list keeps its text,
					// as string() of a list written in the mapping does.)
					return jsonText("string", x)
				}
				if isNil(p[0]) {
					return "", nil // a nil pointer: "<nil>" too
				}
			}
			return p[0], nil
		}, new(func(any, string) any)),
		expr.Function("_nil_text", func(p ...any) (any, error) {
			if isNil(p[0]) {
				// What find(), first(), get() or ?. did not find, a let
				// variable holding it: "" as coalesce takes it; it was
				// "<nil>", written into the invoice.
				return "", nil
			}
			return p[0], nil
		}, new(func(any) any)),
	}
}

// isNil says whether v is nothing or a nil pointer.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	return r.Kind() == reflect.Pointer && r.IsNil()
}

// checkFuncValues refuses string() or toJSON() of a value known at load
// to be a function (string(is_won), a let variable holding it): its text
// would be a memory address. A method so read is checkMethods' to report.
func (p *parser) checkFuncValues(n *yaml.Node, key, src string, root ast.Node) {
	walkAll(root, func(node ast.Node) {
		c, ok := node.(*ast.CallNode)
		if !ok || !isCallOf(c, "_no_func") || len(c.Arguments) != 2 {
			return
		}
		arg, builtinName := c.Arguments[0], c.Arguments[1]
		nt := arg.Nature()
		if nt.Type == nil || nt.Type.Kind() != reflect.Func || nt.Method {
			return // not known to be a function, or a method: checkMethods'
		}
		name := "this"
		switch x := arg.(type) {
		case *ast.IdentifierNode:
			name = x.Value
		case *ast.MemberNode:
			if s, ok := x.Property.(*ast.StringNode); ok {
				name = s.Value
			}
		}
		fn := "string"
		if s, ok := builtinName.(*ast.StringNode); ok {
			fn = s.Value
		}
		from, ok := startOf(arg)
		if !ok {
			from = c.Location().From
		}
		line, col := position(src, from)
		msg := fmt.Sprintf("%s is a function, not a value: %s() of it would be a memory address; call it with its arguments", name, fn)
		if name == "is_won" {
			msg += ", as in is_won(deal.stage)"
		}
		p.exprProblem(n, key, src, line, col, msg)
	})
}
