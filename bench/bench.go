// Package bench measures dealsync end to end: it sends signed closed-won
// webhooks to an intake (its own in-process `dealsync dev` stack on a fresh
// data dir, or a running dealsync), waits for the invoices in the sandbox
// ERP, checks that none is lost or duplicated, and reports acknowledgement
// latency, throughput, history size, memory and CPU. In the same run it
// drives bare workflows of no-op steps on the same Temporal server (see
// baseline.go), so that dealsync's throughput reads as a ratio of what
// Temporal itself does on the machine: by default local, InvoiceDeal's
// four recorded steps (map, validate, customer, invoice) as local
// activities, of which only customer and invoice are external calls;
// calls has those two external calls alone.
//
// Every loop is bounded by Options.Timeout: a run always ends by itself,
// with whatever it measured so far.
package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/proto"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors/httptarget"
	"github.com/dealsync/dealsync/connectors/sandbox"
	"github.com/dealsync/dealsync/devserver"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/rerun"
	"github.com/dealsync/dealsync/workflows"
)

// Options configure a benchmark run. Check says which values are refused;
// a zero value that has a default says so below.
type Options struct {
	// N is the number of closed-won deals (each must become one invoice);
	// positive.
	N int
	// Concurrency is the number of deliveries in flight at most; positive.
	Concurrency int
	// NonTriggerShare adds round(N*share) deliveries that must not start a
	// run (a stage change short of won), mixed in; not negative.
	NonTriggerShare float64
	// Rate paces the deliveries at this many webhooks/s (0: as fast as
	// Concurrency allows).
	Rate float64
	// Timeout bounds the run: its phases, the final check's waits and
	// lookups, and the history samples; positive. After it (or Ctrl-C)
	// only the final check's listings and counts run, each bounded (see
	// Run).
	Timeout time.Duration
	// Settle bounds the wait for invoices once no new one has appeared for
	// this long, the wait for a baseline's runs once none was done for this
	// long, and the wait for runs to close; positive.
	Settle time.Duration
	// Retries of a delivery answered 5xx/429 or not at all, as a CRM does
	// (0: one attempt only); not negative.
	Retries int

	// Config is the dev config of the in-process stack (config.Load with
	// config.WithDevDefaults); its data dir and ports are replaced, and its
	// metrics endpoint is left out. The connection's target must be the
	// sandbox ERP (see checkSandboxTarget), its source generic and its
	// mapping's invoice.reference the deal id (checkBenchConnection).
	Config *config.Config
	// LogLevel of the in-process stack's log, written to dealsync.log in
	// the data dir ("" = the config's level).
	LogLevel string
	// KeepDataDir keeps the temporary data dir (and its log).
	KeepDataDir bool
	// CPUProfile writes a CPU profile of the dealsync phase (in-process),
	// and of each baseline to CPUProfile.baseline-<variant>; rounds after
	// the first add .r<N>.
	CPUProfile string

	// External target: IntakeURL and SandboxURL of a running dealsync.
	IntakeURL, SandboxURL string
	// PID of the external dealsync process, for memory and CPU figures.
	PID int
	// TemporalAddress of the external dealsync's server (optional): for
	// history sizes, waiting for runs to close, and the baseline.
	TemporalAddress, Namespace, TaskQueue string

	// Connection the webhooks are sent to ("": demo), and its Standard
	// Webhooks secret ("": in process, the connection's source.secret in
	// Config; with an external target, config.DevSecret, the secret of
	// `dealsync dev`'s demo).
	Connection, Secret string

	// ERP faults (in-process only): fractions of ERP calls answered 503 /
	// 429 with Retry-After (0: 1s, the sandbox's least).
	ErrorRate, RateLimitRate float64
	RetryAfter               time.Duration

	// Baselines are the variants to run (BaselineLocal, BaselineCalls,
	// BaselineFull, BaselineActivities); BaselineN runs each (0: N).
	Baselines []string
	BaselineN int
	// HistorySample is how many runs' histories are read (0: none).
	HistorySample int
	// Rounds splits N and BaselineN into this many rounds of a dealsync
	// phase followed by each baseline (0: 3, or 1 with Rate, which has no
	// baseline by default).
	Rounds int

	// Progress, if set, receives one line per phase.
	Progress io.Writer
}

