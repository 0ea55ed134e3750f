// Package yamlindent finds the line of a YAML file whose key is indented
// unlike its siblings, the usual cause of YAML's "did not find expected
// key" and "mapping values are not allowed in this context", which name
// another line (where the enclosing mapping starts, or the line before).
package yamlindent

import (
	"fmt"
	"regexp"
	"strings"
)

// keyLine is a line of a block mapping: its indentation, an optional
// sequence dash, its key (YAML's merge key, <<, among them: the keys of
// a block merged with `<<: &anchor` sit under it, and the keys beside
// it are its siblings) and what follows the colon.
var keyLine = regexp.MustCompile(`^( *)(- +)?(<<|[A-Za-z0-9_$][A-Za-z0-9_.$/~-]*|"[^"]*"|'[^']*')([ \t]*):(?:[ \t]+(.*))?$`)

// blockScalar is a value that starts a block scalar (|, >, with
// indicators), after an anchor or a tag or not.
var blockScalar = regexp.MustCompile(`^(?:[&!]\S*\s+)*[|>][0-9+-]*$`)

// otherKey is a key line keyLine does not take (a key with blanks or
// letters beyond ASCII) that opens a block.
var otherKey = regexp.MustCompile(`^( *)(- +)?[^\s#-][^#]*?[ \t]*:$`)

// Problem is a key indented unlike its siblings.
type Problem struct {
	Line    int    // 1-based
	Key     string // as written
	Indent  int    // its indentation, in spaces
	Message string // what is wrong and what to do, without the line

	stop int // the 1-based line where the keys disagree (where YAML stops): Line, or a line after it
}

