package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/dealsync/dealsync/internal/jsonpos"
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
	ev = asRunReads(ev)
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

// asRunReads is ev as a run's worker reads it, after Temporal's JSON
// payloads (see Apply).
func asRunReads(ev model.DealEvent) model.DealEvent {
	if b, err := json.Marshal(ev); err == nil {
		var run model.DealEvent
		if json.Unmarshal(b, &run) == nil {
			return run
		}
	}
	return ev
}

// GoldenResult is the outcome of one golden case.
type GoldenResult struct {
	// Name is the case name: NAME of NAME.deal.json; for a file that
	// looks like a case's but is part of none, the file's name.
	Name string `json:"name"`
	// Stray says, for such a file, what it lacks or should be called
	// (the result fails; it is not a case).
	Stray string `json:"stray,omitempty"`
	OK    bool   `json:"ok"`
	// Diff shows expected (-, the golden file) against got (+, the
	// mapping) when the case failed: for an invoice, a legend line, then
	// the changed lines with a little context (LineDiff).
	Diff string `json:"diff,omitempty"`
	// Error is the mapping or validation error, when there was one.
	Error string `json:"error,omitempty"`
	// TriggerError is the trigger's error on the case's deal (the case
	// fails: the intake refuses such a delivery with 500).
	TriggerError string `json:"trigger_error,omitempty"`
	// Skipped says why the trigger would start no run for the case's deal
	// (as `mapping test --deal` says it), when it would not.
	Skipped string `json:"skipped,omitempty"`
	// SkippedLines are the case's line items that lines.skip left out of
	// its invoice (neither the invoice nor an error.txt says so).
	SkippedLines []SkippedLine `json:"skipped_lines,omitempty"`
	Updated      bool          `json:"updated,omitempty"`
	// Change says what an update did to the case's golden file: "new",
	// "unchanged", "changed", "was an invoice, now an error" or "was an
	// error, now an invoice" (an update rewrites every case, and "updated"
	// alone hid a case whose invoice had become an error).
	Change string `json:"change,omitempty"`
	// Wrote is the file an update wrote (NAME.invoice.json or
	// NAME.error.txt; Change says how it compares with what it held), and
	// Deleted the case's other file, which it removed: a case keeps one
	// outcome. "unchanged" alone hid that an update had deleted a stale
	// invoice beside an error.txt that held the error already.
	Wrote   string `json:"wrote,omitempty"`
	Deleted string `json:"deleted,omitempty"`
}

// GoldenOption changes how RunGolden judges its cases.
type GoldenOption func(*goldenOptions)

type goldenOptions struct {
	won     []string
	webhook func(model.DealEvent) model.DealEvent
}

// GoldenWebhook has RunGolden judge each case's trigger on webhook(deal),
// the webhook the connection's CRM sends of that deal (a thin one, with
// little more than its id and stage), as the intake judges it, instead of
// on the case's deal as written. The invoice is still the case's deal's:
// a run reads the whole deal.
func GoldenWebhook(webhook func(model.DealEvent) model.DealEvent) GoldenOption {
	return func(o *goldenOptions) { o.webhook = webhook }
}

// GoldenWonStages has RunGolden evaluate the trigger with these won stages
// (those of the connection that uses the mapping) instead of the default
// ones (config.DefaultWonStages).
func GoldenWonStages(won []string) GoldenOption {
	return func(o *goldenOptions) { o.won = won }
}

// goldenDefaultWonStages are config.DefaultWonStages (which this package
// cannot import), the won stages of `mapping test` when no connection
// uses the mapping.
var goldenDefaultWonStages = []string{"closed_won", "closedwon", "closed won", "won"}

// noRunPrefix starts the outcome of a case whose trigger is false, which
// an error.txt's lines are looked for in.
const noRunPrefix = "no run would start: "

// EventReader reads a deal event file (dealfile.Read, as a run sees it).
type EventReader func(path string) (model.DealEvent, error)

