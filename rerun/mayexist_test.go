package rerun

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// mayExistMessage is the failure of a run whose invoice step got no
// answer, as the activity writes it (activities.CreateInvoice: the ERP
// may have acted).
const mayExistMessage = `ERPUnavailable: target "erp": POST /invoices: no answer; the ERP ` + activities.MayHaveMadeInvoice +
	` (reference "DS-4711") all the same: look for it there before invoicing by hand or with dealsync runs retry: …`

// canceledWith is the close event of a run canceled with details msg (a
// run canceled during its invoice step: the workflow's CanceledError).
func canceledWith(t *testing.T, msg string) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventId: 12, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionCanceledEventAttributes{WorkflowExecutionCanceledEventAttributes: &historypb.WorkflowExecutionCanceledEventAttributes{
			Details: &commonpb.Payloads{Payloads: []*commonpb.Payload{mustPayload(t, msg)}}}}}
}

// A run whose failure says its invoice may exist in the ERP is retried
// in full only where the target the new run would use finds that
// invoice (http with lookup_invoices); where it does not look invoices
// up (http without), it is skipped, on a dry run too, naming the
// reference to look for, the target and --no-invoice-found, which then
// retries it. A run whose failure says nothing of the kind is retried
// wherever it goes. A run canceled during its invoice step says so in its
// cancellation's details, and is held back alike, with --canceled named.
func TestRetryOfARunWhoseInvoiceMayExist(t *testing.T) {
	const cfg = `
targets:
  erp: {type: http, base_url: "http://127.0.0.1:1"LOOKUP}
connections:
  shop:
    source: {type: generic, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
    target: erp
`
	finds := buildSet(t, strings.Replace(cfg, "LOOKUP", ", lookup_invoices: true", 1))
	keyOnly := buildSet(t, strings.Replace(cfg, "LOOKUP", "", 1))
	ctx := context.Background()
	in := workflows.InvoiceDealInput{Connection: "shop", Event: model.DealEvent{EventID: "e1", Deal: model.Deal{ID: "4711", Stage: "won"}}}
	failed := enumspb.WORKFLOW_EXECUTION_STATUS_FAILED
	mayExist := []*historypb.HistoryEvent{started(t, in), failedWith(appFailure(activities.ErrTypeERPUnavailable, mayExistMessage))}
	mapping := []*historypb.HistoryEvent{started(t, in), mappingFailed()}
	// The same run, pinned to the target the config gives it now, and to
	// another one (the config changed since, or the run failed
	// ERPTargetMismatch after an attempt on its own target).
	conn, _ := finds.Get("shop")
	here := conn.TargetIdentityFor("")
	other := here
	other.Fingerprint, other.Description = here.Fingerprint+"-old", `target "old" (http, base_url http://old.invalid)`
	pinned := func(to connectors.TargetIdentity) []*historypb.HistoryEvent {
		in := in
		in.ERPTarget = &to
		return []*historypb.HistoryEvent{started(t, in), failedWith(appFailure(activities.ErrTypeERPUnavailable, mayExistMessage))}
	}

	for _, tc := range []struct {
		name     string
		keyOnly  bool
		status   enumspb.WorkflowExecutionStatus
		events   []*historypb.HistoryEvent
		o        Options
		held     bool
		flagSaid string
		says     []string // what the skip says, if not the key_only target's
	}{
		{name: "finds", status: failed, events: mayExist},
		{name: "finds, dry run", status: failed, events: mayExist, o: Options{DryRun: true}},
		{name: "key_only", keyOnly: true, status: failed, events: mayExist, held: true, flagSaid: "`dealsync runs retry --no-invoice-found`"},
		{name: "key_only, dry run", keyOnly: true, status: failed, events: mayExist, o: Options{DryRun: true}, held: true, flagSaid: "`dealsync runs retry --no-invoice-found`"},
		{name: "finds, pinned to it", status: failed, events: pinned(here)},
		{name: "finds, pinned to another target", status: failed, events: pinned(other), held: true, says: []string{
			`the run was started for target "old" (http, base_url http://old.invalid), where an attempt may have made it, and the new run would go to ` + here.Description,
			`look for an invoice with reference "DS-4711" in the ERP of target "old" (http, base_url http://old.invalid);`,
			"`dealsync runs retry --no-invoice-found`"}},
		{name: "finds, pinned to another target, --no-invoice-found", status: failed, events: pinned(other), o: Options{NoInvoiceFound: true}},
		{name: "key_only, --no-invoice-found", keyOnly: true, status: failed, events: mayExist, o: Options{NoInvoiceFound: true}},
		{name: "key_only, another failure", keyOnly: true, status: failed, events: mapping},
		{name: "key_only, canceled in the invoice step", keyOnly: true, status: enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED,
			events: []*historypb.HistoryEvent{started(t, in), canceledWith(t, "canceled during the invoice step, which "+activities.MayHaveMadeInvoice+` (reference "DS-4711") in the ERP: …`)},
			o:      Options{Canceled: true}, held: true, flagSaid: "`dealsync runs retry --canceled --no-invoice-found`"},
		{name: "key_only, canceled, --no-invoice-found", keyOnly: true, status: enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED,
			events: []*historypb.HistoryEvent{started(t, in), canceledWith(t, "canceled during the invoice step, which "+activities.MayHaveMadeInvoice+` (reference "DS-4711") in the ERP: …`)},
			o:      Options{Canceled: true, NoInvoiceFound: true}},
	} {
		set := finds
		if tc.keyOnly {
			set = keyOnly
		}
		st := &recordingStarter{}
		r := one(ctx, &oneRun{runID: "r1", status: tc.status, events: tc.events}, set, st, "wf", "r1", tc.o)
		switch {
		case r.Error != "":
			t.Errorf("%s: %+v", tc.name, r)
		case tc.held:
			says := tc.says
			if says == nil {
				says = []string{`look for an invoice with reference "DS-4711" in the ERP of target "erp"`, "lookup_invoices is off", tc.flagSaid}
			}
			for _, want := range says {
				if !strings.Contains(r.Skipped, want) {
					t.Errorf("%s: skipped %q, want it to say %s", tc.name, r.Skipped, want)
				}
			}
			if st.full != 0 || r.NewRun != "" {
				t.Errorf("%s: started %+v", tc.name, r)
			}
			// The row says what the run failed with (--json:
			// failure_type, failure_message), a cancellation too.
			if r.FailureType == "" || !strings.Contains(r.FailureMessage, activities.MayHaveMadeInvoice) {
				t.Errorf("%s: failure %q %q; want the run's", tc.name, r.FailureType, r.FailureMessage)
			}
		case tc.o.DryRun:
			if r.Skipped != dryRun || st.full != 0 {
				t.Errorf("%s: %+v, want a dry run's row", tc.name, r)
			}
		default:
			if r.NewRun == "" || st.full != 1 {
				t.Errorf("%s: %+v, starter %+v; want it retried", tc.name, r, st)
			}
		}
	}
}

