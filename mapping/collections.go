package mapping

import (
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm/runtime"
	"github.com/shopspring/decimal"
	yaml "go.yaml.in/yaml/v3"
)

// expr's sort and sortBy order values with its own `<`, which refuses
// decimals ("invalid operation: decimal.Decimal < decimal.Decimal": every
// run with two items or more failed, after a load that passed), and uniq
// compares them by their representation (100 and 100.0 stayed two).
// decimalCollections gives a sort, sortBy or uniq whose values may be
// decimals (decimals, or of a type known only as the expression runs) to
// dealsync's versions, which order and compare decimals (and whole numbers
// with them) by value and anything else as expr does. groupBy keys a map
// by its values, and a decimal as a key is its representation, not its
// value: a key that may be a decimal goes through _group_key, which fails
// the run on one, and a key known to be a decimal is refused at load
// (checkGroupKeys).
//
// A run's snapshot (strict false) maps as it did when the run started:
// its uniq and groupBy stay expr's (their results over decimals would
// change), and only a sort or sortBy of values known at load to be
// decimals is replaced: expr's failed on every run of two items or more,
// and gives the one item of a shorter list as dealsync's does. Values of a
// type known only as the expression runs keep expr's sort, whose order of
// equal values may differ from dealsync's stable one.
type decimalCollections struct{ strict bool }

// sortByVar names the list a replaced sortBy sorts: a name no expression
// can write, so that it hides none of the expression's own.
const sortByVar = "sortBy list"

func (d decimalCollections) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BuiltinNode)
	if !ok || len(b.Arguments) == 0 {
		return
	}
	call := func(fn string, args ...ast.Node) {
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: args})
	}
	switch b.Name {
	case "sort":
		if d.strict && mayHoldDecimals(b.Arguments[0]) || holdsDecimals(b.Arguments[0]) {
			call("_sort", b.Arguments...)
		}
	case "uniq":
		if d.strict && mayHoldDecimals(b.Arguments[0]) {
			call("_uniq", b.Arguments...)
		}
	case "sortBy":
		pred, ok := b.Arguments[1].(*ast.PredicateNode)
		if !ok || !(d.strict && mayBeDecimal(pred.Node.Nature()) || pred.Node.Type() == decimalType) {
			return
		}
		// let l = list; _sort_by(l, map(l, key), order): the list is
		// evaluated once, and _sort_by has the list's type, as sortBy
		// has (a list of line items stays one: first(…).unit_price is a
		// decimal, which the decimal operators see).
		list := func() ast.Node { return &ast.IdentifierNode{Value: sortByVar} }
		keys := &ast.BuiltinNode{Name: "map", Arguments: []ast.Node{list(), pred}}
		sorted := &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_sort_by"}, Arguments: append([]ast.Node{list(), keys}, b.Arguments[2:]...)}
		ast.Patch(node, &ast.VariableDeclaratorNode{Name: sortByVar, Value: b.Arguments[0], Expr: sorted})
	case "groupBy":
		pred, ok := b.Arguments[1].(*ast.PredicateNode)
		if !d.strict || !ok || !mayBeDecimal(pred.Node.Nature()) || isCallOf(pred.Node, "_group_key") {
			return
		}
		wrap := &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_group_key"}, Arguments: []ast.Node{pred.Node}}
		wrap.SetLocation(pred.Node.Location())
		pred.Node = wrap
	}
}

// holdsDecimals says whether the list n is known at load to hold decimals.
func holdsDecimals(n ast.Node) bool {
	nt := n.Nature()
	return nt.IsArray() && nt.Ref != nil && nt.Ref.Type == decimalType
}

// mayHoldDecimals says whether the list n may hold decimals: its elements
// are decimals or of a type known only as it runs.
func mayHoldDecimals(n ast.Node) bool {
	nt := n.Nature()
	if unknownType(nt) {
		return true
	}
	if !nt.IsArray() {
		return false // not a list: expr refuses it
	}
	return nt.Ref == nil || mayBeDecimal(nt.Ref)
}

func isCallOf(n ast.Node, name string) bool {
	c, ok := n.(*ast.CallNode)
	if !ok {
		return false
	}
	id, ok := c.Callee.(*ast.IdentifierNode)
	return ok && id.Value == name
}

// errGroupByDecimal is the error of a groupBy whose key is a decimal.
var errGroupByDecimal = errors.New("groupBy cannot group by a decimal (decimal keys are not compared by value: two equal amounts would make two groups); group by its text, e.g. groupBy(deal.line_items, string(.unit_price))")

// compareValues orders a and b: decimals, and whole numbers with them, by
// value; anything else as expr's `<` does. Values it cannot order are an
// error.
func compareValues(a, b any) (c int, err error) {
	da, aDec := a.(decimal.Decimal)
	db, bDec := b.(decimal.Decimal)
	if aDec || bDec {
		if n, ok := a.(int); ok {
			da, aDec = decimal.NewFromInt(int64(n)), true
		}
		if n, ok := b.(int); ok {
			db, bDec = decimal.NewFromInt(int64(n)), true
		}
		if aDec && bDec {
			return da.Cmp(db), nil
		}
		return 0, fmt.Errorf("cannot order %s and %s", kindName(a), kindName(b))
	}
	defer func() {
		if r := recover(); r != nil {
			c, err = 0, fmt.Errorf("cannot order %s and %s", kindName(a), kindName(b))
		}
	}()
	switch {
	case runtime.Less(a, b):
		return -1, nil
	case runtime.Less(b, a):
		return 1, nil
	}
	return 0, nil
}

