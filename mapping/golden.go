package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dealsync/dealsync/model"
)

// Apply maps ev with m and computes and validates the invoice exactly as a
// run does (activities MapDeal then ValidateInvoice): totals rounded per
// currency, lines checked against the deal amount within m.Tolerance().
// Errors are *Error (mapping) or *model.ValidationError. The event is
// taken as the run's worker reads it, after Temporal's JSON payloads, so
// that the mapping sees what the run's sees where JSON changes it: text
// that is not valid UTF-8 (U+FFFD in its place), a moment whose offset
// has seconds (moved to whole minutes), a decimal's exponent (its
// trailing zeros, which string() drops either way).
func Apply(m Mapper, ev model.DealEvent) (model.Invoice, error) {
	if b, err := json.Marshal(ev); err == nil {
		var run model.DealEvent
		if json.Unmarshal(b, &run) == nil {
			ev = run
		}
	}
	inv, err := m.Map(ev)
	if err != nil {
		return model.Invoice{}, err
	}
	inv.ComputeTotals()
	if err := inv.Validate(model.ValidateOptions{DealAmount: ev.Deal.Amount, Tolerance: m.Tolerance()}); err != nil {
		return inv, err
	}
	return inv, nil
}

// GoldenResult is the outcome of one golden case.
type GoldenResult struct {
	// Name is the case name: NAME of NAME.deal.json.
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Diff shows expected (-, the golden file) against got (+, the
	// mapping) when the case failed: for an invoice, a legend line, then
	// the changed lines with a little context (LineDiff).
	Diff string `json:"diff,omitempty"`
	// Error is the mapping or validation error, when there was one.
	Error   string `json:"error,omitempty"`
	Updated bool   `json:"updated,omitempty"`
}

// EventReader reads a deal event file (dealfile.Read, as a run sees it).
type EventReader func(path string) (model.DealEvent, error)

// RunGolden runs every case of dir with m. A case is NAME.deal.json (a
// deal event, read by read) with either NAME.invoice.json,
// the expected invoice (totals computed), or NAME.error.txt, whose every
// non-blank line must appear in the expected mapping or validation error
// (a case with both files, or an error.txt with no such line, is an
// error).
// With update, NAME.invoice.json (or NAME.error.txt, for a case that
// fails) is rewritten from what m produces.
func RunGolden(dir string, m Mapper, update bool, read EventReader) ([]GoldenResult, error) {
	deals, err := filepath.Glob(filepath.Join(dir, "*.deal.json"))
	if err != nil {
		return nil, err
	}
	if len(deals) == 0 {
		return nil, fmt.Errorf("%s: no golden cases (NAME.deal.json with NAME.invoice.json or NAME.error.txt)", dir)
	}
	sort.Strings(deals)
	var out []GoldenResult
	for _, dealPath := range deals {
		name := strings.TrimSuffix(filepath.Base(dealPath), ".deal.json")
		r, err := runGoldenCase(dir, name, dealPath, m, update, read)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func runGoldenCase(dir, name, dealPath string, m Mapper, update bool, read EventReader) (GoldenResult, error) {
	r := GoldenResult{Name: name}
	ev, err := read(dealPath)
	if err != nil {
		return r, err
	}
	invPath := filepath.Join(dir, name+".invoice.json")
	errPath := filepath.Join(dir, name+".error.txt")
	inv, aerr := Apply(m, ev)
	if aerr != nil {
		r.Error = aerr.Error()
	}
	if update {
		r.OK, r.Updated = true, true
		if aerr != nil {
			_ = os.Remove(invPath)
			return r, os.WriteFile(errPath, []byte(aerr.Error()+"\n"), 0o644)
		}
		_ = os.Remove(errPath)
		return r, os.WriteFile(invPath, canonical(inv), 0o644)
	}
	// A case expects one outcome: with both files, one of them would be
	// ignored; and an error.txt without a line to look for would take any
	// error.
	want, err := os.ReadFile(errPath)
	if _, ierr := os.Stat(invPath); err == nil && ierr == nil {
		return r, fmt.Errorf("golden case %s: both %s and %s exist; keep the one the case expects (--update keeps the one the mapping gives)",
			name, filepath.Base(invPath), filepath.Base(errPath))
	}
	if err == nil && strings.TrimSpace(string(want)) == "" {
		return r, fmt.Errorf("golden case %s: %s has no line to look for in the error; write the lines the error must contain",
			name, filepath.Base(errPath))
	}
	if err == nil {
		if aerr == nil {
			r.Diff = "expected an error containing:\n" + string(want) + "got the invoice:\n" + string(canonical(inv))
			return r, nil
		}
		var missing []string
		for _, line := range strings.Split(string(want), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.Contains(aerr.Error(), line) {
				missing = append(missing, "- "+line)
			}
		}
		if len(missing) > 0 {
			r.Diff = "the error does not contain:\n" + strings.Join(missing, "\n") + "\nerror:\n+ " + aerr.Error() + "\n"
			return r, nil
		}
		r.OK = true
		return r, nil
	}
	want, err = os.ReadFile(invPath)
	if err != nil {
		return r, fmt.Errorf("golden case %s: neither %s nor %s can be read", name, filepath.Base(invPath), filepath.Base(errPath))
	}
	if aerr != nil {
		r.Diff = "expected the invoice of " + filepath.Base(invPath) + ", got an error"
		return r, nil
	}
	var expected model.Invoice
	if err := json.Unmarshal(want, &expected); err != nil {
		return r, fmt.Errorf("%s: %w", invPath, err)
	}
	w, g := canonical(expected), canonical(inv)
	if bytes.Equal(w, g) {
		r.OK = true
		return r, nil
	}
	r.Diff = fmt.Sprintf("- golden file %s (expected), + this mapping (got)\n", filepath.Base(invPath)) + LineDiff(string(w), string(g))
	return r, nil
}

// canonical is the invoice's indented JSON: two invoices are equal when
// these are (decimals compare by their text, so 12000 and 12000.00 match
// once both went through model.Invoice).
func canonical(inv model.Invoice) []byte {
	b, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		return []byte(err.Error())
	}
	return append(b, '\n')
}

// LineDiff is a line diff of want (-) and got (+): in each change, the
// lines of want before those of got, with contextLines unchanged lines
// (indented by two spaces) around it; "..." stands for the unchanged
// lines left out. At most maxDiffLines changed lines are shown, then how
// many more there are. It has no legend: its caller says what want and
// got are.
func LineDiff(want, got string) string {
	a, b := strings.Split(strings.TrimRight(want, "\n"), "\n"), strings.Split(strings.TrimRight(got, "\n"), "\n")
	ops := diffOps(a, b)
	// The ops shown: the changed ones and contextLines either side.
	show := make([]bool, len(ops))
	for k, o := range ops {
		if o.kind != ' ' {
			for c := max(0, k-contextLines); c <= min(len(ops)-1, k+contextLines); c++ {
				show[c] = true
			}
		}
	}
	var sb strings.Builder
	changed, skipped := 0, false
	for k, o := range ops {
		if !show[k] {
			skipped = true
			continue
		}
		if skipped {
			sb.WriteString("...\n")
			skipped = false
		}
		if o.kind != ' ' {
			if changed == maxDiffLines {
				rest := 0
				for _, o := range ops[k:] {
					if o.kind != ' ' {
						rest++
					}
				}
				fmt.Fprintf(&sb, "... and %d more changed lines\n", rest)
				return sb.String()
			}
			changed++
		}
		sb.WriteString(string(o.kind) + " " + o.line + "\n")
	}
	if skipped {
		sb.WriteString("...\n")
	}
	return sb.String()
}

const (
	// contextLines is how many unchanged lines LineDiff shows around a
	// change.
	contextLines = 2
	// maxDiffLines bounds the changed lines LineDiff shows.
	maxDiffLines = 40
	// maxDiffCells bounds the table of the longest common subsequence of
	// the lines between the common head and tail (one int each); beyond,
	// they are all shown as changed.
	maxDiffCells = 1 << 22
)

type diffOp struct {
	kind byte // ' ' in both, '-' in want only, '+' in got only
	line string
}

// diffOps is a shortest edit script of a into b, the deletions of each
// change before its insertions.
func diffOps(a, b []string) []diffOp {
	head := 0
	for head < len(a) && head < len(b) && a[head] == b[head] {
		head++
	}
	tail := 0
	for tail < len(a)-head && tail < len(b)-head && a[len(a)-1-tail] == b[len(b)-1-tail] {
		tail++
	}
	ops := make([]diffOp, 0, len(a)+len(b))
	for _, l := range a[:head] {
		ops = append(ops, diffOp{' ', l})
	}
	x, y := a[head:len(a)-tail], b[head:len(b)-tail]
	if (len(x)+1)*(len(y)+1) > maxDiffCells {
		for _, l := range x {
			ops = append(ops, diffOp{'-', l})
		}
		for _, l := range y {
			ops = append(ops, diffOp{'+', l})
		}
	} else {
		// lcs[i][j]: the longest common subsequence of x[i:] and y[j:].
		lcs := make([][]int, len(x)+1)
		for i := range lcs {
			lcs[i] = make([]int, len(y)+1)
		}
		for i := len(x) - 1; i >= 0; i-- {
			for j := len(y) - 1; j >= 0; j-- {
				if x[i] == y[j] {
					lcs[i][j] = lcs[i+1][j+1] + 1
				} else {
					lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
				}
			}
		}
		i, j := 0, 0
		for i < len(x) || j < len(y) {
			switch {
			case i < len(x) && j < len(y) && x[i] == y[j]:
				ops = append(ops, diffOp{' ', x[i]})
				i, j = i+1, j+1
			case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
				ops = append(ops, diffOp{'-', x[i]})
				i++
			default:
				ops = append(ops, diffOp{'+', y[j]})
				j++
			}
		}
	}
	for _, l := range a[len(a)-tail:] {
		ops = append(ops, diffOp{' ', l})
	}
	return ops
}

// IsValidationError reports whether err is (or wraps) a *model.ValidationError.
func IsValidationError(err error) bool {
	var ve *model.ValidationError
	return errors.As(err, &ve)
}
