package mapping

import (
	"maps"
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
)

// TriggerDealReads lists what the file's own trigger reads of the deal,
// as paths from `deal` ("deal.stage", "deal.amount", "deal.company.name",
// "deal.raw.pipeline_id"), sorted, each once. A path is cut where a member
// is computed at run time (`deal.line_items[0].quantity` reads
// "deal.line_items", `deal.raw[k]` "deal.raw"), and the deal read whole
// (`deal` itself, `$env`, `deal[k]`) is "deal". Reads through a let
// variable (`let c = deal.company; c.email` reads "deal.company.email")
// and get() with a literal key (`get(deal.raw, "po")` reads
// "deal.raw.po") are followed. nil when the file has no trigger of its
// own: the built-in one reads the stage and the previous stage only.
//
// A connection whose source's webhooks are thin (connectors.WebhookShaper)
// judges its trigger on a deal that has little more than its id and
// stage: every other field it reads is empty then.
func (m *File) TriggerDealReads() []string {
	if !m.customTrigger || m.trigger.prog == nil {
		return nil
	}
	return joinedPaths(dealReads(m.trigger.prog.Node()))
}

// TriggerRawKeysRead lists the keys of `deal.raw` the file's own trigger
// reads by a literal, as RawKeysRead does for the invoice (a key with a
// dot in it, "Owner.Email", whole); nil without a trigger of its own.
func (m *File) TriggerRawKeysRead() []string {
	if !m.customTrigger || m.trigger.prog == nil {
		return nil
	}
	return rawKeys(dealReads(m.trigger.prog.Node()))
}

// dealReads are the paths of `deal` the expression reads (see
// TriggerDealReads), each as its segments ("deal", "raw", "Owner.Email").
func dealReads(root ast.Node) [][]string {
	r := newReadResolver(root)
	var out [][]string
	walkAll(root, func(node ast.Node) {
		switch x := node.(type) {
		case *ast.IdentifierNode, *ast.MemberNode, *ast.ChainNode:
		case *ast.BuiltinNode:
			if x.Name != "get" {
				return
			}
		default:
			return
		}
		if r.bases[node] {
			return
		}
		segs, _ := r.path(node, 0)
		if len(segs) > 0 && segs[0] == "$env" {
			segs = segs[1:]
			if len(segs) == 0 {
				segs = []string{"deal"} // the whole environment
			}
		}
		if len(segs) == 0 || segs[0] != "deal" {
			return
		}
		out = append(out, segs)
	})
	return out
}

// joinedPaths are paths as "deal.company.name", sorted, each once; nil
// for none.
func joinedPaths(paths [][]string) []string {
	seen := map[string]bool{}
	for _, segs := range paths {
		seen[strings.Join(segs, ".")] = true
	}
	if len(seen) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(seen))
}

