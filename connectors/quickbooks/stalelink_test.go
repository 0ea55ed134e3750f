package quickbooks_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors"
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
