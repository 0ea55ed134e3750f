package quickbooks_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors/quickbooks"
	"github.com/dealsync/dealsync/model"
)

// Intuit says in each token answer when the refresh token expires
// (x_refresh_token_expires_in): about 100 days on, until the grant nears
// Intuit's five-year cap. Within 30 days of that, each refresh warns in
// the worker's log with the date and what to do, before every invoice
// step fails as unauthorized.
func TestRefreshTokenNearItsEndIsWarnedOf(t *testing.T) {
	for _, tc := range []struct {
		name      string
		expiresIn time.Duration
		warned    bool
	}{
		{"a young grant", 0, false}, // the fake's 101 days
		{"a grant at its five-year cap", 20 * 24 * time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.RefreshTokenExpiresIn = int(tc.expiresIn / time.Second)
			var logged bytes.Buffer
			tg := newTargetWith(t, f, t.TempDir(), quickbooks.Deps{Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			if _, err := tg.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k"); err != nil {
				t.Fatal(err)
			}
			got := logged.String()
			if !tc.warned {
				if strings.Contains(got, "refresh token") {
					t.Errorf("warned of a refresh token 101 days from its end: %s", got)
				}
				return
			}
			day := time.Now().Add(tc.expiresIn).UTC().Format("2006-01-02")
			for _, want := range []string{"level=WARN", "expires soon", "connect the company again", "realm=" + realm, "refresh_token_expires=" + day} {
				if !strings.Contains(got, want) {
					t.Errorf("the warning does not say %q: %s", want, got)
				}
			}
		})
	}
}

// A company whose custom transaction numbers are off numbers invoices
// itself, and Intuit advises not to send DocNumber then: the worker's log
// says so once, with what to do; a company with them on hears nothing.
func TestCompanyThatNumbersInvoicesItselfIsWarnedOf(t *testing.T) {
	for _, itself := range []bool{false, true} {
		f := newFake(t)
		f.NumbersItself = itself
		var logged bytes.Buffer
		tg := newTargetWith(t, f, t.TempDir(), quickbooks.Deps{Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		ctx := context.Background()
		for i, ref := range []string{"D-1", "D-2"} {
			inv := exampleInvoice()
			inv.Reference = ref
			c, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "c")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tg.CreateInvoice(ctx, inv, c, "k"+ref); err != nil {
				t.Fatalf("invoice %d: %v", i, err)
			}
		}
		n := strings.Count(logged.String(), "custom transaction numbers off")
		if itself && (n != 1 || !strings.Contains(logged.String(), `"DS-\" + deal.id`)) || !itself && n != 0 {
			t.Errorf("numbers itself %v: %d warnings: %s", itself, n, logged.String())
		}
	}
}
