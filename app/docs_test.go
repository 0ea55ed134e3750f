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
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/config"
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
