package activities

import (
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// Error types of the failures dealsync raises; operators see them in the
// Web UI next to the message.
const (
	ErrTypeMapping         = "MappingError"
	ErrTypeValidation      = "ValidationError"
	ErrTypeERPRejected     = "ERPRejected"
	ErrTypeERPUnauthorized = "ERPUnauthorized"
	ErrTypeERPRateLimited  = "ERPRateLimited"
	ErrTypeERPUnavailable  = "ERPUnavailable"
	// The same four for the calls to the CRM (fetching the deal, writing
	// the result back), so that an operator looks at the right system.
	ErrTypeCRMRejected     = "CRMRejected"
	ErrTypeCRMUnauthorized = "CRMUnauthorized"
	ErrTypeCRMRateLimited  = "CRMRateLimited"
	ErrTypeCRMUnavailable  = "CRMUnavailable"
)

// apiErrorTypes are the four error types of one side's API calls.
type apiErrorTypes struct{ rejected, unauthorized, rateLimited, unavailable string }

var (
	erpTypes = apiErrorTypes{ErrTypeERPRejected, ErrTypeERPUnauthorized, ErrTypeERPRateLimited, ErrTypeERPUnavailable}
	crmTypes = apiErrorTypes{ErrTypeCRMRejected, ErrTypeCRMUnauthorized, ErrTypeCRMRateLimited, ErrTypeCRMUnavailable}
)

// temporalError is the one place where failures are classified for
// Temporal: mapping and validation problems and ERP rejections (400/422,
// 401/403) end the run without retrying and carry the vendor's message
// (crmError gives the CRM calls the same classes with CRM* types);
// 429 retries exactly after the advertised delay (NextRetryDelay, a server
// timer: no worker is held while waiting); 5xx, timeouts and connection
// errors retry with the policy's backoff.
func temporalError(err error) error { return classify(err, erpTypes) }

// crmError is temporalError for the calls to the CRM.
func crmError(err error) error { return classify(err, crmTypes) }

func classify(err error, types apiErrorTypes) error {
	var me *mapping.Error
	if errors.As(err, &me) {
		return temporal.NewNonRetryableApplicationError(me.Error(), ErrTypeMapping, nil, me)
	}
	var ve *model.ValidationError
	if errors.As(err, &ve) {
		return temporal.NewNonRetryableApplicationError(ve.Error(), ErrTypeValidation, nil, ve.Problems)
	}
	class, delay := connectors.Classify(err)
	switch class {
	case connectors.Permanent:
		return temporal.NewNonRetryableApplicationError(err.Error(), types.rejected, nil)
	case connectors.Unauthorized:
		return temporal.NewNonRetryableApplicationError(err.Error(), types.unauthorized, nil)
	case connectors.RetryAfter:
		return temporal.NewApplicationErrorWithOptions(err.Error(), types.rateLimited, temporal.ApplicationErrorOptions{NextRetryDelay: delay})
	default:
		return temporal.NewApplicationError(err.Error(), types.unavailable)
	}
}
