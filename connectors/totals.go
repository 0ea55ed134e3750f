package connectors

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/model"
)

// Reported is what an ERP says of the totals of an invoice it made: its
// total (tax included) and its subtotal (before tax); "" for one it does
// not say.
type Reported struct {
	Total, Subtotal json.Number
	// Slack is a difference that is not one (an ERP that rounds tax per
	// rate where dealsync rounds it per line: a minor unit per line).
	Slack decimal.Decimal
}

// TotalDiffers compares what an ERP reports of the invoice it made with
// the invoice, which dealsync computed and checked against the deal. The
// ERPs compute the tax themselves, by the tax code or type each line names
// (and Xero to 2 decimals in every currency). An invoice with tax (a line
// with a tax_rate) is compared by its total; one that leaves the tax to
// the ERP (no tax_rate: a US company's automated sales tax, say) by its
// subtotal, the ERP's tax being its own. A difference is returned as the
// warning of the result (the run shows it) and logged to log, which the
// target gets for the step (StepLogger: the run's connection, deal and
// workflow id); "" when they agree or the ERP did not say. why says how
// the ERP computes.
func TotalDiffers(erp, id, number string, inv model.Invoice, got Reported, why string, log *slog.Logger) string {
	what, reported, want := "total", got.Total, inv.Total
	if !inv.CarriesTax() {
		what, reported, want = "subtotal", got.Subtotal, inv.Subtotal
	}
	if reported == "" {
		return ""
	}
	amount, err := decimal.NewFromString(reported.String())
	if err != nil || amount.Sub(want).Abs().LessThanOrEqual(got.Slack) {
		return ""
	}
	cur := inv.Currency
	shown := cur.Format(amount)
	if !cur.Round(amount).Equal(amount) {
		shown = amount.String() // finer than the currency's minor units: as the ERP said it
	}
	whose := erp + "'s"
	if strings.HasSuffix(erp, "s") {
		whose = erp + "'"
	}
	msg := fmt.Sprintf("%s %s of invoice %s (%s) is %s %s, not the invoice's %s %s: %s, so check the invoice and the tax setup before sending it",
		whose, what, id, number, cur, shown, cur, cur.Format(want), why)
	if log != nil {
		log.Warn("invoice "+what+" differs in the ERP", "erp", erp, "invoice", id, "erp_"+what, shown, "invoice_"+what, cur.Format(want))
	}
	return msg
}
