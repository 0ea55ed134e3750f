package mapping

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/model"
)

// A built-in expression is in no file: its run-time error gives no
// position, neither the file's nor expr's "(1:N)".
func TestRuntimeErrorOfABuiltInExpressionHasNoPosition(t *testing.T) {
	f, err := Parse("f.yaml", []byte("name: f\ninvoice:\n  memo: string(deal.amount / dec(len(deal.line_items)))\n"))
	if err != nil {
		t.Fatal(err)
	}
	ev := model.DealEvent{Deal: model.Deal{ID: "D", Stage: "won", Amount: decimal.NewNullDecimal(decimal.NewFromInt(5))}}
	var me *Error
	const msg = "division by zero: the divisor `dec(len(deal.line_items))` is 0 for this deal; guard it, as in x == 0 ? 0 : y / x"
	if _, err := f.Map(ev); !errors.As(err, &me) || me.Message != msg+" (at f.yaml:3:30)" {
		t.Fatalf("in the file: %v", err)
	}
	f.header[fieldIndex(f.header, "memo")].node = nil // as a built-in expression
	if _, err := f.Map(ev); !errors.As(err, &me) || me.Message != msg {
		t.Fatalf("built in: %v, want the message alone", err)
	}
}