// Check refuses the options a run cannot honour, all at once, before
// anything starts. A zero N or Concurrency used to become a default
// silently, a negative NonTriggerShare below -1 panicked, and negative
// Retries made no attempt at all: the run then reported figures of
// something other than what was asked. It refuses as well an external
// target without both URLs, ERP faults with an external target, and,
// when Config is set (in-process), a Connection the config does not have,
// whose invoices would not go to the sandbox ERP, whose source is not
// generic, whose secret does not resolve (without Secret), or whose
// mapping does not make a bench deal's invoice reference the deal id
// (the bench finds invoices by it): every error of Check is one of the
// options given, a usage error to the CLI.
func (o *Options) Check() error {
	var errs []error
	refuse := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.N <= 0 {
		refuse("--deals must be positive, got %d", o.N)
	}
	if o.Concurrency <= 0 {
		refuse("--concurrency must be positive, got %d", o.Concurrency)
	}
	if o.NonTriggerShare < 0 {
		refuse("--non-trigger must not be negative, got %g", o.NonTriggerShare)
	}
	if o.Rate < 0 {
		refuse("--rate must not be negative, got %g", o.Rate)
	}
	if o.Timeout <= 0 {
		refuse("--timeout must be positive, got %s", o.Timeout)
	}
	if o.Settle <= 0 {
		refuse("--settle must be positive, got %s", o.Settle)
	}
	if o.Retries < 0 {
		refuse("--retries must not be negative (0 = one attempt), got %d", o.Retries)
	}
	if o.PID < 0 {
		refuse("--pid must not be negative, got %d", o.PID)
	}
	if o.ErrorRate < 0 || o.ErrorRate > 1 {
		refuse("--error-rate must be between 0 and 1, got %g", o.ErrorRate)
	}
	if o.RateLimitRate < 0 || o.RateLimitRate > 1 {
		refuse("--rate-limit-rate must be between 0 and 1, got %g", o.RateLimitRate)
	}
	if o.RetryAfter < 0 {
		refuse("--retry-after must not be negative, got %s", o.RetryAfter)
	}
	if o.BaselineN < 0 {
		refuse("--baseline-n must not be negative (0 = N), got %d", o.BaselineN)
	}
	if o.HistorySample < 0 {
		refuse("--history-sample must not be negative (0 = none), got %d", o.HistorySample)
	}
	if o.Rounds < 0 {
		refuse("--rounds must not be negative (0 = the default), got %d", o.Rounds)
	}
	if err := checkBaselines(o.Baselines); err != nil {
		errs = append(errs, err)
	}
	// The combinations of flags and the connection: refused here, before
	// anything starts, not by Run once it has begun (they were, and the
	// CLI exited 1 for them instead of 2, a usage error).
	if o.external() {
		if o.IntakeURL == "" || o.SandboxURL == "" {
			refuse("an external target needs both --intake-url and --sandbox-url")
		}
		if o.ErrorRate > 0 || o.RateLimitRate > 0 {
			refuse("--error-rate and --rate-limit-rate inject ERP faults only into the in-process stack, not into an external target (--intake-url, --sandbox-url): start the external dealsync with sandbox.error_rate / sandbox.rate_limit_rate instead")
		}
	} else {
		if o.PID > 0 || o.TemporalAddress != "" {
			refuse("--pid and --temporal-address describe an external target: give them with --intake-url and --sandbox-url (the in-process stack is measured in this process)")
		}
		if o.Config != nil {
			conn := cmp.Or(o.Connection, defaultConnection)
			if err := checkSandboxTarget(o.Config, conn); err != nil {
				errs = append(errs, err)
			} else if err := checkBenchConnection(o.Config, conn, o.Secret != ""); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// external says the options target a running dealsync (--intake-url,
// --sandbox-url), not the in-process stack.
func (o *Options) external() bool { return o.IntakeURL != "" || o.SandboxURL != "" }

// defaultConnection is the connection the webhooks are sent to when
// Options.Connection is empty: the dev config's demo.
const defaultConnection = "demo"

func (o *Options) defaults() {
	if o.Connection == "" {
		o.Connection = defaultConnection
	}
	if o.Secret == "" {
		// In process, the connection's own secret, which its intake
		// checks (Check made sure it resolves): the dev secret was used
		// whatever the config said, and a connection with another one
		// (DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET) refused every
		// delivery with 401. An external dealsync's config is not seen:
		// the dev secret, that of `dealsync dev`'s demo, unless --secret.
		o.Secret = config.DevSecret
		if !o.external() && o.Config != nil {
			if s, err := connectionSecret(o.Config, o.Connection); err == nil {
				o.Secret = s
			}
		}
	}
	if o.BaselineN <= 0 {
		// As many runs as deals: a phase's cost per run depends on its
		// length (the visibility queue lags behind and catches up after
		// it), so only phases of the same size compare.
		o.BaselineN = o.N
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
		if o.Rate > 0 {
			o.Rounds = 1
		}
	}
	o.Rounds = min(o.Rounds, o.N, o.BaselineN)
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.TaskQueue == "" {
		o.TaskQueue = "dealsync"
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// target is the dealsync under test.
type target struct {
	intakeURL, sandboxURL string
	sb                    *sandbox.Server // in-process only
	c                     client.Client   // nil: no Temporal access
	taskQueue             string
	p                     proc
	measured              bool // memory/CPU of the dealsync process known
	http                  *http.Client
}

// external says the dealsync process is another one (--pid, no sandbox
// in this process), while the baseline's worker and client run in this
// one.
func (t *target) external() bool { return t.sb == nil }

// errRunTimeout ends the run's context at Options.Timeout, so that the
// report tells the deadline from an interrupt (Ctrl-C, SIGTERM).
var errRunTimeout = errors.New("bench: --timeout reached")

// Run runs the benchmark and returns its report, whose Verdict says whether
// every closed-won deal was acknowledged and invoiced exactly once. An
// error without a report means nothing could be measured; with a report,
// the rounds completed before the error are in it.
//
// Every phase, the final check's waits and lookups of runs, and the
// history samples (one budget of historySampleBudget for all phases) are
// bounded by Options.Timeout or ctx (Ctrl-C). Once either ends, nothing is
// waited for any more: the round under way lists its invoices, the final
// check lists them again (twice at most) and counts the runs (each
// listing bounded at 30 s, each count at 10 s), and 2 s pass before the
// last RSS reading; no run is looked up and no history is read.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	o.defaults()
	ctx, cancel := context.WithTimeoutCause(ctx, o.Timeout, errRunTimeout)
	defer cancel()
	runID := newRunID()
	rep := &Report{
		Date:    time.Now().UTC().Format(time.RFC3339),
		RunID:   runID,
		Machine: machine(),
		Options: reportOptions(o),
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(o.Progress, "bench: "+format+"\n", args...)
	}

	t := &target{taskQueue: o.TaskQueue, http: newHTTPClient(o.Concurrency)}
	var logPath string
	var closeAll []func()
	defer func() {
		for _, f := range slices.Backward(closeAll) {
			f()
		}
	}()
	if o.external() {
		// Check refused an incomplete external target and ERP faults.
		rep.Mode = "external"
		t.intakeURL = strings.TrimRight(o.IntakeURL, "/") + "/webhooks/" + o.Connection
		t.sandboxURL = strings.TrimRight(o.SandboxURL, "/")
		if o.PID > 0 {
			t.p, t.measured = proc{pid: o.PID}, true
		}
		if o.TemporalAddress != "" {
			c, err := client.DialContext(ctx, client.Options{HostPort: o.TemporalAddress, Namespace: o.Namespace, Logger: quietLogger()})
			if err != nil {
				return nil, fmt.Errorf("dialing Temporal at %s: %w", o.TemporalAddress, err)
			}
			closeAll = append(closeAll, c.Close)
			t.c = c
		}
	} else {
		if o.Config == nil {
			return nil, errors.New("no config for the in-process stack")
		}
		// Check refused a connection that does not send its invoices to
		// the sandbox ERP (checkSandboxTarget).
		rep.Mode = "in-process"
		t0 := time.Now()
		d, cleanup, dir, err := startStack(ctx, o)
		if err != nil {
			return nil, err
		}
		closeAll = append(closeAll, cleanup)
		if o.KeepDataDir {
			rep.DataDir = dir
		}
		rep.StartupSeconds = time.Since(t0).Seconds()
		logf("in-process stack up in %.1fs (data dir %s)", rep.StartupSeconds, dir)
		logPath = filepath.Join(dir, "dealsync.log")
		t.intakeURL = d.IntakeURL + "/webhooks/" + o.Connection
		t.sandboxURL = d.SandboxURL
		t.sb = d.Sandbox
		t.c = d.Client
		t.taskQueue = o.Config.Temporal.TaskQueue
		t.p, t.measured = proc{}, true
	}
	// A sandbox that does not answer (a wrong --sandbox-url) would only be
	// found after every delivery was sent, and its invoices waited for.
	if _, err := t.invoices(ctx, runPrefix(runID)); err != nil {
		return nil, fmt.Errorf("the sandbox ERP does not list its invoices (GET %s/invoices): %w", t.sandboxURL, err)
	}

	var sampler *rssSampler
	if t.measured {
		sampler = startSampler(t.p, 100*time.Millisecond)
		closeAll = append(closeAll, sampler.close)
		sleep(ctx, 2*time.Second) // let start-up settle
		rss, _, err := t.p.memory()
		if err != nil {
			return nil, fmt.Errorf("reading memory of the dealsync process: %w", err)
		}
		rep.IdleRSS = rss
		if anon, err := t.p.anonymous(); err == nil {
			rep.IdleRSSAnon = anon
		}
		sampler.takePeak()
	} else {
		rep.Notes = append(rep.Notes, "memory and CPU not measured: give --pid of the dealsync process")
	}

	// The phases, interleaved in rounds: dealsync, then each baseline,
	// Rounds times, so that a slow spell of a shared machine weighs on
	// both sides of the ratio instead of on one phase.
	if t.sb != nil && (o.ErrorRate > 0 || o.RateLimitRate > 0) {
		t.sb.SetFaults(withRates(t.sb.Faults(), o))
	}
	profiling := o.CPUProfile != ""
	if profiling && rep.Mode != "in-process" {
		rep.Notes = append(rep.Notes, "--cpuprofile profiles this process only: ignored for an external target")
		profiling = false
	}
	var bl *baseline
	if len(o.Baselines) > 0 {
		if t.c == nil {
			rep.Notes = append(rep.Notes, "baseline skipped: no Temporal client (give --temporal-address)")
		} else {
			b, err := startBaseline(t.c, sdkworker.Options{})
			if err != nil {
				return rep, err
			}
			closeAll = append(closeAll, b.stop)
			bl = b
		}
	}
	var dsRounds []*DealsyncResult
	blRounds := map[string][]*BaselineResult{}
	roundIDs := make([]string, 0, o.Rounds)
	// roundsErr ended the rounds early; the rounds before it are reported.
	// unfinished is the dealsync phase it ended, if it had sent anything:
	// its deals are not in the figures, but the final check must know them
	// (their invoices are not unexpected, their runs are the bench's).
	var roundsErr error
	var unfinished *DealsyncResult
rounds:
	for r := range o.Rounds {
		if ctx.Err() != nil {
			break
		}
		roundID, label := runID, "dealsync"
		if o.Rounds > 1 {
			roundID, label = fmt.Sprintf("%s%d", runID, r+1), fmt.Sprintf("round %d/%d: dealsync", r+1, o.Rounds)
		}
		roundIDs = append(roundIDs, roundID)
		n := share(o.N, o.Rounds, r)
		logf("%s: sending %d closed-won + %.0f%% non-triggering webhooks, concurrency %d%s", label, n, o.NonTriggerShare*100, o.Concurrency, rateNote(o.Rate))
		if rep.Mode == "in-process" {
			returnFreedMemory(sampler)
		}
		stopProfile, err := startProfile(profiling, profileFile(o.CPUProfile, "", r))
		if err != nil {
			roundsErr = err
			break
		}
		ds, err := runDealsync(ctx, o, t, roundID, n, rep, label, logf)
		stopProfile()
		if err != nil {
			roundsErr, unfinished = fmt.Errorf("%s: %w", label, err), ds
			break
		}
		if sampler != nil {
			ds.PeakRSS = sampler.takePeak()
		}
		dsRounds = append(dsRounds, ds)
		if bl == nil {
			continue
		}
		bn := share(o.BaselineN, o.Rounds, r)
		for _, v := range o.Baselines {
			if ctx.Err() != nil {
				break
			}
			logf("%sbaseline %q: %d runs, concurrency %d, eager start", strings.TrimSuffix(label, "dealsync"), v, bn, o.Concurrency)
			if rep.Mode == "in-process" {
				returnFreedMemory(sampler)
			}
			stopProfile, err := startProfile(profiling, profileFile(o.CPUProfile, ".baseline-"+v, r))
			if err != nil {
				roundsErr = err
				break rounds
			}
			br, err := runBaseline(ctx, o, t, bl, roundID, v, bn)
			stopProfile()
			if err != nil {
				roundsErr = fmt.Errorf("baseline %q: %w", v, err)
				break rounds
			}
			if sampler != nil {
				// In process the baseline's worker, client and server
				// are all in the sampled process. For an external target
				// they are not (the worker and client are here, the
				// server wherever --temporal-address is): no one
				// process's RSS is the baseline's, so none is given; the
				// peak is still taken, so that the next phase's is its
				// own.
				if peak := sampler.takePeak(); !t.external() {
					br.PeakRSS = peak
				}
			}
			blRounds[v] = append(blRounds[v], br)
		}
	}
	stopped := stopReason(ctx, o.Timeout)
	if len(dsRounds) == 0 {
		if roundsErr != nil {
			return rep, roundsErr
		}
		rep.Verdict, rep.VerdictReason = VerdictInconclusive, "stopped by "+stopped+" before the first round: nothing was measured"
		return rep, nil
	}
	if roundsErr != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("stopped after %d of %d rounds: %v", len(dsRounds), o.Rounds, roundsErr))
	}
	ds := mergeDealsync(dsRounds)
	rep.Dealsync = ds
	if t.sb != nil {
		t.sb.SetFaults(sandbox.Faults{})
		st := t.sb.Stats()
		ds.ERPRequests = st.Requests
		ds.ERPFaults = st.Faults
		ds.ERPReplays = st.IdempotentReplays
	}
	if logPath != "" {
		ds.LogWarnings, ds.LogWarningExample = scanLog(logPath)
	}
	if unfinished != nil {
		maps.Copy(ds.deals, unfinished.deals)
		maps.Copy(ds.ackedDeals, unfinished.ackedDeals)
	}
	logf("final check over every round's invoices and runs")
	rep.Notes = append(rep.Notes, finalCheck(ctx, o, t, runID, ds, stopped != "")...)
	stopped = stopReason(ctx, o.Timeout) // the final wait may have met the deadline
	rep.Verdict, rep.VerdictReason = verdict(ds, stopped)
	// The history samples share one budget (historySampleBudget), within
	// the run's deadline: a stopped run skips them.
	var dsHistory *HistoryStats
	blHistory := map[string]*HistoryStats{}
	if o.HistorySample > 0 && stopped != "" {
		rep.Notes = append(rep.Notes, "history not sampled: the run was stopped")
	}
	if o.HistorySample > 0 && stopped == "" && t.c != nil {
		groups := [][]string{dealWorkflowIDs(o.Connection, ds.ackedDeals, o.HistorySample)}
		var variants []string
		for _, v := range o.Baselines {
			if rounds := blRounds[v]; len(rounds) > 0 {
				n := min(o.HistorySample, 20, rounds[0].Done)
				ids := make([]string, 0, n)
				for i := range n {
					ids = append(ids, baselineWorkflowID(roundIDs[0], v, i*rounds[0].Runs/max(n, 1)))
				}
				groups, variants = append(groups, ids), append(variants, v)
			}
		}
		hs, cut := sampleAllHistories(ctx, t.c, groups)
		dsHistory = hs[0]
		for i, v := range variants {
			blHistory[v] = hs[i+1]
		}
		if cut {
			rep.Notes = append(rep.Notes, fmt.Sprintf("history sample cut short: its budget of %s for all phases, or --timeout, ran out; the figures are those of the runs read", historySampleBudget))
		}
	}
	ds.History = dsHistory
	for _, v := range o.Baselines {
		rounds := blRounds[v]
		if len(rounds) == 0 {
			continue
		}
		br := mergeBaseline(rounds)
		if br.PerSecond > 0 && ds.InvoicesPerSecond > 0 {
			br.Ratio = ds.InvoicesPerSecond / br.PerSecond
		}
		var ratios []float64
		for i, b := range rounds {
			if b.PerSecond > 0 && dsRounds[i].InvoicesPerSecond > 0 {
				ratios = append(ratios, dsRounds[i].InvoicesPerSecond/b.PerSecond)
			}
		}
		br.RoundRatios, br.RatioMedian = ratios, median(ratios)
		br.History = blHistory[v]
		rep.Baselines = append(rep.Baselines, br)
	}
	if bl != nil && o.Rate > 0 {
		rep.Notes = append(rep.Notes, "paced run (--rate): dealsync's invoices/s is capped by the send rate, so the ratio to the baseline says nothing about capacity")
	}
	if bl != nil && t.external() {
		note := "external target: the baseline's worker and client run in the bench process, its server in the Temporal of --temporal-address"
		if t.measured && t.p.pid != os.Getpid() {
			note += "; its CPU is the bench process's plus that of --pid over the baseline phase"
		}
		rep.Notes = append(rep.Notes, note+"; its peak RSS is not given (no one process holds it)")
	}
	for i, d := range dsRounds {
		rr := Round{Round: i + 1, Deals: d.Deals, Invoices: d.roundInvoices, InvoicesPerSecond: d.InvoicesPerSecond, CPUPerInvoiceMS: d.CPUPerInvoiceMS}
		for _, v := range o.Baselines {
			if i < len(blRounds[v]) {
				b := blRounds[v][i]
				rb := RoundBaseline{Variant: v, PerSecond: b.PerSecond, CPUPerRunMS: b.CPUPerRunMS}
				if b.PerSecond > 0 {
					rb.Ratio = d.InvoicesPerSecond / b.PerSecond
				}
				rr.Baselines = append(rr.Baselines, rb)
			}
		}
		rep.Rounds = append(rep.Rounds, rr)
	}

	if t.measured {
		sleep(context.WithoutCancel(ctx), 2*time.Second)
		rss, hwm, _ := t.p.memory()
		rep.IdleRSSAfter, rep.PeakRSS = rss, hwm
	}
	if stopped != "" {
		rep.Notes = append(rep.Notes, fmt.Sprintf("stopped by %s: figures are partial", stopped))
	}
	return rep, roundsErr
}

// stopReason says what ended ctx, the run's context: "" while it runs.
func stopReason(ctx context.Context, timeout time.Duration) string {
	switch {
	case ctx.Err() == nil:
		return ""
	case errors.Is(context.Cause(ctx), errRunTimeout):
		return fmt.Sprintf("the --timeout of %s", timeout)
	default:
		return "an interrupt (Ctrl-C or SIGTERM)"
	}
}

// startProfile writes a CPU profile of this process to file until the
// returned function is called (a no-op when !enabled).
// returnFreedMemory collects the garbage of the phase before and returns
// it to the OS, and forgets the RSS sampled meanwhile, so that the next
// phase's peak RSS is its own and not the previous phase's garbage (the
// Go runtime returns freed memory to the OS only slowly). The memory the
// process still holds (the server's caches, say) stays counted.
func returnFreedMemory(sampler *rssSampler) {
	debug.FreeOSMemory()
	if sampler != nil {
		sampler.takePeak()
	}
}

func startProfile(enabled bool, file string) (stop func(), err error) {
	if !enabled {
		return func() {}, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func rateNote(r float64) string {
	if r <= 0 {
		return ""
	}
	return fmt.Sprintf(", paced at %g/s", r)
}

// startStack starts the dev stack in this process on a fresh temporary
// data dir and free ports, without the Web UI.
func startStack(ctx context.Context, o Options) (*app.Dev, func(), string, error) {
	dir, err := os.MkdirTemp("", "dealsync-bench-")
	if err != nil {
		return nil, nil, "", err
	}
	cleanupDir := func() {
		if !o.KeepDataDir {
			_ = os.RemoveAll(dir)
		}
	}
	ports, err := devserver.FreePorts("127.0.0.1", 1)
	if err != nil {
		cleanupDir()
		return nil, nil, "", err
	}
	cfg := stackConfig(o.Config, dir, net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])))
	if o.LogLevel != "" {
		cfg.Log.Level = o.LogLevel
	}
	logFile, err := os.Create(filepath.Join(dir, "dealsync.log"))
	if err != nil {
		cleanupDir()
		return nil, nil, "", err
	}
	logger := app.NewLogger(cfg.Log, logFile)
	d, err := app.StartDev(ctx, cfg, logger, app.DevOptions{FrontendPort: -1, UIPort: -1})
	if err != nil {
		logFile.Close()
		cleanupDir()
		return nil, nil, "", fmt.Errorf("starting the dev stack: %w", err)
	}
	return d, func() {
		d.Close()
		logFile.Close()
		cleanupDir()
	}, dir, nil
}

// stackConfig is base made the in-process stack's: its own data dir, free
// ports for the intake and the sandbox ERP (which the targets that pointed
// at dev.sandbox_listen follow), and no metrics endpoint, whose fixed
// metrics.listen would collide with a running dealsync's (the bench does
// not read it).
func stackConfig(base *config.Config, dataDir, sandboxListen string) *config.Config {
	cfg := *base
	cfg.Dev.DataDir = dataDir
	cfg.Intake.Listen = "127.0.0.1:0"
	cfg.Metrics.Listen = ""
	oldSandbox := cfg.Dev.SandboxListen
	cfg.Dev.SandboxListen = sandboxListen
	cfg.Targets = maps.Clone(cfg.Targets)
	for name, tc := range cfg.Targets {
		if hc, ok := tc.Spec.(*httptarget.Config); ok && config.SameHostPort(hc.BaseURL, oldSandbox) {
			c := *hc
			c.BaseURL = "http://" + sandboxListen
			tc.Spec = &c
			cfg.Targets[name] = tc
		}
	}
	return &cfg
}

// checkSandboxTarget refuses a connection whose invoices would go anywhere
// but the sandbox ERP the in-process stack starts: every target it routes
// to (its target and its account_targets) must be an http target pointing
// at dev.sandbox_listen, which the stack redirects to its own sandbox. A
// config made for production would otherwise have the bench create
// thousands of real invoices.
func checkSandboxTarget(cfg *config.Config, connection string) error {
	conn, ok := cfg.Connections[connection]
	if !ok {
		return fmt.Errorf("the config has no connection %q (--connection)", connection)
	}
	names := []string{conn.Target}
	for _, name := range conn.AccountTargets {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		tc, ok := cfg.Targets[name]
		if !ok {
			return fmt.Errorf("connection %q: the config has no target %q", connection, name)
		}
		hc, ok := tc.Spec.(*httptarget.Config)
		if !ok || !config.SameHostPort(hc.BaseURL, cfg.Dev.SandboxListen) {
			return fmt.Errorf("connection %q sends its invoices to target %q (type %s), not to the sandbox ERP at dev.sandbox_listen %s: the bench would create real invoices there; give --connection of a connection whose target is the sandbox (the dev config's demo)", connection, name, tc.Type, cfg.Dev.SandboxListen)
		}
	}
	return nil
}

// withRates is the sandbox's faults f with the bench's error and rate-limit
// rates: over the config's faults (latency, lost answers), which stay.
func withRates(f sandbox.Faults, o Options) sandbox.Faults {
	f.ErrorRate, f.RateLimitRate, f.RetryAfter = o.ErrorRate, o.RateLimitRate, o.RetryAfter
	return f
}

func newRunID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func quietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// runPrefix starts the deal IDs (and so the invoice references) of every
// round of a run: a round's ID is the run's, or the run's and the round's
// number, and run IDs are all of one length, so no other run's deals
// share it.
func runPrefix(runID string) string { return "B-" + runID }

// roundPrefix starts the deal IDs of one round (makeEvents).
func roundPrefix(roundID string) string { return "B-" + roundID + "-" }

// runDealsync sends the webhooks and waits for the invoices and the runs.
// Its own check of the invoices gives the round's figures; whether they
// are exactly once is decided by finalCheck, over every round, once all
// have run.
func runDealsync(ctx context.Context, o Options, t *target, roundID string, n int, rep *Report, label string, logf func(string, ...any)) (*DealsyncResult, error) {
	evs := makeEvents(roundID, n, o.NonTriggerShare, time.Now())
	res := &DealsyncResult{Webhooks: len(evs), Deals: n, deals: closedWon(evs)}
	prefix := roundPrefix(roundID)

	base := 0
	if t.sb != nil {
		base = t.sb.Stats().InvoicesCreated
	}
	cpu0, _ := t.cpu()
	s := &sender{url: t.intakeURL, secret: o.Secret, client: t.http, concurrency: o.Concurrency, rate: o.Rate, retries: o.Retries}
	sent := s.run(ctx, evs)
	res.ackedDeals = sent.ackedDeals
	res.Accepted, res.Failed, res.Late = sent.accepted, sent.failed, sent.late
	res.Unacknowledged, res.Refused = n-sent.acceptedTrg, sent.refusedTrg
	res.Attempts = sent.attempts
	res.Statuses = statusMap(sent.statuses)
	res.Ack = latencyOf(sent.latencies)
	res.ackLatencies = sent.latencies
	if el := sent.last.Sub(sent.first).Seconds(); el > 0 {
		res.AcceptedPerSecond = float64(sent.accepted) / el
		res.SendSeconds = el
	}
	logf("%s: %d/%d webhooks acknowledged in %.1fs; waiting for %d invoices", label, sent.accepted, len(evs), res.SendSeconds, sent.acceptedTrg)

	// Wait for the invoices: until every acknowledged deal has one, none
	// came for Settle, or the run stops.
	watch := invoiceWatch{
		list: func(ctx context.Context) ([]invoiceInfo, error) { return t.invoices(ctx, prefix) },
		poll: time.Second, // listing the ERP costs the process under test
	}
	if t.sb != nil {
		watch.created = func() int { return t.sb.Stats().InvoicesCreated - base }
		watch.poll = 50 * time.Millisecond
	}
	w := waitInvoices(ctx, sent.ackedDeals, watch, o.Settle)
	if w.end == waitStalled {
		note := fmt.Sprintf("%s: no new invoice for %s: stopped waiting at %d of %d", label, o.Settle, w.have, len(sent.ackedDeals))
		if w.err != nil {
			note += fmt.Sprintf(" (listing the invoices failed: %v)", w.err)
		}
		rep.Notes = append(rep.Notes, note)
	}
	// Wait for the runs to close (the final workflow task follows the
	// invoice), so that the CPU figure covers all of their work.
	if t.c != nil {
		ids := workflows.WorkflowID(o.Connection, prefix)
		closed, err := waitClosed(ctx, t.c, t.taskQueue, ids, o.Settle)
		if err != nil {
			rep.Notes = append(rep.Notes, label+": "+err.Error())
		} else {
			res.AllClosedSeconds = closed.Sub(sent.first).Seconds()
		}
		if n, err := countRuns(ctx, t.c, runsQuery(t.taskQueue, ids, "ExecutionStatus = 'Failed'")); err == nil {
			res.FailedRuns = int(n)
		}
		// The phase's close rows written: its server work done here, not
		// in the next phase.
		if err := waitCloseRows(ctx, t.c, ids, triggering(evs, sent.ackedDeals), o.Settle); err != nil {
			rep.Notes = append(rep.Notes, label+": "+err.Error())
		}
	}
	cpu1, _ := t.cpu()

	// The round's invoices, for its figures.
	invs, err := t.invoices(context.WithoutCancel(ctx), prefix)
	if err != nil {
		return res, fmt.Errorf("listing the sandbox ERP's invoices: %w", err)
	}
	ex := reconcile(invs, prefix, res.deals, sent.ackedDeals)
	res.Invoices, res.Duplicated, res.Unexpected = ex.invoices, ex.duplicated, ex.unexpected
	res.roundInvoices, res.missing = ex.invoices, ex.missing
	lastCreated := ex.lastCreated
	if res.Invoices > 0 && lastCreated.After(sent.first) {
		res.EndToEndSeconds = lastCreated.Sub(sent.first).Seconds()
		res.InvoicesPerSecond = float64(res.Invoices) / res.EndToEndSeconds
	}
	if t.measured && res.Invoices > 0 {
		res.CPUSeconds = (cpu1 - cpu0).Seconds()
		res.CPUPerInvoiceMS = res.CPUSeconds * 1000 / float64(res.Invoices)
	}
	logf("%s: %d invoices, %.1f/s end to end; %d without an invoice yet, %d duplicated", label, res.Invoices, res.InvoicesPerSecond, res.missing, res.Duplicated)
	return res, nil
}

// closedWon maps every deal of evs to whether it is closed-won.
func closedWon(evs []event) map[string]bool {
	m := make(map[string]bool, len(evs))
	for _, ev := range evs {
		m[ev.dealID] = ev.trigger
	}
	return m
}

// invoiceWatch is how waitInvoices looks at the ERP.
type invoiceWatch struct {
	// list returns the invoices of the round (by reference prefix).
	list func(context.Context) ([]invoiceInfo, error)
	// created, if set, counts the invoices the ERP created since the round
	// began, cheaply (the in-process sandbox): the list is read only when
	// that count moved and could cover every deal, not at every poll.
	created func() int
	poll    time.Duration
}

// waitEnd is how a wait ended.
type waitEnd int

const (
	waitDone    waitEnd = iota // everything waited for is there
	waitStalled                // nothing new for the settle time
	waitStopped                // the run's deadline or an interrupt
)

// invoiceWaitResult is where waitInvoices stopped.
type invoiceWaitResult struct {
	end  waitEnd
	have int   // deals of want with an invoice at the last listing
	err  error // of the last listing, if it failed
}

// waitInvoices waits until every deal of want (the acknowledged closed-won
// deals) has an invoice, no deal got its first invoice for settle, or ctx
// ends. It counts distinct references of want, not invoices: a duplicate,
// or an invoice of a deal that must have none, does not stand for a
// missing one. A listing that fails is no figure: it neither moves the
// wait on nor holds it up past settle.
func waitInvoices(ctx context.Context, want map[string]bool, w invoiceWatch, settle time.Duration) invoiceWaitResult {
	var r invoiceWaitResult
	if len(want) == 0 {
		return r
	}
	lastProgress, lastCreated, listed := time.Now(), -1, false
	for {
		if ctx.Err() != nil {
			r.end = waitStopped
			return r
		}
		list := true
		if w.created != nil {
			c := w.created()
			if c != lastCreated {
				lastCreated, lastProgress = c, time.Now()
			} else if listed && r.err == nil {
				list = false // nothing new since the last listing
			}
			if c < len(want) {
				list = false // too few to cover want
			}
		}
		if list {
			have, err := countCovered(ctx, w.list, want)
			listed, r.err = true, err
			if err == nil {
				if have != r.have {
					r.have, lastProgress = have, time.Now()
				}
				if have == len(want) {
					r.end = waitDone
					return r
				}
			}
		}
		if time.Since(lastProgress) > settle {
			r.end = waitStalled
			if w.created != nil && !list {
				r.have, r.err = countCovered(ctx, w.list, want) // for the note
			}
			return r
		}
		sleep(ctx, w.poll)
	}
}

// countCovered lists the invoices and counts the deals of want they cover.
func countCovered(ctx context.Context, list func(context.Context) ([]invoiceInfo, error), want map[string]bool) (int, error) {
	invs, err := list(ctx)
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	for _, inv := range invs {
		if want[inv.Reference] {
			seen[inv.Reference] = true
		}
	}
	return len(seen), nil
}

func runBaseline(ctx context.Context, o Options, t *target, bl *baseline, runID, variant string, n int) (*BaselineResult, error) {
	cpu0, _ := t.baselineCPU()
	r, err := bl.run(ctx, runID, variant, n, o.Concurrency, o.Settle)
	if err != nil {
		return nil, err
	}
	br := &BaselineResult{Variant: variant, Runs: n, Done: r.done, StartErrors: r.startErrors, Start: latencyOf(r.startLatencies)}
	br.startLatencies = r.startLatencies
	steps := baselineSteps[variant]
	br.LocalActivities, br.Activities = steps.local, steps.remote
	if r.stalled {
		br.Note = fmt.Sprintf("no run done for %s: stopped waiting at %d of %d started", o.Settle, r.done, len(r.startLatencies))
	}
	if r.done > 0 && r.lastDone.After(r.first) {
		br.Seconds = r.lastDone.Sub(r.first).Seconds()
		br.PerSecond = float64(r.done) / br.Seconds
	}
	ids := baselineWorkflowIDPrefix(runID, variant)
	if closed, err := waitClosed(ctx, t.c, BaselineTaskQueue, ids, o.Settle); err == nil {
		br.AllClosedSeconds = closed.Sub(r.first).Seconds()
	}
	// Runs that closed before the run list wrote their start row are not
	// counted running above while their close rows are still to be
	// written: wait for those too, so that the phase's server work is done
	// here, not in the next phase.
	if err := waitCloseRows(ctx, t.c, ids, r.done, o.Settle); err != nil && br.Note == "" {
		br.Note = err.Error()
	}
	cpu1, _ := t.baselineCPU()
	if t.measured && r.done > 0 {
		br.CPUSeconds = (cpu1 - cpu0).Seconds()
		br.CPUPerRunMS = br.CPUSeconds * 1000 / float64(r.done)
	}
	return br, nil
}

// share is round r's part of n split over rounds (the first rounds take
// the remainder).
func share(n, rounds, r int) int {
	s := n / rounds
	if r < n%rounds {
		s++
	}
	return s
}

// profileFile names the CPU profile of a phase: base+suffix for the first
// round, base+suffix+".r<N>" for the others (go tool pprof merges several).
func profileFile(base, suffix string, round int) string {
	if round == 0 {
		return base + suffix
	}
	return fmt.Sprintf("%s%s.r%d", base, suffix, round+1)
}

func (t *target) cpu() (time.Duration, error) {
	if !t.measured {
		return 0, nil
	}
	return t.p.cpu()
}

// baselineCPU is the CPU time the baseline phase is measured with. In
// process it is cpu(): the baseline's worker, client and server are all in
// this process, as dealsync is. For an external target the baseline's
// worker and client run in this (the bench) process, and its server in
// --pid's when --temporal-address is that dealsync's own: so it is this
// process's CPU plus --pid's (just --pid's when --pid is this process).
func (t *target) baselineCPU() (time.Duration, error) {
	pid, err := t.cpu()
	if err != nil || !t.measured || !t.external() || t.p.pid == os.Getpid() {
		return pid, err
	}
	self, err := proc{}.cpu()
	return pid + self, err
}

// invoiceInfo is what the bench needs of an ERP invoice.
type invoiceInfo struct {
	Reference string    `json:"reference"`
	CreatedAt time.Time `json:"created_at"`
}

// invoices lists the ERP's invoices whose reference starts with prefix:
// this bench's (a running dealsync's sandbox may hold many more, and
// listing them all would weigh on the process under test).
func (t *target) invoices(ctx context.Context, prefix string) ([]invoiceInfo, error) {
	if t.sb != nil {
		var out []invoiceInfo
		for _, inv := range t.sb.Invoices() {
			if strings.HasPrefix(inv.Reference, prefix) {
				out = append(out, invoiceInfo{Reference: inv.Reference, CreatedAt: inv.CreatedAt})
			}
		}
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.sandboxURL+"/invoices?reference_prefix="+url.QueryEscape(prefix), nil)
	if err != nil {
		return nil, err
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /invoices: %s", resp.Status)
	}
	var body struct {
		Invoices []invoiceInfo `json:"invoices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	return body.Invoices, nil
}

func countRuns(ctx context.Context, c client.Client, query string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
	if err != nil {
		return 0, err
	}
	return resp.GetCount(), nil
}

// triggering counts the acknowledged deals whose events start a run.
func triggering(evs []event, acked map[string]bool) int {
	n := 0
	for _, ev := range evs {
		if ev.trigger && acked[ev.dealID] {
			n++
		}
	}
	return n
}

// waitCloseRows polls until the run list shows want closed runs whose
// workflow IDs start with prefix (the visibility queue has written their
// close rows), at most limit without progress.
func waitCloseRows(ctx context.Context, c client.Client, prefix string, want int, limit time.Duration) error {
	q := fmt.Sprintf("WorkflowId STARTS_WITH %q AND ExecutionStatus != 'Running'", prefix)
	last, lastChange := int64(-1), time.Now()
	for {
		n, err := countRuns(ctx, c, q)
		if err != nil {
			return fmt.Errorf("counting closed runs: %w", err)
		}
		if n >= int64(want) {
			return nil
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > limit || ctx.Err() != nil {
			return fmt.Errorf("the run list shows %d of %d runs closed after %s without progress", n, want, limit)
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

// runsQuery is the run-list query of the runs of a task queue whose
// workflow IDs start with idPrefix (one phase's: the task queue holds the
// other phases' runs, and a running dealsync's own), with a condition.
func runsQuery(taskQueue, idPrefix, cond string) string {
	return fmt.Sprintf("TaskQueue = %q AND WorkflowId STARTS_WITH %q AND %s", taskQueue, idPrefix, cond)
}

// waitClosed polls until no run of the task queue whose workflow ID starts
// with idPrefix is running, and returns when that was first seen.
func waitClosed(ctx context.Context, c client.Client, taskQueue, idPrefix string, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	q := runsQuery(taskQueue, idPrefix, "ExecutionStatus = 'Running'")
	for {
		n, err := countRuns(ctx, c, q)
		if err != nil {
			return time.Time{}, fmt.Errorf("counting running workflows: %w", err)
		}
		if n == 0 {
			return time.Now(), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("%d runs still running after %s", n, limit)
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// dealWorkflowIDs picks up to n of the acknowledged deals' workflow IDs,
// spread over the run.
func dealWorkflowIDs(connection string, acked map[string]bool, n int) []string {
	deals := make([]string, 0, len(acked))
	for d := range acked {
		deals = append(deals, d)
	}
	slices.Sort(deals)
	if n > len(deals) {
		n = len(deals)
	}
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, workflows.WorkflowID(connection, deals[i*len(deals)/n]))
	}
	return ids
}

// historySampleBudget bounds the reading of all the history samples of a
// run together (the dealsync phase's and every baseline's), within the
// run's deadline (it used to be 60 s per phase, past the deadline).
var historySampleBudget = 60 * time.Second

// sampleAllHistories reads the history sample of each group of runs in
// turn within one budget, historySampleBudget, and ctx (the run's
// deadline): the groups not reached when either ends are nil, and cut says
// that happened (the group under way then counts its unread runs as
// errors).
func sampleAllHistories(ctx context.Context, c client.Client, groups [][]string) (stats []*HistoryStats, cut bool) {
	ctx, cancel := context.WithTimeout(ctx, historySampleBudget)
	defer cancel()
	stats = make([]*HistoryStats, len(groups))
	for i, ids := range groups {
		if ctx.Err() != nil {
			break
		}
		stats[i] = sampleHistories(ctx, c, ids)
	}
	return stats, ctx.Err() != nil
}

// sampleHistories reads the histories of the given runs (latest run of
// each ID), until ctx ends, and sums up their sizes. A run whose history
// cannot be read to its end counts as an error and in no figure.
func sampleHistories(ctx context.Context, c client.Client, ids []string) *HistoryStats {
	hs := &HistoryStats{}
	var total, wfts, acts, las, tos, size int
	var durations []time.Duration
	for _, id := range ids {
		it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		var n, wt, at, la, to, runBytes int
		var types []string
		var first, last time.Time
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				n = -1
				break
			}
			n++
			if n == 1 {
				first = ev.GetEventTime().AsTime()
			}
			last = ev.GetEventTime().AsTime()
			runBytes += proto.Size(ev)
			types = append(types, strings.TrimPrefix(ev.GetEventType().String(), "EVENT_TYPE_"))
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
				wt++
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				at++
			case enumspb.EVENT_TYPE_MARKER_RECORDED:
				la++
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
				to++
			}
		}
		if n <= 0 {
			hs.Errors++
			continue
		}
		if hs.Sampled == 0 {
			hs.Example = types
			hs.Min, hs.Max = n, n
		}
		hs.Sampled++
		hs.Min, hs.Max = min(hs.Min, n), max(hs.Max, n)
		durations = append(durations, last.Sub(first))
		total, wfts, acts, las, tos, size = total+n, wfts+wt, acts+at, las+la, tos+to, size+runBytes
	}
	if hs.Sampled > 0 {
		f := float64(hs.Sampled)
		hs.MeanEvents = float64(total) / f
		hs.MeanWorkflowTasks = float64(wfts) / f
		hs.MeanActivityTasks = float64(acts) / f
		hs.MeanMarkers = float64(las) / f
		hs.MeanTaskTimeouts = float64(tos) / f
		hs.MeanBytes = float64(size) / f
		hs.Duration = latencyOf(durations)
	}
	return hs
}

func machine() Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// scanLog counts the in-process stack's log lines at WARN or ERROR and
// returns the first, which is where a 503 from the intake is explained.
func scanLog(path string) (int, string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, ""
	}
	n, first := 0, ""
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") ||
			strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
			n++
			if first == "" {
				first = line
				if len(first) > 400 {
					first = first[:400] + "..."
				}
			}
		}
	}
	return n, first
}

// exactlyOnce is the comparison of the ERP's invoices with the deliveries.
type exactlyOnce struct {
	invoices   int // closed-won deals with at least one invoice
	duplicated int // invoices beyond the first per deal
	unexpected int // invoices for deals that must not have one
	missing    int // acknowledged closed-won deals without an invoice
	// missingDeals are those deals, sorted.
	missingDeals []string
	lastCreated  time.Time
}

// reconcile compares the ERP's invoices whose references (= deal IDs)
// start with prefix with the deals sent (deal → closed-won) and the deals
// acknowledged.
func reconcile(invs []invoiceInfo, prefix string, deals map[string]bool, acked map[string]bool) exactlyOnce {
	var ex exactlyOnce
	byRef := map[string]int{}
	for _, inv := range invs {
		if !strings.HasPrefix(inv.Reference, prefix) {
			continue
		}
		byRef[inv.Reference]++
		if inv.CreatedAt.After(ex.lastCreated) {
			ex.lastCreated = inv.CreatedAt
		}
	}
	for ref, n := range byRef {
		if !deals[ref] {
			ex.unexpected += n
			continue
		}
		ex.invoices++
		ex.duplicated += n - 1
	}
	for deal := range acked {
		if deals[deal] && byRef[deal] == 0 {
			ex.missingDeals = append(ex.missingDeals, deal)
		}
	}
	slices.Sort(ex.missingDeals)
	ex.missing = len(ex.missingDeals)
	return ex
}

// finalCheck reconciles the invoices of every round once more, after the
// last one: a duplicate made after its round's own check, or an invoice
// that came late, counts here and nowhere else. It sets the exactly-once
// figures of ds and returns what the report should note.
//
// Whether an acknowledged deal still without an invoice is lost or pending
// is decided per deal, from its own run (judgeMissing), not from a count
// of runs: an acknowledgement that started no run (the intake answers 200
// "skipped" when the stage is not one of the connection's won_stages) and
// extra runs (deliveries cut off by the deadline that still started one)
// made a count of closed runs say the wrong thing about them.
func finalCheck(ctx context.Context, o Options, t *target, runID string, ds *DealsyncResult, stopped bool) (notes []string) {
	prefix := runPrefix(runID)
	ids := workflows.WorkflowID(o.Connection, prefix)
	ds.OpenRuns = -1
	// states holds what is known of the runs of the deals without an
	// invoice; runNone is final (the deliveries are all answered: nothing
	// starts a run for an acknowledged deal any more).
	states := map[string]runState{}
	if t.c != nil {
		if !stopped {
			// An acknowledged deal whose delivery started no run never
			// gets a close row: waiting for one per acknowledged deal
			// would only stall for --settle. Find those first.
			want := len(ds.ackedDeals)
			if invs, err := t.invoices(ctx, prefix); err == nil {
				ex := reconcile(invs, prefix, ds.deals, ds.ackedDeals)
				states0, _ := describeRuns(ctx, t.c, o.Connection, ex.missingDeals)
				for deal, st := range states0 {
					if st == runNone {
						states[deal] = st
						want--
					}
				}
			}
			if err := waitCloseRows(ctx, t.c, ids, want, o.Settle); err != nil {
				notes = append(notes, "final check: "+err.Error())
			}
		}
		cctx := context.WithoutCancel(ctx)
		if open, err := countRuns(cctx, t.c, runsQuery(t.taskQueue, ids, "ExecutionStatus = 'Running'")); err != nil {
			notes = append(notes, "final check: counting the runs: "+err.Error())
		} else {
			ds.OpenRuns = int(open)
		}
		if n, err := countRuns(cctx, t.c, runsQuery(t.taskQueue, ids, "ExecutionStatus = 'Failed'")); err == nil {
			ds.FailedRuns = int(n)
		}
	} else {
		notes = append(notes, "no Temporal client (give --temporal-address): whether runs are still open is unknown, so a deal without an invoice counts as pending, not lost, and a late duplicate cannot be excluded")
	}
	list := func() ([]invoiceInfo, error) { return t.invoices(context.WithoutCancel(ctx), prefix) }
	invs, err := list()
	if err != nil {
		// The rounds' own checks stand; what they found missing may still come.
		ds.Lost, ds.Pending = 0, ds.missing
		return append(notes, "final check: listing the sandbox ERP's invoices: "+err.Error()+"; the rounds' own checks stand")
	}
	ex := reconcile(invs, prefix, ds.deals, ds.ackedDeals)
	if t.c != nil && len(ex.missingDeals) > 0 {
		var more []string
		ex, more = judgeMissing(ctx, t.c, o.Connection, ex, states, func() (exactlyOnce, error) {
			invs, err := list()
			if err != nil {
				return exactlyOnce{}, err
			}
			return reconcile(invs, prefix, ds.deals, ds.ackedDeals), nil
		})
		notes = append(notes, more...)
	}
	ds.LateDuplicated = max(0, ex.duplicated-ds.Duplicated)
	ds.Invoices, ds.Duplicated, ds.Unexpected = ex.invoices, ex.duplicated, ex.unexpected
	ds.Lost, ds.Pending = 0, 0
	var noRun, closedRun, unmatched, unlisted []string
	for _, deal := range ex.missingDeals {
		switch states[deal] {
		case runNone:
			noRun = append(noRun, deal)
		case runClosed:
			closedRun = append(closedRun, deal)
		case runInvoicedUnmatched:
			// In-process the mapping was checked to make the reference the
			// deal id: an invoice the run names and the ERP does not list
			// under it is lost. An external run could not check it.
			if o.external() {
				unmatched = append(unmatched, deal)
			} else {
				unlisted = append(unlisted, deal)
			}
		default:
			ds.Pending++
		}
	}
	ds.Lost = len(noRun) + len(closedRun) + len(unlisted)
	if len(unlisted) > 0 {
		notes = append(notes, fmt.Sprintf("final check: the runs of %d acknowledged closed-won deals say they made an invoice (ErpInvoiceId) that the sandbox ERP does not list under the deal id (%s)", len(unlisted), wording.SomeOf(unlisted, 3)))
	}
	ds.Unmatched = len(unmatched)
	if len(unmatched) > 0 {
		notes = append(notes, fmt.Sprintf("final check: the runs of %d acknowledged closed-won deals made invoices that the ERP does not list under their deal ids (%s): the connection's mapping does not make the deal id the invoice reference, so the bench cannot count them; bench a connection whose invoice.reference is deal.id", len(unmatched), wording.SomeOf(unmatched, 3)))
	}
	if len(noRun) > 0 {
		notes = append(notes, fmt.Sprintf("final check: %d acknowledged closed-won deals have no run (%s): their deliveries were answered 2xx without starting one (is their stage one of the connection's won_stages?)", len(noRun), wording.SomeOf(noRun, 3)))
	}
	if len(closedRun) > 0 {
		notes = append(notes, fmt.Sprintf("final check: the runs of %d acknowledged closed-won deals closed without an invoice (%s)", len(closedRun), wording.SomeOf(closedRun, 3)))
	}
	if ds.LateDuplicated > 0 {
		notes = append(notes, fmt.Sprintf("%d duplicate invoices appeared after their round's own check", ds.LateDuplicated))
	}
	return notes
}

// runState is what Temporal says of the run of an acknowledged deal
// without an invoice.
type runState int

const (
	// runUnknown: not described (the run's deadline or Ctrl-C came first,
	// or Temporal did not answer): the deal is pending.
	runUnknown runState = iota
	// runOpen: the run is still running: its invoice may come (pending).
	runOpen
	// runClosed: the run closed (completed, failed, terminated, timed
	// out, cancelled) without an invoice: the deal is lost.
	runClosed
	// runNone: no run has the deal's workflow ID: the delivery was
	// acknowledged without starting one, so nothing will invoice the deal
	// (lost).
	runNone
	// runInvoicedUnmatched: the run closed having made an invoice
	// (ErpInvoiceId set) that the ERP does not list under the deal's id:
	// the connection's invoice.reference is not the deal id, which an
	// external run cannot check beforehand. Not lost: unmatched.
	runInvoicedUnmatched
)

// describeConcurrency bounds the DescribeWorkflowExecution calls in flight
// at once: they go to the server under test. Every deal without an invoice
// is described (no sample: a share of them says nothing of the others),
// within the run's deadline.
const describeConcurrency = 8

// describeRuns describes the run of each deal, by its deterministic
// workflow ID (workflows.WorkflowID: the intake's scheme for a deal
// without a CRM account, as the bench's deliveries are), at most
// describeConcurrency at a time and each bounded at 10 s, until ctx ends:
// the deals not described by then, or whose describe failed, are left out
// (runUnknown).
func describeRuns(ctx context.Context, c client.Client, connection string, deals []string) (_ map[string]runState, firstErr error) {
	out := make(map[string]runState, len(deals))
	if len(deals) == 0 {
		return out, nil
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	feed := make(chan string)
	for range min(describeConcurrency, len(deals)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for deal := range feed {
				st, err := describeRun(ctx, c, workflows.WorkflowID(connection, deal))
				mu.Lock()
				if st != runUnknown {
					out[deal] = st
				} else if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
send:
	for _, deal := range deals {
		select {
		case <-ctx.Done():
			break send
		case feed <- deal:
		}
	}
	close(feed)
	wg.Wait()
	return out, firstErr
}

// describeRun says whether the latest run of the workflow ID is running,
// closed, or does not exist; runUnknown with Temporal's error when it
// could not say (none when the context ended first).
func describeRun(ctx context.Context, c client.Client, workflowID string) (runState, error) {
	if ctx.Err() != nil {
		return runUnknown, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.DescribeWorkflowExecution(dctx, workflowID, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return runNone, nil
	case err != nil:
		return runUnknown, err
	}
	switch info := resp.GetWorkflowExecutionInfo(); info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED:
		return runUnknown, errors.New("the run's status is unspecified")
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return runOpen, nil
	default:
		if rerun.ErpInvoiceID(info.GetSearchAttributes()) != "" {
			return runInvoicedUnmatched, nil
		}
		return runClosed, nil
	}
}

// judgeMissing describes the runs of ex's deals without an invoice whose
// state is not known yet into states, and returns the reconciliation the
// verdict stands on. A run seen closed may have made its invoice between
// ex's listing and the describe: when any was, the invoices are listed
// again (relist), after the describes, so that a deal still without one
// there was indeed closed without it. If that listing fails, those deals
// stay pending.
func judgeMissing(ctx context.Context, c client.Client, connection string, ex exactlyOnce, states map[string]runState, relist func() (exactlyOnce, error)) (exactlyOnce, []string) {
	var notes []string
	var ask []string
	for _, deal := range ex.missingDeals {
		if states[deal] != runNone {
			ask = append(ask, deal)
		}
	}
	described, err := describeRuns(ctx, c, connection, ask)
	maps.Copy(states, described)
	if n := len(ask) - len(described); n > 0 {
		why := "the run was stopped"
		if err != nil {
			why = "looking them up failed: " + err.Error()
		}
		notes = append(notes, fmt.Sprintf("final check: the runs of %d of %d acknowledged deals without an invoice could not be looked up in Temporal (%s): counted as pending", n, len(ask), why))
	}
	// A run seen closed, with or without an invoice id, may have made
	// its invoice after the listing: listed again.
	isClosed := func(st runState) bool { return st == runClosed || st == runInvoicedUnmatched }
	closed := 0
	for _, deal := range ask {
		if isClosed(states[deal]) {
			closed++
		}
	}
	if closed == 0 {
		return ex, notes
	}
	again, err := relist()
	if err != nil {
		for _, deal := range ask {
			if isClosed(states[deal]) {
				states[deal] = runUnknown
			}
		}
		return ex, append(notes, fmt.Sprintf("final check: listing the invoices again after %d runs were seen closed without one failed (%v): counted as pending", closed, err))
	}
	return again, notes
}

// Verdicts of a run (Report.Verdict), from the worst: the first that
// applies is the run's.
const (
	// VerdictViolated: an invoice is lost (the acknowledged deal's run
	// closed without it, or none was started), duplicated, or made for a
	// deal that must have none.
	VerdictViolated = "violated"
	// VerdictUndelivered: closed-won deliveries were refused or answered
	// 5xx/429 beyond the retries (none acknowledged at all: a wrong
	// --secret or --connection, or an intake that is down), so the run did
	// not test what it was asked to.
	VerdictUndelivered = "undelivered"
	// VerdictInconclusive: the run was stopped (--timeout, Ctrl-C), or
	// runs are still open or their state unknown, so invoices may still
	// come (pending), and so may duplicates.
	VerdictInconclusive = "inconclusive"
	// VerdictPass: every closed-won deal was acknowledged and invoiced
	// exactly once, nothing else was invoiced, and no run is still open.
	VerdictPass = "pass"
)

// verdict judges a run from its final check; stopped says what stopped it
// ("" if nothing did).
func verdict(d *DealsyncResult, stopped string) (string, string) {
	switch {
	case d.Lost > 0 || d.Duplicated > 0 || d.Unexpected > 0:
		return VerdictViolated, fmt.Sprintf("%d lost, %d duplicated, %d unexpected invoices", d.Lost, d.Duplicated, d.Unexpected)
	case d.Unmatched > 0:
		return VerdictInconclusive, fmt.Sprintf("the runs of %d deals made invoices the bench cannot match to their deals: the connection's invoice.reference is not the deal id", d.Unmatched)
	case d.Refused > 0 && d.Unacknowledged == d.Deals:
		return VerdictUndelivered, fmt.Sprintf("no closed-won delivery was acknowledged (statuses %s): check --connection and --secret, and that the intake is up", counts(d.Statuses))
	case d.Refused > 0:
		return VerdictUndelivered, fmt.Sprintf("%d of %d closed-won deliveries were refused or answered 5xx/429 beyond --retries (statuses %s)", d.Refused, d.Deals, counts(d.Statuses))
	case stopped != "":
		return VerdictInconclusive, fmt.Sprintf("stopped by %s: %d closed-won deals not acknowledged in time, %d acknowledged ones without an invoice yet (pending, not lost)", stopped, d.Unacknowledged, d.Pending)
	case d.Pending > 0:
		return VerdictInconclusive, fmt.Sprintf("%d acknowledged closed-won deals have no invoice yet, and their runs are still running or could not be looked up: they may still come (pending, not lost)", d.Pending)
	case d.OpenRuns > 0:
		return VerdictInconclusive, fmt.Sprintf("%d runs still open: a later duplicate cannot be excluded", d.OpenRuns)
	default:
		return VerdictPass, "every closed-won deal acknowledged and invoiced exactly once"
	}
}
