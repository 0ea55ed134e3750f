package activities

import "github.com/dealsync/dealsync/connectors"

// InvoiceRetryAdvice ends the advice of a failure that says the invoice
// may exist in the ERP (its reference named before), after "look for it
// there before invoicing by hand": what retry (the command that starts
// the deal's run again, "dealsync runs retry" with the flag that selects
// the run) does about it, as the run's target says (how,
// connectors.InvoiceRetry). A target that finds the invoice an earlier
// attempt made: the retry finds it under the same idempotency key. An
// http target without lookup_invoices: the retry sends it again, which
// makes a second invoice unless the API honours the key, so look first.
// A target that does not say (a run started by the release before this
// one, which did not pin it): nothing is promised.
func InvoiceRetryAdvice(how connectors.InvoiceRetry, retry string) string {
	switch how {
	case connectors.InvoiceRetryFinds:
		return "; " + retry + " finds it under the same idempotency key"
	case connectors.InvoiceRetryKeyOnly:
		return " or with " + retry + ": this http target does not look invoices up (lookup_invoices is off), so the retry sends the invoice again " +
			"under the same idempotency key, which makes a second invoice unless the API honours that key; " +
			"set lookup_invoices: true on the target if the API lists invoices by reference"
	default:
		return " or with " + retry + ", which finds it under the same idempotency key only where the target looks invoices up " +
			"(xero, quickbooks, netsuite; http with lookup_invoices) or the ERP honours that key, and otherwise makes a second invoice"
	}
}
