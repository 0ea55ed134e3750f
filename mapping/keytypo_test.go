package mapping_test

import (
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

// A misspelt key of a mapping file names the key it is a typo of, as a
// misspelt field or function in an expression does.
func TestAMisspeltKeySaysWhichItMeant(t *testing.T) {
	_, err := mapping.Parse("r.yaml", []byte("name: r\nroundng: half_even\ninvoice:\n  memmo: x\n  lines:\n    unit_pric: item.unit_price\n    colour: x\n"))
	if err == nil {
		t.Fatal("loaded")
	}
	for _, want := range []string{
		"r.yaml:2:1: roundng: unknown key (did you mean rounding? known keys: name,",
		"r.yaml:4:3: invoice.memmo: unknown key (did you mean memo? known keys:",
		"r.yaml:6:5: invoice.lines.unit_pric: unknown key (did you mean unit_price? known keys:",
		"r.yaml:7:5: invoice.lines.colour: unknown key (known keys: item_code,",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nwant it to say %q", err, want)
		}
	}
}
