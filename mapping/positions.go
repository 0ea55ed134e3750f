package mapping

import (
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// filePos is a 1-based line and column (in characters) of a mapping file.
type filePos struct{ line, col int }

// rawReader reads a file's text character by character, as YAML reads a
// scalar: lines end with '\n' (a "\r\n" counts as one), -1 is the end.
type rawReader struct {
	lines []string
	line  int    // 0-based
	runes []rune // of lines[line], without its '\r'
	col   int    // 0-based index in runes
}

func (r *rawReader) setLine(i int) bool {
	if i < 0 || i >= len(r.lines) {
		return false
	}
	r.line, r.runes, r.col = i, []rune(strings.TrimSuffix(r.lines[i], "\r")), 0
	return true
}

func (r *rawReader) peek() rune {
	switch {
	case r.col < len(r.runes):
		return r.runes[r.col]
	case r.line+1 < len(r.lines):
		return '\n'
	}
	return -1
}

func (r *rawReader) next() {
	if r.col < len(r.runes) {
		r.col++
	} else {
		r.setLine(r.line + 1)
	}
}

func (r *rawReader) pos() filePos { return filePos{r.line + 1, r.col + 1} }

// skipBlanks skips spaces and tabs.
func (r *rawReader) skipBlanks() {
	for c := r.peek(); c == ' ' || c == '\t'; c = r.peek() {
		r.next()
	}
}

// yamlEscapes are the one-character escapes of a double-quoted scalar.
var yamlEscapes = map[rune]rune{
	'0': 0, 'a': '\a', 'b': '\b', 't': '\t', '\t': '\t', 'n': '\n', 'v': '\v', 'f': '\f', 'r': '\r',
	'e': 0x1b, ' ': ' ', '"': '"', '/': '/', '\\': '\\', 'N': 0x85, '_': 0xa0, 'L': 0x2028, 'P': 0x2029,
}

// flowPositions maps each character of the value of a plain, single- or
// double-quoted scalar to where the file writes it, reading the raw text
// as YAML does (escapes, a doubled quote in single quotes, lines folded
// into spaces); one more position, after the last character, stands for
// the end of the value. It is nil when the text read is not the node's
// value (a form it does not follow): the caller then gives no column
// rather than a wrong one.
func flowPositions(lines []string, n *yaml.Node) []filePos {
	r := &rawReader{lines: lines}
	if !r.setLine(n.Line-1) || n.Column < 1 {
		return nil
	}
	r.col = n.Column - 1
	// An anchor or a tag before the value (`&a deal.id`, `!!str x`).
	for c := r.peek(); c == '&' || c == '!'; c = r.peek() {
		for c := r.peek(); c != ' ' && c != '\t' && c != '\n' && c != -1; c = r.peek() {
			r.next()
		}
		r.skipBlanks()
	}
	var quote rune
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		quote = '"'
	case n.Style&yaml.SingleQuotedStyle != 0:
		quote = '\''
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return nil
	}
	if quote != 0 {
		if r.peek() != quote {
			return nil
		}
		r.next()
	}
	value := []rune(n.Value)
	out := make([]rune, 0, len(value))
	at := make([]filePos, 0, len(value)+1)
	emit := func(c rune, p filePos) {
		out = append(out, c)
		at = append(at, p)
	}
	// fold reads the line breaks (and the indentation after them) that
	// follow a consumed first break, which stood at p: one break is a
	// space, n+1 are n newlines; after an escaped break (escaped) every
	// further break is a newline.
	fold := func(p filePos, escaped bool) {
		extra := 0
		for {
			r.skipBlanks()
			if r.peek() != '\n' {
				break
			}
			extra++
			r.next()
		}
		if extra == 0 && !escaped {
			emit(' ', p)
		}
		for range extra {
			emit('\n', p)
		}
	}
	for quote != 0 || len(out) < len(value) {
		p, c := r.pos(), r.peek()
		switch {
		case c == -1:
			return nil
		case quote != 0 && c == quote:
			r.next()
			if quote == '\'' && r.peek() == '\'' {
				r.next()
				emit('\'', p)
				continue
			}
			at = append(at, p) // the closing quote: the end of the value
			if string(out) != n.Value {
				return nil
			}
			return at
		case quote == '"' && c == '\\':
			r.next()
			e := r.peek()
			if e == '\n' {
				r.next()
				fold(p, true)
				continue
			}
			r.next()
			if d, ok := yamlEscapes[e]; ok {
				emit(d, p)
				continue
			}
			digits := map[rune]int{'x': 2, 'u': 4, 'U': 8}[e]
			if digits == 0 {
				return nil
			}
			var hex strings.Builder
			for range digits {
				hex.WriteRune(r.peek())
				r.next()
			}
			v, err := strconv.ParseUint(hex.String(), 16, 32)
			if err != nil {
				return nil
			}
			emit(rune(v), p)
		case c == ' ' || c == '\t' || c == '\n':
			// Blanks stay unless a line break follows them.
			var blanks []rune
			for c := r.peek(); c == ' ' || c == '\t'; c = r.peek() {
				blanks = append(blanks, c)
				r.next()
			}
			if r.peek() != '\n' {
				for i, b := range blanks {
					emit(b, filePos{p.line, p.col + i})
				}
				continue
			}
			bp := r.pos()
			r.next()
			fold(bp, false)
		default:
			r.next()
			emit(c, p)
		}
	}
	// A plain scalar ends where its value does.
	at = append(at, r.pos())
	if string(out) != n.Value {
		return nil
	}
	return at
}

// offsetOf is the character offset in src of a 1-based line and 0-based
// column.
func offsetOf(src string, line, col int) int {
	off, l := 0, 1
	for _, c := range src {
		if l >= line {
			break
		}
		off++
		if c == '\n' {
			l++
		}
	}
	return off + col
}
