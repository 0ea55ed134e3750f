package activities

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit"
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
	// ErrTypeLocalFile is a token or link file of the worker's host that
	// cannot be read or written: retried, and mended on the host.
	ErrTypeLocalFile = "LocalFileUnavailable"
	// ErrTypeConnectionUnavailable is a step that a worker without the
	// run's connection picked up (an older config during a deploy):
	// retried, nothing sent, until a worker that has it takes the step.
	ErrTypeConnectionUnavailable = "ConnectionUnavailable"
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
// 429 (typed RateLimited) and 5xx, timeouts and connection errors (typed
// Unavailable) retry, and so do the token and link files of the worker's
// host (typed LocalFileUnavailable): exactly after the delay the API advertised
// (Retry-After: NextRetryDelay, a server timer, no worker held while
// waiting), with the policy's backoff otherwise.
func temporalError(err error) error { return classify(err, erpTypes, false, 0) }

// erpError is temporalError for the failed attempt of an ERP step running
// in ctx, whose number its details carry (Attempt.Number).
func erpError(ctx context.Context, err error) error {
	return classify(err, erpTypes, false, attemptOf(ctx))
}

// writeError is erpError for a step that tracked its writes
// (connectors.TrackWrites): wrote says that one was sent, and then its
// failure never says that the step wrote nothing (Attempt.NotSent).
func writeError(ctx context.Context, err error, wrote bool) error {
	return classify(err, erpTypes, wrote, attemptOf(ctx))
}

// crmError is temporalError for the calls to the CRM.
func crmError(err error) error { return classify(err, crmTypes, false, 0) }

// writeBackError is crmError for the failed attempt of the write-back
// step running in ctx, whose number its details carry (Attempt.Number):
// the workflow counts the attempts of a call the SDK went on retrying
// after its own timer (a run under way before writeback-back-off-timers)
// by it.
func writeBackError(ctx context.Context, err error) error {
	return classify(err, crmTypes, false, attemptOf(ctx))
}

// fetchError is crmError for the failed attempt of the fetch step
// running in ctx, whose number its details carry (Attempt.Number), as
// writeBackError's do.
func fetchError(ctx context.Context, err error) error {
	return classify(err, crmTypes, false, attemptOf(ctx))
}

// returnLongWait makes *err, the classified failure of a local call's
// attempt that asks to be retried after longer than over (a vendor's
// Retry-After: NextRetryDelay), end the call: the same failure, not
// retried (LongWait says what it is), so that the workflow waits it with
// a timer of its own that says what it waits for, instead of the SDK,
// which waits a back-off longer than the workflow task timeout with a
// timer of its own that says only "Sleep". over is 0 (nothing changes)
// unless the workflow asks for it (ReturnWaitsOver of the step's input):
// for a step it retries so. A regular activity (retried by Temporal, no
// worker held) is left alone.
func returnLongWait(ctx context.Context, err *error, over time.Duration) {
	var app *temporal.ApplicationError
	if over <= 0 || *err == nil || !activity.IsActivity(ctx) || !activity.GetInfo(ctx).IsLocalActivity ||
		!errors.As(*err, &app) || app.NonRetryable() || app.NextRetryDelay() <= over {
		return
	}
	*err = temporal.NewApplicationErrorWithOptions(app.Message(), app.Type(), temporal.ApplicationErrorOptions{
		NonRetryable: true, NextRetryDelay: app.NextRetryDelay(), Details: attemptDetails(app),
	})
}

// attemptDetails is app's details, an Attempt, as options take them
// (none when it has none).
func attemptDetails(app *temporal.ApplicationError) []any {
	var at Attempt
	if !app.HasDetails() || app.Details(&at) != nil {
		return nil
	}
	return []any{at}
}

// LongWait says whether err is the failure of a local call's attempt
// that returnLongWait ended (not retried, with the delay it asks for):
// the delay to wait before the step's next attempt.
func LongWait(err error) (time.Duration, bool) {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.NonRetryable() && app.NextRetryDelay() > 0 {
		return app.NextRetryDelay(), true
	}
	return 0, false
}

