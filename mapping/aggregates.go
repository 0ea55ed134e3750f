package mapping

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/shopspring/decimal"
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

type decimalAggregates struct{}

func (decimalAggregates) Visit(node *ast.Node) {
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
	case len(b.Arguments) == 1 && !b.Arguments[0].Nature().IsNumber():
		if plainNumbers(b.Arguments[0]) {
			return
		}
		list = b.Arguments[0]
	default:
		// min(a, b, …): the arguments as a list (lists among them are
		// flattened, as expr does).
		if !slices.ContainsFunc(b.Arguments, func(a ast.Node) bool { return !plainNumbers(a) }) {
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

// aggregateOptions are the exact versions of expr's aggregates.
func aggregateOptions() []expr.Option {
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
		expr.Patch(decimalAggregates{}),
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
