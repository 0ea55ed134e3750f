package config

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/viper"
	yaml "go.yaml.in/yaml/v3"

	"github.com/dealsync/dealsync/internal/yamlindent"
	"github.com/dealsync/dealsync/internal/yamlnode"
)

// nonDecimalInt matches the integer forms YAML reads in another base.
var nonDecimalInt = regexp.MustCompile(`^[-+]?(0[0-9_]+|0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+)$`)

// walkNumbers reports each unquoted number of the file's document doc,
// as the config reads it (walkRead), whose value is not what its text
// says to a reader of decimals: YAML reads 0200 as the octal 128, 0x1F as
// 31, 0o17 as 15 and 0b11 as 3, and the settings keep only the number, so
// an account code 0200 would be sent as "128" and a stage id 0123
// compared as "83". Written in quotes, the text is kept; written in
// decimals, the number is what it says.
func walkNumbers(doc *yaml.Node, ps *problems) {
	walkRead(doc, func(n *yaml.Node, path string) bool {
		if n.Kind != yaml.ScalarNode || n.Style != 0 || n.ShortTag() != "!!int" || !nonDecimalInt.MatchString(n.Value) {
			return true
		}
		// The value is not quoted in the message: the key may hold a
		// secret.
		ps.add(path, "an unquoted number in another base (YAML reads a leading 0 as octal, 0x as hex, 0o as octal, 0b as binary) "+
			"is not the text written: write it in quotes for the text, or in decimals for the number")
		return true
	})
}

