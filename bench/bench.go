// Package bench measures dealsync end to end: it sends signed closed-won
// webhooks to an intake (its own in-process `dealsync dev` stack on a fresh
// data dir, or a running dealsync), waits for the invoices in the sandbox
// ERP, checks that none is lost or duplicated, and reports acknowledgement
// latency, throughput, history size, memory and CPU. In the same run it
// drives a bare workflow with the same number of external calls on the same
// Temporal server, so that dealsync's throughput reads as a ratio of what
// Temporal itself does on the machine.
//
// Every loop is bounded by Options.Timeout: a run always ends by itself,
// with whatever it measured so far.
package bench

import (
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
	"time"

	enumspb "go.temporal.io/api/enums/v1"
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
	"github.com/dealsync/dealsync/workflows"
)

// Options configure a benchmark run.
type Options struct {
	// N is the number of closed-won deals (each must become one invoice).
	N int
	// Concurrency is the number of deliveries in flight at most.
	Concurrency int
	// NonTriggerShare adds round(N*share) deliveries that must not start a
	// run (a stage change short of won), mixed in.
	NonTriggerShare float64
	// Rate paces the deliveries at this many webhooks/s (0: as fast as
	// Concurrency allows).
	Rate float64
	// Timeout bounds the whole run.
	Timeout time.Duration
	// Settle bounds the wait for invoices once no new one has appeared for
	// this long (default 60s), and the wait for runs to close.
	Settle time.Duration
	// Retries of a delivery answered 5xx/429 or not at all, as a CRM does.
	Retries int

	// Config is the dev config of the in-process stack (config.Load with
	// config.WithDevDefaults); its data dir and ports are replaced.
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

	// Connection the webhooks are sent to, and its Standard Webhooks secret.
	Connection, Secret string

	// ERP faults (in-process only): fractions of ERP calls answered 503 /
	// 429 with Retry-After.
	ErrorRate, RateLimitRate float64
	RetryAfter               time.Duration

	// Baselines are the variants to run (BaselineLocal, BaselineCalls,
	// BaselineFull, BaselineActivities); BaselineN runs each (default N).
	Baselines []string
	BaselineN int
	// HistorySample is how many runs' histories are read (0: none).
	HistorySample int
	// Rounds splits N and BaselineN into this many rounds of a dealsync
	// phase followed by each baseline (default 3; 1 with Rate, which has
	// no baseline by default).
	Rounds int

	// Progress, if set, receives one line per phase.
	Progress io.Writer
}