// rawKeys are the keys of deal.raw among paths, sorted, each once.
func rawKeys(paths [][]string) []string {
	seen := map[string]bool{}
	for _, segs := range paths {
		if len(segs) > 2 && segs[1] == "raw" {
			seen[segs[2]] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// maxReadDepth bounds readResolver's descent through let variables.
const maxReadDepth = 50

// readResolver follows an expression's reads through its let variables
// and get() calls.
type readResolver struct {
	// bound is the declaration each let variable's use reads.
	bound map[*ast.IdentifierNode]*ast.VariableDeclaratorNode
	// bases are the nodes read as part of a longer read: the base of a
	// member, the map of a get(), the value of a let variable whose
	// uses are followed (each use is the read).
	bases map[ast.Node]bool
}

func newReadResolver(root ast.Node) *readResolver {
	r := &readResolver{bound: map[*ast.IdentifierNode]*ast.VariableDeclaratorNode{}, bases: map[ast.Node]bool{}}
	// ast.Walk visits the inner nodes first: the outer declarations are
	// last, and a name is bound to the innermost that declares it (the
	// value of a declaration is outside its scope).
	var decls []*ast.VariableDeclaratorNode
	walkAll(root, func(node ast.Node) {
		if d, ok := node.(*ast.VariableDeclaratorNode); ok {
			decls = append(decls, d)
		}
	})
	for i := len(decls) - 1; i >= 0; i-- {
		d := decls[i]
		walkAll(d.Expr, func(node ast.Node) {
			if id, ok := node.(*ast.IdentifierNode); ok && id.Value == d.Name {
				r.bound[id] = d
			}
		})
	}
	walkAll(root, func(node ast.Node) {
		switch x := node.(type) {
		case *ast.MemberNode:
			r.bases[x.Node] = true
		case *ast.BuiltinNode:
			if x.Name == "get" && len(x.Arguments) == 2 {
				r.bases[x.Arguments[0]] = true
			}
		}
	})
	for _, d := range decls {
		if segs, _ := r.path(d.Value, 0); segs != nil {
			r.bases[d.Value] = true
		}
	}
	return r
}

// path is the chain of member accesses n stands for, from its root
// variable, a let variable's read through to what it holds ("deal",
// "company", "email" for c.email after let c = deal.company), cut at the
// first member computed at run time (cut is then true); nil when n does
// not start at a variable.
func (r *readResolver) path(n ast.Node, depth int) (segs []string, cut bool) {
	if depth > maxReadDepth {
		return nil, false
	}
	switch x := n.(type) {
	case *ast.IdentifierNode:
		if d, ok := r.bound[x]; ok {
			return r.path(d.Value, depth+1)
		}
		return []string{x.Value}, false
	case *ast.ChainNode:
		return r.path(x.Node, depth+1)
	case *ast.MemberNode:
		return r.member(x.Node, x.Property, depth)
	case *ast.BuiltinNode:
		if x.Name == "get" && len(x.Arguments) == 2 {
			return r.member(x.Arguments[0], x.Arguments[1], depth)
		}
	}
	return nil, false
}

// member is the path of base's member key (see path).
func (r *readResolver) member(base, key ast.Node, depth int) ([]string, bool) {
	segs, cut := r.path(base, depth+1)
	if segs == nil || cut {
		return segs, cut
	}
	if k, ok := r.literalKey(key, depth); ok {
		return append(slices.Clip(segs), k), false
	}
	return segs, true
}

// literalKey is the text of a member's key written in the expression: a
// string literal, or a let variable holding one.
func (r *readResolver) literalKey(n ast.Node, depth int) (string, bool) {
	if depth > maxReadDepth {
		return "", false
	}
	switch x := n.(type) {
	case *ast.StringNode:
		return x.Value, true
	case *ast.IdentifierNode:
		if d, ok := r.bound[x]; ok {
			return r.literalKey(d.Value, depth+1)
		}
	}
	return "", false
}

// InvoiceDealReads lists what the file's invoice expressions (header,
// lines, skip, amount line) read of the deal, as TriggerDealReads does
// for its trigger.
func (m *File) InvoiceDealReads() []string {
	return joinedPaths(m.invoiceDealReads())
}

// DefaultDealReads are the paths of InvoiceDealReads that only the
// default expressions of fields the file does not write read
// (customer.email's deal.company.email), each with the keys of those
// fields ("invoice.customer.email"): a warning of such a read names the
// field, which the file does not show.
func (m *File) DefaultDealReads() map[string][]string {
	written := map[string]bool{}
	defaults := map[string][]string{}
	for _, c := range slices.Concat(m.header, m.lines, []compiled{m.lineSkip}, m.amountLine) {
		if c.prog == nil {
			continue
		}
		for _, path := range joinedPaths(dealReads(c.prog.Node())) {
			if c.node != nil {
				written[path] = true
			} else if !slices.Contains(defaults[path], c.key) {
				defaults[path] = append(defaults[path], c.key)
			}
		}
	}
	for path := range written {
		delete(defaults, path)
	}
	if len(defaults) == 0 {
		return nil
	}
	return defaults
}

// invoiceDealReads are the paths InvoiceDealReads lists, as segments.
func (m *File) invoiceDealReads() [][]string {
	var out [][]string
	for _, c := range slices.Concat(m.header, m.lines, []compiled{m.lineSkip}, m.amountLine) {
		if c.prog != nil {
			out = append(out, dealReads(c.prog.Node())...)
		}
	}
	return out
}

// RawKeysRead lists the keys of `deal.raw` the file's invoice expressions
// read by a literal (`deal.raw["RecordTypeId"]`, `deal.raw.PO_Number__c`,
// `get(deal.raw, "po")`, through a let variable: `let r = deal.raw;
// r["po"]`), sorted, each once: a source that reads only the fields it is
// told to (a fetch's selection) answers "" for the others, which the
// mapping cannot tell from an empty field. Keys computed at run time are
// not known. The trigger's are not listed: it reads the deal as a webhook
// carries it (TriggerRawKeysRead), not as a run reads it.
func (m *File) RawKeysRead() []string {
	return rawKeys(m.invoiceDealReads())
}
