package rerun

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/payloadcodec"
	"github.com/dealsync/dealsync/workflows"
)

// MaxListLimit bounds ListOptions.Limit: `runs list` is for reading, a
// larger selection wants a narrower query.
const MaxListLimit = 1000

// ListOptions select the runs List returns.
type ListOptions struct {
	// TaskQueue is dealsync's task queue: only its runs are listed.
	TaskQueue string
	// Namespace is the client's namespace, for messages, as
	// Options.Namespace, and for reading a running run's history from its
	// end (Run.WorkflowTaskFailure, Run.Retrying; "": Temporal's default
	// namespace).
	Namespace string
	// Query narrows the selection, as Options.Query (a Temporal list
	// filter, e.g. `SyncStatus = "failed"`).
	Query string
	// Limit is the most runs listed, 1 to MaxListLimit.
	Limit int
	// Failure keeps, of the runs Query selects, the failed runs whose
	// failure type (Run.FailureType) is one of these (ParseFailureTypes),
	// and those whose failure could not be read (Run.FailureReadError);
	// none: every run. Filter then selects failed runs only, and List
	// reads at most readsPerRetry × Limit of them.
	Failure []string
}

// Filter is the list filter of the runs List returns: those of dealsync's
// task queue, narrowed by o.Query in parentheses (an OR of the query
// cannot widen it).
func (o ListOptions) Filter() string {
	q := "TaskQueue = " + activities.QueryString(o.TaskQueue)
	if len(o.Failure) > 0 {
		// Only a failed run has a failure type: a terminated one has a
		// reason, a run that timed out or was canceled none.
		q += ` AND ExecutionStatus = "Failed"`
	}
	if o.Query != "" {
		q += " AND (" + o.Query + ")"
	}
	return q
}

// CheckQuery refuses a Query that would not only narrow the selection, as
// Options.CheckQuery does.
func (o ListOptions) CheckQuery() error { return Options{Query: o.Query}.CheckQuery() }

// Run is one run as the run list shows it: what the Web UI's list and its
// run page show of it, with dealsync's search attributes and memo.
type Run struct {
	WorkflowID   string `json:"workflow_id"`
	RunID        string `json:"run_id"`
	WorkflowType string `json:"workflow_type"`
	// ExecutionStatus is spelled as filters take it: "Running",
	// "Completed", "Failed", "TimedOut", "Terminated", "Canceled",
	// "ContinuedAsNew".
	ExecutionStatus string     `json:"execution_status"`
	StartTime       time.Time  `json:"start_time"`
	CloseTime       *time.Time `json:"close_time"` // nil while running
	// The search attributes (workflows.SearchAttributeTypes), empty when unset.
	DealID              string   `json:"deal_id,omitempty"`
	Connection          string   `json:"connection,omitempty"`
	CrmAccount          string   `json:"crm_account,omitempty"`
	SyncStatus          string   `json:"sync_status,omitempty"`
	ErpInvoiceID        string   `json:"erp_invoice_id,omitempty"`
	ChangedAfterInvoice bool     `json:"changed_after_invoice,omitempty"`
	Amount              *float64 `json:"amount,omitempty"`
	Currency            string   `json:"currency,omitempty"`
	// Mapping and MappingHash are the memo's (workflows.MemoMapping,
	// MemoMappingHash): the mapping version the run used, or, before it
	// mapped the deal, the one it started with.
	Mapping     string `json:"mapping,omitempty"`
	MappingHash string `json:"mapping_hash,omitempty"`
	// MemoEncrypted says the run's memo (its mapping, its warning) is
	// stored encrypted (temporal.encryption) and this client has no key
	// to read it: Mapping, MappingHash and Warning are empty then.
	MemoEncrypted bool `json:"memo_encrypted,omitempty"`
	// FailureType and FailureMessage are how a run that failed or was
	// terminated ended, from its close event (Failure): the error's type
	// and whole message (e.g. "MappingError", `mapping "acme": … no entry
	// for "CH"`), or a terminated run's reason. Empty for other runs.
	FailureType    string `json:"failure_type,omitempty"`
	FailureMessage string `json:"failure_message,omitempty"`
	// FailureReadError says why the close event of a run that failed or
	// was terminated could not be read (then FailureType and
	// FailureMessage are empty).
	FailureReadError string `json:"failure_read_error,omitempty"`
	// WorkflowTaskAttempt is the attempt of a running run's pending
	// workflow task when it is more than 1: its workflow tasks fail (a
	// worker without its connection refuses it, or its code panics) and
	// the run does not move; the Web UI's run page shows the
	// WorkflowTaskFailed event. 0 otherwise.
	WorkflowTaskAttempt int32 `json:"workflow_task_attempt,omitempty"`
	// WorkflowTaskFailure is why that task fails, when WorkflowTaskAttempt
	// is set and the run's history tells it: the message of its last
	// WorkflowTaskFailed event (a worker's refusal, `connection "x" is not
	// configured on this worker: …`, or a panic's value), its first line,
	// at most 1000 characters (cut in the middle, keeping its end). Empty otherwise, or when the history could
	// not be read.
	WorkflowTaskFailure string `json:"workflow_task_failure,omitempty"`
	// Warning is what the ERP target noticed about the invoice a
	// completed run made (the ERP's total differs from the invoice's:
	// `invoice total differs in the ERP erp_total=112.00
	// invoice_total=131.84`), from the run's memo (workflows.MemoWarning),
	// which the list returns: no read of its own. Empty for other runs,
	// and for runs completed before the release that records it there
	// (their result still has it).
	Warning string `json:"warning,omitempty"`
	// Retrying is the last failure of the step a running run retries (an
	// ERP that does not answer, a worker refusing the step for another
	// ERP target), when its workflow task does not fail: a pending
	// activity's last failure (external_calls: activity), or the last
	// failed call its history ends with (a local call's attempt whose
	// back-off became a timer, an attempt of the invoice step's made one
	// at a time), read from its end (at most two pages, as
	// WorkflowTaskFailure). nil otherwise, or when it could not be read.
	Retrying *Retrying `json:"retrying,omitempty"`
	// WaitingForWorker says why a running run has not moved when its
	// workflow task has been scheduled, and taken by no worker, for
	// WaitingTaskAfter or longer (waitingForWorker): no worker of the
	// build the run is pinned to polls (worker.deployment), or none
	// polls the task queue, or no build is current. Empty otherwise.
	WaitingForWorker string `json:"waiting_for_worker,omitempty"`
	// Superseded is the newest later run of the workflow ID of a run
	// that failed, was terminated, timed out or was canceled (readSuperseded):
	// a `runs retry` started it, say, so the run's failure may be
	// resolved, though it keeps its SyncStatus. nil otherwise, or when
	// the later runs could not be read.
	Superseded *Superseded `json:"superseded,omitempty"`
}

