package mapping_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/config"
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

// goldenCase writes a golden folder with the example deal (with stage and
// line items replaced as given) as case c, and files beside it.
func goldenCase(t *testing.T, stage string, lines bool, files map[string]string) string {
	t.Helper()
	deal, err := os.ReadFile("../examples/closed-won.json")
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(deal), `"stage": "closed_won"`, fmt.Sprintf("%q: %q", "stage", stage), 1)
	if !lines {
		i, j := strings.Index(src, `,
    "line_items"`), strings.LastIndex(src, "]")
		if i < 0 || j < i {
			t.Fatal("the example deal changed")
		}
		src = src[:i] + src[j+1:]
	}
	dir := t.TempDir()
	files["c.deal.json"] = src
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runCase runs the folder's one case.
func runCase(t *testing.T, dir string, m mapping.Mapper, update bool, opts ...mapping.GoldenOption) mapping.GoldenResult {
	t.Helper()
	results, err := mapping.RunGolden(dir, m, update, dealfile.Read, opts...)
	if err != nil || len(results) != 1 {
		t.Fatalf("RunGolden: %+v, %v", results, err)
	}
	return results[0]
}

// A golden case judges the trigger as `mapping test --deal` does: a
// trigger that fails on the case's deal fails the case (the intake would
// refuse the delivery), and a case expecting an invoice fails when the
// trigger would start no run for the deal. A case that expects no run
// says so with an error.txt, which --update writes.
func TestGoldenCasesEvaluateTheTrigger(t *testing.T) {
	plain := parse(t, "name: g\n")
	failing := parse(t, "name: g\ntrigger: is_won(deal.stage) && deal.line_items[0].quantity > 0\n")

	// The deal has no line items: the trigger fails on it.
	dir := goldenCase(t, "closed_won", false, map[string]string{})
	if r := runCase(t, dir, plain, true); !r.OK || !r.Updated {
		t.Fatalf("update: %+v", r)
	}
	if r := runCase(t, dir, plain, false); !r.OK {
		t.Fatalf("the invoice --update wrote: %+v", r)
	}
	r := runCase(t, dir, failing, false)
	if r.OK || !strings.Contains(r.TriggerError, "D-1001") || !strings.Contains(r.Diff, "trigger: FAILED on this deal") ||
		!strings.Contains(r.Diff, "500") || !strings.Contains(r.Diff, r.TriggerError) {
		t.Errorf("a trigger that fails on the deal: %+v", r)
	}
	// --update keeps nothing of such a case, and fails it.
	if r := runCase(t, dir, failing, true); r.OK || r.Updated || r.TriggerError == "" {
		t.Errorf("update with a failing trigger: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.error.txt")); err == nil {
		t.Error("--update wrote the trigger's failure as the expected error")
	}
	// An error.txt does not expect a trigger's failure either.
	os.Remove(filepath.Join(dir, "c.invoice.json"))
	os.WriteFile(filepath.Join(dir, "c.error.txt"), []byte("D-1001\n"), 0o644)
	if r := runCase(t, dir, failing, false); r.OK || r.TriggerError == "" {
		t.Errorf("an error.txt case with a failing trigger: %+v", r)
	}

	// A deal the trigger does not take: no run would invoice it.
	invoice, err := os.ReadFile(filepath.Join(goldenCaseUpdated(t, plain), "c.invoice.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir = goldenCase(t, "proposal", true, map[string]string{"c.invoice.json": string(invoice)})
	r = runCase(t, dir, plain, false)
	if r.OK || r.Skipped != `stage "proposal" is not a won stage` ||
		!strings.Contains(r.Diff, `the trigger would start no run for this deal: stage "proposal" is not a won stage`) {
		t.Errorf("an invoice expected of a deal that starts no run: %+v", r)
	}
	// --update records that no run starts; the case then passes.
	if r := runCase(t, dir, plain, true); !r.OK || !r.Updated {
		t.Fatalf("update: %+v", r)
	}
	got, err := os.ReadFile(filepath.Join(dir, "c.error.txt"))
	if err != nil || string(got) != "no run would start: stage \"proposal\" is not a won stage\n" {
		t.Errorf("error.txt: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.invoice.json")); err == nil {
		t.Error("--update kept the invoice of a case that starts no run")
	}
	if r := runCase(t, dir, plain, false); !r.OK {
		t.Errorf("after update: %+v", r)
	}
	// An error.txt expecting a mapping error: there is none, no run starts.
	os.WriteFile(filepath.Join(dir, "c.error.txt"), []byte("lookup table\n"), 0o644)
	if r := runCase(t, dir, plain, false); r.OK || !strings.Contains(r.Diff, "the outcome does not contain:\n- lookup table") ||
		!strings.Contains(r.Diff, "+ no run would start: ") {
		t.Errorf("a mapping error expected of a deal that starts no run: %+v", r)
	}

	// The connection's won stages, when given: "proposal" is won there.
	dir = goldenCase(t, "proposal", true, map[string]string{"c.invoice.json": string(invoice)})
	if r := runCase(t, dir, plain, false, mapping.GoldenWonStages([]string{"Proposal"})); !r.OK {
		t.Errorf("with the connection's won stages: %+v", r)
	}
	// Otherwise the default ones, as `mapping test` without a connection.
	for _, stage := range config.DefaultWonStages {
		dir := goldenCase(t, stage, true, map[string]string{"c.invoice.json": string(invoice)})
		if r := runCase(t, dir, plain, false); !r.OK {
			t.Errorf("stage %q: %+v", stage, r)
		}
	}
}

// goldenCaseUpdated is a won case of the example deal whose files
// --update wrote with m.
func goldenCaseUpdated(t *testing.T, m mapping.Mapper) string {
	t.Helper()
	dir := goldenCase(t, "closed_won", true, map[string]string{})
	if r := runCase(t, dir, m, true); !r.OK {
		t.Fatalf("update: %+v", r)
	}
	return dir
}

// A key that an invoice does not have, in an expected invoice, is an
// error naming it, where it is and the file: ignored, the value it was
// meant to check would pass unchecked. What --update writes reads back.
func TestGoldenInvoiceRefusesUnknownKeys(t *testing.T) {
	set, err := mapping.Load(mapping.Sources{Files: []string{"../examples/mappings/generic-standard.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Get("generic-standard")
	deal, _ := os.ReadFile("../examples/mappings/generic-standard/won-de-two-lines.deal.json")
	want, _ := os.ReadFile("../examples/mappings/generic-standard/won-de-two-lines.invoice.json")
	for _, c := range []struct{ name, old, new, says string }{
		{"on a line", `"discount": "0",`, `"discount": "0", "discont": "5",`, `unknown key "discont" in lines[1]`},
		{"at the top", `"total": "12852",`, `"total": "12852", "totl": "9999",`, `unknown key "totl" at the top level`},
		{"in the address", `"city": "Berlin",`, `"city": "Berlin", "zip": "10115",`, `unknown key "zip" in customer.address`},
	} {
		dir := t.TempDir()
		edited := strings.Replace(string(want), c.old, c.new, 1)
		if edited == string(want) {
			t.Fatalf("%s: the example invoice changed", c.name)
		}
		os.WriteFile(filepath.Join(dir, "c.deal.json"), deal, 0o644)
		os.WriteFile(filepath.Join(dir, "c.invoice.json"), []byte(edited), 0o644)
		_, err := mapping.RunGolden(dir, m, false, dealfile.Read)
		if err == nil || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), filepath.Join(dir, "c.invoice.json")) ||
			!strings.Contains(err.Error(), "golden case c") {
			t.Errorf("%s: got %v, want an error naming the key, where it is and the file", c.name, err)
		}
	}

	// Keys differing in case only are the invoice's, as encoding/json
	// reads them, and what --update writes is read back as it is.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "c.deal.json"), deal, 0o644)
	os.WriteFile(filepath.Join(dir, "c.invoice.json"), []byte(strings.Replace(string(want), `"total":`, `"Total":`, 1)), 0o644)
	if r, err := mapping.RunGolden(dir, m, false, dealfile.Read); err != nil || len(r) != 1 || !r[0].OK {
		t.Errorf("a key in another case: %+v, %v", r, err)
	}
	if r, err := mapping.RunGolden(dir, m, true, dealfile.Read); err != nil || len(r) != 1 || !r[0].Updated {
		t.Fatalf("update: %+v, %v", r, err)
	}
	if r, err := mapping.RunGolden(dir, m, false, dealfile.Read); err != nil || len(r) != 1 || !r[0].OK {
		t.Errorf("what --update wrote: %+v, %v", r, err)
	}
}

// A long line that differs in one character from the golden one is shown
// with what the two share left out, so that the difference can be seen;
// short lines and changes of several lines are shown whole.
func TestLineDiffLeavesOutWhatALongChangedLineShares(t *testing.T) {
	long := strings.Repeat("a", 3000)
	want := "{\n  \"description\": \"" + long + "X" + long + "\",\n  \"memo\": \"m\"\n}"
	got := "{\n  \"description\": \"" + long + "Y" + long + "\",\n  \"memo\": \"m\"\n}"
	d := mapping.LineDiff(want, got)
	same := fmt.Sprintf("…(%d same characters)…", 3000+len(`  "description": "`)-40)
	if !strings.Contains(d, "- "+`  "desc`) || !strings.Contains(d, same+strings.Repeat("a", 20)+"X"+strings.Repeat("a", 20)+"…(") ||
		!strings.Contains(d, strings.Repeat("a", 20)+"Y"+strings.Repeat("a", 20)) || len(d) > 600 {
		t.Errorf("diff of two long lines (%d bytes):\n%s", len(d), d)
	}
	if d := mapping.LineDiff("{\n  \"memo\": \"a\"\n}", "{\n  \"memo\": \"b\"\n}"); !strings.Contains(d, `-   "memo": "a"`) || !strings.Contains(d, `+   "memo": "b"`) {
		t.Errorf("short lines: %s", d)
	}
}

// An update says what it did to each case: a new file, one rewritten with
// what it held, or a case whose invoice became an error ("updated" alone
// hid that a broken mapping had turned an invoice into a lookup miss).
func TestGoldenUpdateSaysWhatChanged(t *testing.T) {
	dir := goldenCase(t, "closed_won", true, map[string]string{})
	good := mapping.Default{PaymentTermsDays: 30}
	if r := runCase(t, dir, good, true); r.Change != "new" {
		t.Errorf("first update: %+v", r)
	}
	if r := runCase(t, dir, good, true); r.Change != "unchanged" {
		t.Errorf("second update: %+v", r)
	}
	if r := runCase(t, dir, mapping.Default{PaymentTermsDays: 14}, true); r.Change != "changed" {
		t.Errorf("other terms: %+v", r)
	}
	broken, err := mapping.Parse("broken.yaml", []byte("name: broken\ninvoice:\n  reference: 'string(dec(deal.id))'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := runCase(t, dir, broken, true); r.Change != "was an invoice, now an error" {
		t.Errorf("a broken mapping: %+v", r)
	}
	if r := runCase(t, dir, good, true); r.Change != "was an error, now an invoice" {
		t.Errorf("mended: %+v", r)
	}
}

// An error.txt holds no position in the mapping file: the file's path is
// as the command was given it (relative to where it ran), so an
// error.txt that held it matched from there only, and a line moved in
// the mapping failed every case that met its error. A hand-written line
// with a position still matches, wherever the mapping was read from.
func TestGoldenErrorsLeaveOutTheMappingsPosition(t *testing.T) {
	src := []byte("name: m\nlookups:\n  codes:\n    missing: error\n    entries: {XX: x}\ninvoice:\n  memo: 'lookup(\"codes\", deal.currency)'\n")
	dir := goldenCase(t, "closed_won", true, map[string]string{})
	here, err := mapping.Parse("maps/m.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if r := runCase(t, dir, here, true); !strings.Contains(r.Error, "(at maps/m.yaml:7:") {
		t.Fatalf("the run's error names the position: %+v", r)
	}
	written, err := os.ReadFile(filepath.Join(dir, "c.error.txt"))
	if err != nil || strings.Contains(string(written), "(at ") || !strings.Contains(string(written), `has no entry for "EUR"`) {
		t.Fatalf("error.txt: %q, %v; want the error without its position", written, err)
	}
	there, err := mapping.Parse("../elsewhere/m.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if r := runCase(t, dir, there, false); !r.OK {
		t.Errorf("read from elsewhere: %+v", r)
	}
	line := strings.TrimSpace(strings.Replace(string(written), "(expression", "(at maps/m.yaml:7:10) (expression", 1))
	if err := os.WriteFile(filepath.Join(dir, "c.error.txt"), []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runCase(t, dir, there, false); !r.OK {
		t.Errorf("a hand-written line with a position: %+v", r)
	}
}

// An expected invoice that is not JSON, or not an invoice, says where it
// stops being one and what is wrong there in plain words.
func TestGoldenInvoiceThatIsNoJSONSaysWhere(t *testing.T) {
	dir := goldenCase(t, "closed_won", true, map[string]string{"c.invoice.json": "{\n  \"reference\": \"D-1\",\n  \"memo\": oops\n}\n"})
	_, err := mapping.RunGolden(dir, mapping.Default{PaymentTermsDays: 30}, false, dealfile.Read)
	if err == nil || !strings.Contains(err.Error(), "c.invoice.json: line 3, column 11: not JSON: 'o' cannot start a value: a text is written in double quotes, "+
		"a number, true, false and null as they are (invalid character 'o' looking for beginning of value)") {
		t.Fatalf("got %v; want the file, line 3, column 11, and what is wrong", err)
	}
	for _, c := range []struct{ invoice, want string }{
		{`{"reference": "D-1",}`, "c.invoice.json: line 1, column 21: not JSON: a key in double quotes should come here, not '}' (a comma after the last entry is not JSON)"},
		{`{"reference": "D-1"`, "c.invoice.json: line 1, column 19: not JSON: the file ends before the JSON does (a } or ] missing?)"},
		{`{"reference": "D-1" "memo": "x"}`, `not JSON: a comma or } should come here, not '"' (a comma missing between two entries?)`},
		{`{"lines": "x"}`, "c.invoice.json: line 1, column 13: not an invoice: lines should be a list [...], not a text"},
		{`{"reference": 5}`, "not an invoice: reference should be a text in double quotes, not a number"},
	} {
		dir := goldenCase(t, "closed_won", true, map[string]string{"c.invoice.json": c.invoice})
		if _, err := mapping.RunGolden(dir, mapping.Default{PaymentTermsDays: 30}, false, dealfile.Read); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.invoice, err, c.want)
		}
	}
}

// An error.txt written when errors named Go's types (decimal.Decimal)
// still matches, and a deal's text that looks like a position is kept.
func TestGoldenErrorsMatchOldTypeNamesAndKeepTheDealsText(t *testing.T) {
	m, err := mapping.Parse("m.yaml", []byte("name: m\ninvoice:\n  memo: 'string((deal.has_amount ? deal.amount : 0) * 2)'\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := goldenCase(t, "closed_won", true, map[string]string{"c.error.txt": "invalid operation: decimal.Decimal * int\n"})
	if r := runCase(t, dir, m, false); !r.OK {
		t.Errorf("an error.txt naming Go's type: %+v", r)
	}
	os.WriteFile(filepath.Join(dir, "c.error.txt"), []byte("\xef\xbb\xbfinvalid operation: decimal * int\n"), 0o644)
	if r := runCase(t, dir, m, false); !r.OK {
		t.Errorf("an error.txt with a byte order mark: %+v", r)
	}
	deal, err := os.ReadFile(filepath.Join(dir, "c.deal.json"))
	if err != nil {
		t.Fatal(err)
	}
	var named map[string]any
	if err := json.Unmarshal(deal, &named); err != nil {
		t.Fatal(err)
	}
	named["deal"].(map[string]any)["name"] = "Call back (at 10:30)"
	src, _ := json.Marshal(named)
	os.WriteFile(filepath.Join(dir, "c.deal.json"), src, 0o644)
	m, err = mapping.Parse("m.yaml", []byte("name: m\nlookups:\n  t:\n    missing: error\n    entries: {XX: x}\ninvoice:\n  reference: 'lookup(\"t\", deal.name)'\n"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "c.error.txt"))
	runCase(t, dir, m, true)
	written, _ := os.ReadFile(filepath.Join(dir, "c.error.txt"))
	if !strings.Contains(string(written), `no entry for "Call back (at 10:30)"`) || strings.Contains(string(written), "m.yaml:") {
		t.Errorf("error.txt %q; want the deal's name kept and the mapping's position left out", written)
	}
}

// A case that expects an invoice and gets an error says the error (it
// said only "got an error": --json alone had it).
func TestGoldenInvoiceCaseThatFailsSaysTheError(t *testing.T) {
	dir := goldenCase(t, "closed_won", true, map[string]string{})
	runCase(t, dir, mapping.Default{PaymentTermsDays: 30}, true)
	broken, err := mapping.Parse("broken.yaml", []byte("name: broken\ninvoice:\n  reference: 'string(dec(deal.id))'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := runCase(t, dir, broken, false); r.OK || !strings.Contains(r.Diff, "expected the invoice of c.invoice.json, got an error: mapping \"broken\": field reference: dec:") {
		t.Errorf("%+v; want the error in the diff", r)
	}
	// An expected invoice an editor saved with a byte order mark is read
	// past it.
	path := filepath.Join(dir, "c.invoice.json")
	inv, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, append([]byte("\xef\xbb\xbf"), inv...), 0o644)
	if r := runCase(t, dir, mapping.Default{PaymentTermsDays: 30}, false); !r.OK {
		t.Errorf("an expected invoice with a byte order mark: %+v", r)
	}
}

// RunGolden gives a failed result, Stray set, for each file that looks
// like a case's but is part of none, after the cases.
func TestRunGoldenFailsOnFilesThatArePartOfNoCase(t *testing.T) {
	dir := t.TempDir()
	deal, _ := os.ReadFile("../examples/mappings/generic-standard/won-de-two-lines.deal.json")
	want, _ := os.ReadFile("../examples/mappings/generic-standard/won-de-two-lines.invoice.json")
	os.WriteFile(filepath.Join(dir, "c.deal.json"), deal, 0o644)
	os.WriteFile(filepath.Join(dir, "c.invoice.json"), want, 0o644)
	for _, name := range []string{"c.invoice.json.orig", "c.deal.json.bak", "#c.deal.json#", "e.invoice.json.orig", "d.error.txt", "notes.txt", ".c.deal.json.swp"} {
		os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644)
	}
	set, err := mapping.Load(mapping.Sources{Files: []string{"../examples/mappings/generic-standard.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Get("generic-standard")
	results, err := mapping.RunGolden(dir, m, false, dealfile.Read)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range results {
		got = append(got, fmt.Sprintf("%s ok=%v %s", r.Name, r.OK, r.Stray))
	}
	wantResults := []string{
		"c ok=true ",
		"c.deal.json.bak ok=false looks like a copy of c.deal.json: part of no case, it checks nothing; remove it, or move it out of the folder",
		"c.invoice.json.orig ok=false looks like a copy of c.invoice.json: part of no case, it checks nothing; remove it, or move it out of the folder",
		"d.error.txt ok=false an expected error without its deal d.deal.json: part of no case, it checks nothing; add the deal, or remove the file",
		"e.invoice.json.orig ok=false looks like a case's expected invoice but is part of no case: a case's files are named NAME.deal.json, NAME.invoice.json and NAME.error.txt, those suffixes in lower case; rename it e.invoice.json, or move it out of the folder",
	}
	if strings.Join(got, "\n") != strings.Join(wantResults, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantResults, "\n"))
	}
}

// An error.txt holds no mapping name: renaming the mapping failed every
// case that expected a mapping error. A line of an earlier release, which
// starts with `mapping "NAME": `, still matches, whatever the name now.
func TestGoldenErrorsLeaveOutTheMappingsName(t *testing.T) {
	src := "name: %s\nlookups:\n  codes:\n    missing: error\n    entries: {XX: x}\ninvoice:\n  memo: 'lookup(\"codes\", deal.currency)'\n"
	before, after := parse(t, fmt.Sprintf(src, "before")), parse(t, fmt.Sprintf(src, "after"))
	dir := goldenCase(t, "closed_won", true, map[string]string{})
	if r := runCase(t, dir, before, true); !strings.Contains(r.Error, `mapping "before": `) {
		t.Fatalf("the run's error names the mapping: %+v", r)
	}
	written, err := os.ReadFile(filepath.Join(dir, "c.error.txt"))
	if err != nil || strings.Contains(string(written), `mapping "before"`) || !strings.HasPrefix(string(written), "field memo: ") {
		t.Fatalf("error.txt: %q, %v; want the error without the mapping's name", written, err)
	}
	if r := runCase(t, dir, after, false); !r.OK {
		t.Errorf("renamed: %+v", r)
	}
	old := `mapping "before": ` + string(written)
	if err := os.WriteFile(filepath.Join(dir, "c.error.txt"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runCase(t, dir, after, false); !r.OK {
		t.Errorf("an error.txt of an earlier release, of another name: %+v", r)
	}
	if err := os.WriteFile(filepath.Join(dir, "c.error.txt"), []byte(`mapping "after": field memo: no such thing`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runCase(t, dir, after, false); r.OK {
		t.Errorf("a line the error lacks passed: %+v", r)
	}
}

// An update that deletes the case's other file says so, also where the
// file it keeps held what it writes already ("unchanged" alone hid a
// stale invoice deleted beside an error.txt).
func TestGoldenUpdateSaysWhatItDeleted(t *testing.T) {
	broken := parse(t, "name: broken\ninvoice:\n  reference: 'string(dec(deal.id))'\n")
	dir := goldenCase(t, "closed_won", true, map[string]string{})
	if r := runCase(t, dir, broken, true); r.Change != "new" || r.Wrote != "c.error.txt" || r.Deleted != "" {
		t.Fatalf("first update: %+v", r)
	}
	if err := os.WriteFile(filepath.Join(dir, "c.invoice.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCase(t, dir, broken, true)
	if r.Change != "unchanged" || r.Wrote != "c.error.txt" || r.Deleted != "c.invoice.json" {
		t.Errorf("a stale invoice beside the error.txt: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.invoice.json")); err == nil {
		t.Error("the stale invoice is still there")
	}
	good := mapping.Default{PaymentTermsDays: 30}
	if r := runCase(t, dir, good, true); r.Change != "was an error, now an invoice" || r.Wrote != "c.invoice.json" || r.Deleted != "c.error.txt" {
		t.Errorf("mended: %+v", r)
	}
}
