package config

import (
	"encoding"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/secret"
)

var (
	durationType        = reflect.TypeFor[time.Duration]()
	secretType          = reflect.TypeFor[secret.Secret]()
	componentType       = reflect.TypeFor[Component]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// durationShape is a duration as time.ParseDuration reads one, whatever
// its size: one that fails to parse is then too long.
var durationShape = regexp.MustCompile(`^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$`)

// errBadDuration and errDurationUnit never quote the value: it could be a
// secret typed into the wrong key.
var (
	errBadDuration  = errors.New("invalid duration (use a number with a unit: 500ms, 30s, 5m, 1h30m)")
	errDurationUnit = errors.New("a duration needs a unit (e.g. 30s, 5m, 24h)")
	// errDurationTooLong: Go's durations end at about 292 years.
	errDurationTooLong = errors.New("out of range: a duration is at most 2562047h (about 292 years), either way")
	// errUnquotedNumber: a float where text is wanted.
	errUnquotedNumber = errors.New("read as a number, not as the text written: write it in quotes")
	// errUnquotedBool: a boolean where text is wanted.
	errUnquotedBool = errors.New("read as a boolean, not as the text written: write it in quotes")
	// errFraction: a number with a fraction where a whole number is
	// wanted (mapstructure would cut it: 2.7 attempts were 2).
	errFraction = errors.New("must be a whole number")
	// errHugeNumber: a float out of any whole number's range (1e20,
	// .nan, .inf).
	errHugeNumber = errors.New("must be a whole number of a usable size")
	// errNumberForBool: a number where true or false is wanted (1 was
	// taken as true).
	errNumberForBool = errors.New("must be true or false")
	// errUnquotedSecret: a secret written as a bare number or boolean.
	errUnquotedSecret = errors.New("a secret must be written in quotes: unquoted, YAML reads it as a number or a boolean " +
		"and may change it (0123 is octal, long digit strings become floats)")
)

// decodeHook converts what YAML and environment variables give into the
// config's types: strings into secret.Secret (a bare number or boolean is
// refused: YAML may have changed it), strings into
// time.Duration, comma-separated strings (environment overrides) into
// slices; then any other encoding.TextUnmarshaler from a string.
func decodeHook() mapstructure.DecodeHookFunc {
	return mapstructure.ComposeDecodeHookFunc(
		func(from, to reflect.Type, data any) (any, error) {
			switch {
			case to == secretType:
				switch d := data.(type) {
				case string:
					return secret.New(d), nil
				case int, int64, uint64, float64, bool:
					// Not quoted in the file: YAML has read it as a number
					// or a boolean, and its text may be gone (0123 is
					// octal 83, long digit strings become floats, 1_000 is
					// 1000). Never quote the value: it is a secret.
					return nil, errUnquotedSecret
				case []any, map[string]any, map[any]any:
					// Decoded as the Secret struct, a list was "a mapping
					// of keys" and a mapping an empty secret ("is
					// required"). Never quote the value.
					return nil, fmt.Errorf("must be %s, not %s", typeWord(secretType), valueWord(d))
				}
			case to.Kind() == reflect.String:
				switch data.(type) {
				case bool:
					// YAML read an unquoted true/false as a boolean, which
					// would become the text "1" or "0".
					return nil, errUnquotedBool
				case float32, float64:
					// YAML read an unquoted value as a float: its text is
					// not kept (1.50 is 1.5, 12345678901234567890 is
					// 1.2345678901234567e+19). The value is not quoted in
					// the message: it could be a secret in the wrong key.
					return nil, errUnquotedNumber
				}
			case isWhole(to.Kind()) && to != durationType:
				if f, ok := data.(float64); ok {
					switch {
					case math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) >= 1<<63:
						return nil, errHugeNumber
					case f != math.Trunc(f):
						return nil, errFraction
					}
				}
			case to.Kind() == reflect.Bool:
				switch data.(type) {
				case int, int64, uint64, float64:
					return nil, errNumberForBool
				}
			case to == durationType:
				switch d := data.(type) {
				case string:
					dur, err := time.ParseDuration(strings.TrimSpace(d))
					if err != nil {
						if strings.Contains(err.Error(), "invalid duration") && durationShape.MatchString(strings.TrimSpace(d)) {
							// Well written, too long for Go's durations.
							return nil, errDurationTooLong
						}
						return nil, errBadDuration
					}
					return dur, nil
				case int, int64, uint64, float64:
					if reflect.ValueOf(d).IsZero() {
						return time.Duration(0), nil
					}
					return nil, errDurationUnit
				}
			case from.Kind() == reflect.String && to.Kind() == reflect.Slice:
				var out []string
				for _, part := range strings.Split(data.(string), ",") {
					if part = strings.TrimSpace(part); part != "" {
						out = append(out, part)
					}
				}
				return out, nil
			}
			return data, nil
		},
		mapstructure.TextUnmarshallerHookFunc(),
	)
}