func (o *Options) defaults() {
	if o.N <= 0 {
		o.N = 2000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 50
	}
	if o.Timeout <= 0 {
		o.Timeout = 4 * time.Minute
	}
	if o.Settle <= 0 {
		o.Settle = 60 * time.Second
	}
	if o.Connection == "" {
		o.Connection = "demo"
	}
	if o.Secret == "" {
		o.Secret = config.DevSecret
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

// Run runs the benchmark and returns its report. An error means nothing
// could be measured; a partial run returns a report with Notes.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	if err := checkBaselines(o.Baselines); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
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
	if o.IntakeURL != "" || o.SandboxURL != "" {
		if o.IntakeURL == "" || o.SandboxURL == "" {
			return nil, errors.New("an external target needs both --intake-url and --sandbox-url")
		}
		if o.ErrorRate > 0 || o.RateLimitRate > 0 {
			return nil, errors.New("ERP faults can be injected only into the in-process stack; start the external dealsync with sandbox.error_rate / sandbox.rate_limit_rate instead")
		}
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
		sampler.takePeak()
	} else {
		rep.Notes = append(rep.Notes, "memory and CPU not measured: give --pid of the dealsync process")
	}

	// The phases, interleaved in rounds: dealsync, then each baseline,
	// Rounds times, so that a slow spell of a shared machine weighs on
	// both sides of the ratio instead of on one phase.
	if t.sb != nil && (o.ErrorRate > 0 || o.RateLimitRate > 0) {
		t.sb.SetFaults(sandbox.Faults{ErrorRate: o.ErrorRate, RateLimitRate: o.RateLimitRate, RetryAfter: o.RetryAfter})
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
			return nil, err
		}
		ds, err := runDealsync(ctx, o, t, roundID, n, rep, label, logf)
		stopProfile()
		if err != nil {
			return rep, err
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
				return rep, err
			}
			br, err := runBaseline(ctx, o, t, bl, roundID, v, bn)
			stopProfile()
			if err != nil {
				return rep, err
			}
			if sampler != nil {
				br.PeakRSS = sampler.takePeak()
			}
			blRounds[v] = append(blRounds[v], br)
		}
	}
	if len(dsRounds) == 0 {
		return rep, ctx.Err()
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
	if ds.Lost > 0 || ds.Duplicated > 0 || ds.Unexpected > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("EXACTLY-ONCE VIOLATED: %d lost, %d duplicated, %d unexpected invoices", ds.Lost, ds.Duplicated, ds.Unexpected))
	}
	if o.HistorySample > 0 && t.c != nil {
		ds.History = sampleHistories(ctx, t.c, dealWorkflowIDs(o.Connection, ds.ackedDeals, o.HistorySample))
	}
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
		if o.HistorySample > 0 {
			n := min(o.HistorySample, 20, rounds[0].Done)
			ids := make([]string, 0, n)
			for i := range n {
				ids = append(ids, baselineWorkflowID(roundIDs[0], v, i*rounds[0].Runs/max(n, 1)))
			}
			br.History = sampleHistories(ctx, t.c, ids)
		}
		rep.Baselines = append(rep.Baselines, br)
	}
	if bl != nil && o.Rate > 0 {
		rep.Notes = append(rep.Notes, "paced run (--rate): dealsync's invoices/s is capped by the send rate, so the ratio to the baseline says nothing about capacity")
	}
	if bl != nil && t.sb == nil {
		rep.Notes = append(rep.Notes, "external target: the baseline worker runs in the bench process, not in the dealsync process")
	}
	for i, d := range dsRounds {
		rr := Round{Round: i + 1, Deals: d.Deals, Invoices: d.Invoices, InvoicesPerSecond: d.InvoicesPerSecond, CPUPerInvoiceMS: d.CPUPerInvoiceMS}
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
	if ctx.Err() != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("stopped by the --timeout of %s: figures are partial", o.Timeout))
	}
	return rep, nil
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
	cfg := *o.Config
	dir, err := os.MkdirTemp("", "dealsync-bench-")
	if err != nil {
		return nil, nil, "", err
	}
	cleanupDir := func() {
		if !o.KeepDataDir {
			_ = os.RemoveAll(dir)
		}
	}
	cfg.Dev.DataDir = dir
	cfg.Intake.Listen = "127.0.0.1:0"
	ports, err := devserver.FreePorts("127.0.0.1", 1)
	if err != nil {
		cleanupDir()
		return nil, nil, "", err
	}
	oldSandbox := cfg.Dev.SandboxListen
	cfg.Dev.SandboxListen = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	// The built-in sandbox target points at dev.sandbox_listen: follow it.
	cfg.Targets = maps.Clone(cfg.Targets)
	for name, tc := range cfg.Targets {
		if hc, ok := tc.Spec.(*httptarget.Config); ok && sameHostPort(hc.BaseURL, oldSandbox) {
			c := *hc
			c.BaseURL = "http://" + cfg.Dev.SandboxListen
			tc.Spec = &c
			cfg.Targets[name] = tc
		}
	}
	if o.LogLevel != "" {
		cfg.Log.Level = o.LogLevel
	}
	logFile, err := os.Create(filepath.Join(dir, "dealsync.log"))
	if err != nil {
		cleanupDir()
		return nil, nil, "", err
	}
	logger := app.NewLogger(cfg.Log, logFile)
	d, err := app.StartDev(ctx, &cfg, logger, app.DevOptions{FrontendPort: -1, UIPort: -1})
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

