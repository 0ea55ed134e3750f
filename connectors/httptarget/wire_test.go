package httptarget

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

func TestNumberFormats(t *testing.T) {
	d := decimal.RequireFromString
	for _, c := range []struct {
		cur  model.Currency
		in   string
		fn   func(model.Currency, decimal.Decimal) string
		want string
	}{
		{"EUR", "12000", model.Currency.Format, "12000.00"},
		{"JPY", "1500", model.Currency.Format, "1500"},
		{"KWD", "1.5", model.Currency.Format, "1.500"},
		{"EUR", "0.1234", atLeastMinor, "0.1234"},
		{"EUR", "0.1200", atLeastMinor, "0.12"},
		{"EUR", "5", atLeastMinor, "5.00"},
		{"JPY", "333", atLeastMinor, "333"},
		{"EUR", "1.5E3", func(_ model.Currency, x decimal.Decimal) string { return model.ExactString(x) }, "1500"},
		{"EUR", "1.50", func(_ model.Currency, x decimal.Decimal) string { return model.ExactString(x) }, "1.5"},
		{"EUR", "-0.0700", func(_ model.Currency, x decimal.Decimal) string { return model.ExactString(x) }, "-0.07"},
	} {
		if got := c.fn(c.cur, d(c.in)); got != c.want {
			t.Errorf("%s %s → %q, want %q", c.cur, c.in, got, c.want)
		}
	}
	// Package-level switches of decimal do not change the wire.
	decimal.UseScientificNotation = true
	defer func() { decimal.UseScientificNotation = false }()
	if got := model.ExactString(d("1500")); got != "1500" {
		t.Errorf("model.ExactString(1500) with scientific notation on = %q", got)
	}
}

func TestVendorMessage(t *testing.T) {
	for body, want := range map[string][2]string{
		`{"error":{"message":"bad","field":"total"}}`: {"bad", "total"},
		`{"error":"nope"}`:                            {"nope", ""},
		`{"message":"m","field":"f"}`:                 {"m", "f"},
		"  plain text\n":                              {"plain text", ""},
		`{"error":{"code":42}}`:                       {`{"error":{"code":42}}`, ""},
		"":                                            {"", ""},
	} {
		m, f := vendorMessage([]byte(body))
		if m != want[0] || f != want[1] {
			t.Errorf("vendorMessage(%q) = %q, %q; want %q, %q", body, m, f, want[0], want[1])
		}
	}
}

func benchInvoice() model.Invoice {
	inv := model.Invoice{
		Reference: "HS-DEAL-42",
		Currency:  "EUR",
		IssueDate: model.NewDate(2025, time.March, 1),
		DueDate:   model.NewDate(2025, time.March, 31),
	}
	for range 10 {
		inv.Lines = append(inv.Lines, model.InvoiceLine{
			ItemCode: "SKU", Description: "Line", Quantity: decimal.NewFromInt(3),
			UnitPrice: decimal.RequireFromString("33.333"), Discount: decimal.NewFromInt(1), TaxRate: decimal.NewFromInt(19),
		})
	}
	inv.ComputeTotals()
	return inv
}

func BenchmarkBuildInvoiceRequest(b *testing.B) {
	tg, err := New(Config{BaseURL: "https://erp.example/api", AuthValue: secret.New("Bearer x")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	inv := benchInvoice()
	cus := connectors.CustomerRef{ID: "CUS-0001"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tg.invoiceRequest(ctx, inv, cus, "key"); err != nil {
			b.Fatal(err)
		}
	}
}
