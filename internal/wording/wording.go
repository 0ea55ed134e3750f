// Package wording builds the short lists that dealsync's messages name
// things in: the names a config offers, the first few ids of many.
package wording

import (
	"fmt"
	"strconv"
	"strings"
)

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

// Quoted is items, each quoted as a Go string ("a", "b\n").
func Quoted(items []string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = strconv.Quote(s)
	}
	return out
}
