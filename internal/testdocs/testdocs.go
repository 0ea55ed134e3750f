// Package testdocs lists the Markdown files a user reads, for the tests
// that check what the docs say against the code.
package testdocs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Files are the README.md of the repository at root and every Markdown
// file under root's folders dirs (docs, examples), in that order.
func Files(t testing.TB, root string, dirs ...string) []string {
	t.Helper()
	files := []string{filepath.Join(root, "README.md")}
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
				files = append(files, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}