// checkKeyCase reports the keys of each mapping of the file's document
// doc, as the config reads it (walkRead: with the keys its merge key
// gives it), that differ only in case (listen and Listen): the config
// reads keys whatever their case, so they are one key given twice, and
// YAML, which tells them apart, does not refuse them; which one was used
// was not said (intake.Listen: 0.0.0.0:… silently won over listen:
// 127.0.0.1:…, and a merged Linger: 15m over linger: 1m written beside
// <<). The keys are named in the order the file writes them.
func checkKeyCase(doc *yaml.Node, ps *problems) {
	walkRead(doc, func(n *yaml.Node, path string) bool {
		if n.Kind != yaml.MappingNode {
			return true
		}
		keys := make([]*yaml.Node, 0, len(n.Content)/2)
		for _, kv := range mergedPairs(n) {
			keys = append(keys, kv[0])
		}
		own := map[*yaml.Node]bool{}
		for i := 0; i < len(n.Content); i += 2 {
			own[yamlnode.Unalias(n.Content[i])] = true
		}
		// A merged key is named with its line: it is written elsewhere.
		word := func(k *yaml.Node) string {
			if own[k] {
				return k.Value
			}
			return fmt.Sprintf("%s (merged, line %d)", k.Value, k.Line)
		}
		slices.SortStableFunc(keys, func(a, b *yaml.Node) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		seen := map[string]*yaml.Node{}
		for _, key := range keys {
			k := key.Value
			lower := strings.ToLower(k)
			if path == "" && extensionKey(k) {
				continue
			}
			if first, ok := seen[lower]; ok && first.Value != k {
				fix := "keep one"
				if strings.HasSuffix(path, "accounts") {
					// Two Salesforce orgs whose 15-character ids differ
					// only in case are two accounts.
					fix = "keep one, or, for two accounts whose ids differ only in case (Salesforce's 15-character org ids), write them in their 18-character form"
				}
				ps.add(joinKey(path, lower), fmt.Sprintf("is given twice, as %s and %s: keys are read whatever their case, so only one would be used; %s", word(first), word(key), fix))
			}
			seen[lower] = key
		}
		return true
	})
}

// walkKeylessFlowMaps reports each mapping written on one line in braces
// whose keys all lack a value (`secret: {whsec_…}`), in the file's
// document doc as the config reads it (walkRead): YAML reads the text in
// braces as the keys of a mapping, not as the text, and the config then
// drops keys of no value, so the setting vanished ("is required"), and
// with it, when it was the last of its entry, an account of a CRM source.
// An empty {} is left alone: it is an empty mapping on purpose.
func walkKeylessFlowMaps(doc *yaml.Node, ps *problems) {
	walkRead(doc, func(n *yaml.Node, path string) bool {
		if n.Kind != yaml.MappingNode || n.Style&yaml.FlowStyle == 0 || len(n.Content) == 0 {
			return true
		}
		for i := 1; i < len(n.Content); i += 2 {
			// No text at all ({X}, {a: }): a null written as null or
			// ~ (JSON's null) is one on purpose.
			if v := n.Content[i]; v.Kind != yaml.ScalarNode || v.ShortTag() != "!!null" || v.Value != "" {
				return true
			}
		}
		// The keys are not quoted in the message: they may be a secret.
		ps.addFailed(path, "is written in braces, which YAML reads as a mapping of keys without values, not as text: write text starting with { in quotes, or leave the braces out")
		return false
	})
}

// misindented is err, viper's error reading the YAML file at path, led
// by the key indented unlike its siblings when one is, with YAML's own
// message after it: YAML names another line (where the enclosing mapping
// starts, for "did not find expected key"), the key's is the one to mend.
// Without such a key, it is err.
func misindented(path string, err error) error {
	var pe viper.ConfigParseError
	if !errors.As(err, &pe) {
		return err
	}
	data, rerr := os.ReadFile(path)
	if rerr != nil {
		return err
	}
	if strings.Contains(err.Error(), mergeWantsMap) {
		return badMergeValue(data, err)
	}
	m := yamlErrorLine.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	at, _ := strconv.Atoi(m[1])
	p, ok := yamlindent.At(strings.Split(string(data), "\n"), err.Error(), at)
	if !ok {
		return err
	}
	yamlMsg := err.Error()
	if inner := errors.Unwrap(pe); inner != nil {
		yamlMsg = inner.Error()
	}
	return &misindentedError{msg: fmt.Sprintf("line %d: %s (YAML: %s)", p.Line, p.Message, strings.TrimPrefix(yamlMsg, "yaml: ")), err: err}
}

// mergeWantsMap is YAML's error for a merge key whose value is no
// mapping, which names no line.
const mergeWantsMap = "map merge requires map or sequence of maps as the value"

// badMergeValue is err, YAML's mergeWantsMap reading the file data, led
// by the line and the path of the first merge key whose value is no
// mapping, nor an alias of one, nor a list of those (`<<: *name` where
// &name is a single value); err when the file has none.
func badMergeValue(data []byte, err error) error {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return err
	}
	isMap := func(n *yaml.Node) bool { return yamlnode.Unalias(n).Kind == yaml.MappingNode }
	var found *misindentedError
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		if found != nil {
			return
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				key := joinKey(path, k.Value)
				if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
					bad := v
					if v.Kind == yaml.SequenceNode {
						bad = nil
						for _, c := range v.Content {
							if !isMap(c) {
								bad = c
								break
							}
						}
					} else if isMap(v) {
						bad = nil
					}
					if bad != nil {
						found = &misindentedError{msg: fmt.Sprintf("line %d: %s: a merge key takes a mapping, an alias of one (<<: *name) or a list of them (<<: [*a, *b]), not %s (YAML: %s)",
							bad.Line, key, yamlnode.KindWord(yamlnode.Unalias(bad)), mergeWantsMap), err: err}
						return
					}
				}
				walk(v, key)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(doc.Content[0], "")
	if found == nil {
		return err
	}
	return found
}

// misindentedError is viper's error reading a YAML file (err) told as msg,
// which names the misindented key first.
type misindentedError struct {
	msg string
	err error
}

func (e *misindentedError) Error() string { return e.msg }
func (e *misindentedError) Unwrap() error { return e.err }

// yamlErrorLine is the line a YAML error names ("yaml: line 10: …").
var yamlErrorLine = regexp.MustCompile(`line (\d+):`)

