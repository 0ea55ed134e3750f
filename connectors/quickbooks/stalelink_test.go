package quickbooks_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/quickbooks"
	"github.com/dealsync/dealsync/connectors/quickbooks/qbofake"
)

// A company whose linked customer was deleted (made inactive) or merged
// away in QuickBooks since has its invoice refused: the link is forgotten
// and the error says to retry, which matches the company afresh by name
// (here: a new customer, the deleted one being named "… (deleted)");
// before, every invoice of the company was refused until someone edited
// the link file. A refusal for a customer the link does not give keeps
// the link and QBO's message.
func TestDeletedLinkedCustomerIsForgotten(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	tg := newTarget(t, f)
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "first/customer")
	if err != nil {
		t.Fatal(err)
	}
	f.DeleteCustomer(ref.ID)
	if again, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "second/customer"); err != nil || again.ID != ref.ID {
		t.Fatalf("linked: %+v, %v", again, err)
	}
	_, err = tg.CreateInvoice(ctx, inv, ref, "second/invoice")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent {
		t.Fatalf("err = %v; want permanent", err)
	}
	for _, want := range []string{"has been deleted", "customer " + ref.ID, "link is forgotten", "dealsync runs retry"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	next, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "retry/customer")
	if err != nil || next.ID == ref.ID || !next.Created {
		t.Fatalf("after the link was forgotten: %+v, %v; want a new customer", next, err)
	}
	if _, err := tg.CreateInvoice(ctx, inv, next, "retry/invoice"); err != nil {
		t.Fatalf("retry: %v", err)
	}

	// A deleted customer the link does not give: QBO's message alone.
	other := exampleInvoice()
	other.Customer.ExternalID, other.Reference = "C-9", "D-9"
	_, err = tg.CreateInvoice(ctx, other, connectors.CustomerRef{ID: "77"}, "other/invoice")
	if err == nil || !strings.Contains(err.Error(), "Names element id 77 not found") || strings.Contains(err.Error(), "forgotten") {
		t.Errorf("an unlinked customer: %v", err)
	}
}

// Only QBO's answers for a deleted or merged customer are taken as such:
// another fault on CustomerRef (a currency that is not the customer's), a
// missing name of another id, or the generic "made inactive" keep the link.
func TestStaleCustomerIsOnlyTheDeletedCustomersAnswer(t *testing.T) {
	api := func(field, msg string) error {
		return &connectors.APIError{Service: "quickbooks", StatusCode: 400, Field: field, Message: msg}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{api("", "ValidationFault: Invalid Reference Id: Invalid Reference Id : Customer assigned to this transaction has been deleted. Before you can modify this transaction, you must restore Acme (deleted). (code 2500)"), true},
		{api("", "ValidationFault: Invalid Reference Id: Invalid Reference Id : Names element id 58 not found (code 2500)"), true},
		{api("", "ValidationFault: Invalid Reference Id: Invalid Reference Id : Names element id 580 not found (code 2500)"), false},
		{api("CustomerRef", "ValidationFault: Business Validation Error: The currency of the transaction must match the currency of the customer (EUR). (code 6000)"), false},
		{api("", "ValidationFault: Object Not Found: Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees. (code 610)"), false},
	} {
		if got := quickbooks.StaleCustomer(tc.err, "58"); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.err, got, tc.want)
		}
	}
}

// QBO's generic "made inactive" refusal names no record: the linked
// customer is read, and the link forgotten only when that customer is the
// inactive one; an inactive item (the customer active) keeps the link.
func TestGenericInactiveRefusalReadsTheCustomer(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	f.GenericInactive = true
	tg := newTarget(t, f)
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "first/customer")
	if err != nil {
		t.Fatal(err)
	}
	// An inactive item: the customer is active, the link stays.
	f.Fail("POST /invoice", qbofake.Fault{InactiveName: true})
	if _, err := tg.CreateInvoice(ctx, inv, ref, "first/invoice"); err == nil || !strings.Contains(err.Error(), "made inactive") || strings.Contains(err.Error(), "forgotten") {
		t.Fatalf("an inactive item: %v", err)
	}
	if again, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "again/customer"); err != nil || again.ID != ref.ID {
		t.Fatalf("the link after an inactive item: %+v, %v; want %s", again, err, ref.ID)
	}
	// The customer made inactive: read so, and the link forgotten.
	f.DeleteCustomer(ref.ID)
	_, err = tg.CreateInvoice(ctx, inv, ref, "second/invoice")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), "link is forgotten") {
		t.Fatalf("the customer made inactive: %v", err)
	}
	if next, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "retry/customer"); err != nil || next.ID == ref.ID {
		t.Fatalf("after the link was forgotten: %+v, %v", next, err)
	}
}