// List returns up to o.Limit runs of o.Filter() in Temporal's order
// (running runs first, then the last closed first; by start time among
// equals), reading the run list page by page. more says that the limit
// was reached with more runs possibly left. A Query that CheckQuery or
// Temporal refuses is ErrInvalidQuery, unless Temporal refused it for
// naming one of dealsync's search attributes, which the namespace lacks
// (a *MissingAttributeError). The runs that failed or were
// terminated have their failure, read from their close events (one read
// each, 8 at a time); a read that fails is noted in the run
// (Run.FailureReadError), not returned. No other closed run is read: a
// completed run's warning comes with the list, in its memo
// (Run.Warning). Each running run is described,
// and the end of its history read (at most two pages), for why it does
// not move (Run.WorkflowTaskFailure, Run.Retrying); a read that fails
// leaves it unsaid. A run that did not complete and of whose workflow ID
// a later run exists says so (Run.Superseded: one read of the run list
// for all of them, readSuperseded).
func List(ctx context.Context, c client.Client, o ListOptions) (runs []Run, more bool, err error) {
	if o.Limit < 1 || o.Limit > MaxListLimit {
		return nil, false, fmt.Errorf("a limit of %d runs: give 1 to %d", o.Limit, MaxListLimit)
	}
	if err := o.CheckQuery(); err != nil {
		return nil, false, err
	}
	if len(o.Failure) > 0 {
		return listByFailure(ctx, c, o)
	}
	var token []byte
	for {
		// One more than the limit leaves: whether it comes says whether
		// more match (a full page has a next-page token whether or not
		// any run is left for it).
		resp, err := listPage(ctx, c, o.Namespace, o.Filter(), o.Query, token, o.Limit-len(runs)+1)
		if err != nil {
			return runs, false, err
		}
		execs := resp.GetExecutions()
		if left := o.Limit - len(runs); len(execs) > left {
			execs, more = execs[:left], true
		}
		for _, ex := range execs {
			runs = append(runs, listed(ex))
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 || more {
			readFailures(ctx, c, o.Namespace, runs)
			readSuperseded(ctx, c, runs)
			return runs, more, nil
		}
	}
}

// listByFailure is List with o.Failure: it reads the failed runs of
// o.Filter() a page of 100 at a time, their failures with them
// (readFailures), and keeps those of o.Failure's types and those whose
// failure could not be read, until o.Limit are kept (the rest of that
// page read, no page after it: each would cost a close event per run
// for "more" alone), or readsPerRetry × o.Limit were read; more then
// says that more may match.
func listByFailure(ctx context.Context, c client.Client, o ListOptions) (runs []Run, more bool, err error) {
	var token []byte
	read := 0
	for {
		resp, err := listPage(ctx, c, o.Namespace, o.Filter(), o.Query, token, 100)
		if err != nil {
			return runs, false, err
		}
		execs := resp.GetExecutions()
		if left := FailureReads(o.Limit) - read; len(execs) > left {
			execs, more = execs[:left], true
		}
		page := make([]Run, 0, len(execs))
		for _, ex := range execs {
			page = append(page, listed(ex))
		}
		readFailures(ctx, c, o.Namespace, page)
		read += len(page)
		for _, r := range page {
			if r.FailureReadError == "" && !failureIn(o.Failure, r.FailureType) {
				continue
			}
			if len(runs) == o.Limit {
				// One more kept than the limit: more match.
				more = true
				break
			}
			runs = append(runs, r)
		}
		token = resp.GetNextPageToken()
		switch {
		case len(token) > 0 && (len(runs) == o.Limit || read >= FailureReads(o.Limit)):
			// The limit kept, or the reads spent, with more to read:
			// they may match.
			more = true
		case len(token) > 0 && !more:
			continue
		}
		readSuperseded(ctx, c, runs)
		return runs, more, nil
	}
}

// listPage reads a page of the runs filter selects, at most size. A filter
// Temporal refuses on the first page for naming one of dealsync's search
// attributes, which the namespace lacks, is a *MissingAttributeError;
// otherwise, with a query, ErrInvalidQuery naming query, the operator's
// part of it, with the position of a syntax error in it (queryError).
func listPage(ctx context.Context, c client.Client, namespace, filter, query string, token []byte, size int) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: filter, NextPageToken: token, PageSize: int32(size),
	})
	var invalid *serviceerror.InvalidArgument
	if errors.As(err, &invalid) && token == nil {
		if m := invalidAttribute.FindStringSubmatch(invalid.Message); m != nil {
			if _, ours := workflows.SearchAttributeTypes()[m[1]]; ours {
				return nil, &MissingAttributeError{Name: m[1], Refusal: invalid.Message, Namespace: namespace}
			}
		}
		if query != "" {
			return nil, fmt.Errorf("%w %q: Temporal refused the filter: %s", ErrInvalidQuery, query, queryError(filter, query, invalid.Message))
		}
	}
	return resp, err
}

