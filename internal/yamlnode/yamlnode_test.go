package yamlnode

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

// An alias is followed to its anchor's value, and each kind of value is
// named as the checks' messages name it.
func TestUnaliasAndKindWord(t *testing.T) {
	var doc yaml.Node
	src := "a: &x [1, 2]\nb: *x\nc: {k: v}\nd:\ne: text\n"
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Content[0]
	value := func(key string) *yaml.Node {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i+1]
			}
		}
		t.Fatalf("no key %s", key)
		return nil
	}
	if b := value("b"); b.Kind != yaml.AliasNode || Unalias(b) != value("a") {
		t.Errorf("Unalias(*x) = %v, want the anchored list", Unalias(b))
	}
	if c := value("c"); Unalias(c) != c {
		t.Error("Unalias of a mapping is not the mapping itself")
	}
	for key, want := range map[string]string{"a": "a list", "b": "a list", "c": "a mapping", "d": "an empty value", "e": "a single value"} {
		if got := KindWord(Unalias(value(key))); got != want {
			t.Errorf("KindWord(%s) = %q, want %q", key, got, want)
		}
	}
}
