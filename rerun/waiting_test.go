package rerun

import (
	"strings"
	"testing"
	"time"

	deploymentpb "go.temporal.io/api/deployment/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// A running run whose workflow task waits, scheduled and taken by no
// worker, for WaitingTaskAfter or longer says it waits for a worker: of
// its build when it is pinned; a task taken (started), or waiting less,
// says nothing.
func TestWaitingForWorker(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	describe := func(state enumspb.PendingWorkflowTaskState, ago time.Duration, pinned string) *workflowservice.DescribeWorkflowExecutionResponse {
		d := &workflowservice.DescribeWorkflowExecutionResponse{
			WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{},
			PendingWorkflowTask:   &workflowpb.PendingWorkflowTaskInfo{State: state, ScheduledTime: timestamppb.New(now.Add(-ago))},
		}
		if pinned != "" {
			d.WorkflowExecutionInfo.VersioningInfo = &workflowpb.WorkflowExecutionVersioningInfo{
				Behavior:          enumspb.VERSIONING_BEHAVIOR_PINNED,
				DeploymentVersion: &deploymentpb.WorkerDeploymentVersion{DeploymentName: "dealsync", BuildId: pinned},
			}
		}
		return d
	}
	scheduled, started := enumspb.PENDING_WORKFLOW_TASK_STATE_SCHEDULED, enumspb.PENDING_WORKFLOW_TASK_STATE_STARTED
	for _, c := range []struct {
		d    *workflowservice.DescribeWorkflowExecutionResponse
		want string
	}{
		{describe(scheduled, 2*time.Minute, "v1"), "workflow task waiting since 2026-12-07T11:58:00Z for a worker of build v1 of worker deployment dealsync, which the run is pinned to: start that build's workers"},
		{describe(scheduled, WaitingTaskAfter, ""), "workflow task waiting since 2026-12-07T11:59:00Z for a worker: none polls the task queue (or all are busy), or, with worker.deployment, no build is current"},
		{describe(scheduled, WaitingTaskAfter-time.Second, "v1"), ""},
		{describe(started, time.Hour, "v1"), ""},
		{&workflowservice.DescribeWorkflowExecutionResponse{}, ""},
	} {
		got := waitingForWorker(c.d, now)
		if c.want == "" && got != "" || c.want != "" && !strings.HasPrefix(got, c.want) {
			t.Errorf("%v: got %q, want %q", c.d.GetPendingWorkflowTask(), got, c.want)
		}
	}
}
