package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/mock"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// summaryInput is the input of a run of deal id of Acme Ltd on connection
// demo, of amount in currency.
func summaryInput(id, amount, currency string) InvoiceDealInput {
	d := model.Deal{ID: id, Name: "Pro plan renewal", Stage: "closed_won", Currency: currency, Company: model.Company{Name: "Acme Ltd"}}
	if amount != "" {
		d.Amount = decimal.NewNullDecimal(decimal.RequireFromString(amount))
	}
	return InvoiceDealInput{Connection: "demo", Event: model.DealEvent{EventID: "e1", Deal: d}}
}

// A run's summary says in one line which deal it is (its id, its company
// or else its name, its amount with thousands grouped and the currency's
// minor units) and what the run does with it: invoice it, read it from
// the CRM first, write its invoice back, record its loss.
func TestStartSummaries(t *testing.T) {
	thin := summaryInput("123", "", "")
	thin.Event.Deal = model.Deal{ID: "123", Stage: "closedwon"}
	thin.Event.Thin, thin.Fetch, thin.Connection = true, true, "hubspot"
	noCompany := summaryInput("D-2", "99.999", "EUR")
	noCompany.Event.Deal.Company.Name = "  "
	writeBack := summaryInput("D-3", "1200", "EUR")
	writeBack.Invoiced = &connectors.InvoiceResult{InvoiceID: "inv_9f3", Number: "INV-0009"}
	writeBackNoNumber := summaryInput("D-3", "1200", "EUR")
	writeBackNoNumber.Invoiced = &connectors.InvoiceResult{InvoiceID: "inv_9f3"}
	lost := summaryInput("D-4", "1200.00", "EUR")
	lost.Event.Deal.Stage = "closed_lost"
	for _, c := range []struct {
		name    string
		runType string
		in      InvoiceDealInput
		want    string
	}{
		{"a won deal", InvoiceDealName, summaryInput("D-1", "1200", "EUR"), `Deal D-1 (Acme Ltd) · 1,200.00 EUR · won → invoice via connection "demo"`},
		{"millions", InvoiceDealName, summaryInput("D-1", "1234567.5", "usd"), `Deal D-1 (Acme Ltd) · 1,234,567.50 usd · won → invoice via connection "demo"`},
		{"no decimals", InvoiceDealName, summaryInput("D-1", "150000", "JPY"), `Deal D-1 (Acme Ltd) · 150,000 JPY · won → invoice via connection "demo"`},
		{"three decimals, negative", InvoiceDealName, summaryInput("D-1", "-0.005", "KWD"), `Deal D-1 (Acme Ltd) · -0.005 KWD · won → invoice via connection "demo"`},
		{"no currency", InvoiceDealName, summaryInput("D-1", "999", ""), `Deal D-1 (Acme Ltd) · 999.00 · won → invoice via connection "demo"`},
		{"no amount", InvoiceDealName, summaryInput("D-1", "", "EUR"), `Deal D-1 (Acme Ltd) · won → invoice via connection "demo"`},
		{"an amount too long to show", InvoiceDealName, summaryInput("D-1", "1e30", "EUR"), `Deal D-1 (Acme Ltd) · won → invoice via connection "demo"`},
		{"more decimals than the currency's, no company", InvoiceDealName, noCompany, `Deal D-2 (Pro plan renewal) · 99.999 EUR · won → invoice via connection "demo"`},
		{"a thin event", InvoiceDealName, thin, `Deal 123 · won → invoice via connection "hubspot" (deal read from the CRM)`},
		{"a write-back", InvoiceDealName, writeBack, `Deal D-3 (Acme Ltd) · 1,200.00 EUR · write invoice INV-0009 back to the CRM via connection "demo"`},
		{"a write-back of an invoice without a number", InvoiceDealName, writeBackNoNumber, `Deal D-3 (Acme Ltd) · 1,200.00 EUR · write invoice inv_9f3 back to the CRM via connection "demo"`},
		{"a loss", RecordDealLossName, lost, `Deal D-4 (Acme Ltd) · 1,200.00 EUR · lost (stage closed_lost) → record the loss via connection "demo"`},
	} {
		if got := StartSummary(c.runType, c.in); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// What a CRM sends is written as plain text: markdown's formatting
// characters escaped (not an underscore within a word, nor an & that
// starts no entity), a line break as a space.
func TestStartSummaryEscapesMarkdown(t *testing.T) {
	in := summaryInput("D_1*", "10", "EUR")
	in.Event.Deal.Company.Name = "*Acme* & Co\nGmbH"
	want := `Deal D_1\* (\*Acme\* & Co GmbH) · 10.00 EUR · won → invoice via connection "demo"`
	if got := StartSummary(InvoiceDealName, in); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	name := "**Acme** [pay](https://evil.example) <b>x</b> `c` ~~s~~ |t| _u_ a_b Smith & Sons &amp; &#42; \\\r\nNext line"
	want = `\*\*Acme\*\* \[pay\](https\://evil.example) \<b\>x\</b\> \` + "`" + `c\` + "`" + ` \~\~s\~\~ \|t\| \_u\_ a_b Smith & Sons \&amp; \&#42; \\ Next line`
	if got := plainText(name, 200); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

// What GitHub's markdown would make a link of without brackets (a bare
// URL, a www. address, an e-mail address) is broken by an escape that
// renders as nothing; a bidi override, another format or control
// character is a space, so that a name cannot show reversed or hide
// characters.
func TestPlainBreaksAutolinksAndFormatCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"https://evil.example/pay":            `https\://evil.example/pay`,
		"Pay at ftp://x.example now":          `Pay at ftp\://x.example now`,
		"www.evil.example":                    `www\.evil.example`,
		"see WWW.evil.example, (www.x.io)":    `see WWW\.evil.example, (www\.x.io)`,
		"awww.example and www":                `awww.example and www`,
		"billing@evil.example":                `billing\@evil.example`,
		"mailto:a@b.example @ 10:30":          `mailto:a\@b.example @ 10:30`,
		"Acme\u202egnp.exe":                   `Acme gnp.exe`,
		"A\u200bc\u00adm\ufeffe\u2066x\u2069": `A c m e x`,
		"C1\u0085\u009bx\x7f\x00y\u2028z":     `C1  x  y z`,
		"\u202e\u200b Acme \r\n":              `Acme`,
		"two\r\nlines\n\nthree":               `two lines  three`,
	} {
		if got := plainText(in, 200); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
	// "\r\n" counts as one character.
	if got := plainText("ab\r\ncd", 5); got != "ab cd" {
		t.Errorf(`"ab\r\ncd" cut at 5 characters: %q`, got)
	}
}

// payloadSize is the size of text as the SDK sends it as user metadata:
// its payload's data, and the whole payload (data and encoding), which
// Temporal's limit.userMetadataSummarySize bounds.
func payloadSize(t *testing.T, text string) (data, whole int) {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(text)
	if err != nil {
		t.Fatal(err)
	}
	return len(p.GetData()), proto.Size(p)
}

// The worst texts a CRM or config can send for the summaries' size: many
// characters JSON writes as \u003c once escaped (8 bytes each), 4-byte
// characters, quotes and backslashes, 10 KB of each.
var worstTexts = map[string]string{
	"escaped":     strings.Repeat("<", 10000),
	"entities":    strings.Repeat("&a", 5000),
	"4-byte":      strings.Repeat("𝔄", 10000),
	"mixed":       strings.Repeat(`<𝔄&x"\>`, 1500),
	"backslashes": strings.Repeat(`\`, 10000),
}

// Every summary dealsync gives a run, a step or a wait encodes in at most
// 300 bytes (a payload well within Temporal's 400-byte default limit on
// a summary), and its details and current details in at most 4,000 (the
// limit is 20,000), however long and escape-laden the deal's texts: each
// text from outside is cut with "…", on a character's boundary, and the
// wording around them is kept.
func TestTextsFitTemporalLimits(t *testing.T) {
	now := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	for kind, w := range worstTexts {
		target := connectors.IdentifyTarget(w, "xero", map[string]string{"tenant_id": w})
		in := summaryInput(w, "-123456789012345678901234.5", w)
		in.Event.Deal.Company.Name, in.Event.Deal.Stage, in.Event.Account, in.Connection = w, w, w, w
		in.ERPTarget = &target
		thin := in
		thin.Fetch = true
		writeBack := in
		writeBack.Invoiced = &connectors.InvoiceResult{InvoiceID: w, Number: w}
		sum := newStepSummaries(in)
		summaries := map[string]string{
			"start":               StartSummary(InvoiceDealName, in),
			"start, thin":         StartSummary(InvoiceDealName, thin),
			"start, write-back":   StartSummary(InvoiceDealName, writeBack),
			"start, loss":         StartSummary(RecordDealLossName, in),
			"fetch":               sum.fetch(true),
			"map":                 sum.mapDeal(w),
			"validate":            sum.validate(w),
			"customer":            sum.customer(w),
			"invoice":             sum.invoice(w, " (attempts 12+)"),
			"write-back":          sum.writeBack(connectors.InvoiceResult{InvoiceID: w}),
			"settle":              sum.settle(now, now.Add(48*time.Hour)),
			"settle, loss":        sum.settleLoss(now, now.Add(48*time.Hour)),
			"linger":              sum.linger(now, now.Add(48*time.Hour)),
			"back-off":            sum.backOff(w, 12, now, now.Add(48*time.Hour)),
			"details":             StartDetails(in, w, w, w),
			"details, write-back": StartDetails(writeBack, w, w, w),
			"current, retrying":   sum.retrying(w, 12, now, now.Add(48*time.Hour), w),
			"customer back-off":   sum.customerBackOff(w, 12, now, now.Add(48*time.Hour)),
			"current, customer":   sum.customerRetrying(w, 12, now, now.Add(48*time.Hour), w),
			"write-back back-off": sum.writeBackBackOff(connectors.InvoiceResult{InvoiceID: w}, 12, now, now.Add(48*time.Hour)),
			"current, write-back": sum.writeBackRetrying(connectors.InvoiceResult{InvoiceID: w}, 12, now, now.Add(48*time.Hour), w),
			"fetch back-off":      sum.fetchBackOff(12, now, now.Add(48*time.Hour)),
			"current, fetch":      sum.fetchRetrying(12, now, now.Add(48*time.Hour), w),
		}
		for name, text := range summaries {
			limit := 300
			if strings.HasPrefix(name, "details") || strings.HasPrefix(name, "current") {
				limit = 4000
			}
			data, whole := payloadSize(t, text)
			if data > limit || whole > limit+100 || !utf8.ValidString(text) || !strings.Contains(text, "…") {
				t.Errorf("%s, %s texts: %d bytes of data, %d of payload (valid UTF-8 %v), want at most %d, cut with …: %s",
					name, kind, data, whole, utf8.ValidString(text), limit, text)
			}
			if data != jsonLen(text)+2 {
				t.Errorf("%s, %s texts: %d bytes of data, jsonLen says %d", name, kind, data, jsonLen(text)+2)
			}
		}
		for name, want := range map[string][]string{
			"start":             {"Deal ", " (", ") · -123,456,789,012,345,678,901,234.50 ", ` · won → invoice via connection "`},
			"start, thin":       {` · won → invoice via connection "`, `" (deal read from the CRM)`},
			"start, write-back": {" · write invoice ", ` back to the CRM via connection "`},
			"start, loss":       {" · lost (stage ", `) → record the loss via connection "`},
			"invoice":           {"create invoice ", ` in ERP target "`, `" (attempts 12+)`},
			"back-off":          {"back-off: retry invoice ", " (attempt 12) at 2026-11-22 14:00:00 UTC"},
			"fetch back-off":    {"back-off: retry fetch of deal ", " from the CRM (attempt 12) at 2026-11-22 14:00:00 UTC"},
			"details":           {"- connection ", ", CRM account ", "\n- mapping ", " (hash ", "\n- ERP target ", "\n- started by "},
		} {
			got := summaries[name]
			for _, part := range want {
				if !strings.Contains(got, part) {
					t.Errorf("%s, %s texts, says no %q: %s", name, kind, part, got)
				}
			}
		}
	}
}

// jsonLen counts what encoding/json writes of a text, as the SDK's
// payload converter sends it.
func TestJSONLen(t *testing.T) {
	for _, s := range []string{"", "plain", `"\`, "<>&", "\n\r\t\b\f\x01\x1f\x7f", "\u2028\u2029", "zoë 𝔄 …", "\xff\xc3", "\u00a0\u202e"} {
		data, _ := payloadSize(t, s)
		if got := jsonLen(s); got != data-2 {
			t.Errorf("%q: jsonLen %d, encoded %d", s, got, data-2)
		}
	}
}

// A summary too large is cut in its name first: the deal's id and
// connection stay whole while the name takes what room is left; only a
// summary still too large with its name cut to a few characters has its
// ids cut, each to an equal share (a shorter one whole).
func TestSummaryCutsTheNameFirst(t *testing.T) {
	in := summaryInput("D-1", "1200", "EUR")
	in.Event.Deal.Company.Name = strings.Repeat("<", nameBound)
	got := StartSummary(InvoiceDealName, in)
	prefix, suffix := "Deal D-1 (", `…) · 1,200.00 EUR · won → invoice via connection "demo"`
	if data, _ := payloadSize(t, got); !strings.HasPrefix(got, prefix) || !strings.HasSuffix(got, suffix) || data > 300 || data < 290 {
		t.Errorf("a summary of %d bytes: %s", data, got)
	}
	if name := strings.TrimSuffix(strings.TrimPrefix(got, prefix), suffix); name != strings.Repeat(`\<`, len(name)/2) || len(name) < 2*20 {
		t.Errorf("the name cut to %q", name)
	}

	in.Event.Deal.ID, in.Connection = strings.Repeat("<", idBound), strings.Repeat("&a", idBound)
	got = StartSummary(InvoiceDealName, in)
	id, rest, _ := strings.Cut(strings.TrimPrefix(got, "Deal "), " (")
	name, rest, _ := strings.Cut(rest, ") · 1,200.00 EUR · won → invoice via connection \"")
	conn := strings.TrimSuffix(rest, `"`)
	// Each cut leaves less than a character's 8 bytes unused.
	if data, _ := payloadSize(t, got); data > 300 || data < 300-3*8 || !strings.HasSuffix(id, "…") || !strings.HasSuffix(conn, "…") ||
		jsonLen(name) > nameFloor || jsonLen(name) < nameFloor-8 || abs(jsonLen(id)-jsonLen(conn)) > 8 {
		t.Errorf("a summary of %d bytes, its name cut to %d bytes, its ids to %d and %d: %s", data, jsonLen(name), jsonLen(id), jsonLen(conn), got)
	}
}

func abs(n int) int { return max(n, -n) }

// A run's details list its connection and CRM account, the mapping it
// maps with (or, for a write-back, the one its invoice was made with),
// the ERP target it is pinned to (none for a write-back), and what
// started it.
func TestStartDetails(t *testing.T) {
	books := connectors.IdentifyTarget("books", "http", nil)
	in := summaryInput("D-1", "1200", "EUR")
	in.Event.Account, in.ERPTarget = "62515", &books
	want := "- connection demo, CRM account 62515\n- mapping default (hash 35f00bb5fa22)\n- ERP target \"books\" (http)\n- started by a webhook"
	if got := StartDetails(in, "", "default", "35f00bb5fa22"); got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
	// A write-back run names no ERP target: it calls none, and the one
	// its input pins is today's, maybe not the one of its invoice.
	in.Event.Account = ""
	in.Invoiced = &connectors.InvoiceResult{InvoiceID: "INV-1"}
	want = "- connection demo\n- invoice made with mapping shop_invoices (hash 593fc46cac74)\n- started by dealsync runs retry"
	if got := StartDetails(in, "dealsync runs retry", "shop_invoices", "593fc46cac74"); got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
	want = "- connection demo\n- started by dealsync deals sync"
	if got := StartDetails(in, "dealsync deals sync", "", ""); got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
}

// The ERP steps name the target the run was started for, by the name its
// description gives; a run without one (started before targets were
// pinned) says the ERP.
func TestStepsNameTheirTarget(t *testing.T) {
	books := connectors.IdentifyTarget("books *EU*", "xero", nil)
	for _, c := range []struct {
		target *connectors.TargetIdentity
		want   string
	}{
		{&books, `create invoice D-1 in ERP target "books \*EU\*"`},
		{nil, "create invoice D-1 in the ERP"},
		{&connectors.TargetIdentity{Fingerprint: "t1:x", Description: "something else"}, "create invoice D-1 in the ERP"},
	} {
		if got := newStepSummaries(InvoiceDealInput{ERPTarget: c.target}).invoice("D-1", ""); got != c.want {
			t.Errorf("%+v: %s, want %s", c.target, got, c.want)
		}
	}
}

// A wait's end is its time of day in UTC, with its date when it is not
// the day it began.
func TestClock(t *testing.T) {
	now := time.Date(2026, 11, 20, 23, 0, 0, 0, time.FixedZone("CET", 3600))
	for d, want := range map[time.Duration]string{
		5 * time.Minute: "22:05:00 UTC",
		2 * time.Hour:   "2026-11-21 00:00:00 UTC",
	} {
		if got := clock(now, now.Add(d)); got != want {
			t.Errorf("%v later: %s, want %s", d, got, want)
		}
	}
}

// summaryRecorder is a worker interceptor that records the summary of
// each step (local activity, activity) and timer a workflow starts, as
// "Type: summary" and "timer: summary".
type summaryRecorder struct {
	interceptor.WorkerInterceptorBase
	rows []string
}

func (r *summaryRecorder) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return withOutbound(next, func(out interceptor.WorkflowOutboundInterceptor) interceptor.WorkflowOutboundInterceptor {
		return &summaryOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: out}, r: r}
	})
}

