package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything a run measured. Durations are in milliseconds or
// seconds as their names say; memory in bytes.
type Report struct {
	Date           string            `json:"date"`
	RunID          string            `json:"run_id"`
	Mode           string            `json:"mode"` // in-process | external
	Machine        Machine           `json:"machine"`
	Options        map[string]string `json:"options"`
	StartupSeconds float64           `json:"startup_seconds,omitempty"`
	DataDir        string            `json:"data_dir,omitempty"`

	// IdleRSS is the process's RSS 2 s after start-up, before any load;
	// IdleRSSAfter 2 s after the last phase; PeakRSS is VmHWM at the end.
	IdleRSS int64 `json:"idle_rss_bytes,omitempty"`
	// IdleRSSAnon is the anonymous part of IdleRSS (RssAnon): without the
	// executable's pages, which VmRSS counts as the page cache allows.
	IdleRSSAnon  int64 `json:"idle_rss_anon_bytes,omitempty"`
	IdleRSSAfter int64 `json:"idle_rss_after_bytes,omitempty"`
	PeakRSS      int64 `json:"peak_rss_bytes,omitempty"`

	// Verdict is VerdictPass, VerdictViolated, VerdictUndelivered or
	// VerdictInconclusive, and VerdictReason says why.
	Verdict       string `json:"verdict"`
	VerdictReason string `json:"verdict_reason"`

	Dealsync  *DealsyncResult   `json:"dealsync,omitempty"`
	Baselines []*BaselineResult `json:"baselines,omitempty"`
	// Rounds are the interleaved rounds the totals above sum up.
	Rounds []Round  `json:"rounds,omitempty"`
	Notes  []string `json:"notes,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P95  float64 `json:"p95_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// DealsyncResult is the dealsync phase.
type DealsyncResult struct {
	Webhooks int `json:"webhooks"` // deliveries sent (closed-won + non-triggering)
	Deals    int `json:"deals"`    // closed-won deliveries
	Accepted int `json:"accepted"` // answered 2xx
	Failed   int `json:"failed"`   // never answered 2xx
	// Unacknowledged counts the closed-won deals whose delivery got no 2xx;
	// Refused those of them refused for good or answered 5xx/429 beyond the
	// retries. The rest were cut off by the deadline or Ctrl-C.
	Unacknowledged    int            `json:"unacknowledged"`
	Refused           int            `json:"refused"`
	Attempts          int            `json:"attempts"`
	Late              int            `json:"late_sends,omitempty"`
	Statuses          map[string]int `json:"statuses"`
	SendSeconds       float64        `json:"send_seconds"`
	AcceptedPerSecond float64        `json:"accepted_per_second"`
	Ack               Latency        `json:"ack_latency"`

	// The exactly-once figures are those of the final check, over every
	// round, after the last one (finalCheck).
	Invoices int `json:"invoices"` // distinct closed-won deals invoiced
	// Lost counts the acknowledged closed-won deals without an invoice
	// whose run (DescribeWorkflowExecution of the deal's workflow ID) does
	// not exist or closed without one.
	Lost int `json:"lost"`
	// Pending counts the acknowledged closed-won deals without an invoice
	// whose run is still running, or could not be looked up (no Temporal
	// access, the run stopped first): neither invoiced nor lost.
	Pending int `json:"pending"`
	// Unmatched counts the acknowledged closed-won deals whose run made
	// an invoice the ERP does not list under the deal's id (the
	// connection's reference is not the deal id): neither invoiced nor
	// lost, as far as the bench can tell.
	Unmatched  int `json:"unmatched,omitempty"`
	Duplicated int `json:"duplicated"` // invoices beyond the first per deal
	// LateDuplicated counts the duplicates that appeared after their
	// round's own check (included in Duplicated).
	LateDuplicated int `json:"late_duplicated,omitempty"`
	Unexpected     int `json:"unexpected"` // invoices of non-triggering deliveries
	// OpenRuns counts the bench's runs still running at the final check;
	// -1: unknown (no Temporal client, or the run list did not answer).
	OpenRuns          int     `json:"open_runs"`
	FailedRuns        int     `json:"failed_runs"`
	EndToEndSeconds   float64 `json:"end_to_end_seconds"` // first send → last invoice created
	InvoicesPerSecond float64 `json:"invoices_per_second"`
	AllClosedSeconds  float64 `json:"all_closed_seconds,omitempty"` // first send → no run running

	CPUSeconds      float64 `json:"cpu_seconds,omitempty"`
	CPUPerInvoiceMS float64 `json:"cpu_per_invoice_ms,omitempty"`
	PeakRSS         int64   `json:"peak_rss_bytes,omitempty"` // highest sampled VmRSS during the phase
	// PeakRSSFirstRound is PeakRSS of the first round, before any baseline
	// ran: the process then holds nothing of the baselines' runs (the
	// server's caches keep some of them, and later rounds count them).
	PeakRSSFirstRound int64 `json:"peak_rss_first_round_bytes,omitempty"`

	ERPRequests int           `json:"erp_requests,omitempty"`
	ERPFaults   map[int]int   `json:"erp_faults,omitempty"`
	ERPReplays  int           `json:"erp_idempotent_replays,omitempty"`
	History     *HistoryStats `json:"history,omitempty"`

	// LogWarnings counts WARN/ERROR lines of the in-process stack's log.
	LogWarnings       int    `json:"log_warnings,omitempty"`
	LogWarningExample string `json:"log_warning_example,omitempty"`

	ackedDeals   map[string]bool
	deals        map[string]bool // every deal sent → closed-won
	ackLatencies []time.Duration
	// Of the round's own check: its invoices (Invoices becomes the final
	// check's), and its acknowledged deals then without one.
	roundInvoices, missing int
}

// BaselineResult is one baseline variant.
type BaselineResult struct {
	Variant          string  `json:"variant"`
	LocalActivities  int     `json:"local_activities"`
	Activities       int     `json:"activities"`
	Runs             int     `json:"runs"`
	Done             int     `json:"done"`
	StartErrors      int     `json:"start_errors,omitempty"`
	Start            Latency `json:"start_latency"`
	Seconds          float64 `json:"seconds"` // first start → last step of the last run
	PerSecond        float64 `json:"per_second"`
	AllClosedSeconds float64 `json:"all_closed_seconds,omitempty"`
	// CPUSeconds is this process's CPU over the phase in process; for an
	// external target, the bench process's (the baseline's worker and
	// client) plus --pid's (its server, when --temporal-address is that
	// dealsync's).
	CPUSeconds  float64 `json:"cpu_seconds,omitempty"`
	CPUPerRunMS float64 `json:"cpu_per_run_ms,omitempty"`
	// PeakRSS is in process only: for an external target no one process
	// holds the baseline.
	PeakRSS int64         `json:"peak_rss_bytes,omitempty"`
	History *HistoryStats `json:"history,omitempty"`
	// Ratio is dealsync's invoices/s over this variant's runs/s, each
	// summed over all rounds (runs / seconds of all rounds).
	Ratio float64 `json:"ratio,omitempty"`
	// RoundRatios are the same ratio within each round, RatioMedian their
	// median: the figure least moved by a slow spell of a shared machine.
	RoundRatios []float64 `json:"round_ratios,omitempty"`
	RatioMedian float64   `json:"ratio_median,omitempty"`
	// Note says what was not measured as described (the run list did not
	// show every run closed).
	Note string `json:"note,omitempty"`

	startLatencies []time.Duration
}

// Round is one round: a dealsync phase, then each baseline.
type Round struct {
	Round             int             `json:"round"`
	Deals             int             `json:"deals"`
	Invoices          int             `json:"invoices"`
	InvoicesPerSecond float64         `json:"invoices_per_second"`
	CPUPerInvoiceMS   float64         `json:"cpu_per_invoice_ms,omitempty"`
	Baselines         []RoundBaseline `json:"baselines,omitempty"`
}

// RoundBaseline is one baseline variant within a round.
type RoundBaseline struct {
	Variant     string  `json:"variant"`
	PerSecond   float64 `json:"per_second"`
	CPUPerRunMS float64 `json:"cpu_per_run_ms,omitempty"`
	Ratio       float64 `json:"ratio,omitempty"` // dealsync's invoices/s in the round over this
}

// mergeDealsync sums up the rounds of the dealsync phase: counts and
// seconds add up, rates are recomputed from the sums, latencies from all
// samples, peaks are the highest.
func mergeDealsync(rounds []*DealsyncResult) *DealsyncResult {
	if len(rounds) == 1 {
		rounds[0].PeakRSSFirstRound = rounds[0].PeakRSS
		return rounds[0]
	}
	m := &DealsyncResult{Statuses: map[string]int{}, ackedDeals: map[string]bool{}, deals: map[string]bool{}, PeakRSSFirstRound: rounds[0].PeakRSS}
	for _, r := range rounds {
		m.Webhooks += r.Webhooks
		m.Deals += r.Deals
		m.Accepted += r.Accepted
		m.Failed += r.Failed
		m.Unacknowledged += r.Unacknowledged
		m.Refused += r.Refused
		m.Attempts += r.Attempts
		m.Late += r.Late
		for k, v := range r.Statuses {
			m.Statuses[k] += v
		}
		m.SendSeconds += r.SendSeconds
		m.ackLatencies = append(m.ackLatencies, r.ackLatencies...)
		m.Invoices += r.Invoices
		m.roundInvoices += r.roundInvoices
		m.missing += r.missing
		m.Lost += r.Lost
		m.Pending += r.Pending
		m.Duplicated += r.Duplicated
		m.Unexpected += r.Unexpected
		m.FailedRuns += r.FailedRuns // each round's own runs
		m.EndToEndSeconds += r.EndToEndSeconds
		m.AllClosedSeconds += r.AllClosedSeconds
		m.CPUSeconds += r.CPUSeconds
		m.PeakRSS = max(m.PeakRSS, r.PeakRSS)
		maps.Copy(m.ackedDeals, r.ackedDeals)
		maps.Copy(m.deals, r.deals)
	}
	m.Ack = latencyOf(m.ackLatencies)
	if m.SendSeconds > 0 {
		m.AcceptedPerSecond = float64(m.Accepted) / m.SendSeconds
	}
	if m.EndToEndSeconds > 0 {
		m.InvoicesPerSecond = float64(m.Invoices) / m.EndToEndSeconds
	}
	if m.Invoices > 0 && m.CPUSeconds > 0 {
		m.CPUPerInvoiceMS = m.CPUSeconds * 1000 / float64(m.Invoices)
	}
	return m
}

// mergeBaseline sums up the rounds of one baseline variant.
func mergeBaseline(rounds []*BaselineResult) *BaselineResult {
	if len(rounds) == 1 {
		return rounds[0]
	}
	m := &BaselineResult{Variant: rounds[0].Variant, LocalActivities: rounds[0].LocalActivities, Activities: rounds[0].Activities}
	for _, r := range rounds {
		m.Runs += r.Runs
		m.Done += r.Done
		m.StartErrors += r.StartErrors
		m.startLatencies = append(m.startLatencies, r.startLatencies...)
		m.Seconds += r.Seconds
		m.AllClosedSeconds += r.AllClosedSeconds
		m.CPUSeconds += r.CPUSeconds
		m.PeakRSS = max(m.PeakRSS, r.PeakRSS)
		if m.Note == "" {
			m.Note = r.Note
		}
	}
	m.Start = latencyOf(m.startLatencies)
	if m.Seconds > 0 {
		m.PerSecond = float64(m.Done) / m.Seconds
	}
	if m.Done > 0 && m.CPUSeconds > 0 {
		m.CPUPerRunMS = m.CPUSeconds * 1000 / float64(m.Done)
	}
	return m
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// HistoryStats summarise the histories of sampled runs.
type HistoryStats struct {
	Sampled           int     `json:"sampled"`
	Errors            int     `json:"errors,omitempty"`
	MeanEvents        float64 `json:"mean_events"`
	Min               int     `json:"min_events"`
	Max               int     `json:"max_events"`
	MeanWorkflowTasks float64 `json:"mean_workflow_tasks"`
	MeanActivityTasks float64 `json:"mean_activity_tasks"`
	MeanMarkers       float64 `json:"mean_markers"` // local activities (and other markers)
	// MeanBytes is the encoded size of a run's history (the events as
	// protobuf): what the server writes and reads back per run.
	MeanBytes float64 `json:"mean_bytes"`
	// MeanTaskTimeouts counts WorkflowTaskTimedOut events: a workflow task
	// that waited too long (e.g. on the sticky queue of a busy worker).
	MeanTaskTimeouts float64 `json:"mean_workflow_task_timeouts"`
	// Duration is how long a run lived: its first event to its last (the
	// server's clock). A run that closes before the visibility queue gets
	// to its start saves the server that row's write.
	Duration Latency  `json:"duration"`
	Example  []string `json:"example_event_types,omitempty"`
}

func reportOptions(o Options) map[string]string {
	m := map[string]string{
		"n":           strconv.Itoa(o.N),
		"concurrency": strconv.Itoa(o.Concurrency),
		"non_trigger": strconv.FormatFloat(o.NonTriggerShare, 'g', -1, 64),
		"timeout":     o.Timeout.String(),
		"rounds":      strconv.Itoa(o.Rounds),
	}
	if o.Rate > 0 {
		m["rate"] = strconv.FormatFloat(o.Rate, 'g', -1, 64)
	}
	if o.ErrorRate > 0 {
		m["error_rate"] = strconv.FormatFloat(o.ErrorRate, 'g', -1, 64)
	}
	if o.RateLimitRate > 0 {
		m["rate_limit_rate"] = strconv.FormatFloat(o.RateLimitRate, 'g', -1, 64)
		m["retry_after"] = o.RetryAfter.String()
	}
	if len(o.Baselines) > 0 {
		m["baselines"] = strings.Join(o.Baselines, ",")
		m["baseline_n"] = strconv.Itoa(o.BaselineN)
	}
	return m
}

func statusMap(m map[int]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		key := strconv.Itoa(k)
		if k == 0 {
			key = "transport_error"
		}
		out[key] = v
	}
	return out
}

func latencyOf(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Latency{
		N:    len(s),
		P50:  ms(percentile(s, 50)),
		P95:  ms(percentile(s, 95)),
		P99:  ms(percentile(s, 99)),
		Max:  ms(s[len(s)-1]),
		Mean: ms(sum / time.Duration(len(s))),
	}
}

// percentile is the nearest-rank percentile of sorted s.
func percentile(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(rank, len(s)-1))]
}