// scalarLists moves the problems of a list's items to the list's own key
// when the file gives that list as one value (`legacy_signatures: v3`, not
// `[v3]`): the config reads such a value as the list of its
// comma-separated parts (as it reads a list from the environment), so its
// problems were reported at items the file does not have
// (legacy_signatures[0]). The item's problem leads, and the list's form
// is said after it: one value is a right way to give a list of one. A
// list the environment sets is left alone (the file's value is not the
// one read), and so is a problem of the file an item names
// (problems.ofFile: mappings.files: bad.yaml, which cannot be read), whose
// message names that file.
func scalarLists(doc *yaml.Node, ps *problems) {
	for i, p := range ps.list {
		if ps.ofFile[i] {
			continue
		}
		open := strings.IndexByte(p.Key, '[')
		if open <= 0 {
			continue
		}
		list, rest, _ := strings.Cut(p.Key[open+1:], "]")
		if rest != "" {
			continue // a key under an item: not a list of plain values
		}
		key := p.Key[:open]
		n := yamlAt(doc, key)
		if n == nil || n.Kind != yaml.ScalarNode || envSetting(key) != "" {
			continue
		}
		index, err := strconv.Atoi(list)
		if err != nil {
			continue
		}
		// The value is not quoted: the key may hold a secret.
		ps.list[i].Key = key
		if !strings.Contains(n.Value, ",") {
			ps.list[i].Message = p.Message + " (written as one value, it is read as a list of one)"
			continue
		}
		ps.list[i].Message = fmt.Sprintf("part %d %s (written as one value, it is read as the list of its comma-separated parts)",
			writtenPart(n.Value, index), p.Message)
	}
}

// writtenPart is the place (from 1) among the comma-separated parts of
// value, as written, of the list's item index: the list leaves the empty
// parts out (the item 1 of "v1,,v3" is its part 3).
func writtenPart(value string, index int) int {
	for i, part := range strings.Split(value, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		if index == 0 {
			return i + 1
		}
		index--
	}
	return index + 1 // not reached: the list is read from value
}

// yamlAt is the node of the file's document doc at key (a dotted path, its
// segments in any case, as the config reads them), through aliases and
// merge keys as YAML reads them (findKey), nil when the file does not
// have it.
func yamlAt(doc *yaml.Node, key string) *yaml.Node {
	n := yamlnode.Unalias(doc)
	for _, seg := range strings.Split(key, ".") {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		k, v := findKey(n, seg, "", &keyTrace{}, map[*yaml.Node]bool{})
		if k == nil {
			return nil
		}
		n = yamlnode.Unalias(v)
	}
	return n
}

// checkDottedKeys reports each key of the file with a dot in it
// (accounts: {"https://acme.my.salesforce.com": …}): the config reads
// a.b as a key a holding b, so such a key was reported in pieces, at
// paths the file does not have (accounts.https://acme.my: unknown key).
// It is named whole, accounts["https://acme.my.salesforce.com"], with what
// an accounts: key of the source is, and the paths of its pieces are
// returned, for their problems to be dropped.
func checkDottedKeys(doc *yaml.Node, ps *problems) (pieces []string) {
	sourceType := map[string]string{} // of a path of accounts: its source's type
	walkRead(doc, func(n *yaml.Node, path string) bool {
		if n.Kind != yaml.MappingNode {
			return true
		}
		for _, kv := range mergedPairs(n) {
			if strings.EqualFold(kv[0].Value, "type") && kv[1].Kind == yaml.ScalarNode {
				sourceType[joinKey(path, "accounts")] = strings.ToLower(kv[1].Value)
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := yamlnode.Unalias(n.Content[i])
			if k.Kind != yaml.ScalarNode || !strings.Contains(k.Value, ".") {
				continue
			}
			parts := strings.Split(k.Value, ".")
			msg := fmt.Sprintf("a key with a dot is read as keys within keys (%s); written at line %d", strings.Join(parts, ", then "), k.Line)
			if strings.HasSuffix(path, ".accounts") {
				msg += "; " + accountsKeyHint(sourceType[path])
			}
			ps.add(path+"["+strconv.Quote(k.Value)+"]", msg)
			pieces = append(pieces, joinKey(path, strings.ToLower(parts[0])))
		}
		return true
	})
	return pieces
}

// accountsKeyHint says what the keys of accounts: are for a source of type t.
func accountsKeyHint(t string) string {
	switch t {
	case "salesforce":
		return "accounts: is keyed by Salesforce org id (18 characters, 00D…, Setup > Company Information), not by URL: the My Domain URL goes in the account's instance_url"
	case "hubspot":
		return "accounts: is keyed by HubSpot portal (hub) id, quoted (\"62515\")"
	case "pipedrive":
		return "accounts: is keyed by Pipedrive company id"
	}
	return "accounts: is keyed by the CRM's account id"
}
