package mapping_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// A problem in an expression is at the offending token in the file, in
// every style of scalar: the expression is the scalar's value, which
// differs from the file's text where a double-quoted scalar escapes
// characters, a single-quoted one doubles its quotes, or any scalar
// continues on more lines (folded into spaces). Where the file's text
// cannot be followed, the problem gives the scalar's line and no column,
// never a wrong one.
func TestExpressionPositionsInEveryScalarStyle(t *testing.T) {
	for _, c := range []struct {
		name, value string // value: the YAML after "  memo: "
		line, col   int    // of "nme" in the file; col 0: the line only
	}{
		{"plain", `deal.nme`, 3, 14},
		{"single-quoted", `'deal.nme'`, 3, 15},
		{"single-quoted with doubled quotes", `'deal.name == ''x'' ? deal.nme : ""'`, 3, 36},
		{"double-quoted", `"deal.nme"`, 3, 15},
		{"double-quoted with escapes", `"\"x\" + deal.nme"`, 3, 23},
		{"double-quoted with hex and unicode escapes", `"\"\x41\u00e9\" + deal.nme"`, 3, 32},
		{"characters beyond ASCII", `"\"é\" + deal.nme"`, 3, 23},
		{"double-quoted on more lines", "\"deal.name +\n    \\\"-\\\" +\n    deal.nme\"", 5, 10},
		{"single-quoted on more lines, an empty line between", "'deal.name +\n\n    deal.nme'", 5, 10},
		{"plain on more lines", "deal.name +\n    \"x\" + deal.nme", 4, 16},
		{"escaped line break", "\"deal.name + \\\n      deal.nme\"", 4, 12},
		{"literal block", "|\n    deal.name +\n      deal.nme", 5, 12},
		{"folded block, first line", ">\n    deal.nme +\n    deal.name", 4, 10},
		{"an anchor before the value", "&a deal.nme", 3, 17},
		{"a tag and an anchor before a quoted value", "!!str &a \"\\\"x\\\" + deal.nme\"", 3, 32},
		// Only the line of the scalar where the text cannot be followed.
		{"folded block, a later line", ">\n    deal.name +\n    deal.nme", 3, 0},
		{"literal block after an empty line", "|\n\n    deal.name +\n    deal.nme", 3, 0},
	} {
		src := "name: pos\ninvoice:\n  memo: " + c.value + "\n"
		_, err := mapping.Parse("pos.yaml", []byte(src))
		var le *mapping.LoadError
		if !errors.As(err, &le) || len(le.Problems) != 1 || !strings.Contains(le.Problems[0].Message, "no field nme") {
			t.Errorf("%s: got %v, want one problem naming nme", c.name, err)
			continue
		}
		p := le.Problems[0]
		if p.Line != c.line || p.Column != c.col {
			t.Errorf("%s: at %d:%d, want %d:%d (%s)", c.name, p.Line, p.Column, c.line, c.col, p)
		}
		if c.col > 0 {
			if l := strings.Split(src, "\n")[c.line-1]; !strings.HasPrefix(string([]rune(l)[c.col-1:]), "nme") {
				t.Errorf("%s: the test's position %d:%d is not that of nme in %q", c.name, c.line, c.col, l)
			}
		} else if s := p.String(); !strings.HasPrefix(s, "pos.yaml:3: invoice.memo: ") {
			t.Errorf("%s: %q, want the line without a column", c.name, s)
		}
	}

	// A file with Windows line ends.
	_, err := mapping.Parse("pos.yaml", []byte("name: pos\r\ninvoice:\r\n  memo: \"deal.name +\r\n    deal.nme\"\r\n"))
	var le *mapping.LoadError
	if !errors.As(err, &le) || le.Problems[0].Line != 4 || le.Problems[0].Column != 10 {
		t.Errorf("CRLF: got %v, want 4:10", err)
	}
}