// isWhole says whether k is a kind of whole number.
func isWhole(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// decode decodes input into out (a pointer) with the config's hooks.
// Unknown keys are not its business (see checkKeys). Each failure is
// reported at prefix + its key path.
func decode(input any, out any, prefix string, ps *problems) {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       decodeHook(),
		WeaklyTypedInput: true, // environment values are strings
		Result:           out,
		TagName:          "mapstructure",
	})
	if err != nil {
		ps.add(prefix, err.Error())
		return
	}
	t := reflect.TypeOf(out)
	eachDecodeError(d.Decode(input), func(name string, err error) {
		key := joinKey(prefix, keyPath(t, name))
		if ps.isFailed(key) {
			return // the file's text told why already ({X} in braces)
		}
		ps.addFailed(key, decodeMessage(err))
	})
}

// eachDecodeError calls fn for every leaf of a mapstructure error tree.
func eachDecodeError(err error, fn func(name string, err error)) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			eachDecodeError(e, fn)
		}
		return
	}
	// Not errors.As: it would stop at the first DecodeError of a tree.
	if de, ok := err.(*mapstructure.DecodeError); ok {
		inner := de.Unwrap()
		if _, joined := inner.(interface{ Unwrap() []error }); joined {
			eachDecodeError(inner, fn)
			return
		}
		fn(de.Name(), inner)
		return
	}
	if u := errors.Unwrap(err); u != nil {
		eachDecodeError(u, fn)
		return
	}
	fn("", err)
}

// decodeMessage words a mapstructure failure without the offending value
// (mapstructure's own messages already leave it out).
func decodeMessage(err error) string {
	var pe *mapstructure.ParseError
	if errors.As(err, &pe) {
		return "must be " + typeWord(pe.Expected.Type())
	}
	var ue *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ue) {
		return fmt.Sprintf("must be %s, not %s", typeWord(ue.Expected.Type()), valueWord(ue.Value))
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "expected a map") {
		return "must be a mapping of keys"
	}
	return msg
}

func typeWord(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration (e.g. 30s)"
	case t == secretType:
		return "a string (a secret, env:NAME or file:PATH)"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping of keys"
	}
	return t.String()
}

func valueWord(v any) string {
	if v == nil {
		return "empty"
	}
	return typeWord(reflect.TypeOf(v))
}

// checkKeys reports every key of m that the struct type t (or a pointer to
// it) does not have, recursively, at its dotted key path. A struct with a
// ",remain" field accepts any key, and the top level (path "") those
// that start with x- (extensionKey).
func checkKeys(m map[string]any, t reflect.Type, path string, ps *problems) {
	t = deref(t)
	if t.Kind() != reflect.Struct {
		return
	}
	fields, remain := fieldsOf(t)
	for k, val := range m {
		if path == "" && extensionKey(k) {
			continue // x-…: holds YAML anchors for the keys that use them
		}
		key := joinKey(path, k)
		ft, ok := fields[strings.ToLower(k)]
		if !ok {
			if !remain {
				ps.add(key, unknownKey(k, fields))
			}
			continue
		}
		checkValue(val, ft, key, ps)
	}
}

// unknownKey is the problem of a key k that fields lack: with the known
// key it is a typo of or the first words of, else with the known keys.
func unknownKey(k string, fields map[string]reflect.Type) string {
	known := slices.Sorted(maps.Keys(fields))
	if best, ok := wording.TypoOf(k, known); ok {
		return fmt.Sprintf("unknown key (did you mean %s?)", best)
	}
	if best, ok := shortFor(k, known); ok {
		return fmt.Sprintf("unknown key (did you mean %s?)", best)
	}
	return "unknown key (known keys: " + strings.Join(known, ", ") + ")"
}