// RunGolden runs every case of dir with m. A case is NAME.deal.json (a
// deal event, read by read) with either NAME.invoice.json,
// the expected invoice (totals computed; a key an invoice does not have
// is an error), or NAME.error.txt, whose every non-blank line must appear
// in the expected mapping or validation error (a case with both files, or
// an error.txt with no such line, is an error). A file that looks like a
// case's but is part of none (goldenStrays) is a failed result after the
// cases, with Stray set.
//
// The trigger is evaluated on each case's deal first, as `mapping test
// --deal` evaluates it (with the won stages of opts, GoldenWonStages):
// a trigger that fails on the deal fails the case (the intake would
// refuse the delivery); a trigger that is false means that no run would
// start, and the case passes only with an error.txt whose lines appear in
// "no run would start: " and the trigger's reason (an invoice.json fails:
// the deal would never be invoiced).
//
// With update, NAME.invoice.json (or NAME.error.txt, for a case that
// fails or starts no run) is rewritten from what m produces; a case whose
// trigger fails is not rewritten, and fails.
func RunGolden(dir string, m Mapper, update bool, read EventReader, opts ...GoldenOption) ([]GoldenResult, error) {
	o := goldenOptions{won: goldenDefaultWonStages}
	for _, opt := range opts {
		opt(&o)
	}
	if fi, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: the folder does not exist", dir)
		}
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s: not a folder (--dir takes the folder of the golden cases)", dir)
	}
	deals, err := filepath.Glob(filepath.Join(dir, "*.deal.json"))
	if err != nil {
		return nil, err
	}
	strays, err := goldenStrays(dir)
	if err != nil {
		return nil, err
	}
	if len(deals) == 0 {
		msg := fmt.Sprintf("%s: no golden cases (NAME.deal.json with NAME.invoice.json or NAME.error.txt)", dir)
		for _, r := range strays {
			msg += fmt.Sprintf("; %s: %s", r.Name, r.Stray)
		}
		return nil, errors.New(msg)
	}
	sort.Strings(deals)
	var out []GoldenResult
	for _, dealPath := range deals {
		name := strings.TrimSuffix(filepath.Base(dealPath), ".deal.json")
		r, err := runGoldenCase(dir, name, dealPath, m, update, read, o)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return append(out, strays...), nil
}

// goldenRoles are the suffixes of a case's files, by the name part that
// says what a file is.
var goldenRoles = map[string]string{"deal": ".deal.json", "invoice": ".invoice.json", "error": ".error.txt"}

// goldenStrays are the files of dir that look like a case's but are part
// of none, each a failed result naming the file (Name) and what it lacks
// or should be called (Stray): an expected invoice or error.txt without
// its NAME.deal.json, and a file with "deal", "invoice" or "error" as a
// part of its name after the first (parts split at dots, in any case)
// that is not named exactly NAME.deal.json, NAME.invoice.json or
// NAME.error.txt (typo.deal.jsn, Upper.Deal.json, a.invoice.json.orig).
// Left out were they silently, a case would go unchecked. Other files
// (README.md), folders, hidden files, backups ending in "~" and Emacs
// autosaves (#x.deal.json#) are ignored. A file whose right name is taken
// (x.deal.json.bak beside x.deal.json) is called a copy, to remove: the
// advice to rename it would overwrite the case's own file.
func goldenStrays(dir string) ([]GoldenResult, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	exists := map[string]bool{}
	for _, e := range entries {
		exists[e.Name()] = true
	}
	var out []GoldenResult
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") || editorAutosave(name) || strings.HasSuffix(name, ".deal.json") {
			continue
		}
		var stray string
		if base, ok := strings.CutSuffix(name, ".invoice.json"); ok {
			if !exists[base+".deal.json"] {
				stray = fmt.Sprintf("an expected invoice without its deal %s.deal.json: part of no case, it checks nothing; add the deal, or remove the file", base)
			}
		} else if base, ok := strings.CutSuffix(name, ".error.txt"); ok {
			if !exists[base+".deal.json"] {
				stray = fmt.Sprintf("an expected error without its deal %s.deal.json: part of no case, it checks nothing; add the deal, or remove the file", base)
			}
		} else {
			parts := strings.Split(name, ".")
			for i := 1; i < len(parts); i++ {
				role := strings.ToLower(parts[i])
				suffix, ok := goldenRoles[role]
				if !ok {
					continue
				}
				want := strings.Join(parts[:i], ".") + suffix
				what := map[string]string{"deal": "a case's deal", "invoice": "a case's expected invoice", "error": "a case's expected error"}[role]
				if exists[want] {
					// A copy (x.deal.json.bak, x.invoice.json.orig):
					// renamed, it would replace the case's own file.
					stray = fmt.Sprintf("looks like a copy of %s: part of no case, it checks nothing; remove it, or move it out of the folder", want)
					break
				}
				stray = fmt.Sprintf("looks like %s but is part of no case: a case's files are named NAME.deal.json, NAME.invoice.json and NAME.error.txt, those suffixes in lower case; rename it %s, or move it out of the folder", what, want)
				break
			}
		}
		if stray != "" {
			out = append(out, GoldenResult{Name: name, Stray: stray})
		}
	}
	return out, nil
}

