package app

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors/netsuite"
	"github.com/dealsync/dealsync/internal/testdocs"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/workflows"
)

// yamlBlocks returns the ```yaml blocks of a Markdown file with the line
// each starts on.
func yamlBlocks(t *testing.T, path string) map[int]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[int]string{}
	var cur []string
	start := 0
	for i, line := range strings.Split(string(data), "\n") {
		switch {
		case start == 0 && strings.TrimSpace(line) == "```yaml":
			start, cur = i+1, nil
		case start > 0 && strings.TrimSpace(line) == "```":
			blocks[start] = strings.Join(cur, "\n")
			start = 0
		case start > 0:
			cur = append(cur, line)
		}
	}
	return blocks
}

// loadsAndBuilds checks that the config block (written as dealsync.yaml
// in dir) loads and builds its connections; where names the block.
func loadsAndBuilds(t *testing.T, where, dir, block string) {
	t.Helper()
	f := filepath.Join(dir, "dealsync.yaml")
	if err := os.WriteFile(f, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	if _, err := BuildConnections(cfg, NewLogger(cfg.Log, io.Discard)); err != nil {
		t.Errorf("%s: builds with %v", where, err)
	}
}

// The config examples of the connector docs are what engineers copy: each
// must load (every key known, every value valid) and build with the real
// connectors. Secrets they reference are set to stand-ins; the files they
// name are put in a temporary folder.
func TestConnectorDocsConfigsLoadAndBuild(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	envRef := regexp.MustCompile(`env:([A-Z0-9_]+)`)
	fileRef := regexp.MustCompile(`file:(/etc/dealsync/[^\s]+)`)
	n := 0
	for _, doc := range []string{"../docs/connectors/crm.md", "../docs/connectors/erp.md"} {
		for line, block := range yamlBlocks(t, doc) {
			if !strings.Contains(block, "connections:") && !strings.Contains(block, "targets:") {
				continue
			}
			n++
			for _, m := range envRef.FindAllStringSubmatch(block, -1) {
				value := "stand-in-" + strings.ToLower(m[1])
				if strings.HasSuffix(m[1], "_WHSEC") {
					// A Standard Webhooks secret (the generic source's)
					// is whsec_ and base64 (of 34 bytes, not short).
					value = "whsec_ZGVhbHN5bmMtZG9jcy1zdGFuZC1pbi1vZi0zMi1ieXRlcw=="
				}
				t.Setenv(m[1], value)
			}
			for _, m := range fileRef.FindAllStringSubmatch(block, -1) {
				p := filepath.Join(dir, filepath.Base(m[1]))
				if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
					t.Fatal(err)
				}
				block = strings.ReplaceAll(block, m[0], "file:"+p)
			}
			block = strings.ReplaceAll(block, "/var/lib/dealsync/", dir+"/")
			if strings.Contains(block, "target: books") && !strings.Contains(block, "  books:") {
				block += "\ntargets:\n  books: {type: http, base_url: \"http://127.0.0.1:9\"}\n"
			}
			loadsAndBuilds(t, fmt.Sprintf("%s:%d", doc, line), dir, block)
		}
	}
	if n < 6 {
		t.Errorf("found %d config examples in the connector docs, want the 3 CRM and 3 ERP ones", n)
	}
}

// The YAML of docs/mappings.md is what integration engineers copy: its
// config blocks load outside `dealsync dev` (every key known, the targets
// they use defined, the mapping files they name found) and build; its
// mapping blocks compile.
func TestMappingDocsBlocksLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "mappings"), 0o755); err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../examples/mappings/generic-standard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mappings", "generic-standard.yaml"), example, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DEMO_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	configs, mappings := 0, 0
	const doc = "../docs/mappings.md"
	for line, block := range yamlBlocks(t, doc) {
		switch {
		case strings.Contains(block, "connections:"):
			configs++
			loadsAndBuilds(t, fmt.Sprintf("%s:%d", doc, line), dir, block)
		case strings.HasPrefix(block, "name:") || strings.HasPrefix(block, "lookups:"):
			mappings++
			if !strings.HasPrefix(block, "name:") {
				block = "name: doc-fragment\n" + block // a fragment of a file: its lookups
			}
			if _, err := mapping.Parse("doc.yaml", []byte(block)); err != nil {
				t.Errorf("%s:%d: %v", doc, line, err)
			}
		}
	}
	if configs < 1 || mappings < 3 {
		t.Errorf("found %d config and %d mapping blocks in %s, want 1 and 3 or more", configs, mappings, doc)
	}
}

