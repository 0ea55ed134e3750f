package rerun

import (
	"strings"
	"unicode/utf8"
)

// minHead is the fewest characters of a message's beginning that
// CutKeepingCause keeps before the cause it moves up.
const minHead = 40

// CutKeepingCause is s, on one line, in at most width characters (an
// ellipsis among them), ending or cut with an ellipsis even when it fits
// (`runs list` shortened it). A message that says what first (a
// mapping's, a connection's), then the error's chain to its innermost
// cause ("…: dial tcp 127.0.0.1:19105: connect: connection refused"),
// then, after "; ", what to do, is cut where the cause stays: its
// end, when the cause (what follows the last ": " of its first clause,
// before any "; " and before what to do in parentheses at its end) is
// past the width; shortened in the middle, with an
// ellipsis, keeping the beginning, the cause and, when it fits, what
// follows; or, when that does not fit, the beginning and the cause,
// each followed by an ellipsis. A cause within parentheses (a mapping
// error's expression and value) or longer than leaves minHead of the
// beginning is cut at the end as any other.
func CutKeepingCause(s string, width int) string {
	r := []rune(s)
	if len(r) <= width-1 {
		return s + "…"
	}
	causeStart, clauseEnd := causeOf(s)
	if causeStart < 0 || clauseEnd <= width-1 {
		// No cause, one the end's cut keeps, or one within parentheses.
		return string(r[:width-1]) + "…"
	}
	cause, rest := r[causeStart:clauseEnd], r[clauseEnd:]
	head := func(n int) string { return strings.TrimRight(string(r[:n]), " ") }
	switch {
	case minHead+1+len(cause)+len(rest) <= width:
		return head(width-1-len(cause)-len(rest)) + "…" + string(cause) + string(rest)
	case minHead+2+len(cause) <= width:
		return head(width-2-len(cause)) + "…" + string(cause) + "…"
	}
	return string(r[:width-1]) + "…"
}

// causeOf is where, in runes, the innermost cause of message s starts
// (its last ": " before any "; " and any trailingAside), -1 when it has none or it is within
// parentheses, and where that first clause ends.
func causeOf(s string) (causeStart, clauseEnd int) {
	r := []rune(s)
	clauseEnd = len(r)
	if i := strings.Index(s, "; "); i >= 0 {
		clauseEnd = utf8.RuneCountInString(s[:i])
	}
	// What to do said in parentheses at the end ("HTTP 400: {…} (once
	// the cause is fixed, …; for HubSpot, …)") ends the clause too: its
	// own "; " is no end of the cause, which would take the advice in.
	if i := trailingAside(s); i >= 0 && utf8.RuneCountInString(s[:i]) < clauseEnd {
		clauseEnd = utf8.RuneCountInString(s[:i])
	}
	causeStart = -1
	if i := strings.LastIndex(string(r[:clauseEnd]), ": "); i >= 0 {
		causeStart = utf8.RuneCountInString(s[:i])
	}
	if causeStart >= 0 && strings.Count(string(r[:causeStart]), "(") > strings.Count(string(r[:causeStart]), ")") {
		causeStart = -1
	}
	return causeStart, clauseEnd
}

// trailingAside is the byte index of the " (" that opens the parentheses
// s ends with, at no depth of other parentheses, -1 when s does not end
// so.
func trailingAside(s string) int {
	if !strings.HasSuffix(s, ")") {
		return -1
	}
	depth := 0
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case ')':
			depth++
		case '(':
			depth--
			if depth == 0 {
				if i > 0 && s[i-1] == ' ' && strings.Count(s[:i], "(") == strings.Count(s[:i], ")") {
					return i - 1
				}
				return -1
			}
		}
	}
	return -1
}

// CutKeepingEnd is s when it has at most width characters, else s cut
// in the middle, with an ellipsis, to width characters: the end a
// message says what to do in is kept. That end is its innermost cause
// and all that follows (as CutKeepingCause finds it) when that leaves
// minHead of its beginning, else its last half.
func CutKeepingEnd(s string, width int) string {
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	tail := (width - 1) / 2
	if causeStart, _ := causeOf(s); causeStart >= 0 && minHead+1+len(r)-causeStart <= width {
		tail = len(r) - causeStart
	}
	return strings.TrimRight(string(r[:width-1-tail]), " ") + "…" + string(r[len(r)-tail:])
}
