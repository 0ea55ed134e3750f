package mapping

import (
	"strings"

	"github.com/expr-lang/expr/ast"
)

// KeysReadAccount says whether both keys the ERP targets match on, the
// invoice reference and the customer's external id, read event.account
// (directly, or through an invoice field evaluated before them), so that
// two CRM accounts whose deal and company ids are equal get different keys
// in the ERP. The built-in mapping's keys do not.
func (m *File) KeysReadAccount() bool {
	reads := map[string]bool{}
	for i := range m.header {
		c := &m.header[i]
		if c.prog != nil {
			reads[c.spec.key] = readsAccount(c.prog.Node(), reads)
		}
	}
	return reads["reference"] && reads["customer.external_id"]
}

// readsAccount says whether the expression reads event.account, or an
// invoice field that earlier says reads it.
func readsAccount(n ast.Node, earlier map[string]bool) bool {
	v := &accountReader{earlier: earlier}
	walkAll(n, func(node ast.Node) { v.Visit(&node) })
	return v.found
}

type accountReader struct {
	earlier map[string]bool
	found   bool
}

func (v *accountReader) Visit(node *ast.Node) {
	path := memberPath(*node)
	if path == "event.account" {
		v.found = true
	}
	if field, ok := strings.CutPrefix(path, "invoice."); ok && v.earlier[field] {
		v.found = true
	}
}

// memberPath is the dotted path of a chain of property accesses on a
// variable ("event.account"), or "" for any other node.
func memberPath(n ast.Node) string {
	if segs, _, cut := staticPath(n); segs != nil && !cut {
		return strings.Join(segs, ".")
	}
	return ""
}
