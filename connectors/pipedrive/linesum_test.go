package pipedrive

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
)

// A deal product's sum, Pipedrive's total of the line, is held against the
// total dealsync computes: an amount discount the sum shows to be off each
// unit is taken so, a sum with the line's exclusive tax added is the same
// line, and a sum nothing explains fails the run, naming the line, rather
// than making an invoice that bills another amount than the deal shows. A
// product in another currency than the deal's is refused.
func TestFetchDealHoldsLinesAgainstPipedrivesSum(t *testing.T) {
	const product = `{"id":21,"deal_id":213980,"name":"Seats","product_id":502,"quantity":3,"item_price":100,"discount":10,"discount_type":"amount","tax":19,"tax_method":"exclusive"`
	for _, tc := range []struct {
		name, value, extra string
		wantDiscount       string // the line's discount, an amount off the line
		wantAmount         string // the deal's amount as read, net of tax ("": value)
		wantErr            []string
	}{
		{name: "sum off the line", value: "290", extra: `,"sum":290`, wantDiscount: "10"},
		{name: "no sum", value: "290", extra: `,"sum":null`, wantDiscount: "10"},
		{name: "sum unrounded", value: "290", extra: `,"sum":290.004`, wantDiscount: "10"},
		{name: "sum off each unit", value: "270", extra: `,"sum":270`, wantDiscount: "30"},
		{name: "sum with the exclusive tax", value: "290", extra: `,"sum":345.1`, wantDiscount: "10"},
		{name: "sum off each unit, with the exclusive tax", value: "270", extra: `,"sum":321.3`, wantDiscount: "30"},
		// Pipedrive's value is the total of the products' sums: when the
		// sums count the exclusive tax, so does the value, and the tax
		// is taken off it as for an inclusive line.
		{name: "value of sums with the exclusive tax", value: "345.1", extra: `,"sum":345.1`, wantDiscount: "10", wantAmount: "290"},
		{name: "value of sums off each unit, with the exclusive tax", value: "321.3", extra: `,"sum":321.3`, wantDiscount: "30", wantAmount: "270"},
		{name: "sum nothing explains", value: "290", extra: `,"sum":250`,
			wantErr: []string{"deal 213980 product line 21", `"Seats"`, "290.00", "250.00", "dealsync runs retry"}},
		{name: "another currency", value: "290", extra: `,"sum":290,"currency":"USD"`,
			wantErr: []string{"deal 213980 product line 21", "priced in USD but the deal is in EUR"}},
		{name: "the deal's currency in lower case", value: "290", extra: `,"sum":290,"currency":"eur"`, wantDiscount: "10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fakePipedrive(t, "token-6083095")
			inclusiveDeal(f, "213980", tc.value, product+tc.extra+"}")
			d, err := apiSource(t, f.URL, nil).FetchDeal(context.Background(), "6083095", "213980")
			if tc.wantErr != nil {
				if !errors.Is(err, connectors.ErrPermanent) {
					t.Fatalf("want a permanent error, got %v (deal %+v)", err, d)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not say %q: %v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("FetchDeal: %v", err)
			}
			if len(d.LineItems) != 1 || !d.LineItems[0].Discount.Equal(dec(tc.wantDiscount)) {
				t.Fatalf("lines %+v, want one line with %s off", d.LineItems, tc.wantDiscount)
			}
			want := tc.value
			if tc.wantAmount != "" {
				want = tc.wantAmount
			}
			if !d.Amount.Valid || !d.Amount.Decimal.Equal(dec(want)) {
				t.Errorf("the deal's amount %v, want %s net of tax", d.Amount, want)
			}
			if total, _ := lineTotals(model.Currency(d.Currency), d.LineItems[0], dec("0")); !total.Equal(dec(want)) {
				t.Errorf("the line bills %s net, want the deal's %s", total, want)
			}
		})
	}
}