// shortFor is the one of known that k writes the first words of
// (certificate for certificate_id: k then _ and more), when exactly one
// is; false for keys of fewer than three letters, which would match
// too much to say.
func shortFor(k string, known []string) (string, bool) {
	k = strings.ToLower(k)
	if len(k) < 3 {
		return "", false
	}
	best := ""
	for _, n := range known {
		if strings.HasPrefix(n, k+"_") {
			if best != "" {
				return "", false
			}
			best = n
		}
	}
	return best, best != ""
}

func checkValue(val any, t reflect.Type, key string, ps *problems) {
	t = deref(t)
	if reflect.PointerTo(t).Implements(textUnmarshalerType) || t == durationType {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if sub, ok := asMap(val); ok {
			checkKeys(sub, t, key, ps)
		}
	case reflect.Map:
		if sub, ok := asMap(val); ok {
			for k, v := range sub {
				checkValue(v, t.Elem(), joinKey(key, k), ps)
			}
		}
	case reflect.Slice, reflect.Array:
		if list, ok := val.([]any); ok {
			for i, v := range list {
				checkValue(v, t.Elem(), key+"["+strconv.Itoa(i)+"]", ps)
			}
		}
	}
}

// fieldsOf maps the lower-cased mapstructure names of t's fields to their
// types, following ",squash"; remain says whether t has a ",remain" field.
func fieldsOf(t reflect.Type) (fields map[string]reflect.Type, remain bool) {
	fields = map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts := tagName(f)
		switch {
		case name == "-":
			continue
		case hasOpt(opts, "remain"):
			remain = true
		case hasOpt(opts, "squash") && deref(f.Type).Kind() == reflect.Struct:
			sub, r := fieldsOf(deref(f.Type))
			for k, v := range sub {
				fields[k] = v
			}
			remain = remain || r
		default:
			fields[strings.ToLower(name)] = f.Type
		}
	}
	return fields, remain
}

// tagName is a field's mapstructure name (its Go name when untagged) and
// its tag options.
func tagName(f reflect.StructField) (name string, opts []string) {
	parts := strings.Split(f.Tag.Get("mapstructure"), ",")
	name, opts = parts[0], parts[1:]
	if name == "" {
		name = f.Name
	}
	return name, opts
}

func hasOpt(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// fieldByKey finds the field of struct type t that key decodes into.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts := tagName(f)
		if hasOpt(opts, "squash") && deref(f.Type).Kind() == reflect.Struct {
			if sf, ok := fieldByKey(deref(f.Type), key); ok {
				return sf, true
			}
			continue
		}
		if name != "-" && strings.EqualFold(name, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// keyPath turns a mapstructure or validator name such as
// "connections[demo].trigger.won_stages[0]" (relative to type t) into the
// YAML key path "connections.demo.trigger.won_stages[0]": map entries are
// dotted, list elements keep their index.
func keyPath(t reflect.Type, name string) string {
	var b strings.Builder
	for name != "" {
		var tok string
		bracket := name[0] == '['
		if bracket {
			end := strings.IndexByte(name, ']')
			if end < 0 {
				end = len(name) - 1
			}
			tok, name = name[1:end], name[end+1:]
		} else {
			end := strings.IndexAny(name, ".[")
			if end < 0 {
				end = len(name)
			}
			tok, name = name[:end], name[end:]
		}
		name = strings.TrimPrefix(name, ".")
		if t != nil {
			t = deref(t)
		}
		switch {
		case bracket && t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
			b.WriteString("[" + tok + "]")
			t = t.Elem()
		case bracket:
			writeKey(&b, tok)
			if t != nil && t.Kind() == reflect.Map {
				t = t.Elem()
			} else {
				t = nil
			}
		default:
			writeKey(&b, tok)
			if t != nil && t.Kind() == reflect.Struct {
				if f, ok := fieldByKey(t, tok); ok {
					t = f.Type
					break
				}
			}
			t = nil
		}
	}
	return b.String()
}

func writeKey(b *strings.Builder, k string) {
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(k)
}

func joinKey(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	case key[0] == '[':
		return prefix + key
	}
	return prefix + "." + key
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[fmt.Sprint(k)] = v
		}
		return out, true
	}
	return nil, false
}