// editorAutosave says whether name is an Emacs autosave, #x.deal.json#.
func editorAutosave(name string) bool {
	return len(name) > 2 && strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#")
}

// goldenChange is GoldenResult.Change of an update: other says a file of
// the other outcome was there, same that one of this outcome was, equal
// that it held what is written now.
func goldenChange(other, same, equal bool, flipped string) string {
	switch {
	case equal:
		return "unchanged"
	case same:
		return "changed"
	case other:
		return flipped
	}
	return "new"
}

// goldenTrigger is m's trigger for won stages, as `mapping test` takes it.
func goldenTrigger(m Mapper, won []string) Trigger {
	if t, ok := m.(interface{ Trigger([]string) Trigger }); ok {
		return t.Trigger(won)
	}
	return StageTrigger{WonStages: won}
}

// positionRE is a run-time error's position in the mapping file, " (at
// FILE.yaml:LINE:COLUMN)" (File.runtimeMessage); a deal's text such as
// "Call back (at 10:30)" is none.
var positionRE = regexp.MustCompile(` \(at [^()]+\.ya?ml:\d+(?::\d+)?\)`)

// mappingNameRE is the mapping's name that starts a mapping error,
// `mapping "NAME": ` (Error.Error).
var mappingNameRE = regexp.MustCompile(`^mapping "(?:[^"\\]|\\.)*": `)

// goldenErrorText is an error's text as an error.txt's lines are looked for
// in it: without its positions in the mapping file (the file's path is
// as the command was given it, relative to where it ran, so an error.txt
// that held it matched only from there, and a line moved in the file
// failed every case that met its error), without the mapping's name that
// starts a mapping error (`mapping "NAME": `: renaming the mapping failed
// every case that expected one; a line of an earlier release that holds
// it matches whatever the name), and with a mapping's type names
// (decimal), which an error.txt written before they were named so holds
// as Go's (decimal.Decimal).
func goldenErrorText(msg string) string {
	return typeNames.Replace(mappingNameRE.ReplaceAllString(positionRE.ReplaceAllString(msg, ""), ""))
}

