package bench

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/config"
)

// The external mode measures a dealsync it did not start: here a dev
// stack on a real embedded Temporal server, reached only through its
// intake, its sandbox ERP, its Temporal frontend and its pid, as an
// operator would point the bench at a running `dealsync dev`.
func TestRunAgainstARunningDealsync(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg, err := config.Load("", config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	d, stop, _, err := startStack(ctx, Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	const deals = 24
	var progress bytes.Buffer
	rep, err := Run(ctx, Options{
		N: deals, Concurrency: 8, NonTriggerShare: 0.25, Rounds: 2,
		IntakeURL: d.IntakeURL, SandboxURL: d.SandboxURL,
		TemporalAddress: d.Temporal.FrontendAddress(), Namespace: d.Temporal.Namespace(), TaskQueue: cfg.Temporal.TaskQueue,
		PID:       os.Getpid(),
		Baselines: []string{BaselineLocal}, HistorySample: 5,
		Settle: 30 * time.Second, Timeout: 2 * time.Minute,
		Progress: &progress,
	})
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, progress.String())
	}
	if rep.Mode != "external" {
		t.Errorf("mode %q", rep.Mode)
	}
	ds := rep.Dealsync
	if ds == nil {
		t.Fatalf("no dealsync phase; notes %v", rep.Notes)
	}
	if ds.Deals != deals || ds.Webhooks != deals+6 || ds.Accepted != ds.Webhooks {
		t.Errorf("sent %d deliveries for %d deals, %d acknowledged", ds.Webhooks, ds.Deals, ds.Accepted)
	}
	if ds.Invoices != deals || ds.Lost+ds.Duplicated+ds.Unexpected != 0 {
		t.Errorf("invoices %d, lost %d, duplicated %d, unexpected %d", ds.Invoices, ds.Lost, ds.Duplicated, ds.Unexpected)
	}
	if ds.InvoicesPerSecond <= 0 || ds.CPUPerInvoiceMS <= 0 || rep.IdleRSS <= 0 {
		t.Errorf("invoices/s %v, CPU %v ms, idle RSS %d: the pid's figures are missing", ds.InvoicesPerSecond, ds.CPUPerInvoiceMS, rep.IdleRSS)
	}
	if h := ds.History; h == nil || h.Sampled == 0 || h.MeanMarkers < 4 || h.MeanBytes <= 0 {
		t.Errorf("history sample of the dealsync runs: %+v", h)
	} else if h.Duration.N != h.Sampled || h.Duration.P50 <= 0 || h.Duration.Max < h.Duration.P50 {
		t.Errorf("run durations of %d sampled runs: %+v", h.Sampled, h.Duration)
	}
	if len(rep.Rounds) != 2 || rep.Rounds[0].Deals+rep.Rounds[1].Deals != deals {
		t.Errorf("rounds %+v", rep.Rounds)
	}
	if len(rep.Baselines) != 1 {
		t.Fatalf("baselines %+v", rep.Baselines)
	}
	bl := rep.Baselines[0]
	if bl.Done != deals || bl.Ratio <= 0 || len(bl.RoundRatios) != 2 || bl.RatioMedian <= 0 {
		t.Errorf("baseline %+v", bl)
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	for _, want := range []string{"(external)", "dealsync / local", "round 2: 12 deals", "0 / 0 / 0", "run duration p50"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}
