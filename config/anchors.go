package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/dealsync/dealsync/internal/yamlnode"
)

// The config file is YAML: its anchors (&name), aliases (*name) and merge
// keys (<<: *name) are read as any YAML reader reads them. A block that
// only holds anchors goes under a top-level key that starts with x- (the
// docker-compose convention, x-defaults: &defaults), which the config
// ignores (checkKeys), and that the checks of the file's text walk only
// where it is used (walkRead). A problem of a value of an anchored block
// (a key that no setting has, an invalid value) is reported once, where
// it is written (anchoredProblems), not once at each place the block is
// used, at paths the file does not have.

// extensionKey says whether the top-level key k is an extension field,
// x-…, which holds YAML anchors and is otherwise ignored.
func extensionKey(k string) bool {
	return strings.HasPrefix(strings.ToLower(k), "x-")
}

// hintExtensionKeys adds to the problem of each unknown top-level key
// whose value holds an anchor, and that is no typo of a section, that
// such a block goes under an x- key: it was most likely written to hold
// anchors for other places to use.
func hintExtensionKeys(doc *yaml.Node, ps *problems) {
	root := yamlnode.Unalias(doc)
	if root.Kind != yaml.MappingNode {
		return
	}
	for i, p := range ps.list {
		if strings.ContainsAny(p.Key, ".[") || !strings.HasPrefix(p.Message, "unknown key") {
			continue
		}
		if strings.HasPrefix(p.Message, "unknown key (did you mean") {
			// A misspelt section (tagets: for targets:): to be mended,
			// not hidden under x-.
			continue
		}
		for j := 0; j+1 < len(root.Content); j += 2 {
			k := root.Content[j]
			if strings.EqualFold(k.Value, p.Key) && hasAnchor(root.Content[j+1]) {
				ps.list[i].Message += fmt.Sprintf("; a top-level block that holds YAML anchors goes under a key that starts with x- (x-%s): the config ignores those keys", k.Value)
				break
			}
		}
	}
}

// hasAnchor says whether n, or a value within it, is anchored (aliases
// not followed).
func hasAnchor(n *yaml.Node) bool {
	if n.Anchor != "" {
		return true
	}
	if n.Kind == yaml.AliasNode {
		return false
	}
	for _, c := range n.Content {
		if hasAnchor(c) {
			return true
		}
	}
	return false
}

// mergedPairs are the keys and values of the mapping n (an alias: the
// mapping it stands for) as YAML reads it: those written in it, in order,
// then those of the mappings its merge key names, the first one's first
// (their own before those they merge), each unless a key of the same text
// came before. A merge key whose value is no mapping (YAML refused the
// file) merges nothing.
func mergedPairs(n *yaml.Node) [][2]*yaml.Node {
	var out [][2]*yaml.Node
	have := map[string]bool{}
	open := map[*yaml.Node]bool{}
	var add func(n *yaml.Node)
	add = func(n *yaml.Node) {
		n = yamlnode.Unalias(n)
		if n.Kind != yaml.MappingNode || open[n] {
			return // open: a mapping that merges itself, which YAML refuses
		}
		open[n] = true
		defer delete(open, n)
		var merge *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := yamlnode.Unalias(n.Content[i])
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				merge = n.Content[i+1]
				continue
			}
			if have[k.Value] {
				continue
			}
			have[k.Value] = true
			out = append(out, [2]*yaml.Node{k, n.Content[i+1]})
		}
		if merge == nil {
			return
		}
		if merge.Kind == yaml.SequenceNode {
			for _, src := range merge.Content {
				add(src)
			}
			return
		}
		add(merge)
	}
	add(n)
	return out
}