// invalidAttribute matches Temporal's refusal of a filter that names a
// search attribute the namespace does not have: "invalid query: invalid
// search attribute: DealId".
var invalidAttribute = regexp.MustCompile(`invalid search attribute:? ([A-Za-z_][A-Za-z0-9_]*)`)

// MissingAttributeError says that Temporal refused a run list's filter
// because the namespace lacks one of dealsync's own search attributes
// (workflows.SearchAttributeTypes), which the filter names: the filter is
// not at fault (a --query of DealId, or the selection of `runs retry`,
// which reads SyncStatus), the namespace is.
type MissingAttributeError struct {
	// Name is the attribute Temporal named.
	Name string
	// Refusal is Temporal's message.
	Refusal string
	// Namespace is the namespace's name ("": "the namespace").
	Namespace string
}

func (e *MissingAttributeError) Error() string {
	ns := "the namespace"
	if e.Namespace != "" {
		ns = fmt.Sprintf("namespace %q", e.Namespace)
	}
	return fmt.Sprintf("%s lacks dealsync's search attributes (Temporal refused the filter: %s): register them once; dealsync config check --temporal prints the commands", ns, e.Refusal)
}

// temporalSQLPrefix is what Temporal's run list puts before a filter to
// parse it as SQL ("select * from table1 where " + the filter, trimmed),
// where the positions of its syntax errors count from.
const temporalSQLPrefix = len("select * from table1 where ")

// syntaxErrorAt matches the position of Temporal's syntax errors:
// "malformed SQL query: syntax error at position 66", optionally followed
// by " near 'tok'".
var syntaxErrorAt = regexp.MustCompile(`syntax error at position (\d+)(?: near '([^']*)')?`)

