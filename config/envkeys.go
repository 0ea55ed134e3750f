package config

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/secret"
)

// bindEntryKeys makes every key of every connection and target entry known
// to viper, with the entry type's own default, so that an environment
// variable can override it even when neither the file nor the built-in
// defaults mention it (viper consults the environment only for keys it
// knows). Map-valued keys (e.g. a source's `accounts`) stay file-only: their
// keys are data, not names; so do lists without a default.
func bindEntryKeys(v *viper.Viper) {
	// Keys the file or a default already gives (AllKeys, unlike IsSet,
	// does not count AutomaticEnv: a variable set for a key viper does not
	// know is exactly what this is for).
	known := map[string]bool{}
	for _, k := range v.AllKeys() {
		known[k] = true
	}
	for _, name := range entryNames(v, "connections") {
		prefix := "connections." + name
		bindStruct(v, known, prefix, reflect.ValueOf(Connection{}), map[string]bool{"source": true, "trigger": true})
		if spec, ok := connectors.LookupSource(v.GetString(prefix + ".source.type")); ok {
			bindStruct(v, known, prefix+".source", reflect.ValueOf(spec.NewConfig()), nil)
		}
	}
	for _, name := range entryNames(v, "targets") {
		prefix := "targets." + name
		if spec, ok := connectors.LookupTarget(v.GetString(prefix + ".type")); ok {
			bindStruct(v, known, prefix, reflect.ValueOf(spec.NewConfig()), nil)
		}
	}
}

// bindStruct sets a default for each scalar field of a mapstructure-tagged
// struct (recursing into nested structs), unless skip names it.
func bindStruct(v *viper.Viper, known map[string]bool, prefix string, val reflect.Value, skip map[string]bool) {
	for val.Kind() == reflect.Pointer {
		if val.IsNil() {
			return
		}
		val = val.Elem()
	}
	if val.Kind() != reflect.Struct {
		return
	}
	t := val.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if tag == "" || tag == "-" || skip[tag] {
			continue
		}
		key := prefix + "." + tag
		fv := val.Field(i)
		nested := f.Type != secretType && (f.Type.Kind() == reflect.Struct ||
			f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct)
		if !nested && known[key] {
			continue // the file, the environment or a built-in default has it
		}
		switch {
		case f.Type == secretType:
			if fv.Interface().(secret.Secret).IsZero() {
				v.SetDefault(key, "")
			}
		case f.Type == durationType:
			v.SetDefault(key, fv.Interface().(time.Duration).String())
		case f.Type.Kind() == reflect.Struct:
			bindStruct(v, known, key, fv, nil)
		case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
			bindStruct(v, known, key, fv, nil)
		case f.Type.Kind() == reflect.Map, f.Type.Kind() == reflect.Interface:
			// data keys: file only
		case f.Type.Kind() == reflect.Slice && fv.IsNil():
			// no default to give: an empty list would change what decodes
		default:
			v.SetDefault(key, fv.Interface())
		}
	}
}

// entryNames lists the names of the entries under a map section.
func entryNames(v *viper.Viper, section string) []string {
	seen := map[string]bool{}
	var names []string
	for _, k := range v.AllKeys() {
		parts := strings.SplitN(k, ".", 3)
		if len(parts) >= 2 && parts[0] == section && !seen[parts[1]] {
			seen[parts[1]] = true
			names = append(names, parts[1])
		}
	}
	return names
}

