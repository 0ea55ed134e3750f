package bench

import (
	"testing"
	"time"
)

// The exactly-once check is the benchmark's correctness gate: each way of
// getting it wrong must be counted.
func TestReconcileCountsLostDuplicatedUnexpected(t *testing.T) {
	evs := []event{
		{dealID: "B-r1-1", trigger: true},
		{dealID: "B-r1-2", trigger: true},
		{dealID: "B-r1-3", trigger: true},
		{dealID: "B-r1-4", trigger: false},
	}
	acked := map[string]bool{"B-r1-1": true, "B-r1-2": true, "B-r1-3": true}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	invs := []invoiceInfo{
		{Reference: "B-r1-1", CreatedAt: t0},
		{Reference: "B-r1-1", CreatedAt: t0.Add(time.Second)}, // a duplicate
		{Reference: "B-r1-2", CreatedAt: t0.Add(2 * time.Second)},
		{Reference: "B-r1-4", CreatedAt: t0.Add(3 * time.Second)}, // must not exist
		{Reference: "B-r0-9", CreatedAt: t0.Add(time.Hour)},       // another run: ignored
	}
	ex := reconcile(invs, "B-r1-", evs, acked)
	if ex.invoices != 2 || ex.duplicated != 1 || ex.unexpected != 1 || ex.lost != 1 {
		t.Fatalf("got invoices %d duplicated %d unexpected %d lost %d, want 2 1 1 1", ex.invoices, ex.duplicated, ex.unexpected, ex.lost)
	}
	if !ex.lastCreated.Equal(t0.Add(3 * time.Second)) {
		t.Fatalf("last invoice at %v", ex.lastCreated)
	}
	if clean := reconcile(invs[2:3], "B-r1-", evs[1:2], map[string]bool{"B-r1-2": true}); clean.invoices != 1 || clean.duplicated+clean.unexpected+clean.lost != 0 {
		t.Fatalf("a clean run reports %+v", clean)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 95: 95 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond} {
		if got := percentile(s, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if got := percentile(s[:1], 99); got != time.Millisecond {
		t.Errorf("p99 of one sample = %v", got)
	}
}