// listOf reads v as a list for the function name.
func listOf(name string, v any) ([]any, error) {
	rv := reflect.ValueOf(v)
	if v == nil || (rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array) {
		return nil, fmt.Errorf("%s: needs a list, got %s", name, kindName(v))
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, nil
}

// descending reads sort's and sortBy's optional order.
func descending(name string, p []any) (bool, error) {
	if len(p) == 0 {
		return false, nil
	}
	switch p[0] {
	case "asc":
		return false, nil
	case "desc":
		return true, nil
	}
	return false, fmt.Errorf("%s: invalid order %v, expected asc or desc", name, p[0])
}

// sortOrder is the order of keys (stable), as sort and sortBy give it:
// the indexes of the keys, sorted.
func sortOrder(name string, keys []any, desc bool) ([]int, error) {
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	var err error
	slices.SortStableFunc(idx, func(i, j int) int {
		c, e := compareValues(keys[i], keys[j])
		if e != nil && err == nil {
			err = fmt.Errorf("%s: %w", name, e)
		}
		if desc {
			return -c
		}
		return c
	})
	if err != nil {
		return nil, err
	}
	return idx, nil
}

// collectionOptions are decimalCollections and its functions; strict is
// the parser's (a snapshot's are false). They come before retypeCalls,
// which has the calls they make typed afresh.
func collectionOptions(strict bool) []expr.Option {
	return []expr.Option{
		expr.Patch(decimalCollections{strict: strict}),
		expr.Function("_sort", func(p ...any) (any, error) {
			items, err := listOf("sort", p[0])
			if err != nil {
				return nil, err
			}
			return sortedBy("sort", items, items, p[1:])
		}, new(func(any) []any), new(func(any, string) []any)),
		// _sort_by(list, keys, order) is typed by Validate: its result
		// has the list's type, not []any.
		func(c *conf.Config) {
			c.Functions["_sort_by"] = &builtin.Function{
				Name: "_sort_by",
				Func: func(p ...any) (any, error) {
					items, err := listOf("sortBy", p[0])
					if err != nil {
						return nil, err
					}
					keys, err := listOf("sortBy", p[1])
					if err != nil {
						return nil, err
					}
					return sortedBy("sortBy", items, keys, p[2:])
				},
				Validate: func(args []reflect.Type) (reflect.Type, error) {
					// The checks of expr's sortBy, which is no longer in the tree.
					switch args[0].Kind() {
					case reflect.Slice, reflect.Array, reflect.Interface:
					default:
						return nil, fmt.Errorf("builtin sortBy takes only array (got %v)", args[0])
					}
					if len(args) == 3 && args[2].Kind() != reflect.String && args[2].Kind() != reflect.Interface {
						return nil, fmt.Errorf("sortBy order argument must be a string (got %v)", args[2])
					}
					return args[0], nil
				},
			}
		},
		expr.Function("_uniq", func(p ...any) (any, error) {
			items, err := listOf("uniq", p[0])
			if err != nil {
				return nil, err
			}
			out := []any{}
			for _, v := range items {
				if !slices.ContainsFunc(out, func(u any) bool { return decimalEqual(u, v) }) {
					out = append(out, v)
				}
			}
			return out, nil
		}, new(func(any) []any)),
		expr.Function("_group_key", func(p ...any) (any, error) {
			if _, ok := p[0].(decimal.Decimal); ok {
				return nil, errGroupByDecimal
			}
			return p[0], nil
		}, new(func(any) any)),
	}
}

// checkGroupKeys refuses a groupBy whose key is known to be a decimal:
// it would fail every run (_group_key).
func (p *parser) checkGroupKeys(n *yaml.Node, key, src string, root ast.Node) {
	walkAll(root, func(node ast.Node) {
		c, ok := node.(*ast.CallNode)
		if !ok || !isCallOf(c, "_group_key") || len(c.Arguments) != 1 || c.Arguments[0].Type() != decimalType {
			return
		}
		from, ok := startOf(c.Arguments[0])
		if !ok {
			from = c.Location().From
		}
		line, col := position(src, from)
		p.exprProblem(n, key, src, line, col, errGroupByDecimal.Error())
	})
}

// sortedBy is items in the order of keys (one per item), ascending or as
// order (the function's optional last argument) says, for function name.
func sortedBy(name string, items, keys, order []any) ([]any, error) {
	desc, err := descending(name, order)
	if err != nil {
		return nil, err
	}
	idx, err := sortOrder(name, keys, desc)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(idx))
	for k, i := range idx {
		out[k] = items[i]
	}
	return out, nil
}
