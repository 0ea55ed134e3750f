package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/config"
)

func TestMappingsSection(t *testing.T) {
	path := writeFile(t, `
mappings:
  files: [maps/std.yaml]
targets:
  erp: {type: test-target, base_url: "https://erp.example.com"}
connections:
  shop:
    source: {type: test-source, secret: s}
    target: erp
    mapping: std
  plain:
    source: {type: test-source, secret: s}
    target: erp
`)
	dir := filepath.Dir(path)
	os.MkdirAll(filepath.Join(dir, "maps"), 0o755)
	// Relative to the config file, not to the working directory.
	os.WriteFile(filepath.Join(dir, "maps", "std.yaml"), []byte("name: std\ndefaults: {currency: EUR}\n"), 0o644)
	cfg := mustLoad(t, path)
	equal(t, "mappings.sources", cfg.Mappings.Sources.Files, []string{filepath.Join(dir, "maps", "std.yaml")})
	equal(t, "loaded mappings", cfg.Mappings.Loaded.Names(), []string{"std"})
	equal(t, "reload_interval default", cfg.Mappings.ReloadInterval.String(), "2s")

	// A broken mapping file is reported at the key naming it, with the
	// file's position; an unknown mapping name at the connection's key.
	os.WriteFile(filepath.Join(dir, "maps", "std.yaml"), []byte("name: std\ninvoice:\n  memo: deal.titel\n"), 0o644)
	_, err := config.Load(path)
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("got %v, want *config.Error", err)
	}
	want := map[string]string{
		"mappings.files[0]":        filepath.Join(dir, "maps", "std.yaml") + ":3:14: invoice.memo: type deal has no field titel",
		"connections.shop.mapping": `mapping "std" is not defined (defined: default); some mapping files did not load`,
	}
	for _, p := range cerr.Problems {
		frag, ok := want[p.Key]
		if !ok {
			t.Errorf("unexpected problem %s", p)
			continue
		}
		if !strings.Contains(p.Message, frag) {
			t.Errorf("%s: %q does not contain %q", p.Key, p.Message, frag)
		}
		delete(want, p.Key)
	}
	for k := range want {
		t.Errorf("no problem at %s:\n%v", k, err)
	}

	// Unknown name without any mapping files.
	path = writeFile(t, `
targets:
  erp: {type: test-target, base_url: "https://erp.example.com"}
connections:
  shop:
    source: {type: test-source, secret: s}
    target: erp
    mapping: standard
`)
	_, err = config.Load(path)
	if !errors.As(err, &cerr) || !cerr.Has("connections.shop.mapping") || len(cerr.Problems) != 1 {
		t.Fatalf("got %v, want one problem at connections.shop.mapping", err)
	}
	if !strings.Contains(err.Error(), `mapping "standard" is not defined (defined: default)`) {
		t.Errorf("message: %v", err)
	}

	// A missing directory.
	path = writeFile(t, "mappings: {dir: nowhere}\n")
	if _, err = config.Load(path); !errors.As(err, &cerr) || !cerr.Has("mappings.dir") {
		t.Fatalf("got %v, want a problem at mappings.dir", err)
	}
}
