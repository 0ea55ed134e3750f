package wording

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLists(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{ListOrNone(nil), "none"},
		{ListOrNone([]string{"a", "b"}), "a, b"},
		{SomeOf([]string{"a", "b"}, 2), "a, b"},
		{SomeOf([]string{"a", "b", "c", "d", "e"}, 2), "a, b and 3 more"},
		{SomeOf(nil, 3), ""},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// Durations read as they are written in the config, and back as they were.
func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                        "0s",
		500 * time.Millisecond:                   "500ms",
		1500 * time.Millisecond:                  "1.5s",
		5 * time.Second:                          "5s",
		time.Minute:                              "1m",
		90 * time.Second:                         "1m30s",
		10 * time.Minute:                         "10m",
		time.Hour:                                "1h",
		time.Hour + 30*time.Minute:               "1h30m",
		time.Hour + 30*time.Second:               "1h30s",
		time.Hour + 10*time.Minute + time.Second: "1h10m1s",
		720 * time.Hour:                          "720h",
		-time.Minute:                             "-1m",
		time.Minute + time.Millisecond:           "1m0.001s",
		100 * time.Microsecond:                   "100µs",
	} {
		got := Duration(d)
		if got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != d {
			t.Errorf("Duration(%v) = %q reads back as %v, %v", d, got, back, err)
		}
	}
}

func TestQuoted(t *testing.T) {
	if got := SomeOf(Quoted([]string{"a", "b\n", "c"}), 2); got != `"a", "b\n" and 1 more` {
		t.Errorf("got %s", got)
	}
}

func TestTypoOf(t *testing.T) {
	names := []string{"amount", "name", "round_to", "floor", "id"}
	for _, c := range []struct {
		word, want string
		ok         bool
	}{
		{"amout", "amount", true}, // a letter dropped
		{"nmae", "name", true},    // two swapped
		{"round_too", "round_to", true},
		{"xyzzy", "", false},
		{"nxyz", "", false}, // three letters changed
		{"ab", "", false},   // two of "id"'s two letters changed
		{"ROUND_TO", "round_to", true},
	} {
		if got, ok := TypoOf(c.word, names); got != c.want || ok != c.ok {
			t.Errorf("TypoOf(%q) = %q, %v; want %q, %v", c.word, got, ok, c.want, c.ok)
		}
	}
	if d := TypoDistance("ab", "ba"); d != 1 {
		t.Errorf("a swap is one edit, got %d", d)
	}
	// Two letters added or dropped at most: "amounts" still, and a name
	// two letters shorter.
	if got, ok := TypoOf("amounts", names); got != "amount" || !ok {
		t.Errorf("TypoOf(amounts) = %q, %v", got, ok)
	}
	if got, ok := TypoOf("roundto", []string{"round"}); got != "round" || !ok {
		t.Errorf("TypoOf(roundto) = %q, %v", got, ok)
	}
}

// A word far longer than every name (an intake's 404 of a URL as long as
// its header limit allows) is compared to none: no table of its length
// per name, which made each such request cost its length times the
// names' for a sender who knows no secret.
func TestTypoOfALongWordComparesNothing(t *testing.T) {
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf("connection-%02d", i)
	}
	word := strings.Repeat("x", 100_000)
	if allocs := testing.AllocsPerRun(3, func() {
		if _, ok := TypoOf(word, names); ok {
			t.Fatal("a typo of a long word")
		}
	}); allocs != 0 {
		t.Errorf("%v allocations: the word was compared to names it is too long to be a typo of", allocs)
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 50_000: "50,000", 5_000_000: "5,000,000", 123456789: "123,456,789", -1234: "-1,234"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParenDepth(t *testing.T) {
	for s, want := range map[string]int{
		"":                            0,
		"no parentheses":              0,
		"a (b) c (d)":                 1,
		"a (b (c)) d":                 2,
		"check x (or X (y)), and (z)": 2,
		"a) (b":                       1,
	} {
		if got := ParenDepth(s); got != want {
			t.Errorf("ParenDepth(%q) = %d, want %d", s, got, want)
		}
	}
}
