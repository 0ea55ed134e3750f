package mapping

import (
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
)

// TriggerDealReads lists what the file's own trigger reads of the deal,
// as paths from `deal` ("deal.stage", "deal.amount", "deal.company.name",
// "deal.raw.pipeline_id"), sorted, each once. A path is cut where a member
// is computed at run time (`deal.line_items[0].quantity` reads
// "deal.line_items", `deal.raw[k]` "deal.raw"), and the deal read whole
// (`deal` itself, `$env`, `deal[k]`) is "deal". nil when the file has no
// trigger of its own: the built-in one reads the stage and the previous
// stage only.
//
// A connection whose source's webhooks are thin (connectors.WebhookShaper)
// judges its trigger on a deal that has little more than its id and
// stage: every other field it reads is empty then.
func (m *File) TriggerDealReads() []string {
	if !m.customTrigger || m.trigger.prog == nil {
		return nil
	}
	return dealReads(m.trigger.prog.Node())
}

// dealReads are the paths of `deal` the expression reads (see
// TriggerDealReads).
func dealReads(root ast.Node) []string {
	// The nodes that are the base of a member access: a chain is judged
	// whole, at its outermost node.
	bases := map[ast.Node]bool{}
	ast.Walk(&root, visitor(func(node ast.Node) {
		if m, ok := node.(*ast.MemberNode); ok {
			bases[m.Node] = true
		}
	}))
	seen := map[string]bool{}
	ast.Walk(&root, visitor(func(node ast.Node) {
		switch node.(type) {
		case *ast.IdentifierNode, *ast.MemberNode, *ast.ChainNode:
		default:
			return
		}
		if bases[node] {
			return
		}
		segs, _, _ := staticPath(node)
		if len(segs) > 0 && segs[0] == "$env" {
			segs = segs[1:]
			if len(segs) == 0 {
				segs = []string{"deal"} // the whole environment
			}
		}
		if len(segs) == 0 || segs[0] != "deal" {
			return
		}
		seen[strings.Join(segs, ".")] = true
	}))
	if len(seen) == 0 {
		return nil
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// InvoiceDealReads lists what the file's invoice expressions (header,
// lines, skip, amount line) read of the deal, as TriggerDealReads does
// for its trigger.
func (m *File) InvoiceDealReads() []string {
	seen := map[string]bool{}
	for _, c := range slices.Concat(m.header, m.lines, []compiled{m.lineSkip}, m.amountLine) {
		if c.prog == nil {
			continue
		}
		for _, p := range dealReads(c.prog.Node()) {
			seen[p] = true
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// RawKeysRead lists the keys of `deal.raw` the file's invoice expressions
// read by a literal (`deal.raw["RecordTypeId"]`, `deal.raw.PO_Number__c`),
// sorted, each once: a source that reads only the fields it is told to (a
// fetch's selection) answers "" for the others, which the mapping cannot
// tell from an empty field. Keys computed at run time are not known. The
// trigger's are not listed: it reads the deal as a webhook carries it
// (TriggerDealReads), not as a run reads it.
func (m *File) RawKeysRead() []string {
	seen := map[string]bool{}
	for _, c := range slices.Concat(m.header, m.lines, []compiled{m.lineSkip}, m.amountLine) {
		if c.prog == nil {
			continue
		}
		root := c.prog.Node()
		ast.Walk(&root, visitor(func(node ast.Node) {
			mn, ok := node.(*ast.MemberNode)
			if !ok {
				return
			}
			if base := memberPath(mn.Node); base != "deal.raw" && base != "$env.deal.raw" {
				return
			}
			if key, ok := mn.Property.(*ast.StringNode); ok {
				seen[key.Value] = true
			}
		}))
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
