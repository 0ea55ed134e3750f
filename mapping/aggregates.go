package mapping

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/file"
	"github.com/shopspring/decimal"
	yaml "go.yaml.in/yaml/v3"
)

// expr's aggregates (sum, mean, median, min, max) add up ints and floats
// only: over decimals (a map() of line amounts, a predicate such as
// `.quantity * .unit_price`) they pass the load-time check, whose types of
// list elements are often unknown, and fail every run. decimalAggregates
// gives them to dealsync's exact decimal versions instead, in both forms
// (`sum(list)` and `sum(list, predicate)`; `min(a, b)` and `min(list)`),
// unless the checker knows the result is a plain number, which expr's own
// builtins keep computing as before.
var decimalAggregateFuncs = map[string]string{
	"sum":    "_dec_sum",
	"mean":   "_dec_mean",
	"median": "_dec_median",
	"min":    "_dec_min",
	"max":    "_dec_max",
}

// A run's snapshot (strict false) leaves mean and median of whole numbers
// to expr, as when the run started: they give floats there
// (round(mean([1, 2])), mean([1, 2]) > 1.2), decimals in a file loaded now.
type decimalAggregates struct{ strict bool }

func (d decimalAggregates) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BuiltinNode)
	if !ok || len(b.Arguments) == 0 {
		return
	}
	fn, ok := decimalAggregateFuncs[b.Name]
	if !ok {
		return
	}
	var list ast.Node
	switch {
	case b.Name == "sum" && len(b.Arguments) == 2:
		// sum(list, predicate): the predicate's values.
		if b.Nature().IsNumber() {
			return
		}
		list = &ast.BuiltinNode{Name: "map", Arguments: b.Arguments}
	case b.Name == "sum":
		if plainNumbers(b.Arguments[0]) {
			return
		}
		list = b.Arguments[0]
	default:
		// min(a, b, …), max(list), mean(…), median(…): the arguments
		// as a list (lists among them are flattened, as expr does), so
		// that max(deal.amount) is the amount. expr's mean and median
		// give floats, even of whole numbers: only over floats are they
		// left to expr.
		plain := plainNumbers
		if d.strict && (b.Name == "mean" || b.Name == "median") {
			plain = plainFloats
		}
		if !slices.ContainsFunc(b.Arguments, func(a ast.Node) bool { return !plain(a) }) {
			return
		}
		list = &ast.ArrayNode{Nodes: b.Arguments}
	}
	ast.Patch(node, &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: fn},
		Arguments: []ast.Node{list},
	})
}

// retypeCalls runs right after decimalAggregates: it clears the types
// stored on every call and builtin, so that the checker types them (and
// their arguments) again. expr's checker takes a call that already has a
// type as it is, without looking into its arguments; an aggregate patched
// into _dec_sum inside such a call (`max_dec(dec(0), deal.amount - sum(…))`,
// `round_to(max(deal.amount, dec("0")) * 2, 2)`) would keep the type the
// builtin had before, and the operator patches, which read the operands'
// types, would leave the `-` or `*` beside it expr's own, which refuses
// decimals.
type retypeCalls struct{}

func (retypeCalls) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.CallNode, *ast.BuiltinNode:
		n.SetNature(nature.Nature{})
	}
}

// plainNumbers says whether n is known to be an int or a float, or a list
// of them: expr's own aggregates compute those.
func plainNumbers(n ast.Node) bool {
	nt := n.Nature()
	return nt.IsNumber() || (nt.IsArray() && nt.Ref != nil && nt.Ref.IsNumber())
}

// plainFloats says whether n is known to be a float, or a list of them.
func plainFloats(n ast.Node) bool {
	nt := n.Nature()
	return nt.IsFloat || (nt.IsArray() && nt.Ref != nil && nt.Ref.IsFloat)
}

