package mapping

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	exprparser "github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
	"github.com/shopspring/decimal"
	yaml "go.yaml.in/yaml/v3"

	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/internal/yamlindent"
	"github.com/dealsync/dealsync/model"
)

// Problem is one thing wrong with a mapping file, at its position.
type Problem struct {
	File   string `json:"file"`
	Line   int    `json:"line,omitempty"`   // 1-based; 0 when unknown
	Column int    `json:"column,omitempty"` // 1-based; 0 when unknown
	// Key is the YAML key path of the offending entry, e.g.
	// "invoice.lines.item_code".
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
	// Unread says that the file (or the directory of mapping files)
	// could not be read at all: a problem of the path given, not of a
	// mapping's text.
	Unread bool `json:"-"`
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// LoadError lists every problem found while loading mapping files.
type LoadError struct {
	Problems []Problem `json:"problems"`
}

func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	if len(lines) == 1 {
		return "mapping: " + lines[0]
	}
	return fmt.Sprintf("mapping: %d problems:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// kind is the type an expression must produce.
type kind int

const (
	kString kind = iota
	kDecimal
	kDate
	kBool
)

var (
	stringType  = reflect.TypeFor[string]()
	decimalType = reflect.TypeFor[decimal.Decimal]()
	dateType    = reflect.TypeFor[model.Date]()
	boolType    = reflect.TypeFor[bool]()
	intType     = reflect.TypeFor[int]()
)

func (k kind) String() string {
	switch k {
	case kDecimal:
		return "a decimal"
	case kDate:
		return "a date"
	case kBool:
		return "a bool"
	}
	return "a string"
}

func (k kind) accepts(t reflect.Type) bool {
	if t == nil || t.Kind() == reflect.Interface {
		return true // checked when evaluated
	}
	switch k {
	case kDecimal:
		return t == decimalType || t == intType
	case kDate:
		return t == dateType
	case kBool:
		return t == boolType
	}
	return t == stringType
}

func (k kind) hint(t reflect.Type) string {
	switch {
	case k == kDecimal && t.Kind() == reflect.Float64:
		return `: money never goes through floats; compute with decimals, e.g. dec("19.5") for 19.5`
	case k == kDecimal && t == stringType:
		return `: convert with dec(...)`
	case k == kDate && t == stringType:
		return `: convert with date("YYYY-MM-DD")`
	case k == kString && (t == decimalType || t == intType || t == dateType):
		return ": convert with string(...)"
	}
	return ""
}

// convert turns an evaluated value into k's Go type.
func (k kind) convert(v any) (any, bool) {
	switch k {
	case kString:
		if v == nil {
			return "", true
		}
		s, ok := v.(string)
		return s, ok
	case kDecimal:
		switch x := v.(type) {
		case decimal.Decimal:
			return x, true
		case int:
			return decimal.NewFromInt(int64(x)), true
		}
	case kDate:
		if v == nil {
			return model.Date{}, true
		}
		d, ok := v.(model.Date)
		return d, ok
	case kBool:
		b, ok := v.(bool)
		return b, ok
	}
	return nil, false
}

// envKind selects the environment an expression is compiled against.
type envKind int

const (
	envHeader envKind = iota
	envLine
	envTrigger
)

// fieldSpec is one mappable invoice field.
type fieldSpec struct {
	key     string // YAML key under invoice (or amount_line/lines)
	kind    kind
	builtin string // expression used when the file gives none
}

var headerSpecs = []fieldSpec{
	{"reference", kString, `deal.id`},
	{"customer.external_id", kString, `deal.company.id`},
	{"customer.name", kString, `deal.company.name`},
	{"customer.email", kString, `deal.company.email`},
	{"customer.tax_id", kString, `deal.company.tax_id`},
	{"customer.address.line1", kString, `deal.company.address.line1`},
	{"customer.address.line2", kString, `deal.company.address.line2`},
	{"customer.address.city", kString, `deal.company.address.city`},
	{"customer.address.region", kString, `deal.company.address.region`},
	{"customer.address.postal_code", kString, `deal.company.address.postal_code`},
	{"customer.address.country", kString, `deal.company.address.country`},
	{"currency", kString, `coalesce(deal.currency, defaults.currency)`},
	{"issue_date", kDate, `coalesce(deal.close_date, event.occurred_on)`},
	{"due_date", kDate, `add_days(invoice.issue_date, defaults.payment_terms_days)`},
	{"memo", kString, `deal.name`},
}

// headerOrder names the header fields and groups in the order they are
// evaluated ("reference, customer, currency, …"), for messages.
var headerOrder = func() string {
	var names []string
	for _, s := range headerSpecs {
		top, _, _ := strings.Cut(s.key, ".")
		if !slices.Contains(names, top) {
			names = append(names, top)
		}
	}
	return strings.Join(names, ", ")
}()

var lineSpecs = []fieldSpec{
	{"item_code", kString, `coalesce(item.sku, defaults.item_code)`},
	{"description", kString, `coalesce(item.description, item.sku)`},
	{"quantity", kDecimal, `item.quantity`},
	{"unit_price", kDecimal, `item.unit_price`},
	{"discount", kDecimal, `item.discount + percent(item.quantity * item.unit_price, item.discount_percent)`},
	{"account_code", kString, `defaults.account_code`},
	{"tax_code", kString, `defaults.tax_code`},
	{"tax_rate", kDecimal, `defaults.tax_rate`},
}

var amountLineSpecs = []fieldSpec{
	{"item_code", kString, `defaults.item_code`},
	{"description", kString, `coalesce(deal.name, "Deal " + deal.id)`},
	{"quantity", kDecimal, `1`},
	{"unit_price", kDecimal, `deal.amount`},
	{"discount", kDecimal, `0`},
	{"account_code", kString, `defaults.account_code`},
	{"tax_code", kString, `defaults.tax_code`},
	{"tax_rate", kDecimal, `defaults.tax_rate`},
}

// DefaultTrigger is the trigger of a mapping file that declares none: the
// deal's stage became one of the connection's won stages.
const DefaultTrigger = `is_won(deal.stage) && !is_won(deal.previous_stage)`

// compiled is one compiled expression.
type compiled struct {
	key  string // YAML key path, e.g. "invoice.lines.quantity"
	spec fieldSpec
	src  string
	prog *vm.Program // nil: the field is not mapped (zero value)
	// node holds src in the file, for the file position of an error at
	// run time; nil for a built-in expression.
	node *yaml.Node
	// divisors are the divisors of src's divisions (and remainders), by
	// the position of their operator: a run-time division by zero names
	// the one that was 0.
	divisors map[int]divisor
}

// lookupTable is a declared lookup table.
type lookupTable struct {
	entries    map[string]string
	def        string
	hasDefault bool
	ignoreCase bool
}

func (t *lookupTable) get(name, key string) (string, error) {
	k := key
	if t.ignoreCase {
		k = strings.ToLower(k)
	}
	if v, ok := t.entries[k]; ok {
		return v, nil
	}
	if t.hasDefault {
		return t.def, nil
	}
	return "", &lookupMiss{Table: name, Key: key}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// parser holds the state of loading one file.
type parser struct {
	file     string
	lines    []string
	problems []Problem
	m        *File
	// strict: the checks for a file taken into use now (see parse).
	strict bool
	// defaultCurrencyRefused: defaults.currency is written but is no
	// currency (reported there, not again where a blank stands for it).
	defaultCurrencyRefused bool
	// evaluated is how many header fields (headerSpecs, in order) are
	// evaluated before the expression being compiled: all of them for
	// the lines and amount_line.
	evaluated int
	// via are the key paths reached through an alias or a merge key, and
	// where (see usedAt); merged and merging are pairs' (anchors.go).
	via     map[string]use
	merged  map[*yaml.Node][]pair
	merging map[*yaml.Node]bool
	// nodes are the file's YAML nodes (aliases not followed), expanded
	// the keys read and merged so far, and tooLarge the problem of a file
	// past its expansion budget (spend, anchors.go).
	nodes    int
	expanded int
	tooLarge *Problem
	// tables are the lookup tables read, by their mapping, and
	// tableEntries their entries, by their mapping and ignore_case: an
	// alias of either is read once (parseLookups).
	tables       map[*yaml.Node]*lookupTable
	tableEntries map[tableEntriesKey]map[string]string
	// duplicates are the keys reported as given twice in their mapping
	// (duplicate).
	duplicates map[*yaml.Node]bool
}

// tableEntriesKey is a lookup table's entries mapping and its
// ignore_case, which the entries read depend on.
type tableEntriesKey struct {
	node       *yaml.Node
	ignoreCase bool
}

func (p *parser) at(n *yaml.Node, key, format string, args ...any) {
	pr := Problem{File: p.file, Key: key, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		pr.Line, pr.Column = n.Line, n.Column
	}
	p.problems = append(p.problems, pr)
}

// Parse compiles one mapping file. file names it in problems; data is its
// content. Every problem is reported, as a *LoadError.
func Parse(file string, data []byte) (*File, error) {
	return parse(file, data, true)
}

// parse is Parse; strict adds the checks a file must pass to be taken
// into use now, which a run's snapshot, accepted when the run started,
// is spared (FromSnapshot).
func parse(file string, data []byte, strict bool) (*File, error) {
	return (&parser{file: file, strict: strict}).load(data)
}

// load is parse, with the parser p of file and strict.
func (p *parser) load(data []byte) (*File, error) {
	file, strict := p.file, p.strict
	if strict && len(data) > MaxFileBytes {
		return nil, &LoadError{Problems: []Problem{{File: file, Message: fmt.Sprintf(
			"the file has %d bytes, more than %d: every run carries its mapping file in its input (base64, a third more), "+
				"and Temporal refuses an input over 2 MB; move large lookup tables out (or split the mapping)", len(data), MaxFileBytes)}}}
	}
	p.lines = strings.Split(string(data), "\n")
	p.m = &File{file: file, hash: HashOf(data), source: append([]byte(nil), data...), lookups: map[string]*lookupTable{}}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		p.problems = append(p.problems, yamlProblem(file, p.lines, err))
		return nil, &LoadError{Problems: p.problems}
	}
	// A later document (after a `---`) was read by no one: its fields
	// were silently not the mapping's. Every one is looked at: an empty
	// one (a trailing `---`) is none, a broken one is refused too.
	for strict {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.problems = append(p.problems, yamlProblem(file, p.lines, err))
			return nil, &LoadError{Problems: p.problems}
		}
		if len(next.Content) > 0 && next.Content[0].Kind != 0 &&
			!(next.Content[0].Kind == yaml.ScalarNode && next.Content[0].ShortTag() == "!!null") {
			p.at(&next, "", "a mapping file holds one YAML document: this one, after a `---`, would be ignored; put its keys in the first (or a mapping file of its own)")
			return nil, &LoadError{Problems: p.problems}
		}
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		p.at(&doc, "", "a mapping file must be a YAML mapping with at least a `name`")
		return nil, &LoadError{Problems: p.problems}
	}
	if !p.checkSelfAliases(doc.Content[0]) {
		p.parse(doc.Content[0])
		p.usedAt()
	}
	if p.tooLarge != nil {
		// What the walk did not read is not the file's problem.
		return nil, &LoadError{Problems: []Problem{*p.tooLarge}}
	}
	if len(p.problems) > 0 {
		sort.SliceStable(p.problems, func(i, j int) bool {
			a, b := p.problems[i], p.problems[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Column < b.Column
		})
		return nil, &LoadError{Problems: p.problems}
	}
	return p.m, nil
}

// yamlLineRE is the line YAML starts its messages with ("line 3: ...").
var yamlLineRE = regexp.MustCompile(`^line (\d+): `)

// yamlKeyRE is a line of a block mapping: its indentation, its key (or
// the merge key, <<) and the value written after the key, if any.
var yamlKeyRE = regexp.MustCompile(`^( *)([A-Za-z_][A-Za-z0-9_]*|<<):(?:[ \t]+(.*))?$`)

// anchorOnlyRE is a value that is only an anchor or a tag (`lines:
// &line`), which opens a block on the lines below, as no value does.
var anchorOnlyRE = regexp.MustCompile(`^(?:[&!]\S*[ \t]*)+(?:#.*)?$`)

// anchorRE is an anchor before a value (`tax_code: &tc "OUTPUT2"`).
var anchorRE = regexp.MustCompile(`^&\S+[ \t]+`)

// yamlProblem is the problem of a file that YAML cannot read: YAML's
// message, its line given once (as the position, not again in the
// message). Where YAML stopped on an expression written without quotes
// that it reads as YAML (a ": " in it, a value that starts with a quoted
// string and goes on after it, one that starts with a character YAML
// reserves), the problem names the field, gives the column, and says to
// quote the expression, quoted as it should be written.
func yamlProblem(file string, lines []string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	pr := Problem{File: file, Message: msg}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		pr.Line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
		pr.Message = msg
	} else if m := regexp.MustCompile(`line (\d+)`).FindStringSubmatch(msg); m != nil {
		pr.Line, _ = strconv.Atoi(m[1])
	}
	// A key indented unlike its siblings where YAML stopped: that key, and
	// how to mend it (yamlindent.At). YAML's "did not find expected key"
	// names where the mapping starts: the quoting hints below come first
	// for it.
	expectedKey := strings.HasPrefix(msg, "did not find expected key")
	misindented := func() (Problem, bool) {
		ip, ok := yamlindent.At(lines, msg, pr.Line)
		if !ok {
			return Problem{}, false
		}
		return Problem{File: file, Line: ip.Line, Column: ip.Indent + 1, Message: fmt.Sprintf("%s (YAML: %s)", ip.Message, msg)}, true
	}
	if !expectedKey {
		if p, ok := misindented(); ok {
			return p
		}
	}
	var (
		e   exprLine
		ok  bool
		at  int // the index, in e.text, of the character to point at
		why string
		// template is the rewrite of a text template (templateHint),
		// given instead of the quoted value.
		template string
	)
	switch {
	case strings.HasPrefix(msg, "mapping values are not allowed"):
		e, ok = expressionAt(lines, pr.Line)
		at = colonBlank(e.text)
		why = `YAML reads ": " in a value without quotes as the colon of a key`
	case strings.HasPrefix(msg, "found character that cannot start any token"),
		strings.HasPrefix(msg, "block sequence entries are not allowed"),
		strings.HasPrefix(msg, "did not find expected alphabetic or numeric character"):
		e, ok = expressionAt(lines, pr.Line)
		ok = ok && !e.cont && e.text != ""
		if ok {
			r, _ := utf8.DecodeRuneInString(e.text)
			why = fmt.Sprintf("YAML does not read a value that starts with %q as text", string(r))
		}
	case strings.HasPrefix(msg, "did not find expected key"):
		// YAML gives the line where the mapping starts (or the one
		// before it): the value is the first after it that goes on after
		// its closing quote.
		for l := max(pr.Line, 1); l <= len(lines) && !ok; l++ {
			e, ok = expressionAt(lines, l)
			ok = ok && !e.cont
			if ok {
				at = afterQuoted(e.text)
				ok = at > 0
				why = "a YAML value that starts with a quote ends where the quote closes"
				if !ok {
					// `reference: {deal.id}-{deal.name}`: a map,
					// {"deal.id": null}, and text after it.
					at = afterBraces(e.text)
					ok = at > 0
					why = "YAML reads a value without quotes that starts with { as a map, which ends at its }"
					if ok {
						template = templateHint(stripComment(e.text), e.key, hintOptions(e.key))
					}
				}
			}
			if ok {
				pr.Line = l
			}
		}
	case strings.HasPrefix(msg, "did not find expected ',' or '}'"):
		// `reference: {"DS-" + deal.id}`, `{coalesce(deal.id, "x")}`:
		// braces without quotes, a map whose entries YAML cannot read.
		// YAML gives the line before the value's, or the value's.
		for l := max(pr.Line, 1); l <= min(pr.Line+1, len(lines)) && !ok; l++ {
			e, ok = expressionAt(lines, l)
			ok = ok && !e.cont && strings.HasPrefix(e.text, "{")
			if ok {
				pr.Line = l
				why = "YAML reads a value without quotes that starts with { as a map, and reads this one's text as no map"
				template = templateHint(stripComment(e.text), e.key, hintOptions(e.key))
				if template == "" {
					template = fmt.Sprintf("; quote the whole expression (`%s: '…'`)", e.name)
				}
			}
		}
	}
	if !ok {
		if expectedKey {
			if p, ok := misindented(); ok {
				return p
			}
		}
		return pr
	}
	pr.Key = e.key
	if at >= 0 {
		pr.Column = e.col + at
	}
	if e.cont {
		pr.Message = fmt.Sprintf("%s: %s; quote the whole expression, or write it as a literal block (`%s: |`, the expression on the lines below)", msg, why, e.name)
	} else {
		name := e.name
		if e.anchor != "" {
			name += ": " + e.anchor
		} else {
			name += ":"
		}
		if template != "" {
			pr.Message = msg + ": " + why + template
		} else {
			pr.Message = fmt.Sprintf("%s: %s; quote the whole expression: `%s %s`", msg, why, name, yamlQuoted(stripComment(e.text)))
		}
	}
	return pr
}

// exprLine is an expression's text on one line of a mapping file.
type exprLine struct {
	key  string // the field's key path, e.g. "invoice.memo"
	name string // its last key, e.g. "memo"
	text string // the text of the line from where the value starts
	col  int    // 1-based column, in characters, where text starts
	// cont: the line continues the value of the key on a line above.
	cont bool
	// anchor is the anchor written before the value (`&ref`), if any.
	anchor string
}

// expressionAt is the expression that line l (1-based) of a mapping file
// writes, or continues, as the indentation of the lines above it places
// it; ok is false when the line is no expression of a field (a value of
// defaults or lookups, a line of a block scalar, a form not followed).
func expressionAt(lines []string, l int) (e exprLine, ok bool) {
	if l < 1 || l > len(lines) {
		return e, false
	}
	raw := strings.TrimSuffix(lines[l-1], "\r")
	indent := len(raw) - len(strings.TrimLeft(raw, " "))
	inline := func(m []string) bool {
		return m != nil && m[3] != "" && !strings.HasPrefix(m[3], "#") && !anchorOnlyRE.MatchString(m[3])
	}
	if m := yamlKeyRE.FindStringSubmatch(raw); inline(m) {
		e.name, e.text = m[2], m[3]
		if a := anchorRE.FindString(e.text); a != "" {
			e.anchor, e.text = strings.TrimSpace(a), e.text[len(a):] // the value is after its anchor
		}
		e.col = utf8.RuneCountInString(raw[:len(raw)-len(e.text)]) + 1
	}
	var keys []string
	first := true
	for i := l - 2; i >= 0 && indent > 0; i-- {
		r := strings.TrimSuffix(lines[i], "\r")
		t := strings.TrimLeft(r, " ")
		in := len(r) - len(t)
		if t == "" || t[0] == '#' || in >= indent {
			continue
		}
		m := yamlKeyRE.FindStringSubmatch(r)
		switch {
		case m == nil:
			return e, false
		case inline(m) && first:
			// Line l goes on with this key's value.
			e = exprLine{name: m[2], text: strings.TrimLeft(raw, " "), col: utf8.RuneCountInString(raw[:len(raw)-len(strings.TrimLeft(raw, " "))]) + 1, cont: true}
		case inline(m):
			return e, false
		case m[2] == "<<":
			// A mapping merged in (`<<:` and its keys below): they
			// are the keys of the mapping the merge key is in.
		default:
			keys = append([]string{m[2]}, keys...)
		}
		first, indent = false, in
	}
	if e.name == "" {
		return e, false
	}
	e.key = strings.Join(append(keys, e.name), ".")
	return e, expressionKey(e.key)
}

// expressionKey says whether key is the key path of an expression.
func expressionKey(key string) bool {
	if key == "trigger" {
		return true
	}
	for _, s := range headerSpecs {
		if key == "invoice."+s.key {
			return true
		}
	}
	for _, s := range lineSpecs {
		if key == "invoice.lines."+s.key || key == "invoice.amount_line."+s.key {
			return true
		}
	}
	return false
}

// colonBlank is the index, in characters, of the first ": " (or ":" at
// the end) in s, which ends a value without quotes in YAML; -1 if none.
func colonBlank(s string) int {
	rs := []rune(s)
	for i, r := range rs {
		if r == ':' && (i+1 == len(rs) || rs[i+1] == ' ' || rs[i+1] == '\t') {
			return i
		}
	}
	return -1
}

// afterBraces is the index, in characters, of what follows the braces
// that s starts with ({deal.id}-{deal.name}), other than blanks or a
// comment: 0 when s does not start with a brace closed on its line, or
// nothing follows them.
func afterBraces(s string) int {
	end := closingBrace(s)
	if end < 0 {
		return 0
	}
	rest := string([]rune(s)[end+1:])
	if strings.TrimSpace(stripComment(" "+rest)) == "" {
		return 0
	}
	return end + 1 + utf8.RuneCountInString(rest) - utf8.RuneCountInString(strings.TrimLeft(rest, " \t"))
}

// afterQuoted is the index, in characters, of what follows the quoted
// string that s starts with, other than blanks or a comment: 0 when s
// does not start with a quote or nothing follows it on the line.
func afterQuoted(s string) int {
	if s == "" || s[0] != '"' && s[0] != '\'' {
		return 0
	}
	end := yamlindent.ClosingQuote(s[1:], s[0])
	if end < 0 {
		return 0
	}
	i := end + 1 // the closing quote's byte index in s
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case ' ', '\t':
			continue
		case '#':
			if j > i+1 {
				return 0 // a comment
			}
		}
		return utf8.RuneCountInString(s[:j])
	}
	return 0
}