func sameHostPort(baseURL, listen string) bool {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	return strings.HasSuffix(strings.TrimRight(baseURL, "/"), ":"+port)
}

func newRunID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func quietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// runDealsync sends the webhooks and waits for the invoices.
func runDealsync(ctx context.Context, o Options, t *target, runID string, n int, rep *Report, label string, logf func(string, ...any)) (*DealsyncResult, error) {
	evs := makeEvents(runID, n, o.NonTriggerShare, time.Now())
	res := &DealsyncResult{Webhooks: len(evs), Deals: n}
	prefix := "B-" + runID + "-"

	base := 0
	if t.sb != nil {
		base = t.sb.Stats().InvoicesCreated
	}
	cpu0, _ := t.cpu()
	s := &sender{url: t.intakeURL, secret: o.Secret, client: t.http, concurrency: o.Concurrency, rate: o.Rate, retries: o.Retries}
	sent := s.run(ctx, evs)
	res.ackedDeals = sent.ackedDeals
	res.Accepted, res.Failed, res.Late = sent.accepted, sent.failed, sent.late
	res.Attempts = sent.attempts
	res.Statuses = statusMap(sent.statuses)
	res.Ack = latencyOf(sent.latencies)
	res.ackLatencies = sent.latencies
	if el := sent.last.Sub(sent.first).Seconds(); el > 0 {
		res.AcceptedPerSecond = float64(sent.accepted) / el
		res.SendSeconds = el
	}
	logf("%s: %d/%d webhooks acknowledged in %.1fs; waiting for %d invoices", label, sent.accepted, len(evs), res.SendSeconds, sent.acceptedTrg)

	// Wait for the invoices: until every acknowledged deal has one, the
	// count stalls for Settle, or the run times out.
	want := sent.acceptedTrg
	count := func() int {
		if t.sb != nil {
			return t.sb.Stats().InvoicesCreated - base
		}
		invs, err := t.invoices(ctx, prefix)
		if err != nil {
			return -1
		}
		return len(invs)
	}
	poll := 50 * time.Millisecond
	if t.sb == nil {
		poll = time.Second // listing the ERP costs the process under test
	}
	last, lastChange := -1, time.Now()
	for ctx.Err() == nil {
		n := count()
		if n >= want {
			break
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > o.Settle {
			rep.Notes = append(rep.Notes, fmt.Sprintf("no new invoice for %s: stopped waiting at %d of %d", o.Settle, n, want))
			break
		}
		sleep(ctx, poll)
	}
	// Wait for the runs to close (the final workflow task follows the
	// invoice), so that the CPU figure covers all of their work.
	if t.c != nil {
		closed, err := waitClosed(ctx, t.c, t.taskQueue, o.Settle)
		if err != nil {
			rep.Notes = append(rep.Notes, "could not count running workflows: "+err.Error())
		} else {
			res.AllClosedSeconds = closed.Sub(sent.first).Seconds()
		}
		if n, err := countRuns(ctx, t.c, fmt.Sprintf("TaskQueue = %q AND ExecutionStatus = 'Failed'", t.taskQueue)); err == nil {
			res.FailedRuns = int(n)
		}
		// The phase's close rows written: its server work done here, not
		// in the next phase.
		if err := waitCloseRows(ctx, t.c, workflows.WorkflowID(o.Connection, prefix), triggering(evs, sent.ackedDeals), o.Settle); err != nil {
			rep.Notes = append(rep.Notes, "dealsync: "+err.Error())
		}
	}
	cpu1, _ := t.cpu()

	// Exactly once: compare the ERP's invoices with the acknowledged deals.
	invs, err := t.invoices(context.WithoutCancel(ctx), prefix)
	if err != nil {
		return res, fmt.Errorf("listing the sandbox ERP's invoices: %w", err)
	}
	ex := reconcile(invs, prefix, evs, sent.ackedDeals)
	res.Invoices, res.Duplicated, res.Unexpected, res.Lost = ex.invoices, ex.duplicated, ex.unexpected, ex.lost
	lastCreated := ex.lastCreated
	if res.Invoices > 0 && lastCreated.After(sent.first) {
		res.EndToEndSeconds = lastCreated.Sub(sent.first).Seconds()
		res.InvoicesPerSecond = float64(res.Invoices) / res.EndToEndSeconds
	}
	if t.measured && res.Invoices > 0 {
		res.CPUSeconds = (cpu1 - cpu0).Seconds()
		res.CPUPerInvoiceMS = res.CPUSeconds * 1000 / float64(res.Invoices)
	}
	logf("%s: %d invoices, %.1f/s end to end; %d lost, %d duplicated", label, res.Invoices, res.InvoicesPerSecond, res.Lost, res.Duplicated)
	return res, nil
}

func runBaseline(ctx context.Context, o Options, t *target, bl *baseline, runID, variant string, n int) (*BaselineResult, error) {
	cpu0, _ := t.cpu()
	r, err := bl.run(ctx, runID, variant, n, o.Concurrency)
	if err != nil {
		return nil, err
	}
	br := &BaselineResult{Variant: variant, Runs: n, Done: int(r.done), StartErrors: r.startErrors, Start: latencyOf(r.startLatencies)}
	br.startLatencies = r.startLatencies
	steps := baselineSteps[variant]
	br.LocalActivities, br.Activities = steps.local, steps.remote
	if r.done > 0 && r.lastDone.After(r.first) {
		br.Seconds = r.lastDone.Sub(r.first).Seconds()
		br.PerSecond = float64(r.done) / br.Seconds
	}
	if closed, err := waitClosed(ctx, t.c, BaselineTaskQueue, o.Settle); err == nil {
		br.AllClosedSeconds = closed.Sub(r.first).Seconds()
	}
	// Runs that closed before the run list wrote their start row are not
	// counted running above while their close rows are still to be
	// written: wait for those too, so that the phase's server work is done
	// here, not in the next phase.
	if err := waitCloseRows(ctx, t.c, baselineWorkflowIDPrefix(runID, variant), int(r.done), o.Settle); err != nil {
		br.Note = err.Error()
	}
	cpu1, _ := t.cpu()
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

// waitClosed polls until no run of the task queue is running, and returns
// when that was first seen.
func waitClosed(ctx context.Context, c client.Client, taskQueue string, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	q := fmt.Sprintf("TaskQueue = %q AND ExecutionStatus = 'Running'", taskQueue)
	for {
		n, err := countRuns(ctx, c, q)
		if err != nil {
			return time.Time{}, err
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

// sampleHistories reads the histories of the given runs (latest run of
// each ID) and sums up their sizes.
func sampleHistories(ctx context.Context, c client.Client, ids []string) *HistoryStats {
	hs := &HistoryStats{}
	ctx = context.WithoutCancel(ctx) // after the timed phase: finish the sample
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var total, wfts, acts, las, tos, size int
	var durations []time.Duration
	for _, id := range ids {
		it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		var n, wt, at, la, to int
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
			size += proto.Size(ev)
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
		total, wfts, acts, las, tos = total+n, wfts+wt, acts+at, las+la, tos+to
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
	invoices    int // triggering deals with at least one invoice
	duplicated  int // invoices beyond the first per deal
	unexpected  int // invoices for deals that must not have one
	lost        int // acknowledged triggering deals without an invoice
	lastCreated time.Time
}

// reconcile compares the ERP's invoices of this run (reference = deal id,
// with the run's prefix) with the events sent and the deals acknowledged.
func reconcile(invs []invoiceInfo, prefix string, evs []event, acked map[string]bool) exactlyOnce {
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
	trigger := map[string]bool{}
	for _, ev := range evs {
		trigger[ev.dealID] = ev.trigger
	}
	for ref, n := range byRef {
		if !trigger[ref] {
			ex.unexpected += n
			continue
		}
		ex.invoices++
		ex.duplicated += n - 1
	}
	for deal := range acked {
		if trigger[deal] && byRef[deal] == 0 {
			ex.lost++
		}
	}
	return ex
}