// walkRead walks the file's document doc as the config reads it: aliases
// followed, the mappings that merge keys name merged (mergedPairs), the
// top-level x- keys, which the config ignores, left out (a block there is
// walked where it is used, and not at all when nothing uses it). visit
// is given each value and its path as the config reads it (the keys
// lower-cased, a list's item as [i]); it returns false to walk nothing
// under the value. A value used at several paths is visited at each: its
// problems, reported at each, are told once where the value is written
// (anchoredProblems).
func walkRead(doc *yaml.Node, visit func(n *yaml.Node, path string) bool) {
	open := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		n = yamlnode.Unalias(n)
		if open[n] || !visit(n, path) {
			return // open: a value that contains itself, which YAML refuses
		}
		open[n] = true
		defer delete(open, n)
		switch n.Kind {
		case yaml.MappingNode:
			for _, kv := range mergedPairs(n) {
				if path == "" && extensionKey(kv[0].Value) {
					continue
				}
				walk(kv[1], joinKey(path, strings.ToLower(kv[0].Value)))
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(doc, "")
}

// keyTrace is where a key path of the settings is written in the file.
type keyTrace struct {
	key *yaml.Node // the key as written
	// indirect: the path goes through an alias or a merge key.
	indirect bool
	// anchor is the innermost anchored value on the way ("" when none but
	// a merged mapping without an anchor), at is the config path where it
	// is used, and merged says that it is used by a merge key (at is then
	// the mapping the merge key is in).
	anchor string
	at     string
	merged bool
}

// traceKey follows key (a config path: dotted, in the settings' lower
// case, [i] for a list's item) through the file's document doc, through
// aliases and merge keys as YAML reads them (the keys written in a
// mapping first, then those of the mappings it merges, in order), to the
// key as written; ok is false when the file does not have it (the
// environment set it).
func traceKey(doc *yaml.Node, key string) (t keyTrace, ok bool) {
	n := doc
	enter := func(v *yaml.Node, path string, merged bool) *yaml.Node {
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			t.indirect = true
			v = v.Alias
			t.anchor, t.at, t.merged = v.Anchor, path, merged
			return v
		}
		if v.Anchor != "" || merged {
			t.anchor, t.at, t.merged = v.Anchor, path, merged
		}
		return v
	}
	n = enter(n, "", false)
	segs := keySegments(key)
	path := ""
	for i, seg := range segs {
		if idx, isIndex := strings.CutPrefix(seg, "["); isIndex {
			at, err := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			if n.Kind != yaml.SequenceNode || err != nil || at < 0 || at >= len(n.Content) {
				return t, false
			}
			path += seg
			n = enter(n.Content[at], path, false)
			continue
		}
		if n.Kind != yaml.MappingNode {
			return t, false
		}
		k, v := findKey(n, seg, path, &t, map[*yaml.Node]bool{})
		if k == nil {
			return t, false
		}
		path = joinKey(path, seg)
		if i == len(segs)-1 {
			t.key = k
			return t, true
		}
		n = enter(v, path, false)
	}
	return t, false
}

// findKey is the key seg (in any case) of the mapping n at path, and its
// value: written in n, or else in the mappings n merges, the first one
// first; t records a merged mapping it is found in.
func findKey(n *yaml.Node, seg, path string, t *keyTrace, seen map[*yaml.Node]bool) (key, value *yaml.Node) {
	if seen[n] {
		return nil, nil // a mapping that merges itself: YAML refused the file
	}
	seen[n] = true
	var merge *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merge = n.Content[i+1]
			continue
		}
		if strings.EqualFold(k.Value, seg) {
			return k, n.Content[i+1]
		}
	}
	if merge == nil {
		return nil, nil
	}
	sources := []*yaml.Node{merge}
	if merge.Kind == yaml.SequenceNode {
		sources = merge.Content
	}
	for _, src := range sources {
		m := yamlnode.Unalias(src)
		if m.Kind != yaml.MappingNode {
			continue
		}
		before := *t
		t.indirect, t.anchor, t.at, t.merged = true, m.Anchor, path, true
		if k, v := findKey(m, seg, path, t, seen); k != nil {
			return k, v
		}
		*t = before
	}
	return nil, nil
}

// keySegments splits a config path into its keys and list indexes:
// a.b[0].c is a, b, [0], c.
func keySegments(key string) []string {
	var out []string
	for _, part := range strings.Split(key, ".") {
		for {
			open := strings.IndexByte(part, '[')
			if open < 0 {
				break
			}
			if open > 0 {
				out = append(out, part[:open])
			}
			end := strings.IndexByte(part[open:], ']')
			if end < 0 {
				break
			}
			out = append(out, part[open:open+end+1])
			part = part[open+end+1:]
		}
		if part != "" {
			out = append(out, part)
		}
	}
	return out
}