// The skip says, for a target that does not say whether it looks
// invoices up (a type without connectors.InvoiceRetrier), that it does
// not say; a target that finds the invoice is not skipped; a failure
// without a reference names the deal's.
func TestMayExistSkip(t *testing.T) {
	failed := enumspb.WORKFLOW_EXECUTION_STATUS_FAILED
	if s := mayExistSkip(mayExistMessage, nil, connectors.TargetIdentity{InvoiceRetry: connectors.InvoiceRetryFinds}, failed); s != "" {
		t.Errorf("finds: %q", s)
	}
	s := mayExistSkip(mayExistMessage, nil, connectors.TargetIdentity{Description: `target "books" (custom)`}, failed)
	for _, want := range []string{"does not say whether it looks invoices up", `reference "DS-4711" in the ERP of target "books" (custom)`, "`dealsync runs retry --no-invoice-found`"} {
		if !strings.Contains(s, want) {
			t.Errorf("unsaid: %q, want it to say %s", s, want)
		}
	}
	s = mayExistSkip("the ERP "+activities.MayHaveMadeInvoice, nil, connectors.TargetIdentity{InvoiceRetry: connectors.InvoiceRetryKeyOnly}, enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT)
	for _, want := range []string{"does not look invoices up,", "look for an invoice with the deal's reference in the ERP;", "`dealsync runs retry --timed-out --no-invoice-found`"} {
		if !strings.Contains(s, want) {
			t.Errorf("key_only, no setting, no reference: %q, want it to say %s", s, want)
		}
	}
}

// The skip names the reference of dealsync's note, the last one: the
// ERP's own message before it may name another; a reference with quotes
// is named as the failure quotes it.
func TestMayExistSkipNamesTheNotesReference(t *testing.T) {
	keyOnly := connectors.TargetIdentity{InvoiceRetry: connectors.InvoiceRetryKeyOnly}
	ref := `DS-"47" (11)`
	msg := fmt.Sprintf(`ERPUnavailable: POST /invoices: 504: gateway timeout (reference "GW-1"); the ERP %s (reference %q) all the same: look for it there`, activities.MayHaveMadeInvoice, ref)
	s := mayExistSkip(msg, nil, keyOnly, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED)
	if want := fmt.Sprintf("look for an invoice with reference %q in the ERP;", ref); !strings.Contains(s, want) {
		t.Errorf("%q\nwant it to say %s", s, want)
	}
}

// closeUnread is oneRun whose close event cannot be read.
type closeUnread struct{ oneRun }

type failingEvents struct{ done bool }

func (f *failingEvents) HasNext() bool { return !f.done }
func (f *failingEvents) Next() (*historypb.HistoryEvent, error) {
	f.done = true
	return nil, errors.New("frontend unavailable")
}

func (o *closeUnread) GetWorkflowHistory(ctx context.Context, id, runID string, long bool, filter enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	if filter == enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT {
		return &failingEvents{}
	}
	return o.oneRun.GetWorkflowHistory(ctx, id, runID, long, filter)
}

// A failed run whose close event cannot be read may say its invoice
// exists: it is not started blind (an error that says so), unless
// --no-invoice-found says the operator looked.
func TestRetryOfARunWhoseFailureIsUnread(t *testing.T) {
	set := genericSet(t, "shop", "")
	in := workflows.InvoiceDealInput{Connection: "shop", Event: model.DealEvent{EventID: "e1", Deal: model.Deal{ID: "4711", Stage: "won"}}}
	c := &closeUnread{oneRun{runID: "r1", status: enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, events: []*historypb.HistoryEvent{started(t, in)}}}
	st := &recordingStarter{}
	r := one(context.Background(), c, set, st, "wf", "r1", Options{})
	if !strings.Contains(r.Error, "frontend unavailable") || !strings.Contains(r.Error, "--no-invoice-found") || st.full != 0 {
		t.Errorf("unread: %+v, starter %+v", r, st)
	}
	r = one(context.Background(), c, set, st, "wf", "r1", Options{NoInvoiceFound: true})
	if r.NewRun == "" || st.full != 1 {
		t.Errorf("unread, --no-invoice-found: %+v, starter %+v", r, st)
	}
}
