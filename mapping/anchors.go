package mapping

import (
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/dealsync/dealsync/internal/yamlnode"
)

// A mapping file is read as any YAML reader reads it: an alias (*name)
// stands for the value anchored &name, and a merge key (`<<: *name`,
// `<<: [*a, *b]`, or a mapping written after `<<:`) puts the keys of the
// mappings it names into the mapping it is in, where the keys written
// beside it win over the merged ones, and a mapping earlier in the list
// over a later one. The parser follows them as it walks the file
// (entries), so only what it reads is expanded, and each mapping's keys
// are worked out once however often it is merged (pairs); a lookup table,
// or its entries, used under several names is read once (parseLookups).
// What the walk reads is still more than the text when mappings merge
// mappings that merge others (a chain of n merges, each adding a key to
// the one before, holds n²/2 keys): it is counted (spend), and a file
// that expands past a multiple of the values it writes is refused, so a
// file costs at most a bounded multiple of its own values. A problem of a
// value reached through an alias or a merge is reported where the value
// is written, naming where it is used.

// The expansion budget: the keys the walk reads (entries) and that merges
// add to mappings (pairs) may be expansionRatio times the values the file
// writes (its YAML nodes, aliases not followed), and at least
// expansionFloor, which a small file with a few large merged blocks
// (lookup tables that extend a common one) stays well under.
const (
	expansionRatio = 5
	expansionFloor = 100_000
)

// spend counts n keys read or merged at the node at (at path, "" when
// the walk reached it through merges of merges), and says whether the
// file is still within its expansion budget; past it, the file is
// refused with one problem (tooLarge), and the walk reads no more.
func (p *parser) spend(n int, at *yaml.Node, path string) bool {
	if p.tooLarge != nil {
		return false
	}
	p.expanded += n
	limit := max(expansionFloor, expansionRatio*p.nodes)
	if p.expanded <= limit {
		return true
	}
	p.tooLarge = &Problem{File: p.file, Key: path, Line: at.Line, Column: at.Column, Message: fmt.Sprintf(
		"the file's aliases and merge keys expand it to more than %d keys, the most allowed for its %d values (%d times as many, at least %d): "+
			"a mapping that merges another holds all of its keys, so a chain of merges, each merging the one before, "+
			"grows as the square of its length; merge a block into each mapping that uses it rather than into one another, or write the keys out",
		limit, p.nodes, expansionRatio, expansionFloor)}
	return false
}

// use is where a value of the file reached through an alias or a merge
// key is used.
type use struct {
	// at is the alias (*name) that stands for the value, or the merge key
	// (<<) that merged it.
	at *yaml.Node
	// source is, for a merge, the merged mapping as the merge key's
	// value gives it: an alias, or a mapping written there.
	source *yaml.Node
}

// String words u for a message: `used as *ref at line 4`, `merged by
// <<: *line at line 20`.
func (u use) String() string {
	if u.at.Kind == yaml.AliasNode {
		return fmt.Sprintf("used as *%s at line %d", u.at.Value, u.at.Line)
	}
	if u.source != nil && u.source.Kind == yaml.AliasNode {
		return fmt.Sprintf("merged by <<: *%s at line %d", u.source.Value, u.at.Line)
	}
	return fmt.Sprintf("merged by << at line %d", u.at.Line)
}

// pair is a key of a mapping and its value; merged is set for a key that
// a merge key gave the mapping.
type pair struct {
	key, value *yaml.Node
	merged     *use
}

// isMerge says whether the key n is YAML's merge key, <<, unquoted.
func isMerge(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!merge"
}

// resolve is the node an alias stands for (n itself when it is none);
// when n is an alias, the value at path is remembered as used through it.
func (p *parser) resolve(n *yaml.Node, path string) *yaml.Node {
	if n == nil || n.Kind != yaml.AliasNode {
		return n
	}
	at := n
	n = yamlnode.Unalias(n)
	if p.via == nil {
		p.via = map[string]use{}
	}
	p.via[path] = use{at: at}
	return n
}