// EnvVar is the environment variable that overrides key with
// every `-` of the key path written `_`, as a shell can export it:
// connections.hubspot-eu.source.secret ←
// DEALSYNC_CONNECTIONS_HUBSPOT_EU_SOURCE_SECRET.
func EnvVar(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// autoEnvVar is the environment variable AutomaticEnv reads for key, the
// hyphens of its entry names kept (DEALSYNC_CONNECTIONS_HUBSPOT-EU_…): it
// wins over EnvVar's spelling when both are set.
func autoEnvVar(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// envSetting is the environment variable that sets key as the config
// reads it: autoEnvVar's spelling when set, else EnvVar's; "" when
// neither is set (empty counts as unset, as AllowEmptyEnv is off).
func envSetting(key string) string {
	for _, name := range []string{autoEnvVar(key), EnvVar(key)} {
		if os.Getenv(name) != "" {
			return name
		}
	}
	return ""
}

// bindUnderscoreSpellings binds every known key whose path has a `-` to
// its underscore spelling (EnvVar) too. AutomaticEnv still reads
// the spelling with the hyphen (DEALSYNC_CONNECTIONS_HUBSPOT-EU_…, which
// env(1) and docker env files can set), and it wins when both are set. A
// spelling that two known keys share (hubspot-eu and hubspot_eu) is bound
// to neither: those entry names are refused (see checkEnvSpellings).
func bindUnderscoreSpellings(v *viper.Viper) {
	keys := v.AllKeys()
	keysPerVar := map[string]int{}
	for _, k := range keys {
		keysPerVar[EnvVar(k)]++
	}
	for _, k := range keys {
		if envVar := EnvVar(k); strings.Contains(k, "-") && keysPerVar[envVar] == 1 {
			// BindEnv fails only without a key.
			_ = v.BindEnv(k, envVar)
		}
	}
}

// dataSections are the maps of the config whose keys are data (an entry's
// name, an account's id), not the config's own words.
var dataSections = map[string]bool{"connections": true, "targets": true, "accounts": true, "account_targets": true, "currency_ids": true}

// namesData says whether the variable name spells each data segment of
// key (an entry's name, an account's id) exactly, as a whole word
// between underscores: a typo hint may mend the config's own words
// (CONECTIONS, TARGT), never turn one entry or account into another.
func namesData(name, key string) bool {
	parts := strings.Split(key, ".")
	padded := name + "_"
	for i := 1; i < len(parts); i++ {
		if !dataSections[parts[i-1]] {
			continue
		}
		seg := strings.ToUpper(strings.NewReplacer("-", "_").Replace(parts[i]))
		if !strings.Contains(padded, "_"+seg+"_") {
			return false
		}
	}
	return true
}

// sectionsSetByEnv are the problems of variables that name a section or an
// entry rather than a key (DEALSYNC_CONNECTIONS_SHOP, DEALSYNC_INTAKE): the
// config takes such a variable for the value of the whole section and
// drops every key under it, from the file as from the defaults, so the
// connection silently vanished, or a section's keys were reported missing.
// The underscore spelling of a hyphenated entry (DEALSYNC_CONNECTIONS_HUBSPOT_EU)
// is refused alike, though only the hyphenated one replaces it. A variable
// that is both a key's and another entry's (connections shop and
// shop_target: DEALSYNC_CONNECTIONS_SHOP_TARGET) says the names collide.
func sectionsSetByEnv(v *viper.Viper) []Problem {
	keys := v.AllKeys()
	slices.Sort(keys)
	keyOf := map[string]string{} // a key's variable, both spellings → the key
	for _, key := range keys {
		keyOf[autoEnvVar(key)], keyOf[EnvVar(key)] = key, key
	}
	seen := map[string]bool{}
	var out []Problem
	for _, key := range keys {
		if extensionKey(key) {
			continue // x-…: ignored, its variables too (ignoredEnv)
		}
		parts := strings.Split(key, ".")
		for i := 1; i < len(parts); i++ {
			section := strings.Join(parts[:i], ".")
			for _, name := range []string{autoEnvVar(section), EnvVar(section)} {
				if seen[name] || os.Getenv(name) == "" {
					continue
				}
				if _, isKey := keyOf[name]; isKey && name != autoEnvVar(section) {
					// The underscore spelling of a hyphenated entry that is
					// also a key's variable sets that key only.
					continue
				}
				seen[name] = true
				msg := fmt.Sprintf("the environment variable %s is set, which names all of %s, not a key: the environment sets single keys, such as %s; unset %s",
					name, section, EnvVar(exampleKey(keys, section)), name)
				if other, ok := keyOf[name]; ok {
					msg = fmt.Sprintf("the environment variable %s is set, which is the variable of %s and names all of %s as well: two entries whose names collide in the environment; rename one (or set %s in the file)",
						name, other, section, other)
				}
				out = append(out, Problem{Key: section, Message: msg})
			}
		}
	}
	return out
}

// exampleKey is the shortest key of section among keys (sorted), for a
// message to name.
func exampleKey(keys []string, section string) string {
	best := ""
	for _, k := range keys {
		if strings.HasPrefix(k, section+".") && (best == "" || len(k) < len(best)) {
			best = k
		}
	}
	return best
}
