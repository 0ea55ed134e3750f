package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"

	"github.com/dealsync/dealsync/workflows"
)

// What the Web UI shows of a run: the summary and details its start
// carries (DescribeWorkflowExecution's user metadata, on the run's page
// and in its list), and the summary of each step (a local call's marker,
// an activity) and wait (a timer) in its Event History and timeline, with
// the calls as local activities (the default) and as activities.
func TestRunsSayWhatTheyDoInTheWebUI(t *testing.T) {
	for _, mode := range []string{"local", "activity"} {
		t.Run(mode, func(t *testing.T) {
			s := startStack(t, stackOptions{env: map[string]string{
				"DEALSYNC_WORKFLOW_EXTERNAL_CALLS":      mode,
				"DEALSYNC_CONNECTIONS_DEMO_SETTLE_TIME": "1s",
				"DEALSYNC_CONNECTIONS_DEMO_LINGER":      "1s",
			}})
			id := workflows.WorkflowID("demo", "D-UI")
			body := event("evt_ui", "D-UI", func(d map[string]any) {
				d["company"].(map[string]any)["name"] = "Acme *EU* Ltd"
			})
			if r := s.send(t, delivery{body: body}); r.status != http.StatusAccepted || r.parsed.Results[0].WorkflowID != id {
				t.Fatalf("won: %d %s", r.status, r.body)
			}
			if err := s.waitRun(t, id, nil); err != nil {
				t.Fatal(err)
			}

			desc, err := s.Client.DescribeWorkflowExecution(context.Background(), id, "")
			if err != nil {
				t.Fatal(err)
			}
			md := desc.GetExecutionConfig().GetUserMetadata()
			summary, details := payloadText(t, md.GetSummary()), payloadText(t, md.GetDetails())
			if want := `Deal D-UI (Acme \*EU\* Ltd) · 12,000.00 EUR · won → invoice via connection "demo"`; summary != want {
				t.Errorf("the run's summary\n %s\nwant\n %s", summary, want)
			}
			lines := strings.Split(details, "\n")
			if len(lines) != 4 || lines[0] != "- connection demo" || !strings.HasPrefix(lines[1], "- mapping ") ||
				!strings.HasPrefix(lines[2], `- ERP target "`) || lines[3] != "- started by a webhook" {
				t.Errorf("the run's details:\n%s", details)
			}
			target, _, _ := strings.Cut(strings.TrimPrefix(lines[2], "- ERP "), " (")

			steps := stepSummaries(t, s, id)
			t.Logf("summary: %s\ndetails:\n%s\nsteps and waits:\n%s", summary, details, strings.Join(steps, "\n"))
			for _, want := range []string{
				"PreviousRun: read how the deal's previous run ended",
				`MapDeal: map deal D-UI with mapping "`,
				"ValidateInvoice: validate invoice D-UI against the deal's amount",
				`FindOrCreateCustomer: ensure customer "Acme \*EU\* Ltd" in ERP ` + target,
				"CreateInvoice: create invoice D-UI in ERP " + target + " (attempt 1)",
				"timer: settle: wait for more events of deal D-UI until ",
				"timer: linger: record later changes of deal D-UI until ",
			} {
				found := false
				for _, got := range steps {
					found = found || strings.HasPrefix(got, want)
				}
				if !found {
					t.Errorf("no step or wait of the run says %q; they say\n%s", want, strings.Join(steps, "\n"))
				}
			}
			if mode == "local" {
				s.keepHistory(t, id, "generic-settle-linger-summaries")
			}
		})
	}
}

// payloadText decodes a payload of text ("" for none).
func payloadText(t *testing.T, p interface{ GetData() []byte }) string {
	t.Helper()
	if p == nil || len(p.GetData()) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(p.GetData(), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// stepSummaries lists the summaries of a run's steps ("Type: summary", a
// local call's marker or an activity) and waits ("timer: summary"), from
// its history.
func stepSummaries(t *testing.T, s *stack, workflowID string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := s.Client.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var rows []string
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		summary := ""
		if p := ev.GetUserMetadata().GetSummary(); p != nil {
			if err := converter.GetDefaultDataConverter().FromPayload(p, &summary); err != nil {
				t.Fatal(err)
			}
		}
		if typ := stepType(t, ev); typ != "" {
			rows = append(rows, typ+": "+summary)
		}
	}
	return rows
}

// stepType is the type of the step an event records (a local call's
// marker, an activity's scheduling), "timer" for a timer's start, "" for
// another event.
func stepType(t *testing.T, ev *historypb.HistoryEvent) string {
	t.Helper()
	if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
		return a.GetActivityType().GetName()
	}
	if ev.GetTimerStartedEventAttributes() != nil {
		return "timer"
	}
	m := ev.GetMarkerRecordedEventAttributes()
	if m == nil || m.GetMarkerName() != "LocalActivity" {
		return ""
	}
	var data struct{ ActivityType string }
	if p := m.GetDetails()["data"].GetPayloads(); len(p) > 0 {
		if err := json.Unmarshal(p[0].GetData(), &data); err != nil {
			t.Fatal(err)
		}
	}
	return data.ActivityType
}