func runGoldenCase(dir, name, dealPath string, m Mapper, update bool, read EventReader, o goldenOptions) (GoldenResult, error) {
	r := GoldenResult{Name: name}
	ev, err := read(dealPath)
	if err != nil {
		return r, err
	}
	invPath := filepath.Join(dir, name+".invoice.json")
	errPath := filepath.Join(dir, name+".error.txt")
	// The trigger judges the deal as the intake does, before any run: on
	// the webhook of it, when the connection's CRM sends thin ones.
	judged := ev
	if o.webhook != nil {
		judged = o.webhook(ev)
	}
	triggered, reason, terr := goldenTrigger(m, o.won).Evaluate(judged)
	if terr != nil {
		r.TriggerError = terr.Error()
		r.Diff = "trigger: FAILED on this deal (the intake refuses such a delivery with 500 until the mapping is fixed): " + terr.Error() + "\n"
	} else if !triggered {
		r.Skipped = reason
	}
	var inv model.Invoice
	var aerr error
	if terr == nil && triggered {
		if inv, aerr = Apply(m, ev); aerr != nil {
			r.Error = aerr.Error()
		}
		r.SkippedLines = SkippedLines(m, ev)
	}
	// outcome is the text an error.txt's lines are looked for in.
	outcome := ""
	switch {
	case terr == nil && !triggered:
		outcome = noRunPrefix + reason
	case aerr != nil:
		outcome = goldenErrorText(aerr.Error())
	}
	if update {
		if terr != nil {
			return r, nil // nothing to keep: the trigger must be fixed
		}
		r.OK, r.Updated = true, true
		oldInv, invErr := os.ReadFile(invPath)
		oldErr, errErr := os.ReadFile(errPath)
		if outcome != "" {
			text := []byte(outcome + "\n")
			r.Change = goldenChange(invErr == nil, errErr == nil, errErr == nil && string(oldErr) == string(text), "was an invoice, now an error")
			r.Wrote = filepath.Base(errPath)
			if invErr == nil {
				if err := os.Remove(invPath); err != nil {
					return r, err
				}
				r.Deleted = filepath.Base(invPath)
			}
			return r, os.WriteFile(errPath, text, 0o644)
		}
		text := canonical(inv)
		r.Change = goldenChange(errErr == nil, invErr == nil, invErr == nil && string(oldInv) == string(text), "was an error, now an invoice")
		r.Wrote = filepath.Base(invPath)
		if errErr == nil {
			if err := os.Remove(errPath); err != nil {
				return r, err
			}
			r.Deleted = filepath.Base(errPath)
		}
		return r, os.WriteFile(invPath, text, 0o644)
	}
	// A case expects one outcome: with both files, one of them would be
	// ignored; and an error.txt without a line to look for would take any
	// error.
	want, err := os.ReadFile(errPath)
	want = jsonpos.WithoutBOM(want) // an editor may write one
	if _, ierr := os.Stat(invPath); err == nil && ierr == nil {
		return r, fmt.Errorf("golden case %s: both %s and %s exist; keep the one the case expects (--update keeps the one the mapping gives)",
			name, filepath.Base(invPath), filepath.Base(errPath))
	}
	if err == nil && strings.TrimSpace(string(want)) == "" {
		return r, fmt.Errorf("golden case %s: %s has no line to look for in the error; write the lines the error must contain",
			name, filepath.Base(errPath))
	}
	if err == nil {
		if terr != nil {
			return r, nil
		}
		if outcome == "" {
			r.Diff = "expected an error containing:\n" + string(want) + "got the invoice:\n" + string(canonical(inv))
			return r, nil
		}
		var missing []string
		for _, line := range strings.Split(string(want), "\n") {
			if line = strings.TrimSpace(goldenErrorText(strings.TrimSpace(line))); line != "" && !strings.Contains(outcome, line) {
				missing = append(missing, "- "+line)
			}
		}
		if len(missing) > 0 {
			what := "error"
			if !triggered {
				what = "outcome"
			}
			r.Diff = "the " + what + " does not contain:\n" + strings.Join(missing, "\n") + "\n" + what + ":\n+ " + outcome + "\n"
			return r, nil
		}
		r.OK = true
		return r, nil
	}
	want, err = os.ReadFile(invPath)
	if err != nil {
		return r, fmt.Errorf("golden case %s: neither %s nor %s can be read", name, filepath.Base(invPath), filepath.Base(errPath))
	}
	expected, err := readGoldenInvoice(want)
	if err != nil {
		return r, fmt.Errorf("golden case %s: %s: %w", name, invPath, err)
	}
	switch {
	case terr != nil:
		return r, nil
	case !triggered:
		r.Diff = "expected the invoice of " + filepath.Base(invPath) + ", but the trigger would start no run for this deal: " + reason + "\n"
		return r, nil
	case aerr != nil:
		r.Diff = "expected the invoice of " + filepath.Base(invPath) + ", got an error: " + aerr.Error() + "\n"
		return r, nil
	}
	w, g := canonical(expected), canonical(inv)
	if bytes.Equal(w, g) {
		r.OK = true
		return r, nil
	}
	r.Diff = fmt.Sprintf("- golden file %s (expected), + this mapping (got)\n", filepath.Base(invPath)) + LineDiff(string(w), string(g))
	return r, nil
}