// pairs are the keys of the mapping n (at path) as YAML reads them: its
// own, in the file's order (duplicates kept: entries reports them), then
// those its merge keys give it that it does not have already. A merge
// key's value that is no mapping, nor an alias of one, nor a list of
// those, is reported.
func (p *parser) pairs(n *yaml.Node, path string) []pair {
	if out, ok := p.merged[n]; ok {
		return out
	}
	if p.tooLarge != nil {
		return nil
	}
	if p.merging[n] {
		// Not reached: checkSelfAliases refuses a value that merges
		// itself before the file is walked.
		return nil
	}
	if p.merging == nil {
		p.merging, p.merged = map[*yaml.Node]bool{}, map[*yaml.Node][]pair{}
	}
	p.merging[n] = true
	defer delete(p.merging, n)
	var out []pair
	have := map[string]bool{}
	var merges [][2]*yaml.Node // the merge keys and their values
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			merges = append(merges, [2]*yaml.Node{k, v})
			continue
		}
		out = append(out, pair{key: k, value: v})
		have[p.keyText(k)] = true
	}
	if len(merges) > 1 {
		for _, m := range merges[1:] {
			p.at(m[0], joinKey(path, "<<"), "duplicate key: a mapping has one merge key; merge several mappings with a list, <<: [*a, *b] (the first one's keys win)")
		}
		merges = merges[:1]
	}
	for _, m := range merges {
		key, val := m[0], m[1]
		sources := []*yaml.Node{val}
		if val.Kind == yaml.SequenceNode {
			sources = val.Content
		}
		for _, src := range sources {
			target := yamlnode.Unalias(src)
			if target.Kind != yaml.MappingNode {
				p.at(src, joinKey(path, "<<"), "a merge key takes a mapping, an alias of one (<<: *name) or a list of them (<<: [*a, *b]), not %s", yamlnode.KindWord(target))
				continue
			}
			u := &use{at: key, source: src}
			merged := p.pairs(target, path)
			// Named by its line only: path is the mapping the walk
			// reads, which may merge this one through others.
			if !p.spend(len(merged), key, "") {
				return nil
			}
			inSource := map[string]bool{}
			for _, kv := range merged {
				name := p.keyText(kv.key)
				if inSource[name] && kv.merged == nil {
					// Written twice in the merged mapping (its own keys
					// are all in merged): a duplicate key, as it is
					// written in a mapping the walk reads.
					p.duplicate(kv.key, joinKey(path, name))
				}
				inSource[name] = true
				if have[name] {
					continue
				}
				have[name] = true
				out = append(out, pair{key: kv.key, value: kv.value, merged: u})
			}
		}
	}
	p.merged[n] = out
	return out
}

// duplicate reports the key k, at key, as a key its mapping has twice:
// once, however often the mapping is read or merged.
func (p *parser) duplicate(k *yaml.Node, key string) {
	if p.duplicates[k] {
		return
	}
	if p.duplicates == nil {
		p.duplicates = map[*yaml.Node]bool{}
	}
	p.duplicates[k] = true
	p.at(k, key, "duplicate key")
}

// keyText is the text of a key as entries compares it: an alias's is
// that of the key it stands for.
func (p *parser) keyText(k *yaml.Node) string {
	return yamlnode.Unalias(k).Value
}

// checkSelfAliases reports each alias written inside the value of the
// anchor it names (`lines: &l {<<: *l}`): YAML cannot expand it, and
// every YAML reader refuses it ("anchor 'l' value contains itself").
// The file is walked once, aliases not followed; its nodes are counted
// (p.nodes, for the expansion budget).
func (p *parser) checkSelfAliases(root *yaml.Node) bool {
	open := map[*yaml.Node]bool{}
	found := false
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		p.nodes++
		if n.Kind == yaml.AliasNode {
			if open[n.Alias] {
				p.at(n, "", "*%s is written inside the value of &%s (line %d), which it stands for: YAML cannot expand a value that contains itself",
					n.Value, n.Value, n.Alias.Line)
				found = true
			}
			return
		}
		open[n] = true
		for _, c := range n.Content {
			walk(c)
		}
		delete(open, n)
	}
	walk(root)
	return found
}

// usedAt adds to each problem of a value reached through an alias or a
// merge key, which is reported where the value is written, where it is
// used (the innermost alias or merge on the way to its key).
func (p *parser) usedAt() {
	for i, pr := range p.problems {
		for key := pr.Key; key != ""; {
			if u, ok := p.via[key]; ok {
				if u.at.Line != pr.Line {
					p.problems[i].Message += " (" + u.String() + ")"
				}
				break
			}
			dot := strings.LastIndexByte(key, '.')
			if dot < 0 {
				break
			}
			key = key[:dot]
		}
	}
}