// withOutbound is next, with the workflow's outbound calls going through
// the interceptor wrap makes of them: for a recorder of what a run asks.
func withOutbound(next interceptor.WorkflowInboundInterceptor, wrap func(interceptor.WorkflowOutboundInterceptor) interceptor.WorkflowOutboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &outboundWrapper{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, wrap: wrap}
}

type outboundWrapper struct {
	interceptor.WorkflowInboundInterceptorBase
	wrap func(interceptor.WorkflowOutboundInterceptor) interceptor.WorkflowOutboundInterceptor
}

func (i *outboundWrapper) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	return i.Next.Init(i.wrap(outbound))
}

type summaryOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	r *summaryRecorder
}

func (o *summaryOutbound) ExecuteLocalActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	o.r.rows = append(o.r.rows, activityType+": "+workflow.GetLocalActivityOptions(ctx).Summary)
	return o.Next.ExecuteLocalActivity(ctx, activityType, args...)
}

func (o *summaryOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	o.r.rows = append(o.r.rows, activityType+": "+workflow.GetActivityOptions(ctx).Summary)
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

func (o *summaryOutbound) NewTimerWithOptions(ctx workflow.Context, d time.Duration, options workflow.TimerOptions) workflow.Future {
	o.r.rows = append(o.r.rows, "timer: "+options.Summary)
	return o.Next.NewTimerWithOptions(ctx, d, options)
}

// currentDetails asks a running workflow of env for its current details.
func currentDetails(t *testing.T, env *testsuite.TestWorkflowEnvironment) string {
	t.Helper()
	v, err := env.QueryWorkflow("__temporal_workflow_metadata")
	if err != nil {
		t.Fatal(err)
	}
	var md sdkpb.WorkflowMetadata
	if err := v.Get(&md); err != nil {
		t.Fatal(err)
	}
	return md.GetCurrentDetails()
}

// Each step and wait of a run says in the Web UI what it does, from the
// run's input and its earlier steps' results: the settle time and the
// linger until when (UTC), the deal's fetch, its map with the mapping,
// the invoice's validation, the customer and the invoice in the ERP
// target the run is pinned to, the write-back; local calls and activities
// alike. The run's current details say its step or wait while it runs,
// nothing once it has ended.
func TestStepsAndWaitsSaySummaries(t *testing.T) {
	start := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	books := connectors.IdentifyTarget("books", "xero", nil)
	for _, local := range []bool{true, false} {
		erp := &fakeTarget{keys: map[string]bool{}}
		deal := wonDeal("D-7", "100.00")
		deal.Company.Name = "Acme_Ltd & Co"
		crm := &fakeCRM{deal: deal}
		rec := &summaryRecorder{}
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{rec}})
		env.SetStartTime(start)
		env.RegisterWorkflowWithOptions(InvoiceDeal, workflow.RegisterOptions{Name: InvoiceDealName})
		env.RegisterActivity(&activities.Activities{Connections: resolver{activities.Connection{
			Mapper: mapping.Default{PaymentTermsDays: 30}, Target: erp, Fetcher: crm, WriteBacker: crm}}})
		in := input(model.DealEvent{EventID: "e1", Thin: true, Deal: model.Deal{ID: "D-7", Stage: "closedwon"}})
		in.Fetch, in.WriteBack, in.WonStages, in.LocalCalls = true, true, []string{"closedwon"}, local
		in.SettleTime, in.Linger, in.ERPTarget, in.Mapping = 30*time.Second, time.Hour, &books, "default"
		var during []string
		env.RegisterDelayedCallback(func() { during = append(during, currentDetails(t, env)) }, 10*time.Second)
		env.RegisterDelayedCallback(func() { during = append(during, currentDetails(t, env)) }, 10*time.Minute)
		env.ExecuteWorkflow(InvoiceDeal, in)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"timer: settle: wait for more events of deal D-7 until 14:00:30 UTC",
			"FetchDeal: fetch deal D-7 from the CRM",
			`MapDeal: map deal D-7 with mapping "default"`,
			"ValidateInvoice: validate invoice D-7 against the deal's amount",
			`FindOrCreateCustomer: ensure customer "Acme_Ltd & Co" in ERP target "books"`,
			`CreateInvoice: create invoice D-7 in ERP target "books" (attempt 1)`,
			"WriteBack: write invoice N-1 back to deal D-7 in the CRM",
			"timer: linger: record later changes of deal D-7 until 15:00:30 UTC",
		}
		if got := strings.Join(rec.rows, "\n"); got != strings.Join(want, "\n") {
			t.Errorf("local %v: the steps and waits say\n%s\nwant\n%s", local, got, strings.Join(want, "\n"))
		}
		if want := []string{want[0][len("timer: "):], want[7][len("timer: "):]}; strings.Join(during, "\n") != strings.Join(want, "\n") {
			t.Errorf("local %v: current details during the settle time and the linger %q, want %q", local, during, want)
		}
	}
}

