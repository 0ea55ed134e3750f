package workflows

import (
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
)

// A worker rolled back to this release after a later one started runs
// reads their input as it is written, fields it does not know included:
// the pin still matches the target by its fingerprint (no
// ERPTargetMismatch), and an invoice_retry value it does not know
// promises nothing, as a pin that does not say.
func TestAPinOfALaterReleaseIsTakenAndPromisesNothing(t *testing.T) {
	payload := &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(converter.MetadataEncodingJSON)},
		Data: []byte(`{"connection":"shop","later_field":{"x":1},"erp_target":{"fingerprint":"t1:abc",` +
			`"description":"target \"erp\" (http, base_url https://erp.example)","invoice_retry":"honours_key","lookup_setting":"lookup_invoices","later":[1,2]}}`),
	}
	var in InvoiceDealInput
	if err := converter.GetDefaultDataConverter().FromPayload(payload, &in); err != nil {
		t.Fatalf("a later release's input: %v; want it read", err)
	}
	if in.ERPTarget == nil || !(connectors.TargetIdentity{Fingerprint: "t1:abc"}).Matches(*in.ERPTarget) {
		t.Fatalf("a later release's pin %+v; want it to match the target of its fingerprint", in.ERPTarget)
	}
	advice := activities.InvoiceRetryAdvice(pinnedTarget(in), "dealsync runs retry")
	if strings.HasPrefix(advice, "; dealsync runs retry finds it") || !strings.Contains(advice, "only where the target looks invoices up") {
		t.Errorf("a later release's invoice_retry %q: %q; want the advice that promises nothing", in.ERPTarget.InvoiceRetry, advice)
	}
}
