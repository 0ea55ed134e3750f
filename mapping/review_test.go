package mapping_test

import (
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// A tag followed by a value loaded before, the tag dropped, and still
// does; only a tag that leaves no expression (`trigger: !is_won(…)`) is
// refused.
func TestATagFollowedByAValueStillLoads(t *testing.T) {
	m, err := mapping.Parse("t.yaml", []byte("name: t\ninvoice:\n  memo: !x deal.name\n"))
	if err != nil {
		t.Fatalf("memo: !x deal.name: %v", err)
	}
	if inv, err := m.Map(wonEvent("closedwon", "")); err != nil || inv.Memo != "Acme annual" {
		t.Errorf("memo: !x deal.name maps to %q (%v), want the deal's name", inv.Memo, err)
	}
	if _, err := mapping.Parse("t.yaml", []byte("name: t\ntrigger: !is_won(deal.stage)\n")); err == nil || !strings.Contains(err.Error(), "quote the whole expression") {
		t.Errorf("trigger: !is_won(deal.stage): %v, want a refusal saying to quote it", err)
	}
}

// A run's snapshot whose defaults.currency the table of current codes has
// dropped since still loads: the run's invoice is judged when validated,
// and a deal's own currency wins. A file loaded now is refused, saying why.
func TestASnapshotsWithdrawnDefaultCurrencyStillLoads(t *testing.T) {
	src := []byte("name: s\ndefaults:\n  currency: HRK\n")
	m, err := mapping.FromSnapshot(&mapping.Snapshot{Name: "s", Hash: mapping.HashOf(src), Path: "s.yaml", Source: src})
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if inv, err := m.Map(wonEvent("closedwon", "")); err != nil || inv.Currency != "EUR" {
		t.Errorf("a deal in EUR: currency %q (%v), want the deal's EUR", inv.Currency, err)
	}
	// A deal without a currency takes HRK, which validation refuses.
	ev := wonEvent("closedwon", "")
	ev.Deal.Currency = ""
	inv, err := m.Map(ev)
	if err == nil {
		inv.ComputeTotals()
		err = inv.Validate(model.ValidateOptions{})
	}
	if err == nil || !strings.Contains(err.Error(), "HRK") {
		t.Errorf("a deal without a currency: %v, want HRK refused", err)
	}
	if _, err := mapping.Parse("s.yaml", src); err == nil || !strings.Contains(err.Error(), "withdrawn") {
		t.Errorf("a file loaded now: %v, want it refused as withdrawn", err)
	}
}