// Retried is err as the SDK would have retried it: a failure LongWait
// takes as retryable again (with its delay and details, the step's
// failure when it is the last), any other as it is.
func Retried(err error) error {
	var app *temporal.ApplicationError
	if _, ok := LongWait(err); !ok || !errors.As(err, &app) {
		return err
	}
	return temporal.NewApplicationErrorWithOptions(app.Message(), app.Type(), temporal.ApplicationErrorOptions{
		NextRetryDelay: app.NextRetryDelay(), Details: attemptDetails(app),
	})
}

// What a run's failure says to do when its own message names no command:
// the failure is what an integration engineer reads in the Web UI.
const (
	adviceValidation  = "fix the mapping or the deal's data in the CRM (dealsync mapping test shows the invoice a mapping makes), then start the run again with dealsync runs retry (which says why when it does not)"
	adviceERPRejected = "once the cause is fixed (in the ERP, the mapping or the target's settings), start the run again with dealsync runs retry (which says why when it does not)"
	// adviceERPUnauthorized ends an ERP's refusal of the credentials: a
	// run failed so is not started again by the fix, and every run of the
	// target that failed meanwhile needs a retry (unauthorizedAdvice fills
	// in the connection), and only those: --failure leaves out the runs
	// that failed for another reason, which would fail again.
	adviceERPUnauthorized = "once the credentials are mended, start the runs that failed so meanwhile again with dealsync runs retry --failure " + ErrTypeERPUnauthorized + " (which says why when it does not): mending them restarts no failed run"
)

// retryTail ends the advice of a run's failure that a fix and a retry
// mend.
const retryTail = ", then start the run again with dealsync runs retry (which says why when it does not)"

// mappingAdvicePrefix begins mappingAdvice.
const mappingAdvicePrefix = "fix the mapping (dealsync mapping test "

// mappingAdvice is what a MappingError says to do: fix the mapping, try
// it with `dealsync mapping test` (filled in: the mapping's name with
// the worker's config, configPath, when the worker knows it; else the
// mapping's file, path, which needs no config; else the name alone, for
// a config the reader gives), then retry the run. FILE stays to fill in:
// a deal event saved as JSON. For a run that read its deal from the CRM
// (a thin source's: fetched set), whose user has no deal file, the test
// reads the same deal: --connection, --fetch and the account, as
// fetchedMappingAdvice says.
func mappingAdvice(name, path, configPath string, fetched *fetchedDeal) string {
	cmd := "dealsync mapping test" + mappingToTest(name, path, configPath)
	if fetched != nil {
		return fetchedMappingAdvice(cmd, *fetched)
	}
	if name == "" && path == "" {
		cmd += " --mapping NAME"
	}
	return "fix the mapping (" + cmd + " --deal FILE dry-runs it on a deal event saved as FILE)" + retryTail
}

// mappingToTest is the flags of `mapping test` that name the mapping a
// run used: --config and --mapping when the worker has a config file,
// else the mapping's file (--file), else its name; "" when neither is
// known.
func mappingToTest(name, path, configPath string) string {
	switch {
	case configPath != "" && name != "":
		return " --config " + quote(configPath) + " --mapping " + quote(name)
	case path != "":
		return " --file " + quote(path)
	case name != "":
		return " --mapping " + quote(name)
	}
	return ""
}

// fetchedDeal is the deal a run read from its connection's CRM.
type fetchedDeal struct {
	connection, account, dealID string
}

// fetchedMappingAdvice is mappingAdvice for a run that read its deal d
// from the CRM: cmd, `dealsync mapping test` with the run's mapping
// (mappingToTest: not the connection's current one, which a reload may
// have changed since), and `--connection … --fetch …`, which reads the
// deal again, as the run did, and dry-runs that mapping on it
// (--account when the run names one).
func fetchedMappingAdvice(cmd string, d fetchedDeal) string {
	cmd += " --connection " + quote(d.connection) + " --fetch " + quote(d.dealID)
	if d.account != "" {
		cmd += " --account " + quote(d.account)
	}
	return "fix the mapping (" + cmd + " reads the deal from the CRM as the run did and dry-runs the mapping on it)" + retryTail
}

