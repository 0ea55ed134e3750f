package mapping_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/mapping/dealfile"
)

// A failed golden case says which side is which, shows the golden file's
// line (-) before the mapping's (+), and only the lines near the change.
func TestGoldenDiffIsExpectedFirstWithContext(t *testing.T) {
	dir := t.TempDir()
	deal, _ := os.ReadFile("../examples/mappings/generic-standard/won-de-two-lines.deal.json")
	want, _ := os.ReadFile("../examples/mappings/generic-standard/won-de-two-lines.invoice.json")
	os.WriteFile(filepath.Join(dir, "c.deal.json"), deal, 0o644)
	os.WriteFile(filepath.Join(dir, "c.invoice.json"), []byte(strings.Replace(string(want), `"PRO-ANNUAL"`, `"PRO-1Y"`, 1)), 0o644)
	set, err := mapping.Load(mapping.Sources{Files: []string{"../examples/mappings/generic-standard.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Get("generic-standard")
	results, err := mapping.RunGolden(dir, m, false, dealfile.Read)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].OK {
		t.Fatalf("want one failing case, got %+v", results)
	}
	diff := results[0].Diff
	lines := strings.Split(strings.TrimRight(diff, "\n"), "\n")
	if lines[0] != "- golden file c.invoice.json (expected), + this mapping (got)" {
		t.Errorf("legend: %q", lines[0])
	}
	minus := strings.Index(diff, `-       "item_code": "PRO-1Y",`)
	plus := strings.Index(diff, `+       "item_code": "PRO-ANNUAL",`)
	if minus < 0 || plus < 0 || minus > plus {
		t.Errorf("want the golden file's line, then the mapping's:\n%s", diff)
	}
	if strings.Contains(diff, `"reference"`) || strings.Contains(diff, `"total"`) || !strings.Contains(diff, "\n...\n") {
		t.Errorf("want the change with a little context, not the whole invoice:\n%s", diff)
	}
	if len(lines) > 10 {
		t.Errorf("%d lines for one changed line:\n%s", len(lines), diff)
	}
}

func TestLineDiff(t *testing.T) {
	var a, b []string
	for i := range 30 {
		a = append(a, fmt.Sprintf("line %d", i))
	}
	b = append(b, a...)
	b[3], b[20] = "new 3", "new 20"
	got := mapping.LineDiff(strings.Join(a, "\n"), strings.Join(b, "\n"))
	want := `...
  line 1
  line 2
- line 3
+ new 3
  line 4
  line 5
...
  line 18
  line 19
- line 20
+ new 20
  line 21
  line 22
...
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// Lines added at the end, after the last common one.
	if got, want := mapping.LineDiff("x\ny", "x\ny\nz"), "  x\n  y\n+ z\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	// A diff of everything is bounded.
	var c []string
	for i := range 500 {
		c = append(c, fmt.Sprintf("other %d", i))
	}
	long := mapping.LineDiff(strings.Join(c, "\n"), strings.Join(a, "\n"))
	if n := strings.Count(long, "\n"); n > 50 || !strings.HasSuffix(long, "... and 490 more changed lines\n") {
		t.Errorf("%d lines:\n%s", n, long)
	}
}
