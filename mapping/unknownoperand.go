package mapping

import (
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
)

// unknownOperandPrefix starts builtinHint's hint for a decimal beside a
// value whose type shows only as the run reads it ("mismatched types
// decimal and unknown"), which unknownOperandHint makes fit the value.
const unknownOperandPrefix = "; "

// reduceAccumulatorHint is the hint for a decimal beside reduce's #acc.
const reduceAccumulatorHint = "; #acc, reduce's accumulator, has a type that shows only as the run reads it, so a decimal is not computed with it as written: " +
	"convert it with dec(#acc), and start it with a decimal (or a whole number), as in reduce(deal.line_items, dec(#acc) + .quantity * .unit_price, dec(0)); " +
	"to add values up, sum(deal.line_items, .quantity * .unit_price) says it shorter"

// unknownOperandHint is the hint for expr's "mismatched types" of the
// operator at offset from in src (compiled with opts), a decimal beside a
// value whose type shows only as the run reads it, naming what that value
// is: reduce's accumulator (#acc), a number read with fromJSON, a
// conditional whose branches differ. "" when it is none of those (or the
// operator is not found): the caller keeps the general hint.
func unknownOperandHint(src string, opts []expr.Option, from int) string {
	tree, _, _ := parseChecked(src, opts)
	if tree == nil {
		return ""
	}
	var op *ast.BinaryNode
	ast.Walk(&tree.Node, visitor(func(node ast.Node) {
		if b, ok := node.(*ast.BinaryNode); ok && b.Location().From == from && op == nil {
			op = b
		}
	}))
	if op == nil {
		return ""
	}
	for _, side := range []ast.Node{op.Left, op.Right} {
		if !unknownType(side.Nature()) {
			continue
		}
		switch {
		case readsAccumulator(side):
			return reduceAccumulatorHint
		case fromJSONValue(side, nil, 0) || neverDecimal(side, nil, 0):
			return "; a number read with fromJSON is a float, which money is not computed with: write dec(string(x)) for it"
		}
		if c, ok := side.(*ast.ConditionalNode); ok && !unknownType(c.Exp1.Nature()) && !unknownType(c.Exp2.Nature()) {
			return "; the conditional gives values of two types (" + typeNames.Replace(c.Exp1.Type().String()) + " and " + typeNames.Replace(c.Exp2.Type().String()) +
				"), so its type shows only as the run reads it: give both branches one type, e.g. with dec()"
		}
	}
	return ""
}

// readsAccumulator says whether n is reduce's accumulator, #acc, or read
// from it (#acc.x, #acc[k]).
func readsAccumulator(n ast.Node) bool {
	for {
		switch x := n.(type) {
		case *ast.PointerNode:
			return x.Name == "acc"
		case *ast.MemberNode:
			n = x.Node
		case *ast.ChainNode:
			n = x.Node
		default:
			return false
		}
	}
}
