// Package secret holds configuration values that must never be printed:
// given literally or by reference (env:NAME, file:PATH), resolved on use,
// and masked whenever formatted, logged or marshalled.
package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Secret is a configured secret: a literal, "env:NAME" or "file:PATH".
// Formatting it in any way prints a mask, never the value.
type Secret struct{ ref string }

// New wraps a literal or a reference.
func New(ref string) Secret { return Secret{ref: ref} }

// IsZero reports whether nothing was configured.
func (s Secret) IsZero() bool { return s.ref == "" }

// Reveal resolves the secret to its value. A file's trailing newline is
// dropped. A value that is empty or only white space (a blank variable,
// file or literal) is an error: it would be a key anyone knows (an HMAC
// key of a space, a blank password), so a secret is never blank. An unset
// secret (IsZero) reveals "".
func (s Secret) Reveal() (string, error) {
	switch {
	case strings.HasPrefix(s.ref, "env:"):
		name := strings.TrimPrefix(s.ref, "env:")
		v, ok := os.LookupEnv(name)
		// A name is shown only when it looks like one (A_NAME): what
		// follows env: may be a value the shell put there (env:$TOKEN),
		// a secret.
		shown := "environment variable " + name
		if !shownName(name) {
			shown = "the environment variable named after env: (not shown: it does not look like a variable's name, A_NAME; a value where the name should be, from a shell's env:$NAME?)"
		}
		switch {
		case !ok:
			return "", fmt.Errorf("%s is not set", shown)
		case v == "":
			return "", fmt.Errorf("%s is set but empty", shown)
		case strings.TrimSpace(v) == "":
			return "", fmt.Errorf("%s holds only white space", shown)
		}
		return v, nil
	case strings.HasPrefix(s.ref, "file:"):
		path := strings.TrimPrefix(s.ref, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("reading secret file: %w", err)
		}
		// An empty secret would be a key anyone knows (an HMAC key of no
		// bytes, an empty password): refused, as an empty variable is.
		v := strings.TrimRight(string(b), "\r\n")
		if strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("secret file %s is empty", path)
		}
		return v, nil
	default:
		if s.ref != "" && strings.TrimSpace(s.ref) == "" {
			return "", fmt.Errorf("the secret is only white space")
		}
		return s.ref, nil
	}
}

// shownName says whether an env: reference's name may be shown: it looks
// like a variable's name as people write them (upper case, digits and _,
// not starting with a digit). Anything else may be a value a shell
// expanded in its place (a hex token, a key), and is not shown.
func shownName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		if !(r == '_' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// EnvName is the name of the variable an env: reference reads, when it is
// one and may be shown (it looks like a name, A_NAME).
func (s Secret) EnvName() (string, bool) {
	name, ok := strings.CutPrefix(s.ref, "env:")
	if !ok || !shownName(name) {
		return "", false
	}
	return name, true
}

// File is the path a file: reference reads ("", false for any other
// secret: its reference may be the value).
func (s Secret) File() (string, bool) {
	path, ok := strings.CutPrefix(s.ref, "file:")
	if !ok {
		return "", false
	}
	return path, true
}

// Check resolves the secret and reports why it cannot be, without the value.
func (s Secret) Check() error {
	_, err := s.Reveal()
	return err
}

// Describe says how the secret is given, without its value: "env:NAME",
// "file:PATH", "literal" or "unset".
func (s Secret) Describe() string {
	switch {
	case s.ref == "":
		return "unset"
	case strings.HasPrefix(s.ref, "env:"):
		if name, ok := s.EnvName(); ok {
			return "env:" + name
		}
		return "env:(name not shown)"
	case strings.HasPrefix(s.ref, "file:"):
		return s.ref
	default:
		return "literal"
	}
}

const mask = "********"

func (s Secret) String() string   { return mask }
func (s Secret) GoString() string { return "secret.Secret(" + mask + ")" }

// Format masks the secret for every fmt verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(mask)) }

// LogValue masks the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(mask) }

// MarshalJSON masks the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(mask) }

// MarshalText masks the secret (YAML and other text encoders).
func (s Secret) MarshalText() ([]byte, error) { return []byte(mask), nil }

// UnmarshalText reads a literal or a reference.
func (s *Secret) UnmarshalText(b []byte) error {
	s.ref = string(b)
	return nil
}