// quote quotes s for a POSIX shell when it needs it.
func quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-:@+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// withRetryAdvice is msg with advice after it, unless msg already says
// how to retry (names runs retry, or says to retry the run).
func withRetryAdvice(msg, advice string) string {
	if strings.Contains(msg, "runs retry") || strings.Contains(msg, "retry the run") {
		return msg
	}
	return msg + "; " + advice
}

// WithoutRetryAdvice is msg without the advice withRetryAdvice added, for
// a message that goes on to say what to do otherwise.
func WithoutRetryAdvice(msg string) string {
	for _, a := range []string{adviceValidation, adviceERPRejected} {
		msg = strings.TrimSuffix(msg, "; "+a)
	}
	if i := strings.LastIndex(msg, "; "+unauthorizedAdvicePrefix); i >= 0 && strings.HasSuffix(msg, unauthorizedAdviceSuffix) {
		msg = msg[:i]
	}
	if i := strings.LastIndex(msg, "; "+mappingAdvicePrefix); i >= 0 {
		advice := msg
		if j := strings.LastIndex(msg, snapshotNotePrefix); j > i {
			advice = msg[:j] // the snapshot's note goes with the advice
		}
		if strings.HasSuffix(advice, retryTail) {
			msg = msg[:i]
		}
	}
	return msg
}

// mappingError is the failure of a run on me, with mappingAdvice for the
// mapping's file path and the worker's config, configPath, and the deal
// the run read from the CRM (nil: the deal came with the event). A run
// that mapped with its snapshot, of hash snapshot ("" for none: the
// built-in mapping), says so at the end (snapshotNote).
func mappingError(me *mapping.Error, path, configPath string, fetched *fetchedDeal, snapshot string) error {
	return temporal.NewNonRetryableApplicationError(withRetryAdvice(me.Error(), mappingAdvice(me.Mapping, path, configPath, fetched))+snapshotNote(snapshot), ErrTypeMapping, nil, me)
}

// snapshotNotePrefix begins snapshotNote.
const snapshotNotePrefix = "; this is the run's mapping as it started (hash "

// snapshotNote is what a MappingError of a run that mapped with its
// snapshot (hash) adds at its end: the file's lines it names are that
// version's, which a Reset in the Web UI replays, failing again after a
// fix, while runs retry starts a run with the mapping as it is now.
// "" for no snapshot.
func snapshotNote(hash string) string {
	if hash == "" {
		return ""
	}
	return snapshotNotePrefix + hash + "), which a Web UI Reset replays; dealsync runs retry uses the mapping as it is now"
}

func classify(err error, types apiErrorTypes, wrote bool, attempt int32) error {
	var me *mapping.Error
	if errors.As(err, &me) {
		return mappingError(me, "", "", nil, "")
	}
	var ve *model.ValidationError
	if errors.As(err, &ve) {
		return temporal.NewNonRetryableApplicationError(withRetryAdvice(ve.Error(), adviceValidation), ErrTypeValidation, nil, ve.Problems)
	}
	var lf *connectors.LocalFileError
	if errors.As(err, &lf) {
		return temporal.NewApplicationError(err.Error(), ErrTypeLocalFile, Attempt{NotSent: !wrote, Number: attempt})
	}
	class, delay := connectors.Classify(err)
	switch class {
	case connectors.Permanent:
		msg := err.Error()
		// An answer with another invoice than the one sent (an earlier
		// request's of the key, or a proxy's or mock's fixed data) says
		// itself what to do: a retry at once meets the same answer.
		if types.rejected == ErrTypeERPRejected && !connectors.IsEarlierAnswer(err) {
			msg = withRetryAdvice(msg, adviceERPRejected)
		}
		return temporal.NewNonRetryableApplicationError(msg, types.rejected, nil)
	case connectors.Unauthorized:
		msg := err.Error()
		if types.unauthorized == ErrTypeERPUnauthorized {
			msg = withRetryAdvice(msg, unauthorizedAdvice(msg))
		}
		return temporal.NewNonRetryableApplicationError(msg, types.unauthorized, nil)
	}
	// The type says what happened (a 429 is a rate limit, whether or not
	// it says how long to wait); the delay, when the API gave one (on a
	// 429 or a 503), is when the retry comes.
	typ := types.unavailable
	var api *connectors.APIError
	if errors.As(err, &api) && api.StatusCode == http.StatusTooManyRequests {
		typ = types.rateLimited
	}
	details := Attempt{NotSent: !wrote && !mayHaveWritten(err), Number: attempt}
	if class == connectors.RetryAfter {
		return temporal.NewApplicationErrorWithOptions(err.Error(), typ, temporal.ApplicationErrorOptions{NextRetryDelay: delay, Details: []any{details}})
	}
	return temporal.NewApplicationError(err.Error(), typ, details)
}

