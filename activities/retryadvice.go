package activities

import (
	"strings"

	"github.com/dealsync/dealsync/connectors"
)

// InvoiceRetryAdvice ends the advice of a failure that says the invoice
// may exist in the ERP (its reference named before), after "look for it
// there before invoicing by hand": what retry (the command that starts
// the deal's run again, "dealsync runs retry" with the flag that selects
// the run) does about it, as the run's target says (t.InvoiceRetry,
// connectors.InvoiceRetry). A target that finds the invoice an earlier
// attempt made: the retry finds it under the same idempotency key. A
// target whose look-up is off (an http target without lookup_invoices,
// xero with check_reference: false): the retry sends it again, which
// makes a second invoice unless the ERP still honours the key, so look
// first; the advice names the setting (t.LookupSetting). A target that
// does not say (a run started by the release before this one, which did
// not pin it): nothing is promised.
func InvoiceRetryAdvice(t connectors.TargetIdentity, retry string) string {
	switch t.InvoiceRetry {
	case connectors.InvoiceRetryFinds:
		return "; " + retry + " finds it under the same idempotency key"
	case connectors.InvoiceRetryKeyOnly:
		off, on := "its look-up of invoices by reference is off", "turn that look-up on"
		if t.LookupSetting != "" {
			off, on = t.LookupSetting+" is off", "set "+t.LookupSetting+": true on the target"
		}
		return " or with " + retry + ": this target does not look invoices up (" + off + "), so the retry sends the invoice again " +
			"under the same idempotency key, which makes a second invoice unless the ERP still honours that key; " +
			on + " if the ERP can find the deal's invoice by its reference"
	default:
		return " or with " + retry + ", which finds it under the same idempotency key only where the target looks invoices up " +
			"(xero with check_reference, quickbooks, netsuite; http with lookup_invoices) or the ERP still honours that key, and otherwise makes a second invoice"
	}
}

// Phrases of the failures that say the invoice may exist in the ERP: an
// attempt of the invoice step may have made it, its answer lost (no
// answer, a timeout, a gateway's 502, a cancellation during the step), or
// the ERP made it before the step failed (a 2xx without the invoice's
// id). The workflow's and the activities' messages are written with them,
// and `dealsync runs retry` reads a failed run's failure by them
// (SaysInvoiceMayExist): a retry of such a run, for a target that does
// not look invoices up, may make a second invoice.
const (
	MayHaveMadeInvoice = "may have made the invoice"
	MadeInvoiceBefore  = "the ERP made the invoice"
)

// SaysInvoiceMayExist says whether msg, a run's failure, says that the
// run's invoice may exist in the ERP (MayHaveMadeInvoice,
// MadeInvoiceBefore).
func SaysInvoiceMayExist(msg string) bool {
	return strings.Contains(msg, MayHaveMadeInvoice) || strings.Contains(msg, MadeInvoiceBefore)
}
