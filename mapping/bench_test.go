package mapping_test

import (
	"testing"

	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/mapping/dealfile"
)

// BenchmarkMapDeal maps the two-line German deal of the shipped example
// (lookups, decimal arithmetic, per-line expressions).
func BenchmarkMapDeal(b *testing.B) {
	set, err := mapping.Load(mapping.Sources{Files: []string{"../examples/mappings/generic-standard.yaml"}})
	if err != nil {
		b.Fatal(err)
	}
	m, _ := set.Get("generic-standard")
	ev, err := dealfile.Read("../examples/mappings/generic-standard/won-de-two-lines.deal.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Map(ev); err != nil {
			b.Fatal(err)
		}
	}
}
