// Package wording builds the short lists that dealsync's messages name
// things in (the names a config offers, the first few ids of many), writes
// durations as a config gives them, and finds the name a misspelt one was
// meant to be.
package wording

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Duration is d as one writes it in the config (time.ParseDuration reads
// it back): Go's form without its zero units, 1m for 1m0s, 1h for 1h0m0s,
// 1h30s for 1h0m30s; 1m30s, 500ms and 0s as they are.
func Duration(d time.Duration) string {
	s := strings.Replace(d.String(), "h0m", "h", 1)
	if strings.HasSuffix(s, "m0s") || strings.HasSuffix(s, "h0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	return s
}

// ParenDepth is how deep the parentheses of s nest: 0 without any, 1
// for "a (b) c (d)", 2 for "a (b (c))". A message keeps it at 1: the
// variable advice names beside a config key is in parentheses of its own
// ("targets.x.realm_id (or DEALSYNC_TARGETS_X_REALM_ID)").
func ParenDepth(s string) int {
	depth, deepest := 0, 0
	for _, r := range s {
		switch r {
		case '(':
			depth++
			deepest = max(deepest, depth)
		case ')':
			depth = max(depth-1, 0)
		}
	}
	return deepest
}

// ListOrNone joins names with commas, or says "none".
func ListOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// SomeOf joins the first shown of items with commas, saying how many more
// there are: "a, b and 3 more".
func SomeOf(items []string, shown int) string {
	if len(items) <= shown {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:shown], ", "), len(items)-shown)
}

// Count writes n with its thousands grouped by commas, as a message
// says a large number: 5,000,000.
func Count(n int) string {
	return english.Sprintf("%d", n)
}

// english prints numbers as English writes them (golang.org/x/text/message).
var english = message.NewPrinter(language.English)

// Quoted is items, each quoted as a Go string ("a", "b\n").
func Quoted(items []string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = strconv.Quote(s)
	}
	return out
}

// TypoDistance is the optimal string alignment distance of a and b: the
// letters to add, drop, change or swap with their neighbour to turn one
// into the other.
func TypoDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2, prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// TypoOf is the one of names that word is a typo of (one or two letters
// added, dropped, changed or swapped, and fewer than half of the name's;
// the case of letters aside), the first of the closest; false when it is
// none's. A name whose length differs from word's by more than the
// distance it would need is not compared: a word of any length (an
// intake's 404 logs a URL's, up to its header limit) costs no more than
// the names' lengths allow.
func TypoOf(word string, names []string) (string, bool) {
	best, bestDist := "", 3
	word = strings.ToLower(word)
	runes := utf8.RuneCountInString(word)
	for _, n := range names {
		lower := strings.ToLower(n)
		if diff := runes - utf8.RuneCountInString(lower); diff >= bestDist || -diff >= bestDist {
			continue // at least diff letters apart
		}
		if d := TypoDistance(word, lower); d < bestDist && d < len(n)/2+1 {
			best, bestDist = n, d
		}
	}
	return best, best != ""
}

// ShellWord is s as one word of a POSIX shell command: as it is when it
// holds only characters no shell reads specially, else in single quotes.
func ShellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-:@+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