// checkAggregates refuses, at their position, the values given to an
// exact aggregate (see decimalAggregates) whose type is known and is no
// decimal or whole number (or list of them): each would fail every run
// that reaches it (max(deal.name), min(deal.amount, "x"),
// sum(deal.line_items, .sku), a float). Where expr's own aggregate is
// kept, its own check refuses such values.
func (p *parser) checkAggregates(n *yaml.Node, key, src string, root ast.Node) {
	walkAll(root, func(node ast.Node) {
		c, ok := node.(*ast.CallNode)
		if !ok || len(c.Arguments) != 1 {
			return
		}
		id, ok := c.Callee.(*ast.IdentifierNode)
		if !ok {
			return
		}
		name := ""
		for k, fn := range decimalAggregateFuncs {
			if fn == id.Value {
				name = k
			}
		}
		if name == "" {
			return
		}
		report := func(at ast.Node, what string) {
			from, ok := startOf(at)
			if !ok {
				from = c.Location().From // made by a patch: the aggregate's position
			}
			line, col := position(src, from)
			p.exprProblem(n, key, src, line, col, fmt.Sprintf("%s takes decimals and whole numbers, or lists of them; %s", name, what))
		}
		switch arg := c.Arguments[0].(type) {
		case *ast.ArrayNode:
			var elements func(a *ast.ArrayNode)
			elements = func(a *ast.ArrayNode) {
				for _, e := range a.Nodes {
					if inner, ok := e.(*ast.ArrayNode); ok {
						elements(inner) // a list written out: its elements
					} else if what := notNumbers(e.Nature(), true); what != "" {
						report(e, "this is "+what)
					} else if what := constantNotNumbers(e); what != "" {
						report(e, "this is "+what)
					}
				}
			}
			elements(arg)
		case *ast.BuiltinNode:
			if arg.Name == "map" && len(arg.Arguments) == 2 {
				pred, ok := arg.Arguments[1].(*ast.PredicateNode)
				if !ok {
					return
				}
				if what := notNumbers(pred.Node.Nature(), true); what != "" {
					report(pred.Node, "the predicate gives "+what)
				}
				return
			}
			if what := notNumbers(arg.Nature(), true); what != "" {
				report(arg, "this is "+what)
			}
		default:
			if nt := arg.Nature(); !unknownType(nt) && !nt.IsArray() {
				report(arg, "this is "+typeWords(nt.Type)+", not a list")
			} else if what := notNumbers(nt, true); what != "" {
				report(arg, "this is "+what)
			} else if what := constantNotNumbers(arg); what != "" {
				report(arg, "this is "+what)
			}
		}
	})
}

// startOf is where the text of n starts: the first position of the
// nodes under it (a member access's or an operator's own is not its
// start); ok is false when none has one, all made by patches.
func startOf(n ast.Node) (from int, ok bool) {
	walkAll(n, func(node ast.Node) {
		if loc := node.Location(); loc != (file.Location{}) && (!ok || loc.From < from) {
			from, ok = loc.From, true
		}
	})
	return from, ok
}

// notNumbers says what a value of nature nt is when it is known to be no
// decimal or whole number (nor, with lists, a list of them), "" otherwise.
func notNumbers(nt *nature.Nature, lists bool) string {
	switch {
	case unknownType(nt):
		return ""
	case lists && nt.IsArray() && nt.Ref != nil:
		if what := notNumbers(nt.Ref, true); what != "" {
			return "a list of which an element is " + what
		}
		return ""
	}
	return notNumberType(nt.Type, lists)
}

// constantNotNumbers is notNumbers of a list written out of constants,
// which expr's optimizer folds into one value ([1.5, 2]) whose type says
// nothing of its elements.
func constantNotNumbers(n ast.Node) string {
	c, ok := n.(*ast.ConstantNode)
	if !ok {
		return ""
	}
	v := reflect.ValueOf(c.Value)
	if c.Value == nil || (v.Kind() != reflect.Slice && v.Kind() != reflect.Array) {
		return ""
	}
	for i := range v.Len() {
		e := v.Index(i)
		if e.Kind() == reflect.Interface {
			e = e.Elem()
		}
		if !e.IsValid() {
			continue
		}
		if inner := constantNotNumbers(&ast.ConstantNode{Value: e.Interface()}); inner != "" {
			return inner
		}
		if e.Kind() != reflect.Slice && e.Kind() != reflect.Array {
			if what := notNumberType(e.Type(), false); what != "" {
				return "a list of which an element is " + what
			}
		}
	}
	return ""
}