// A listening run that makes its invoice step an attempt at a time says
// each attempt, and each back-off until when; its current details say
// why it waits (the last attempt's error).
func TestInvoiceAttemptsSayTheirBackOffs(t *testing.T) {
	start := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{
		&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429, RetryAfter: time.Minute},
	}}
	rec := &summaryRecorder{}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{rec}})
	env.SetStartTime(start)
	env.RegisterWorkflowWithOptions(InvoiceDeal, workflow.RegisterOptions{Name: InvoiceDealName})
	env.RegisterActivity(&activities.Activities{Connections: resolver{activities.Connection{Mapper: mapping.Default{}, Target: erp}}})
	var a *activities.Activities
	env.OnActivity(a.PreviousRun, mock.Anything, mock.Anything).Return(activities.PreviousRun{}, nil)
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-8", "100.00")})
	in.WonStages, in.SettleTime, in.LocalCalls = []string{"closedwon"}, 5*time.Second, true
	var during string
	env.RegisterDelayedCallback(func() { during = currentDetails(t, env) }, 30*time.Second)
	env.ExecuteWorkflow(InvoiceDeal, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PreviousRun: read how the deal's previous run ended",
		"timer: settle: wait for more events of deal D-8 until 14:00:05 UTC",
		"MapDeal: map deal D-8 with the connection's mapping",
		"ValidateInvoice: validate invoice D-8 against the deal's amount",
		`FindOrCreateCustomer: ensure customer "Acme GmbH" in the ERP`,
		"CreateInvoice: create invoice D-8 in the ERP (attempt 1)",
		"timer: back-off: retry invoice D-8 (attempt 2) at 14:01:05 UTC",
		"CreateInvoice: create invoice D-8 in the ERP (attempt 2)",
		"timer: checkpoint: end the workflow task that sent the invoice step",
	}
	if got := strings.Join(rec.rows, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("the steps and waits say\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	if !strings.HasPrefix(during, "retrying invoice D-8 (attempt 2 at 14:01:05 UTC): ") || !strings.Contains(during, "429") {
		t.Errorf("current details during the back-off: %q", during)
	}
	// Once ended, the run's details say nothing.
	if got := currentDetails(t, env); got != "" {
		t.Errorf("current details of the ended run: %q", got)
	}
	t.Run("the deal read again during the back-off", backOffAfterARead)
}