func mb(b int64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MB", float64(b)/(1<<20))
}

func (l Latency) String() string {
	if l.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f / %.1f / %.1f / %.1f ms", l.P50, l.P95, l.P99, l.Max)
}

// WriteTable prints the report for people.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "\ndealsync bench  %s  run %s  (%s)\n", r.Date, r.RunID, r.Mode)
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d), %s, %s %s\n", r.Machine.NumCPU, r.Machine.GOMAXPROCS, r.Machine.CPUModel, r.Machine.GoVersion, r.Machine.OS)
	keys := make([]string, 0, len(r.Options))
	for k := range r.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var opts []string
	for _, k := range keys {
		opts = append(opts, k+"="+r.Options[k])
	}
	fmt.Fprintf(w, "options: %s\n\n", strings.Join(opts, " "))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{k}, args...)...)
	}
	if d := r.Dealsync; d != nil {
		fmt.Fprintln(tw, "dealsync")
		row("webhooks sent (closed-won + other)", "%d (%d + %d)", d.Webhooks, d.Deals, d.Webhooks-d.Deals)
		row("acknowledged 2xx / failed / attempts", "%d / %d / %d   (statuses %s)", d.Accepted, d.Failed, d.Attempts, counts(d.Statuses))
		row("closed-won not acknowledged (refused / cut off)", "%d (%d / %d)", d.Unacknowledged, d.Refused, d.Unacknowledged-d.Refused)
		if d.Late > 0 {
			row("paced sends that left late", "%d", d.Late)
		}
		row("webhook acceptance throughput", "%.1f webhooks/s (%.1f s)", d.AcceptedPerSecond, d.SendSeconds)
		row("ack latency p50 / p95 / p99 / max", "%s", d.Ack)
		row("end-to-end invoices/s", "%.1f  (%d invoices, first send → last invoice %.1f s%s)", d.InvoicesPerSecond, d.Invoices, d.EndToEndSeconds, roundsNote(len(r.Rounds)))
		row("invoices lost / duplicated / unexpected", "%d / %d / %d", d.Lost, d.Duplicated, d.Unexpected)
		if d.Pending > 0 {
			row("invoices pending (run still running, or not looked up)", "%d", d.Pending)
		}
		if d.Unmatched > 0 {
			row("invoices under another reference than the deal id (not counted)", "%d", d.Unmatched)
		}
		if d.LateDuplicated > 0 {
			row("duplicates after their round's check", "%d", d.LateDuplicated)
		}
		switch {
		case d.OpenRuns > 0:
			row("runs still open at the final check", "%d", d.OpenRuns)
		case d.OpenRuns < 0:
			row("runs still open at the final check", "unknown")
		}
		if d.AllClosedSeconds > 0 {
			row("all runs closed after", "%.1f s (failed runs: %d)", d.AllClosedSeconds, d.FailedRuns)
		}
		if h := d.History; h != nil && h.Sampled > 0 {
			row("history events per invoice", "%.1f (min %d, max %d; %d runs sampled)", h.MeanEvents, h.Min, h.Max, h.Sampled)
			row("  workflow tasks / activity tasks / markers / task timeouts", "%.1f / %.1f / %.1f / %.2f", h.MeanWorkflowTasks, h.MeanActivityTasks, h.MeanMarkers, h.MeanTaskTimeouts)
			row("history size per invoice", "%.1f KB", h.MeanBytes/1000)
			row("run duration p50 / p95 / p99 / max (start → close)", "%s", h.Duration)
		}
		if d.CPUSeconds > 0 {
			row("CPU per invoice", "%.1f ms (%.1f s total%s)", d.CPUPerInvoiceMS, d.CPUSeconds, inProcessNote(r.Mode))
		}
		idle := mb(r.IdleRSS)
		if r.IdleRSSAnon > 0 {
			idle += " (" + mb(r.IdleRSSAnon) + " anonymous)"
		}
		row("RSS idle (after start-up) / peak in phase", "%s / %s (first round, before any baseline: %s)", idle, mb(d.PeakRSS), mb(d.PeakRSSFirstRound))
		if d.LogWarnings > 0 {
			row("log lines at WARN/ERROR", "%d, first: %s", d.LogWarnings, d.LogWarningExample)
		}
		if d.ERPRequests > 0 {
			row("ERP requests / faults injected / idempotent replays", "%d / %s / %d", d.ERPRequests, counts(d.ERPFaults), d.ERPReplays)
		}
	}
	if len(r.Baselines) > 0 {
		fmt.Fprintln(tw, "\nbaseline (bare workflow, no-op steps, eager start, same server)")
		for _, b := range r.Baselines {
			row(fmt.Sprintf("%s: %d local + %d activities", b.Variant, b.LocalActivities, b.Activities), "%.1f runs/s (%d/%d in %.1f s)  start p50/p99 %.1f/%.1f ms  CPU %.1f ms/run  events %s  peak RSS %s",
				b.PerSecond, b.Done, b.Runs, b.Seconds, b.Start.P50, b.Start.P99, b.CPUPerRunMS, histEvents(b.History), baselineRSS(r.Mode, b.PeakRSS))
			// Every baseline that ran gets its ratio row, even when there
			// is no ratio to give.
			if b.Ratio > 0 && b.Variant == BaselineLocal {
				// The target is to the baseline of dealsync's own shape.
				row(fmt.Sprintf("  dealsync / %s", b.Variant), "%.2f%s (the project's target: %.1f, docs/benchmarks.md)", b.Ratio, ratioNote(b), TargetRatio)
			} else if b.Ratio > 0 {
				row(fmt.Sprintf("  dealsync / %s", b.Variant), "%.2f%s", b.Ratio, ratioNote(b))
			} else {
				row(fmt.Sprintf("  dealsync / %s", b.Variant), "n/a (no rate: no invoice, or no baseline run done)")
			}
			if b.Note != "" {
				row("  note", "%s", b.Note)
			}
		}
	}
	if len(r.Rounds) > 1 {
		fmt.Fprintln(tw, "\nrounds (invoices/s or runs/s; dealsync's ratio to each baseline)")
		for _, rr := range r.Rounds {
			line := fmt.Sprintf("dealsync %.1f (CPU %.1f ms)", rr.InvoicesPerSecond, rr.CPUPerInvoiceMS)
			for _, b := range rr.Baselines {
				line += fmt.Sprintf("   %s %.1f (CPU %.1f ms) → %.2f", b.Variant, b.PerSecond, b.CPUPerRunMS, b.Ratio)
			}
			row(fmt.Sprintf("round %d: %d deals", rr.Round, rr.Deals), "%s", line)
		}
	}
	fmt.Fprintln(tw)
	row("process RSS idle after run / VmHWM", "%s / %s", mb(r.IdleRSSAfter), mb(r.PeakRSS))
	tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.Verdict != "" {
		fmt.Fprintf(w, "verdict: %s: %s\n", verdictHeadline[r.Verdict], r.VerdictReason)
	}
	fmt.Fprintln(w)
}

