package rerun

import (
	"bytes"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/converter"

	"github.com/dealsync/dealsync/payloadcodec"
	"github.com/dealsync/dealsync/workflows"
)

// A run list read without the keys gets the memo still encrypted: the run
// says so instead of showing no mapping as if it had none.
func TestListedRunSaysItsMemoIsEncrypted(t *testing.T) {
	mapping, err := converter.GetDefaultDataConverter().ToPayload("acme")
	if err != nil {
		t.Fatal(err)
	}
	plain := &workflowpb.WorkflowExecutionInfo{Memo: &commonpb.Memo{Fields: map[string]*commonpb.Payload{workflows.MemoMapping: mapping}}}
	if r := listed(plain); r.Mapping != "acme" || r.MemoEncrypted {
		t.Fatalf("plaintext memo: mapping %q, encrypted %v", r.Mapping, r.MemoEncrypted)
	}
	codec, err := payloadcodec.New("k1", map[string][]byte{"k1": bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.Encode([]*commonpb.Payload{mapping})
	if err != nil {
		t.Fatal(err)
	}
	sealed := &workflowpb.WorkflowExecutionInfo{Memo: &commonpb.Memo{Fields: map[string]*commonpb.Payload{workflows.MemoMapping: enc[0]}}}
	if r := listed(sealed); r.Mapping != "" || !r.MemoEncrypted {
		t.Fatalf("encrypted memo: mapping %q, encrypted %v", r.Mapping, r.MemoEncrypted)
	}
	if r := listed(&workflowpb.WorkflowExecutionInfo{}); r.MemoEncrypted {
		t.Fatal("a run without a memo said its memo is encrypted")
	}
}
