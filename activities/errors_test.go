package activities

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/connectors"
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