// TargetRatio is the ratio to the bare baseline the project aims at
// (issue 6; docs/benchmarks.md says where it stands). The table names it
// beside each ratio; the verdict is about exactly-once alone.
const TargetRatio = 0.9

// verdictHeadline is how the table's last line says a verdict: about
// exactly-once, not speed.
var verdictHeadline = map[string]string{
	VerdictPass:         "PASS (exactly once)",
	VerdictViolated:     "EXACTLY-ONCE VIOLATED",
	VerdictUndelivered:  "UNDELIVERED",
	VerdictInconclusive: "INCONCLUSIVE",
}

func roundsNote(n int) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(", summed over %d rounds", n)
}

func ratioNote(b *BaselineResult) string {
	if len(b.RoundRatios) <= 1 {
		return ""
	}
	parts := make([]string, len(b.RoundRatios))
	for i, x := range b.RoundRatios {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf(" over all rounds; per round %s, median %.2f", strings.Join(parts, " "), b.RatioMedian)
}

// baselineRSS is a baseline's peak RSS in the table: not given for an
// external target, whose baseline is split over two processes (see the
// note).
func baselineRSS(mode string, peak int64) string {
	if mode == "external" {
		return "n/a (external target: see note)"
	}
	return mb(peak)
}

func inProcessNote(mode string) string {
	if mode == "in-process" {
		return "; in-process: includes the load generator"
	}
	return ""
}

func histEvents(h *HistoryStats) string {
	if h == nil || h.Sampled == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f, %.1f KB (task timeouts %.2f), lived p50 %.1f ms", h.MeanEvents, h.MeanBytes/1000, h.MeanTaskTimeouts, h.Duration.P50)
}

// counts formats a status histogram as "200×10 202×100".
func counts[K comparable](m map[K]int) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%v×%d", k, v))
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}
