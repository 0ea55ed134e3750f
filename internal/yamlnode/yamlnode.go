// Package yamlnode says what a YAML node (go.yaml.in/yaml/v3) stands for,
// for the config's and the mapping files' checks and messages: the node
// an alias (*name) stands for, and the kind of value a node is in words.
package yamlnode

import "go.yaml.in/yaml/v3"

// Unalias follows a YAML alias (*name) to the node it stands for; any
// other node is itself. (An anchor is never put on an alias: one step,
// bounded anyway.)
func Unalias(n *yaml.Node) *yaml.Node {
	for i := 0; i < 8 && n != nil && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

// KindWord names the kind of YAML value n is, for a message: "a list",
// "a mapping", "an empty value" or "a single value".
func KindWord(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	if n.ShortTag() == "!!null" {
		return "an empty value"
	}
	return "a single value"
}
