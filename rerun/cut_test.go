package rerun

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
)

type identifying []connectors.Setting

func (s identifying) IdentifyingSettings() []connectors.Setting { return s }

type resolver map[string]activities.Connection

func (r resolver) Resolve(name string) (activities.Connection, bool) { c, ok := r[name]; return c, ok }

// mismatchMessage is the message of the ERPTargetMismatch a worker whose
// config sends connection "shop" to here gives a run started for pinned.
func mismatchMessage(t *testing.T, account string, here, pinned connectors.TargetIdentity) string {
	t.Helper()
	a := &activities.Activities{Connections: resolver{"shop": {TargetName: "books", TargetIdentity: here}}}
	_, err := a.FindOrCreateCustomer(context.Background(), activities.CustomerInput{Connection: "shop", Account: account, Target: &pinned})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeTargetMismatch {
		t.Fatalf("%v; want an %s", err, activities.ErrTypeTargetMismatch)
	}
	return appErr.Message()
}

// A retried step's ERPTargetMismatch, as `runs list` gives it (at most
// 1000 characters), says what to do to its end: whole for targets named
// as a Xero tenant's are; cut in the middle, its beginning and its advice
// kept, for targets whose settings are long. Before, the message was cut
// at 1000 characters, in the middle of its advice.
func TestARetriedTargetMismatchKeepsItsAdvice(t *testing.T) {
	xero := func(tenant string) connectors.TargetIdentity {
		return connectors.IdentifyTarget("books", "xero", identifying{{Key: "tenant_id", Value: tenant}, {Key: "base_url", Value: "https://api.xero.com/api.xro/2.0"}})
	}
	long := func(host string) connectors.TargetIdentity {
		return connectors.IdentifyTarget("books-of-the-northern-subsidiary", "http",
			identifying{connectors.URLSetting("base_url", "https://"+host+".example/"+strings.Repeat("api/v2/", 30))})
	}
	advice := []string{
		"`dealsync config check` on every host",
		"terminate it (Web UI, or `temporal workflow terminate`) and `dealsync runs retry --terminated --query …`",
		"starts it again for the target configured then",
	}
	for name, c := range map[string]struct {
		account      string
		here, pinned connectors.TargetIdentity
		whole        bool
	}{
		"xero tenants":       {"00D5w000004qGTOEA2", xero("0b6fa0a1-5a4b-4d7e-9e1c-1234567890ab"), xero("5c1e2f3a-5a4b-4d7e-9e1c-1234567890ab"), true},
		"long base URLs":     {"", long("a"), long("b"), false},
		"and a long account": {strings.Repeat("acct", 40), long("a"), long("b"), false},
	} {
		msg := mismatchMessage(t, c.account, c.here, c.pinned)
		got := firstLine(msg, maxTaskFailure)
		if n := utf8.RuneCountInString(got); n > maxTaskFailure {
			t.Errorf("%s: %d characters; want at most %d", name, n, maxTaskFailure)
		}
		if (got == msg) != c.whole {
			t.Errorf("%s: %q (%d characters)\nwhole: %v; want %v", name, got, utf8.RuneCountInString(msg), got == msg, c.whole)
		}
		if !strings.HasPrefix(got, `this worker sends the ERP calls of connection "shop"`) || !strings.HasSuffix(got, advice[len(advice)-1]) {
			t.Errorf("%s: %q\nwant its beginning and its end", name, got)
		}
		for _, want := range advice {
			if !strings.Contains(got, want) {
				t.Errorf("%s: %q\nwant it to say %q", name, got, want)
			}
		}
	}
}

// A long message is cut in the middle: its cause and what follows kept
// when they fit, else its last half.
func TestCutKeepingEnd(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"short: fits", "short: fits"},
		{strings.Repeat("a", 50) + ": cause; do this", strings.Repeat("a", 41) + "…: cause; do this"},
		{strings.Repeat("b", 30), "bbbbbbb…bbbbbbb"},
	} {
		width := 15
		if strings.Contains(c.in, "cause") {
			width = 58
		}
		if got := CutKeepingEnd(c.in, width); got != c.want {
			t.Errorf("CutKeepingEnd(%q, %d) = %q; want %q", c.in, width, got, c.want)
		}
	}
}

// A message that ends with what to do in parentheses, a "; " among it
// (a generic write-back's refusal), keeps the receiver's answer, its
// innermost cause, rather than its beginning alone: the "; " of the
// advice is no end of the cause.
func TestCutKeepingCauseStopsTheCauseAtATrailingAside(t *testing.T) {
	msg := `invoice INV-0005 was created, but writing it back to the CRM failed: connection "demo": writing back to deal D-1004: generic write back to http://127.0.0.1:19200/dealsync/invoices: HTTP 400: {"error":"unknown deal"} (once the cause is fixed, write the invoice back with ` + "`dealsync runs retry --writeback`" + `, which creates no second invoice; for HubSpot, Pipedrive and Salesforce, ` + "`dealsync config check --crm`" + ` names a write-back field the CRM refuses)`
	got := CutKeepingCause(msg, 120)
	if !strings.HasSuffix(got, `…: {"error":"unknown deal"}…`) || utf8.RuneCountInString(got) != 120 || !strings.HasPrefix(got, "invoice INV-0005 was created") {
		t.Errorf("got %q (%d characters)", got, utf8.RuneCountInString(got))
	}
	// Parentheses inside the clause, not at its end, change nothing.
	inner := strings.Repeat("a", 60) + " (an aside) then more: the cause; " + strings.Repeat("do this ", 10)
	if got, want := CutKeepingCause(inner, 80), strings.Repeat("a", 60)+" (an as…: the cause…"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