// A thin event delivered during a back-off has the deal read again; the
// deal still won, the run waits on, and its current details say why
// again, not the read it made.
func backOffAfterARead(t *testing.T) {
	start := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{
		&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429, RetryAfter: time.Hour},
	}}
	crm := &fakeCRM{deal: wonDeal("", "100.00")}
	rec := &summaryRecorder{}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{rec}})
	env.SetStartTime(start)
	env.RegisterWorkflowWithOptions(InvoiceDeal, workflow.RegisterOptions{Name: InvoiceDealName})
	env.RegisterActivity(&activities.Activities{Connections: resolver{activities.Connection{Mapper: mapping.Default{}, Target: erp, Fetcher: crm}}})
	var a *activities.Activities
	env.OnActivity(a.PreviousRun, mock.Anything, mock.Anything).Return(activities.PreviousRun{}, nil)
	in := input(model.DealEvent{EventID: "e1", Thin: true, Deal: model.Deal{ID: "D-8", Stage: "closedwon"}})
	in.Fetch, in.WonStages, in.SettleTime, in.LocalCalls = true, []string{"closedwon"}, 5*time.Second, true
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", Thin: true, Deal: model.Deal{ID: "D-8", Stage: "closedwon"}})
	}, 10*time.Minute)
	var during string
	env.RegisterDelayedCallback(func() { during = currentDetails(t, env) }, 20*time.Minute)
	env.ExecuteWorkflow(InvoiceDeal, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if crm.fetches != 2 || erp.invoices != 1 {
		t.Fatalf("%d reads of the deal, %d invoices; want 2 (the event's during the back-off), 1", crm.fetches, erp.invoices)
	}
	want := "timer: back-off: retry invoice D-8 (attempt 2) at 15:00:05 UTC\n" +
		"FetchDeal: fetch deal D-8 from the CRM again\n" +
		"CreateInvoice: create invoice D-8 in the ERP (attempt 2)"
	if got := strings.Join(rec.rows, "\n"); !strings.Contains(got, want) {
		t.Errorf("the steps and waits say\n%s\nwant among them\n%s", got, want)
	}
	if !strings.HasPrefix(during, "retrying invoice D-8 (attempt 2 at 15:00:05 UTC): ") || !strings.Contains(during, "429") {
		t.Errorf("current details in the back-off, after the deal was read again: %q", during)
	}
}

