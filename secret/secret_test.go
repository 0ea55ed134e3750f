package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRevealReferences(t *testing.T) {
	t.Setenv("DEALSYNC_TEST_SECRET", "from-env")
	file := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		"literal-value":            "literal-value",
		"env:DEALSYNC_TEST_SECRET": "from-env",
		"file:" + file:             "from-file",
	} {
		got, err := New(ref).Reveal()
		if err != nil || got != want {
			t.Errorf("Reveal(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
	if _, err := New("env:DEALSYNC_TEST_MISSING").Reveal(); err == nil {
		t.Error("missing env var: want error")
	}
	if _, err := New("file:" + file + ".nope").Reveal(); err == nil {
		t.Error("missing file: want error")
	}
	// An empty secret is a key anyone knows (an empty HMAC key, an empty
	// password): an empty variable or file is refused, naming it.
	t.Setenv("DEALSYNC_TEST_EMPTY", "")
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DEALSYNC_TEST_BLANK", " \n")
	for _, ref := range []string{"env:DEALSYNC_TEST_EMPTY", "file:" + empty, "env:DEALSYNC_TEST_BLANK", " ", "\t"} {
		if v, err := New(ref).Reveal(); err == nil || New(ref).Check() == nil {
			t.Errorf("Reveal(%q) = %q, %v; want an error", ref, v, err)
		} else if (strings.Contains(ref, "file:") || ref == "env:DEALSYNC_TEST_EMPTY") && !strings.Contains(err.Error(), "empty") {
			t.Errorf("Reveal(%q): %v; want it to say the file or variable is empty", ref, err)
		}
	}
}

func TestNeverPrinted(t *testing.T) {
	s := New("hunter2-value")
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("cfg", "secret", s)
	js, _ := json.Marshal(struct{ S Secret }{s})
	txt, _ := s.MarshalText()
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%+v": fmt.Sprintf("%+v", struct{ S Secret }{s}),
		"%#v": fmt.Sprintf("%#v", s), "%q": fmt.Sprintf("%q", s), "json": string(js), "text": string(txt), "slog": logBuf.String(),
	} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
		if !strings.Contains(out, mask) {
			t.Errorf("%s does not show the mask: %s", name, out)
		}
	}
}

// A value where an env: reference's name should be (the shell expanded
// env:$TOKEN) is never shown, by Reveal or Describe, whatever it looks
// like but a variable's name as people write them (A_NAME): a hex token
// or a key is a name to the shell. A variable of any name that is set is
// read.
func TestAnEnvReferenceToAValueIsNotShown(t *testing.T) {
	for _, ref := range []string{"env:Bearer FAKE-token-SENTINEL", "env:whsec_SENTINEL=", "env:a3f5c0d1e2SENTINEL", "env:sk_live_SENTINEL", "env:1ABC", "env:"} {
		s := New(ref)
		_, err := s.Reveal()
		if err == nil || strings.Contains(err.Error(), "SENTINEL") || !strings.Contains(err.Error(), "not shown") {
			t.Errorf("%q: Reveal error %v", ref, err)
		}
		if d := s.Describe(); strings.Contains(d, "SENTINEL") || d != "env:(name not shown)" {
			t.Errorf("%q: Describe %q", ref, d)
		}
	}
	if _, err := New("env:DEALSYNC_TEST_SURELY_UNSET_2").Reveal(); err == nil || err.Error() != "environment variable DEALSYNC_TEST_SURELY_UNSET_2 is not set" {
		t.Errorf("an unset variable's name: %v", err)
	}
	t.Setenv("erp.api-key", "v") // Kubernetes and docker take such names
	if v, err := New("env:erp.api-key").Reveal(); err != nil || v != "v" {
		t.Errorf("a set variable of another name: %q, %v", v, err)
	}
	if d := New("env:_X9").Describe(); d != "env:_X9" {
		t.Errorf("Describe of a name: %q", d)
	}
}

// File gives a file: reference's path, and nothing of any other secret,
// whose reference may be its value.
func TestFileGivesOnlyAFileReferencesPath(t *testing.T) {
	if p, ok := New("file:/etc/x").File(); !ok || p != "/etc/x" {
		t.Errorf("file: %q %v", p, ok)
	}
	for _, ref := range []string{"literal-SENTINEL", "env:X", ""} {
		if p, ok := New(ref).File(); ok || p != "" {
			t.Errorf("%q: %q %v", ref, p, ok)
		}
	}
}
