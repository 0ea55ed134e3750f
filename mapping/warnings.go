package mapping

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	exprparser "github.com/expr-lang/expr/parser"
	"github.com/shopspring/decimal"
	yaml "go.yaml.in/yaml/v3"
)

// Warnings are what the file says that loads but may not mean what it
// says: a time_zone whose name reads otherwise than it counts
// (Etc/GMT+1, a legacy name such as EST or CET), a tax rate written as a
// fraction (defaults.tax_rate 0.19, tax_rate: dec("0.19"), for 19 %). `mapping lint`, `config check`
// and the start print them; they keep nothing from loading.
func (m *File) Warnings() []Problem {
	return append([]Problem(nil), m.warnings...)
}

// warn records a warning of the file being loaded: for a file taken into
// use now only (a run's snapshot was accepted when the run started).
func (p *parser) warn(n *yaml.Node, key, format string, args ...any) {
	if !p.strict {
		return
	}
	w := Problem{File: p.file, Key: key, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		w.Line, w.Column = n.Line, n.Column
	}
	p.m.warnings = append(p.m.warnings, w)
}

// etcGMTRE matches the Etc/GMT zones with an offset, whose sign is
// POSIX's: Etc/GMT+1 is UTC-01:00.
var etcGMTRE = regexp.MustCompile(`^Etc/GMT([+-])(\d{1,2})$`)

// legacyZones are the IANA names kept from before the city zones, each
// with the city zone to name instead: EST and MST are a fixed offset
// without the daylight saving of New York's or Denver's time, CET and
// the others follow a region's rules under no place's name.
var legacyZones = map[string]string{
	"EST": "America/New_York", "MST": "America/Denver", "HST": "Pacific/Honolulu",
	"EST5EDT": "America/New_York", "CST6CDT": "America/Chicago", "MST7MDT": "America/Denver", "PST8PDT": "America/Los_Angeles",
	"CET": "Europe/Berlin", "MET": "Europe/Berlin", "EET": "Europe/Athens", "WET": "Europe/Lisbon",
}

// warnZone warns of a time_zone name (loaded as loc) that reads
// otherwise than it counts (zoneWarning).
func (p *parser) warnZone(n *yaml.Node, name string, loc *time.Location) {
	if msg := zoneWarning(name, loc); msg != "" {
		p.warn(n, "time_zone", "%s", msg)
	}
}

// warnZoneLiterals warns, as of a time_zone (zoneWarning), of each zone
// written in the file that node, date_in's zone in the field key's
// expression src, can give: a literal (date_in(x, "EST")), either branch
// of a condition, the values and default of a lookup table that gives it
// (literalValues); each at the literal, or at the lookup. A zone that
// does not load is the load error of the same call (compile).
func (p *parser) warnZoneLiterals(n *yaml.Node, key, src string, node ast.Node) {
	for _, l := range p.literalValues(node) {
		loc, err := loadZone(l.value)
		if err != nil {
			continue
		}
		msg := zoneWarning(l.value, loc)
		if msg == "" {
			continue
		}
		if l.from != "" {
			msg += " (the " + l.from + ")"
		}
		line, col := position(src, l.node.Location().From)
		p.exprWarn(n, key, src, line, col, "date_in: "+msg)
	}
}

// exprWarn is warn at line/col (1-based line, 0-based column) of the
// expression src held by YAML node n, as exprProblem places a problem.
func (p *parser) exprWarn(n *yaml.Node, key, src string, line, col int, msg string) {
	if !p.strict || n == nil {
		return
	}
	w := Problem{File: p.file, Key: key, Message: fmt.Sprintf("%s (in `%s`)", msg, oneLine(src))}
	w.Line, w.Column = filePosition(p.lines, n, src, line, col)
	for _, o := range p.m.warnings {
		if o == w {
			return // one lookup table in two calls of one expression
		}
	}
	p.m.warnings = append(p.m.warnings, w)
}