// Find reports the first key of lines (a YAML file split at "\n") indented
// unlike its siblings: deeper than the key before it although that key's
// value is on the key's line (so YAML reads it as more of that value), or
// between the indentation of its parent's keys and its siblings'. Of two
// keys that disagree, it names the odd one out: the first key of a block
// rather than the key after it when the keys from that one on are indented
// alike (more than one of them) or the file's usual indentation step (or,
// at the top, column 0) says so, and a key written as a sibling of a key
// with no value rather than the keys under it when more than one follows
// (`lines:` then `item_code:` at its indentation, then `description:`
// deeper). Tabs in the indentation are reported too (YAML refuses them).
// It knows block mappings, block sequences of mappings and block scalars
// (| and >); a file it cannot follow (flow collections over several lines)
// gets no Problem.
func Find(lines []string) (Problem, bool) {
	type level struct {
		indent int
		value  bool   // the key's value is on its line
		line   int    // 0-based
		key    string // as written
		dash   bool   // the key follows a sequence dash
		count  int    // the keys of its block so far at its indentation, itself included
		empty  string // the key above it, when a sibling with no value and no keys under it
	}
	var open []level // the keys enclosing the current line, outermost first
	root, scalarAbove := -1, -1
	quote := byte(0)        // the quote of a quoted value that goes on below its line
	steps := map[int]int{}  // how many blocks' first keys are that many spaces deeper than their parent
	stepOf := map[int]int{} // the step each block's first key (by line) counted in steps
	misplaced := func(i, indent int, key, why string) (Problem, bool) {
		spaces := "spaces"
		if indent == 1 {
			spaces = "space"
		}
		return Problem{Line: i + 1, stop: i + 1, Key: key, Indent: indent, Message: fmt.Sprintf(
			"key %s is indented %d %s, %s: indent it as the keys beside it", key, indent, spaces, why)}, true
	}
	// oddFirst is the first key of a block, f, when it is the odd one out
	// rather than the key at indentation d on line i, the second of the
	// block: parent is the indentation of its parent's key, -1 at the top.
	oddFirst := func(i, d int, f level, parent int) (Problem, bool) {
		if f.count != 1 || f.dash {
			return Problem{}, false
		}
		fits := func(indent int) bool { return indent == 0 }
		if parent >= 0 {
			usual := usualStep(steps, stepOf[f.line])
			fits = func(indent int) bool { return usual > 0 && indent-parent == usual }
		}
		n := alike(lines, i, d)
		if fits(f.indent) || !fits(d) && n < 2 {
			return Problem{}, false
		}
		p, _ := misplaced(f.line, f.indent, f.key, fmt.Sprintf("not %d as the %s after it", d, plural(n, "key", "keys")))
		p.stop = i + 1
		return p, true
	}
	for i, raw := range lines {
		line := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		if quote != 0 {
			if closes(line, quote) {
				quote = 0
			}
			continue // more of a quoted value
		}
		if scalarAbove >= 0 {
			if trimmed == "" || indent > scalarAbove {
				continue // a line of a block scalar
			}
			scalarAbove = -1
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if trimmed == "---" || strings.HasPrefix(trimmed, "--- ") {
			open, root = nil, -1 // a new document
			continue
		}
		if strings.HasPrefix(trimmed, "\t") {
			return Problem{Line: i + 1, stop: i + 1, Indent: indent, Message: "the line is indented with a tab, which YAML refuses: indent with spaces only"}, true
		}
		m := keyLine.FindStringSubmatch(line)
		if m == nil {
			if o := otherKey.FindStringSubmatch(strings.TrimRight(stripComment(line), " \t")); o != nil {
				// A key with blanks or other letters, opening a block:
				// a level like any other key.
				m = []string{line, o[1], o[2], strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), o[2])), ":")), "", ""}
			} else {
				if item, ok := strings.CutPrefix(trimmed, "-"); ok && blockScalar.MatchString(strings.TrimSpace(stripComment(strings.TrimSpace(item)))) {
					scalarAbove = indent // a block scalar in a sequence
				}
				continue // a scalar of a sequence, or more of a value
			}
		}
		key, rest := m[3], strings.TrimSpace(stripComment(m[5]))
		// A quoted key, or a blank before the colon, deeper than a value:
		// more likely an expression going on over lines (`"paid" : "free"`)
		// than a key, which YAML refuses for its ": " (the caller's hint).
		bare := m[4] == "" && key[0] != '"' && key[0] != '\''
		count, empty := 1, ""
		if m[2] != "" {
			// A mapping in a sequence: the dash opens the item, whose
			// keys sit after it.
			dash := indent
			for len(open) > 0 && open[len(open)-1].indent > dash {
				open = open[:len(open)-1]
			}
			indent += len(m[2])
		} else {
			if len(open) > 0 && indent > open[len(open)-1].indent && open[len(open)-1].value {
				if !bare {
					return Problem{}, false
				}
				above := open[len(open)-1]
				parent := -1
				if len(open) > 1 {
					parent = open[len(open)-2].indent
				}
				if p, ok := oddFirst(i, indent, above, parent); ok {
					return p, true
				}
				if n := alike(lines, i, indent); above.empty != "" && !above.dash && n >= 2 {
					p, _ := misplaced(above.line, above.indent, above.key, fmt.Sprintf(
						"as %s above it, which it leaves with no value, while the %d keys after it are indented %d", above.empty, n, indent))
					p.stop = i + 1
					return p, true
				}
				return misplaced(i, indent, key, fmt.Sprintf("deeper than the key above it, %s, whose value is on the same line as it, so YAML reads this line as more of that value", above.key))
			}
			popped := false
			var first level // the outermost key popped: the first of its block, when it is the only one
			for len(open) > 0 && open[len(open)-1].indent > indent {
				first = open[len(open)-1]
				open, popped = open[:len(open)-1], true
			}
			switch {
			case len(open) == 0 && popped && root >= 0 && indent != root:
				if p, ok := oddFirst(i, indent, first, -1); ok {
					return p, true
				}
				return misplaced(i, indent, key, fmt.Sprintf("not %d as the file's first keys", root))
			case len(open) == 0:
				if root < 0 {
					root = indent
				} else if indent != root {
					return misplaced(i, indent, key, fmt.Sprintf("not %d as the file's first keys", root))
				}
			case open[len(open)-1].indent == indent:
				// A sibling.
				above := open[len(open)-1]
				count = above.count + 1
				if !above.value && !popped {
					empty = above.key
				}
				open = open[:len(open)-1]
			case open[len(open)-1].value, popped:
				if !open[len(open)-1].value {
					if p, ok := oddFirst(i, indent, first, open[len(open)-1].indent); ok {
						return p, true
					}
				}
				return misplaced(i, indent, key, "neither as its siblings nor as their parent")
			default:
				// The first key of a block.
				step := indent - open[len(open)-1].indent
				steps[step]++
				stepOf[i] = step
			}
		}
		if blockScalar.MatchString(rest) {
			scalarAbove = indent
		}
		if rest != "" && (rest[0] == '"' || rest[0] == '\'') && !closes(rest[1:], rest[0]) {
			quote = rest[0]
		}
		if strings.Count(rest, "{") > strings.Count(rest, "}") || strings.Count(rest, "[") > strings.Count(rest, "]") {
			return Problem{}, false // a flow collection over several lines
		}
		// An anchor or a tag alone (`env: &common`) opens a block.
		value := rest != "" && !(strings.HasPrefix(rest, "&") || strings.HasPrefix(rest, "!")) || strings.Contains(rest, " ")
		open = append(open, level{indent: indent, value: value, line: i, key: key, dash: m[2] != "", count: count, empty: empty})
	}
	return Problem{}, false
}

