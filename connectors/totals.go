package connectors

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/model"
)

// TotalDiffers compares the total an ERP reports for the invoice it made
// (tax included) with the invoice's own, which dealsync computed and
// checked against the deal. The ERPs compute the tax themselves, by the
// tax code or type each line names (and Xero to 2 decimals in every
// currency): a difference is returned as the warning of the result (the
// run shows it) and logged; "" when they agree or the ERP gave no total.
// why says how the ERP computes.
func TotalDiffers(erp, id, number string, inv model.Invoice, reported json.Number, why string, log *slog.Logger) string {
	if reported == "" {
		return ""
	}
	got, err := decimal.NewFromString(reported.String())
	if err != nil || got.Equal(inv.Total) {
		return ""
	}
	cur := inv.Currency
	shown := cur.Format(got)
	if !cur.Round(got).Equal(got) {
		shown = got.String() // finer than the currency's minor units: as the ERP said it
	}
	msg := fmt.Sprintf("%s's total of invoice %s (%s) is %s %s, not the invoice's %s %s: %s, so check the invoice and the tax setup before sending it",
		erp, id, number, cur, shown, cur, cur.Format(inv.Total), why)
	if log != nil {
		log.Warn("invoice total differs in the ERP", "erp", erp, "invoice", id, "erp_total", shown, "invoice_total", cur.Format(inv.Total))
	}
	return msg
}