// Once an attempt of the invoice step may have made the invoice, the rest
// are one call, which says "(attempts N+)", or "(attempt N)" when the
// retry policy leaves it one.
func TestInvoiceRestSaysItsAttempts(t *testing.T) {
	for maxAttempts, want := range map[int32]string{2: " (attempt 2)", 3: " (attempts 2+)", 0: " (attempts 2+)"} {
		erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{
			&connectors.OutcomeUnknownError{Err: errors.New("create invoice: no answer"), Wait: 30 * time.Second},
		}}
		rec := &summaryRecorder{}
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{rec}})
		env.RegisterWorkflowWithOptions(InvoiceDeal, workflow.RegisterOptions{Name: InvoiceDealName})
		env.RegisterActivity(&activities.Activities{Connections: resolver{activities.Connection{Mapper: mapping.Default{}, Target: erp}}})
		var a *activities.Activities
		env.OnActivity(a.PreviousRun, mock.Anything, mock.Anything).Return(activities.PreviousRun{}, nil)
		in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-8", "100.00")})
		in.WonStages, in.SettleTime, in.LocalCalls, in.Retry.MaximumAttempts = []string{"closedwon"}, 5*time.Second, true, maxAttempts
		env.ExecuteWorkflow(InvoiceDeal, in)
		if err := env.GetWorkflowError(); err != nil || erp.invoices != 1 {
			t.Fatalf("maximum attempts %d: %v, %d invoices", maxAttempts, err, erp.invoices)
		}
		var calls []string
		for _, row := range rec.rows {
			if strings.HasPrefix(row, "CreateInvoice: ") {
				calls = append(calls, row)
			}
		}
		if got := strings.Join(calls, "\n"); got != "CreateInvoice: create invoice D-8 in the ERP (attempt 1)\nCreateInvoice: create invoice D-8 in the ERP"+want {
			t.Errorf("maximum attempts %d: the invoice step's calls say\n%s\nwant the second%s", maxAttempts, got, want)
		}
	}
}

