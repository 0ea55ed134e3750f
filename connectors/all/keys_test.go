package all_test

import (
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/httptarget"
	"github.com/dealsync/dealsync/connectors/netsuite"
	"github.com/dealsync/dealsync/connectors/quickbooks"
	"github.com/dealsync/dealsync/connectors/xero"
	"github.com/dealsync/dealsync/model"
)

// The keys and ids the ERP targets derive from a run's step key must never
// change: a run in flight during an upgrade sends them again, and an ERP
// that no longer recognises its earlier request (or record) makes a second
// invoice or customer. These are the values of today's code, as literals,
// so that a change of the digest, its length, a prefix or the cut fails
// here instead of passing a test that compares a function with itself.
func TestDerivedKeysAreStable(t *testing.T) {
	const (
		step     = "invoice/demo/D-1001/invoice"
		custStep = "invoice/demo/D-1001/customer"
	)
	long := "invoice/" + strings.Repeat("a-very-long-connection-name/", 10) + "D-1001/invoice"
	acme := model.Customer{ExternalID: "C-1", Name: "Acme GmbH", Email: "ap@acme.example", TaxID: "DE123",
		Address: model.Address{Line1: "Hauptstr. 1", City: "Berlin", PostalCode: "10115", Country: "DE"}, Currency: "EUR"}
	for _, c := range []struct{ name, got, want string }{
		{"customer key", connectors.CustomerKey(custStep, acme), "invoice/demo/D-1001/customer/d3f02ac83503954c"},
		{"customer key, no fields", connectors.CustomerKey(custStep, model.Customer{}), "invoice/demo/D-1001/customer/6b7d5080b63f97cf"},
		{"quickbooks requestid", quickbooks.RequestID(step), "7ed00782-6e8a-5fba-a2eb-27f4edb9c6f3"},
		{"quickbooks requestid of a customer key", quickbooks.RequestID(connectors.CustomerKey(custStep, acme)), "405bf18e-5d36-5ad8-845e-79a9e5e046f5"},
		{"netsuite invoice external id", netsuite.InvoiceExternalID(step), "dealsync-invoice_demo_D-1001_in-43e8501a53e361c12af434d2414869b5"},
		{"netsuite invoice external id, long key", netsuite.InvoiceExternalID(long), "dealsync-invoice_a-very-long-co-b6e124836daf3baadeb289d44c674cd6"},
		{"xero idempotency key", xero.IdempotencyKey(step), "invoice/demo/D-1001/invoice"},
		{"xero idempotency key, long key", xero.IdempotencyKey(long), "invoice/a-very-long-connection-name/a-very-long-connection-name/a-very-long-connection-name/a-v-ee42f34ba5f3680146de14167274f125"},
		{"http idempotency key", httptarget.IdempotencyKey(step), "invoice/demo/D-1001/invoice"},
		{"http idempotency key, line break", httptarget.IdempotencyKey("invoice/demo/D\n1/invoice"), "invoice/demo/D_1/invoice-91d06e5ab6eaabddf31e80013ede99b0"},
		{"http idempotency key, long key", httptarget.IdempotencyKey("invoice/demo/" + strings.Repeat("9", 300) + "/invoice"),
			"invoice/demo/" + strings.Repeat("9", 209) + "-2a458416b007a06f9ff69d16458a6730"},
		{"http idempotency key, quotes and spaces", httptarget.IdempotencyKey(`invoice/demo/deal 42 "Q3" (renewal)/invoice`), `invoice/demo/deal 42 "Q3" (renewal)/invoice`},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q (a run in flight would send another key)", c.name, c.got, c.want)
		}
	}
}
