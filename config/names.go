package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/viper"
	yaml "go.yaml.in/yaml/v3"

	"github.com/dealsync/dealsync/internal/yamlnode"
)

// Names of connections and targets are lower-case: viper lower-cases every
// key it reads, so a name written `Shop` would silently become `shop` (and
// with it the webhook URL /webhooks/shop). checkNameCase refuses such names
// in the file; lowerTargetRefs lets the values that refer to a target
// (which viper leaves alone) name it in any letter case.

// checkNameCase reports each connection and target name of the config
// file's YAML document doc (readYAML: the keys as written, where the merged
// settings have only the lower-cased ones) that has upper-case letters,
// those a merge key gives the section too (connections: {<<: *conns}):
// at its path as the config reads it, which anchoredProblems tells at
// the key as written.
func checkNameCase(doc *yaml.Node, ps *problems) {
	root := yamlnode.Unalias(doc)
	if root.Kind != yaml.MappingNode {
		return
	}
	for _, kv := range mergedPairs(root) {
		section := strings.ToLower(kv[0].Value)
		if section != "connections" && section != "targets" {
			continue
		}
		entries := yamlnode.Unalias(kv[1])
		if entries.Kind != yaml.MappingNode {
			continue // reported as the wrong shape
		}
		for _, e := range mergedPairs(entries) {
			name := e[0].Value
			if lower := strings.ToLower(name); lower != name {
				ps.add(section+"."+name, upperCaseNameMessage(section, lower))
			}
		}
	}
}

// upperCaseNameMessage words the refusal of a name with upper-case letters
// under section, which is read as lower.
func upperCaseNameMessage(section, lower string) string {
	if section == "connections" {
		return fmt.Sprintf("connection name must be lower-case: names are read lower-cased, so this is connection %q "+
			"(webhook URL /webhooks/%s); write it %s", lower, lower, lower)
	}
	return fmt.Sprintf("target name must be lower-case: names are read lower-cased, so this is target %q; "+
		"write it %s (a connection's target and account_targets may name it in any letter case)", lower, lower)
}

// readYAML reads the config file again as a YAML document, for the text
// as written (the merged settings have lost it). A file that cannot be
// read or parsed (viper has reported it already) is nil.
func readYAML(file string) *yaml.Node {
	if file == "" {
		return nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// lowerTargetRefs lower-cases the target names that connections refer to
// (target and the values of account_targets), as viper has lower-cased the
// names under targets: `target: ERP-Main` names the target erp-main.
func lowerTargetRefs(cfg *Config) {
	for name, c := range cfg.Connections {
		c.Target = strings.ToLower(c.Target)
		for account, target := range c.AccountTargets {
			c.AccountTargets[account] = strings.ToLower(target)
		}
		cfg.Connections[name] = c
	}
}

// checkEnvSpellings refuses two entries of a section whose names differ
// only in `-` and `_` (hubspot-eu and hubspot_eu): the environment spells
// `-` as `_` (see EnvVar), so one variable would name both. The
// problem is reported once, at the first name of the group.
func checkEnvSpellings[V any](section string, entries map[string]V, ps *problems) {
	bySpelling := map[string][]string{}
	for _, name := range sortedNames(entries) {
		spelling := strings.ReplaceAll(name, "-", "_")
		bySpelling[spelling] = append(bySpelling[spelling], name)
	}
	for _, spelling := range sortedNames(bySpelling) {
		names := bySpelling[spelling]
		if len(names) < 2 {
			continue
		}
		ps.add(section+"."+names[0], fmt.Sprintf("names %s are spelled alike in environment variables (%s_…, "+
			"where - is written _): rename all but one", strings.Join(names, " and "), EnvVar(section+"."+spelling)))
	}
}

// dropNulls reads the YAML (or JSON) config file again without its keys
// of no value (a section whose lines are all commented out, `trigger:`
// left empty), if it has any: viper takes such a key for a value and no
// longer looks up the keys under it, so their DEALSYNC_* overrides were
// ignored, silently. Without it, the section is as if not written: its
// keys come from the environment or the defaults. Other formats are read
// as viper read them.
func dropNulls(v *viper.Viper, file string) error {
	switch strings.ToLower(filepath.Ext(file)) {
	case "", ".yaml", ".yml", ".json":
	default:
		return nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil || !pruneNulls(doc) {
		return nil // viper read it: nothing to drop, or nothing this reads
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	v.SetConfigType("yaml")
	return v.ReadConfig(bytes.NewReader(out))
}

// pruneNulls deletes the keys of no value from m and the maps within it
// (in lists too), and says whether it deleted any.
func pruneNulls(m map[string]any) bool {
	pruned := false
	for k, val := range m {
		switch x := val.(type) {
		case nil:
			delete(m, k)
			pruned = true
		case map[string]any:
			pruned = pruneNulls(x) || pruned
		case []any:
			for _, e := range x {
				if em, ok := e.(map[string]any); ok {
					pruned = pruneNulls(em) || pruned
				}
			}
		}
	}
	return pruned
}
