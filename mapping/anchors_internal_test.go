package mapping

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// loadCounted parses src as a mapping file and returns its parser, whose
// expanded counts the keys the walk read and merges added.
func loadCounted(t *testing.T, src string) (*parser, *File, error) {
	t.Helper()
	p := &parser{file: "m.yaml", strict: true}
	m, err := p.load([]byte(src))
	return p, m, err
}

// aliasedTables is a lookup table of n entries and n-1 more names for it:
// aliases of the table, or (entriesAlias) tables of their own whose
// entries are an alias of its entries.
func aliasedTables(n int, entriesAlias bool) string {
	var b strings.Builder
	b.WriteString("name: tables\ninvoice:\n  memo: 'lookup(\"t1\", \"k1\")'\nlookups:\n  t0: &t\n    default: none\n    entries: &e\n")
	for i := range n {
		fmt.Fprintf(&b, "      k%d: v%d\n", i, i)
	}
	for i := 1; i < n; i++ {
		if entriesAlias {
			fmt.Fprintf(&b, "  t%d: {default: other, entries: *e}\n", i)
		} else {
			fmt.Fprintf(&b, "  t%d: *t\n", i)
		}
	}
	return b.String()
}

// A lookup table (or its entries) that many names alias is read once:
// the work and the allocations of loading grow with the file, twice the
// table and twice the names twice the work, where reading it again at
// each name made them four times (2,000 names of a 2,000-entry table
// took 2 s and 667 MB).
func TestAliasedLookupTablesAreReadOnce(t *testing.T) {
	for _, entriesAlias := range []bool{false, true} {
		work := func(n int) (expanded int, allocs float64) {
			src := aliasedTables(n, entriesAlias)
			p, m, err := loadCounted(t, src)
			if err != nil {
				t.Fatalf("entries alias %v, %d: %v", entriesAlias, n, err)
			}
			last := fmt.Sprintf("t%d", n-1)
			if v, err := m.lookups[last].get(last, fmt.Sprintf("k%d", n-1)); err != nil || v != fmt.Sprintf("v%d", n-1) {
				t.Errorf("entries alias %v: %s's last entry %q, %v", entriesAlias, last, v, err)
			}
			if v, _ := m.lookups[last].get(last, "nope"); entriesAlias && v != "other" || !entriesAlias && v != "none" {
				t.Errorf("entries alias %v: %s's default %q", entriesAlias, last, v)
			}
			if m.lookups[last] != m.lookups["t0"] && !entriesAlias {
				t.Errorf("%s, an alias of t0, is a table of its own: want t0's", last)
			}
			if p.expanded < n {
				t.Errorf("entries alias %v: %d keys read, fewer than the %d entries of t0", entriesAlias, p.expanded, n)
			}
			allocs = testing.AllocsPerRun(1, func() {
				if _, err := parse("m.yaml", []byte(src), true); err != nil {
					t.Fatal(err)
				}
			})
			return p.expanded, allocs
		}
		e1, a1 := work(400)
		e2, a2 := work(800)
		if float64(e2) > 2.2*float64(e1) {
			t.Errorf("entries alias %v: %d keys read for 400 names of 400 entries, %d for 800 of 800: want about twice, not four times", entriesAlias, e1, e2)
		}
		if a2 > 2.5*a1 {
			t.Errorf("entries alias %v: %.0f allocations for 400 names of 400 entries, %.0f for 800 of 800: want about twice, not four times", entriesAlias, a1, a2)
		}
	}
}

// A chain of merges, each mapping merging the one before and adding a
// key, holds the square of its length in keys (2,000 levels, 120 KB,
// took 7 s and 759 MB): past a multiple of the values the file writes,
// it is refused with one problem that says why, and the walk stops
// there, so that twice the chain is about twice the work. So is a chain
// written in a merge key's list, whose mappings are merged, not read,
// but each holds the keys of those before it.
func TestMergeChainsPastTheExpansionBudgetAreRefused(t *testing.T) {
	chains := map[string]func(n int) string{
		"each level a table": func(n int) string {
			var b strings.Builder
			b.WriteString("name: chain\nlookups:\n  t0: {default: x, entries: &e0 {k0: v}}\n")
			for i := 1; i < n; i++ {
				fmt.Fprintf(&b, "  t%d: {default: x, entries: &e%d {<<: *e%d, k%d: v}}\n", i, i, i-1, i)
			}
			return b.String()
		},
		"written in a merge list": func(n int) string {
			var b strings.Builder
			b.WriteString("name: chain\nlookups:\n  t:\n    default: x\n    entries:\n      <<:\n        - &e0 {k0: v}\n")
			for i := 1; i < n; i++ {
				fmt.Fprintf(&b, "        - &e%d {<<: *e%d, k%d: v}\n", i, i-1, i)
			}
			return b.String()
		},
	}
	for name, chain := range chains {
		work := func(n int) float64 {
			p, _, err := loadCounted(t, chain(n))
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) != 1 {
				t.Fatalf("%s, %d levels: %v, want one problem", name, n, err)
			}
			limit := max(expansionFloor, expansionRatio*p.nodes)
			if pr := le.Problems[0]; pr.Line == 0 || !strings.Contains(pr.Message, fmt.Sprintf("the file's aliases and merge keys expand it to more than %d keys, the most allowed for its %d values", limit, p.nodes)) {
				t.Errorf("%s, %d levels: %s", name, n, pr)
			}
			if p.expanded > limit+n {
				t.Errorf("%s, %d levels: %d keys expanded, past the budget of %d by more than one mapping's", name, n, p.expanded, limit)
			}
			return testing.AllocsPerRun(1, func() { _, _ = parse("m.yaml", []byte(chain(n)), true) })
		}
		a1, a2 := work(1000), work(2000)
		if a2 > 2.5*a1 {
			t.Errorf("%s: %.0f allocations for 1,000 levels, %.0f for 2,000: want about twice", name, a1, a2)
		}
	}

	// A short chain is within the budget, and its last table has every
	// level's key.
	var b strings.Builder
	b.WriteString("name: chain\ninvoice:\n  memo: 'lookup(\"t299\", \"k0\") + lookup(\"t299\", \"k299\")'\nlookups:\n  t0: {default: x, entries: &e0 {k0: a}}\n")
	for i := 1; i < 300; i++ {
		fmt.Fprintf(&b, "  t%d: {default: x, entries: &e%d {<<: *e%d, k%d: b}}\n", i, i, i-1, i)
	}
	_, m, err := loadCounted(t, b.String())
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.lookups["t299"].entries); got != 300 {
		t.Errorf("t299 has %d entries, want 300", got)
	}
}
