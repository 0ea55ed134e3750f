// Package speccheck helps contract tests find the vendors' specs in the
// shared folder beside the repository (../shared/specs, through package
// sharedfiles) and run Prism as a validating mock. Without the specs
// folder or Prism the test skips; the specs are read in place, never
// copied into the repository.
package speccheck

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealsync/dealsync/internal/sharedfiles"
)

// Specs returns the shared specs folder (the repository's parent +
// /shared/specs), skipping the test when it is absent.
func Specs(t testing.TB) string {
	t.Helper()
	return sharedfiles.Dir(t, "specs")
}

// File returns a file of the specs folder; a file missing from a specs
// folder that is there fails the test (a wrong name, not a missing setup).
func File(t testing.TB, rel string) string {
	t.Helper()
	return sharedfiles.Path(t, "specs", rel)
}

// PrismBin is $PRISM_BIN or prism on PATH; the test skips without one,
// and fails when PRISM_BIN names a file that is not there (a broken setup
// must not pass as a skip).
// CI installs it with
//
//	npm install --prefix DIR @stoplight/prism-cli@5.16.0
//	export PRISM_BIN=DIR/node_modules/.bin/prism
func PrismBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PRISM_BIN"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		t.Fatalf("PRISM_BIN=%s does not exist", p)
	}
	p, err := exec.LookPath("prism")
	if err != nil {
		t.Skip("prism not installed (set PRISM_BIN or put prism on PATH)")
	}
	return p
}

// Prism starts `prism mock --errors` on spec at a free local port and
// returns its base URL; it is stopped when the test ends. A Prism that
// does not come up within startup fails the test (the full Xero spec is
// slow to load; derived specs are quick).
func Prism(t testing.TB, spec string, startup time.Duration) string {
	t.Helper()
	bin := PrismBin(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "mock", "--errors", "-h", "127.0.0.1", "-p", fmt.Sprint(port), spec)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("cannot start prism %s: %v", bin, err)
	}
	var logMu sync.Mutex
	var log strings.Builder
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if strings.Contains(sc.Text(), "Prism is listening") {
				once.Do(func() { close(ready) })
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	select {
	case <-ready:
	case <-time.After(startup):
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("prism did not start within %v:\n%s", startup, log.String())
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// Client is an HTTP client with a timeout: Prism never answers a body that
// is not JSON (see PRISM.md), so no request may wait forever.
var Client = &http.Client{Timeout: 60 * time.Second}

// Derive runs specs/tools/trim_spec.py to derive a Prism-ready spec with
// only ops (e.g. "PUT /Contacts") and their request schemas inlined,
// written under dir. Without python3 and PyYAML the test skips, or fails
// where the contract tests must run: when PRISM_BIN is set (as .ci/run
// sets it), as PrismBin fails for a Prism that is not there.
func Derive(t testing.TB, src, dir string, ops ...string) string {
	t.Helper()
	tool := File(t, "tools/trim_spec.py")
	py := python3(t, "yaml")
	dst := filepath.Join(dir, "derived.prism.yaml")
	args := append([]string{tool, src, dst}, ops...)
	args = append(args, "--inline-request-schema", "--max-ref-depth=4")
	if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		t.Fatalf("trim_spec.py: %v\n%s", err, out)
	}
	return dst
}

// NormalizeHubSpot runs specs/tools/normalize_hubspot.py on src, a spec of
// HubSpot's public spec collection, and returns the Prism-ready copy it
// writes under dir: null examples dropped and `*/*` answers made
// application/json, without which Prism answers every request 500
// (PRISM.md). Without python3 the test skips, or fails when PRISM_BIN is
// set, as Derive.
func NormalizeHubSpot(t testing.TB, src, dir string) string {
	t.Helper()
	tool := File(t, "tools/normalize_hubspot.py")
	py := python3(t)
	dst := filepath.Join(dir, strings.TrimSuffix(filepath.Base(src), ".json")+".prism.json")
	if out, err := exec.Command(py, tool, src, dst).CombinedOutput(); err != nil {
		t.Fatalf("normalize_hubspot.py: %v\n%s", err, out)
	}
	return dst
}

// python3 is the python3 on PATH, with modules importable. Without them
// the test skips, or fails when PRISM_BIN is set (the contract tests must
// run there).
func python3(t testing.TB, modules ...string) string {
	t.Helper()
	missing := t.Skipf
	if os.Getenv("PRISM_BIN") != "" {
		missing = t.Fatalf
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		missing("python3 not installed: cannot derive the spec")
	}
	for _, m := range modules {
		if err := exec.Command(py, "-c", "import "+m).Run(); err != nil {
			missing("python3 module %s not installed: cannot derive the spec", m)
		}
	}
	return py
}
