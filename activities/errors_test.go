package activities

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

func TestTemporalErrorClassification(t *testing.T) {
	cases := []struct {
		name         string
		err          error
		typ          string
		nonRetryable bool
		delay        time.Duration
		contains     string
	}{
		{"mapping", &mapping.Error{Mapping: "m", Field: "currency", Expression: "deal.currency", Message: "empty"}, ErrTypeMapping, true, 0, `mapping "m"`},
		{"validation", &model.ValidationError{Problems: []model.FieldError{{Field: "invoice.currency", Message: "is required"}}}, ErrTypeValidation, true, 0, "invoice.currency"},
		{"422", fmt.Errorf("connection %q: %w", "demo", &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 422, Message: "bad tax code"}), ErrTypeERPRejected, true, 0, "bad tax code"},
		{"401", fmt.Errorf("connection %q: %w", "demo", &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 401}), ErrTypeERPUnauthorized, true, 0, `connection "demo"`},
		{"429", &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429, RetryAfter: 3 * time.Second}, ErrTypeERPRateLimited, false, 3 * time.Second, "HTTP 429"},
		{"429 without Retry-After", &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429}, ErrTypeERPRateLimited, false, 0, "HTTP 429"},
		{"503", &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 503}, ErrTypeERPUnavailable, false, 0, "HTTP 503"},
		{"503 with Retry-After", &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 503, RetryAfter: 2 * time.Second}, ErrTypeERPUnavailable, false, 2 * time.Second, "HTTP 503"},
		{"network", errors.New("connection reset by peer"), ErrTypeERPUnavailable, false, 0, "connection reset"},
		{"token file", fmt.Errorf("quickbooks: saving the rotated refresh token: %w",
			&connectors.LocalFileError{What: "token store", Path: "/var/lib/dealsync/qbo.json", Err: fs.ErrPermission}), ErrTypeLocalFile, false, 0, "token store /var/lib/dealsync/qbo.json: permission denied"},
	}
	for _, c := range cases {
		var appErr *temporal.ApplicationError
		if !errors.As(temporalError(c.err), &appErr) {
			t.Fatalf("%s: not an application error", c.name)
		}
		if appErr.Type() != c.typ || appErr.NonRetryable() != c.nonRetryable || appErr.NextRetryDelay() != c.delay || !strings.Contains(appErr.Error(), c.contains) {
			t.Errorf("%s: type %s nonretryable %v delay %v msg %q", c.name, appErr.Type(), appErr.NonRetryable(), appErr.NextRetryDelay(), appErr.Error())
		}
	}
	// The CRM's calls (fetching the deal, writing back) fail in the same
	// classes with CRM* types: an operator looks at the right system.
	for status, want := range map[int]string{422: ErrTypeCRMRejected, 401: ErrTypeCRMUnauthorized, 429: ErrTypeCRMRateLimited, 502: ErrTypeCRMUnavailable} {
		api := &connectors.APIError{Service: "hubspot", Op: "fetch deal", StatusCode: status}
		if status == 429 {
			api.RetryAfter = time.Second
		}
		var appErr *temporal.ApplicationError
		if !errors.As(crmError(fmt.Errorf("connection %q: %w", "hs", api)), &appErr) || appErr.Type() != want {
			t.Errorf("CRM %d: %v, want %s", status, appErr, want)
		}
		if erp := temporalError(api); errors.As(erp, &appErr) && appErr.Type() == want {
			t.Errorf("ERP %d typed as the CRM's %s", status, want)
		}
	}
}

// writeThenRead writes (as a target's HTTP client marks it), then fails
// reading what it made with failure.
type writeThenRead struct {
	rateLimitedERP
	write   bool
	failure error
}

func (w writeThenRead) CreateInvoice(ctx context.Context, _ model.Invoice, _ connectors.CustomerRef, _ string) (connectors.InvoiceResult, error) {
	if w.write {
		connectors.WriteDone(ctx)
	}
	return connectors.InvoiceResult{}, w.failure
}