// zoneWarning is the warning of a zone name (loaded as loc) that reads
// otherwise than it counts: Etc/GMT+1 is UTC-01:00, EST has no daylight
// saving; "" for any other.
func zoneWarning(name string, loc *time.Location) string {
	winter, summer := zoneOffsets(loc)
	if m := etcGMTRE.FindStringSubmatch(name); m != nil && strings.TrimLeft(m[2], "0") != "" {
		// The opposite zone, as an example of the sign, when it exists:
		// Etc/GMT-13 and -14 (UTC+13, +14) have no Etc/GMT+13, +14.
		opposite := ""
		if m[1] == "+" {
			opposite = fmt.Sprintf(" (Etc/GMT-%s is %s)", m[2], utcOffset(-winter))
		} else if -winter >= -12*3600 {
			opposite = fmt.Sprintf(" (Etc/GMT+%s is %s)", m[2], utcOffset(-winter))
		}
		return fmt.Sprintf("%q is %s all year, without daylight saving: the sign of the Etc/GMT zones is POSIX's, + west of Greenwich%s; "+
			"for a place's time, name its city zone, such as America/New_York or Europe/Berlin", name, utcOffset(winter), opposite)
	}
	city, ok := legacyZones[name]
	if !ok {
		return ""
	}
	if winter == summer {
		has := ""
		if cl, err := time.LoadLocation(city); err == nil {
			if j, s := zoneOffsets(cl); j != s {
				has = " (which has daylight saving)"
			}
		}
		return fmt.Sprintf("%q is a legacy zone name: %s all year, without daylight saving; for a place's time, name its city zone, such as %s%s",
			name, utcOffset(winter), city, has)
	}
	return fmt.Sprintf("%q is a legacy zone name: %s, %s with daylight saving, by a region's rules under no place's name; name the city zone whose time you mean, such as %s",
		name, utcOffset(min(winter, summer)), utcOffset(max(winter, summer)), city)
}

// zoneOffsets are loc's offsets from UTC in seconds in January and July
// (of a fixed year: a load warns the same whenever it runs).
func zoneOffsets(loc *time.Location) (jan, jul int) {
	_, jan = time.Date(2025, time.January, 15, 12, 0, 0, 0, time.UTC).In(loc).Zone()
	_, jul = time.Date(2025, time.July, 15, 12, 0, 0, 0, time.UTC).In(loc).Zone()
	return jan, jul
}

// utcOffset writes an offset in seconds as UTC+01:00, UTC-05:00.
func utcOffset(sec int) string {
	sign := "+"
	if sec < 0 {
		sign, sec = "-", -sec
	}
	return fmt.Sprintf("UTC%s%02d:%02d", sign, sec/3600, sec%3600/60)
}

// warnTaxRate warns of a tax rate r (written as written) between 0 and 1,
// a fraction where a percentage is meant: 0.19 is 0.19 %, not 19 %.
func (p *parser) warnTaxRate(n *yaml.Node, key, written, instead string, r decimal.Decimal) {
	if !r.IsPositive() || r.GreaterThanOrEqual(decimal.NewFromInt(1)) {
		return
	}
	pct := r.Shift(2).String()
	p.warn(n, key, "%s is %s %%: tax rates are percentages; for %s %% write %s; if %s %% is meant, ignore this warning",
		written, r.String(), pct, strings.Replace(instead, "%", pct, 1), r.String())
}

// warnTaxRateLiterals warns of each dec("…") written in a tax_rate
// field's expression (src) that can be its value (itself, a
// conditional's branch, either side of ??, a let variable) and is a
// fraction (warnTaxRate): tax_rate: dec("0.19").
func (p *parser) warnTaxRateLiterals(n *yaml.Node, key, src string) {
	tree, err := exprparser.Parse(src)
	if err != nil {
		return
	}
	lets := letValues(tree.Node)
	runes := []rune(src)
	var reach func(node ast.Node, depth int)
	reach = func(node ast.Node, depth int) {
		if depth > maxNeverDecimalDepth {
			return
		}
		if c, ok := node.(*ast.CallNode); ok {
			id, ok := c.Callee.(*ast.IdentifierNode)
			if !ok || id.Value != "dec" || len(c.Arguments) != 1 {
				return
			}
			s, ok := c.Arguments[0].(*ast.StringNode)
			if !ok {
				return
			}
			r, err := decimal.NewFromString(strings.TrimSpace(s.Value))
			if err != nil {
				return
			}
			p.warnTaxRate(n, key, nodeText(runes, c), `dec("%")`, r)
			return
		}
		for _, v := range valueSources(node, lets) {
			reach(v, depth+1)
		}
	}
	reach(tree.Node, 0)
}