// writtenPaths are the paths of the file's keys as written (their case
// kept, a merge key as <<, a list's item as [i]), aliases not followed.
func writtenPaths(doc *yaml.Node) map[*yaml.Node]string {
	out := map[*yaml.Node]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := joinKey(path, n.Content[i].Value)
				out[n.Content[i]] = k
				walk(n.Content[i+1], k)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(yamlnode.Unalias(doc), "")
	return out
}

// anchoredProblems tells a problem of a value in an anchored block that
// aliases or merge keys use once, where the file writes it: it was
// reported at each path the block is used at (twice for a typo in a block
// two connections merge), none of which the file has, and without a line.
// A problem is grouped by the key as written (traceKey) and its message;
// the one problem names the key as written (its path in the file, a merge
// key as <<), its line, the anchor and where it is used. Left where they
// are: a problem of a value written where it is used, and used there
// only; one of a value the environment sets (the file's is not the one
// read); one about the file a list's item names (problems.ofFile). uses
// are, by the key of each problem told so, the paths it was reported at
// (for TemporalOnly, which leaves some sections unchecked).
func anchoredProblems(doc *yaml.Node, ps *problems) (uses map[string][]string) {
	type group struct {
		key      *yaml.Node
		suffix   string // a list's items after the key ([0]), as reported
		msg      string
		traces   []keyTrace
		at       []int // the problems', in ps.list
		indirect bool
	}
	var groups []*group
	byKey := map[[3]any]*group{}
	for i, p := range ps.list {
		if ps.ofFile[i] || envSetting(p.Key) != "" {
			continue
		}
		// A list's item (won_stages[0]) is told under its list's key.
		base, suffix := p.Key, ""
		for strings.HasSuffix(base, "]") {
			open := strings.LastIndexByte(base, '[')
			if open <= 0 {
				break
			}
			base, suffix = base[:open], base[open:]+suffix
		}
		if envSetting(base) != "" {
			continue
		}
		t, ok := traceKey(doc, base)
		if !ok {
			continue
		}
		id := [3]any{t.key, suffix, p.Message}
		g := byKey[id]
		if g == nil {
			g = &group{key: t.key, suffix: suffix, msg: p.Message}
			byKey[id], groups = g, append(groups, g)
		}
		g.traces, g.at = append(g.traces, t), append(g.at, i)
		g.indirect = g.indirect || t.indirect
	}
	written := writtenPaths(doc)
	drop := map[int]bool{}
	var add []Problem
	for _, g := range groups {
		if !g.indirect {
			continue // written where it was reported, and used there only
		}
		var keys, at []string
		anchor, merged := "", true
		for i, t := range g.traces {
			keys = append(keys, ps.list[g.at[i]].Key)
			drop[g.at[i]] = true
			if t.anchor != "" {
				anchor = t.anchor
			}
			merged = merged && t.merged
			if t.at != "" && !slices.Contains(at, t.at) {
				at = append(at, t.at)
			}
		}
		slices.Sort(at)
		path, ok := written[g.key]
		if ok {
			path += g.suffix
		} else {
			path = keys[0]
		}
		where := fmt.Sprintf("written at line %d", g.key.Line)
		switch {
		case anchor != "" && merged:
			where += fmt.Sprintf(", in the block anchored &%s, which %s %s", anchor, joinAnd(at), mergeVerb(len(at)))
		case anchor != "":
			where += fmt.Sprintf(", in the value anchored &%s, used at %s", anchor, joinAnd(at))
		default:
			where += fmt.Sprintf(", in the block merged into %s", joinAnd(at))
		}
		add = append(add, Problem{Key: path, Message: g.msg + "; " + where})
		if uses == nil {
			uses = map[string][]string{}
		}
		uses[path] = append(uses[path], keys...)
	}
	if len(add) == 0 {
		return nil
	}
	list, ofFile := ps.list, ps.ofFile
	ps.list, ps.ofFile = nil, nil
	for i, p := range list {
		if drop[i] {
			continue
		}
		if ofFile[i] {
			ps.addOfFile(p)
		} else {
			ps.addProblem(p)
		}
	}
	for _, p := range add {
		ps.addProblem(p)
	}
	return uses
}

// mergeVerb is "merges" or "merge", for n mappings that merge a block.
func mergeVerb(n int) string {
	if n == 1 {
		return "merges"
	}
	return "merge"
}

// joinAnd words a list: a, b and c.
func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