// Attempt is the detail of a retryable failure of a step: what the
// workflow needs to know of the attempt that failed.
type Attempt struct {
	// NotSent says that the attempt wrote nothing: its failure was a
	// refusal before the vendor acted on it (429, a 503 with Retry-After
	// or to a read, 408 and other 4xx answers that are retried) or a call
	// never sent (a token or link file of the host, no time left in the
	// step), and no write of the step had been carried out before it
	// (connectors.TrackWrites: a target that writes, then reads what it
	// made, may fail on the read). False when a write may have been carried
	// out: no answer, a timeout, a 5xx other than 503, a 503 without
	// Retry-After to a write (APIError.Unsure), or any failure after a
	// write was answered with success.
	NotSent bool `json:"not_sent,omitempty"`
	// Number is the step's attempt that failed (1 for the first), given
	// by the ERP steps: the run's failure, when it is the last, says how
	// many were made. 0 when not known (a failure of an earlier release).
	Number int32 `json:"attempt,omitempty"`
}

// unauthorizedAdvicePrefix and unauthorizedAdviceSuffix begin and end
// unauthorizedAdvice, whichever connection it names.
var (
	unauthorizedAdvicePrefix = adviceERPUnauthorized[:strings.Index(adviceERPUnauthorized, " dealsync runs retry")]
	unauthorizedAdviceSuffix = adviceERPUnauthorized[strings.Index(adviceERPUnauthorized, " (which says why"):]
)

// leadingConnection is the connection an activity's error names first
// (`connection "shop": …`).
var leadingConnection = regexp.MustCompile(`^connection ("(?:[^"\\]|\\.)*")`)

// unauthorizedAdvice is adviceERPUnauthorized for msg, the runs retry
// narrowed to msg's connection when it names one.
func unauthorizedAdvice(msg string) string {
	m := leadingConnection.FindStringSubmatch(msg)
	if m == nil {
		return adviceERPUnauthorized
	}
	return strings.Replace(adviceERPUnauthorized, "dealsync runs retry", "dealsync runs retry --query 'Connection = "+m[1]+"'", 1)
}

// wroteNothing says whether err, a classified failure, says that its
// attempt wrote nothing (Attempt.NotSent).
func wroteNothing(err error) bool {
	var app *temporal.ApplicationError
	var at Attempt
	return errors.As(err, &app) && app.HasDetails() && app.Details(&at) == nil && at.NotSent
}

// mayHaveWritten says whether the failed call may have been carried out
// by the vendor.
func mayHaveWritten(err error) bool {
	var unknown *connectors.OutcomeUnknownError
	if errors.As(err, &unknown) {
		return true
	}
	if errors.Is(err, connectors.ErrNoTimeLeft) {
		return false
	}
	// The token endpoint's failure (a 500 there, say): the call itself
	// was never sent.
	var token *erpkit.TokenError
	if errors.As(err, &token) {
		return false
	}
	var api *connectors.APIError
	if errors.As(err, &api) {
		// A 503 is a refusal before the ERP acted, unless it came without
		// Retry-After to a write (Unsure: a gateway's, the write gone on).
		return api.StatusCode >= 500 && (api.StatusCode != http.StatusServiceUnavailable || api.Unsure)
	}
	return true
}