// The README's loop that registers the search attributes names each one
// the workflows use, with its type, and nothing else: a new attribute
// missing there would make `worker` refuse to start on a namespace set up
// by the README.
func TestReadmeRegistersEverySearchAttribute(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	loop := regexp.MustCompile(`for sa in ([^;]+); do`).FindSubmatch(raw)
	if loop == nil {
		t.Fatal("README: no `for sa in ...; do` loop")
	}
	got := map[string]string{}
	for _, f := range strings.Fields(string(loop[1])) {
		name, typ, _ := strings.Cut(f, ":")
		got[name] = typ
	}
	want := map[string]string{}
	for name, typ := range workflows.SearchAttributeTypes() {
		want[name] = typeName(typ)
	}
	if !maps.Equal(got, want) {
		t.Errorf("README registers %v, the workflows use %v", got, want)
	}
}

// githubAnchor is the anchor GitHub gives a Markdown heading's text: code
// marks and link targets dropped, lower case, punctuation but hyphens and
// underscores dropped, spaces made hyphens.
func githubAnchor(heading string) string {
	heading = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchorsOf are the heading anchors of a Markdown file (a repeated heading
// gets -1, -2, … as on GitHub), fenced code left out.
func anchorsOf(text string) map[string]bool {
	anchors, seen := map[string]bool{}, map[string]int{}
	fenced := false
	heading := regexp.MustCompile(`^#{1,6}\s+(.*)$`)
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
		}
		m := heading.FindStringSubmatch(line)
		if fenced || m == nil {
			continue
		}
		a := githubAnchor(m[1])
		if n, ok := seen[a]; ok {
			seen[a] = n + 1
			a = fmt.Sprintf("%s-%d", a, n+1)
		} else {
			seen[a] = 0
		}
		anchors[a] = true
	}
	return anchors
}

// Every relative link of the README and docs/ reaches a file that exists
// and, when it names a heading (#…), a heading of that file: a renamed
// heading breaks the links to it silently on GitHub.
func TestDocsLinksReachTheirFilesAndHeadings(t *testing.T) {
	files := docFiles(t)
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	links := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(raw), "\n") {
			for _, m := range link.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				links++
				path, frag, _ := strings.Cut(target, "#")
				file := f
				if path != "" {
					file = filepath.Join(filepath.Dir(f), path)
				}
				where := fmt.Sprintf("%s:%d: %s", strings.TrimPrefix(f, "../"), i+1, target)
				body, err := os.ReadFile(file)
				if err != nil {
					if _, statErr := os.Stat(file); statErr != nil {
						t.Errorf("%s: no such file", where)
					}
					continue // a folder
				}
				if frag != "" && strings.HasSuffix(file, ".md") && !anchorsOf(string(body))[frag] {
					t.Errorf("%s: %s has no heading with that anchor", where, strings.TrimPrefix(file, "../"))
				}
			}
		}
	}
	if links < 30 {
		t.Fatalf("only %d relative links found: the docs were not read", links)
	}
}

func TestGithubAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		"Fourth pass: the run list's indexes": "fourth-pass-the-run-lists-indexes",
		"Going live with a CRM connection":    "going-live-with-a-crm-connection",
		"`http`":                              "http",
		"Upgrading to 1.2 (this release)":     "upgrading-to-12-this-release",
		"Burst: N = 2000 closed-won (+ 200 non-triggering), concurrency 50": "burst-n--2000-closed-won--200-non-triggering-concurrency-50",
		"See [the docs](x.md) and_more":                                     "see-the-docs-and_more",
	} {
		if got := githubAnchor(heading); got != want {
			t.Errorf("%q: %q, want %q", heading, got, want)
		}
	}
}

