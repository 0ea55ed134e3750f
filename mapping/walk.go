package mapping

import "github.com/expr-lang/expr/ast"

// walkAll calls f for each node of root, inner nodes first, as ast.Walk
// does, and for those of the closure that expr's optimizer moves out of
// the arguments of a builtin: map(filter(xs, p), q) becomes filter(xs,
// p) with q as its Map (first(), find() and last() of it keep it), which
// ast.Walk does not visit. Every check of a compiled expression walks it
// with walkAll, so that a closure after a filter is checked as any other
// (a lookup of an undeclared table, x != nil of a text, date_in's zone in
// it loaded). The Map's nodes come after the builtin's arguments and
// before the builtin itself.
func walkAll(root ast.Node, f func(ast.Node)) {
	ast.Walk(&root, visitor(func(n ast.Node) {
		if b, ok := n.(*ast.BuiltinNode); ok && b.Map != nil {
			walkAll(b.Map, f)
		}
		f(n)
	}))
}
