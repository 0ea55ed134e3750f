package mapping_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// A misspelt field is refused at load wherever it stands, also as the
// argument of a function call (expr skips re-checking those when the
// decimal operators are overloaded).
func TestUnknownFieldsInCallArgumentsAreRefusedAtLoad(t *testing.T) {
	for _, c := range []struct{ name, src, field string }{
		{"is_won", "name: m\ntrigger: is_won(deal.stagez)\n", "stagez"},
		{"lookup", "name: m\nlookups:\n  items:\n    entries: {a: b}\n    missing: error\ninvoice:\n  lines:\n    item_code: lookup(\"items\", item.skuz)\n", "skuz"},
		{"nested", "name: m\ninvoice:\n  memo: upper(trim(deal.compnay.name))\n", "compnay"},
		{"in a comparison", "name: m\ntrigger: is_won(deal.stage) && dec(deal.amountz) > dec(0)\n", "amountz"},
		{"coalesce", "name: m\ninvoice:\n  memo: coalesce(deal.namez, \"x\")\n", "namez"},
	} {
		_, err := mapping.Parse("m.yaml", []byte(c.src))
		var le *mapping.LoadError
		if !errors.As(err, &le) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: got %v, want a load error naming %s", c.name, err, c.field)
		}
	}
}

// A mapping file too large to travel in a run's input is refused at load,
// not by Temporal at every start.
func TestOversizedMappingFileIsRefusedAtLoad(t *testing.T) {
	src := "name: big\n# " + strings.Repeat("x", mapping.MaxFileBytes) + "\n"
	_, err := mapping.Parse("big.yaml", []byte(src))
	var le *mapping.LoadError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "2 MB") {
		t.Fatalf("got %v, want a load error saying why", err)
	}
	if _, err := mapping.Parse("ok.yaml", []byte("name: ok\n# "+strings.Repeat("x", mapping.MaxFileBytes/2)+"\n")); err != nil {
		t.Fatalf("a file under the bound: %v", err)
	}
}