// A text from outside that is blank (or only format characters) is left
// out with the space before it: the run, step or wait says "the deal",
// "the invoice", rather than a double space.
func TestBlankTextsAreLeftOut(t *testing.T) {
	now := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	in := summaryInput(" \u202e ", "", "")
	in.Event.Deal.Company.Name, in.Event.Deal.Name = "\u200b", "  "
	writeBack := in
	writeBack.Invoiced = &connectors.InvoiceResult{}
	lost := in
	lost.Event.Deal.Stage = " "
	sum := newStepSummaries(in)
	for _, c := range []struct{ got, want string }{
		{StartSummary(InvoiceDealName, in), `Deal · won → invoice via connection "demo"`},
		{StartSummary(InvoiceDealName, writeBack), `Deal · write the invoice back to the CRM via connection "demo"`},
		{StartSummary(RecordDealLossName, lost), `Deal · lost → record the loss via connection "demo"`},
		{StartDetails(in, "", " ", " "), "- connection demo\n- started by a webhook"},
		{sum.fetch(false), "fetch the deal from the CRM"},
		{sum.mapDeal(""), "map the deal with the connection's mapping"},
		{sum.validate(""), "validate the invoice against the deal's amount"},
		{sum.customer(""), "ensure the customer of the deal in the ERP"},
		{sum.invoice("\n", " (attempt 2)"), "create the invoice in the ERP (attempt 2)"},
		{sum.writeBack(connectors.InvoiceResult{}), "write the invoice back to the deal in the CRM"},
		{sum.settle(now, now), "settle: wait for more events of the deal until 14:00:00 UTC"},
		{sum.settleLoss(now, now), "settle: wait for more events of the lost deal until 14:00:00 UTC"},
		{sum.linger(now, now), "linger: record later changes of the deal until 14:00:00 UTC"},
		{sum.backOff("", 2, now, now), "back-off: retry the invoice (attempt 2) at 14:00:00 UTC"},
		{sum.retrying("", 2, now, now, ""), "retrying the invoice (attempt 2 at 14:00:00 UTC)"},
		{sum.customerBackOff("", 2, now, now), "back-off: retry the customer of the deal (attempt 2) at 14:00:00 UTC"},
		{sum.customerRetrying(" ", 2, now, now, ""), "retrying the customer of the deal (attempt 2 at 14:00:00 UTC)"},
		{sum.writeBackBackOff(connectors.InvoiceResult{}, 2, now, now), "back-off: retry write-back of the invoice to the deal (attempt 2) at 14:00:00 UTC"},
		{sum.fetchBackOff(2, now, now), "back-off: retry fetch of the deal from the CRM (attempt 2) at 14:00:00 UTC"},
		{sum.fetchRetrying(2, now, now, ""), "retrying fetch of the deal from the CRM (attempt 2 at 14:00:00 UTC)"},
		{newStepSummaries(summaryInput("D-1", "", "")).writeBack(connectors.InvoiceResult{}), "write the invoice back to deal D-1 in the CRM"},
	} {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
}

// A RecordDealLoss run says its settle time until when, and its read of
// the deal's earlier runs; its current details say its wait while it
// runs, nothing once it has ended.
func TestLossRunSaysItsWaitAndRead(t *testing.T) {
	rec := &summaryRecorder{}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{rec}})
	env.SetStartTime(time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC))
	env.RegisterWorkflowWithOptions(RecordDealLoss, workflow.RegisterOptions{Name: RecordDealLossName})
	env.RegisterActivity(&activities.Activities{Connections: resolver{activities.Connection{Mapper: mapping.Default{}}}})
	var a *activities.Activities
	env.OnActivity(a.PreviousRun, mock.Anything, mock.Anything).Return(activities.PreviousRun{}, nil)
	in := input(model.DealEvent{EventID: "l", Deal: model.Deal{ID: "D-9", PreviousStage: "closed_won", Stage: "closed_lost"}})
	in.WonStages, in.SettleTime, in.LocalCalls = []string{"closed_won"}, 2*time.Minute, true
	var during string
	env.RegisterDelayedCallback(func() { during = currentDetails(t, env) }, time.Minute)
	env.ExecuteWorkflow(RecordDealLoss, in)
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon {
		t.Fatalf("the run ended with %v, want its loss recorded (%s)", err, ErrTypeDealNotWon)
	}
	want := "timer: settle: wait for more events of lost deal D-9 until 14:02:00 UTC\n" +
		"PreviousRun: read the deal's earlier runs (a loss they recorded)"
	if got := strings.Join(rec.rows, "\n"); got != want {
		t.Errorf("the run's steps and waits say\n%s\nwant\n%s", got, want)
	}
	// Its current details say its settle time while it waits, nothing
	// once it has ended (its last read no longer).
	if want := "settle: wait for more events of lost deal D-9 until 14:02:00 UTC"; during != want {
		t.Errorf("current details during the settle time %q, want %q", during, want)
	}
	if got := currentDetails(t, env); got != "" {
		t.Errorf("current details of the ended run: %q", got)
	}
}

// What a start pays for its summary and details, in the intake's path.
func BenchmarkStartSummaryAndDetails(b *testing.B) {
	books := connectors.IdentifyTarget("books", "xero", nil)
	in := summaryInput("D-1001", "12000.00", "EUR")
	in.Event.Account, in.ERPTarget, in.Mapping, in.MappingHash = "62515", &books, "default", "35f00bb5fa22"
	b.ReportAllocs()
	for b.Loop() {
		_ = StartSummary(InvoiceDealName, in)
		_ = StartDetails(in, "", in.Mapping, in.MappingHash)
	}
}
