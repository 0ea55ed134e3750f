package mapping_test

import (
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// A tag followed by a value loaded before, the tag dropped, and still
// does; only a tag that leaves no expression (`trigger: !is_won(…)`) is
// refused.
func TestATagFollowedByAValueStillLoads(t *testing.T) {
	if _, err := mapping.Parse("t.yaml", []byte("name: t\ninvoice:\n  memo: !x deal.name\n")); err != nil {
		t.Errorf("memo: !x deal.name: %v", err)
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
	if _, err := mapping.FromSnapshot(&mapping.Snapshot{Name: "s", Hash: mapping.HashOf(src), Path: "s.yaml", Source: src}); err != nil {
		t.Errorf("snapshot: %v", err)
	}
	if _, err := mapping.Parse("s.yaml", src); err == nil || !strings.Contains(err.Error(), "withdrawn") {
		t.Errorf("a file loaded now: %v, want it refused as withdrawn", err)
	}
}