// A failed invoice step says it wrote nothing (Attempt.NotSent) only when
// its failure is a refusal and no write of the step had been sent: a 429
// on the read-back of an invoice just written (NetSuite reads what it
// wrote) may follow an invoice made.
func TestAnInvoiceStepThatWroteNeverSaysNotSent(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		write   bool
		failure error
		notSent bool
	}{
		{"429 before any write", false, &connectors.APIError{Service: "erp", Op: "find invoice", StatusCode: 429}, true},
		{"429 after a write", true, &connectors.APIError{Service: "erp", Op: "read invoice", StatusCode: 429}, false},
		{"token file after a write", true, &connectors.LocalFileError{What: "token store", Path: "/t.json", Err: fs.ErrPermission}, false},
		{"token file before any write", false, &connectors.LocalFileError{What: "token store", Path: "/t.json", Err: fs.ErrPermission}, true},
		{"no answer", true, &connectors.OutcomeUnknownError{Err: errors.New("timeout"), Wait: time.Second}, false},
		// The token endpoint's 500: the invoice call was never sent.
		{"token endpoint 500 before any write", false, &erpkit.TokenError{Err: &connectors.APIError{Service: "erp", Op: "get token", StatusCode: 500}}, true},
		{"API 500 before any write", false, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 500}, false},
		// A 503 with Retry-After refused the write; one without it (a
		// gateway's, connectors.UnsureAnswer) may have forwarded it.
		{"503 with Retry-After", false, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 503, RetryAfter: time.Second}, true},
		{"503 without Retry-After to the write", false, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 503, RetryAfter: 30 * time.Second, Unsure: true}, false},
	} {
		a := &Activities{Connections: oneConnection{"m": {Target: writeThenRead{write: c.write, failure: c.failure}}}}
		_, err := a.CreateInvoice(ctx, CreateInvoiceInput{Connection: "m"})
		var appErr *temporal.ApplicationError
		var at Attempt
		if !errors.As(err, &appErr) || !appErr.HasDetails() || appErr.Details(&at) != nil || at.NotSent != c.notSent {
			t.Errorf("%s: %v, details %+v; want NotSent %v", c.name, err, at, c.notSent)
		}
	}
	// A worker without the run's connection (an older config during a
	// deploy) sent nothing: retried, and a listening run can still stop
	// on a loss.
	a := &Activities{Connections: oneConnection{}}
	_, err := a.CreateInvoice(ctx, CreateInvoiceInput{Connection: "new"})
	var appErr *temporal.ApplicationError
	var at Attempt
	if !errors.As(err, &appErr) || appErr.NonRetryable() || appErr.Type() != ErrTypeConnectionUnavailable ||
		appErr.Details(&at) != nil || !at.NotSent || !strings.Contains(err.Error(), `connection "new" is not configured on this worker`) {
		t.Errorf("a connection the worker lacks: %v, details %+v; want a retried ConnectionUnavailable, NotSent", err, at)
	}
}

// A run's failure that needs someone to act (a mapping, a validation, an
// ERP's refusal) ends saying what to do, as the Web UI shows it; one whose
// own message names the command already says it once.
func TestFailuresThatNeedSomeoneSayWhatToDo(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&mapping.Error{Mapping: "m", Field: "memo", Message: "boom"}, "then start the run again with dealsync runs retry"},
		{&model.ValidationError{Problems: []model.FieldError{{Field: "invoice.currency", Message: "is required"}}}, "fix the mapping or the deal's data in the CRM"},
		{&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 400, Message: "bad"}, "once the cause is fixed (in the ERP, the mapping or the target's settings)"},
	} {
		var appErr *temporal.ApplicationError
		if err := temporalError(c.err); !errors.As(err, &appErr) || !strings.Contains(appErr.Message(), c.want) || strings.Count(appErr.Message(), "dealsync runs retry") != 1 {
			t.Errorf("%v: %v, want it to say %q once", c.err, err, c.want)
		}
	}
	already := &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 400, Message: "round it, then dealsync runs retry"}
	if err := temporalError(already); strings.Count(err.Error(), "dealsync runs retry") != 1 {
		t.Errorf("%v: the command named twice", err)
	}
	// A message that says to retry the run in its own words, or an
	// answer of an earlier request of the key (retry only once the ERP
	// forgot it), gets none.
	for _, err := range []error{
		&connectors.APIError{Service: "erp", Op: "create customer", StatusCode: 400, Message: "fix the subsidiary, then retry the run"},
		connectors.EarlierAnswer(&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 400, Message: "an earlier request of this requestid made another customer's invoice: bill by hand"}),
	} {
		if got := temporalError(err); strings.Contains(got.Error(), "start the run again with dealsync runs retry") {
			t.Errorf("%v: advice added", got)
		}
	}
	if msg := WithoutRetryAdvice(withRetryAdvice("boom", adviceERPRejected)); msg != "boom" {
		t.Errorf("WithoutRetryAdvice: %q", msg)
	}
	// A CRM's refusal (a write-back's: runs retry --writeback) gets none.
	if err := crmError(&connectors.APIError{Service: "crm", Op: "write back", StatusCode: 400}); strings.Contains(err.Error(), "runs retry") {
		t.Errorf("%v", err)
	}
}