// notNumberType is notNumbers of a value of type t.
func notNumberType(t reflect.Type, lists bool) string {
	switch t.Kind() {
	case reflect.Interface:
		return ""
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return ""
	case reflect.Float32, reflect.Float64:
		return `a float: money never goes through floats, write dec("…")`
	case reflect.Slice, reflect.Array:
		if !lists {
			break
		}
		if what := notNumberType(t.Elem(), true); what != "" {
			return "a list of which an element is " + what
		}
		return ""
	}
	if t == decimalType {
		return ""
	}
	return typeWords(t)
}

// typeWords names a type as a mapping's author knows it: "a string".
func typeWords(t reflect.Type) string {
	switch t {
	case stringType:
		return "a string"
	case dateType:
		return "a date"
	case momentType:
		return "a moment"
	case boolType:
		return "a bool"
	}
	return "a " + typeNames.Replace(t.String())
}

// decimalsOf reads a list of decimals and whole numbers, lists among them
// flattened, for the aggregate name; a float, or anything else, is a
// mapping error naming it.
func decimalsOf(name string, v any) ([]decimal.Decimal, error) {
	rv := reflect.ValueOf(v)
	if v == nil || (rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array) {
		return nil, fmt.Errorf("%s: needs a list, got %T", name, v)
	}
	out := make([]decimal.Decimal, 0, rv.Len())
	for i := range rv.Len() {
		e := rv.Index(i).Interface()
		switch x := e.(type) {
		case decimal.Decimal:
			out = append(out, x)
		case int:
			out = append(out, decimal.NewFromInt(int64(x)))
		case float32, float64:
			return nil, fmt.Errorf("%s: element %d is the float %v: money never goes through floats, write dec(\"…\")", name, i, x)
		default:
			if k := reflect.ValueOf(e).Kind(); e != nil && (k == reflect.Slice || k == reflect.Array) {
				inner, err := decimalsOf(name, e)
				if err != nil {
					return nil, err
				}
				out = append(out, inner...)
				continue
			}
			return nil, fmt.Errorf("%s: element %d is %T (%v), not a number", name, i, e, e)
		}
	}
	return out, nil
}

// aggregateOptions are the exact versions of expr's aggregates; strict is
// the parser's (see decimalAggregates).
func aggregateOptions(strict bool) []expr.Option {
	agg := func(name string, f func([]decimal.Decimal) (decimal.Decimal, error)) expr.Option {
		return expr.Function(decimalAggregateFuncs[name], func(p ...any) (any, error) {
			ds, err := decimalsOf(name, p[0])
			if err != nil {
				return nil, err
			}
			return f(ds)
		}, new(func(any) decimal.Decimal))
	}
	extreme := func(name string, pick func(first decimal.Decimal, rest ...decimal.Decimal) decimal.Decimal) expr.Option {
		return agg(name, func(ds []decimal.Decimal) (decimal.Decimal, error) {
			if len(ds) == 0 {
				return decimal.Decimal{}, fmt.Errorf("%s: of an empty list", name)
			}
			return pick(ds[0], ds[1:]...), nil
		})
	}
	return []expr.Option{
		expr.Patch(decimalAggregates{strict: strict}),
		expr.Patch(retypeCalls{}),
		agg("sum", func(ds []decimal.Decimal) (decimal.Decimal, error) { return decimal.Sum(decimal.Zero, ds...), nil }),
		agg("mean", func(ds []decimal.Decimal) (decimal.Decimal, error) {
			if len(ds) == 0 {
				return decimal.Zero, nil // as expr's mean of nothing
			}
			return decimal.Sum(decimal.Zero, ds...).Div(decimal.NewFromInt(int64(len(ds)))), nil
		}),
		agg("median", func(ds []decimal.Decimal) (decimal.Decimal, error) {
			n := len(ds)
			if n == 0 {
				return decimal.Zero, nil // as expr's median of nothing
			}
			ds = slices.Clone(ds)
			slices.SortFunc(ds, func(a, b decimal.Decimal) int { return a.Cmp(b) })
			if n%2 == 1 {
				return ds[n/2], nil
			}
			return ds[n/2-1].Add(ds[n/2]).Div(decimal.NewFromInt(2)), nil
		}),
		extreme("min", decimal.Min),
		extreme("max", decimal.Max),
	}
}