// readGoldenInvoice reads an expected invoice. A key that an invoice does
// not have (a misspelt "discont" on a line, "totl") is an error naming it
// and where it is: ignored, it would leave the value it was meant to
// check unchecked. Every key --update writes (canonical) is an invoice's.
func readGoldenInvoice(data []byte) (model.Invoice, error) {
	data = jsonpos.WithoutBOM(data) // an editor may write one
	var inv model.Invoice
	if err := json.Unmarshal(data, &inv); err != nil {
		if plain := plainJSONError(err); plain != "" {
			err = fmt.Errorf("%s (%w)", plain, err)
		}
		if at, ok := jsonpos.Of(data, err); ok {
			err = fmt.Errorf("%s: %w", at, err)
		}
		return inv, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(new(model.Invoice)); err != nil {
		var doc any
		_ = json.Unmarshal(data, &doc)
		if at := unknownKey(doc, reflect.TypeFor[model.Invoice](), ""); at != "" {
			return inv, fmt.Errorf("unknown key %s: an expected invoice has the keys of an invoice only, as --update writes them", at)
		}
		return inv, err
	}
	return inv, nil
}

// plainJSONError says in plain words what is wrong where encoding/json
// stopped reading an expected invoice (its message, which follows, is
// Go's): "" where there is nothing to add.
func plainJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ):
		what := map[reflect.Kind]string{reflect.Slice: "a list [...]", reflect.Struct: "an object {...}", reflect.String: "a text in double quotes", reflect.Bool: "true or false"}[typ.Type.Kind()]
		if typ.Type == decimalType {
			what = "a number, in double quotes or not"
		}
		if what == "" || typ.Field == "" {
			return ""
		}
		return fmt.Sprintf("not an invoice: %s should be %s, not %s", typ.Field, what, jsonKindWords[typ.Value])
	case !errors.As(err, &syntax):
		return ""
	}
	msg := syntax.Error()
	var c string
	if i := strings.Index(msg, "'"); i >= 0 {
		if j := strings.Index(msg[i+1:], "'"); j >= 0 {
			c = msg[i+1 : i+1+j]
		}
	}
	switch {
	case msg == "unexpected end of JSON input":
		return "not JSON: the file ends before the JSON does (a } or ] missing?)"
	case strings.HasSuffix(msg, "looking for beginning of object key string"):
		return fmt.Sprintf("not JSON: a key in double quotes should come here, not '%s' (a comma after the last entry is not JSON)", c)
	case strings.HasSuffix(msg, "looking for beginning of value"):
		return fmt.Sprintf("not JSON: '%s' cannot start a value: a text is written in double quotes, a number, true, false and null as they are", c)
	case strings.HasSuffix(msg, "after object key:value pair"):
		return fmt.Sprintf("not JSON: a comma or } should come here, not '%s' (a comma missing between two entries?)", c)
	case strings.HasSuffix(msg, "after object key"):
		return fmt.Sprintf("not JSON: a colon should come after the key, not '%s'", c)
	case strings.HasSuffix(msg, "after array element"):
		return fmt.Sprintf("not JSON: a comma or ] should come here, not '%s' (a comma missing between two elements?)", c)
	case strings.HasSuffix(msg, "in string literal"):
		return "not JSON: a text holds a character JSON takes only escaped (a line break or a tab: write \\n, \\t)"
	case strings.HasSuffix(msg, "after top-level value"):
		return fmt.Sprintf("not JSON: the invoice ends before '%s' (one object per file)", c)
	}
	return ""
}

