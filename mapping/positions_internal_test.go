package mapping

import (
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// flowPositions gives no positions, rather than wrong ones, when the
// file's text does not read as the node's value.
func TestFlowPositionsRefuseTextTheyCannotFollow(t *testing.T) {
	lines := []string{`memo: "deal.name"`}
	n := &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: "deal.name", Line: 1, Column: 7}
	if at := flowPositions(lines, n); len(at) != len("deal.name")+1 || at[0] != (filePos{1, 8}) || at[9] != (filePos{1, 17}) {
		t.Fatalf("positions %v", at)
	}
	for name, n := range map[string]*yaml.Node{
		"another value":  {Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: "deal.nam", Line: 1, Column: 7},
		"another column": {Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: "deal.name", Line: 1, Column: 8},
		"another style":  {Kind: yaml.ScalarNode, Style: yaml.SingleQuotedStyle, Value: "deal.name", Line: 1, Column: 7},
		"past the end":   {Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: "deal.name", Line: 2, Column: 1},
	} {
		if at := flowPositions(lines, n); at != nil {
			t.Errorf("%s: positions %v, want none", name, at)
		}
	}
}
