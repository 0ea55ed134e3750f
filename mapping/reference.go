package mapping

import "github.com/expr-lang/expr/ast"

// ReferenceExpression is the expression of invoice.reference: the file's,
// or the built-in `deal.id` when the file sets none; "" when the file
// leaves the reference unmapped.
func (m *File) ReferenceExpression() string {
	if c := m.reference(); c != nil && c.prog != nil {
		return c.src
	}
	return ""
}

// ReferenceReadsDealID reports whether invoice.reference reads the deal's
// id (`deal.id`, `deal["id"]`, `deal?.id`) anywhere: `"DS-" + deal.id`
// and `event.account + "-" + deal.id` do, `deal.company.name` does not.
// A target that looks an existing invoice up by its reference needs a
// reference unique per deal, and one that does not read deal.id likely is
// not: a second deal would be given the first one's invoice. Without a
// reference (unmapped) it is false.
func (m *File) ReferenceReadsDealID() bool {
	c := m.reference()
	if c == nil || c.prog == nil {
		return false
	}
	found := false
	root := c.prog.Node()
	walkAll(root, func(node ast.Node) {
		path := memberPath(node)
		found = found || path == "deal.id" || path == "$env.deal.id"
	})
	return found
}

// ReferenceIsDealID reports whether invoice.reference is the deal's id
// and nothing else (`deal.id`, `string(deal.id)`, `trim(deal.id)`), as the
// built-in mapping's is: a number for most CRMs, which can meet an ERP's
// own invoice numbers (connectors.SelfNumberedReference).
func ReferenceIsDealID(m Mapper) bool {
	switch m := m.(type) {
	case Default:
		return true
	case *File:
		c := m.reference()
		if c == nil || c.prog == nil {
			return false
		}
		node := c.prog.Node()
		for {
			if c, ok := node.(*ast.CallNode); ok && (isCallOf(c, "_no_func") || isCallOf(c, "_nil_text") || isCallOf(c, structTextFunc)) && len(c.Arguments) > 0 {
				node = c.Arguments[0] // string()'s guards (funcGuard, structText)
				continue
			}
			b, ok := node.(*ast.BuiltinNode)
			if !ok || (b.Name != "string" && b.Name != "trim") || len(b.Arguments) != 1 {
				break
			}
			node = b.Arguments[0]
		}
		path := memberPath(node)
		return path == "deal.id" || path == "$env.deal.id"
	}
	return false
}

// reference is the compiled invoice.reference, nil if there is none.
func (m *File) reference() *compiled {
	for i := range m.header {
		if m.header[i].spec.key == "reference" {
			return &m.header[i]
		}
	}
	return nil
}