// queryError is Temporal's message refusing filter, the operator's query
// in dealsync's wrapping (filter ends with " AND (" + query + ")"), with
// the position of a syntax error counted in query instead of in the SQL
// Temporal made of filter: "at position 66" for `DealId = ` pointed past
// its end, into text the operator never wrote. The position Temporal
// gives is the byte after the offending token, 1-based: within query it
// becomes "at character N of the query" (N the token's last character);
// past query's end (the wrapping's closing parenthesis, or the end), "at
// the end of the query"; anywhere else, or when the token Temporal names
// is not in query, it is left out.
func queryError(filter, query, msg string) string {
	m := syntaxErrorAt.FindStringSubmatchIndex(msg)
	if m == nil || !strings.HasSuffix(filter, " AND ("+query+")") {
		return msg
	}
	pos, err := strconv.Atoi(msg[m[2]:m[3]])
	if err != nil {
		return msg
	}
	near := ""
	if m[4] >= 0 {
		near = msg[m[4]:m[5]]
	}
	start := len(filter) - len(query) - 1      // query's first byte in filter
	end := pos - 1 - temporalSQLPrefix - start // the token's end in query, exclusive
	var where string
	switch {
	case end > len(query):
		where = "syntax error at the end of the query (it is incomplete)"
	case end > 0 && (near == "" || strings.Contains(strings.ToLower(query[:end]), strings.ToLower(near))):
		where = fmt.Sprintf("syntax error at character %d of the query", utf8.RuneCountInString(query[:end]))
		if near != "" {
			where += fmt.Sprintf(" near '%s'", near)
		}
	default:
		where = "syntax error"
		if near != "" {
			where += fmt.Sprintf(" near '%s'", near)
		}
	}
	return msg[:m[0]] + where + msg[m[1]:]
}

// listed is what Run shows of a listed run.
func listed(ex *workflowpb.WorkflowExecutionInfo) Run {
	sa := ex.GetSearchAttributes()
	r := Run{
		WorkflowID:      ex.GetExecution().GetWorkflowId(),
		RunID:           ex.GetExecution().GetRunId(),
		WorkflowType:    ex.GetType().GetName(),
		ExecutionStatus: ex.GetStatus().String(),
		StartTime:       ex.GetStartTime().AsTime(),
		DealID:          keyword(sa, workflows.DealIDKey.GetName()),
		Connection:      keyword(sa, workflows.ConnectionKey.GetName()),
		CrmAccount:      keyword(sa, workflows.CrmAccountKey.GetName()),
		SyncStatus:      SyncStatus(sa),
		ErpInvoiceID:    ErpInvoiceID(sa),
		Currency:        keyword(sa, workflows.CurrencyKey.GetName()),
		Mapping:         memoString(ex.GetMemo(), workflows.MemoMapping),
		MappingHash:     memoString(ex.GetMemo(), workflows.MemoMappingHash),
		MemoEncrypted:   memoEncrypted(ex.GetMemo()),
	}
	if ex.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		// A run that failed after its invoice step (its write-back)
		// shows its failure, not the warning.
		r.Warning = memoString(ex.GetMemo(), workflows.MemoWarning)
	}
	if ex.GetCloseTime() != nil {
		t := ex.GetCloseTime().AsTime()
		r.CloseTime = &t
	}
	var amount float64
	if decode(sa.GetIndexedFields()[workflows.AmountKey.GetName()], &amount) {
		r.Amount = &amount
	}
	decode(sa.GetIndexedFields()[workflows.ChangedAfterInvoiceKey.GetName()], &r.ChangedAfterInvoice)
	return r
}

// keyword reads a Keyword search attribute ("" when unset).
func keyword(sa *commonpb.SearchAttributes, name string) string {
	var s string
	decode(sa.GetIndexedFields()[name], &s)
	return s
}

// memoString reads a string of a run's memo ("" when unset).
func memoString(memo *commonpb.Memo, key string) string {
	var s string
	decode(memo.GetFields()[key], &s)
	return s
}

// memoEncrypted reports whether a field of memo is still encrypted
// (payloadcodec.Encoding): the client that read it has no key for it.
func memoEncrypted(memo *commonpb.Memo) bool {
	for _, p := range memo.GetFields() {
		if string(p.GetMetadata()[converter.MetadataEncoding]) == payloadcodec.Encoding {
			return true
		}
	}
	return false
}

// decode decodes p, a search attribute's or a memo's value, into v; false
// when p is nil or holds something else.
func decode(p *commonpb.Payload, v any) bool {
	return p != nil && converter.GetDefaultDataConverter().FromPayload(p, v) == nil
}

// FailureReads is the most failed runs List reads, with
// ListOptions.Failure, for a limit of limit runs.
func FailureReads(limit int) int { return readsPerRetry * limit }
