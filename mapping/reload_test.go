package mapping_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/mapping"
)

func writeMapping(t *testing.T, path, memo string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("name: live\ninvoice:\n  memo: '"+memo+"'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func memoOf(t *testing.T, s *mapping.Store) string {
	t.Helper()
	m, ok := s.Current().Mapper("live")
	if !ok {
		t.Fatal("mapping live missing")
	}
	inv, err := m.Map(wonEvent("closedwon", ""))
	if err != nil {
		t.Fatal(err)
	}
	return inv.Memo
}

func TestHotReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "live.yaml")
	writeMapping(t, path, `"v1"`)
	var logs bytes.Buffer
	store, err := mapping.NewStore(mapping.Sources{Dir: dir}, mapping.StoreOptions{
		Required: []string{"live", "live"}, Logger: slog.New(slog.NewTextHandler(&logs, nil)), // two connections use it
	})
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := store.Current().Get("live")
	if memoOf(t, store) != "v1" {
		t.Fatal("initial version not loaded")
	}

	t.Run("unchanged files do not reload", func(t *testing.T) {
		if store.MaybeReload() {
			t.Fatal("MaybeReload reloaded unchanged files")
		}
	})

	t.Run("good edit", func(t *testing.T) {
		writeMapping(t, path, `"v2"`)
		if !store.MaybeReload() {
			t.Fatal("MaybeReload did not pick up the edit")
		}
		if got := memoOf(t, store); got != "v2" {
			t.Fatalf("memo %q after a good edit, want v2", got)
		}
		v2, _ := store.Current().Get("live")
		if v2.Hash() == v1.Hash() {
			t.Fatal("hash unchanged after an edit")
		}
		// The previous version is untouched: a run holding it keeps it.
		if inv, _ := v1.Map(wonEvent("closedwon", "")); inv.Memo != "v1" {
			t.Fatalf("old version changed: %q", inv.Memo)
		}
	})

	t.Run("bad edit keeps the previous version and logs every error", func(t *testing.T) {
		logs.Reset()
		os.WriteFile(path, []byte("name: live\ninvoice:\n  memo: deal.nam\n  reference: deal.id + 1\n"), 0o644)
		err := store.Reload()
		var le *mapping.LoadError
		if !errors.As(err, &le) || len(le.Problems) != 2 {
			t.Fatalf("Reload: got %v, want a LoadError with 2 problems", err)
		}
		if got := memoOf(t, store); got != "v2" {
			t.Fatalf("memo %q after a bad edit, want v2 (the previous version)", got)
		}
		out := logs.String()
		for _, frag := range []string{"live.yaml:3:", "has no field nam", "live.yaml:4:", "keeping the previous mappings"} {
			if !strings.Contains(out, frag) {
				t.Errorf("log does not contain %q:\n%s", frag, out)
			}
		}
		// Reported once: the same broken content is not reloaded again.
		logs.Reset()
		if store.MaybeReload() || logs.Len() != 0 {
			t.Errorf("unchanged broken file reloaded again; log:\n%s", logs.String())
		}
	})

	t.Run("a required mapping may not disappear", func(t *testing.T) {
		logs.Reset()
		os.WriteFile(path, []byte("name: renamed\n"), 0o644)
		err := store.Reload()
		if err == nil || !strings.Contains(err.Error(), `mapping "live" is used by a connection but no longer defined`) {
			t.Fatalf("Reload: %v", err)
		}
		if memoOf(t, store) != "v2" {
			t.Fatal("previous version not kept")
		}
		// Once, though two connections use it.
		if n := strings.Count(logs.String(), "no longer defined"); n != 1 {
			t.Errorf("the missing mapping logged %d times:\n%s", n, logs.String())
		}
	})

	t.Run("restoring the mappings in use says the problems are gone", func(t *testing.T) {
		logs.Reset()
		writeMapping(t, path, `"v2"`)
		if err := store.Reload(); err != nil {
			t.Fatal(err)
		}
		if out := logs.String(); !strings.Contains(out, "mappings reloaded: the problems of the last reload are gone") || strings.Contains(out, "mapping loaded") {
			t.Errorf("log after restoring v2:\n%s", out)
		}
		logs.Reset()
		if err := store.Reload(); err != nil || strings.Contains(logs.String(), "problems") {
			t.Errorf("a reload after a good one: %v\n%s", err, logs.String())
		}
	})

	t.Run("fixing the file applies", func(t *testing.T) {
		writeMapping(t, path, `"v3"`)
		if err := store.Reload(); err != nil {
			t.Fatal(err)
		}
		if memoOf(t, store) != "v3" {
			t.Fatal("fixed version not loaded")
		}
	})
}

func TestDuplicateNames(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("name: same\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.yml"), []byte("name: same\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a mapping"), 0o644)
	_, err := mapping.Load(mapping.Sources{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), `mapping "same" is also defined in`) {
		t.Fatalf("got %v", err)
	}
}