// jsonKindWords say what a JSON value is, by encoding/json's words.
var jsonKindWords = map[string]string{"string": "a text", "number": "a number", "object": "an object", "array": "a list", "bool": "true or false", "null": "null"}

// unknownKey is the first key in v (a JSON value, decoded into any) that
// a value of type t does not have, with where it is (`"discont" in
// lines[1]`), or "" when there is none. Keys match fields as
// encoding/json matches them, ignoring case.
func unknownKey(v any, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return "" // a value read by its own decoder (a date, a decimal)
	}
	switch x := v.(type) {
	case map[string]any:
		if t.Kind() != reflect.Struct {
			return ""
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := jsonField(t, k)
			if !ok {
				if path == "" {
					return fmt.Sprintf("%q at the top level", k)
				}
				return fmt.Sprintf("%q in %s", k, path)
			}
			at := k
			if path != "" {
				at = path + "." + k
			}
			if u := unknownKey(x[k], f.Type, at); u != "" {
				return u
			}
		}
	case []any:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return ""
		}
		for i, e := range x {
			if u := unknownKey(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); u != "" {
				return u
			}
		}
	}
	return ""
}

// jsonField is the field of struct type t that encoding/json decodes the
// key k into.
func jsonField(t reflect.Type, k string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.EqualFold(name, k) {
			return f, true
		}
	}
	return reflect.StructField{}, false
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
	// One long line changed into another (a description of thousands of
	// characters that differs in one): the part they share is left out.
	for k := 0; k+1 < len(ops); k++ {
		lone := ops[k].kind == '-' && ops[k+1].kind == '+' &&
			(k == 0 || ops[k-1].kind != '-') && (k+2 == len(ops) || ops[k+2].kind != '+')
		if lone {
			ops[k].line, ops[k+1].line = elideShared(ops[k].line, ops[k+1].line)
		}
	}
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

// elideShared returns lines a and b with the characters they share at
// their start and at their end left out but for elideKeep of each next to
// the difference, a "…(N same characters)…" in their place, when both are
// longer than elideOver characters; else a and b.
func elideShared(a, b string) (string, string) {
	ra, rb := []rune(a), []rune(b)
	if len(ra) <= elideOver || len(rb) <= elideOver {
		return a, b
	}
	head := 0
	for head < len(ra) && head < len(rb) && ra[head] == rb[head] {
		head++
	}
	tail := 0
	for tail < len(ra)-head && tail < len(rb)-head && ra[len(ra)-1-tail] == rb[len(rb)-1-tail] {
		tail++
	}
	cut := func(r []rune) string {
		var sb strings.Builder
		from := 0
		if head > 2*elideKeep {
			sb.WriteString(string(r[:elideKeep]))
			fmt.Fprintf(&sb, "…(%d same characters)…", head-2*elideKeep)
			from = head - elideKeep
		}
		to := len(r)
		if tail > 2*elideKeep {
			to = len(r) - tail + elideKeep
		}
		sb.WriteString(string(r[from:to]))
		if tail > 2*elideKeep {
			fmt.Fprintf(&sb, "…(%d same characters)…", tail-2*elideKeep)
			sb.WriteString(string(r[len(r)-elideKeep:]))
		}
		return sb.String()
	}
	return cut(ra), cut(rb)
}

const (
	// elideOver is the length over which a changed line's shared part is
	// left out, and elideKeep the characters kept either side of it.
	elideOver = 160
	elideKeep = 20
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