// TestUnauthorizedAdvice: an ERP's refusal of the credentials (a refresh
// token rejected, a 401 after a refresh) fails the run for good, and
// mending the credentials restarts none of the runs that failed so: the
// failure says to retry them, narrowed to its connection; a CRM's refusal
// (a write-back's: runs retry --writeback) gets none.
func TestUnauthorizedAdvice(t *testing.T) {
	err := appMessage(t, temporalError(fmt.Errorf("connection %q: target %q: %w", "pd", "qbo",
		&connectors.APIError{Service: "quickbooks", Op: "create invoice", StatusCode: 401, Message: "write the new refresh token into targets.qbo.token_file"})))
	want := `; once the credentials are mended, start the runs that failed so meanwhile again with dealsync runs retry --query 'Connection = "pd"' --failure ERPUnauthorized (which says why when it does not): mending them restarts no failed run`
	if !strings.HasSuffix(err, want) {
		t.Errorf("ERP 401: %q\nwant it to end %q", err, want)
	}
	if got := WithoutRetryAdvice(err); strings.Contains(got, "runs retry") || !strings.HasSuffix(got, "token_file") {
		t.Errorf("WithoutRetryAdvice: %q", got)
	}
	// The advice of an earlier release's worker (no --failure), which
	// a workflow worker of this one may meet in a rolling upgrade, is
	// taken off too.
	for _, earlier := range []string{
		`; once the credentials are mended, start the runs that failed so meanwhile again with dealsync runs retry --query 'Connection = "pd"' (which says why when it does not): mending them restarts no failed run`,
		`; once the credentials are mended, start the runs that failed so meanwhile again with dealsync runs retry (which says why when it does not): mending them restarts no failed run`,
	} {
		if got := WithoutRetryAdvice("quickbooks: 401 token_file" + earlier); got != "quickbooks: 401 token_file" {
			t.Errorf("WithoutRetryAdvice of an earlier release's advice: %q", got)
		}
	}
	// Without a connection named first, the advice names none.
	bare := appMessage(t, temporalError(&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 401}))
	if !strings.HasSuffix(bare, "; "+adviceERPUnauthorized) {
		t.Errorf("ERP 401 without a connection: %q", bare)
	}
	// A message that already names runs retry keeps its own advice.
	own := temporalError(&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 403, Message: "reconnect, then dealsync runs retry"})
	if strings.Contains(own.Error(), "mending them") {
		t.Errorf("advice added twice: %q", own)
	}
	if crm := crmError(&connectors.APIError{Service: "crm", Op: "write back", StatusCode: 401}); strings.Contains(crm.Error(), "runs retry") {
		t.Errorf("CRM 401: %q", crm)
	}
}

// refusingERP refuses every customer and invoice with err.
type refusingERP struct {
	rateLimitedERP
	err error
}

func (e refusingERP) FindOrCreateCustomer(context.Context, model.Customer, string) (connectors.CustomerRef, error) {
	return connectors.CustomerRef{}, e.err
}

func (e refusingERP) CreateInvoice(context.Context, model.Invoice, connectors.CustomerRef, string) (connectors.InvoiceResult, error) {
	return connectors.InvoiceResult{}, e.err
}

// An ERP step's failure names the target it called (the connection's, or
// an account's of account_targets) after the connection: the fix of a
// refused credential is in the target's settings, and a failure naming
// the connection alone read as its CRM's. The type stays the ERP's; a
// connection whose target has no name says the connection only.
func TestERPFailuresNameTheTarget(t *testing.T) {
	refusal := &connectors.APIError{Service: "quickbooks", Op: "create invoice", StatusCode: 401, Message: "the access token was rejected"}
	conn := Connection{Target: refusingERP{err: refusal}, TargetName: "books",
		AccountTargets: map[string]NamedTarget{"7": {Name: "books-de", Target: refusingERP{err: refusal}}}}
	a := &Activities{Connections: oneConnection{"pd": conn, "bare": {Target: refusingERP{err: refusal}}}}
	ctx := context.Background()
	for _, c := range []struct {
		connection, account, want string
	}{
		{"pd", "", `connection "pd": target "books": quickbooks create invoice: HTTP 401: the access token was rejected`},
		{"pd", "7", `connection "pd": target "books-de": quickbooks create invoice: HTTP 401`},
		{"bare", "", `connection "bare": quickbooks create invoice: HTTP 401`},
	} {
		_, cerr := a.FindOrCreateCustomer(ctx, CustomerInput{Connection: c.connection, Account: c.account})
		_, ierr := a.CreateInvoice(ctx, CreateInvoiceInput{Connection: c.connection, Account: c.account})
		for step, err := range map[string]error{"customer": cerr, "invoice": ierr} {
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.Type() != ErrTypeERPUnauthorized || !appErr.NonRetryable() || !strings.HasPrefix(appErr.Message(), c.want) {
				t.Errorf("%s %s account %q: %v; want a non-retryable %s starting %q", c.connection, step, c.account, err, ErrTypeERPUnauthorized, c.want)
			}
		}
	}
}

// appMessage is the message of err, an application error.
func appMessage(t *testing.T, err error) string {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("%v: not an application error", err)
	}
	return appErr.Message()
}