// The README's layout table names every package (the fakes by their
// `connectors/*/…fake` row): a new package is described where newcomers
// look for where things are.
func TestReadmeLayoutNamesEveryPackage(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(raw), "## Layout")
	if !ok {
		t.Fatal("README: no ## Layout")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-z0-9/*…]+)`").FindAllStringSubmatch(layout, -1) {
		named[m[1]] = true
	}
	packages := 0
	err = filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); path != ".." && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		code, _ := filepath.Glob(filepath.Join(path, "*.go"))
		if len(code) == 0 || path == ".." {
			return nil
		}
		packages++
		rel := filepath.ToSlash(strings.TrimPrefix(path, "../"))
		if !named[rel] && !(strings.HasPrefix(rel, "connectors/") && strings.HasSuffix(rel, "fake") && named["connectors/*/…fake"]) {
			t.Errorf("README's layout does not name %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if packages < 30 {
		t.Fatalf("found %d packages: the walk did not see the repository", packages)
	}
}

// keyCommands returns the openssl and ssh-keygen commands of the README and
// docs/ (code spans and code block lines) with where each is.
func keyCommands(t *testing.T) map[string]string {
	t.Helper()
	files := docFiles(t)
	span := regexp.MustCompile("`((?:openssl req|ssh-keygen) -[^`]*)`")
	cmds := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(raw), "\n") {
			where := fmt.Sprintf("%s:%d", strings.TrimPrefix(f, "../"), i+1)
			for _, m := range span.FindAllStringSubmatch(line, -1) {
				cmds[where] = m[1]
			}
			if l := strings.TrimSpace(line); strings.HasPrefix(l, "openssl req ") || strings.HasPrefix(l, "ssh-keygen ") {
				cmds[where] = l
			}
		}
	}
	return cmds
}

// The key and certificate commands of the docs are pasted as written, often
// into scripts: one that prompts (openssl req without -subj asks for the
// subject and, without a terminal, fails after writing the key but before the
// certificate) leaves the reader half done. Where openssl is installed the
// openssl ones are run without a terminal, and a private key they write must
// be one the NetSuite target reads.
func TestDocsKeyCommandsRunWithoutATerminal(t *testing.T) {
	cmds := keyCommands(t)
	if len(cmds) == 0 {
		t.Fatal("no openssl req or ssh-keygen command found in the docs; the test reads nothing")
	}
	_, lookErr := exec.LookPath("openssl")
	for where, cmd := range cmds {
		switch {
		case strings.HasPrefix(cmd, "openssl req"):
			if !strings.Contains(cmd, " -subj ") && !strings.Contains(cmd, " -batch") {
				t.Errorf("%s: %q prompts for the certificate's subject: give it -subj", where, cmd)
				continue
			}
		case strings.HasPrefix(cmd, "ssh-keygen"):
			if !strings.Contains(cmd, " -N ") || !strings.Contains(cmd, " -f ") {
				t.Errorf("%s: %q prompts (for a file or passphrase): give it -f and -N", where, cmd)
			}
			continue
		}
		if lookErr != nil || testing.Short() {
			continue
		}
		dir := t.TempDir()
		run := exec.Command("sh", "-c", cmd) // stdin is the null device: no terminal
		run.Dir = dir
		if out, err := run.CombinedOutput(); err != nil {
			t.Errorf("%s: %q without a terminal: %v\n%s", where, cmd, err, out)
			continue
		}
		for _, flag := range []string{"-keyout", "-out"} {
			m := regexp.MustCompile(regexp.QuoteMeta(flag) + `\s+(\S+)`).FindStringSubmatch(cmd)
			if m == nil {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, m[1]))
			if err != nil {
				t.Errorf("%s: %q wrote no %s: %v", where, cmd, m[1], err)
				continue
			}
			if flag == "-keyout" && strings.Contains(m[1], "netsuite") {
				if _, err := netsuite.ParsePrivateKey(data); err != nil {
					t.Errorf("%s: the NetSuite target does not read the key %q writes: %v", where, cmd, err)
				}
			}
		}
	}
}

// docFiles are the README and every Markdown file under docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	return testdocs.Files(t, "..", "docs")
}