// stripComment is an expression's text without a YAML comment after it:
// from a " #" outside the expression's string literals.
func stripComment(s string) string {
	var quote rune
	prev := ' '
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote && prev != '\\' {
				quote = 0
			}
		case r == '"' || r == '\'' || r == '`':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t'):
			return strings.TrimRight(s[:i], " \t")
		}
		prev = r
	}
	return strings.TrimRight(s, " \t")
}

// yamlQuoted is s as a quoted YAML value: in single quotes (a quote in
// it doubled), or in double quotes when it has single quotes and no
// character that double quotes escape.
func yamlQuoted(s string) string {
	if strings.Contains(s, "'") && !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// entries returns the key/value pairs of a YAML mapping, reporting unknown
// and duplicate keys (known == nil accepts any key).
func (p *parser) entries(n *yaml.Node, path string, known ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n == nil {
		return out
	}
	n = p.resolve(n, path)
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return out
		}
		msg := "must be a mapping of keys"
		if n.Kind == yaml.SequenceNode {
			msg += ", not a list (a \"- \" before the keys)"
			if path == "invoice.lines" {
				msg += ": its expressions map every line item of the deal, each in turn (item, index), so they are written once, as keys under lines:"
			}
		}
		p.at(n, path, "%s", msg)
		return out
	}
	pairs := p.pairs(n, path)
	if !p.spend(len(pairs), n, path) {
		return out
	}
	seen := map[string]bool{}
	for _, kv := range pairs {
		k, name := kv.key, p.keyText(kv.key)
		key := joinKey(path, name)
		if seen[name] {
			p.duplicate(k, key) // merged keys are never twice (pairs)
			continue
		}
		seen[name] = true
		if kv.merged != nil {
			if p.via == nil {
				p.via = map[string]use{}
			}
			p.via[key] = *kv.merged
		}
		if known != nil && !contains(known, name) {
			if best, ok := wording.TypoOf(name, known); ok {
				p.at(k, key, "unknown key (did you mean %s? known keys: %s)", best, strings.Join(known, ", "))
			} else {
				p.at(k, key, "unknown key (known keys: %s)", strings.Join(known, ", "))
			}
			continue
		}
		out[name] = p.resolve(kv.value, key)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func joinKey(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

func (p *parser) scalar(n *yaml.Node, key string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.at(n, key, "must be a single value")
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	return n.Value, true
}

// expression is the text of the expression YAML node n gives key. A
// value that starts with "!" is a tag for YAML, not a negation: it would
// leave `trigger: !is_won(deal.stage)` empty, which is the default
// trigger, silently; a tag that leaves no value is refused, with the
// expression quoted (not in a run's snapshot, accepted as it was when the
// run started). A tag followed by a value (`memo: !x deal.name`) loaded
// before, the tag dropped, and still does.
func (p *parser) expression(n *yaml.Node, key string, env envKind) (string, bool) {
	if n.Kind == yaml.MappingNode && n.Style&yaml.FlowStyle != 0 {
		// `reference: {deal.id}`, braces without quotes.
		p.flowMapHint(n, key, env)
		return "", false
	}
	s, ok := p.scalar(n, key)
	if ok && p.strict && strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") && strings.TrimSpace(n.Value) == "" {
		name := key[strings.LastIndex(key, ".")+1:]
		p.at(n, key, "YAML reads %s as a tag, not as part of the expression; quote the whole expression: `%s: %s`",
			n.Tag, name, yamlQuoted(strings.TrimSpace(n.Tag+" "+n.Value)))
		return "", false
	}
	return s, ok
}

func (p *parser) parse(root *yaml.Node) {
	top := p.entries(root, "", "name", "description", "time_zone", "trigger", "tolerance", "rounding", "defaults", "lookups", "invoice")
	m := p.m
	if n, ok := top["name"]; ok {
		name, _ := p.scalar(n, "name")
		switch {
		case name == DefaultName:
			p.at(n, "name", "%q is the built-in mapping's name; choose another", name)
		case !nameRE.MatchString(name):
			p.at(n, "name", "must match %s", nameRE)
		}
		m.name = name
	} else {
		p.at(root, "name", "is required")
	}
	m.tolerance = decimal.Zero
	if n, ok := top["tolerance"]; ok {
		if s, ok := p.scalar(n, "tolerance"); ok && s != "" {
			d, err := decimal.NewFromString(s)
			switch {
			case err != nil:
				p.at(n, "tolerance", "must be a decimal number such as 0.01")
			case d.IsNegative():
				p.at(n, "tolerance", "must not be negative")
			default:
				m.tolerance = d
			}
		}
	}
	m.rounding = roundHalfUp
	if n, ok := top["rounding"]; ok {
		if s, ok := p.scalar(n, "rounding"); ok && s != "" {
			if err := roundingMode(s); err != nil {
				p.at(n, "rounding", "%v; it is how round_to and round_currency round a half", err)
			} else {
				m.rounding = s
			}
		}
	}
	if n, ok := top["time_zone"]; ok {
		if s, ok := p.scalar(n, "time_zone"); ok && s != "" {
			loc, err := loadZone(s)
			if err != nil {
				p.at(n, "time_zone", "%v", err)
			} else {
				p.warnZone(n, s, loc)
			}
			m.zone = loc
		}
	}
	p.parseDefaults(top["defaults"])
	p.parseLookups(top["lookups"])

	// Trigger.
	src := DefaultTrigger
	var tn *yaml.Node
	if n, ok := top["trigger"]; ok {
		if s, ok := p.expression(n, "trigger", envTrigger); ok && strings.TrimSpace(s) != "" {
			src, tn = s, n
			m.customTrigger = true
		}
	}
	m.trigger = p.compile(tn, "trigger", src, fieldSpec{key: "trigger", kind: kBool}, envTrigger)

	inv := p.entries(top["invoice"], "invoice", "reference", "customer", "currency", "issue_date", "due_date", "memo", "lines", "amount_line")
	cust := p.entries(inv["customer"], "invoice.customer", "external_id", "name", "email", "tax_id", "address")
	addr := p.entries(cust["address"], "invoice.customer.address", "line1", "line2", "city", "region", "postal_code", "country")
	given := map[string]*yaml.Node{}
	for k, v := range inv {
		if k != "customer" && k != "lines" && k != "amount_line" {
			given[k] = v
		}
	}
	for k, v := range cust {
		if k != "address" {
			given["customer."+k] = v
		}
	}
	for k, v := range addr {
		given["customer.address."+k] = v
	}
	for i, s := range headerSpecs {
		p.evaluated = i
		m.header = append(m.header, p.field(given[s.key], "invoice."+s.key, s, envHeader))
	}
	p.evaluated = len(headerSpecs)
	lineKeys := make([]string, len(lineSpecs))
	for i, s := range lineSpecs {
		lineKeys[i] = s.key
	}
	lines := p.entries(inv["lines"], "invoice.lines", append(lineKeys, "skip")...)
	for _, s := range lineSpecs {
		m.lines = append(m.lines, p.field(lines[s.key], "invoice.lines."+s.key, s, envLine))
	}
	if n := lines["skip"]; n != nil {
		// A condition on the item: true leaves its line out (a free item
		// of quantity 0, which an invoice line cannot be).
		m.lineSkip = p.field(n, "invoice.lines.skip", fieldSpec{key: "skip", kind: kBool, builtin: "false"}, envLine)
	}
	al := p.entries(inv["amount_line"], "invoice.amount_line", lineKeys...)
	for _, s := range amountLineSpecs {
		m.amountLine = append(m.amountLine, p.field(al[s.key], "invoice.amount_line."+s.key, s, envHeader))
	}
}

func (p *parser) parseDefaults(n *yaml.Node) {
	d := &p.m.defaults
	d.PaymentTermsDays = 30
	d.TaxRate = decimal.Zero
	for k, v := range p.entries(n, "defaults", "currency", "payment_terms_days", "account_code", "tax_code", "tax_rate", "item_code") {
		key := "defaults." + k
		s, ok := p.scalar(v, key)
		if !ok {
			continue
		}
		switch k {
		case "currency":
			if s == "" {
				continue
			}
			c, err := model.ParseCurrency(s)
			if err != nil && !p.strict {
				// A run's snapshot, whose code the table of current
				// codes has dropped since: the run's invoice is judged
				// when it is validated, and a deal's own currency wins.
				c, err = model.Currency(strings.ToUpper(strings.TrimSpace(s))), nil
			}
			if err != nil {
				p.at(v, key, "%s", err.Error())
				p.defaultCurrencyRefused = true
				continue
			}
			d.Currency = string(c)
		case "payment_terms_days":
			days, err := strconv.Atoi(s)
			if err != nil || days < 0 {
				p.at(v, key, "must be a whole number of days, 0 or more")
				continue
			}
			d.PaymentTermsDays = days
		case "tax_rate":
			r, err := decimal.NewFromString(s)
			if err != nil || r.IsNegative() {
				p.at(v, key, "must be a percentage such as 19 or 7.5, not negative")
				continue
			}
			d.TaxRate = r
			p.warnTaxRate(v, key, s, "%", r)
		case "account_code":
			d.AccountCode = s
		case "tax_code":
			d.TaxCode = s
		case "item_code":
			d.ItemCode = s
		}
	}
}

// parseLookups reads the lookup tables. A table, or a table's entries,
// that several names share through an alias (`tax_codes_eu: *rates`,
// `entries: *codes`) is read once, at the first name, and the names share
// it: read again at each, a large table aliased by many names cost the
// product of the two.
func (p *parser) parseLookups(n *yaml.Node) {
	if p.tables == nil {
		p.tables, p.tableEntries = map[*yaml.Node]*lookupTable{}, map[tableEntriesKey]map[string]string{}
	}
	lookups := p.entries(n, "lookups")
	// A table, and its entries, are read at a name where they are
	// written, not one that uses them through an alias or a merge (their
	// problems are reported there).
	written := func(name string) bool {
		if _, ok := p.via["lookups."+name]; ok {
			return false
		}
		t := lookups[name]
		for i := 0; i+1 < len(t.Content); i += 2 {
			if k := t.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "entries" {
				return t.Content[i+1].Kind != yaml.AliasNode
			}
		}
		return false // merged, or none
	}
	names := slices.Sorted(maps.Keys(lookups))
	slices.SortStableFunc(names, func(a, b string) int {
		wa, wb := written(a), written(b)
		switch {
		case wa == wb:
			return 0
		case wa:
			return -1
		}
		return 1
	})
	for _, name := range names {
		v := lookups[name]
		if t, ok := p.tables[v]; ok {
			p.m.lookups[name] = t
			continue
		}
		key := "lookups." + name
		e := p.entries(v, key, "entries", "default", "missing", "ignore_case")
		t := &lookupTable{}
		if ic, ok := e["ignore_case"]; ok {
			s, _ := p.scalar(ic, key+".ignore_case")
			b, err := strconv.ParseBool(s)
			if err != nil {
				p.at(ic, key+".ignore_case", "must be true or false")
			}
			t.ignoreCase = b
		}
		t.entries = p.lookupEntries(e["entries"], key, t.ignoreCase)
		def, hasDef := e["default"]
		miss, hasMiss := e["missing"]
		switch {
		case hasDef && hasMiss:
			p.at(miss, key+".missing", "declare either a default or `missing: error`, not both")
		case hasDef:
			t.def, _ = p.scalar(def, key+".default")
			t.hasDefault = true
		case hasMiss:
			if s, _ := p.scalar(miss, key+".missing"); s != "error" {
				p.at(miss, key+".missing", "must be `error` (or declare a `default` instead)")
			}
		default:
			p.at(v, key, "declare what a missing key gives: `default: VALUE` or `missing: error`")
		}
		p.tables[v] = t
		p.m.lookups[name] = t
	}
}

// lookupEntries are the entries n of the lookup table at key, read once
// for each mapping and ignore_case (see parseLookups).
func (p *parser) lookupEntries(n *yaml.Node, key string, ignoreCase bool) map[string]string {
	if n != nil {
		if out, ok := p.tableEntries[tableEntriesKey{n, ignoreCase}]; ok {
			return out
		}
	}
	out := map[string]string{}
	entries := p.entries(n, key+".entries")
	spelt := map[string]string{} // with ignore_case: each key lower-cased → as written
	for _, k := range slices.Sorted(maps.Keys(entries)) {
		val := entries[k]
		s, ok := p.scalar(val, key+".entries."+k)
		if !ok {
			continue
		}
		if ignoreCase {
			// Two keys that differ only in case would make the
			// table's answer depend on which came last. Both are
			// named, and the later in the file is the one marked.
			if first, dup := spelt[strings.ToLower(k)]; dup {
				later, other := k, first
				if fv := entries[first]; fv != nil && (fv.Line > val.Line || fv.Line == val.Line && fv.Column > val.Column) {
					later, other = first, k
				}
				p.at(entries[later], key+".entries."+later, "duplicate key ignoring case: %q and %q are one key when ignore_case is true; keep one of them", other, later)
				continue
			}
			spelt[strings.ToLower(k)] = k
			k = strings.ToLower(k)
		}
		out[k] = s
	}
	if n != nil {
		p.tableEntries[tableEntriesKey{n, ignoreCase}] = out
	}
	return out
}

func (p *parser) field(n *yaml.Node, key string, s fieldSpec, env envKind) compiled {
	src := s.builtin
	if n != nil {
		v, ok := p.expression(n, key, env)
		if !ok {
			return compiled{key: key, spec: s}
		}
		if strings.TrimSpace(v) == "" {
			return compiled{key: key, spec: s} // explicitly unmapped
		}
		src = v
	} else {
		n = nil
	}
	return p.compile(n, key, src, s, env)
}

// MaxFileBytes bounds a mapping file: its snapshot travels in every run's
// input, as base64, beside the deal, under Temporal's 2 MB limit of a
// payload.
const MaxFileBytes = 1 << 20

// recheckCallArguments type-checks src once more, arguments of calls
// included. expr (v1.17) checks an expression once before it turns the
// overloaded operators (the decimal ones) into calls and once after; the
// second pass takes the calls typed by the first as they are, arguments
// unseen, and the first pass's errors are dropped: a misspelt field in
// `is_won(deal.stagez)` or `lookup("items", item.skuz)` would pass. Here
// the calls' types are cleared before the second pass, so it looks into
// every argument.
func recheckCallArguments(src string, opts []expr.Option) error {
	tree, config, err := parseChecked(src, opts)
	if err != nil {
		return err
	}
	walkAll(tree.Node, func(node ast.Node) {
		if call, ok := node.(*ast.CallNode); ok {
			call.SetNature(nature.Nature{})
		}
	})
	_, err = checker.Check(tree, config)
	return err
}

// parseChecked parses and type-checks src with opts as expr.Compile
// would, without compiling: the tree and the config, for a second look.
func parseChecked(src string, opts []expr.Option) (*exprparser.Tree, *conf.Config, error) {
	config := conf.CreateNew()
	for _, op := range opts {
		op(config)
	}
	for name := range config.Disabled {
		delete(config.Builtins, name)
	}
	config.Check()
	tree, err := checker.ParseCheck(src, config)
	return tree, config, err
}

// plainDecimalRE is a float literal written as dec reads it: 19.5, not
// 1e3 or 1_000.5.
var plainDecimalRE = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

// floatHint is what to write instead of what makes src a float, which a
// decimal field refuses, and where it starts: the float literal the file
// writes, as dec of its digits (dec("1.5") for 1.5, dec("1000") for 1e3),
// or a division of whole numbers, as a decimal divided (dec(3) / 2 for
// 3 / 2). ok is false when src has neither: the caller gives the general
// hint. The expression is read as written, before expr folds its
// constants (3 / 2 is the float 1.5 in the compiled program).
func floatHint(src string, opts []expr.Option) (hint string, from int, ok bool) {
	tree, _, err := parseChecked(src, opts)
	if err != nil {
		return "", 0, false
	}
	runes := []rune(src)
	walkAll(tree.Node, func(node ast.Node) {
		if ok {
			return
		}
		switch x := node.(type) {
		case *ast.FloatNode:
			hint = floatLiteralAdvice(runes, x)
			from, ok = x.Location().From, true
		case *ast.BinaryNode, *ast.CallNode:
			// A division of whole numbers: expr's operator, or _num_div
			// (numberDivision) where the divisor is not a literal.
			var l, r ast.Node
			if b, isOp := x.(*ast.BinaryNode); isOp && b.Operator == "/" {
				l, r = b.Left, b.Right
			} else if c, isCall := x.(*ast.CallNode); isCall && isCallOf(c, numDiv) && len(c.Arguments) == 2 {
				l, r = c.Arguments[0], c.Arguments[1]
			}
			if wholePower(x) {
				hint, from, ok = floatAdvice(runes, x), floatFrom(x), true
				return
			}
			if l == nil || l.Type() != intType || r.Type() != intType {
				return
			}
			right := r.String()
			switch r.(type) {
			case *ast.BinaryNode, *ast.ConditionalNode, *ast.UnaryNode:
				right = "(" + right + ")"
			}
			hint = fmt.Sprintf(": a division of whole numbers gives a float, and money never goes through floats: write dec(%s) / %s instead of %s / %s",
				l.String(), right, l.String(), right)
			from, ok = startOf(x)
		}
	})
	return hint, from, ok
}

// compilerCrash turns the message of a panic in expr's compiler, which
// it recovers as an error with the panic's value and a goroutine's stack
// (expr 1.17.8 panics on an index into filter's result followed by a
// field, `filter(xs, p)[0].sku`), into one a mapping's author can act on:
// the first line, what to write instead, no stack. Other messages are
// kept.
func compilerCrash(msg string) string {
	i := strings.Index(msg, "\ngoroutine ")
	if i < 0 {
		return msg
	}
	return "the expression library failed on this expression (" + strings.TrimSpace(msg[:i]) + "); " +
		"write it another way, e.g. first(filter(xs, p)).field for filter(xs, p)[0].field"
}

// randomOrder is why keys, values and toPairs are left out of mappings.
const randomOrder = "it lists a map in Go's random order, so the invoice would differ from one run to the next: name the keys"

// builtinHints say, for expr's built-ins a mapping cannot call, why and
// what to write instead ("unknown name X" is expr's message for them).
var builtinHints = map[string]string{
	"now":      "a mapping gives the same invoice whenever it runs: read the event's time (event.occurred_at, event.occurred_on) or the deal's dates",
	"duration": "durations are not a mapping's: add_days(d, n) moves a date",
	"timezone": "a date in a zone is date_in(moment, \"Europe/Berlin\")",
	"float":    "money is exact decimals in a mapping: dec(x)",
	"keys":     randomOrder,
	"values":   randomOrder,
	"toPairs":  randomOrder,
}

// builtinHint is the hint for expr's message msg about a built-in: one a
// mapping cannot call (builtinHints), or one of floats given a decimal
// (round, ceil, floor, abs), or for a decimal beside a value whose type
// shows only as the run reads it, where unknownOperandHint has none that
// fits better. "" for other messages.
func builtinHint(msg string) string {
	if name, ok := strings.CutPrefix(msg, "unknown name "); ok {
		if h, ok := builtinHints[name]; ok {
			return fmt.Sprintf("; %s() is expr's, left out of mappings: %s", name, h)
		}
		return ""
	}
	if h := powerHint(msg); h != "" {
		return h
	}
	if strings.HasPrefix(msg, "invalid operation: ") && strings.Contains(msg, "mismatched types") && strings.Contains(msg, "decimal") &&
		(strings.Contains(msg, "unknown") || strings.Contains(msg, "interface {}")) {
		// A decimal beside a value whose type shows only as the run
		// reads it, where unknownOperandHint does not say which.
		return unknownOperandPrefix + "the value beside the decimal has a type that shows only as the run reads it, so a decimal is not computed with it as written: " +
			"convert it, dec(x) for a decimal or a whole number, dec(string(x)) for a number read with fromJSON (a float), or give both sides of a conditional one type"
	}
	if strings.HasPrefix(msg, "invalid argument for int (type decimal") {
		return "; int() takes whole numbers, floats and a number's text, not a decimal: for a whole number of a decimal (add_days' days), write int(string(x)), " +
			"rounded first where it may have a fraction, int(string(round_to(x, 0))); where a decimal is taken, keep x as it is"
	}
	for fn, instead := range floatBuiltinInstead {
		if strings.HasPrefix(msg, "invalid argument for "+fn+" (type decimal") {
			return fmt.Sprintf("; expr's %s() takes floats, and money is exact decimals in a mapping: %s", fn, instead)
		}
	}
	return ""
}

// mismatchedFloatHint is the hint for expr's "mismatched types decimal
// and float64" (or float64 and decimal) of the operator at offset from in
// src: a float beside a decimal, as in item.unit_price * 1.19, which the
// type check refuses before the float-literal checks can run. It names
// the first float literal in the operator's operands, dec of its digits,
// and where it starts (the message pointed at the operator); without a
// literal (a division of whole numbers) it says what makes a float.
// found is false for other messages.
func mismatchedFloatHint(src, msg string, from int) (hint string, at int, found bool) {
	msg = typeNames.Replace(msg)
	if !strings.HasPrefix(msg, "invalid operation: ") ||
		!(strings.Contains(msg, "(mismatched types decimal and float64)") || strings.Contains(msg, "(mismatched types float64 and decimal)")) {
		return "", 0, false
	}
	general := "; the value beside the decimal is a float (a number written with a point, a division of whole numbers, a power of whole numbers), and money never goes through floats: " +
		"write a number with a point as dec(\"1.19\"), a division as dec(a) / b, a power as dec(2) ** 3"
	tree, err := exprparser.Parse(src)
	if err != nil {
		return general, from, true
	}
	var op *ast.BinaryNode
	walkAll(tree.Node, func(node ast.Node) {
		if b, ok := node.(*ast.BinaryNode); ok && b.Location().From == from && op == nil {
			op = b
		}
	})
	if op == nil {
		return general, from, true
	}
	var lit *ast.FloatNode
	for _, side := range []ast.Node{op.Left, op.Right} {
		walkAll(side, func(node ast.Node) {
			if f, ok := node.(*ast.FloatNode); ok && lit == nil {
				lit = f
			}
		})
	}
	if lit == nil {
		return general, from, true
	}
	return floatLiteralAdvice([]rune(src), lit), lit.Location().From, true
}

// powerHint is the hint for expr's message msg about ** or ^ with a
// decimal whose exponent is not a whole number (a float, a decimal), or
// whose base is a whole number or a float and exponent a decimal: a
// decimal's power is computed exactly for whole-number exponents only
// (decimalPower); a root or a fractional power has no exact decimal, and
// floats are not money's. "" for other messages (an operand whose type
// shows only as the run reads it: unknownOperandHint's).
func powerHint(msg string) string {
	if !strings.HasPrefix(msg, "invalid operation: ** (mismatched types") && !strings.HasPrefix(msg, "invalid operation: ^ (mismatched types") {
		return ""
	}
	if !strings.Contains(msg, "decimal") || strings.Contains(msg, "unknown") || strings.Contains(msg, "interface {}") {
		return ""
	}
	return "; a decimal's power is computed exactly for a whole-number exponent only (deal.amount ** 2, (1 + dec(\"0.05\")) ** len(deal.line_items)), never with floats: " +
		"write the exponent as a whole number (an exponent computed with floats, 3 ** 1 or 10 / 5, is a float); a fractional exponent (a root) has no exact decimal: " +
		"compute the factor outside the mapping and write it rounded, dec(\"1.0247\"), or round the result (round_to, round_currency)"
}

// valueTypes are the mapping's values by the names expr's messages give
// their types, and its environments by envKind.
var (
	valueTypes = map[string]reflect.Type{}
	envTypes   = map[envKind]reflect.Type{
		envHeader: reflect.TypeFor[Env](), envLine: reflect.TypeFor[LineEnv](), envTrigger: reflect.TypeFor[TriggerEnv](),
	}
)

func init() {
	for _, t := range []reflect.Type{
		reflect.TypeFor[DealEnv](), reflect.TypeFor[CompanyEnv](), reflect.TypeFor[AddressEnv](),
		reflect.TypeFor[LineItemEnv](), reflect.TypeFor[EventEnv](), reflect.TypeFor[DefaultsEnv](),
		reflect.TypeFor[InvoiceEnv](), reflect.TypeFor[CustomerEnv](),
	} {
		valueTypes[t.String()] = t
	}
}

// noFieldsHints say, for the values that have no fields, what to write
// for a field read of one (deal.close_time.date, deal.close_date.year).
var noFieldsHints = map[string]string{
	"moment": "a moment (deal.close_time, event.occurred_at) has no fields: its date in a zone is date_in(deal.close_time, \"Europe/Paris\") (deal.close_date and event.occurred_on are dated already), " +
		"is_set(x) says whether it is set, string(x) is its RFC 3339 text in UTC",
	"date":    "a date has no fields: string(d) is its text, YYYY-MM-DD (its year: string(d)[0:4]); add_days and end_of_month move it, is_set(d) says whether it is set",
	"decimal": "a decimal has no fields: string(x) is its text; round_to(x, places) and round_currency(x, currency) round it",
}

// noFieldRE is expr's message for a field a value lacks.
var noFieldRE = regexp.MustCompile(`^type (\S+) has no field (\S+)`)

// nameHint is the hint for expr's message msg about a name the
// expression src (compiled in env with opts) or a value lacks: the name
// it is a typo of ("did you mean amount?"), a function's where it is
// called and a value's or a let variable's where it is not; else the
// names there are. For item or index outside invoice.lines, where they
// are. "" for other messages.
func nameHint(msg, src string, env envKind, opts []expr.Option) string {
	if m := noFieldRE.FindStringSubmatch(msg); m != nil {
		if h, ok := noFieldsHints[typeNames.Replace(m[1])]; ok {
			return "; " + h
		}
		t, ok := valueTypes[m[1]]
		if !ok {
			return ""
		}
		names := exprNames(t)
		if best, ok := wording.TypoOf(m[2], names); ok {
			return fmt.Sprintf(" (did you mean %s?)", best)
		}
		return " (its fields are " + strings.Join(names, ", ") + ")"
	}
	n, ok := strings.CutPrefix(msg, "unknown name ")
	if !ok {
		return ""
	}
	if _, builtin := builtinHints[n]; builtin {
		return ""
	}
	if (n == "item" || n == "index") && env != envLine {
		return fmt.Sprintf("; %s is the line item being mapped, known only under invoice.lines", n)
	}
	if (n == "is_won" || n == "won_stages") && env != envTrigger {
		return fmt.Sprintf("; %s is the trigger's, known only there: the invoice is mapped once the trigger took the deal", n)
	}
	values := exprNames(envTypes[env])
	candidates := values
	if regexp.MustCompile(`(^|[^\w.])` + regexp.QuoteMeta(n) + `\s*\(`).MatchString(src) {
		// A function, or a value that is one (the trigger's is_won).
		candidates = append(functionNames(opts), values...)
	} else {
		for _, m := range letRE.FindAllStringSubmatch(src, -1) {
			candidates = append(candidates, m[1])
		}
	}
	text := n
	if code := codeText(src); code != "" {
		text = code
	}
	if best, ok := wording.TypoOf(n, candidates); ok {
		if text != n {
			// DE-VAT19: DE is close to deal, but the value is a code.
			return fmt.Sprintf(" (did you mean %s? if %s is a text, write it in quotes inside the YAML value: '\"%s\"')", best, text, text)
		}
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return " (the values here are " + strings.Join(values, ", ") + "; the functions are in docs/mappings.md; a text is written in quotes inside the YAML value, as in '\"" + text + "\"')"
}

// letRE finds the let variables an expression declares.
var letRE = regexp.MustCompile(`\blet\s+(\w+)\s*=`)

// functionNames are the functions an expression compiled with opts can
// call: dealsync's (not those its patches call, _…) and expr's built-ins
// it leaves in.
func functionNames(opts []expr.Option) []string {
	c := conf.CreateNew()
	for _, o := range opts {
		o(c)
	}
	var names []string
	for name := range c.Functions {
		if !strings.HasPrefix(name, "_") {
			names = append(names, name)
		}
	}
	for _, name := range builtin.Names {
		if !c.Disabled[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// exprNames are the names an expression reads the fields of a value of
// type t by (their expr tags), those of embedded fields included, sorted.
func exprNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		switch {
		case f.Anonymous:
			names = append(names, exprNames(f.Type)...)
		case f.IsExported() && f.Tag.Get("expr") != "-":
			name := f.Tag.Get("expr")
			if name == "" {
				name = f.Name
			}
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// commentCut is the hint for an expression that ends too soon (expr's
// message msg: an unexpected end, an open string) and whose value,
// written without quotes, is followed by a YAML comment on its line: YAML
// ends a plain value at " #", so `map(xs, #.sku)` or `"No. #" + deal.id`
// lost its end there. "" otherwise.
func commentCut(n *yaml.Node, msg string) string {
	if n == nil || n.Style != 0 || n.LineComment == "" ||
		!(strings.Contains(msg, "EOF") || strings.Contains(msg, "not terminated")) {
		return ""
	}
	return fmt.Sprintf("; YAML read \"%s\" as a comment: a \" #\" in a value without quotes starts one, and the expression ends before it; quote the whole expression",
		oneLine(n.LineComment))
}

// compile compiles and type-checks one expression. n is its YAML node
// (nil for built-in expressions, which are correct by construction).
func (p *parser) compile(n *yaml.Node, key, src string, s fieldSpec, env envKind) compiled {
	c := compiled{key: key, spec: s, src: src, node: n}
	opts := p.m.options(env, p.strict)
	prog, err := expr.Compile(src, opts...)
	if err == nil && p.strict {
		err = recheckCallArguments(src, opts)
	}
	if err != nil {
		line, col := 1, 0
		msg := err.Error()
		if fe, ok := err.(*file.Error); ok {
			line, col, msg = fe.Line, fe.Column, callArgMessage(fe.Message, src, fe.From)
		}
		hint := builtinHint(msg)
		if fe, ok := err.(*file.Error); ok && strings.HasPrefix(hint, unknownOperandPrefix) {
			if h := unknownOperandHint(src, opts, fe.From); h != "" {
				hint = h
			}
		}
		if fe, ok := err.(*file.Error); ok && hint == "" {
			hint = builtinArityHint(msg, src, fe.From, fe.To)
		}
		if fe, ok := err.(*file.Error); ok && hint == "" {
			if h, at, found := mismatchedFloatHint(src, msg, fe.From); found {
				hint = h
				line, col = position(src, at)
			}
		}
		more := nameHint(msg, src, env, opts) + commentCut(n, msg)
		if _, perr := exprparser.Parse(src); perr != nil {
			// Only what expr cannot read is a template: a block's or a
			// closure's braces ({ deal.nam }, map(xs, {#.skuu})) are
			// expr's own, and their error has its own hint.
			more += templateHint(src, key, opts)
		}
		p.exprProblem(n, key, src, line, col, compilerCrash(msg)+hint+more)
		return c
	}
	c.prog = prog
	c.divisors = divisorsOf(src, prog.Node())
	if t := prog.Node().Type(); !s.kind.accepts(t) {
		line, col, hint := 1, 0, s.kind.hint(t)
		if h, ok := numberTextHint(src); ok && s.kind == kString {
			hint = h
		}
		if s.kind == kDecimal && t.Kind() == reflect.Float64 {
			if h, from, ok := floatHint(src, opts); ok {
				hint = h
				line, col = position(src, from)
			}
		}
		p.exprProblem(n, key, src, line, col, fmt.Sprintf("expression gives %s, but this field needs %s%s", t, s.kind, hint))
	} else if p.strict && s.kind == kDecimal && unknownType(prog.Node().Nature()) {
		before := len(p.problems)
		p.checkJSONNumberFields(n, key, src, prog.Node())
		if len(p.problems) == before {
			p.checkFloatLiterals(n, key, src, opts)
		}
	}
	root := prog.Node()
	if p.strict {
		p.checkFloatArgLiterals(n, key, src, opts)
		p.checkLaunderedFloats(n, key, src, opts)
		p.checkMethods(n, key, src, root)
		p.checkGroupKeys(n, key, src, root)
		p.checkAggregates(n, key, src, root)
		p.checkFuncValues(n, key, src, root)
		p.checkZeroDivisors(n, key, src, root)
		p.checkNilCoalescing(n, key, src, root)
		p.checkNilComparisons(n, key, src, root)
		if s.key == "tax_rate" {
			p.warnTaxRateLiterals(n, key, src)
		}
		p.warnTemplateTexts(n, key, root, opts)
	}
	if p.strict && env != envTrigger {
		p.checkInvoiceReads(n, key, src, root)
	}
	if p.strict && env == envHeader && s.key == "currency" {
		// The currencies written in the file are checked now, not at
		// every run.
		p.checkLiterals(n, key, src, root, "", p.invoiceCurrency)
	}
	// Every lookup must name a declared table, as a literal.
	walkAll(root, func(node ast.Node) {
		call, ok := node.(*ast.CallNode)
		if !ok {
			return
		}
		id, ok := call.Callee.(*ast.IdentifierNode)
		if ok && id.Value == "coalesce" && len(call.Arguments) == 0 && p.strict {
			// Its variadic overload type-checks a call without arguments,
			// which has no value to give: refused now, not at every run.
			line, col := position(src, call.Location().From)
			p.exprProblem(n, key, src, line, col, errCoalesceNoArguments.Error())
			return
		}
		if ok && p.strict && len(call.Arguments) > 0 {
			// The values written in the file for dec(), int(), date() and
			// round_currency's currency are checked now, as the zones
			// of date_in are: literals, either branch of a condition,
			// the values and default of a lookup table.
			switch {
			case id.Value == "dec" && len(call.Arguments) == 1:
				p.checkLiterals(n, key, src, call.Arguments[0], "dec: ", decimalLiteral)
			case id.Value == "date" && len(call.Arguments) == 1:
				p.checkLiterals(n, key, src, call.Arguments[0], "date: ", dateLiteral)
			case id.Value == "_int" && len(call.Arguments) == 1:
				p.checkLiterals(n, key, src, call.Arguments[0], "int: ", wholeNumberLiteral)
			case id.Value == "round_currency" && len(call.Arguments) >= 2:
				p.checkLiterals(n, key, src, call.Arguments[1], "round_currency: ", func(s string) error {
					_, err := model.ParseCurrency(s)
					return err
				})
			}
			if (id.Value == "_dec_pow" || id.Value == "_dec_caret") && len(call.Arguments) == 2 {
				// An exponent written in the file that no run can take
				// (negative, above maxPowerExponent) fails every run:
				// refused now.
				if e, ok := constantIndex(call.Arguments[1]); ok && (e < 0 || e > maxPowerExponent) {
					line, col := position(src, call.Arguments[1].Location().From)
					p.exprProblem(n, key, src, line, col, powerExponentError(operatorOf[id.Value], e, powerBase(src, call.Location())).Error())
				}
			}
			if (id.Value == "round_to" || id.Value == "round_currency") && len(call.Arguments) == 3 {
				p.checkLiterals(n, key, src, call.Arguments[2], id.Value+": ", roundingMode)
			}
		}
		if ok && id.Value == "date_in" && len(call.Arguments) == 2 {
			// The zones written in the file are checked now, not at the
			// first run: literals, either branch of a condition, and every
			// value of a lookup table that gives the zone.
			p.checkLiterals(n, key, src, call.Arguments[1], "", func(name string) error {
				_, err := loadZone(name)
				return err
			})
			// Those that load and read otherwise than they count
			// (date_in(x, "EST")) are warned of, as a time_zone is.
			p.warnZoneLiterals(n, key, src, call.Arguments[1])
			return
		}
		if !ok || id.Value != "lookup" || len(call.Arguments) == 0 {
			return
		}
		line, col := position(src, call.Arguments[0].Location().From)
		str, ok := call.Arguments[0].(*ast.StringNode)
		if !ok {
			p.exprProblem(n, key, src, line, col, "the table of lookup(...) must be a literal name such as \"item_codes\"")
			return
		}
		if _, ok := p.m.lookups[str.Value]; !ok {
			p.exprProblem(n, key, src, line, col, fmt.Sprintf("lookup table %q is not declared under lookups (declared: %s)", str.Value, wording.ListOrNone(p.m.lookupNames())))
		}
	})
	return c
}

// checkInvoiceReads reports every read of an invoice field that is not
// evaluated yet when the expression runs (p.evaluated): it would read the
// field's zero value, "" or an unset date, for every deal, silently (a
// reference built from invoice.memo would be the same for every deal).
// A read of a group (invoice.customer, invoice itself, an index computed
// at run time) reads every field under it.
func (p *parser) checkInvoiceReads(n *yaml.Node, key, src string, root ast.Node) {
	// The nodes that are the base of a member access: a chain is judged
	// whole, at its outermost node.
	bases := map[ast.Node]bool{}
	walkAll(root, func(node ast.Node) {
		if m, ok := node.(*ast.MemberNode); ok {
			bases[m.Node] = true
		}
	})
	reported := map[string]bool{}
	walkAll(root, func(node ast.Node) {
		switch node.(type) {
		case *ast.IdentifierNode, *ast.MemberNode:
		default:
			return
		}
		if bases[node] {
			return
		}
		segs, start, _ := staticPath(node)
		env := false
		if len(segs) > 0 && segs[0] == "$env" {
			segs = segs[1:]
			if len(segs) == 0 {
				segs, env = []string{"invoice"}, true // the whole environment
			}
		}
		if len(segs) == 0 || segs[0] != "invoice" {
			return
		}
		group := invoiceGroup(segs[1:])
		for i, s := range headerSpecs {
			if i < p.evaluated || (group != "" && s.key != group && !strings.HasPrefix(s.key, group+".")) {
				continue
			}
			read := "invoice"
			if group != "" {
				read += "." + group
			}
			if env {
				read = "$env"
			}
			if reported[read] {
				return
			}
			reported[read] = true
			var what string
			switch {
			case read != "invoice."+s.key:
				what = read + ", whose invoice." + s.key + " is not evaluated yet"
			case read == key:
				what = read + ", the field it gives"
			default:
				what = read + " before it is evaluated"
			}
			line, col := position(src, start.Location().From)
			p.exprProblem(n, key, src, line, col, fmt.Sprintf("reads %s: it would read %s for every deal "+
				"(header fields are evaluated in the order %s; an expression reads only those before it)", what, zeroWords(s.kind), headerOrder))
			return
		}
	})
}

// zeroWords is what reading a field of kind k that is not evaluated yet gives.
func zeroWords(k kind) string {
	if k == kDate {
		return "an unset date"
	}
	return `""`
}

// staticPath is the chain of member accesses n stands for, from its root
// variable ("invoice", "customer", "name"), cut at the first member
// computed at run time (invoice[k].x gives "invoice", cut), and that
// root's node; nil when n does not start at a variable.
func staticPath(n ast.Node) (segs []string, root ast.Node, cut bool) {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return []string{x.Value}, x, false
	case *ast.ChainNode:
		return staticPath(x.Node)
	case *ast.MemberNode:
		segs, root, cut := staticPath(x.Node)
		if segs == nil {
			return nil, nil, false
		}
		prop, ok := x.Property.(*ast.StringNode)
		if !ok || cut {
			return segs, root, true
		}
		return append(segs, prop.Value), root, false
	}
	return nil, nil, false
}

// invoiceGroup is the header field, or group of fields ("customer",
// "customer.address"; "" for all), that an access to invoice.<segs...>
// reads: the longest leading part of segs that names one.
func invoiceGroup(segs []string) string {
	for k := len(segs); k > 0; k-- {
		g := strings.Join(segs[:k], ".")
		for _, s := range headerSpecs {
			if s.key == g || strings.HasPrefix(s.key, g+".") {
				return g
			}
		}
	}
	return ""
}

// literal is a value written in the file that an expression can give.
type literal struct {
	value string
	node  ast.Node // where: the string literal, or the lookup call
	// from says where a lookup table's value is written (`entry "DE" of
	// lookup table "tax_rates"`); "" for a literal.
	from string
}

// literalValues are the values written in the file that node can give: a
// string literal, the branches of a condition, the values and default of
// a lookup table named by a literal (in the order of their keys).
func (p *parser) literalValues(node ast.Node) []literal {
	switch x := node.(type) {
	case *ast.StringNode:
		return []literal{{value: x.Value, node: x}}
	case *ast.ConditionalNode:
		return append(p.literalValues(x.Exp1), p.literalValues(x.Exp2)...)
	case *ast.CallNode:
		id, ok := x.Callee.(*ast.IdentifierNode)
		if ok && id.Value == "coalesce" {
			// Each argument may be the value, but coalesce never gives a
			// blank one that has arguments after it: a blank value of
			// those (a literal, a lookup table's value or default) is not
			// checked. The last argument's are, but for a blank literal,
			// written as the explicit "nothing" coalesce then gives.
			var out []literal
			for i, arg := range x.Arguments {
				last := i == len(x.Arguments)-1
				for _, l := range p.literalValues(arg) {
					_, lit := l.node.(*ast.StringNode)
					if strings.TrimSpace(l.value) == "" && (!last || lit) {
						continue
					}
					out = append(out, l)
				}
			}
			return out
		}
		if !ok || id.Value != "lookup" || len(x.Arguments) == 0 {
			return nil
		}
		table, ok := x.Arguments[0].(*ast.StringNode)
		if !ok {
			return nil
		}
		t := p.m.lookups[table.Value]
		if t == nil {
			return nil
		}
		var out []literal
		for _, k := range slices.Sorted(maps.Keys(t.entries)) {
			out = append(out, literal{value: t.entries[k], node: x, from: fmt.Sprintf("entry %q of lookup table %q", k, table.Value)})
		}
		if t.hasDefault {
			out = append(out, literal{value: t.def, node: x, from: fmt.Sprintf("default of lookup table %q", table.Value)})
		}
		return out
	}
	return nil
}

// checkLiterals reports, at its position, every value written in the file
// that node can give (see literalValues) and check refuses: such a value
// would fail each run that meets it, so it is refused at load instead.
// what names the use (`round_currency: `), for the message.
func (p *parser) checkLiterals(n *yaml.Node, key, src string, node ast.Node, what string, check func(string) error) {
	for _, l := range p.literalValues(node) {
		err := check(l.value)
		if err == nil {
			continue
		}
		msg := what + err.Error()
		if l.from != "" {
			msg += " (the " + l.from + ")"
		}
		line, col := position(src, l.node.Location().From)
		p.exprProblem(n, key, src, line, col, msg)
	}
}

// invoiceCurrency checks a currency written for invoice.currency as the
// mapping takes it (File.Map): trimmed and upper-cased, and blank
// standing for defaults.currency, when the file sets one.
func (p *parser) invoiceCurrency(s string) error {
	if strings.TrimSpace(s) == "" {
		if p.m.defaults.Currency == "" && !p.defaultCurrencyRefused {
			return fmt.Errorf("%q leaves the invoice without a currency: a blank currency becomes defaults.currency, which this file does not set", s)
		}
		return nil
	}
	_, err := model.ParseCurrency(s)
	return err
}

// decimalLiteral checks a string given to dec() as dec reads it.
func decimalLiteral(s string) error {
	_, err := parseDec(s)
	return err
}

// dateLiteral checks a string given to date() as date reads it.
func dateLiteral(s string) error {
	_, err := model.ParseDate(s)
	return err
}

// typeNames words expr's type names as an expression author knows them.
var typeNames = strings.NewReplacer(
	"mapping.DealEnv", "deal", "mapping.CompanyEnv", "company", "mapping.AddressEnv", "address",
	"mapping.LineItemEnv", "line item", "mapping.EventEnv", "event", "mapping.DefaultsEnv", "defaults",
	"mapping.InvoiceEnv", "invoice", "mapping.CustomerEnv", "customer", "mapping.LineEnv", "environment",
	"mapping.Env", "environment", "mapping.TriggerEnv", "environment",
	"decimal.Decimal", "decimal", "model.Date", "date", "mapping.Moment", "moment",
)

type visitor func(ast.Node)

func (v visitor) Visit(n *ast.Node) { v(*n) }

// position turns a rune offset in src into a 1-based line and 0-based column.
func position(src string, offset int) (line, col int) {
	line = 1
	i := 0
	for _, r := range src {
		if i == offset {
			break
		}
		if r == '\n' {
			line++
			col = 0
		} else {
			col++
		}
		i++
	}
	return line, col
}

// exprProblem reports a problem at line/col (1-based line, 0-based column)
// of the expression held by YAML node n, translated to a file position.
func (p *parser) exprProblem(n *yaml.Node, key, src string, line, col int, msg string) {
	pr := Problem{File: p.file, Key: key, Message: msg}
	if n == nil {
		pr.Message = "built-in expression `" + src + "`: " + msg
		p.problems = append(p.problems, pr)
		return
	}
	pr.Line, pr.Column = filePosition(p.lines, n, src, line, col)
	pr.Message = fmt.Sprintf("%s (in `%s`)", typeNames.Replace(msg), oneLine(src))
	p.problems = append(p.problems, pr)
}

// filePosition translates line/col (1-based line, 0-based column) of the
// expression src, held by YAML node n of a file of these lines, to the
// file's line and column (1-based); the column is 0 where it cannot be
// traced to the file's text (see exprProblem), the line then the node's.
func filePosition(lines []string, n *yaml.Node, src string, line, col int) (fileLine, fileCol int) {
	fileLine = n.Line
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		// The text starts on the line after the indicator, indented as
		// its first line. A literal block's lines are the value's; a
		// folded block's are joined, so only its first line is exact. A
		// position is given where the file's line holds the value's text
		// there, else the indicator's line only, not a wrong column.
		fileCol = 0
		srcLines := strings.Split(src, "\n")
		fl := n.Line - 1 + line // 0-based in lines
		if line < 1 || line > len(srcLines) || fl >= len(lines) || n.Line >= len(lines) {
			break
		}
		first := strings.TrimSuffix(lines[n.Line], "\r")
		indent := len(first) - len(strings.TrimLeft(first, " "))
		raw := strings.TrimSuffix(lines[fl], "\r")
		if len(raw) < indent || strings.TrimLeft(raw[:indent], " ") != "" {
			break
		}
		text := raw[indent:]
		exact := text == srcLines[line-1] && col <= utf8.RuneCountInString(text)
		if n.Style&yaml.FoldedStyle != 0 {
			exact = line == 1 && strings.HasPrefix(srcLines[0], text) && col < utf8.RuneCountInString(text)
		}
		if exact {
			fileLine, fileCol = fl+1, indent+col+1
		}
	default:
		// A plain or quoted scalar: its value differs from the file's
		// text where it escapes characters or continues on more lines,
		// so the offset is mapped through that text. When it cannot be,
		// the problem gives the scalar's line only, not a wrong column.
		at := flowPositions(lines, n)
		if off := offsetOf(src, line, col); off < len(at) {
			fileLine, fileCol = at[off].line, at[off].col
		} else {
			fileCol = 0
		}
	}
	return fileLine, fileCol
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func (m *File) lookupNames() []string {
	out := make([]string, 0, len(m.lookups))
	for k := range m.lookups {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// lookupKey is a lookup's key: a text, or a value whose type shows only
// as the run reads it (fromJSON of a CRM's custom fields) as its text, as
// string() writes it (17 is "17"). It was Go's "interface conversion"
// error for such a value.
func lookupKey(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case nil:
		return "", errors.New("lookup() was given nothing as its key (a key that an object read with fromJSON lacks, or what find() did not find): " +
			"guard it, as in x ?? \"\"")
	case float64, int, bool, decimal.Decimal, map[string]any, []any:
		return jsonText("lookup", x)
	}
	return "", fmt.Errorf("lookup() takes a text as its key, and was given %s: write string(x)", kindName(v))
}

// options are the compile options of an expression of this mapping;
// strict is the parser's (see baseOptions).
func (m *File) options(env envKind, strict bool) []expr.Option {
	opts := append(baseOptions(strict), roundingOptions(m.rounding)...)
	switch env {
	case envLine:
		opts = append(opts, expr.Env(LineEnv{}))
	case envTrigger:
		opts = append(opts, expr.Env(TriggerEnv{}))
	default:
		opts = append(opts, expr.Env(Env{}))
	}
	opts = append(opts,
		expr.DisableBuiltin("now"), expr.DisableBuiltin("date"), expr.DisableBuiltin("duration"),
		expr.DisableBuiltin("float"), expr.DisableBuiltin("timezone"),
		// A map's keys come in Go's random order: a mapping that joined
		// them would differ from one evaluation to the next.
		expr.DisableBuiltin("keys"), expr.DisableBuiltin("values"), expr.DisableBuiltin("toPairs"),
		expr.Function("lookup", func(params ...any) (any, error) {
			name := params[0].(string)
			t, ok := m.lookups[name]
			if !ok {
				return nil, fmt.Errorf("lookup table %q is not declared", name) // caught at load
			}
			key, err := lookupKey(params[1])
			if err != nil {
				return nil, err
			}
			return t.get(name, key)
		}, new(func(string, string) string)),
	)
	return opts
}

// powerBase is the text of the base of the power operator (** or ^) at
// loc of src, the operator's own location, which the patch that makes it
// a call keeps: in parentheses where the base is an operation
// ((1 + dec("0.05"))); "" when it is not found.
func powerBase(src string, loc file.Location) string {
	tree, err := exprparser.Parse(src)
	if err != nil {
		return ""
	}
	base := ""
	walkAll(tree.Node, func(node ast.Node) {
		b, ok := node.(*ast.BinaryNode)
		if !ok || base != "" || b.Operator != "**" && b.Operator != "^" || b.Location() != loc {
			return
		}
		base = b.Left.String()
		switch b.Left.(type) {
		case *ast.BinaryNode, *ast.ConditionalNode, *ast.UnaryNode:
			base = "(" + base + ")"
		}
	})
	return base
}
