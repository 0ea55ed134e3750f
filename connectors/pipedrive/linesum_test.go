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
			wantErr: []string{"deal 213980 product line 21", "priced in USD but the deal is in EUR", "would bill the line's quantity 3 at unit price 100 in EUR, not in USD."}},
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

// The exclusive tax a line's sum counts is taken off the deal's value only
// when the value is the sums' total, nearer to it than to the net lines:
// a net value whose lines' tax is within Pipedrive's rounding (a cent) is
// left as it is; and the tax taken off is the one the sum counts, so a
// value of the sums is the net lines exactly.
func TestFetchDealTakesOffOnlyTheTaxTheValueCounts(t *testing.T) {
	line := func(id, qty, price, discount, sum, tax string) string {
		return `{"id":` + id + `,"deal_id":213990,"name":"L` + id + `","product_id":50` + id + `,"quantity":` + qty + `,"item_price":` + price +
			`,"discount":` + discount + `,"discount_type":"percentage","tax":` + tax + `,"tax_method":"exclusive","sum":` + sum + `}`
	}
	for _, c := range []struct {
		name, value string
		lines       []string
		want        string
	}{
		// 0.10 at 19 %: sum 0.12; two untaxed lines of 100. A net value
		// of 200.10 is 0.02 off the sums (200.12), within their
		// rounding, and nearer to the net lines (200.10): kept.
		{"net value, a cent of tax", "200.10", []string{line("1", "1", "0.10", "0", "0.12", "19"), line("2", "1", "100", "0", "100", "0"), line("3", "1", "100", "0", "100", "0")}, "200.10"},
		// A value apart from the sums and the net lines: kept as it is.
		{"value set apart", "1000", []string{line("1", "3", "100", "0", "345", "15")}, "1000"},
		// The same lines with the value of their sums: the tax off.
		{"value of the sums, a cent of tax", "200.12", []string{line("1", "1", "0.10", "0", "0.12", "19"), line("2", "1", "100", "0", "100", "0"), line("3", "1", "100", "0", "100", "0")}, "200.10"},
		// 10 less 0.05 %: 9.995, 10.00 in the invoice; Pipedrive's sum
		// 11.89405 with 19 % (11.89): the tax it counts is 1.89, and the
		// value of the sums is the line's 10.00.
		{"the tax as the sum counts it", "11.89", []string{line("1", "1", "10", "0.05", "11.89405", "19")}, "10.00"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := fakePipedrive(t, "token-6083095")
			inclusiveDeal(f, "213990", c.value, c.lines...)
			d, err := apiSource(t, f.URL, nil).FetchDeal(context.Background(), "6083095", "213990")
			if err != nil {
				t.Fatal(err)
			}
			if !d.Amount.Valid || !d.Amount.Decimal.Equal(dec(c.want)) {
				t.Errorf("amount %v, want %s", d.Amount, c.want)
			}
			net := dec("0")
			for _, li := range d.LineItems {
				total, _ := lineTotals(model.Currency(d.Currency), li, dec("0"))
				net = net.Add(total)
			}
			if c.name != "value set apart" && !net.Equal(dec(c.want)) {
				t.Errorf("the lines bill %s net, want %s", net, c.want)
			}
		})
	}
}
