package mapping_test

import (
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// A float literal beside a decimal fails expr's type check before the
// float-literal checks run; the message still says what to write, and
// points at the literal, not the operator.
func TestAFloatBesideADecimalSaysWhatToWrite(t *testing.T) {
	for _, c := range []struct{ expression, want string }{
		{`item.unit_price * 1.19`, `p.yaml:4:36: invoice.lines.unit_price: invalid operation: * (mismatched types decimal and float64): money never goes through floats, write dec("1.19") instead of 1.19`},
		{`1.19 * item.unit_price`, `p.yaml:4:18: invoice.lines.unit_price: invalid operation: * (mismatched types float64 and decimal): money never goes through floats, write dec("1.19") instead of 1.19`},
		{`deal.amount * (1 + 0.05) ** 3`, `write dec("0.05") instead of 0.05`},
		{`item.unit_price + 0.5`, `write dec("0.5") instead of 0.5`},
		// No literal: what makes a float, and how each is written.
		{`deal.amount * (3 / 2)`, `the value beside the decimal is a float (a number written with a point, a division of whole numbers, a power of whole numbers)`},
	} {
		_, err := mapping.Parse("p.yaml", []byte("name: p\ninvoice:\n  lines:\n    unit_price: '"+c.expression+"'\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.expression, err, c.want)
		}
	}
}
