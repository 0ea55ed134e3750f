package app

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors/generic"
)

// The README's recipe for signing a generic webhook by hand (openssl and
// curl) makes a signature dealsync accepts for the dev config's demo
// connection: the recipe runs with a curl that writes down what it would
// send, and the generic source's Verify checks it.
func TestREADMESigningRecipeIsAccepted(t *testing.T) {
	for _, tool := range []string{"bash", "openssl", "base64", "od"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "Signing one by hand")
	if !ok {
		t.Fatal("README has no signing recipe")
	}
	_, after, ok = strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatal("the signing recipe has no sh block")
	}
	script, _, _ := strings.Cut(after, "```")

	dir := t.TempDir()
	fake := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"$CURL_ARGS\"\n"
	if err := os.WriteFile(filepath.Join(dir, "curl"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	argsFile := filepath.Join(dir, "args")
	cmd := exec.Command("bash", "-eu", "-c", script)
	cmd.Dir = ".." // the recipe reads examples/closed-won.json
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "CURL_ARGS="+argsFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the recipe failed: %v\n%s", err, out)
	}
	sent, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimSuffix(string(sent), "\x00"), "\x00")
	header := http.Header{}
	var body, url string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-H":
			i++
			k, v, _ := strings.Cut(args[i], ": ")
			header.Add(k, v)
		case "--data-binary":
			i++
			body = args[i]
		default:
			if strings.HasPrefix(args[i], "http") {
				url = args[i]
			}
		}
	}
	if url != "http://127.0.0.1:8080/webhooks/demo" {
		t.Errorf("the recipe posts to %q, want dev's demo connection http://127.0.0.1:8080/webhooks/demo", url)
	}
	want, err := os.ReadFile("../examples/closed-won.json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimRight(string(want), "\n") != body {
		t.Errorf("the recipe sends %q, want examples/closed-won.json", body)
	}
	// dev's demo connection is signed with config.DevSecret.
	if err := generic.Verify(config.DevSecret, header, []byte(body), time.Now(), 5*time.Minute); err != nil {
		t.Errorf("dealsync refuses the recipe's signature: %v (headers %v)", err, header)
	}
}
