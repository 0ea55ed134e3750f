package mapping

import (
	"fmt"
	"strings"
)

// floatBuiltinInstead: what to write instead of expr's built-ins of
// floats that a mapping may mean for a decimal.
var floatBuiltinInstead = map[string]string{
	"round": "write round_to(x, places) or round_currency(x, currency)",
	"ceil":  "there is no decimal ceil; round_to(x, places) rounds half away from zero",
	"floor": "there is no decimal floor; round_to(x, places) rounds half away from zero",
	"abs":   "write x < 0 ? -x : x",
}

// builtinArityHint is the hint for expr's "invalid number of arguments"
// of a call of one of floatBuiltinInstead's built-ins, whose name is at
// runes from..to of src (as expr's error locates it): round(x, 2) is
// meant as round_to(x, 2), which expr's message does not say. "" for
// other messages and functions.
func builtinArityHint(msg, src string, from, to int) string {
	if !strings.HasPrefix(msg, "invalid number of arguments") {
		return ""
	}
	runes := []rune(src)
	if from < 0 || from >= to || to > len(runes) {
		return ""
	}
	fn := string(runes[from:to])
	instead, ok := floatBuiltinInstead[fn]
	if !ok {
		return ""
	}
	return fmt.Sprintf("; expr's %s() takes one float, and money is exact decimals in a mapping: %s", fn, instead)
}