// usualStep is the indentation step most blocks' first keys take from
// their parent's, that of the key in question (own) aside; 0 when no step
// is the most usual.
func usualStep(steps map[int]int, own int) int {
	best, most, tie := 0, 0, false
	for step, n := range steps {
		if step == own {
			n--
		}
		switch {
		case n > most:
			best, most, tie = step, n, false
		case n == most && n > 0:
			tie = true
		}
	}
	if tie {
		return 0
	}
	return best
}

// alike counts the keys indented d from line i (0-based) on: up to the
// first line indented less (the end of their block), lines indented more
// (their values) aside.
func alike(lines []string, i, d int) int {
	n := 0
	for _, raw := range lines[i:] {
		line := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(trimmed)
		if indent > d {
			continue
		}
		if indent < d || !(keyLine.MatchString(line) || otherKey.MatchString(strings.TrimRight(stripComment(line), " \t"))) ||
			strings.HasPrefix(trimmed, "-") {
			break
		}
		n++
	}
	return n
}

// plural is one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// At is the key Find reports when it is where YAML stopped, as YAML's
// message msg and its line tell: for "mapping values are not allowed" and
// "found character that cannot start any token" (YAML's line is the key's,
// or that of the key after it when Find names the first of a block), that
// line; for "did not find expected key" (YAML's line is where the
// enclosing mapping starts), that line or one after it; for other
// messages, none.
func At(lines []string, msg string, line int) (Problem, bool) {
	exact := strings.Contains(msg, "mapping values are not allowed") || strings.Contains(msg, "found character that cannot start any token")
	if !exact && !strings.Contains(msg, "did not find expected key") {
		return Problem{}, false
	}
	p, ok := Find(lines)
	if !ok || p.stop < line || exact && p.stop != line {
		return Problem{}, false
	}
	return p, true
}

// closes says whether s (the rest of a quoted value) holds its closing
// quote q.
func closes(s string, q byte) bool { return ClosingQuote(s, q) >= 0 }

// ClosingQuote is the byte index in s (what follows an opening quote q) of
// the quote that closes it: a " not escaped by a backslash, or a ' not
// doubled; -1 when s does not close it.
func ClosingQuote(s string, q byte) int {
	for i := 0; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q && q == '\'' && i+1 < len(s) && s[i+1] == '\'':
			i++
		case s[i] == q:
			return i
		}
	}
	return -1
}

// stripComment drops a " #" comment from a value written without quotes.
func stripComment(v string) string {
	if strings.HasPrefix(v, "#") {
		return ""
	}
	if strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "'") {
		return v
	}
	if i := strings.Index(v, " #"); i >= 0 {
		return v[:i]
	}
	return v
}
