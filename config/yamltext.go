package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/viper"
	yaml "go.yaml.in/yaml/v3"

	"github.com/dealsync/dealsync/internal/yamlindent"
)

// nonDecimalInt matches the integer forms YAML reads in another base.
var nonDecimalInt = regexp.MustCompile(`^[-+]?(0[0-9_]+|0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+)$`)

// walkNumbers reports each unquoted number of the YAML document under n
// whose value is not what its text says to a reader of decimals: YAML
// reads 0200 as the octal 128, 0x1F as 31, 0o17 as 15 and 0b11 as 3, and
// the settings keep only the number, so an account code 0200 would be sent
// as "128" and a stage id 0123 compared as "83". Written in quotes, the
// text is kept; written in decimals, the number is what it says.
func walkNumbers(n *yaml.Node, path string, ps *problems) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkNumbers(n.Content[i+1], joinKey(path, strings.ToLower(n.Content[i].Value)), ps)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			walkNumbers(c, fmt.Sprintf("%s[%d]", path, i), ps)
		}
	case yaml.ScalarNode:
		if n.Style != 0 || n.ShortTag() != "!!int" || !nonDecimalInt.MatchString(n.Value) {
			return
		}
		// The value is not quoted in the message: the key may hold a
		// secret.
		ps.add(path, "an unquoted number in another base (YAML reads a leading 0 as octal, 0x as hex, 0o as octal, 0b as binary) "+
			"is not the text written: write it in quotes for the text, or in decimals for the number")
	}
}

// checkKeyCase reports the keys of a mapping of the file (n, at path) that
// differ only in case (listen and Listen): the config reads keys whatever
// their case, so they are one key given twice, and YAML, which tells
// them apart, does not refuse them; which one was used was not said
// (intake.Listen: 0.0.0.0:… silently won over listen: 127.0.0.1:…).
func checkKeyCase(n *yaml.Node, path string, ps *problems) {
	switch n.Kind {
	case yaml.MappingNode:
		seen := map[string]string{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			lower := strings.ToLower(k)
			if first, ok := seen[lower]; ok && first != k {
				fix := "keep one"
				if strings.HasSuffix(path, "accounts") {
					// Two Salesforce orgs whose 15-character ids differ
					// only in case are two accounts.
					fix = "keep one, or, for two accounts whose ids differ only in case (Salesforce's 15-character org ids), write them in their 18-character form"
				}
				ps.add(joinKey(path, lower), fmt.Sprintf("is given twice, as %s and %s: keys are read whatever their case, so only one would be used; %s", first, k, fix))
			}
			seen[lower] = k
			checkKeyCase(n.Content[i+1], joinKey(path, lower), ps)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			checkKeyCase(c, fmt.Sprintf("%s[%d]", path, i), ps)
		}
	}
}

// walkKeylessFlowMaps reports each mapping written on one line in braces
// whose keys all lack a value (`secret: {whsec_…}`): YAML reads the text
// in braces as the keys of a mapping, not as the text, and the config
// then drops keys of no value, so the setting vanished ("is required"),
// and with it, when it was the last of its entry, an account of a CRM
// source. An empty {} is left alone: it is an empty mapping on purpose.
func walkKeylessFlowMaps(n *yaml.Node, path string, ps *problems) {
	switch n.Kind {
	case yaml.MappingNode:
		if n.Style&yaml.FlowStyle != 0 && len(n.Content) > 0 {
			keyless := true
			for i := 1; i < len(n.Content); i += 2 {
				// No text at all ({X}, {a: }): a null written as null or
				// ~ (JSON's null) is one on purpose.
				if v := n.Content[i]; v.Kind != yaml.ScalarNode || v.ShortTag() != "!!null" || v.Value != "" {
					keyless = false
					break
				}
			}
			if keyless {
				// The keys are not quoted in the message: they may be a
				// secret.
				ps.addFailed(path, "is written in braces, which YAML reads as a mapping of keys without values, not as text: write text starting with { in quotes, or leave the braces out")
				return
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkKeylessFlowMaps(n.Content[i+1], joinKey(path, strings.ToLower(n.Content[i].Value)), ps)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			walkKeylessFlowMaps(c, fmt.Sprintf("%s[%d]", path, i), ps)
		}
	}
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
	n := unalias(doc)
	for _, seg := range strings.Split(key, ".") {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		k, v := findKey(n, seg, "", &keyTrace{}, map[*yaml.Node]bool{})
		if k == nil {
			return nil
		}
		n = unalias(v)
	}
	return n
}
